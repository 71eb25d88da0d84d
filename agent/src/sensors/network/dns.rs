//! DNS as the network sensor sees it: messages decoded with `simple-dns` (the bytes come off the
//! wire and may be anything), queries paired with their answers by socket and message id, and
//! the names learnt from answers kept for a while so a later connection to one of the
//! addresses can say which name it was looked up by (Sigma's DestinationHostname).

use simple_dns::rdata::RData;
use simple_dns::{Packet, PacketFlag, QTYPE, RCODE};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// One DNS message, reduced to what the event reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    /// The first question's name, lower case, without the final dot.
    pub name: String,
    pub query_type: String,
    pub rcode: String,
    /// Answer data as text; addresses also in `addresses`.
    pub answers: Vec<String>,
    pub addresses: Vec<IpAddr>,
    /// The smallest TTL among the address answers, in seconds.
    pub ttl: u32,
}

/// Why a message did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("not a DNS message: {0}")]
    Malformed(String),
    #[error("a DNS message without a question")]
    NoQuestion,
}

/// The names of the common record types; others by number.
fn type_name(t: u16) -> String {
    let name = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        64 => "SVCB",
        65 => "HTTPS",
        255 => "ANY",
        other => return other.to_string(),
    };
    name.into()
}

fn rcode_name(r: RCODE) -> &'static str {
    match r {
        RCODE::NoError => "NOERROR",
        RCODE::FormatError => "FORMERR",
        RCODE::ServerFailure => "SERVFAIL",
        RCODE::NameError => "NXDOMAIN",
        RCODE::NotImplemented => "NOTIMP",
        RCODE::Refused => "REFUSED",
        _ => "OTHER",
    }
}

fn clean_name(name: impl std::fmt::Display) -> String {
    name.to_string().trim_end_matches('.').to_ascii_lowercase()
}

/// Decodes one message.
pub fn parse(bytes: &[u8]) -> Result<Message, DnsError> {
    let packet = Packet::parse(bytes).map_err(|e| DnsError::Malformed(e.to_string()))?;
    let question = packet.questions.first().ok_or(DnsError::NoQuestion)?;
    let qtype: u16 = match question.qtype {
        QTYPE::TYPE(t) => t.into(),
        other => other.into(),
    };
    let mut m = Message {
        id: packet.id(),
        response: packet.has_flags(PacketFlag::RESPONSE),
        name: clean_name(&question.qname),
        query_type: type_name(qtype),
        rcode: String::new(),
        answers: Vec::new(),
        addresses: Vec::new(),
        ttl: u32::MAX,
    };
    if !m.response {
        return Ok(m);
    }
    m.rcode = rcode_name(packet.rcode()).into();
    for rr in &packet.answers {
        let (text, ip) = match &rr.rdata {
            RData::A(a) => {
                let ip = IpAddr::V4(Ipv4Addr::from(a.address));
                (ip.to_string(), Some(ip))
            }
            RData::AAAA(a) => {
                let ip = IpAddr::V6(Ipv6Addr::from(a.address));
                (ip.to_string(), Some(ip))
            }
            RData::CNAME(c) => (clean_name(&c.0), None),
            RData::PTR(p) => (clean_name(&p.0), None),
            _ => continue,
        };
        if let Some(ip) = ip {
            m.addresses.push(ip);
            m.ttl = m.ttl.min(rr.ttl);
        }
        m.answers.push(text);
    }
    Ok(m)
}

/// A query for `name` (type A), or with `answer` the reply giving that address: for tests and
/// fuzz seeds.
pub fn build(id: u16, name: &str, answer: Option<Ipv4Addr>) -> Vec<u8> {
    use simple_dns::rdata::A;
    use simple_dns::{CLASS, Name, Question, ResourceRecord, TYPE};
    let mut p = match answer {
        Some(_) => Packet::new_reply(id),
        None => Packet::new_query(id),
    };
    let qname = Name::new_unchecked(name);
    p.questions.push(Question::new(
        qname.clone(),
        TYPE::A.into(),
        CLASS::IN.into(),
        false,
    ));
    if let Some(ip) = answer {
        p.answers.push(ResourceRecord::new(
            qname,
            CLASS::IN,
            60,
            RData::A(A::from(ip)),
        ));
    }
    p.build_bytes_vec().unwrap_or_default()
}

/// Addresses to the names they were answered for, each kept for its TTL (within bounds),
/// oldest forgotten first once full.
pub struct Hostnames {
    by_ip: HashMap<IpAddr, (String, Instant)>,
    order: VecDeque<IpAddr>,
    max: usize,
}

/// Bounds on how long a learnt name is kept, whatever the TTL says.
const KEEP_MIN: Duration = Duration::from_secs(60);
const KEEP_MAX: Duration = Duration::from_secs(3600);

impl Hostnames {
    pub fn new(max: usize) -> Self {
        Self {
            by_ip: HashMap::new(),
            order: VecDeque::new(),
            max,
        }
    }

    /// Learns the addresses of an answer.
    pub fn learn(&mut self, m: &Message, now: Instant) {
        let keep = Duration::from_secs(m.ttl.into()).clamp(KEEP_MIN, KEEP_MAX);
        for ip in &m.addresses {
            if self
                .by_ip
                .insert(*ip, (m.name.clone(), now + keep))
                .is_none()
            {
                self.order.push_back(*ip);
            }
        }
        while self.order.len() > self.max {
            if let Some(old) = self.order.pop_front() {
                self.by_ip.remove(&old);
            }
        }
    }

    /// The name `ip` was last answered for, while that answer holds.
    pub fn name(&self, ip: &IpAddr, now: Instant) -> Option<&str> {
        self.by_ip
            .get(ip)
            .filter(|(_, until)| *until > now)
            .map(|(n, _)| n.as_str())
    }
}

/// Queries waiting for their answer, by (socket cookie, message id).
pub struct Pending<Q> {
    waiting: HashMap<(u64, u16), (Q, Instant)>,
    max: usize,
}

impl<Q> Pending<Q> {
    pub fn new(max: usize) -> Self {
        Self {
            waiting: HashMap::new(),
            max,
        }
    }

    /// Holds a query; when full, the oldest is handed back to go out unanswered.
    pub fn hold(&mut self, cookie: u64, id: u16, q: Q, now: Instant) -> Option<Q> {
        let evicted = if self.waiting.len() >= self.max {
            let oldest = self
                .waiting
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k);
            oldest.and_then(|k| self.waiting.remove(&k)).map(|(q, _)| q)
        } else {
            None
        };
        self.waiting.insert((cookie, id), (q, now));
        evicted
    }

    /// The query an answer answers.
    pub fn answer(&mut self, cookie: u64, id: u16) -> Option<Q> {
        self.waiting.remove(&(cookie, id)).map(|(q, _)| q)
    }

    /// Queries that waited longer than `wait`: they go out unanswered.
    pub fn expired(&mut self, wait: Duration, now: Instant) -> Vec<Q> {
        let old: Vec<_> = self
            .waiting
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= wait)
            .map(|(k, _)| *k)
            .collect();
        old.into_iter()
            .filter_map(|k| self.waiting.remove(&k).map(|(q, _)| q))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::rdata::{A, AAAA};
    use simple_dns::{CLASS, Name, Question, ResourceRecord, TYPE};

    fn query(id: u16, name: &str, t: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(id);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            t.into(),
            CLASS::IN.into(),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    fn answer(id: u16, name: &str, ips: &[IpAddr]) -> Vec<u8> {
        let mut p = Packet::new_reply(id);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            TYPE::A.into(),
            CLASS::IN.into(),
            false,
        ));
        for ip in ips {
            let rdata = match ip {
                IpAddr::V4(a) => RData::A(A::from(*a)),
                IpAddr::V6(a) => RData::AAAA(AAAA::from(*a)),
            };
            p.answers.push(ResourceRecord::new(
                Name::new_unchecked(name),
                CLASS::IN,
                300,
                rdata,
            ));
        }
        p.build_bytes_vec().unwrap()
    }

    #[test]
    fn a_query_and_its_answer_decode() {
        let q = parse(&query(7, "Evil.Example.COM.", TYPE::AAAA)).unwrap();
        assert_eq!((q.id, q.response), (7, false));
        assert_eq!(
            (q.name.as_str(), q.query_type.as_str()),
            ("evil.example.com", "AAAA")
        );
        let ips: Vec<IpAddr> = vec!["10.0.0.7".parse().unwrap(), "fd00::7".parse().unwrap()];
        let a = parse(&answer(7, "evil.example.com", &ips)).unwrap();
        assert!(a.response);
        assert_eq!(a.rcode, "NOERROR");
        assert_eq!(a.addresses, ips);
        assert_eq!(a.answers, vec!["10.0.0.7", "fd00::7"]);
        assert_eq!(a.ttl, 300);
    }

    #[test]
    fn garbage_is_refused_not_guessed() {
        assert!(matches!(parse(&[0; 5]), Err(DnsError::Malformed(_))));
        let mut bytes = query(1, "a.example", TYPE::A);
        bytes.truncate(bytes.len() - 3);
        assert!(parse(&bytes).is_err());
        let empty = Packet::new_query(3).build_bytes_vec().unwrap();
        assert_eq!(parse(&empty), Err(DnsError::NoQuestion));
    }

    #[test]
    fn names_are_kept_for_their_ttl_and_bounded() {
        let now = Instant::now();
        let mut names = Hostnames::new(2);
        let ips: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let m = parse(&answer(1, "pool.example", &ips)).unwrap();
        names.learn(&m, now);
        assert_eq!(names.name(&ips[0], now), None, "the oldest went first");
        assert_eq!(names.name(&ips[2], now), Some("pool.example"));
        assert_eq!(names.name(&ips[2], now + KEEP_MAX), None, "expired");
    }

    #[test]
    fn queries_wait_for_their_answer_then_go_unanswered() {
        let now = Instant::now();
        let mut p = Pending::new(2);
        assert!(p.hold(1, 10, "a", now).is_none());
        assert!(p.hold(2, 10, "b", now + Duration::from_millis(1)).is_none());
        assert_eq!(
            p.hold(3, 11, "c", now + Duration::from_millis(2)),
            Some("a")
        );
        assert_eq!(p.answer(2, 10), Some("b"));
        assert_eq!(p.answer(2, 10), None, "answered once");
        assert!(
            p.expired(Duration::from_secs(2), now + Duration::from_secs(1))
                .is_empty()
        );
        assert_eq!(
            p.expired(Duration::from_secs(2), now + Duration::from_secs(3)),
            vec!["c"]
        );
        assert!(p.is_empty());
    }
}
