//! File quarantine: move a file into the agent's quarantine store without following a
//! symlink anywhere on its path (openat2 with RESOLVE_NO_SYMLINKS), keep its metadata and
//! SHA-256, strip the stored copy's permissions; restore puts back the same content, mode,
//! owner and times. The file is copied, never renamed, so it works across filesystems.
//! The type is checked on an `O_PATH` descriptor before the file is opened for reading, so a
//! FIFO or a device node is refused without ever being opened. The agent's state directory is
//! never quarantined; the agent's own files (config, binary) and the host's critical files,
//! known by device and inode, only with `force`.

use super::protect::{FileId, Protected};
use crate::swap::Swap;
use cordon_proto::QuarantineEntry;
use cordon_proto::files::{PRIVATE, atomic_write};
use ring::digest::{Context, SHA256};
use rustix::fs::{
    AtFlags, CWD, FileType, Mode, OFlags, ResolveFlags, Stat, Timestamps, fchmod, fchown, fstat,
    futimens, openat, openat2, statat, unlinkat,
};
use rustix::fs::{Gid, Uid};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &["/proc", "/sys", "/dev"];

/// Moves files out of reach and back.
pub trait Quarantiner: Send + Sync {
    /// Quarantines `path`; `force` overrides the refusal of protected files.
    fn quarantine(&self, path: &str, force: bool, now_ms: i64) -> Result<QuarantineEntry, String>;
    fn list(&self) -> Result<Vec<QuarantineEntry>, String>;
    fn restore(&self, id: &str) -> Result<QuarantineEntry, String>;
    /// Protects `critical` from the next quarantine on (a reloaded configuration).
    fn protect(&self, critical: Vec<PathBuf>);
}

impl Quarantiner for QuarantineStore {
    fn quarantine(&self, path: &str, force: bool, now_ms: i64) -> Result<QuarantineEntry, String> {
        self.quarantine_file(path, force, now_ms)
    }
    fn list(&self) -> Result<Vec<QuarantineEntry>, String> {
        self.entries()
    }
    fn restore(&self, id: &str) -> Result<QuarantineEntry, String> {
        self.restore_file(id)
    }
    fn protect(&self, critical: Vec<PathBuf>) {
        self.critical.store(self.critical.load().reloaded(critical));
    }
}

/// The real quarantine: a directory in the agent's state.
pub struct QuarantineStore {
    dir: PathBuf,
    /// The agent's state directory (as given and resolved): nothing under it, ever.
    own_dirs: Vec<PathBuf>,
    /// The agent's own files (config, binary): only with force.
    own_files: Protected,
    /// The host's critical files and what the agent runs on: only with force.
    critical: Swap<Protected>,
}

/// What a quarantine store refuses to take.
pub struct Protection {
    pub own_dirs: Vec<PathBuf>,
    pub own_files: Protected,
    pub critical: Protected,
}

fn io_err(what: &str, path: &str, e: impl std::fmt::Display) -> String {
    format!("{what} {path}: {e}")
}

impl QuarantineStore {
    pub fn new(dir: PathBuf, protection: Protection) -> Self {
        Self {
            dir,
            own_dirs: protection.own_dirs,
            own_files: protection.own_files,
            critical: Swap::new(protection.critical),
        }
    }

    /// Checks a path before anything touches it: absolute, no `.` or `..` segments, not in
    /// /proc, /sys or /dev, not the agent's own.
    pub fn check_path(&self, path: &str) -> Result<PathBuf, String> {
        if !path.starts_with('/') {
            return Err(format!("refusing {path:?}: the path must be absolute"));
        }
        if path.len() > 4096 || path.contains('\0') {
            return Err(format!("refusing {path:?}: not a valid path"));
        }
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(format!("refusing {path:?}: the path holds '.' or '..'"));
        }
        if segments.last().is_none_or(|s| s.is_empty()) {
            return Err(format!("refusing {path:?}: the path must name a file"));
        }
        let p = PathBuf::from(path);
        if let Some(root) = FORBIDDEN.iter().find(|r| p.starts_with(r)) {
            return Err(format!(
                "refusing {path:?}: nothing under {root} is quarantined"
            ));
        }
        if self.own_dirs.iter().any(|own| p.starts_with(own)) {
            return Err(format!(
                "refusing {path:?}: it is one of the agent's own files"
            ));
        }
        Ok(p)
    }

    fn open_parent(path: &Path) -> Result<(OwnedFd, String), String> {
        let shown = path.display().to_string();
        let parent = path
            .parent()
            .ok_or_else(|| format!("{shown} has no parent directory"))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{shown}: bad file name"))?;
        let dir = openat2(
            CWD,
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| symlink_or(e, "opening the directory of", &shown))?;
        Ok((dir, name.to_string()))
    }

    /// Refuses a protected file unless `force`; says so in the log when forced.
    fn check_protected(&self, path: &str, st: &Stat, force: bool) -> Result<(), String> {
        let id = FileId::of_stat(st);
        let why = if let Some(own) = self.own_files.matching(id) {
            format!("it is the agent's own file {}", own.display())
        } else if let Some(critical) = self.critical.load().matching(id) {
            format!("it is {}, a protected file", critical.display())
        } else {
            return Ok(());
        };
        if force {
            tracing::warn!(path, reason = %why, "quarantining a protected file: forced");
            return Ok(());
        }
        Err(format!(
            "refusing {path:?}: {why}; only an explicit --force quarantines it"
        ))
    }

    pub fn quarantine_file(
        &self,
        path: &str,
        force: bool,
        now_ms: i64,
    ) -> Result<QuarantineEntry, String> {
        let p = self.check_path(path)?;
        let (dir, name) = Self::open_parent(&p)?;
        let (fd, st) = open_regular(&dir, &name, path)?;
        self.check_protected(path, &st, force)?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| io_err("creating", &self.dir.display().to_string(), e))?;
        let id = format!("q-{}", hex::encode(rand::random::<[u8; 12]>()));
        let stored = self.dir.join(format!("{id}.bin"));
        let sha256 =
            copy_hashing(File::from(fd), &stored, 0o600).map_err(|e| io_err("copying", path, e))?;
        // The stored copy keeps no permission bits at all.
        std::fs::set_permissions(&stored, std::os::unix::fs::PermissionsExt::from_mode(0o000))
            .map_err(|e| io_err("locking", &stored.display().to_string(), e))?;
        let entry = QuarantineEntry {
            id: id.clone(),
            original_path: path.to_string(),
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            size: st.st_size as u64,
            sha256,
            mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec as i64,
            atime_ns: st.st_atime * 1_000_000_000 + st.st_atime_nsec as i64,
            quarantined_at_ms: now_ms,
        };
        let undo = |e: String| {
            let _ = std::fs::remove_file(&stored);
            let _ = std::fs::remove_file(self.dir.join(format!("{id}.json")));
            e
        };
        self.save(&entry).map_err(undo)?;
        // Unlink only the very file that was copied: same device and inode, still no symlink.
        let now = statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| undo(io_err("checking", path, e)))?;
        if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
            return Err(undo(format!(
                "{path} was replaced while being quarantined; left in place"
            )));
        }
        unlinkat(&dir, name.as_str(), AtFlags::empty())
            .map_err(|e| undo(io_err("removing", path, e)))?;
        tracing::warn!(path, quarantine_id = %id, sha256 = %entry.sha256, "file quarantined");
        Ok(entry)
    }

    pub fn entries(&self) -> Result<Vec<QuarantineEntry>, String> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Ok(Vec::new());
        };
        let mut entries: Vec<QuarantineEntry> = dir
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| self.load(&e.path()).ok())
            .collect();
        entries.sort_by_key(|e| e.quarantined_at_ms);
        Ok(entries)
    }

    pub fn restore_file(&self, id: &str) -> Result<QuarantineEntry, String> {
        if !id.starts_with("q-") || !id[2..].bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("no quarantined file {id:?}"));
        }
        let meta = self.dir.join(format!("{id}.json"));
        if !meta.exists() {
            return Err(format!("no quarantined file {id:?}"));
        }
        let entry = self.load(&meta)?;
        let p = self.check_path(&entry.original_path)?;
        let (dir, name) = Self::open_parent(&p)?;
        let path = entry.original_path.as_str();
        let fd = openat(
            &dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| match e {
            rustix::io::Errno::EXIST => format!("a file exists at {path}; not overwriting it"),
            e => io_err("creating", path, e),
        })?;
        let stored = self.dir.join(format!("{id}.bin"));
        let mut out = File::from(fd);
        let sha = {
            let mut src = File::open(&stored)
                .map_err(|e| io_err("reading", &stored.display().to_string(), e))?;
            copy_into(&mut src, &mut out).map_err(|e| io_err("writing", path, e))?
        };
        let fail = |e: String| {
            let _ = unlinkat(&dir, name.as_str(), AtFlags::empty());
            e
        };
        if sha != entry.sha256 {
            return Err(fail(format!(
                "the stored copy of {id} is corrupt (hash mismatch); not restored"
            )));
        }
        fchown(
            &out,
            Some(Uid::from_raw(entry.uid)),
            Some(Gid::from_raw(entry.gid)),
        )
        .map_err(|e| fail(io_err("chown", path, e)))?;
        fchmod(&out, Mode::from_raw_mode(entry.mode))
            .map_err(|e| fail(io_err("chmod", path, e)))?;
        let ts = |ns: i64| rustix::fs::Timespec {
            tv_sec: ns.div_euclid(1_000_000_000),
            tv_nsec: ns.rem_euclid(1_000_000_000) as _,
        };
        futimens(
            &out,
            &Timestamps {
                last_access: ts(entry.atime_ns),
                last_modification: ts(entry.mtime_ns),
            },
        )
        .map_err(|e| fail(io_err("setting times on", path, e)))?;
        out.sync_all()
            .map_err(|e| fail(io_err("syncing", path, e)))?;
        let _ = std::fs::remove_file(&stored);
        let _ = std::fs::remove_file(&meta);
        tracing::warn!(path, quarantine_id = %id, "file restored from quarantine");
        Ok(entry)
    }

    fn save(&self, e: &QuarantineEntry) -> Result<(), String> {
        let path = self.dir.join(format!("{}.json", e.id));
        let json = serde_json::to_vec_pretty(e).map_err(|e| e.to_string())?;
        atomic_write(&path, &json, PRIVATE)
            .map_err(|err| io_err("writing", &path.display().to_string(), err))
    }

    /// Reads an entry back; an incomplete or altered record is an error, never defaults
    /// (a restore must not guess an owner or mode).
    fn load(&self, path: &Path) -> Result<QuarantineEntry, String> {
        let bytes =
            std::fs::read(path).map_err(|e| io_err("reading", &path.display().to_string(), e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("the quarantine record {} is corrupt: {e}", path.display()))
    }
}

/// Opens `name` in `dir` for reading only if it is a regular file. The type is read from an
/// `O_PATH` descriptor first, so a FIFO or device is never opened; the read open is
/// non-blocking (harmless for a regular file) and must reach the very file that was checked.
fn open_regular(dir: &OwnedFd, name: &str, path: &str) -> Result<(OwnedFd, Stat), String> {
    let how = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
    let probe = openat2(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        how,
    )
    .map_err(|e| symlink_or(e, "opening", path))?;
    let checked = fstat(&probe).map_err(|e| io_err("reading", path, e))?;
    refuse_irregular(path, &checked)?;
    let fd = openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        how,
    )
    .map_err(|e| symlink_or(e, "opening", path))?;
    let st = fstat(&fd).map_err(|e| io_err("reading", path, e))?;
    refuse_irregular(path, &st)?;
    if FileId::of_stat(&st) != FileId::of_stat(&checked) {
        return Err(format!(
            "{path} was replaced while being opened; left in place"
        ));
    }
    Ok((fd, st))
}

fn refuse_irregular(path: &str, st: &Stat) -> Result<(), String> {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => return Ok(()),
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Unknown => "of an unknown type",
    };
    Err(format!(
        "refusing {path:?}: not a regular file but {kind}; only regular files are quarantined"
    ))
}

fn symlink_or(e: rustix::io::Errno, what: &str, path: &str) -> String {
    if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::XDEV {
        format!("refusing {path:?}: a symlink is on the path")
    } else {
        io_err(what, path, e)
    }
}

/// Copies `src` into a new file `dst` (mode `mode`), fsynced; returns the SHA-256 hex.
fn copy_hashing(mut src: File, dst: &Path, mode: u32) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dst)?;
    let sha = copy_into(&mut src, &mut out)?;
    out.sync_all()?;
    Ok(sha)
}

fn copy_into(src: &mut File, dst: &mut File) -> std::io::Result<String> {
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
    }
    Ok(hex::encode(ctx.finish()))
}

#[cfg(test)]
mod tests;
