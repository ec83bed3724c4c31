//! File system events of the miners' model folders (inotify on Linux, through `notify` and its full debouncer),
//! mapped to miner indices. Each `model_dir` is watched recursively and its parent folder non-recursively, so a
//! folder renamed onto `model_dir` (or a swapped symlink) is seen too; after such a switch the driver calls
//! [`FolderEvents::rewatch`]. Events are hints: the driver re-reads the folder itself, and rescans every folder
//! periodically in case an event was lost (a full inotify queue, a network file system).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc::UnboundedSender;

/// A miner index, or [`ALL`] for "look at every folder" (the watcher reported an error).
pub type Wake = usize;
/// See [`Wake`].
pub const ALL: Wake = usize::MAX;

/// Events coalesced over this long before they are delivered.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// The running watcher (dropping it stops it).
pub struct FolderEvents {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    dirs: Arc<Vec<PathBuf>>,
}

impl FolderEvents {
    /// Watch `dirs` (one per miner, by index); wake-ups go to `tx`. A folder that does not exist yet is seen through
    /// its parent when it appears.
    pub fn start(dirs: Vec<PathBuf>, tx: UnboundedSender<Wake>) -> notify::Result<FolderEvents> {
        let dirs = Arc::new(dirs);
        let map = dirs.clone();
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            match result {
                Ok(events) => {
                    let mut woken = BTreeSet::new();
                    for event in &events {
                        for path in &event.paths {
                            for (i, dir) in map.iter().enumerate() {
                                if path.starts_with(dir) {
                                    woken.insert(i);
                                }
                            }
                        }
                    }
                    for i in woken {
                        let _ = tx.send(i);
                    }
                }
                Err(errors) => {
                    for e in &errors {
                        tracing::warn!(error = %e, "file system events: looking at every model folder");
                    }
                    let _ = tx.send(ALL);
                }
            }
        })?;
        let parents: BTreeSet<PathBuf> = dirs
            .iter()
            .filter_map(|d| d.parent().map(PathBuf::from))
            .collect();
        for parent in &parents {
            if let Err(e) = debouncer.watch(parent, RecursiveMode::NonRecursive) {
                tracing::debug!(dir = %parent.display(), error = %e, "cannot watch a model folder's parent");
            }
        }
        let mut me = FolderEvents { debouncer, dirs };
        for i in 0..me.dirs.len() {
            me.rewatch(i);
        }
        Ok(me)
    }

    /// (Re-)watch miner `i`'s folder: after it appeared, or was replaced by a rename or a swapped symlink.
    pub fn rewatch(&mut self, i: usize) {
        let Some(dir) = self.dirs.get(i).cloned() else {
            return;
        };
        let _ = self.debouncer.unwatch(&dir);
        if dir.is_dir()
            && let Err(e) = self.debouncer.watch(&dir, RecursiveMode::Recursive)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the model folder; relying on the periodic rescan");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rx = tokio::sync::mpsc::UnboundedReceiver<Wake>;

    /// Whether `miner` is woken within 10 s (events are hints: other wake-ups may come along, in any order).
    fn woken(rx: &mut Rx, miner: Wake) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            match rx.try_recv() {
                Ok(w) if w == miner || w == ALL => return true,
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        false
    }

    /// Forget what came so far (after a debounce period).
    fn drain(rx: &mut Rx) {
        std::thread::sleep(DEBOUNCE * 2);
        while rx.try_recv().is_ok() {}
    }

    #[test]
    fn writes_and_renames_wake_the_right_miner() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut events = FolderEvents::start(vec![a.clone(), b.clone()], tx).unwrap();
        drain(&mut rx);
        std::fs::write(b.join("config.json"), b"{}").unwrap();
        assert!(woken(&mut rx, 1), "a write into b did not wake miner 1");
        drain(&mut rx);
        // a complete folder renamed onto `a` (the old one moved away first)
        let staged = dir.path().join(".a.tmp");
        std::fs::create_dir(&staged).unwrap();
        std::fs::write(staged.join("config.json"), b"{}").unwrap();
        std::fs::rename(&a, dir.path().join(".a.old")).unwrap();
        std::fs::rename(&staged, &a).unwrap();
        assert!(
            woken(&mut rx, 0),
            "a folder renamed onto a did not wake miner 0"
        );
        // after a rewatch, writes into the new folder are seen
        events.rewatch(0);
        drain(&mut rx);
        std::fs::write(a.join("model.safetensors"), b"x").unwrap();
        assert!(
            woken(&mut rx, 0),
            "a write into the new a did not wake miner 0"
        );
    }
}
