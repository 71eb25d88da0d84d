//! `cordonctl alerts list|show`: alerts raised by rules and indicators, with the rule's
//! author (the Sigma rules' licence asks for it on every match) and the event that matched.

use crate::cli::JSON_ONE;
use crate::cli::Listing;
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rpc::call;
use crate::term::{clean, outln};
use crate::text::{short, time};
use crate::{json, parse};
use clap::Subcommand;
use cordon_proto::*;

#[derive(Subcommand, Debug)]
pub enum AlertsCmd {
    /// Lists alerts, newest first.
    List {
        /// Alerts from this time on: RFC 3339, Unix milliseconds, or an age such as 1h (ago).
        #[arg(long, value_parser = parse::time)]
        since: Option<i64>,
        /// Minimum level: informational, low, medium, high, critical.
        #[arg(long)]
        level: Option<String>,
        /// Only this agent's alerts (id or an unambiguous prefix).
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        list: Listing,
    },
    /// Shows an alert: the rule, its author, the count and the event that matched.
    Show {
        /// Alert id.
        id: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: AlertsCmd) -> Result<(), CtlError> {
    match cmd {
        AlertsCmd::List {
            since,
            level,
            agent,
            list: Listing { limit, json },
        } => {
            let list = call(admin.list_alerts(ListAlertsRequest {
                since_ms: since.unwrap_or(0),
                level: level.unwrap_or_default(),
                agent_id: agent.unwrap_or_default(),
                limit,
            }))
            .await?;
            if json {
                return json::print_lines(&list.alerts);
            }
            list.alerts.iter().for_each(line);
        }
        AlertsCmd::Show { id, json } => {
            let a = call(admin.get_alert(GetAlertRequest { alert_id: id })).await?;
            if json {
                return json::print_one(&a);
            }
            show(&a);
        }
    }
    Ok(())
}

fn line(a: &AlertRecord) {
    outln!(
        "{:<20}  {:<25}  {:<12}  {:<8}  {:>5}  {}",
        a.id,
        time(a.first_at_ms),
        short(&a.agent_id),
        a.level,
        a.count,
        clean(&a.title)
    );
}

fn show(a: &AlertRecord) {
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
}
