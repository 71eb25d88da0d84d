//! Standard streams at exec: what fd 0, 1 and 2 of a new process are (file, pipe, tty, socket),
//! and for an internet socket its peer. The eBPF source reads them in the kernel (see
//! process.bpf.c); the connector and poll sources read /proc/PID/fd and the process's own
//! /proc/PID/net/{tcp,tcp6,udp,udp6} (its network namespace's sockets) here.

use crate::sys::procfs::Proc;
use cordon_proto::Stdio;
use cordon_proto::stdio::Kind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;

/// Character devices that are terminals: ttys (4), /dev/tty and the console (5), ptys
/// (136 to 143).
fn is_tty_major(major: u32) -> bool {
    major == 4 || major == 5 || (136..=143).contains(&major)
}

/// The name Cordon uses for an address family.
pub fn family_name(family: u16) -> String {
    match family {
        AF_UNIX => "unix".into(),
        AF_INET => "inet".into(),
        AF_INET6 => "inet6".into(),
        n => n.to_string(),
    }
}

fn protocol_name(protocol: u16) -> &'static str {
    match protocol {
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        _ => "",
    }
}

/// One stream as the kernel described it (the eBPF record's fields; port and address in
/// network order).
pub struct KernelStdio {
    pub kind: u32,
    pub family: u16,
    pub protocol: u16,
    pub inode: u64,
    pub dport: u16,
    pub daddr: [u8; 16],
}

impl KernelStdio {
    pub fn into_stdio(self) -> Stdio {
        let kind = Kind::try_from(self.kind as i32).unwrap_or(Kind::Other);
        let mut s = Stdio {
            kind: kind as i32,
            ..Default::default()
        };
        if matches!(kind, Kind::Pipe | Kind::Socket) {
            s.inode = self.inode;
        }
        if kind != Kind::Socket {
            return s;
        }
        s.family = family_name(self.family);
        let ip = match self.family {
            AF_INET => {
                let [a, b, c, d, ..] = self.daddr;
                Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(self.daddr))),
            _ => None,
        };
        if let Some(ip) = ip {
            s.protocol = protocol_name(self.protocol).into();
            let port = u16::from_be(self.dport);
            if port != 0 {
                s.peer = SocketAddr::new(ip, port).to_string();
            }
        }
        s
    }
}

/// fd 0, 1 and 2 of `pid`, from /proc. None if the process is gone.
pub fn from_proc(proc: &Proc, pid: u32) -> Option<[Stdio; 3]> {
    let dir = proc.root().join(pid.to_string());
    if !dir.join("fd").exists() {
        return None;
    }
    let mut out: [Stdio; 3] = Default::default();
    for fd in 0..3 {
        let Ok(meta) = std::fs::metadata(dir.join("fd").join(fd.to_string())) else {
            out[fd].kind = Kind::None as i32;
            continue;
        };
        let ft = meta.file_type();
        let kind = if ft.is_file() {
            Kind::File
        } else if ft.is_fifo() {
            Kind::Pipe
        } else if ft.is_socket() {
            Kind::Socket
        } else if ft.is_char_device() && is_tty_major(rustix::fs::major(meta.rdev())) {
            Kind::Tty
        } else {
            Kind::Other
        };
        let mut s = Stdio {
            kind: kind as i32,
            ..Default::default()
        };
        if matches!(kind, Kind::Pipe | Kind::Socket) {
            s.inode = meta.ino();
        }
        // stdout and stderr are often the same socket: its tables are read once.
        if let Some(same) = out[..fd]
            .iter()
            .find(|o| kind == Kind::Socket && o.kind == s.kind && o.inode == s.inode)
        {
            s = same.clone();
        } else if kind == Kind::Socket {
            fill_socket(proc, pid, &mut s);
        }
        out[fd] = s;
    }
    Some(out)
}

/// Family, protocol and peer of socket `s.inode`, from the socket tables of `pid`'s network
/// namespace; "unix" when it is in none of them but in the unix table.
pub fn fill_socket(proc: &Proc, pid: u32, s: &mut Stdio) {
    let net = proc.root().join(pid.to_string()).join("net");
    for (file, family, protocol) in [
        ("tcp", "inet", "tcp"),
        ("tcp6", "inet6", "tcp"),
        ("udp", "inet", "udp"),
        ("udp6", "inet6", "udp"),
    ] {
        let Ok(text) = std::fs::read_to_string(net.join(file)) else {
            continue;
        };
        if let Some(peer) = find_peer(&text, s.inode) {
            s.family = family.into();
            s.protocol = protocol.into();
            s.peer = peer.map(|p| p.to_string()).unwrap_or_default();
            return;
        }
    }
    let unix = std::fs::read_to_string(net.join("unix")).unwrap_or_default();
    let ino = s.inode.to_string();
    if unix
        .lines()
        .any(|l| l.split_whitespace().nth(6) == Some(ino.as_str()))
    {
        s.family = "unix".into();
    }
}

/// The row of socket `inode` in a /proc/net/{tcp,tcp6,udp,udp6} table: Some(peer), the peer
/// None when the socket is not connected (listening, or unconnected UDP).
fn find_peer(table: &str, inode: u64) -> Option<Option<SocketAddr>> {
    let inode = inode.to_string();
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(9) != Some(&inode.as_str()) {
            return None;
        }
        // A remote port of 0 means no peer.
        Some(parse_addr(cols.get(2)?).filter(|a| a.port() != 0))
    })
}

/// "0100007F:115C" (IPv4) or 32 hex digits and a port (IPv6): the address in the kernel's
/// byte order, four bytes to a word, printed as host-order words.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for word in 0..addr.len() / 8 {
        let w = u32::from_str_radix(addr.get(word * 8..word * 8 + 8)?, 16).ok()?;
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        16 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A connected internet socket: what a reverse shell's stream is.
pub fn is_inet_peer(s: &Stdio) -> bool {
    s.kind == Kind::Socket as i32 && s.family.starts_with("inet") && !s.peer.is_empty()
}

/// Shells and script interpreters, by the executable's file name: the programs whose stdio on a
/// socket is a remote shell.
pub fn is_shell_or_interpreter(exe: &str) -> bool {
    let name = exe.rsplit('/').next().unwrap_or(exe);
    const NAMES: [&str; 13] = [
        "sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "ash", "busybox",
        "perl", "lua",
    ];
    const PREFIXES: [&str; 6] = ["python", "perl5", "ruby", "php", "node", "lua5"];
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_rows_give_the_peer() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n\
   1: 0200000A:D2F0 0200000A:115C 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1\n";
        assert_eq!(find_peer(tcp, 111), Some(None), "listening: no peer");
        assert_eq!(
            find_peer(tcp, 222),
            Some(Some("10.0.0.2:4444".parse().unwrap()))
        );
        assert_eq!(find_peer(tcp, 333), None);
        let v6 = parse_addr("000080FE00000000FF005450B6AD1DFE:115C").unwrap();
        assert_eq!(v6, "[fe80::5054:ff:fe1d:adb6]:4444".parse().unwrap());
        let mapped = parse_addr("0000000000000000FFFF00000200000A:115C").unwrap();
        assert_eq!(mapped, "10.0.0.2:4444".parse().unwrap());
    }

    #[test]
    fn kernel_streams_decode() {
        let s = KernelStdio {
            kind: Kind::Socket as u32,
            family: AF_INET,
            protocol: IPPROTO_TCP,
            inode: 9,
            dport: 4444u16.to_be(),
            daddr: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        }
        .into_stdio();
        assert_eq!(
            (
                s.family.as_str(),
                s.protocol.as_str(),
                s.peer.as_str(),
                s.inode
            ),
            ("inet", "tcp", "10.0.0.2:4444", 9)
        );
        assert!(is_inet_peer(&s));
        assert!(is_shell_or_interpreter("/usr/bin/python3.11"));
        assert!(!is_shell_or_interpreter("/usr/bin/cat"));
    }

    #[test]
    fn this_process_reads_its_own_streams() {
        let me = std::process::id();
        let streams = from_proc(&Proc::default(), me).unwrap();
        assert!(streams.iter().all(|s| s.kind != Kind::Unspecified as i32));
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        use std::os::fd::AsRawFd;
        let ino = std::fs::metadata(format!("/proc/self/fd/{}", client.as_raw_fd()))
            .unwrap()
            .ino();
        let mut s = Stdio {
            kind: Kind::Socket as i32,
            inode: ino,
            ..Default::default()
        };
        fill_socket(&Proc::default(), me, &mut s);
        assert_eq!(s.peer, addr.to_string());
        assert!(is_inet_peer(&s));
    }
}
