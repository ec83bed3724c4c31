//! The repositories of the store: creating, deleting, moving and configuring them, their refs (branches, tags)
//! and resolving a revision to a commit; [`load_repos`] reads them all at start.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::fsutil::{read_json, with_path};
use super::model::{GITATTRIBUTES, new_commit};
use super::{Commit, Repo, RepoKey, RepoMeta, RepoType, Storage, now_iso, random_hex};

impl Storage {
    pub fn meta(&self, key: &RepoKey) -> Option<RepoMeta> {
        self.read().map.get(key).map(|r| r.meta.clone())
    }

    /// Creates a repository with an initial commit holding `.gitattributes`, like the real Hub.
    /// Returns false if it already exists.
    pub fn create_repo(&self, key: &RepoKey, private: bool, author: &str) -> io::Result<bool> {
        let mut repos = self.write();
        if repos.map.contains_key(key) {
            return Ok(false);
        }
        let gitattributes = self.put_regular(GITATTRIBUTES.as_bytes())?;
        let now = now_iso();
        let files = BTreeMap::from([(".gitattributes".to_string(), gitattributes)]);
        let commit = new_commit(
            Vec::new(),
            "initial commit".into(),
            String::new(),
            author.into(),
            files,
            &now,
        );
        let meta = RepoMeta {
            internal_id: random_hex(12),
            private,
            gated: Value::Bool(false),
            created_at: now.clone(),
            last_modified: now,
            branches: BTreeMap::from([("main".to_string(), commit.oid.clone())]),
            tags: BTreeMap::new(),
        };
        self.write_commit(key, &commit, &meta)?;
        repos.hold(key, &commit);
        repos.map.insert(
            key.clone(),
            Repo {
                meta,
                commits: HashMap::from([(commit.oid.clone(), Arc::new(commit))]),
            },
        );
        Ok(true)
    }

    /// Deletes a repository; false if it did not exist. Its blobs go too, unless another repository's commit
    /// references them or a staged upload covers them.
    pub fn delete_repo(&self, key: &RepoKey) -> io::Result<bool> {
        let mut repos = self.write();
        let Some(repo) = repos.map.remove(key) else {
            return Ok(false);
        };
        let dir = self.repo_dir(key);
        let trash = self.blobs.temp_path();
        fs::rename(&dir, &trash).map_err(|e| with_path(e, &dir))?;
        fs::remove_dir_all(&trash).map_err(|e| with_path(e, &trash))?;
        let freed = repos.release(key, &repo);
        let grants = self.staged.lock();
        for sha in freed.iter().filter(|sha| !grants.granted(sha)) {
            self.blobs.remove(sha)?;
        }
        Ok(true)
    }

    /// Renames a repository. `Ok(None)`: the source is missing; `Ok(Some(false))`: the target exists.
    pub fn move_repo(&self, from: &RepoKey, to: &RepoKey) -> io::Result<Option<bool>> {
        let mut repos = self.write();
        if !repos.map.contains_key(from) {
            return Ok(None);
        }
        if repos.map.contains_key(to) {
            return Ok(Some(false));
        }
        let (src, dst) = (self.repo_dir(from), self.repo_dir(to));
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(|e| with_path(e, parent))?;
        }
        fs::rename(&src, &dst).map_err(|e| with_path(e, &dst))?;
        let Some(repo) = repos.map.remove(from) else {
            return Ok(None);
        };
        repos.release(from, &repo);
        for commit in repo.commits.values() {
            repos.hold(to, commit);
        }
        repos.map.insert(to.clone(), repo);
        let mut grants = self.staged.lock();
        grants.rename_repo(&from.to_string(), &to.to_string());
        grants.save()?;
        Ok(Some(true))
    }

    /// Changes visibility and/or gating.
    pub fn update_settings(
        &self,
        key: &RepoKey,
        private: Option<bool>,
        gated: Option<Value>,
    ) -> io::Result<Option<RepoMeta>> {
        let mut repos = self.write();
        let Some(repo) = repos.map.get_mut(key) else {
            return Ok(None);
        };
        let mut meta = repo.meta.clone();
        if let Some(private) = private {
            meta.private = private;
        }
        if let Some(gated) = gated {
            meta.gated = gated;
        }
        self.write_json(&self.repo_dir(key).join("repo.json"), &meta)?;
        repo.meta = meta.clone();
        Ok(Some(meta))
    }

    /// Creates (`target: Some(oid)`) or deletes (`None`) a branch or tag. `Ok(false)`: it already existed
    /// (create) or did not exist (delete). The target commit must exist.
    pub fn set_ref(
        &self,
        key: &RepoKey,
        tag: bool,
        name: &str,
        target: Option<&str>,
    ) -> io::Result<Option<bool>> {
        let mut repos = self.write();
        let Some(repo) = repos.map.get_mut(key) else {
            return Ok(None);
        };
        let mut meta = repo.meta.clone();
        let refs = if tag {
            &mut meta.tags
        } else {
            &mut meta.branches
        };
        let changed = match target {
            Some(oid) if !refs.contains_key(name) && repo.commits.contains_key(oid) => {
                refs.insert(name.to_string(), oid.to_string());
                true
            }
            Some(_) => false,
            None => refs.remove(name).is_some(),
        };
        if changed {
            self.write_json(&self.repo_dir(key).join("repo.json"), &meta)?;
            repo.meta = meta;
        }
        Ok(Some(changed))
    }

    /// Resolves a branch, tag or full commit oid to its commit.
    pub fn resolve(&self, key: &RepoKey, rev: &str) -> Option<Arc<Commit>> {
        let repos = self.read();
        let repo = repos.map.get(key)?;
        let oid = repo
            .meta
            .branches
            .get(rev)
            .or_else(|| {
                rev.strip_prefix("refs/heads/")
                    .and_then(|b| repo.meta.branches.get(b))
            })
            .or_else(|| repo.meta.tags.get(rev))
            .or_else(|| {
                rev.strip_prefix("refs/tags/")
                    .and_then(|t| repo.meta.tags.get(t))
            })
            .cloned()
            .unwrap_or_else(|| rev.to_ascii_lowercase());
        repo.commits.get(&oid).cloned()
    }

    /// History from `head` following first parents, newest first.
    pub fn history(&self, key: &RepoKey, head: &Commit) -> Vec<Arc<Commit>> {
        let repos = self.read();
        let Some(repo) = repos.map.get(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut next = Some(head.oid.clone());
        while let Some(oid) = next {
            let Some(c) = repo.commits.get(&oid) else {
                break;
            };
            next = c.parents.first().cloned();
            out.push(c.clone());
        }
        out
    }

    /// Writes `commit` and then `meta` (which may name it) of the repository `key`: a crash in between leaves an
    /// unreferenced commit, never a dangling ref.
    pub(super) fn write_commit(
        &self,
        key: &RepoKey,
        commit: &Commit,
        meta: &RepoMeta,
    ) -> io::Result<()> {
        let dir = self.repo_dir(key);
        self.write_json(
            &dir.join("commits").join(format!("{}.json", commit.oid)),
            commit,
        )?;
        self.write_json(&dir.join("repo.json"), meta)
    }
}

/// Loads every repository under `root/repos/<type>/<ns>/<name>/`.
pub(super) fn load_repos(root: &Path) -> io::Result<Vec<(RepoKey, Repo)>> {
    let mut out = Vec::new();
    for kind in RepoType::ALL {
        let kind_dir = root.join("repos").join(kind.singular());
        let Ok(namespaces) = fs::read_dir(&kind_dir) else {
            continue;
        };
        for ns in namespaces.flatten() {
            let Ok(names) = fs::read_dir(ns.path()) else {
                continue;
            };
            for name in names.flatten() {
                let dir = name.path();
                let meta_path = dir.join("repo.json");
                if !meta_path.exists() {
                    continue;
                }
                let meta: RepoMeta = read_json(&meta_path)?;
                let mut commits = HashMap::new();
                let commits_dir = dir.join("commits");
                for c in fs::read_dir(&commits_dir)
                    .map_err(|e| with_path(e, &commits_dir))?
                    .flatten()
                {
                    if c.path().extension().is_some_and(|e| e == "json") {
                        let commit: Commit = read_json(&c.path())?;
                        commits.insert(commit.oid.clone(), Arc::new(commit));
                    }
                }
                let key = RepoKey {
                    kind,
                    ns: ns.file_name().to_string_lossy().into_owned(),
                    name: name.file_name().to_string_lossy().into_owned(),
                };
                out.push((key, Repo { meta, commits }));
            }
        }
    }
    Ok(out)
}
