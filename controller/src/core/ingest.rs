//! Telemetry: each batch is judged by detection, described and stored once per
//! (agent, seq) with the alerts it raised (see `store::ingest`); new alerts go to the
//! playbooks, new events to `events tail`. Stored events are queried from here too.

use super::{Controller, CoreError};
use crate::store::Events;
use crate::store::{EventFilter, EventKey, StoredEvent};
use cordon_proto::limits::{MAX_BATCH_EVENTS, MAX_QUERY_TEXT};
use cordon_proto::time::now_ms;
use cordon_proto::{Event, ProcessEvent, TelemetryBatch, event, file_event, process_event};
use prost::Message;
use std::sync::Arc;

/// What an administrator asks of the stored events (empty strings: no filter).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub agent: String,
    pub kind: String,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub contains: String,
    pub limit: u32,
    /// A page: only events older than this one, or only newer (see `EventFilter`).
    pub before: Option<EventKey>,
    pub after: Option<EventKey>,
}

impl Controller {
    /// Stores a telemetry batch from `agent_id` in one transaction (each sequence number once)
    /// and passes the new events to `events tail`. Returns the highest sequence number in the
    /// batch, which may be acknowledged now that it is committed; `None` for an empty batch.
    /// (Public so the benchmark measures the real path.)
    pub async fn ingest(
        self: &Arc<Self>,
        agent_id: &str,
        batch: TelemetryBatch,
    ) -> Result<Option<u64>, CoreError> {
        if batch.events.len() > MAX_BATCH_EVENTS {
            return Err(CoreError::BatchTooLarge(batch.events.len()));
        }
        let Some(through) = batch.events.iter().map(|e| e.seq).max() else {
            return Ok(None);
        };
        let received = now_ms();
        let findings = batch
            .events
            .iter()
            .map(|e| self.detector.judge(e))
            .collect();
        let events = batch
            .events
            .iter()
            .map(|e| {
                let (kind, summary) = describe(e);
                StoredEvent {
                    agent_id: agent_id.to_string(),
                    seq: e.seq,
                    time_ms: e.time_ms,
                    kind: kind.to_string(),
                    summary,
                    body: e.encode_to_vec(),
                    received_at_ms: received,
                }
            })
            .collect();
        let (added, alerts) = self
            .store
            .ingest(events, findings, Some(self.detector.grouping))
            .await?;
        self.ingest_rate.note(added.len(), received);
        for a in alerts.iter().filter(|a| a.new) {
            // The engine outlives every sender but this one; if it is gone, so is the controller.
            let _ = self.alerts.send(a.alert_id.clone());
            tracing::info!(
                agent_id = %a.agent_id,
                alert = %a.alert_id,
                incident = %a.incident_id,
                level = %a.finding.rule.level,
                "alert: {}",
                a.finding.rule.title
            );
        }
        if self.events.receiver_count() > 0 {
            for e in added {
                // A tailer that went away meanwhile is fine.
                let _ = self.events.send(Arc::new(e));
            }
        }
        Ok(Some(through))
    }

    /// Events stored per second lately (see `rate.rs`).
    pub fn events_per_sec(&self) -> f64 {
        self.ingest_rate.per_sec(now_ms())
    }

    /// Stored events by agent (id or prefix), kind, time and text.
    pub async fn query_events(&self, q: EventQuery) -> Result<Vec<StoredEvent>, CoreError> {
        if q.contains.len() > MAX_QUERY_TEXT {
            return Err(CoreError::QueryTooLong(q.contains.len()));
        }
        let agent_id = self.resolve_optional(&q.agent).await?;
        let some = |s: String| (!s.is_empty()).then_some(s);
        let filter = EventFilter {
            agent_id,
            kind: some(q.kind),
            since_ms: q.since_ms,
            until_ms: q.until_ms,
            contains: some(q.contains),
            limit: super::agents::list_limit(q.limit)?,
            before: q.before,
            after: q.after,
        };
        Ok(self.store.query_events(filter).await?)
    }
}

/// The stored kind and a one-line text form of an event (what `--contains` searches).
pub fn describe(e: &Event) -> (&'static str, String) {
    let (kind, mut summary) = describe_body(e);
    // What the host's edge policies did, after what happened: "[edge playbook:x v2:
    // kill_process done]".
    for a in &e.edge {
        summary.push_str(&format!(
            " [edge {} v{}: {} {}]",
            a.policy_id, a.version, a.action, a.outcome
        ));
    }
    (kind, summary)
}

fn describe_body(e: &Event) -> (&'static str, String) {
    match &e.body {
        Some(event::Body::Notice(n)) => {
            let count = if n.count > 0 {
                format!(" (count {})", n.count)
            } else {
                String::new()
            };
            ("notice", format!("{}: {}{count}", n.kind, n.message))
        }
        Some(event::Body::File(f)) => {
            let kind = match f.kind() {
                file_event::Kind::Create => "create",
                file_event::Kind::Modify => "modify",
                file_event::Kind::Delete => "delete",
                file_event::Kind::Rename => "rename",
                file_event::Kind::Attrib => "attrib",
                file_event::Kind::Unspecified => "change",
            };
            let from = if f.old_path.is_empty() {
                String::new()
            } else {
                format!(" from {}", f.old_path)
            };
            let hash = if f.sha256.is_empty() {
                String::new()
            } else {
                format!(" sha256 {}", f.sha256)
            };
            let mode = match (f.kind(), f.setuid, f.setgid) {
                (file_event::Kind::Attrib, ..) | (_, true, _) | (_, _, true) => {
                    let bits = [(f.setuid, " setuid"), (f.setgid, " setgid")];
                    let named: String = bits.iter().filter(|b| b.0).map(|b| b.1).collect();
                    format!(" mode {:o} owner {}:{}{named}", f.mode, f.uid, f.gid)
                }
                _ => String::new(),
            };
            let by = match &f.process {
                Some(p) if p.pid != 0 => format!(" by {} (pid {})", p.exe, p.pid),
                _ => String::new(),
            };
            ("file", format!("{kind} {}{from}{mode}{hash}{by}", f.path))
        }
        Some(event::Body::Process(p)) => ("process", describe_process(p)),
        Some(event::Body::Network(n)) => ("network", super::describe_net::network(n)),
        Some(event::Body::Dns(d)) => ("dns", super::describe_net::dns(d)),
        Some(event::Body::Prevention(p)) => ("prevention", describe_prevention(p)),
        None => ("empty", String::new()),
    }
}

/// "exec /usr/bin/id -u (pid 7, ppid 1, user root, parent /bin/sh)", with the unusual standard
/// streams after it ("[stdin=socket 10.0.0.2:4444]"), or
/// "exit /usr/bin/id (pid 7) code 0 after 3 ms".
fn describe_process(p: &ProcessEvent) -> String {
    let partial = if p.partial { " [partial]" } else { "" };
    match p.kind() {
        process_event::Kind::Exit => {
            let how = if p.exit_signal > 0 {
                format!("signal {}", p.exit_signal)
            } else {
                format!("code {}", p.exit_code)
            };
            format!(
                "exit {} (pid {}) {how} after {} ms{partial}",
                p.exe, p.pid, p.lifetime_ms
            )
        }
        _ => {
            let user = if p.user.is_empty() {
                p.uid.to_string()
            } else {
                p.user.clone()
            };
            // Sockets on the standard streams, and a network peer behind a pipe.
            let stdio = cordon_proto::streams::summary(p)
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            format!(
                "exec {} {} (pid {}, ppid {}, user {user}, parent {}){stdio}{partial}",
                p.exe,
                p.argv.join(" "),
                p.pid,
                p.ppid,
                p.parent_exe
            )
        }
    }
}

/// "exec denied /tmp/x sha256 ab.. for /bin/bash (pid 7) [fanotify]", or
/// "tamper denied open_write /usr/bin/cordon-agent by /bin/bash (pid 7) [fanotify]".
fn describe_prevention(p: &cordon_proto::PreventionEvent) -> String {
    let what = match p.kind() {
        cordon_proto::prevention_event::Kind::ExecDenied => "exec denied",
        cordon_proto::prevention_event::Kind::TamperDenied => "tamper denied",
        cordon_proto::prevention_event::Kind::Unspecified => "denied",
    };
    let attempt = match p.attempt.as_str() {
        "" | "exec" => String::new(),
        a => format!(" {a}"),
    };
    let hash = match p.sha256.as_str() {
        "" => String::new(),
        h => format!(" sha256 {h}"),
    };
    let by = match &p.process {
        Some(r) if r.pid != 0 => format!(" by {} (pid {})", r.exe, r.pid),
        _ => String::new(),
    };
    format!("{what}{attempt} {}{hash}{by} [{}]", p.path, p.mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_proto::{FileEvent, ProcessRef};

    #[test]
    fn a_file_summary_names_the_writer_and_the_setuid_bit() {
        let e = Event {
            body: Some(event::Body::File(FileEvent {
                kind: file_event::Kind::Attrib as i32,
                path: "/var/tmp/x".into(),
                mode: 0o104755,
                setuid: true,
                process: Some(ProcessRef {
                    pid: 7,
                    exe: "/usr/bin/chmod".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            describe(&e),
            (
                "file",
                "attrib /var/tmp/x mode 104755 owner 0:0 setuid by /usr/bin/chmod (pid 7)".into()
            )
        );
    }
}
