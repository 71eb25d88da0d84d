//! The eBPF source: loads agent/bpf/process.bpf.o (built from process.bpf.c by
//! scripts/build-bpf.sh, committed, and embedded here), attaches its BTF-enabled tracepoints
//! (no tracefs needed), and reads records from the ring buffer as the kernel fills it. Records
//! that did not fit are counted per kind in a map, and reported.

use super::stdio::KernelStdio;
use super::{Raw, RawExec, Sink, Source};
use crate::sensors::bpf_ring::{self, Drops, Ring, program};
use crate::sys::procfs::split_args;
use aya::programs::BtfTracePoint;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("CARGO_MANIFEST_DIR"), "/bpf/process.bpf.o"));

const PROGRAMS: [(&str, &str); 3] = [
    ("cordon_exec", "sched_process_exec"),
    ("cordon_fork", "sched_process_fork"),
    ("cordon_exit", "sched_process_exit"),
];

/// How far before the start of a drain its mark is put.
const MARK_MARGIN_NS: u64 = 1_000_000;

pub struct Ebpf {
    // Owns the loaded programs and their links: dropping it detaches them.
    _bpf: aya::Ebpf,
    ring: Ring,
    drops: Drops,
}

impl Ebpf {
    pub fn open() -> Result<Self, String> {
        let (mut bpf, btf) = bpf_ring::load(OBJECT)?;
        for (name, tracepoint) in PROGRAMS {
            let prog: &mut BtfTracePoint = program(&mut bpf, name)?;
            prog.load(tracepoint, &btf)
                .map_err(|e| format!("loading {name}: {e}"))?;
            prog.attach()
                .map_err(|e| format!("attaching {name} to {tracepoint}: {e}"))?;
        }
        let ring = Ring::take(&mut bpf, "events")?;
        let drops = Drops::take(&mut bpf, "drops")?;
        Ok(Self {
            _bpf: bpf,
            ring,
            drops,
        })
    }
}

/// Records dropped so far, per kind, summed over CPUs.
fn dropped(drops: &Drops) -> [u64; 4] {
    [0, 1, 2, 3].map(|kind| drops.count(kind))
}

impl Source for Ebpf {
    fn name(&self) -> &'static str {
        "ebpf"
    }

    fn run(self: Box<Self>, out: &mut dyn Sink, stop: &AtomicBool) {
        let Ebpf {
            _bpf: bpf,
            mut ring,
            drops,
        } = *self;
        let mut reported = dropped(&drops);
        let mut checked = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = ring.wait(Duration::from_millis(200)) {
                tracing::error!(error = %e, "eBPF ring buffer poll failed");
                return;
            }
            // Everything the kernel stamped before this is in the ring now (less a margin
            // for a record being written on another CPU as the drain starts).
            let drained_to = super::clock::boot_ns().saturating_sub(MARK_MARGIN_NS);
            let delivered = ring.drain(|item| match parse(item) {
                Some(raw) => out.push(raw),
                None => out.push(Raw::Lost {
                    count: 1,
                    why: format!("malformed eBPF record of {} bytes", item.len()),
                }),
            });
            out.push(Raw::Mark {
                boot_ns: drained_to,
            });
            if checked.elapsed() >= Duration::from_secs(1) {
                checked = Instant::now();
                let now = dropped(&drops);
                for (kind, name) in [
                    (KIND_EXEC, "exec"),
                    (KIND_FORK, "fork"),
                    (KIND_EXIT, "exit"),
                ] {
                    let k = kind as usize;
                    let n = now[k].saturating_sub(reported[k]);
                    if n > 0 {
                        out.push(Raw::Lost {
                            count: n,
                            why: format!(
                                "the eBPF ring buffer was full: {n} {name} records dropped"
                            ),
                        });
                    }
                }
                reported = now;
            }
            out.flush();
            if delivered {
                // Let a burst gather: one wake-up per window instead of one per record
                // (the kernel wakes a reader only once it has caught up).
                std::thread::sleep(GATHER);
            }
        }
        drop(bpf);
    }
}

/// How long records gather in the ring buffer after a burst was read: at most this much
/// latency added, and at most 1/GATHER wake-ups a second however busy the host is.
const GATHER: Duration = Duration::from_millis(4);

// The record layout of process.bpf.c.
const KIND_EXEC: u32 = 1;
const KIND_FORK: u32 = 2;
const KIND_EXIT: u32 = 3;
const FLAG_ARGS_TRUNCATED: u32 = 1;
const FLAG_ARGS_UNREAD: u32 = 2;
const FLAG_FILENAME_UNREAD: u32 = 4;
const FLAG_CWD_INCOMPLETE: u32 = 8;
const FLAG_EXE_INCOMPLETE: u32 = 16;
const COMM: usize = 80;
const TTY: usize = 96;
const FILENAME: usize = 128;
const CWD: usize = 384;
const EXE: usize = 1408;
const STDIO: usize = 2432;
const STDIO_SIZE: usize = 40;
const ARGS: usize = STDIO + 6 * STDIO_SIZE;
const PATH_DEPTH: usize = 16;
const NAME_MAX: usize = 64;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A NUL-terminated string in a fixed-size field.
fn cstr(b: &[u8], at: usize, len: usize) -> Option<String> {
    let field = b.get(at..at + len)?;
    let end = field.iter().position(|c| *c == 0).unwrap_or(len);
    Some(String::from_utf8_lossy(&field[..end]).into_owned())
}

/// A path the kernel sent as `depth` components, last first; None if it was incomplete.
fn path(b: &[u8], at: usize, depth: u32, complete: bool) -> Option<Option<String>> {
    let depth = depth as usize;
    if depth > PATH_DEPTH {
        return None;
    }
    if !complete {
        return Some(None);
    }
    let mut parts = Vec::with_capacity(depth);
    for i in (0..depth).rev() {
        parts.push(cstr(b, at + i * NAME_MAX, NAME_MAX)?);
    }
    Some(Some(format!("/{}", parts.join("/"))))
}

/// The record's six `struct stdio`: fd 0 to 2 of the process, then of its parent.
fn streams(b: &[u8]) -> Option<[[cordon_proto::Stdio; 3]; 2]> {
    let one = |i: usize| -> Option<cordon_proto::Stdio> {
        let at = STDIO + i * STDIO_SIZE;
        let u16_at = |o: usize| {
            Some(u16::from_le_bytes(
                b.get(at + o..at + o + 2)?.try_into().ok()?,
            ))
        };
        Some(
            KernelStdio {
                kind: u32_at(b, at)?,
                family: u16_at(4)?,
                protocol: u16_at(6)?,
                inode: u64_at(b, at + 8)?,
                // In network order: the bytes as they lie.
                dport: u16::from_ne_bytes(b.get(at + 16..at + 18)?.try_into().ok()?),
                daddr: b.get(at + 24..at + 40)?.try_into().ok()?,
            }
            .into_stdio(),
        )
    };
    Some([[one(0)?, one(1)?, one(2)?], [one(3)?, one(4)?, one(5)?]])
}

/// Decodes one ring-buffer record.
fn parse(b: &[u8]) -> Option<Raw> {
    let kind = u32_at(b, 0)?;
    let pid = u32_at(b, 4)?;
    let ppid = u32_at(b, 8)?;
    let start_ns = Some(u64_at(b, 48)?);
    match kind {
        KIND_EXEC => {
            let flags = u32_at(b, 32)?;
            let args_len = u32_at(b, 36)? as usize;
            let argv = if flags & FLAG_ARGS_UNREAD != 0 {
                None
            } else {
                Some(split_args(b.get(ARGS..ARGS + args_len)?))
            };
            let filename = cstr(b, FILENAME, 256)?;
            let cwd = path(b, CWD, u32_at(b, 40)?, flags & FLAG_CWD_INCOMPLETE == 0)?;
            let exe = path(b, EXE, u32_at(b, 44)?, flags & FLAG_EXE_INCOMPLETE == 0)?;
            let tty = cstr(b, TTY, 32)?;
            let [stdio, parent_stdio] = streams(b)?;
            Some(Raw::Exec(Box::new(RawExec {
                pid,
                ppid,
                start_ns,
                parent_start_ns: Some(u64_at(b, 56)?),
                filename: (flags & FLAG_FILENAME_UNREAD == 0).then_some(filename),
                argv,
                argv_truncated: flags & FLAG_ARGS_TRUNCATED != 0,
                ids: Some((u32_at(b, 12)?, u32_at(b, 16)?, u32_at(b, 20)?)),
                tty: Some(tty),
                session: Some(u32_at(b, 24)?),
                cgroup_id: Some(u64_at(b, 64)?),
                comm: Some(cstr(b, COMM, 16)?),
                cgroup: None,
                exe,
                cwd,
                stdio: Some(stdio),
                parent_stdio: Some(parent_stdio),
            })))
        }
        KIND_FORK => Some(Raw::Fork {
            pid,
            ppid,
            start_ns,
        }),
        KIND_EXIT => Some(Raw::Exit {
            pid,
            start_ns,
            status: Some(u32_at(b, 28)? as i32),
            time_ns: u64_at(b, 72)?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32, args: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; ARGS + args.len()];
        b[0..4].copy_from_slice(&kind.to_le_bytes());
        b[4..8].copy_from_slice(&42u32.to_le_bytes());
        b[8..12].copy_from_slice(&7u32.to_le_bytes());
        b[28..32].copy_from_slice(&(2i32 << 8).to_le_bytes());
        b[36..40].copy_from_slice(&(args.len() as u32).to_le_bytes());
        // cwd /tmp/x (two components, last first); exe incomplete.
        b[40..44].copy_from_slice(&2u32.to_le_bytes());
        b[32..36].copy_from_slice(&FLAG_EXE_INCOMPLETE.to_le_bytes());
        b[CWD..CWD + 2].copy_from_slice(b"x\0");
        b[CWD + NAME_MAX..CWD + NAME_MAX + 4].copy_from_slice(b"tmp\0");
        b[48..56].copy_from_slice(&5_000u64.to_le_bytes());
        b[FILENAME..FILENAME + 8].copy_from_slice(b"/bin/ls\0");
        b[ARGS..].copy_from_slice(args);
        b
    }

    #[test]
    fn records_decode_and_short_ones_are_refused() {
        let Some(Raw::Exec(e)) = parse(&record(KIND_EXEC, b"ls\0-l\0")) else {
            panic!("not an exec");
        };
        assert_eq!((e.pid, e.ppid, e.start_ns), (42, 7, Some(5_000)));
        assert_eq!(e.filename.as_deref(), Some("/bin/ls"));
        assert_eq!(e.argv.unwrap(), vec!["ls", "-l"]);
        assert_eq!(e.cwd.as_deref(), Some("/tmp/x"));
        assert_eq!(e.exe, None, "an incomplete path is left to /proc");
        let Some(Raw::Exit { status, .. }) = parse(&record(KIND_EXIT, b"")) else {
            panic!("not an exit");
        };
        assert_eq!(status, Some(2 << 8));
        // Fork and exit records end where `comm` would begin.
        assert!(matches!(
            parse(&record(KIND_EXIT, b"")[..COMM]),
            Some(Raw::Exit { pid: 42, .. })
        ));
        assert!(matches!(
            parse(&record(KIND_FORK, b"")[..COMM]),
            Some(Raw::Fork {
                pid: 42,
                ppid: 7,
                ..
            })
        ));
        let mut cut = record(KIND_EXEC, b"ls\0-l\0");
        cut.truncate(ARGS + 2);
        assert!(parse(&cut).is_none(), "args_len beyond the record");
        assert!(parse(&record(9, b"")).is_none());
        assert!(parse(&[1, 0, 0]).is_none());
    }
}
