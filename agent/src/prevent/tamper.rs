//! Whether a process blocked in an open of a protected file asked for write. Fanotify's
//! permission event does not say (its descriptor is the agent's own, read-only), so while the
//! opener waits for the verdict its system call is read from `/proc/TID/syscall` (number and
//! arguments): `open`, `openat`, `creat`, `open_by_handle_at` carry their flags as an
//! argument; `openat2` points to a `struct open_how` whose first field is the flags, read from
//! `/proc/TID/mem`. Anything else (an exec of the agent's binary, a call not recognised) is
//! not a write. The kernel writes this text; it is parsed defensively all the same.

use nix::libc;
use std::os::unix::fs::FileExt;

/// What the opener asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Write access or truncation.
    Write,
    /// Read only, or a call that opens nothing for write.
    Read,
    /// The call could not be read (the thread is gone, or not in a system call).
    Unknown,
}

/// Where an open call keeps its flags.
enum Flags {
    Arg(usize),
    /// A pointer to `struct open_how` (its first u64 is the flags).
    OpenHow(usize),
    /// `creat`: always a write.
    Creat,
}

#[cfg(target_arch = "x86_64")]
fn flags_of(nr: i64) -> Option<Flags> {
    match nr {
        2 => Some(Flags::Arg(1)),
        85 => Some(Flags::Creat),
        257 => Some(Flags::Arg(2)),
        304 => Some(Flags::Arg(2)),
        437 => Some(Flags::OpenHow(2)),
        _ => None,
    }
}

#[cfg(target_arch = "aarch64")]
fn flags_of(nr: i64) -> Option<Flags> {
    match nr {
        56 => Some(Flags::Arg(2)),
        265 => Some(Flags::Arg(2)),
        437 => Some(Flags::OpenHow(2)),
        _ => None,
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn flags_of(_nr: i64) -> Option<Flags> {
    None
}

/// Whether open flags ask to write or truncate.
fn writes(flags: u64) -> bool {
    let flags = flags as libc::c_int;
    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0
}

/// What the text of `/proc/TID/syscall` says the call asks for; `read_how` reads the flags of
/// an `open_how` at an address in the caller's memory.
pub fn access_of(syscall: &str, read_how: impl Fn(u64) -> Option<u64>) -> Access {
    let mut fields = syscall.split_ascii_whitespace();
    let Some(nr) = fields.next().and_then(|n| n.parse::<i64>().ok()) else {
        return Access::Unknown;
    };
    let args: Vec<u64> = fields
        .take(6)
        .map_while(|a| u64::from_str_radix(a.strip_prefix("0x")?, 16).ok())
        .collect();
    let arg = |i: usize| args.get(i).copied();
    let flags = match flags_of(nr) {
        None if nr < 0 => return Access::Unknown,
        None => return Access::Read,
        Some(Flags::Creat) => return Access::Write,
        Some(Flags::Arg(i)) => arg(i),
        Some(Flags::OpenHow(i)) => arg(i).and_then(&read_how),
    };
    match flags {
        Some(f) if writes(f) => Access::Write,
        Some(_) => Access::Read,
        None => Access::Unknown,
    }
}

/// How long the permission thread waits for a system call to be read.
const READ_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// What thread `tid`, blocked in an open, asked for, read on a thread of its own: the kernel
/// takes the opener's `cred_guard_mutex` to show its system call (`lock_trace`), and an exec
/// holds that mutex for part of its work, which may include opening its program's
/// interpreter (not on 6.18, measured: `prevent::tests` runs one without waiting). An ELF naming
/// a protected file as its interpreter must never stall the permission thread on a lock
/// held by a process waiting for its answer, and with it every exec on the host. Past the
/// wait the open is allowed (an exec writes nothing); the reader ends once the exec goes on.
pub fn access_bounded(tid: u32) -> Access {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("prevent-syscall".into())
        .spawn(move || {
            let _ = tx.send(access(tid));
        });
    match spawned {
        Ok(_) => rx.recv_timeout(READ_WAIT).unwrap_or(Access::Unknown),
        Err(_) => Access::Unknown,
    }
}

/// What thread `tid`, blocked in an open, asked for.
pub fn access(tid: u32) -> Access {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{tid}/syscall")) else {
        return Access::Unknown;
    };
    access_of(&text, |addr| {
        let mem = std::fs::File::open(format!("/proc/{tid}/mem")).ok()?;
        let mut b = [0u8; 8];
        mem.read_exact_at(&mut b, addr).ok()?;
        Some(u64::from_ne_bytes(b))
    })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn opens_for_write_or_truncation_are_told_from_reads() {
        let none = |_| None;
        // openat(AT_FDCWD, path, O_WRONLY|O_CREAT|O_TRUNC, 0666)
        let w = "257 0xffffff9c 0x7ffd1000 0x241 0x1b6 0x0 0x0 0x7ffd0ff8 0x7f00aa";
        assert_eq!(access_of(w, none), Access::Write);
        let r = "257 0xffffff9c 0x7ffd1000 0x80000 0x0 0x0 0x0 0x7ffd0ff8 0x7f00aa";
        assert_eq!(access_of(r, none), Access::Read);
        assert_eq!(
            access_of("2 0x5000 0x2 0x0 0x0 0x0 0x0 0x1 0x2", none),
            Access::Write
        );
        assert_eq!(
            access_of("85 0x5000 0x1ff 0 0 0 0 0x1 0x2", none),
            Access::Write
        );
        // openat2: the flags are read from the caller's open_how.
        let how = "437 0xffffff9c 0x7ffd1000 0x7ffd2000 0x18 0x0 0x0 0x1 0x2";
        assert_eq!(
            access_of(how, |a| (a == 0x7ffd2000).then_some(1)),
            Access::Write
        );
        assert_eq!(access_of(how, |_| Some(0)), Access::Read);
        assert_eq!(access_of(how, none), Access::Unknown);
        // execve of the binary opens nothing for write.
        assert_eq!(
            access_of("59 0x1 0x2 0x3 0x0 0x0 0x0 0x1 0x2", none),
            Access::Read
        );
        for odd in ["running", "-1 0x7ffd 0x7f00", "", "257 zz", "257 0x1"] {
            assert_eq!(access_of(odd, none), Access::Unknown, "{odd:?}");
        }
    }
}
