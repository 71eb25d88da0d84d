//! The network sensor's kernel records, decoded: the byte layout `struct record` of
//! agent/bpf/network.bpf.c (little endian, naturally aligned), checked for length, kind and
//! address family before anything is believed. A record that does not decode is reported as
//! lost, never guessed at.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Bytes before the DNS payload (`offsetof(struct record, payload)`).
pub const HEADER_SIZE: usize = 112;
/// Most DNS payload bytes a record carries.
pub const PAYLOAD_MAX: usize = 512;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;

const FLAG_INITIATED: u32 = 1;
const FLAG_FAILED: u32 = 2;
const FLAG_NO_PROCESS: u32 = 4;

/// What a record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Connect,
    Accept,
    Listen,
    Close,
    DnsQuery,
    DnsAnswer,
}

impl RecordKind {
    /// The kinds by their number in the record (and in the `drops` map).
    pub const ALL: [(u32, RecordKind, &'static str); 6] = [
        (1, RecordKind::Connect, "connect"),
        (2, RecordKind::Accept, "accept"),
        (3, RecordKind::Listen, "listen"),
        (4, RecordKind::Close, "close"),
        (5, RecordKind::DnsQuery, "DNS query"),
        (6, RecordKind::DnsAnswer, "DNS answer"),
    ];

    fn from_u32(n: u32) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(k, ..)| *k == n)
            .map(|(_, kind, _)| *kind)
    }
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct RawNet {
    pub kind: RecordKind,
    /// The process, when the kernel side knew it (pid 0: unknown).
    pub pid: u32,
    pub uid: u32,
    /// Its start time, ns since boot (None: the program could not read it; look it up).
    pub start_ns: Option<u64>,
    pub time_ns: u64,
    pub tcp: bool,
    pub source: (IpAddr, u16),
    pub destination: (IpAddr, u16),
    pub initiated: bool,
    pub failed: bool,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub duration_ns: u64,
    /// The socket's cookie (pairs a DNS answer with its query).
    pub cookie: u64,
    /// DNS records: the DNS message.
    pub payload: Vec<u8>,
}

/// Why a record did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("a network record of {0} bytes is shorter than its header ({HEADER_SIZE})")]
    Short(usize),
    #[error("a network record of unknown kind {0}")]
    Kind(u32),
    #[error("a network record of unknown address family {0}")]
    Family(u16),
    #[error("a network record of unknown protocol {0}")]
    Protocol(u16),
    #[error("a DNS record claims {claimed} payload bytes but carries {carried}")]
    Payload { claimed: usize, carried: usize },
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

/// An address as the kernel keeps it (network byte order); a v4-mapped v6 address is v4.
fn addr(family: u16, raw: &[u8]) -> IpAddr {
    if family == AF_INET {
        return IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]));
    }
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&raw[..16]);
    let v6 = Ipv6Addr::from(octets);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// Decodes one record.
pub fn parse(b: &[u8]) -> Result<RawNet, RecordError> {
    if b.len() < HEADER_SIZE {
        return Err(RecordError::Short(b.len()));
    }
    let kind = RecordKind::from_u32(u32_at(b, 0)).ok_or(RecordError::Kind(u32_at(b, 0)))?;
    let flags = u32_at(b, 4);
    let family = u16_at(b, 64);
    if family != AF_INET && family != AF_INET6 {
        return Err(RecordError::Family(family));
    }
    let protocol = u16_at(b, 66);
    if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
        return Err(RecordError::Protocol(protocol));
    }
    let payload = match kind {
        RecordKind::DnsQuery | RecordKind::DnsAnswer => {
            let claimed = u32_at(b, 104) as usize;
            let carried = b.len() - HEADER_SIZE;
            if claimed > PAYLOAD_MAX || claimed > carried {
                return Err(RecordError::Payload { claimed, carried });
            }
            b[HEADER_SIZE..HEADER_SIZE + claimed].to_vec()
        }
        _ => Vec::new(),
    };
    let start = u64_at(b, 16);
    Ok(RawNet {
        kind,
        pid: if flags & FLAG_NO_PROCESS != 0 {
            0
        } else {
            u32_at(b, 8)
        },
        uid: u32_at(b, 12),
        start_ns: (start != 0).then_some(start),
        time_ns: u64_at(b, 24),
        tcp: protocol == IPPROTO_TCP,
        source: (addr(family, &b[72..88]), u16_at(b, 68)),
        destination: (addr(family, &b[88..104]), u16_at(b, 70)),
        initiated: flags & FLAG_INITIATED != 0,
        failed: flags & FLAG_FAILED != 0,
        bytes_sent: u64_at(b, 32),
        bytes_received: u64_at(b, 40),
        duration_ns: u64_at(b, 48),
        cookie: u64_at(b, 56),
        payload,
    })
}

/// A record's bytes, as the kernel writes them (for tests and the fuzz corpus).
pub fn encode(r: &RawNet) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_SIZE];
    let kind = RecordKind::ALL
        .iter()
        .find(|(_, k, _)| *k == r.kind)
        .map(|(n, ..)| *n)
        .unwrap_or_default();
    let flags = u32::from(r.initiated) * FLAG_INITIATED
        + u32::from(r.failed) * FLAG_FAILED
        + u32::from(r.pid == 0) * FLAG_NO_PROCESS;
    let put = |b: &mut Vec<u8>, at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
    put(&mut b, 0, &kind.to_le_bytes());
    put(&mut b, 4, &flags.to_le_bytes());
    put(&mut b, 8, &r.pid.to_le_bytes());
    put(&mut b, 12, &r.uid.to_le_bytes());
    put(&mut b, 16, &r.start_ns.unwrap_or_default().to_le_bytes());
    put(&mut b, 24, &r.time_ns.to_le_bytes());
    put(&mut b, 32, &r.bytes_sent.to_le_bytes());
    put(&mut b, 40, &r.bytes_received.to_le_bytes());
    put(&mut b, 48, &r.duration_ns.to_le_bytes());
    put(&mut b, 56, &r.cookie.to_le_bytes());
    let v6 = r.source.0.is_ipv6() || r.destination.0.is_ipv6();
    let family = if v6 { AF_INET6 } else { AF_INET };
    put(&mut b, 64, &family.to_le_bytes());
    let protocol = if r.tcp { IPPROTO_TCP } else { IPPROTO_UDP };
    put(&mut b, 66, &protocol.to_le_bytes());
    put(&mut b, 68, &r.source.1.to_le_bytes());
    put(&mut b, 70, &r.destination.1.to_le_bytes());
    for (at, ip) in [(72, r.source.0), (88, r.destination.0)] {
        match (ip, v6) {
            (IpAddr::V4(a), false) => put(&mut b, at, &a.octets()),
            (IpAddr::V4(a), true) => put(&mut b, at, &a.to_ipv6_mapped().octets()),
            (IpAddr::V6(a), _) => put(&mut b, at, &a.octets()),
        }
    }
    put(&mut b, 104, &(r.payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&r.payload);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RawNet {
        RawNet {
            kind: RecordKind::Close,
            pid: 42,
            uid: 1000,
            start_ns: Some(7_000_000_000),
            time_ns: 9_000_000_000,
            tcp: true,
            source: ("10.0.0.1".parse().unwrap(), 40_000),
            destination: ("10.0.0.2".parse().unwrap(), 443),
            initiated: true,
            failed: false,
            bytes_sent: 1234,
            bytes_received: 5678,
            duration_ns: 2_000_000_000,
            cookie: 99,
            payload: Vec::new(),
        }
    }

    #[test]
    fn records_decode_as_the_kernel_wrote_them() {
        let r = sample();
        assert_eq!(parse(&encode(&r)), Ok(r));
        let v6 = RawNet {
            kind: RecordKind::DnsAnswer,
            tcp: false,
            source: ("fd00::53".parse().unwrap(), 53),
            destination: ("fd00::1".parse().unwrap(), 5353),
            payload: vec![1; 40],
            ..sample()
        };
        assert_eq!(parse(&encode(&v6)), Ok(v6));
    }

    #[test]
    fn a_v4_mapped_address_is_reported_as_v4() {
        let r = RawNet {
            source: ("::1".parse().unwrap(), 1),
            ..sample()
        };
        let mut b = encode(&r);
        b[88..104].copy_from_slice(
            &"10.0.0.9"
                .parse::<Ipv4Addr>()
                .unwrap()
                .to_ipv6_mapped()
                .octets(),
        );
        let got = parse(&b).unwrap();
        assert_eq!(got.destination.0, "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_records_are_refused_with_the_reason() {
        let good = encode(&sample());
        assert_eq!(parse(&good[..50]), Err(RecordError::Short(50)));
        let mut b = good.clone();
        b[0] = 77;
        assert_eq!(parse(&b), Err(RecordError::Kind(77)));
        let mut b = good.clone();
        b[64] = 1;
        assert_eq!(parse(&b), Err(RecordError::Family(1)));
        let dns = encode(&RawNet {
            kind: RecordKind::DnsQuery,
            payload: vec![0; 20],
            ..sample()
        });
        assert!(matches!(
            parse(&dns[..HEADER_SIZE + 10]),
            Err(RecordError::Payload {
                claimed: 20,
                carried: 10
            })
        ));
    }

    #[test]
    fn an_unknown_process_is_pid_zero() {
        let r = RawNet { pid: 0, ..sample() };
        assert_eq!(parse(&encode(&r)).unwrap().pid, 0);
    }
}
