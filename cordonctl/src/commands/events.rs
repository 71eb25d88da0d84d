//! `cordonctl events query|tail|tree`: stored telemetry, one line per event (one JSON object
//! per line with `--json`), as a query or followed as it is stored; and the process tree of
//! one stored process event.

use crate::cli::Listing;
use crate::cli::{JSON_LINES, JSON_ONE};
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::parse::EventId;
use crate::rpc::call;
use crate::term::{clean, emit, outln};
use crate::text::{short, time};
use crate::{json, parse};
use clap::Subcommand;
use cordon_proto::*;

#[derive(Subcommand, Debug)]
pub enum EventsCmd {
    /// Stored events, oldest first (the newest LIMIT that match).
    Query {
        /// Only this agent's events (id or an unambiguous prefix).
        #[arg(long)]
        agent: Option<String>,
        /// Only events of this kind: process, file, network, dns, notice.
        #[arg(long)]
        kind: Option<String>,
        /// Events from this time on: RFC 3339, Unix milliseconds, or an age such as 15m (ago).
        #[arg(long, value_parser = parse::time)]
        since: Option<i64>,
        /// Events before this time (same forms as --since).
        #[arg(long, value_parser = parse::time)]
        until: Option<i64>,
        /// Text the event must contain (case-insensitive).
        #[arg(long)]
        contains: Option<String>,
        #[command(flatten)]
        list: Listing,
    },
    /// Follows events as they are stored, until interrupted.
    Tail {
        /// Only this agent's events (id or an unambiguous prefix).
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, help = JSON_LINES)]
        json: bool,
    },
    /// The process tree of a stored process event: its ancestors, the process itself (marked)
    /// and its descendants, with what each ran and how it ended.
    Tree {
        /// The event: AGENT:SEQ (an agent id or prefix and the event's sequence number, as
        /// `events query` shows them).
        #[arg(value_parser = parse::event_id)]
        event: EventId,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: EventsCmd) -> Result<(), CtlError> {
    match cmd {
        EventsCmd::Query {
            agent,
            kind,
            since,
            until,
            contains,
            list: Listing { limit, json },
        } => {
            let req = QueryEventsRequest {
                agent_id: agent.unwrap_or_default(),
                kind: kind.unwrap_or_default(),
                since_ms: since,
                until_ms: until,
                contains: contains.unwrap_or_default(),
                limit,
            };
            let resp = call(admin.query_events(req)).await?;
            print(&resp.events, json)
        }
        EventsCmd::Tail { agent, json } => tail(admin, agent.unwrap_or_default(), json).await,
        EventsCmd::Tree { event, json } => {
            let req = GetProcessTreeRequest {
                agent_id: event.agent,
                seq: event.seq,
            };
            let t = call(admin.get_process_tree(req)).await?;
            if json {
                return json::print_one(&t);
            }
            outln!("process tree of {}", tree::title(&t));
            emit(&tree::text(&t), true);
            Ok(())
        }
    }
}

async fn tail(admin: &mut AdminClient, agent_id: String, json: bool) -> Result<(), CtlError> {
    let mut stream = call(admin.tail_events(TailEventsRequest { agent_id })).await?;
    loop {
        match stream.message().await {
            Ok(Some(e)) => print(std::slice::from_ref(&e), json)?,
            Ok(None) => return Ok(()),
            Err(s) => {
                return Err(CtlError::StreamEnded(cordon_proto::status::describe(&s)));
            }
        }
    }
}

/// Events, one line each (or one JSON object per line).
fn print(list: &[EventRecord], as_json: bool) -> Result<(), CtlError> {
    if as_json {
        return json::print_lines(list);
    }
    for e in list {
        outln!(
            "{:<25}  {:<12}  {:>8}  {:<7}  {}",
            time(e.time_ms),
            short(&e.agent_id),
            e.seq,
            clean(&e.kind),
            clean(&e.summary)
        );
    }
    Ok(())
}
