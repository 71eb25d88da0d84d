//! `cordonctl rules import|list|enable|disable|test`: Sigma rules. `rules test` runs offline,
//! with the same engine the controller runs.

use crate::chunks;
use crate::cli::JSON_LINES;
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::json;
use crate::rpc::call;
use crate::term::{clean, outln};
use clap::Subcommand;
use cordon_proto::limits::{MAX_RULE_BYTES, MAX_RULE_FILES};
use cordon_proto::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// Imports Sigma rules from a file or a directory (recursively, *.yml and *.yaml).
    Import {
        /// A rule file or a directory of them.
        path: PathBuf,
        /// Print JSON lines (one object per rule file: origin, rule, outcome, reason).
        #[arg(long)]
        json: bool,
    },
    /// Lists the stored rules: id, enabled, level, log source, title.
    List {
        #[arg(long, help = JSON_LINES)]
        json: bool,
    },
    /// Enables a rule: it runs on every event from now on.
    Enable {
        /// Rule id.
        id: String,
    },
    /// Disables a rule: it stays stored but no longer runs.
    Disable {
        /// Rule id.
        id: String,
    },
    /// Evaluates a rule file against one event, offline. The event is a JSON object: an
    /// event as `events query --json` prints it, or Sigma fields such as
    /// {"Image": "/usr/bin/curl", "CommandLine": "curl ..."} (with "category":
    /// "process_creation" or "file_event"; process_creation if absent).
    Test {
        /// The Sigma rule file.
        file: PathBuf,
        /// The event, as JSON.
        #[arg(long)]
        event: String,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: RulesCmd) -> Result<(), CtlError> {
    match cmd {
        RulesCmd::Import { path, json } => import(admin, &path, json).await,
        RulesCmd::List { json } => {
            let list = call(admin.list_rules(ListRulesRequest {})).await?;
            if json {
                return json::print_lines(&list.rules);
            }
            for r in &list.rules {
                outln!(
                    "{:<38}  {:<8}  {:<13}  {:<16}  {}",
                    r.id,
                    if r.enabled { "enabled" } else { "disabled" },
                    r.level,
                    r.logsource,
                    clean(&r.title)
                );
            }
            Ok(())
        }
        RulesCmd::Enable { id } => set_enabled(admin, id, true).await,
        RulesCmd::Disable { id } => set_enabled(admin, id, false).await,
        RulesCmd::Test { .. } => Err(CtlError::Input("rules test runs offline".into())),
    }
}

async fn import(admin: &mut AdminClient, path: &Path, json: bool) -> Result<(), CtlError> {
    let files = rule_files(path)?;
    if files.is_empty() {
        return Err(CtlError::Input(format!(
            "no rule files (*.yml, *.yaml) under {}",
            path.display()
        )));
    }
    let mut outcomes = Vec::new();
    let size = |f: &RuleFile| f.yaml.len() + f.origin.len();
    for files in chunks::split(files, size, MAX_RULE_FILES) {
        let part = call(admin.import_rules(ImportRulesRequest { files })).await?;
        outcomes.extend(part.outcomes);
    }
    if json {
        return json::print_lines(&outcomes);
    }
    let count = |o: &str| outcomes.iter().filter(|x| x.outcome == o).count();
    for o in outcomes.iter().filter(|o| o.outcome != "loaded") {
        outln!("{:<8} {}: {}", o.outcome, o.origin, o.reason);
    }
    outln!(
        "{} loaded, {} refused, {} skipped",
        count("loaded"),
        count("refused"),
        count("skipped")
    );
    Ok(())
}

/// The rule files under `path` (or `path` itself), sorted, each checked against its limit.
fn rule_files(path: &Path) -> Result<Vec<RuleFile>, CtlError> {
    let paths = if path.is_dir() {
        let (files, unreadable) = cordon_detect::yaml_files(path);
        if let Some((dir, e)) = unreadable.into_iter().next() {
            return Err(CtlError::Read {
                path: dir,
                source: e,
            });
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    paths
        .into_iter()
        .map(|p| {
            let yaml = std::fs::read_to_string(&p).map_err(CtlError::read(&p))?;
            let origin = p.display().to_string();
            chunks::check_size("rule file", &origin, yaml.len(), MAX_RULE_BYTES)?;
            Ok(RuleFile { origin, yaml })
        })
        .collect()
}

async fn set_enabled(
    admin: &mut AdminClient,
    rule_id: String,
    enabled: bool,
) -> Result<(), CtlError> {
    if rule_id.is_empty() {
        return Err(CtlError::Input("a rule id is required".into()));
    }
    let r = call(admin.set_rule_enabled(SetRuleEnabledRequest { rule_id, enabled })).await?;
    let state = if r.enabled { "enabled" } else { "disabled" };
    outln!("{} {state}", r.id);
    Ok(())
}

/// `rules test FILE --event JSON`: prints the match, or says why it does not match; true on
/// a match.
pub fn test_rule(file: &Path, event: &str) -> Result<bool, CtlError> {
    let yaml = std::fs::read_to_string(file).map_err(CtlError::read(file))?;
    let invalid = |e: cordon_detect::RuleError| CtlError::Input(e.to_string());
    let rule = cordon_detect::parse_rule(&yaml, &file.display().to_string()).map_err(invalid)?;
    let mut set = cordon_detect::RuleSet::new();
    set.insert(rule.clone()).map_err(invalid)?;
    let value: Value = serde_json::from_str(event)
        .map_err(|e| CtlError::Input(format!("--event is not valid JSON: {e}")))?;
    let matches = match json::event_from_json(&value) {
        Some(e) => set.evaluate(&e),
        None => {
            let (category, fields) = sigma_fields(value)?;
            set.evaluate_fields(&category, &fields)
        }
    };
    match matches.first() {
        Some(m) => outln!(
            "MATCH {} ({}, {}) by {}",
            m.title,
            m.rule_id,
            m.level,
            m.author
        ),
        None => outln!("no match: {} ({})", rule.title, rule.id),
    }
    Ok(!matches.is_empty())
}

/// An event given as Sigma fields: the category (process_creation unless given) and the
/// fields as text.
fn sigma_fields(value: Value) -> Result<(String, HashMap<String, String>), CtlError> {
    let Value::Object(map) = value else {
        return Err(CtlError::Input("--event must be a JSON object".into()));
    };
    let category = map
        .get("category")
        .and_then(|c| c.as_str())
        .unwrap_or("process_creation")
        .to_string();
    let fields = map
        .into_iter()
        .filter(|(k, _)| k != "category")
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    Ok((category, fields))
}
