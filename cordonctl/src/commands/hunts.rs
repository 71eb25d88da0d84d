//! `cordonctl hunts create|list|show|results|cancel`: one collection run across the fleet
//! (chosen by agent ids, labels or all), its progress (targeted, answered, failed, expired,
//! pending) and its results, the rows every agent returned.

use super::collect::{RowsOut, parse_pair};
use crate::cli::{JSON_ONE, Listing};
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rows::{self, Format};
use crate::rpc::call;
use crate::term::{clean, outln};
use crate::text::{status_name, time};
use crate::{json, parse};
use clap::Subcommand;
use cordon_proto::limits::parse_label;
use cordon_proto::*;

#[derive(Subcommand, Debug)]
pub enum HuntsCmd {
    /// Starts a hunt: every chosen agent runs the collection (an offline one when it
    /// returns, until the hunt expires).
    Create {
        /// The collector: processes, sockets, logins, persistence, packages, files.
        #[arg(long)]
        collect: String,
        /// The collector's arguments, KEY=VALUE (as for `cordonctl collect`).
        #[arg(value_parser = parse_pair)]
        args: Vec<String>,
        /// These agents (ids or unambiguous prefixes).
        #[arg(long, num_args = 1.., value_delimiter = ',', conflicts_with_all = ["labels", "all"])]
        agents: Vec<String>,
        /// The unrevoked agents carrying every one of these labels, KEY=VALUE.
        #[arg(long, num_args = 1.., value_parser = parse_label, conflicts_with = "all")]
        labels: Vec<(String, String)>,
        /// Every unrevoked agent.
        #[arg(long)]
        all: bool,
        /// How long offline agents may still answer (90s, 15m, 24h, 7d; at most 7d).
        #[arg(long, default_value = "24h", value_parser = parse::ttl)]
        expires: std::time::Duration,
        /// Longest the collection may run on each host (0: as long as the agent allows).
        #[arg(long, default_value_t = 0)]
        max_secs: u64,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Lists hunts, newest first, with their progress.
    List {
        #[command(flatten)]
        list: Listing,
    },
    /// Shows a hunt: its progress and each agent's state.
    Show {
        /// The hunt's id.
        id: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Prints the rows the hunt's agents returned.
    Results {
        /// The hunt's id.
        id: String,
        /// Only this agent's rows (id).
        #[arg(long)]
        agent: Option<String>,
        /// Only rows whose JSON text contains this (ASCII case ignored).
        #[arg(long)]
        contains: Option<String>,
        #[command(flatten)]
        out: RowsOut,
    },
    /// Cancels a hunt: agents that have not answered yet will not run it.
    Cancel {
        /// The hunt's id.
        id: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: HuntsCmd) -> Result<(), CtlError> {
    match cmd {
        HuntsCmd::Create {
            collect,
            args,
            agents,
            labels,
            all,
            expires,
            max_secs,
            json,
        } => {
            let req = CreateHuntRequest {
                collect: Some(Collect {
                    collector: collect,
                    args,
                    max_secs,
                    ..Default::default()
                }),
                agent_ids: agents,
                labels: labels.into_iter().collect(),
                all,
                expires_secs: expires.as_secs(),
            };
            let hunt = call(admin.create_hunt(req)).await?;
            show(&hunt, json)
        }
        HuntsCmd::List { list } => {
            let req = ListHuntsRequest { limit: list.limit };
            let hunts = call(admin.list_hunts(req)).await?.hunts;
            if list.json {
                return json::print_lines(&hunts);
            }
            table(&hunts);
            Ok(())
        }
        HuntsCmd::Show { id, json } => {
            let hunt = call(admin.get_hunt(GetHuntRequest { hunt_id: id })).await?;
            show(&hunt, json)
        }
        HuntsCmd::Results {
            id,
            agent,
            contains,
            out,
        } => {
            let req = ListCollectionRowsRequest {
                hunt_id: id,
                agent_id: agent.unwrap_or_default(),
                contains: contains.unwrap_or_default(),
                ..Default::default()
            };
            rows::print(
                &rows::fetch(admin, req).await?,
                Format::new(out.json, out.csv),
            )
        }
        HuntsCmd::Cancel { id, json } => {
            let hunt = call(admin.cancel_hunt(CancelHuntRequest { hunt_id: id })).await?;
            show(&hunt, json)
        }
    }
}

/// How far a hunt has come, in a few words.
fn progress(h: &HuntRecord) -> String {
    format!(
        "{} targeted, {} answered, {} failed, {} expired, {} pending",
        h.targeted, h.answered, h.failed, h.expired, h.pending
    )
}

fn table(hunts: &[HuntRecord]) {
    outln!(
        "{:<21}  {:<12}  {:<25}  {:<24}  PROGRESS",
        "HUNT",
        "COLLECTOR",
        "CREATED",
        "AGENTS"
    );
    for h in hunts {
        outln!(
            "{:<21}  {:<12}  {:<25}  {:<24}  {}{}",
            h.hunt_id,
            h.collector,
            time(h.created_at_ms),
            clean(&h.selector),
            progress(h),
            if h.cancelled_at_ms > 0 {
                " (cancelled)"
            } else {
                ""
            }
        );
    }
}

fn show(h: &HuntRecord, as_json: bool) -> Result<(), CtlError> {
    if as_json {
        return json::print_one(h);
    }
    outln!("hunt:      {}", h.hunt_id);
    outln!("collect:   {} {}", h.collector, clean(&h.args.join(" ")));
    outln!("agents:    {}", clean(&h.selector));
    outln!("by:        {}", h.created_by);
    outln!("created:   {}", time(h.created_at_ms));
    outln!("expires:   {}", time(h.expires_at_ms));
    if h.cancelled_at_ms > 0 {
        outln!("cancelled: {}", time(h.cancelled_at_ms));
    }
    outln!("progress:  {}", progress(h));
    for a in &h.agents {
        outln!(
            "  {}  {:<9}  {:>6} rows  {}",
            a.agent_id,
            status_name(a.status),
            a.rows,
            clean(&a.error)
        );
    }
    Ok(())
}
