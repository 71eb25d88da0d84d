//! One-line text forms of network and DNS events: what `events query --contains` searches and
//! what listings show. "connect tcp 10.0.0.1:40000 -> 10.0.0.2:443 (example.com) by
//! /usr/bin/curl curl -s https://example.com (pid 7, user root)".

use cordon_proto::{DnsEvent, NetworkEvent, ProcessRef, network_event::Kind};

/// " by EXE ARGV (pid N, user U)", or " by an unknown process".
fn by(p: Option<&ProcessRef>) -> String {
    let Some(p) = p.filter(|p| p.pid != 0) else {
        return " by an unknown process".into();
    };
    let user = if p.user.is_empty() {
        p.uid.to_string()
    } else {
        p.user.clone()
    };
    let exe = if p.exe.is_empty() {
        "?"
    } else {
        p.exe.as_str()
    };
    let argv = if p.argv.is_empty() {
        String::new()
    } else {
        format!(" {}", p.argv.join(" "))
    };
    format!(" by {exe}{argv} (pid {}, user {user})", p.pid)
}

fn endpoint(ip: &str, port: u32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

pub fn network(n: &NetworkEvent) -> String {
    let local = endpoint(&n.source_ip, n.source_port);
    let remote = endpoint(&n.destination_ip, n.destination_port);
    let name = if n.destination_hostname.is_empty() {
        String::new()
    } else {
        format!(" ({})", n.destination_hostname)
    };
    let what = match n.kind() {
        Kind::Listen => format!("listen {} {local}", n.protocol),
        Kind::Accept => format!("accept {} {local} <- {remote}", n.protocol),
        Kind::Close => format!(
            "close {} {local} {} {remote}{name} sent {} received {} after {} ms",
            n.protocol,
            if n.initiated { "->" } else { "<-" },
            n.bytes_sent,
            n.bytes_received,
            n.duration_ms
        ),
        Kind::Connect | Kind::Unspecified => format!(
            "connect {} {local} -> {remote}{name}{}",
            n.protocol,
            if n.failed { " [failed]" } else { "" }
        ),
    };
    format!("{what}{}", by(n.process.as_ref()))
}

pub fn dns(d: &DnsEvent) -> String {
    let answer = if !d.answered {
        "no answer".to_string()
    } else if d.answers.is_empty() {
        d.rcode.clone()
    } else {
        format!("{} ({})", d.answers.join(", "), d.rcode)
    };
    format!(
        "dns {} {} -> {answer} via {}{}",
        d.query_type,
        d.name,
        d.server,
        by(d.process.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curl() -> Option<ProcessRef> {
        Some(ProcessRef {
            pid: 7,
            exe: "/usr/bin/curl".into(),
            argv: vec!["curl".into(), "-s".into(), "http://x".into()],
            user: "root".into(),
            ..Default::default()
        })
    }

    #[test]
    fn connections_read_as_a_line() {
        let n = NetworkEvent {
            kind: Kind::Connect as i32,
            protocol: "tcp".into(),
            source_ip: "fd00::1".into(),
            source_port: 40000,
            destination_ip: "fd00::2".into(),
            destination_port: 443,
            destination_hostname: "example.com".into(),
            process: curl(),
            ..Default::default()
        };
        assert_eq!(
            network(&n),
            "connect tcp [fd00::1]:40000 -> [fd00::2]:443 (example.com) by /usr/bin/curl curl \
             -s http://x (pid 7, user root)"
        );
        let listen = NetworkEvent {
            kind: Kind::Listen as i32,
            process: None,
            ..n
        };
        assert_eq!(
            network(&listen),
            "listen tcp [fd00::1]:40000 by an unknown process"
        );
    }

    #[test]
    fn dns_reads_as_a_line() {
        let d = DnsEvent {
            name: "evil.example".into(),
            query_type: "A".into(),
            answers: vec!["10.0.0.7".into()],
            rcode: "NOERROR".into(),
            server: "10.0.0.53:53".into(),
            process: curl(),
            answered: true,
        };
        assert!(
            dns(&d).starts_with("dns A evil.example -> 10.0.0.7 (NOERROR) via 10.0.0.53:53 by"),
            "{}",
            dns(&d)
        );
        let unanswered = DnsEvent {
            answered: false,
            ..d
        };
        assert!(dns(&unanswered).contains("-> no answer via"));
    }
}
