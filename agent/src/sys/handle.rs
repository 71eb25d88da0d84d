//! File handles (`open_by_handle_at`) and filesystem ids (`statfs`), the two calls the
//! fanotify file sensor needs that neither nix nor rustix offers safely (rustix keeps the
//! fsid private; nobody wraps `open_by_handle_at`). This is the agent's only unsafe code:
//! two system calls on buffers this module sizes itself.
#![allow(unsafe_code)]

use nix::libc;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The id the kernel gives the filesystem `fd` is on, as fanotify reports it.
pub fn fsid(fd: BorrowedFd<'_>) -> std::io::Result<[i32; 2]> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `st` is a writable statfs-sized buffer; `fd` is open for the call's length.
    let rc = unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstatfs succeeded, so it filled the struct; fsid_t is two C ints.
    let st = unsafe { st.assume_init() };
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(st.f_fsid) })
}

/// Opens (`O_PATH`) the object `handle` names on the filesystem `mount` is on.
pub fn open(mount: BorrowedFd<'_>, handle_type: i32, handle: &[u8]) -> std::io::Result<OwnedFd> {
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }, built in
    // u32 words so it is aligned as the kernel expects.
    let mut bytes = Vec::with_capacity(8 + handle.len() + 3);
    bytes.extend((handle.len() as u32).to_ne_bytes());
    bytes.extend(handle_type.to_ne_bytes());
    bytes.extend(handle);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    let buf: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // SAFETY: `buf` holds a whole file_handle of `handle.len()` bytes and outlives the call;
    // the kernel only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            buf.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the call returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_fsid_of_one_filesystem_is_stable_and_a_bogus_handle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = std::fs::File::open(dir.path()).unwrap();
        let b = std::fs::File::open(std::env::temp_dir()).unwrap();
        assert_eq!(fsid(a.as_fd()).unwrap(), fsid(b.as_fd()).unwrap());
        assert!(open(a.as_fd(), 1, &[0xff; 8]).is_err());
    }
}
