//! Detection as administrators drive it: importing and enabling rules and indicators, and
//! the alerts and incidents detection raised.

use super::replicas::Signal;
use super::{Admin, Controller, CoreError};
use crate::detect::{iocs, outcome, row};
use crate::policy::grouping::LEVELS;
use crate::store::{AlertRow, IncidentRow, IncidentStatus, IocImport, RuleRow};
use crate::store::{Alerts, Rules};
use cordon_proto::RuleOutcome;
use cordon_proto::limits::{MAX_IOCS, MAX_RULE_BYTES, MAX_RULE_FILES, MAX_TEXT};
use cordon_proto::time::now_ms;
use serde_json::json;

/// Most rule ids named in the audit entry of one import.
const MAX_AUDITED_RULES: usize = 100;
/// Longest name of an indicator list.
const MAX_LIST_NAME: usize = 128;

/// A rule file to import: where it came from and its YAML.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub origin: String,
    pub yaml: String,
}

/// Indicators to add to a named list.
#[derive(Debug, Clone)]
pub struct IocList {
    pub kind: String,
    pub list: String,
    pub values: Vec<String>,
    /// Mark the list as a block list (sha256 lists only): its entries are denied at exec.
    pub block: bool,
}

/// An indicator import: what was stored, and values worth a second look.
#[derive(Debug, Clone)]
pub struct IocsImported {
    pub done: IocImport,
    pub warnings: Vec<String>,
}

/// The index of a level name (empty: the lowest), or a refusal naming the levels.
pub fn level_index(level: &str) -> Result<usize, CoreError> {
    if level.is_empty() {
        return Ok(0);
    }
    LEVELS
        .iter()
        .position(|l| *l == level)
        .ok_or_else(|| CoreError::UnknownLevel(level.into()))
}

/// An incident status by name, or a refusal naming the statuses.
pub fn incident_status(status: &str) -> Result<IncidentStatus, CoreError> {
    IncidentStatus::parse(status).ok_or_else(|| CoreError::UnknownIncidentStatus(status.into()))
}

impl Controller {
    /// Compiles each file; the ones that load are stored and run from now on.
    pub async fn import_rules(
        &self,
        admin: &Admin,
        files: Vec<RuleFile>,
    ) -> Result<Vec<RuleOutcome>, CoreError> {
        let entry = admin
            .entry("rules.import", "")
            .detail(json!({ "files": files.len() }));
        let result = self.compile_rules(files).await;
        self.audited(entry, result, |outcomes, e| {
            let count = |o: &str| outcomes.iter().filter(|x| x.outcome == o).count();
            let loaded: Vec<&str> = outcomes
                .iter()
                .filter(|x| x.outcome == "loaded")
                .map(|x| x.rule_id.as_str())
                .take(MAX_AUDITED_RULES)
                .collect();
            e.detail["loaded"] = json!(count("loaded"));
            e.detail["refused"] = json!(count("refused"));
            e.detail["skipped"] = json!(count("skipped"));
            e.detail["rule_ids"] = json!(loaded);
        })
        .await
    }

    pub(super) async fn compile_rules(
        &self,
        files: Vec<RuleFile>,
    ) -> Result<Vec<RuleOutcome>, CoreError> {
        if files.len() > MAX_RULE_FILES {
            return Err(CoreError::TooManyRuleFiles(files.len()));
        }
        if let Some(f) = files.iter().find(|f| f.yaml.len() > MAX_RULE_BYTES) {
            return Err(CoreError::RuleTooLarge {
                origin: f.origin.clone(),
                size: f.yaml.len(),
            });
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
        self.signal(Signal::Detection).await;
        Ok(outcomes)
    }

    pub async fn rules(&self) -> Result<Vec<RuleRow>, CoreError> {
        Ok(self.store.rules().await?)
    }

    pub async fn set_rule_enabled(
        &self,
        admin: &Admin,
        rule_id: &str,
        enabled: bool,
    ) -> Result<RuleRow, CoreError> {
        let action = if enabled {
            "rule.enable"
        } else {
            "rule.disable"
        };
        let entry = admin.entry(action, format!("rule:{rule_id}"));
        let result = async {
            let row = self
                .store
                .set_rule_enabled(rule_id.to_string(), enabled)
                .await?
                .ok_or_else(|| CoreError::NoRule(rule_id.into()))?;
            self.detector.set_enabled(&row.id, row.enabled);
            self.signal(Signal::Detection).await;
            Ok(row)
        }
        .await;
        self.audited(entry, result, |_, _| {}).await
    }

    /// Normalises every value first: one bad value refuses the whole import, naming it.
    pub async fn import_iocs(&self, admin: &Admin, r: IocList) -> Result<IocsImported, CoreError> {
        let entry = admin
            .entry("iocs.import", format!("iocs:{}:{}", r.kind, r.list))
            .detail(json!({ "values": r.values.len(), "block": r.block }));
        let result = self.add_iocs(r).await;
        self.audited(entry, result, |r, e| {
            e.detail["added"] = json!(r.done.added);
            e.detail["already_present"] = json!(r.done.already_present);
            e.detail["list_size"] = json!(r.done.list_size);
        })
        .await
    }

    async fn add_iocs(&self, r: IocList) -> Result<IocsImported, CoreError> {
        if !iocs::KINDS.contains(&r.kind.as_str()) {
            return Err(CoreError::UnknownIocKind(r.kind));
        }
        if r.list.is_empty() || r.list.len() > MAX_LIST_NAME {
            return Err(CoreError::BadIocList);
        }
        if r.values.len() > MAX_IOCS {
            return Err(CoreError::TooManyIocs(r.values.len()));
        }
        if r.block && r.kind != "sha256" {
            return Err(CoreError::BlockNeedsSha256(r.kind));
        }
        let values = r
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                iocs::normalise(&r.kind, v).map_err(|why| CoreError::BadIoc { entry: i + 1, why })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let done = self
            .store
            .add_iocs(r.kind.clone(), r.list.clone(), values.clone(), now_ms())
            .await?;
        if r.block {
            self.store
                .mark_block_list(r.kind.clone(), r.list.clone())
                .await?;
        }
        self.detector.add_iocs(&r.kind, &r.list, &values);
        self.signal(Signal::Detection).await;
        let own = self.own_addresses();
        let warnings = values
            .iter()
            .filter_map(|v| iocs::caution(&r.kind, v, &own))
            .collect();
        Ok(IocsImported { done, warnings })
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

    /// Alerts since `since_ms` at `level` or above, for one agent (id or prefix) or all.
    pub async fn alerts(
        &self,
        since_ms: i64,
        level: &str,
        agent: &str,
        limit: u32,
    ) -> Result<Vec<AlertRow>, CoreError> {
        let min_level = level_index(level)?;
        let agent_id = self.resolve_optional(agent).await?;
        let limit = super::agents::list_limit(limit)?;
        Ok(self
            .store
            .alerts(since_ms, min_level, agent_id, limit)
            .await?)
    }

    pub async fn alert(&self, id: &str) -> Result<AlertRow, CoreError> {
        self.store
            .alert(id.to_string())
            .await?
            .ok_or_else(|| CoreError::NoAlert(id.into()))
    }

    /// Incidents, newest first, with `status` if one is given.
    pub async fn incidents(&self, status: &str, limit: u32) -> Result<Vec<IncidentRow>, CoreError> {
        let status = match status {
            "" => None,
            s => Some(incident_status(s)?),
        };
        let limit = super::agents::list_limit(limit)?;
        Ok(self.store.incidents(status, limit).await?)
    }

    /// Sets an incident's status (by id or prefix); returns its id.
    pub async fn set_incident_status(
        &self,
        admin: &Admin,
        incident: &str,
        status: &str,
    ) -> Result<String, CoreError> {
        let entry = admin
            .entry("incident.set_status", format!("incident:{incident}"))
            .detail(json!({ "status": status }));
        let result = async {
            let status = incident_status(status)?;
            self.store
                .set_incident_status(incident.to_string(), status, admin.name.clone(), now_ms())
                .await?
                .ok_or_else(|| CoreError::NoIncident(incident.into()))
        }
        .await;
        self.audited(entry, result, |id, e| e.target = format!("incident:{id}"))
            .await
    }

    /// Sets an incident's severity (a level name), on its timeline with who did it and why;
    /// returns its id. Later alerts may raise it again, never lower it.
    pub async fn set_incident_severity(
        &self,
        admin: &Admin,
        incident: &str,
        severity: &str,
        reason: &str,
    ) -> Result<String, CoreError> {
        let entry = admin
            .entry("incident.set_severity", format!("incident:{incident}"))
            .detail(json!({ "severity": severity, "reason": reason }));
        let result = async {
            if severity.is_empty() {
                return Err(CoreError::UnknownLevel(severity.into()));
            }
            level_index(severity)?;
            if reason.len() > MAX_TEXT {
                return Err(CoreError::BadNote);
            }
            let Some((inc, _, _)) = self.store.incident(incident.into()).await? else {
                return Err(CoreError::NoIncident(incident.into()));
            };
            self.store
                .set_incident_severity(inc.id.clone(), severity.into())
                .await?;
            let why = match reason.trim() {
                "" => String::new(),
                r => format!(": {r}"),
            };
            let text = format!("severity {} -> {severity}{why}", inc.severity);
            self.timeline(&inc.id, "severity", &admin.name, text, "")
                .await?;
            Ok(inc.id)
        }
        .await;
        self.audited(entry, result, |id, e| e.target = format!("incident:{id}"))
            .await
    }
}
