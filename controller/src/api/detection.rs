//! The admin side of detection: importing rules and indicators, and the records
//! `cordonctl` shows for rules, alerts and incidents.

use super::Controller;
use super::admin::event_record;
use crate::detect::{iocs, outcome, row};
use crate::store::{AlertRow, IncidentRow, LEVELS, RuleRow, STATUSES, TimelineRow};
use cordon_proto::limits::{MAX_IOCS, MAX_RULE_BYTES, MAX_RULE_FILES};
use cordon_proto::time::now_ms;
use cordon_proto::*;
use tonic::Status;

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
        rule_id: a.rule_id,
        title: a.title,
        level: a.level,
        tags: a.tags,
        author: a.author,
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
        status: i.status,
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

/// The index of a level name, or a clear refusal.
pub fn level_index(level: &str) -> Result<usize, Status> {
    if level.is_empty() {
        return Ok(0);
    }
    LEVELS.iter().position(|l| *l == level).ok_or_else(|| {
        Status::invalid_argument(format!(
            "unknown level {level:?}: one of {}",
            LEVELS.join(", ")
        ))
    })
}

pub fn check_status(status: &str) -> Result<(), Status> {
    if STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "unknown incident status {status:?}: one of {}",
            STATUSES.join(", ")
        )))
    }
}

impl Controller {
    /// Compiles each file; the ones that load are stored and run from now on.
    pub async fn import_rules(&self, files: Vec<RuleFile>) -> Result<ImportRulesResponse, Status> {
        if files.len() > MAX_RULE_FILES {
            return Err(Status::invalid_argument(format!(
                "{} rule files in one import; at most {MAX_RULE_FILES}",
                files.len()
            )));
        }
        if let Some(f) = files.iter().find(|f| f.yaml.len() > MAX_RULE_BYTES) {
            return Err(Status::invalid_argument(format!(
                "{}: rule file of {} bytes is over the limit of {MAX_RULE_BYTES}",
                f.origin,
                f.yaml.len()
            )));
        }
        let now = now_ms();
        let mut outcomes = Vec::new();
        let mut rows = Vec::new();
        for f in files {
            let result = self.detector.compile(&f.origin, &f.yaml);
            outcomes.push(outcome(&f.origin, &result));
            if let Ok(rule) = result {
                rows.push(row(&rule, now));
            }
        }
        self.store.upsert_rules(rows).await?;
        Ok(ImportRulesResponse { outcomes })
    }

    /// Normalises every value first: one bad value refuses the whole import, naming it.
    pub async fn import_iocs(&self, r: ImportIocsRequest) -> Result<ImportIocsResponse, Status> {
        if !iocs::KINDS.contains(&r.kind.as_str()) {
            return Err(Status::invalid_argument(format!(
                "unknown indicator kind {:?}: sha256, ip or domain",
                r.kind
            )));
        }
        if r.list.is_empty() || r.list.len() > 128 {
            return Err(Status::invalid_argument(
                "an indicator list needs a name of 1 to 128 characters",
            ));
        }
        if r.values.len() > MAX_IOCS {
            return Err(Status::invalid_argument(format!(
                "{} indicators in one import; at most {MAX_IOCS}",
                r.values.len()
            )));
        }
        let values = r
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                iocs::normalise(&r.kind, v)
                    .map_err(|why| Status::invalid_argument(format!("entry {}: {why}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let done = self
            .store
            .add_iocs(r.kind.clone(), r.list.clone(), values.clone(), now_ms())
            .await?;
        self.detector.add_iocs(&r.kind, &r.list, &values);
        let own = self.own_addresses();
        let warnings = values
            .iter()
            .filter_map(|v| iocs::caution(&r.kind, v, &own))
            .collect();
        Ok(ImportIocsResponse {
            added: done.added,
            already_present: done.already_present,
            list_size: done.list_size,
            warnings,
        })
    }

    /// The addresses and names agents reach this controller by, normalised as indicators
    /// are: the listener's address, the URL's host and the server certificate's names.
    fn own_addresses(&self) -> Vec<String> {
        let c = &self.config;
        let url_host = c
            .url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(|h| h.trim_matches(['[', ']']).to_string()));
        let mut own: Vec<String> = c.names.iter().cloned().chain(url_host).collect();
        own.push(c.listen.ip().to_string());
        own.iter_mut().for_each(|o| *o = o.to_ascii_lowercase());
        own
    }
}
