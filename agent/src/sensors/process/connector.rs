//! The process-connector source (first fallback): the kernel's netlink PROC_EVENTS say which
//! pid forked, exec'd or exited; stage one then reads the rest from /proc at once. Needs
//! CAP_NET_ADMIN and exists only in the initial network namespace, so it is opened before the
//! agent enters another one. A socket overflow loses records; that is reported.

use super::clock::boot_ns;
use super::{Raw, RawExec, Sink, Source};
use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, bind, netlink, recv, send,
    socket_with, sockopt,
};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR: usize = 16;
const CN_MSG: usize = 20;

const PROC_EVENT_FORK: u32 = 0x1;
const PROC_EVENT_EXEC: u32 = 0x2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

pub struct Connector {
    sock: OwnedFd,
}

impl Connector {
    pub fn open() -> Result<Self, String> {
        fn err(what: &str) -> impl Fn(rustix::io::Errno) -> String + '_ {
            move |e| format!("{what}: {e}")
        }
        let sock = socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::CONNECTOR),
        )
        .map_err(err("netlink connector socket"))?;
        bind(&sock, &netlink::SocketAddrNetlink::new(0, CN_IDX_PROC))
            .map_err(err("joining the proc events group"))?;
        // A burst of forks must not overflow the socket; root may exceed rmem_max.
        let _ = sockopt::set_socket_recv_buffer_size_force(&sock, 8 << 20)
            .or_else(|_| sockopt::set_socket_recv_buffer_size(&sock, 8 << 20));
        sockopt::set_socket_timeout(
            &sock,
            sockopt::Timeout::Recv,
            Some(Duration::from_millis(200)),
        )
        .map_err(err("socket timeout"))?;
        send(&sock, &listen_message(), SendFlags::empty())
            .map_err(err("subscribing to proc events (needs CAP_NET_ADMIN)"))?;
        Ok(Self { sock })
    }
}

/// nlmsghdr + cn_msg + PROC_CN_MCAST_LISTEN.
fn listen_message() -> Vec<u8> {
    let total = NLMSG_HDR + CN_MSG + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&std::process::id().to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes one proc_event (after the netlink and connector headers).
fn parse(b: &[u8]) -> Option<Raw> {
    let ev = NLMSG_HDR + CN_MSG;
    let what = u32_at(b, ev)?;
    // what, cpu, timestamp_ns: the union starts 16 bytes in.
    let data = ev + 16;
    match what {
        PROC_EVENT_FORK => {
            let (ptgid, cpid, ctgid) = (
                u32_at(b, data + 4)?,
                u32_at(b, data + 8)?,
                u32_at(b, data + 12)?,
            );
            // A new thread is not a new process.
            (cpid == ctgid).then_some(Raw::Fork {
                pid: ctgid,
                ppid: ptgid,
                start_ns: None,
            })
        }
        PROC_EVENT_EXEC => Some(Raw::Exec(Box::new(RawExec {
            pid: u32_at(b, data + 4)?,
            ..Default::default()
        }))),
        PROC_EVENT_EXIT => {
            let (pid, tgid) = (u32_at(b, data)?, u32_at(b, data + 4)?);
            (pid == tgid).then_some(Raw::Exit {
                pid: tgid,
                start_ns: None,
                status: Some(u32_at(b, data + 8)? as i32),
                time_ns: boot_ns(),
            })
        }
        _ => None,
    }
}

impl Source for Connector {
    fn name(&self) -> &'static str {
        "connector"
    }

    fn run(self: Box<Self>, out: &mut dyn Sink, stop: &AtomicBool) {
        let mut buf = vec![0u8; 64 * 1024];
        // The first message of a burst is waited for (up to the socket timeout); the rest
        // of what is queued is taken without waiting, then passed on at once.
        let mut flags = RecvFlags::empty();
        while !stop.load(Ordering::Relaxed) {
            match recv(&self.sock, &mut buf[..], flags) {
                Ok((n, _)) => {
                    if let Some(raw) = parse(&buf[..n]) {
                        out.push(raw);
                    }
                    flags = RecvFlags::DONTWAIT;
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                    out.flush();
                    flags = RecvFlags::empty();
                }
                Err(rustix::io::Errno::NOBUFS) => out.push(Raw::Lost {
                    count: 0,
                    why: "the process connector's socket overflowed: an unknown number of \
                          process records were lost"
                        .into(),
                }),
                Err(e) => {
                    tracing::error!(error = %e, "process connector stopped");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, words: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; NLMSG_HDR + CN_MSG];
        b.extend_from_slice(&what.to_ne_bytes());
        b.extend_from_slice(&[0u8; 12]);
        for w in words {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        b
    }

    #[test]
    fn proc_events_decode_and_threads_are_not_processes() {
        let Some(Raw::Exec(e)) = parse(&message(PROC_EVENT_EXEC, &[10, 10])) else {
            panic!("not an exec")
        };
        assert_eq!(e.pid, 10);
        assert!(matches!(
            parse(&message(PROC_EVENT_FORK, &[1, 1, 20, 20])),
            Some(Raw::Fork {
                pid: 20,
                ppid: 1,
                ..
            })
        ));
        assert!(parse(&message(PROC_EVENT_FORK, &[1, 1, 21, 20])).is_none());
        assert!(matches!(
            parse(&message(PROC_EVENT_EXIT, &[30, 30, 9, 17, 1, 1])),
            Some(Raw::Exit {
                pid: 30,
                status: Some(9),
                ..
            })
        ));
        assert!(parse(&message(PROC_EVENT_EXIT, &[31, 30, 0, 17, 1, 1])).is_none());
        assert!(parse(&message(PROC_EVENT_EXEC, &[])).is_none());
        assert_eq!(listen_message().len(), 40);
    }
}
