//! Walking a directory tree safely, and the `files` collector built on it.
//!
//! The walk never follows a symlink (so a symlink loop is one entry, not a cycle), never
//! opens anything but directories (FIFOs and devices are listed from their metadata only),
//! keeps one open directory per level (a directory with a million entries is streamed, not
//! loaded), stops at a depth bound, does not descend into the kernel's pseudo file systems
//! (proc, sysfs, cgroup, debugfs and the like) it meets below the start, and checks the
//! collection's time limit at every entry.

use super::file::file_row;
use super::{Args, ArgsError, Flow, Host, Sink, Truncated};
use std::fs::{Metadata, ReadDir};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The deepest a walk goes below its start.
pub const MAX_DEPTH: usize = 64;

/// File system magic numbers (statfs' f_type) of trees a walk does not enter.
const PSEUDO_FS: [i64; 10] = [
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x6367_7270, // cgroup2
    0x0027_e0eb, // cgroup
    0x1cd1,      // devpts
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7363_6673, // securityfs
    0xcafe_4a11, // bpf
    0x4249_4e4d, // binfmt_misc
];

/// Whether `dir` is on one of the kernel's pseudo file systems.
fn pseudo(dir: &Path) -> bool {
    rustix::fs::statfs(dir).is_ok_and(|s| PSEUDO_FS.contains(&{ s.f_type }))
}

/// Calls `visit` for every entry below `start` (not `start` itself), depth first, with its
/// metadata (not following symlinks), until `visit` or the sink says stop. A directory that
/// cannot be read is recorded as an error and skipped.
pub fn walk(
    start: &Path,
    sink: &mut Sink,
    mut visit: impl FnMut(&Path, &Metadata, &mut Sink) -> Flow,
) -> Flow {
    // Each open directory with its device, so a mount point below is seen without a stat.
    let mut open: Vec<(PathBuf, u64, ReadDir)> = Vec::new();
    let start_dev = std::fs::metadata(start).map_or(0, |m| m.dev());
    match std::fs::read_dir(start) {
        Ok(d) => open.push((start.to_path_buf(), start_dev, d)),
        Err(e) => {
            sink.error(format!("{}: {e}", start.display()));
            return Flow::Continue(());
        }
    }
    loop {
        let depth_left = open.len() < MAX_DEPTH;
        let Some((dir, dir_dev, entries)) = open.last_mut() else {
            break;
        };
        sink.check()?;
        let Some(entry) = entries.next() else {
            open.pop();
            continue;
        };
        let path = match entry {
            Ok(e) => e.path(),
            Err(e) => {
                sink.error(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // gone since it was listed
        };
        visit(&path, &meta, sink)?;
        let mount_point = meta.dev() != *dir_dev;
        if meta.is_dir() && depth_left && !(mount_point && pseudo(&path)) {
            match std::fs::read_dir(&path) {
                Ok(d) => open.push((path, meta.dev(), d)),
                Err(e) => sink.error(format!("{}: {e}", path.display())),
            }
        }
    }
    Flow::Continue(())
}

/// What the `files` collector looks for.
#[derive(Debug, Clone)]
pub struct Search {
    /// Where to look (host paths).
    pub roots: Vec<String>,
    /// A glob over the file name, or over the whole path if it holds a `/`.
    pub glob: Option<glob::Pattern>,
    /// Size bounds, in bytes (with either, only regular files match).
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    /// Modified at or after (unix seconds).
    pub newer_than: Option<i64>,
    /// Modified before (unix seconds).
    pub older_than: Option<i64>,
    /// Only regular files with this SHA-256 (each candidate is hashed).
    pub sha256: Option<String>,
    /// Hash every regular file found.
    pub hash: bool,
    /// Most results.
    pub limit: usize,
}

/// The `files` collector's arguments.
const FILES_ARGS: [&str; 9] = [
    "root",
    "glob",
    "min_size",
    "max_size",
    "newer_than",
    "older_than",
    "sha256",
    "hash",
    "limit",
];

impl Search {
    pub fn from(args: &Args) -> Result<Self, ArgsError> {
        args.only(&FILES_ARGS)?;
        let roots: Vec<String> = args.all("root").into_iter().map(String::from).collect();
        if let Some(bad) = roots.iter().find(|r| !r.starts_with('/')) {
            return Err(Args::bad("root", bad, "not an absolute path"));
        }
        let glob = match args.one("glob")? {
            Some(g) => Some(glob::Pattern::new(g).map_err(|e| Args::bad("glob", g, e.msg))?),
            None => None,
        };
        let sha256 = args.one("sha256")?.map(str::to_ascii_lowercase);
        if let Some(h) = &sha256
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(Args::bad("sha256", h, "not 64 hex digits"));
        }
        Ok(Self {
            roots: if roots.is_empty() {
                vec!["/".into()]
            } else {
                roots
            },
            glob,
            min_size: args.parsed("min_size")?,
            max_size: args.parsed("max_size")?,
            newer_than: args.parsed("newer_than")?,
            older_than: args.parsed("older_than")?,
            sha256,
            hash: args.parsed("hash")?.unwrap_or(false),
            limit: args.parsed("limit")?.unwrap_or(10_000),
        })
    }

    /// Whether the entry's name, size and mtime match (the hash is checked after).
    fn matches(&self, host_path: &Path, meta: &Metadata) -> bool {
        let named = self.glob.as_ref().is_none_or(|g| {
            if g.as_str().contains('/') {
                g.matches_path(host_path)
            } else {
                host_path
                    .file_name()
                    .is_some_and(|n| g.matches(&n.to_string_lossy()))
            }
        });
        let bounded = self.min_size.is_some() || self.max_size.is_some();
        let sized = (!bounded || meta.is_file())
            && self.min_size.is_none_or(|m| meta.len() >= m)
            && self.max_size.is_none_or(|m| meta.len() <= m);
        let timed = self.newer_than.is_none_or(|t| meta.mtime() >= t)
            && self.older_than.is_none_or(|t| meta.mtime() < t);
        named && sized && timed && (self.sha256.is_none() || meta.is_file())
    }
}

/// The `files` collector: every entry under the roots that matches, up to the limit.
pub fn files(host: &Host, search: &Search, sink: &mut Sink) {
    let mut found = 0;
    for root in &search.roots {
        let start = host.path(root);
        let flow = walk(&start, sink, |path, meta, sink| {
            let host_path = host.host_path(path);
            if !search.matches(&host_path, meta) {
                return Flow::Continue(());
            }
            let hash = search.hash || search.sha256.is_some();
            let row = file_row(host, path, meta, hash);
            if let Some(want) = &search.sha256
                && row.get("sha256").and_then(|h| h.as_str()) != Some(want.as_str())
            {
                return Flow::Continue(());
            }
            found += 1;
            sink.push(row)?;
            if found >= search.limit {
                return sink.stop(Truncated::Results);
            }
            Flow::Continue(())
        });
        if flow.is_break() {
            return;
        }
    }
}
