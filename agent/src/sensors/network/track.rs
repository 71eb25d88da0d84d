//! Turns the kernel's network records into events: names the process behind each (from the
//! shared process table, by pid and start time), pairs DNS queries with their answers (a query
//! waits for its answer up to a bound, then goes out unanswered), and gives connections the
//! host name their destination was looked up by.
//!
//! A process that connects right after an exec (`ip netns exec ... bash`, same pid) must be
//! named by its new program, but the exec arrives through the process sensor's own ring buffer
//! and thread. So each record waits until the process table says it reflects every exec up to
//! the record's kernel time (`ProcessTable::current_to`), or at most `HOLD_MAX`.

use super::dns::{self, Hostnames, Pending};
use super::record::{RawNet, RecordKind};
use crate::sensors::process::ProcessTable;
use crate::sensors::process::clock::ns_to_ticks;
use crate::sys::users::UserNames;
use cordon_proto::{DnsEvent, NetworkEvent, ProcessRef, event, network_event::Kind};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most queries waiting for an answer, and most names remembered.
const PENDING_MAX: usize = 4096;
const HOSTNAMES_MAX: usize = 16384;
/// Longest a record waits for the process table, and most records waiting.
const HOLD_MAX: Duration = Duration::from_millis(500);
const HELD_MAX: usize = 65536;

/// What one record becomes.
#[derive(Debug, PartialEq)]
pub enum Out {
    Event(Box<event::Body>),
    /// Traffic on the DNS port that is not DNS (or is cut): counted and reported.
    Malformed(String),
}

pub struct Tracker {
    table: Arc<ProcessTable>,
    users: UserNames,
    pending: Pending<DnsEvent>,
    hostnames: Hostnames,
    dns_wait: Duration,
    held: VecDeque<(Instant, RawNet)>,
}

impl Tracker {
    pub fn new(table: Arc<ProcessTable>, dns_wait: Duration) -> Self {
        Self {
            table,
            users: UserNames::default(),
            pending: Pending::new(PENDING_MAX),
            hostnames: Hostnames::new(HOSTNAMES_MAX),
            dns_wait,
            held: VecDeque::new(),
        }
    }

    /// The events of the records ready now, this one included if it is (none for a DNS
    /// query waiting for its answer).
    pub fn handle(&mut self, r: RawNet, now: Instant) -> Vec<Out> {
        self.held.push_back((now, r));
        self.release(now)
    }

    /// What time passing releases: held records now ready, and queries whose answer did not
    /// come in time (they go out unanswered).
    pub fn tick(&mut self, now: Instant) -> Vec<Out> {
        let mut outs = self.release(now);
        outs.extend(
            self.pending
                .expired(self.dns_wait, now)
                .into_iter()
                .map(|q| Out::Event(Box::new(event::Body::Dns(q)))),
        );
        outs
    }

    /// Records whose process the table now knows (or that waited long enough), in order.
    fn release(&mut self, now: Instant) -> Vec<Out> {
        let current_to = self.table.current_to();
        let mut outs = Vec::new();
        while let Some((at, r)) = self.held.front() {
            let ready = current_to.is_none_or(|t| r.time_ns <= t)
                || now.duration_since(*at) >= HOLD_MAX
                || self.held.len() > HELD_MAX;
            if !ready {
                break;
            }
            let Some((_, r)) = self.held.pop_front() else {
                break;
            };
            outs.extend(self.one(r, now));
        }
        outs
    }

    fn one(&mut self, r: RawNet, now: Instant) -> Vec<Out> {
        match r.kind {
            RecordKind::DnsQuery => self.query(r, now),
            RecordKind::DnsAnswer => self.answer(r, now),
            _ => vec![Out::Event(Box::new(event::Body::Network(
                self.connection(r, now),
            )))],
        }
    }

    fn process(&mut self, r: &RawNet) -> Option<ProcessRef> {
        if r.pid == 0 {
            return None;
        }
        let known = self.table.lookup(r.pid, r.start_ns).unwrap_or_default();
        let start = r.start_ns.or(known.start_ns);
        Some(ProcessRef {
            pid: r.pid,
            start_ticks: start.map(ns_to_ticks).unwrap_or_default(),
            exe: known.exe,
            argv: known.argv,
            uid: r.uid,
            user: self.users.name(r.uid),
        })
    }

    fn connection(&mut self, r: RawNet, now: Instant) -> NetworkEvent {
        let kind = match r.kind {
            RecordKind::Accept => Kind::Accept,
            RecordKind::Listen => Kind::Listen,
            RecordKind::Close => Kind::Close,
            _ => Kind::Connect,
        };
        let listen = kind == Kind::Listen;
        NetworkEvent {
            kind: kind as i32,
            protocol: if r.tcp { "tcp" } else { "udp" }.into(),
            source_ip: r.source.0.to_string(),
            source_port: r.source.1.into(),
            destination_ip: if listen {
                String::new()
            } else {
                r.destination.0.to_string()
            },
            destination_port: if listen { 0 } else { r.destination.1.into() },
            initiated: r.initiated,
            destination_hostname: self
                .hostnames
                .name(&r.destination.0, now)
                .unwrap_or_default()
                .to_string(),
            process: self.process(&r),
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
            duration_ms: r.duration_ns / 1_000_000,
            failed: r.failed,
            source: "ebpf".into(),
        }
    }

    fn query(&mut self, r: RawNet, now: Instant) -> Vec<Out> {
        let m = match dns::parse(&r.payload) {
            Ok(m) if !m.response => m,
            Ok(_) => return Vec::new(),
            Err(e) => return vec![unreadable(&r, e)],
        };
        let q = DnsEvent {
            name: m.name,
            query_type: m.query_type,
            server: std::net::SocketAddr::from(r.destination).to_string(),
            process: self.process(&r),
            ..Default::default()
        };
        match self.pending.hold(r.cookie, m.id, q, now) {
            Some(evicted) => vec![Out::Event(Box::new(event::Body::Dns(evicted)))],
            None => Vec::new(),
        }
    }

    fn answer(&mut self, r: RawNet, now: Instant) -> Vec<Out> {
        let m = match dns::parse(&r.payload) {
            Ok(m) if m.response => m,
            Ok(_) => return Vec::new(),
            Err(e) => return vec![unreadable(&r, e)],
        };
        self.hostnames.learn(&m, now);
        let q = match self.pending.answer(r.cookie, m.id) {
            Some(q) => q,
            // The query was not seen (sent before the agent started, or by a socket the
            // programs do not see): the answer still says who asked what.
            None => DnsEvent {
                name: m.name.clone(),
                query_type: m.query_type.clone(),
                server: std::net::SocketAddr::from(r.source).to_string(),
                process: self.process(&r),
                ..Default::default()
            },
        };
        vec![Out::Event(Box::new(event::Body::Dns(DnsEvent {
            answers: m.answers,
            rcode: m.rcode,
            answered: true,
            ..q
        })))]
    }
}

/// A DNS packet that does not decode: reported, never silently skipped.
fn unreadable(r: &RawNet, e: dns::DnsError) -> Out {
    Out::Malformed(format!(
        "a DNS message between {} and {} did not decode: {e}",
        std::net::SocketAddr::from(r.source),
        std::net::SocketAddr::from(r.destination)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::network::record::encode;
    use crate::sys::procfs::Proc;

    fn tracker() -> Tracker {
        let table = Arc::new(ProcessTable::new(Proc::default(), 4096));
        Tracker::new(table, Duration::from_secs(2))
    }

    fn raw(kind: RecordKind, payload: Vec<u8>) -> RawNet {
        let r = RawNet {
            kind,
            pid: std::process::id(),
            uid: 0,
            start_ns: None,
            time_ns: 1,
            tcp: kind != RecordKind::DnsQuery && kind != RecordKind::DnsAnswer,
            source: ("10.0.0.1".parse().unwrap(), 40_000),
            destination: ("10.0.0.53".parse().unwrap(), 53),
            initiated: true,
            failed: false,
            bytes_sent: 0,
            bytes_received: 0,
            duration_ns: 0,
            cookie: 5,
            payload,
        };
        // Through the kernel's byte layout, as the sensor gets it.
        crate::sensors::network::record::parse(&encode(&r)).unwrap()
    }

    fn dns_bytes(id: u16, answer: Option<[u8; 4]>) -> Vec<u8> {
        super::dns::build(id, "c2.evil.example", answer.map(std::net::Ipv4Addr::from))
    }

    fn only_event(outs: Vec<Out>) -> event::Body {
        match <[Out; 1]>::try_from(outs) {
            Ok([Out::Event(body)]) => *body,
            Ok([other]) => panic!("not an event: {other:?}"),
            Err(outs) => panic!("expected one output, got {outs:?}"),
        }
    }

    #[test]
    fn a_connection_names_its_process() {
        let mut t = tracker();
        let body = only_event(t.handle(raw(RecordKind::Connect, vec![]), Instant::now()));
        let event::Body::Network(n) = body else {
            panic!("{body:?}")
        };
        assert_eq!(n.kind(), Kind::Connect);
        assert_eq!((n.protocol.as_str(), n.destination_port), ("tcp", 53));
        let p = n.process.expect("the process");
        assert_eq!(p.pid, std::process::id());
        assert_eq!(p.exe, std::env::current_exe().unwrap().to_string_lossy());
        assert_eq!(p.user, "root", "uid 0");
        assert!(p.start_ticks > 0);
    }

    #[test]
    fn a_dns_answer_completes_its_query_and_names_later_connections() {
        let mut t = tracker();
        let now = Instant::now();
        assert!(
            t.handle(raw(RecordKind::DnsQuery, dns_bytes(9, None)), now)
                .is_empty()
        );
        let answer = raw(RecordKind::DnsAnswer, dns_bytes(9, Some([203, 0, 113, 7])));
        let body = only_event(t.handle(answer, now));
        let event::Body::Dns(d) = body else {
            panic!("{body:?}")
        };
        assert_eq!(
            (d.name.as_str(), d.query_type.as_str()),
            ("c2.evil.example", "A")
        );
        assert_eq!(d.answers, vec!["203.0.113.7"]);
        assert!(d.answered);
        assert_eq!(d.server, "10.0.0.53:53");
        assert_eq!(d.process.unwrap().pid, std::process::id());
        let mut c = raw(RecordKind::Connect, vec![]);
        c.destination = ("203.0.113.7".parse().unwrap(), 443);
        let event::Body::Network(n) = only_event(t.handle(c, now)) else {
            panic!()
        };
        assert_eq!(n.destination_hostname, "c2.evil.example");
    }

    #[test]
    fn an_unanswered_query_goes_out_after_the_wait() {
        let mut t = tracker();
        let now = Instant::now();
        assert!(
            t.handle(raw(RecordKind::DnsQuery, dns_bytes(3, None)), now)
                .is_empty()
        );
        assert!(t.tick(now + Duration::from_secs(1)).is_empty());
        let event::Body::Dns(d) = only_event(t.tick(now + Duration::from_secs(3))) else {
            panic!()
        };
        assert!(!d.answered);
        assert_eq!(d.name, "c2.evil.example");
    }

    #[test]
    fn a_record_waits_for_the_exec_before_it() {
        let mut t = tracker();
        let now = Instant::now();
        let mut r = raw(RecordKind::Connect, vec![]);
        r.time_ns = 5_000;
        t.table.mark(4_000);
        assert!(
            t.handle(r.clone(), now).is_empty(),
            "the table is behind the record"
        );
        t.table.mark(5_000);
        assert_eq!(t.tick(now).len(), 1, "released once the table caught up");
        t.table.mark(5_000);
        assert!(
            t.handle(
                RawNet {
                    time_ns: 9_000,
                    ..r
                },
                now
            )
            .is_empty()
        );
        assert_eq!(
            t.tick(now + HOLD_MAX).len(),
            1,
            "released after the longest wait"
        );
    }

    #[test]
    fn garbage_on_the_dns_port_is_reported() {
        let mut t = tracker();
        let outs = t.handle(raw(RecordKind::DnsQuery, vec![0xff; 13]), Instant::now());
        assert!(matches!(outs.as_slice(), [Out::Malformed(why)] if why.contains("10.0.0.53:53")));
    }
}
