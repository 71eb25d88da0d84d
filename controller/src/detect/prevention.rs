//! Alerts for what agents refused in the kernel: every prevention event raises one, at level
//! high, whether or not a rule matches it. An exec denied names the indicator lists holding
//! the file's SHA-256 (the block lists that caused it), when the controller knows them.

use crate::store::Finding;
use cordon_detect::RuleIdentity;
use cordon_proto::{Event, event, prevention_event::Kind};

/// The finding a prevention event raises; `lists` gives the lists holding a SHA-256.
pub fn finding(e: &Event, lists: impl Fn(&str) -> Vec<String>) -> Option<Finding> {
    let Some(event::Body::Prevention(p)) = &e.body else {
        return None;
    };
    let who = p.process.as_ref().map_or_else(String::new, |r| {
        format!(
            " by pid {} ({})",
            r.pid,
            if r.exe.is_empty() { "?" } else { &r.exe }
        )
    });
    let (id, title, detail) = match p.kind() {
        Kind::ExecDenied => {
            let lists = lists(&p.sha256);
            let title = match lists.as_slice() {
                [] => "Execution of a blocked file denied".to_string(),
                l => format!("Execution of a blocked file denied (list {})", l.join(", ")),
            };
            let detail = format!("exec of {} (sha256 {}){who} refused", p.path, p.sha256);
            ("prevention:exec_denied", title, detail)
        }
        Kind::TamperDenied => (
            "prevention:tamper_denied",
            "Tamper attempt on the agent denied".to_string(),
            format!("{} of {}{who} refused", p.attempt, p.path),
        ),
        Kind::Unspecified => return None,
    };
    Some(Finding {
        rule: RuleIdentity {
            rule_id: id.into(),
            title,
            level: "high".into(),
            tags: vec!["prevention".into()],
            author: "cordon".into(),
        },
        source: "prevention".into(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_proto::{PreventionEvent, ProcessRef};

    fn prevention(kind: Kind, path: &str, sha256: &str) -> Event {
        Event {
            body: Some(event::Body::Prevention(PreventionEvent {
                kind: kind as i32,
                path: path.into(),
                sha256: sha256.into(),
                process: Some(ProcessRef {
                    pid: 42,
                    exe: "/usr/bin/bash".into(),
                    ..Default::default()
                }),
                attempt: if kind == Kind::ExecDenied {
                    "exec"
                } else {
                    "open_write"
                }
                .into(),
                mode: "fanotify".into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn denials_raise_high_alerts_naming_the_block_list_and_the_process() {
        let h = "ab".repeat(32);
        let lists = |s: &str| {
            if s == "ab".repeat(32) {
                vec!["miners".to_string()]
            } else {
                Vec::new()
            }
        };
        let f = finding(&prevention(Kind::ExecDenied, "/tmp/xmrig", &h), lists).unwrap();
        assert_eq!(
            f.rule.title,
            "Execution of a blocked file denied (list miners)"
        );
        assert_eq!(
            (f.rule.level.as_str(), f.source.as_str()),
            ("high", "prevention")
        );
        assert!(
            f.detail.contains("/tmp/xmrig") && f.detail.contains("pid 42 (/usr/bin/bash)"),
            "{}",
            f.detail
        );
        let unknown = finding(&prevention(Kind::ExecDenied, "/tmp/x", "cd"), lists).unwrap();
        assert_eq!(unknown.rule.title, "Execution of a blocked file denied");
        let t = finding(
            &prevention(Kind::TamperDenied, "/var/lib/cordon-agent/key.pem", ""),
            lists,
        )
        .unwrap();
        assert_eq!(t.rule.title, "Tamper attempt on the agent denied");
        assert_eq!(t.rule.rule_id, "prevention:tamper_denied");
        assert!(
            t.detail
                .starts_with("open_write of /var/lib/cordon-agent/key.pem by pid 42")
        );
        assert!(finding(&Event::default(), lists).is_none());
    }
}
