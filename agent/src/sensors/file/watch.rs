//! The file sensor's kernel side: one inotify instance, watching directories for exactly the
//! changes the sensor reports (entries created, deleted or moved; files closed after writing)
//! and nothing else, so opening or reading a file costs the agent nothing. It keeps the map
//! from watch descriptors to paths: recursive trees gain watches for new directories, follow
//! directories renamed within them, and drop those moved out. A rename's two halves (moved
//! from, moved to) are paired by cookie; a half left alone is a move out of (a deletion) or
//! into (a creation) the watched directories.

use rustix::fd::OwnedFd;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the sensor reports about a watched directory's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create(PathBuf),
    /// A file opened for writing was closed.
    Modify(PathBuf),
    Delete(PathBuf),
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    /// The kernel's event queue overflowed: an unknown number of changes were lost.
    Overflow,
    /// No inotify watch was left for this directory (or for part of its tree).
    OutOfWatches(PathBuf),
}

/// Only these events are asked of the kernel; no open, access or attribute events.
const EVENTS: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO);
const FLAGS: WatchFlags = EVENTS
    .union(WatchFlags::ONLYDIR)
    .union(WatchFlags::DONT_FOLLOW)
    .union(WatchFlags::EXCL_UNLINK);

/// How long the first half of a rename waits for its second.
const PAIR_WINDOW: Duration = Duration::from_millis(10);

#[derive(Debug)]
struct Dir {
    path: PathBuf,
    recursive: bool,
}

#[derive(Debug)]
struct MovedFrom {
    cookie: u32,
    path: PathBuf,
    is_dir: bool,
    at: Instant,
}

pub struct Watcher {
    fd: OwnedFd,
    dirs: HashMap<i32, Dir>,
    exclude: Vec<PathBuf>,
    moved_from: Vec<MovedFrom>,
    buf: Vec<MaybeUninit<u8>>,
}

impl Watcher {
    /// A watcher that never watches under `exclude`.
    pub fn new(exclude: Vec<PathBuf>) -> std::io::Result<Self> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        Ok(Self {
            fd,
            dirs: HashMap::new(),
            exclude,
            moved_from: Vec::new(),
            buf: vec![MaybeUninit::uninit(); 64 * 1024],
        })
    }

    /// Directories watched now.
    pub fn watched(&self) -> usize {
        self.dirs.len()
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|x| path.starts_with(x))
    }

    /// Watches `root` (and, if `recursive`, every directory below it, without following
    /// symlinks). Out of watches is returned as a change to report; other errors (the
    /// directory is gone, unreadable) leave that directory unwatched.
    pub fn watch(&mut self, root: &Path, recursive: bool) -> Result<(), Change> {
        self.add(root, recursive, None)
    }

    /// `watch`, and if `found` is given, every entry met on the way down is pushed to it as
    /// created (one walk both watches a new tree and reports what is already in it).
    fn add(
        &mut self,
        root: &Path,
        recursive: bool,
        mut found: Option<&mut Vec<Change>>,
    ) -> Result<(), Change> {
        if self.excluded(root) {
            return Ok(());
        }
        match inotify::add_watch(&self.fd, root, FLAGS) {
            Ok(wd) => {
                self.dirs
                    .entry(wd)
                    .and_modify(|d| d.recursive |= recursive)
                    .or_insert_with(|| Dir {
                        path: root.to_path_buf(),
                        recursive,
                    });
            }
            Err(Errno::NOSPC) => return Err(Change::OutOfWatches(root.to_path_buf())),
            Err(e) => {
                tracing::debug!(path = %root.display(), error = %e, "cannot watch");
                return Ok(());
            }
        }
        if recursive && let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                let path = entry.path();
                if self.excluded(&path) {
                    continue;
                }
                if let Some(found) = found.as_deref_mut() {
                    found.push(Change::Create(path.clone()));
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    self.add(&path, true, found.as_deref_mut())?;
                }
            }
        }
        Ok(())
    }

    /// Stops watching `root` and everything below it.
    fn forget(&mut self, root: &Path) {
        let gone: Vec<i32> = self
            .dirs
            .iter()
            .filter(|(_, d)| d.path.starts_with(root))
            .map(|(wd, _)| *wd)
            .collect();
        for wd in gone {
            self.dirs.remove(&wd);
            let _ = inotify::remove_watch(&self.fd, wd);
        }
    }

    /// Waits up to `timeout` for changes and returns those that happened, in order.
    pub fn read(&mut self, timeout: Duration) -> std::io::Result<Vec<Change>> {
        let wait = if self.moved_from.is_empty() {
            timeout
        } else {
            timeout.min(PAIR_WINDOW)
        };
        let ts = rustix::time::Timespec::try_from(wait).unwrap_or(rustix::time::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        let mut fds = [rustix::event::PollFd::new(
            &self.fd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let mut raw = Vec::new();
        let mut reader = inotify::Reader::new(&self.fd, &mut self.buf);
        loop {
            match reader.next() {
                Ok(ev) => raw.push((
                    ev.wd(),
                    ev.events(),
                    ev.cookie(),
                    ev.file_name()
                        .map(|n| OsStr::from_bytes(n.to_bytes()).to_owned()),
                )),
                Err(Errno::AGAIN | Errno::INTR) => break,
                Err(e) => return Err(e.into()),
            }
        }
        let mut out = Vec::new();
        for (wd, mask, cookie, name) in raw {
            self.apply(wd, mask, cookie, name, &mut out);
        }
        // First halves of renames whose second half never came: moved out of sight.
        let now = Instant::now();
        let (expired, waiting) = std::mem::take(&mut self.moved_from)
            .into_iter()
            .partition(|m| now.duration_since(m.at) >= PAIR_WINDOW);
        self.moved_from = waiting;
        for m in expired {
            if m.is_dir {
                self.forget(&m.path);
            }
            out.push(Change::Delete(m.path));
        }
        Ok(out)
    }

    /// Turns one kernel event into changes (and keeps the watch map right).
    fn apply(
        &mut self,
        wd: i32,
        mask: ReadFlags,
        cookie: u32,
        name: Option<std::ffi::OsString>,
        out: &mut Vec<Change>,
    ) {
        if mask.contains(ReadFlags::QUEUE_OVERFLOW) {
            out.push(Change::Overflow);
            return;
        }
        if mask.contains(ReadFlags::IGNORED) {
            // The directory itself is gone (or unmounted); the kernel dropped its watch.
            self.dirs.remove(&wd);
            return;
        }
        let (Some(dir), Some(name)) = (self.dirs.get(&wd), name) else {
            return;
        };
        let path = dir.path.join(name);
        let recursive = dir.recursive;
        let is_dir = mask.contains(ReadFlags::ISDIR);
        if mask.contains(ReadFlags::CREATE) {
            out.push(Change::Create(path.clone()));
            if is_dir && recursive {
                self.watch_new(&path, out);
            }
        } else if mask.contains(ReadFlags::CLOSE_WRITE) {
            out.push(Change::Modify(path));
        } else if mask.contains(ReadFlags::DELETE) {
            out.push(Change::Delete(path));
        } else if mask.contains(ReadFlags::MOVED_FROM) {
            self.moved_from.push(MovedFrom {
                cookie,
                path,
                is_dir,
                at: Instant::now(),
            });
        } else if mask.contains(ReadFlags::MOVED_TO) {
            let from = self
                .moved_from
                .iter()
                .position(|m| m.cookie == cookie)
                .map(|i| self.moved_from.remove(i));
            if is_dir {
                self.moved_dir(
                    from.as_ref().map(|m| m.path.as_path()),
                    &path,
                    recursive,
                    out,
                );
            }
            out.push(match from {
                Some(from) => Change::Rename {
                    from: from.path,
                    to: path,
                },
                None => Change::Create(path),
            });
        }
    }

    /// A directory moved to `to` (from `from`, if that was seen). Its watches keep their
    /// descriptors, and events already queued under them, by taking the new path; it is
    /// watched afresh if it came from outside, and forgotten if it left the recursive trees.
    fn moved_dir(
        &mut self,
        from: Option<&Path>,
        to: &Path,
        recursive: bool,
        out: &mut Vec<Change>,
    ) {
        if !recursive {
            if let Some(from) = from {
                self.forget(from);
            }
            return;
        }
        let mut followed = false;
        if let Some(from) = from {
            for d in self.dirs.values_mut() {
                if let Ok(rest) = d.path.strip_prefix(from) {
                    d.path = to.join(rest);
                    followed = true;
                }
            }
        }
        if !followed && let Err(c) = self.watch(to, true) {
            out.push(c);
        }
    }

    /// A directory just created in a recursive tree: watched at once, and whatever was made
    /// in it before the watch took hold is reported as created.
    fn watch_new(&mut self, path: &Path, out: &mut Vec<Change>) {
        if let Err(c) = self.add(path, true, Some(out)) {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Reads changes until `done` holds for all of them, or two seconds pass.
    fn changes(w: &mut Watcher, done: impl Fn(&[Change]) -> bool) -> Vec<Change> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut all = Vec::new();
        while Instant::now() < deadline && !done(&all) {
            all.extend(w.read(Duration::from_millis(50)).unwrap());
        }
        all
    }

    #[test]
    fn new_directories_in_a_recursive_tree_are_watched_and_what_was_made_in_them_is_seen() {
        let root = tempfile::tempdir().unwrap();
        let mut w = Watcher::new(Vec::new()).unwrap();
        w.watch(root.path(), true).unwrap();
        let deep = root.path().join("a/b/c");
        fs::create_dir_all(&deep).unwrap();
        // Made at once, likely before the watch on c exists: found by the scan.
        fs::write(deep.join("early"), b"x").unwrap();
        let got = changes(&mut w, |c| c.contains(&Change::Create(deep.join("early"))));
        for p in ["a", "a/b", "a/b/c", "a/b/c/early"] {
            assert!(
                got.contains(&Change::Create(root.path().join(p))),
                "{p} in {got:?}"
            );
        }
        fs::write(deep.join("late"), b"y").unwrap();
        let got = changes(&mut w, |c| c.contains(&Change::Modify(deep.join("late"))));
        assert!(got.contains(&Change::Modify(deep.join("late"))), "{got:?}");
    }

    #[test]
    fn renames_pair_up_and_moves_across_the_edge_are_deletions_and_creations() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let mut w = Watcher::new(Vec::new()).unwrap();
        w.watch(root.path(), false).unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        fs::write(&a, b"1").unwrap();
        fs::rename(&a, &b).unwrap();
        let rename = Change::Rename {
            from: a.clone(),
            to: b.clone(),
        };
        let got = changes(&mut w, |c| c.contains(&rename));
        assert!(got.contains(&rename), "{got:?}");
        assert!(!got.contains(&Change::Delete(a.clone())), "{got:?}");

        let away = outside.path().join("away");
        fs::rename(&b, &away).unwrap();
        let got = changes(&mut w, |c| c.contains(&Change::Delete(b.clone())));
        assert_eq!(got, vec![Change::Delete(b.clone())]);

        fs::rename(&away, &a).unwrap();
        let got = changes(&mut w, |c| c.contains(&Change::Create(a.clone())));
        assert_eq!(got, vec![Change::Create(a.clone())]);
    }

    #[test]
    fn a_renamed_directory_is_followed_and_one_moved_out_is_forgotten() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("x/inner")).unwrap();
        let mut w = Watcher::new(Vec::new()).unwrap();
        w.watch(root.path(), true).unwrap();
        assert_eq!(w.watched(), 3);
        fs::rename(root.path().join("x"), root.path().join("y")).unwrap();
        let file = root.path().join("y/inner/f");
        fs::write(&file, b"z").unwrap();
        let got = changes(&mut w, |c| c.contains(&Change::Modify(file.clone())));
        assert!(got.contains(&Change::Modify(file.clone())), "{got:?}");
        assert_eq!(w.watched(), 3);

        fs::rename(root.path().join("y"), outside.path().join("y")).unwrap();
        let got = changes(&mut w, |c| !c.is_empty());
        assert_eq!(got, vec![Change::Delete(root.path().join("y"))]);
        assert_eq!(w.watched(), 1, "only the root is left");
        fs::write(outside.path().join("y/inner/f"), b"again").unwrap();
        assert_eq!(w.read(Duration::from_millis(100)).unwrap(), vec![]);
    }

    #[test]
    fn a_queue_overflow_and_a_vanished_watch_are_read_as_such() {
        let root = tempfile::tempdir().unwrap();
        let mut w = Watcher::new(Vec::new()).unwrap();
        w.watch(root.path(), false).unwrap();
        let mut out = Vec::new();
        // What the kernel reads out when its queue overflowed: wd -1, no name.
        w.apply(-1, ReadFlags::QUEUE_OVERFLOW, 0, None, &mut out);
        assert_eq!(out, vec![Change::Overflow]);
        // The watched directory removed: the kernel drops the watch, and so does the map.
        drop(root);
        let deadline = Instant::now() + Duration::from_secs(2);
        while w.watched() > 0 && Instant::now() < deadline {
            let got = w.read(Duration::from_millis(50)).unwrap();
            assert!(got.is_empty(), "{got:?}");
        }
        assert_eq!(w.watched(), 0);
    }

    #[test]
    fn opening_and_reading_files_costs_nothing_and_excluded_trees_are_not_watched() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("own/deeper")).unwrap();
        let file = root.path().join("f");
        fs::write(&file, b"content").unwrap();
        let mut w = Watcher::new(vec![root.path().join("own")]).unwrap();
        w.watch(root.path(), true).unwrap();
        assert_eq!(w.watched(), 1, "the excluded tree has no watches");
        for _ in 0..100 {
            assert_eq!(fs::read(&file).unwrap(), b"content");
        }
        fs::write(root.path().join("own/deeper/state"), b"s").unwrap();
        assert_eq!(w.read(Duration::from_millis(100)).unwrap(), vec![]);
    }
}
