//! Indicator lists: SHA-256 hashes, IP addresses and domains, normalised on import and looked
//! up per event. Hashes are matched against an exec's executable and a file event's content;
//! addresses and domains against the hosts named in an exec's arguments (bare addresses,
//! URLs, user@host), the peer of a connection made or accepted (and the name it was looked up
//! by), and a DNS query's name and answered addresses; a domain also matches its subdomains.

pub use cordon_detect::iocs::{KINDS, normalise};
use cordon_proto::{Event, event, network_event, process_event};
use std::collections::HashMap;
use std::net::IpAddr;

/// One indicator that matched: kind, the value, and the lists holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub kind: &'static str,
    pub value: String,
    pub lists: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Iocs {
    sha256: HashMap<String, Vec<String>>,
    ip: HashMap<IpAddr, Vec<String>>,
    domain: HashMap<String, Vec<String>>,
}

/// Why a valid indicator can only cause trouble, if it can: one that matches this
/// deployment's own traffic (`own`: the controller's addresses and names, normalised).
pub fn caution(kind: &str, value: &str, own: &[String]) -> Option<String> {
    if own.iter().any(|o| o == value) {
        return Some(format!(
            "{value} is the controller's own address or name: every agent talks to it"
        ));
    }
    let ip = (kind == "ip")
        .then(|| value.parse::<IpAddr>().ok())
        .flatten()?;
    if ip.is_loopback() || ip.is_unspecified() {
        return Some(format!(
            "{value} is a loopback or unspecified address: it names each host itself, not a \
             remote one"
        ));
    }
    None
}

impl Iocs {
    /// Adds an already normalised value.
    pub fn add(&mut self, kind: &str, value: &str, list: &str) {
        let lists = match kind {
            "sha256" => self.sha256.entry(value.to_string()).or_default(),
            "ip" => match value.parse() {
                Ok(ip) => self.ip.entry(ip).or_default(),
                Err(_) => return,
            },
            "domain" => self.domain.entry(value.to_string()).or_default(),
            _ => return,
        };
        if !lists.iter().any(|l| l == list) {
            lists.push(list.to_string());
        }
    }

    /// The lists holding a SHA-256 (normalised).
    pub fn sha256_lists(&self, sha256: &str) -> Vec<String> {
        self.sha256.get(sha256).cloned().unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.sha256.is_empty() && self.ip.is_empty() && self.domain.is_empty()
    }

    /// Every indicator in the event.
    pub fn check(&self, e: &Event) -> Vec<Hit> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut hits = Vec::new();
        let mut hash = |h: &str| {
            if let Some(lists) = self.sha256.get(h) {
                hits.push(Hit {
                    kind: "sha256",
                    value: h.to_string(),
                    lists: lists.clone(),
                });
            }
        };
        match &e.body {
            Some(event::Body::File(f)) if !f.sha256.is_empty() => hash(&f.sha256),
            Some(event::Body::Process(p)) if p.kind() == process_event::Kind::Exec => {
                if !p.exe_sha256.is_empty() {
                    hash(&p.exe_sha256);
                }
                for host in p.argv.iter().skip(1).filter_map(|a| host_of(a)) {
                    self.host(&host, &mut hits);
                }
            }
            Some(event::Body::Network(n))
                if matches!(
                    n.kind(),
                    network_event::Kind::Connect | network_event::Kind::Accept
                ) =>
            {
                for host in [&n.destination_ip, &n.destination_hostname] {
                    if !host.is_empty() {
                        self.host(host, &mut hits);
                    }
                }
            }
            Some(event::Body::Dns(d)) => {
                for host in std::iter::once(&d.name).chain(&d.answers) {
                    if !host.is_empty() {
                        self.host(host, &mut hits);
                    }
                }
            }
            _ => {}
        }
        hits
    }

    fn host(&self, host: &str, hits: &mut Vec<Hit>) {
        if let Ok(ip) = host.parse::<IpAddr>() {
            if let Some(lists) = self.ip.get(&ip) {
                hits.push(Hit {
                    kind: "ip",
                    value: ip.to_string(),
                    lists: lists.clone(),
                });
            }
            return;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        // The name and each parent domain: evil.example matches a.b.evil.example.
        let mut rest = host.as_str();
        loop {
            if let Some(lists) = self.domain.get(rest) {
                hits.push(Hit {
                    kind: "domain",
                    value: rest.to_string(),
                    lists: lists.clone(),
                });
                return;
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return,
            }
        }
    }
}

/// The host an argument names: "1.2.3.4", "http://evil.example:8080/x", "user@host:/p",
/// "host:port". None for anything that does not look like one.
fn host_of(arg: &str) -> Option<String> {
    let mut s = arg;
    if let Some((_, rest)) = s.split_once("://") {
        s = rest;
    }
    let s = s.split(['/', '?', '#']).next()?;
    let s = s.rsplit_once('@').map_or(s, |(_, h)| h);
    let s = s
        .strip_prefix('[')
        .map_or(s, |v6| v6.split(']').next().unwrap_or(v6));
    if s.parse::<IpAddr>().is_ok() {
        return Some(s.to_string());
    }
    let host = s.split(':').next()?;
    let plausible = host.contains('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && host.bytes().any(|b| b.is_ascii_alphabetic());
    plausible.then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_proto::{FileEvent, ProcessEvent};

    fn exec(argv: &[&str], sha: &str) -> Event {
        Event {
            seq: 1,
            time_ms: 0,
            body: Some(event::Body::Process(ProcessEvent {
                kind: process_event::Kind::Exec as i32,
                argv: argv.iter().map(|a| a.to_string()).collect(),
                exe_sha256: sha.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn indicators_that_can_only_cause_trouble_are_named() {
        let own = vec!["10.1.2.3".to_string(), "ctl.corp.example".to_string()];
        for (kind, v) in [
            ("ip", "127.0.0.1"),
            ("ip", "::1"),
            ("ip", "0.0.0.0"),
            ("ip", "10.1.2.3"),
        ] {
            assert!(caution(kind, v, &own).is_some(), "{v}");
        }
        assert!(
            caution("domain", "ctl.corp.example", &own)
                .unwrap()
                .contains("controller")
        );
        assert!(caution("ip", "203.0.113.7", &own).is_none());
        assert!(caution("domain", "evil.example", &own).is_none());
    }

    #[test]
    fn hashes_addresses_and_domains_match_where_they_appear() {
        let mut iocs = Iocs::default();
        let bad = "ab".repeat(32);
        iocs.add("sha256", &bad, "hashes");
        iocs.add("ip", "203.0.113.7", "c2");
        iocs.add("domain", "evil.example", "c2");
        let hits = iocs.check(&exec(&["curl", "http://cdn.EVIL.example:8080/x"], &bad));
        assert_eq!(
            hits.iter()
                .map(|h| (h.kind, h.value.as_str()))
                .collect::<Vec<_>>(),
            vec![("sha256", bad.as_str()), ("domain", "evil.example")]
        );
        let hits = iocs.check(&exec(&["ssh", "root@203.0.113.7"], ""));
        assert_eq!(hits[0].lists, vec!["c2"]);
        assert!(
            iocs.check(&exec(&["curl", "https://notevil.example/"], ""))
                .is_empty()
        );
        assert!(
            iocs.check(&exec(&["echo", "evil.example.com"], ""))
                .is_empty()
        );
        let file = Event {
            seq: 2,
            time_ms: 0,
            body: Some(event::Body::File(FileEvent {
                sha256: bad.clone(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(iocs.check(&file).len(), 1);
    }
}

#[cfg(test)]
mod network_tests {
    use super::*;
    use cordon_proto::{DnsEvent, NetworkEvent, network_event::Kind};

    fn with(body: event::Body) -> Event {
        Event {
            seq: 1,
            time_ms: 0,
            body: Some(body),
            ..Default::default()
        }
    }

    fn connection(kind: Kind, peer: &str, name: &str) -> Event {
        with(event::Body::Network(NetworkEvent {
            kind: kind as i32,
            source_ip: "10.0.0.1".into(),
            destination_ip: peer.into(),
            destination_hostname: name.into(),
            ..Default::default()
        }))
    }

    #[test]
    fn connections_and_dns_match_addresses_and_domains() {
        let mut iocs = Iocs::default();
        iocs.add("ip", "203.0.113.7", "c2");
        iocs.add("ip", "2001:db8::7", "c2");
        iocs.add("domain", "evil.example", "c2");
        let kinds = |e: &Event| {
            iocs.check(e)
                .iter()
                .map(|h| (h.kind, h.value.clone()))
                .collect::<Vec<_>>()
        };
        let out = connection(Kind::Connect, "203.0.113.7", "");
        assert_eq!(kinds(&out), vec![("ip", "203.0.113.7".into())]);
        let v6 = connection(Kind::Accept, "2001:db8::7", "");
        assert_eq!(kinds(&v6), vec![("ip", "2001:db8::7".into())]);
        let named = connection(Kind::Connect, "198.51.100.1", "cdn.evil.example");
        assert_eq!(kinds(&named), vec![("domain", "evil.example".into())]);
        // A close repeats the connect: no second alert.
        assert!(kinds(&connection(Kind::Close, "203.0.113.7", "")).is_empty());
        assert!(kinds(&connection(Kind::Connect, "203.0.113.8", "")).is_empty());
        let query = with(event::Body::Dns(DnsEvent {
            name: "a.b.evil.example".into(),
            answers: vec!["203.0.113.7".into()],
            ..Default::default()
        }));
        assert_eq!(
            kinds(&query),
            vec![
                ("domain", "evil.example".into()),
                ("ip", "203.0.113.7".into())
            ]
        );
        let benign = with(event::Body::Dns(DnsEvent {
            name: "notevil.example".into(),
            ..Default::default()
        }));
        assert!(kinds(&benign).is_empty());
    }
}
