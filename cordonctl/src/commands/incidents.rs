//! `cordonctl incidents list|show|set-status|note|report`: alerts on a host grouped into an
//! incident, its status and timeline, and the post-incident report.

use super::approvals::approval_line;
use crate::cli::JSON_ONE;
use crate::cli::Listing;
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::json;
use crate::rpc::call;
use crate::term::{clean, emit, outln};
use crate::text::{short, time};
use clap::{Subcommand, ValueEnum};
use cordon_proto::report;
use cordon_proto::*;

#[derive(Subcommand, Debug)]
pub enum IncidentsCmd {
    /// Lists incidents, most recently updated first.
    List {
        /// Only incidents with this status: open, contained, resolved or false_positive.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        list: Listing,
    },
    /// Shows an incident: status, severity, timeline and the approvals it waits for.
    Show {
        /// Incident id.
        id: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Sets an incident's status (recorded on its timeline and in the audit log).
    SetStatus {
        /// Incident id.
        id: String,
        /// open, contained, resolved or false_positive.
        status: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Adds a note to the incident's timeline.
    Note {
        /// Incident id.
        id: String,
        /// The note.
        text: String,
    },
    /// A post-incident report: the host, the alerts, what was done and by whom, time to
    /// detect and time to contain.
    Report {
        /// Incident id.
        id: String,
        /// md (Markdown) or json (one object).
        #[arg(long, value_enum, default_value_t = Format::Md)]
        format: Format,
    },
}

/// The formats of `incidents report`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown, for people.
    Md,
    /// One JSON object, for scripts.
    Json,
}

pub async fn run(admin: &mut AdminClient, cmd: IncidentsCmd) -> Result<(), CtlError> {
    match cmd {
        IncidentsCmd::List {
            status,
            list: Listing { limit, json },
        } => {
            let list = call(admin.list_incidents(ListIncidentsRequest {
                status: status.unwrap_or_default(),
                limit,
            }))
            .await?;
            if json {
                return json::print_lines(&list.incidents);
            }
            list.incidents.iter().for_each(line);
            Ok(())
        }
        IncidentsCmd::Show { id, json } => {
            let i = call(admin.get_incident(GetIncidentRequest { incident_id: id })).await?;
            show(&i, json)
        }
        IncidentsCmd::SetStatus { id, status, json } => {
            let req = SetIncidentStatusRequest {
                incident_id: id,
                status,
            };
            show(&call(admin.set_incident_status(req)).await?, json)
        }
        IncidentsCmd::Note { id, text } => {
            let req = AddIncidentNoteRequest {
                incident_id: id,
                text,
            };
            let i = call(admin.add_incident_note(req)).await?;
            outln!("note added to {}", i.id);
            Ok(())
        }
        IncidentsCmd::Report { id, format } => {
            let req = GetIncidentReportRequest { incident_id: id };
            let r = call(admin.get_incident_report(req)).await?;
            if format == Format::Json {
                return json::print_one(&r);
            }
            emit(&report::markdown(&r), true);
            Ok(())
        }
    }
}

fn line(i: &IncidentRecord) {
    outln!(
        "{:<20}  {:<25}  {:<12}  {:<14}  {:<8}  {:>4}  {}",
        i.id,
        time(i.updated_at_ms),
        short(&i.agent_id),
        i.status,
        i.severity,
        i.alert_count,
        clean(&i.title)
    );
}

fn show(i: &IncidentRecord, as_json: bool) -> Result<(), CtlError> {
    if as_json {
        return json::print_one(i);
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
        pending.into_iter().for_each(approval_line);
    }
    Ok(())
}
