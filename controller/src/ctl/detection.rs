//! `cordonctl rules|iocs|alerts|incidents`: detection content in, alerts and incidents out.
//! `rules test` runs offline, with the same engine the controller runs.

use super::chunks;
use super::output::time;
use super::term::{clean, outln};
use super::{call, parse_time, print_json};
use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use cordon_proto::admin_service_client::AdminServiceClient;
use cordon_proto::limits::{MAX_IOCS, MAX_RULE_BYTES, MAX_RULE_FILES};
use cordon_proto::*;
use std::path::{Path, PathBuf};
use tonic::transport::Channel;

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// Imports Sigma rules from a file or a directory (recursively, *.yml and *.yaml).
    Import {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    /// Evaluates a rule file against one event, offline. The event is a JSON object: an
    /// event as `events query --json` prints it, or Sigma fields such as
    /// {"Image": "/usr/bin/curl", "CommandLine": "curl ..."} (with "category":
    /// "process_creation" or "file_event"; process_creation if absent).
    Test {
        file: PathBuf,
        #[arg(long)]
        event: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum IocsCmd {
    /// Imports indicators from a file, one per line (blank lines and # comments skipped).
    Import {
        file: PathBuf,
        /// sha256, ip or domain.
        #[arg(long)]
        kind: String,
        /// The list's name (default: the file name).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AlertsCmd {
    List {
        /// A time: RFC 3339, Unix milliseconds, or an age such as 1h (ago).
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        /// Minimum level: informational, low, medium, high, critical.
        #[arg(long)]
        level: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, default_value_t = 100, value_parser = super::parse_limit)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum IncidentsCmd {
    List {
        /// open, contained, resolved or false_positive.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100, value_parser = super::parse_limit)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    SetStatus {
        id: String,
        /// open, contained, resolved or false_positive.
        status: String,
        #[arg(long)]
        json: bool,
    },
    /// Adds a note to the incident's timeline.
    Note { id: String, text: String },
    /// A post-incident report: the host, the alerts, what was done and by whom, time to
    /// detect and time to contain.
    Report {
        id: String,
        /// md (Markdown) or json.
        #[arg(long, default_value = "md")]
        format: String,
    },
}

/// The rule files under `path` (or `path` itself), sorted.
fn rule_files(path: &Path) -> anyhow::Result<Vec<RuleFile>> {
    let paths = if path.is_dir() {
        let (files, unreadable) = cordon_detect::yaml_files(path);
        if let Some((dir, e)) = unreadable.into_iter().next() {
            bail!("reading {}: {e}", dir.display());
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    paths
        .into_iter()
        .map(|p| {
            let yaml =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            let origin = p.display().to_string();
            chunks::check_size("rule file", &origin, yaml.len(), MAX_RULE_BYTES)?;
            Ok(RuleFile { origin, yaml })
        })
        .collect()
}

pub async fn rules(client: &mut AdminServiceClient<Channel>, cmd: RulesCmd) -> anyhow::Result<()> {
    match cmd {
        RulesCmd::Import { path, json } => {
            let files = rule_files(&path)?;
            if files.is_empty() {
                bail!("no rule files (*.yml, *.yaml) under {}", path.display());
            }
            let mut resp = ImportRulesResponse::default();
            let size = |f: &RuleFile| f.yaml.len() + f.origin.len();
            for files in chunks::split(files, size, MAX_RULE_FILES) {
                let part = call(client.import_rules(ImportRulesRequest { files })).await?;
                resp.outcomes.extend(part.outcomes);
            }
            if json {
                return print_json(&resp);
            }
            let count = |o: &str| resp.outcomes.iter().filter(|x| x.outcome == o).count();
            for o in resp.outcomes.iter().filter(|o| o.outcome != "loaded") {
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
        RulesCmd::List { json } => {
            let list = call(client.list_rules(ListRulesRequest {})).await?;
            if json {
                return print_json(&list);
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
        RulesCmd::Enable { id } | RulesCmd::Disable { id } if id.is_empty() => {
            bail!("a rule id is required")
        }
        RulesCmd::Enable { id } => set_enabled(client, id, true).await,
        RulesCmd::Disable { id } => set_enabled(client, id, false).await,
        RulesCmd::Test { .. } => Err(anyhow!("rules test runs offline")),
    }
}

async fn set_enabled(
    client: &mut AdminServiceClient<Channel>,
    rule_id: String,
    enabled: bool,
) -> anyhow::Result<()> {
    let r = call(client.set_rule_enabled(SetRuleEnabledRequest { rule_id, enabled })).await?;
    outln!(
        "{} {}",
        r.id,
        if r.enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// `rules test FILE --event JSON`: prints the match, or says why it does not match; the
/// exit status is 0 on a match, 1 otherwise.
pub fn test_rule(file: &Path, event: &str) -> anyhow::Result<bool> {
    let yaml =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let rule = cordon_detect::parse_rule(&yaml, &file.display().to_string())
        .map_err(|e| anyhow!("{e}"))?;
    let mut set = cordon_detect::RuleSet::new();
    set.insert(rule.clone()).map_err(|e| anyhow!("{e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(event).context("--event is not valid JSON")?;
    let matches = match serde_json::from_value::<EventRecord>(value.clone()) {
        Ok(EventRecord { event: Some(e), .. }) => set.evaluate(&e),
        _ => {
            let serde_json::Value::Object(map) = value else {
                bail!("--event must be a JSON object");
            };
            let category = map
                .get("category")
                .and_then(|c| c.as_str())
                .unwrap_or("process_creation")
                .to_string();
            let fields: std::collections::HashMap<String, String> = map
                .into_iter()
                .filter(|(k, _)| k != "category")
                .map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect();
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

pub async fn iocs(client: &mut AdminServiceClient<Channel>, cmd: IocsCmd) -> anyhow::Result<()> {
    let IocsCmd::Import { file, kind, name } = cmd;
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let values = ioc_values(&file, &text, &kind)?;
    let list = name.unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "iocs".into())
    });
    let (mut added, mut present, mut size, mut warnings) = (0, 0, 0, Vec::new());
    for values in chunks::split(values, String::len, MAX_IOCS) {
        let request = ImportIocsRequest {
            kind: kind.clone(),
            list: list.clone(),
            values,
        };
        let r = call(client.import_iocs(request)).await.with_context(|| {
            format!(
                "{} of the file's entries were imported before this",
                added + present
            )
        })?;
        (added, present, size) = (added + r.added, present + r.already_present, r.list_size);
        warnings.extend(r.warnings);
    }
    for w in &warnings {
        eprintln!("warning: {}", clean(w));
    }
    outln!("{kind} list {list}: {added} added, {present} already present, {size} in all");
    Ok(())
}

/// The indicators of a file, one per line (blank lines and # comments skipped), each checked
/// here first: one bad line refuses the whole file, naming the line, before anything is sent.
fn ioc_values(file: &Path, text: &str, kind: &str) -> anyhow::Result<Vec<String>> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(line, v)| {
            crate::detect::iocs::normalise(kind, v)
                .map(|_| v.to_string())
                .map_err(|why| anyhow!("{}:{line}: {why}", file.display()))
        })
        .collect()
}

fn print_alert_line(a: &AlertRecord) {
    outln!(
        "{:<20}  {:<25}  {:<12}  {:<8}  {:>5}  {}",
        a.id,
        time(a.first_at_ms),
        a.agent_id.get(..12).unwrap_or(&a.agent_id),
        a.level,
        a.count,
        clean(&a.title)
    );
}

pub async fn alerts(
    client: &mut AdminServiceClient<Channel>,
    cmd: AlertsCmd,
) -> anyhow::Result<()> {
    match cmd {
        AlertsCmd::List {
            since,
            level,
            agent,
            limit,
            json,
        } => {
            let list = call(client.list_alerts(ListAlertsRequest {
                since_ms: since.unwrap_or(0),
                level: level.unwrap_or_default(),
                agent_id: agent.unwrap_or_default(),
                limit,
            }))
            .await?;
            if json {
                return print_json(&list);
            }
            list.alerts.iter().for_each(print_alert_line);
            Ok(())
        }
        AlertsCmd::Show { id, json } => {
            let a = call(client.get_alert(GetAlertRequest { alert_id: id })).await?;
            if json {
                return print_json(&a);
            }
            outln!("alert     {}", a.id);
            outln!("rule      {} ({})", clean(&a.title), a.rule_id);
            outln!("level     {}", a.level);
            outln!("author    {}", a.author);
            outln!("tags      {}", a.tags.join(", "));
            outln!("agent     {}", a.agent_id);
            outln!("incident  {}", a.incident_id);
            outln!(
                "seen      {} times, {} .. {}",
                a.count,
                time(a.first_at_ms),
                time(a.last_at_ms)
            );
            if !a.detail.is_empty() {
                outln!("detail    {}", clean(&a.detail));
            }
            if let Some(e) = &a.event {
                outln!("event     #{} {}", e.seq, clean(&e.summary));
            }
            Ok(())
        }
    }
}

pub async fn incidents(
    client: &mut AdminServiceClient<Channel>,
    cmd: IncidentsCmd,
) -> anyhow::Result<()> {
    let show = |i: &IncidentRecord, json: bool| -> anyhow::Result<()> {
        if json {
            return print_json(i);
        }
        outln!("incident  {}", i.id);
        outln!("title     {}", clean(&i.title));
        outln!("agent     {}", i.agent_id);
        outln!("status    {}", i.status);
        outln!("severity  {}", i.severity);
        outln!("opened    {}", time(i.opened_at_ms));
        outln!("alerts    {}", i.alert_count);
        outln!("timeline:");
        for t in &i.timeline {
            outln!(
                "  {}  {:<8}  {:<20}  {}",
                time(t.at_ms),
                t.kind,
                t.actor,
                clean(&t.text)
            );
        }
        let pending: Vec<_> = i
            .approvals
            .iter()
            .filter(|a| a.status == "pending")
            .collect();
        if !pending.is_empty() {
            outln!("waiting for approval:");
            pending
                .into_iter()
                .for_each(super::playbooks::approval_line);
        }
        Ok(())
    };
    match cmd {
        IncidentsCmd::List {
            status,
            limit,
            json,
        } => {
            let list = call(client.list_incidents(ListIncidentsRequest {
                status: status.unwrap_or_default(),
                limit,
            }))
            .await?;
            if json {
                return print_json(&list);
            }
            for i in &list.incidents {
                outln!(
                    "{:<20}  {:<25}  {:<12}  {:<14}  {:<8}  {:>4}  {}",
                    i.id,
                    time(i.updated_at_ms),
                    i.agent_id.get(..12).unwrap_or(&i.agent_id),
                    i.status,
                    i.severity,
                    i.alert_count,
                    clean(&i.title)
                );
            }
            Ok(())
        }
        IncidentsCmd::Show { id, json } => {
            let i = call(client.get_incident(GetIncidentRequest { incident_id: id })).await?;
            show(&i, json)
        }
        IncidentsCmd::Note { id, text } => {
            let i = call(client.add_incident_note(AddIncidentNoteRequest {
                incident_id: id,
                text,
            }))
            .await?;
            outln!("note added to {}", i.id);
            Ok(())
        }
        IncidentsCmd::Report { id, format } => {
            if !super::report::FORMATS.contains(&format.as_str()) {
                bail!("unknown report format {format:?}: md or json");
            }
            let r = call(client.get_incident_report(GetIncidentReportRequest { incident_id: id }))
                .await?;
            if format == "json" {
                return print_json(&r);
            }
            super::term::emit(&super::report::markdown(&r), true);
            Ok(())
        }
        IncidentsCmd::SetStatus { id, status, json } => {
            let i = call(client.set_incident_status(SetIncidentStatusRequest {
                incident_id: id,
                status,
            }))
            .await?;
            show(&i, json)
        }
    }
}
