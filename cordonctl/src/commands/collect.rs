//! `cordonctl collect AGENT COLLECTOR [KEY=VALUE...]`: runs a collection on one host and
//! prints its rows; `cordonctl collections rows ID`: prints the rows of a collection run
//! before. How the collection ended (rows, truncation, what could not be read) goes to
//! standard error, so the rows alone go down a pipe.

use crate::client::AdminClient;
use crate::error::CtlError;
use crate::rows::{self, Format};
use crate::rpc::submit;
use clap::{Args, Subcommand};
use cordon_proto::*;

/// What to print rows as.
#[derive(Args, Debug, Clone, Copy)]
pub struct RowsOut {
    /// Print JSON lines, one object a row.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV, a column for every field any row has.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Args, Debug)]
pub struct CollectArgs {
    /// Agent id (or an unambiguous prefix).
    pub id: String,
    /// processes, sockets, logins, persistence, packages, files.
    pub collector: String,
    /// The collector's arguments, KEY=VALUE (files: root=, glob=, min_size=, max_size=,
    /// newer_than=, older_than=, sha256=, hash=true, limit=; persistence: root= for the
    /// setuid search).
    #[arg(value_parser = parse_pair)]
    pub args: Vec<String>,
    /// Longest the collection may run on the host (0: as long as the agent allows).
    #[arg(long, default_value_t = 0)]
    pub max_secs: u64,
    /// Most bytes of rows it may return (0: the agent's 64 MiB).
    #[arg(long, default_value_t = 0)]
    pub max_bytes: u64,
    /// The agent's CPU use (percent of one core) above which the collection pauses.
    #[arg(long, default_value_t = 0)]
    pub cpu: u32,
    /// Seconds to wait for the result.
    #[arg(long, default_value_t = 120)]
    pub wait: u64,
    #[command(flatten)]
    pub out: RowsOut,
}

#[derive(Subcommand, Debug)]
pub enum CollectionsCmd {
    /// Prints the rows a collection returned.
    Rows {
        /// The collection's command id.
        id: String,
        /// Only rows whose JSON text contains this (ASCII case ignored).
        #[arg(long)]
        contains: Option<String>,
        #[command(flatten)]
        out: RowsOut,
    },
}

pub fn parse_pair(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(s.to_string()),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

pub async fn collect(admin: &mut AdminClient, a: CollectArgs) -> Result<(), CtlError> {
    let action = action::Kind::Collect(Collect {
        collector: a.collector,
        args: a.args,
        max_secs: a.max_secs,
        max_bytes: a.max_bytes,
        cpu_percent: a.cpu,
    });
    let (rec, _) = submit(admin, a.id, action, a.wait).await?;
    let Some(command_result::Output::Collection(done)) =
        rec.result.as_ref().and_then(|r| r.output.as_ref())
    else {
        return Err(CtlError::Command("the agent sent no collection".into()));
    };
    let req = ListCollectionRowsRequest {
        command_ids: vec![rec.command_id.clone()],
        ..Default::default()
    };
    rows::print(
        &rows::fetch(admin, req).await?,
        Format::new(a.out.json, a.out.csv),
    )?;
    summary(&rec.command_id, &rec.agent_id, done);
    Ok(())
}

/// How the collection ended, on standard error.
fn summary(command_id: &str, agent_id: &str, c: &CollectionResult) {
    for e in &c.errors {
        eprintln!("could not read: {}", crate::term::clean(e));
    }
    let ended = match c.truncated.as_str() {
        "" => "complete".to_string(),
        why => format!("cut short by its {why}"),
    };
    eprintln!(
        "collection {command_id} on {agent_id}: {} {} rows ({ended}), {} bytes, sha256 {}",
        c.collector, c.rows, c.bytes, c.sha256
    );
}

pub async fn run(admin: &mut AdminClient, cmd: CollectionsCmd) -> Result<(), CtlError> {
    match cmd {
        CollectionsCmd::Rows { id, contains, out } => {
            let req = ListCollectionRowsRequest {
                command_ids: vec![id],
                contains: contains.unwrap_or_default(),
                ..Default::default()
            };
            rows::print(
                &rows::fetch(admin, req).await?,
                Format::new(out.json, out.csv),
            )
        }
    }
}
