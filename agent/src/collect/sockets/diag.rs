//! The kernel's table of TCP and UDP sockets, asked over NETLINK_SOCK_DIAG (inet_diag dump
//! requests, as `ss` does) with netlink-packet-sock-diag for the messages. A netlink socket
//! sees the network namespace it was made in, so it is made in the host's: an agent run
//! with `--netns` lives in another one, and then the socket is made on a short-lived thread
//! that enters the one the agent started in first. A dump is bounded: a receive timeout,
//! and at most [`MAX_MESSAGES`] messages.

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use nix::sched::{CloneFlags, setns};
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::time::Duration;

/// The longest the kernel may take to send the next part of a dump.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// The most messages (sockets) one dump reads.
pub const MAX_MESSAGES: usize = 1_000_000;

/// The receive buffer: large enough for the kernel's biggest dump batch (32 KiB).
const BUFFER: usize = 64 * 1024;

/// One socket as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sock {
    pub protocol: &'static str,
    pub state: &'static str,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub inode: u32,
    pub uid: u32,
}

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("entering the network namespace the agent started in: {0}")]
    Namespace(nix::Error),
    #[error("opening a NETLINK_SOCK_DIAG socket: {0}")]
    Open(std::io::Error),
    #[error("setting the netlink receive timeout: {0}")]
    Timeout(std::io::Error),
    #[error("sending the {0} dump request: {1}")]
    Send(&'static str, std::io::Error),
    #[error("receiving the {0} dump: {1}")]
    Recv(&'static str, std::io::Error),
    #[error("decoding the {0} dump: {1}")]
    Decode(&'static str, String),
    #[error("the kernel refused the {0} dump: {1}")]
    Kernel(&'static str, String),
    #[error("the {0} dump passed {MAX_MESSAGES} messages")]
    TooLong(&'static str),
}

/// The four dumps: (family, protocol, name).
pub const DUMPS: [(u8, u8, &str); 4] = [
    (AF_INET, IPPROTO_TCP, "tcp"),
    (AF_INET6, IPPROTO_TCP, "tcp6"),
    (AF_INET, IPPROTO_UDP, "udp"),
    (AF_INET6, IPPROTO_UDP, "udp6"),
];

/// The name of a socket state (include/net/tcp_states.h); an unconnected UDP socket is
/// in state close, which `ss` shows as unconnected.
pub fn state_name(protocol: u8, state: u8) -> &'static str {
    match (protocol, state) {
        (IPPROTO_UDP, 7) => "unconnected",
        (_, 1) => "established",
        (_, 2) => "syn_sent",
        (_, 3) => "syn_recv",
        (_, 4) => "fin_wait1",
        (_, 5) => "fin_wait2",
        (_, 6) => "time_wait",
        (_, 7) => "close",
        (_, 8) => "close_wait",
        (_, 9) => "last_ack",
        (_, 10) => "listen",
        (_, 11) => "closing",
        (_, 12) => "new_syn_recv",
        _ => "unknown",
    }
}

/// A connected NETLINK_SOCK_DIAG socket with a receive timeout.
fn open() -> Result<Socket, DiagError> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(DiagError::Open)?;
    socket.bind_auto().map_err(DiagError::Open)?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(DiagError::Open)?;
    rustix::net::sockopt::set_socket_timeout(
        &socket,
        rustix::net::sockopt::Timeout::Recv,
        Some(RECV_TIMEOUT),
    )
    .map_err(|e| DiagError::Timeout(e.into()))?;
    Ok(socket)
}

/// A socket as [`open`] makes it, in the network namespace the agent started in (the
/// host's; see [`crate::sys::netns::started_in`]), else in the caller's own.
pub fn open_in_host() -> Result<Socket, DiagError> {
    let Some(host) = crate::sys::netns::started_in() else {
        return open();
    };
    // setns moves only the calling thread: a thread of its own, ended once the socket is made.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(host, CloneFlags::CLONE_NEWNET).map_err(DiagError::Namespace)?;
                open()
            })
            .join()
            .unwrap_or_else(|_| Err(DiagError::Open(std::io::Error::other("thread panicked"))))
    })
}

fn request(family: u8, protocol: u8) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let socket_id = if family == AF_INET6 {
        SocketId::new_v6()
    } else {
        SocketId::new_v4()
    };
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id,
        })
        .into(),
    );
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// Calls `visit` for every socket of one dump of [`DUMPS`] over `socket` (from
/// [`open_in_host`]), until it says stop.
pub fn dump(
    socket: &Socket,
    (family, protocol, name): (u8, u8, &'static str),
    mut visit: impl FnMut(Sock) -> ControlFlow<()>,
) -> Result<(), DiagError> {
    socket
        .send(&request(family, protocol), 0)
        .map_err(|e| DiagError::Send(name, e))?;
    let mut buf = vec![0u8; BUFFER];
    let mut seen = 0usize;
    for _ in 0..MAX_MESSAGES {
        let size = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| DiagError::Recv(name, e))?;
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&buf[offset..size])
                .map_err(|e| DiagError::Decode(name, e.to_string()))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    seen += 1;
                    if seen > MAX_MESSAGES {
                        return Err(DiagError::TooLong(name));
                    }
                    let id = &r.header.socket_id;
                    let sock = Sock {
                        protocol: if protocol == IPPROTO_TCP {
                            "tcp"
                        } else {
                            "udp"
                        },
                        state: state_name(protocol, r.header.state),
                        local: (id.source_address, id.source_port),
                        remote: (id.destination_address, id.destination_port),
                        inode: r.header.inode,
                        uid: r.header.uid,
                    };
                    if visit(sock).is_break() {
                        return Ok(());
                    }
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => return Err(DiagError::Kernel(name, e.to_string())),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length.next_multiple_of(4);
        }
    }
    Err(DiagError::TooLong(name))
}
