//! Detection on the ingest path: the compiled Sigma rules (`cordon-detect`) and indicator
//! lists, judged for every stored event before its batch commits. Rules come from the
//! configured directory at start and from `cordonctl rules import`; both are kept in the
//! store (with their enabled flag) and compiled once.

pub mod iocs;
pub mod prevention;

use crate::policy::grouping::Grouping;
use crate::store::Rules;
use crate::store::{Finding, RuleRow, StoreError};
use cordon_detect::{Rule, RuleIdentity, RuleSet, parse_rule};
use cordon_proto::{Event, RuleOutcome};
use std::path::Path;
use std::sync::RwLock;

pub struct Detector {
    rules: RwLock<RuleSet>,
    iocs: RwLock<iocs::Iocs>,
    pub grouping: Grouping,
}

/// The stored form of a parsed rule.
pub fn row(rule: &Rule, now_ms: i64) -> RuleRow {
    RuleRow {
        id: rule.id.clone(),
        title: rule.title.clone(),
        level: rule.level.clone(),
        status: rule.status.clone(),
        author: rule.author.clone(),
        tags: rule.tags.clone(),
        logsource: rule.logsource.category.clone().unwrap_or_default(),
        origin: rule.origin.clone(),
        source: rule.source.clone(),
        enabled: true,
        imported_at_ms: now_ms,
    }
}

/// What happened to one rule file.
pub fn outcome(origin: &str, result: &Result<Rule, cordon_detect::RuleError>) -> RuleOutcome {
    match result {
        Ok(rule) => RuleOutcome {
            origin: origin.into(),
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            outcome: "loaded".into(),
            reason: String::new(),
        },
        Err(e) => RuleOutcome {
            origin: origin.into(),
            outcome: if e.is_skipped() { "skipped" } else { "refused" }.into(),
            reason: e.to_string(),
            ..Default::default()
        },
    }
}

impl Detector {
    pub fn new(grouping: Grouping) -> Self {
        Self {
            rules: RwLock::new(RuleSet::new()),
            iocs: RwLock::default(),
            grouping,
        }
    }

    fn rules_mut(&self) -> std::sync::RwLockWriteGuard<'_, RuleSet> {
        self.rules.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Parses and compiles a rule file; a rule that loads is also installed (enabled).
    pub fn compile(&self, origin: &str, yaml: &str) -> Result<Rule, cordon_detect::RuleError> {
        let rule = parse_rule(yaml, origin)?;
        self.rules_mut().insert(rule.clone())?;
        Ok(rule)
    }

    pub fn set_enabled(&self, id: &str, enabled: bool) {
        self.rules_mut().set_enabled(id, enabled);
    }

    pub fn rule_count(&self) -> usize {
        self.rules.read().map(|r| r.rules().count()).unwrap_or(0)
    }

    /// Loads the rules directory (if any) into the store, then every stored rule and
    /// indicator into memory. Rules that do not load are logged with their reason.
    pub async fn load(
        &self,
        store: &impl Rules,
        rules_dir: Option<&Path>,
    ) -> Result<(), StoreError> {
        let now = cordon_proto::time::now_ms();
        if let Some(dir) = rules_dir {
            let report = cordon_detect::load_dir(dir);
            for (path, why) in report.refused.iter().chain(&report.skipped) {
                tracing::warn!(path = %path, "rule not loaded: {why}");
            }
            tracing::info!(
                dir = %dir.display(),
                loaded = report.loaded.len(),
                refused = report.refused.len(),
                skipped = report.skipped.len(),
                "rules directory read"
            );
            store
                .upsert_rules(report.loaded.iter().map(|r| row(r, now)).collect())
                .await?;
        }
        for r in store.rules().await? {
            match self.compile(&r.origin, &r.source) {
                Ok(_) => self.set_enabled(&r.id, r.enabled),
                Err(e) => tracing::error!(rule = %r.id, "stored rule no longer loads: {e}"),
            }
        }
        let stored = store.iocs().await?;
        let mut iocs = self.iocs.write().unwrap_or_else(|p| p.into_inner());
        for (kind, value, list) in stored {
            iocs.add(&kind, &value, &list);
        }
        drop(iocs);
        tracing::info!(rules = self.rule_count(), "detection ready");
        Ok(())
    }

    pub fn add_iocs(&self, kind: &str, list: &str, values: &[String]) {
        let mut iocs = self.iocs.write().unwrap_or_else(|p| p.into_inner());
        for v in values {
            iocs.add(kind, v, list);
        }
    }

    /// Everything the event matches: enabled rules, then indicators.
    pub fn judge(&self, e: &Event) -> Vec<Finding> {
        let mut found: Vec<Finding> = self
            .rules
            .read()
            .map(|r| r.evaluate(e))
            .unwrap_or_default()
            .into_iter()
            .map(|rule| Finding {
                rule,
                source: "sigma".into(),
                detail: String::new(),
            })
            .collect();
        let iocs = self.iocs.read().unwrap_or_else(|p| p.into_inner());
        found.extend(prevention::finding(e, |h| iocs.sha256_lists(h)));
        for hit in iocs.check(e) {
            for list in hit.lists {
                let rule = RuleIdentity {
                    rule_id: format!("ioc:{}:{list}", hit.kind),
                    title: format!("Indicator on list {list}: {} {}", hit.kind, hit.value),
                    level: "high".into(),
                    tags: vec![format!("ioc.{}", hit.kind)],
                    author: "cordon".into(),
                };
                found.push(Finding {
                    rule,
                    source: "ioc".into(),
                    detail: format!("{} {} is on list {list}", hit.kind, hit.value),
                });
            }
        }
        found
    }
}
