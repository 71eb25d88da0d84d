//! The proto form of what the core returns: one function per record the admin API sends
//! (and the incident report, built here in the core, is made of).

use super::{IncidentDetails, PlaybookInfo, Presence};
use crate::policy::audit::{AuditRecord, Verification};
use crate::store::{
    AlertRow, ApprovalRow, CommandRow, CommandStatus, HuntSummary, IncidentRow, RuleRow,
    StoredEvent, TimelineRow,
};
use cordon_proto::{
    AgentRecord, AlertRecord, ApprovalRecord, CommandRecord, CommandResult, Event, EventRecord,
    HuntAgent, HuntRecord, IncidentRecord, PlaybookRecord, RuleRecord, TimelineEntry,
    VerifyAuditResponse, command_result,
};
use prost::Message;

pub fn agent_record(p: Presence) -> AgentRecord {
    let a = p.agent;
    AgentRecord {
        agent_id: a.id,
        host: Some(a.host),
        labels: a.labels,
        enrolled_at_ms: a.enrolled_at_ms,
        last_seen_ms: a.last_seen_ms,
        online: p.online,
        certificate_serial: a.cert_serial,
        certificate_expires_at_ms: a.cert_expires_at_ms,
        revoked: a.revoked_at_ms.is_some(),
        revoked_at_ms: a.revoked_at_ms.unwrap_or(0),
        process_sensor: a.process_sensor,
        isolation_desired: a.isolation_desired,
        containment: a.containment,
        metrics: a.metrics,
    }
}

pub fn event_record(e: &StoredEvent) -> EventRecord {
    EventRecord {
        agent_id: e.agent_id.clone(),
        seq: e.seq,
        time_ms: e.time_ms,
        kind: e.kind.clone(),
        summary: e.summary.clone(),
        received_at_ms: e.received_at_ms,
        event: Event::decode(e.body.as_slice()).ok(),
    }
}

pub fn rule_record(r: RuleRow) -> RuleRecord {
    RuleRecord {
        id: r.id,
        title: r.title,
        level: r.level,
        status: r.status,
        author: r.author,
        tags: r.tags,
        logsource: r.logsource,
        origin: r.origin,
        enabled: r.enabled,
        imported_at_ms: r.imported_at_ms,
    }
}

pub fn alert_record(a: AlertRow) -> AlertRecord {
    AlertRecord {
        id: a.id,
        agent_id: a.agent_id,
        rule_id: a.rule.rule_id,
        title: a.rule.title,
        level: a.rule.level,
        tags: a.rule.tags,
        author: a.rule.author,
        count: a.count,
        first_at_ms: a.first_at_ms,
        last_at_ms: a.last_at_ms,
        incident_id: a.incident_id,
        event: a.event.as_ref().map(event_record),
        source: a.source,
        detail: a.detail,
    }
}

fn timeline_entry(t: TimelineRow) -> TimelineEntry {
    TimelineEntry {
        at_ms: t.at_ms,
        kind: t.kind,
        actor: t.actor,
        text: t.text,
        r#ref: t.reference,
    }
}

pub fn incident_record(
    i: IncidentRow,
    timeline: Vec<TimelineRow>,
    alerts: Vec<AlertRow>,
) -> IncidentRecord {
    IncidentRecord {
        id: i.id,
        agent_id: i.agent_id,
        status: i.status.to_string(),
        severity: i.severity,
        title: i.title,
        opened_at_ms: i.opened_at_ms,
        updated_at_ms: i.updated_at_ms,
        alert_count: i.alert_count,
        timeline: timeline.into_iter().map(timeline_entry).collect(),
        alerts: alerts.into_iter().map(alert_record).collect(),
        approvals: Vec::new(),
    }
}

/// An incident with its timeline, alerts and approvals.
pub fn incident_details(d: IncidentDetails) -> IncidentRecord {
    let mut rec = incident_record(d.incident, d.timeline, d.alerts);
    rec.approvals = d.approvals.into_iter().map(approval_record).collect();
    rec
}

pub fn approval_record(a: ApprovalRow) -> ApprovalRecord {
    ApprovalRecord {
        id: a.id,
        run_id: a.run_id,
        incident_id: a.incident_id,
        agent_id: a.agent_id,
        what: a.what,
        reason: a.reason,
        status: a.status.to_string(),
        requested_at_ms: a.requested_at_ms,
        expires_at_ms: a.expires_at_ms,
        decided_by: a.decided_by,
        decided_at_ms: a.decided_at_ms,
        note: a.note,
        may_decide: match a.requested_by.strip_prefix("playbook:") {
            Some(_) => "a person with the approve permission".into(),
            None => format!(
                "a person with the approve permission other than {}",
                a.requested_by
            ),
        },
        requested_by: a.requested_by,
    }
}

pub fn playbook_record(p: PlaybookInfo) -> PlaybookRecord {
    PlaybookRecord {
        name: p.name,
        description: p.description,
        enabled: p.enabled,
        dry_run: p.dry_run,
        origin: p.origin,
        steps: p.steps as u32,
        updated_at_ms: p.updated_at_ms,
    }
}

/// The admin view of a stored command.
pub fn command_record(row: CommandRow) -> CommandRecord {
    let result = row
        .result
        .as_deref()
        .and_then(|b| CommandResult::decode(b).ok());
    let status = match row.status {
        CommandStatus::Pending => cordon_proto::CommandStatus::Pending,
        CommandStatus::Delivered => cordon_proto::CommandStatus::Delivered,
        CommandStatus::Succeeded => cordon_proto::CommandStatus::Succeeded,
        CommandStatus::Failed => cordon_proto::CommandStatus::Failed,
        CommandStatus::Expired => cordon_proto::CommandStatus::Expired,
    };
    CommandRecord {
        command_id: row.id,
        agent_id: row.agent_id,
        kind: row.kind,
        status: status as i32,
        created_at_ms: row.created_at_ms,
        expires_at_ms: row.expires_at_ms,
        delivered_at_ms: row.delivered_at_ms.unwrap_or(0),
        completed_at_ms: row.completed_at_ms.unwrap_or(0),
        error: row.error,
        created_by: row.created_by,
        result,
    }
}

/// The answer to a fan-out: every host with its command, if one went out.
pub fn fanout_response(f: super::FanOut) -> cordon_proto::IsolateByLabelsResponse {
    let hosts = f.hosts.into_iter().map(|h| cordon_proto::FanOutHost {
        agent_id: h.agent_id,
        hostname: h.hostname,
        command: h.command.map(command_record),
        error: h.error,
        skipped: h.skipped,
    });
    cordon_proto::IsolateByLabelsResponse {
        matched: f.matched as u32,
        hosts: hosts.collect(),
        dry_run: f.dry_run,
    }
}

pub fn audit_record(r: AuditRecord) -> cordon_proto::AuditRecord {
    cordon_proto::AuditRecord {
        seq: r.seq,
        time_ms: r.time_ms,
        actor: r.actor,
        action: r.action,
        target: r.target,
        detail: r.detail,
        outcome: r.outcome,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

pub fn verification(v: Verification) -> VerifyAuditResponse {
    let ok = v.ok();
    let (first_bad_seq, problem) = v.first_bad.unwrap_or_default();
    VerifyAuditResponse {
        ok,
        entries_checked: v.entries_checked,
        first_bad_seq,
        problem,
        last_seq: v.last_seq,
        last_hash: v.last_hash,
    }
}

/// The admin view of a hunt: its progress and, when given, each agent's command.
pub fn hunt_record(summary: HuntSummary, commands: Vec<CommandRow>) -> HuntRecord {
    let (h, n) = (summary.hunt, summary.counts);
    let agents = commands
        .into_iter()
        .map(|row| {
            let c = command_record(row);
            let rows = match c.result.as_ref().and_then(|r| r.output.as_ref()) {
                Some(command_result::Output::Collection(done)) => done.rows,
                _ => 0,
            };
            HuntAgent {
                agent_id: c.agent_id,
                command_id: c.command_id,
                status: c.status,
                error: c.error,
                rows,
            }
        })
        .collect();
    HuntRecord {
        hunt_id: h.id,
        collector: h.collector,
        args: h.args,
        selector: h.selector,
        created_by: h.created_by,
        created_at_ms: h.created_at_ms,
        expires_at_ms: h.expires_at_ms,
        cancelled_at_ms: h.cancelled_at_ms.unwrap_or(0),
        targeted: n.targeted,
        answered: n.succeeded,
        failed: n.failed,
        expired: n.expired,
        pending: n.pending,
        agents,
    }
}
