//! Folder views of a commit's flat file table: tree listings and stable folder oids.

use std::collections::BTreeSet;

use sha1::{Digest as _, Sha1};

use super::model::{Commit, FileEntry};

/// One entry of a tree listing: a file or a folder.
pub(crate) enum TreeItem<'a> {
    File(&'a str, &'a FileEntry),
    Dir(String, String),
}

/// Lists `dir` ("" for the root) of a commit: direct children, or all descendants with `recursive`.
/// `None` when the folder does not exist.
pub(crate) fn tree<'a>(
    commit: &'a Commit,
    dir: &str,
    recursive: bool,
) -> Option<Vec<TreeItem<'a>>> {
    let dir = dir.trim_matches('/');
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut dirs = BTreeSet::new();
    let mut items = Vec::new();
    let mut found = dir.is_empty();
    for (path, entry) in commit.files.range(prefix.clone()..) {
        let Some(rest) = path.strip_prefix(&prefix) else {
            break;
        };
        found = true;
        let segments: Vec<&str> = rest.split('/').collect();
        if recursive {
            for i in 1..segments.len() {
                dirs.insert(format!("{prefix}{}", segments[..i].join("/")));
            }
            items.push(TreeItem::File(path, entry));
        } else if segments.len() == 1 {
            items.push(TreeItem::File(path, entry));
        } else {
            dirs.insert(format!("{prefix}{}", segments[0]));
        }
    }
    if !found {
        return None;
    }
    for d in dirs {
        let oid = dir_oid(commit, &d);
        items.push(TreeItem::Dir(d, oid));
    }
    items.sort_by(|a, b| item_path(a).cmp(item_path(b)));
    Some(items)
}

fn item_path<'a>(item: &'a TreeItem<'_>) -> &'a str {
    match item {
        TreeItem::File(p, _) => p,
        TreeItem::Dir(p, _) => p,
    }
}

/// A stable 40-hex oid for a folder: hashes the paths and oids below it.
pub(crate) fn dir_oid(commit: &Commit, dir: &str) -> String {
    let prefix = format!("{dir}/");
    let mut h = Sha1::new();
    h.update(b"tree ");
    for (path, entry) in commit.files.range(prefix.clone()..) {
        if !path.starts_with(&prefix) {
            break;
        }
        h.update(path.as_bytes());
        h.update(entry.git_oid.as_bytes());
    }
    hex::encode(h.finalize())
}
