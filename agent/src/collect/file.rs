//! One file as a collection reports it (path, type, owner, mode, size, mtime, and its
//! SHA-256 where asked), and hashing that cannot be made to hang: the file is opened without
//! following a symlink and without blocking (a FIFO swapped in after the walk looked is not
//! waited on), must still be a regular file once open, and is reported as changed if its
//! size, mtime or ctime moved while it was read.

use super::{Host, os_value, row};
use ring::digest::{Context, SHA256};
use serde_json::{Value, json};
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The largest file a collection hashes by default.
pub const MAX_HASH: u64 = 256 << 20;

/// A file's type as a row names it.
pub fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    match () {
        _ if t.is_file() => "file",
        _ if t.is_dir() => "dir",
        _ if t.is_symlink() => "symlink",
        _ if t.is_fifo() => "fifo",
        _ if t.is_socket() => "socket",
        _ if t.is_char_device() => "char_device",
        _ if t.is_block_device() => "block_device",
        _ => "other",
    }
}

/// The row of `path` (under `host`'s root) with `meta`; with `hash`, a regular file's SHA-256
/// (or `hash_error`, why there is none).
pub fn file_row(host: &Host, path: &Path, meta: &Metadata, hash: bool) -> Value {
    let hashed = (hash && meta.file_type().is_file()).then(|| sha256(path, MAX_HASH));
    let (sha, error) = match hashed {
        Some(Ok(h)) => (json!(h), Value::Null),
        Some(Err(e)) => (Value::Null, json!(e)),
        None => (Value::Null, Value::Null),
    };
    row([
        ("path", os_value(host.host_path(path).as_os_str())),
        ("type", json!(kind(meta))),
        ("size", json!(meta.len())),
        ("mode", json!(format!("{:04o}", meta.mode() & 0o7777))),
        ("uid", json!(meta.uid())),
        ("gid", json!(meta.gid())),
        ("mtime", json!(meta.mtime())),
        ("sha256", sha),
        ("hash_error", error),
    ])
}

/// The hex SHA-256 of the regular file at `path`, up to `max` bytes; else why not: "gone",
/// "not a regular file", "larger than N bytes", "unreadable", "changed while read".
pub fn sha256(path: &Path, max: u64) -> Result<String, String> {
    sha256_opened(path, max, nix::libc::O_NOFOLLOW)
}

/// As [`sha256`], but through a link: for /proc/PID/exe, which names the executable.
pub fn sha256_through(link: &Path, max: u64) -> Result<String, String> {
    sha256_opened(link, max, 0)
}

/// Opens `path` for reading without following a symlink and without blocking; an error of
/// kind `InvalidInput` if it is not a regular file.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    open_with(path, nix::libc::O_NOFOLLOW).map(|(f, _)| f)
}

/// Opens `path` with `flags` and `O_NONBLOCK`; the file and its metadata, if it is regular.
fn open_with(path: &Path, flags: i32) -> std::io::Result<(File, Metadata)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        let not = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(not);
    }
    Ok((file, meta))
}

fn sha256_opened(path: &Path, max: u64, flags: i32) -> Result<String, String> {
    let (file, before) = open_with(path, flags).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "gone".to_string(),
        std::io::ErrorKind::InvalidInput => "not a regular file".to_string(),
        _ => "unreadable".to_string(),
    })?;
    if before.len() > max {
        return Err(format!("larger than {max} bytes"));
    }
    let digest = digest(file, &before, max)?;
    Ok(digest)
}

/// Reads `file` to its end (at most `max` bytes) and hashes it, checking it did not change.
fn digest(mut file: File, before: &Metadata, max: u64) -> Result<String, String> {
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                read += n as u64;
                if read > max {
                    return Err(format!("larger than {max} bytes"));
                }
                ctx.update(&buf[..n]);
            }
            Err(_) => return Err("unreadable".into()),
        }
    }
    let after = file.metadata().map_err(|_| "unreadable".to_string())?;
    let moved = |m: &Metadata| {
        (
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    };
    if moved(before) != moved(&after) || read != after.len() {
        return Err("changed while read".into());
    }
    Ok(hex::encode(ctx.finish()))
}
