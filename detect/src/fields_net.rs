//! How network and DNS events look to a Sigma rule, with Sysmon for Linux's field names.
//!
//! `network_connection` is a `NetworkEvent` of kind CONNECT (this host opened it; a failed
//! attempt counts) or ACCEPT (it was opened to this host). LISTEN and CLOSE are not
//! connections in Sigma's sense and match no rule.
//!
//! | Sigma field | from |
//! |---|---|
//! | Initiated | `"true"` for CONNECT, `"false"` for ACCEPT |
//! | SourceIp, SourcePort | this host's end for CONNECT, the peer's for ACCEPT |
//! | DestinationIp, DestinationPort | the peer for CONNECT, this host's end for ACCEPT |
//! | SourceIsIpv6, DestinationIsIpv6 | `"true"` or `"false"` |
//! | DestinationHostname | the name a DNS answer seen on this host gave the address |
//! | Protocol | `tcp` or `udp` |
//! | Image, CommandLine, User, ProcessId | the process (`process.exe`, `argv` joined, ...) |
//!
//! `dns_query` is a `DnsEvent`: QueryName (lower case, no final dot), QueryType, QueryStatus
//! (the rcode by name: `NOERROR`, `NXDOMAIN`, ...; empty when unanswered), QueryResults (the
//! answers joined by `;`), Image, CommandLine, User, ProcessId.
//!
//! Keyword detections search DestinationHostname and DestinationIp, and QueryName.

use crate::fields::{Fields, Value, joined, text};
use cordon_proto::{DnsEvent, NetworkEvent, ProcessRef, network_event::Kind};
use std::borrow::Cow;

pub const NETWORK_CONNECTION: &str = "network_connection";
pub const DNS_QUERY: &str = "dns_query";

pub const NETWORK_FIELDS: &[&str] = &[
    "Initiated",
    "SourceIp",
    "SourcePort",
    "DestinationIp",
    "DestinationPort",
    "SourceIsIpv6",
    "DestinationIsIpv6",
    "DestinationHostname",
    "Protocol",
    "Image",
    "CommandLine",
    "User",
    "ProcessId",
];

pub const DNS_FIELDS: &[&str] = &[
    "QueryName",
    "QueryType",
    "QueryStatus",
    "QueryResults",
    "Image",
    "CommandLine",
    "User",
    "ProcessId",
];

/// A network event Sigma sees as a connection.
pub fn is_connection(n: &NetworkEvent) -> bool {
    matches!(n.kind(), Kind::Connect | Kind::Accept)
}

fn boolean(b: bool) -> Option<Value<'static>> {
    Some(Value::Str(Cow::Borrowed(if b { "true" } else { "false" })))
}

/// The fields every event with a process answers.
fn process_field<'a>(p: Option<&'a ProcessRef>, name: &str) -> Option<Value<'a>> {
    let p = p?;
    match name {
        "Image" => text(&p.exe),
        "CommandLine" => joined(&p.argv),
        "User" => text(&p.user),
        "ProcessId" if p.pid != 0 => Some(Value::Num(i64::from(p.pid))),
        _ => None,
    }
}

/// A connection as `network_connection`.
pub struct NetworkFields<'a>(pub &'a NetworkEvent);

impl Fields for NetworkFields<'_> {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        let n = self.0;
        let outbound = n.kind() != Kind::Accept;
        // The event keeps this host's end as `source`; Sigma's source is whoever opened it.
        let (src, sport, dst, dport) = if outbound {
            (
                &n.source_ip,
                n.source_port,
                &n.destination_ip,
                n.destination_port,
            )
        } else {
            (
                &n.destination_ip,
                n.destination_port,
                &n.source_ip,
                n.source_port,
            )
        };
        match name {
            "Initiated" => boolean(outbound),
            "SourceIp" => text(src),
            "SourcePort" => Some(Value::Num(i64::from(sport))),
            "DestinationIp" => text(dst),
            "DestinationPort" => Some(Value::Num(i64::from(dport))),
            "SourceIsIpv6" => boolean(src.contains(':')),
            "DestinationIsIpv6" => boolean(dst.contains(':')),
            "DestinationHostname" => text(&n.destination_hostname),
            "Protocol" => text(&n.protocol),
            other => process_field(n.process.as_ref(), other),
        }
    }
}

/// A DNS query as `dns_query`.
pub struct DnsFields<'a>(pub &'a DnsEvent);

impl Fields for DnsFields<'_> {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        let d = self.0;
        match name {
            "QueryName" => text(&d.name),
            "QueryType" => text(&d.query_type),
            "QueryStatus" => text(&d.rcode),
            "QueryResults" if !d.answers.is_empty() => {
                Some(Value::Str(Cow::Owned(d.answers.join(";"))))
            }
            other => process_field(d.process.as_ref(), other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nc() -> Option<ProcessRef> {
        Some(ProcessRef {
            pid: 9,
            exe: "/usr/bin/nc".into(),
            argv: vec!["nc".into(), "10.0.0.2".into(), "4444".into()],
            user: "root".into(),
            ..Default::default()
        })
    }

    #[test]
    fn an_outbound_connection_answers_sysmon_fields() {
        let n = NetworkEvent {
            kind: Kind::Connect as i32,
            protocol: "tcp".into(),
            source_ip: "10.0.0.1".into(),
            source_port: 40000,
            destination_ip: "10.0.0.2".into(),
            destination_port: 4444,
            initiated: true,
            process: nc(),
            ..Default::default()
        };
        let f = NetworkFields(&n);
        let s = |name| f.get(name).map(|v| v.to_text().into_owned());
        assert_eq!(s("Initiated").as_deref(), Some("true"));
        assert_eq!(s("DestinationIp").as_deref(), Some("10.0.0.2"));
        assert_eq!(f.get("DestinationPort"), Some(Value::Num(4444)));
        assert_eq!(s("Image").as_deref(), Some("/usr/bin/nc"));
        assert_eq!(s("CommandLine").as_deref(), Some("nc 10.0.0.2 4444"));
        assert_eq!(s("DestinationHostname"), None, "unknown is absent");
        assert_eq!(s("DestinationIsIpv6").as_deref(), Some("false"));
    }

    #[test]
    fn an_accepted_connection_has_the_peer_as_source() {
        let n = NetworkEvent {
            kind: Kind::Accept as i32,
            protocol: "tcp".into(),
            source_ip: "fd00::1".into(),
            source_port: 22,
            destination_ip: "fd00::2".into(),
            destination_port: 50000,
            ..Default::default()
        };
        let f = NetworkFields(&n);
        let s = |name| f.get(name).map(|v| v.to_text().into_owned());
        assert_eq!(s("Initiated").as_deref(), Some("false"));
        assert_eq!(s("SourceIp").as_deref(), Some("fd00::2"));
        assert_eq!(f.get("DestinationPort"), Some(Value::Num(22)));
        assert_eq!(s("Image"), None);
    }

    #[test]
    fn a_dns_query_answers_sysmon_fields() {
        let d = DnsEvent {
            name: "pool.minexmr.com".into(),
            query_type: "A".into(),
            answers: vec!["10.0.0.7".into(), "10.0.0.8".into()],
            rcode: "NOERROR".into(),
            process: nc(),
            answered: true,
            ..Default::default()
        };
        let f = DnsFields(&d);
        let s = |name| f.get(name).map(|v| v.to_text().into_owned());
        assert_eq!(s("QueryName").as_deref(), Some("pool.minexmr.com"));
        assert_eq!(s("QueryResults").as_deref(), Some("10.0.0.7;10.0.0.8"));
        assert_eq!(s("QueryStatus").as_deref(), Some("NOERROR"));
        assert_eq!(f.get("ProcessId"), Some(Value::Num(9)));
    }
}
