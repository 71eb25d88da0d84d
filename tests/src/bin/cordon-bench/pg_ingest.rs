//! PostgreSQL ingest (issue #14): two replicas' stores (two `PgStore`s, two pools) on one
//! database of a private cluster (`store::pg::testing`), with simulated agents, half on each
//! replica, each sending its batches one after another with increasing sequence numbers
//! through `Events::ingest` (the call the controller's telemetry pipeline makes), all
//! concurrently. Then a plain `COPY ... FROM STDIN (FORMAT binary)` of the same rows, three
//! times: into an unindexed, unpartitioned table of the same columns (the raw ceiling); into
//! a table shaped like `events` with its indexes (without the table of keys that makes each
//! (agent, seq) unique and finds an agent's events); and into the store's own tables in a
//! fresh database, rows into `events` and their keys into `event_keys`, in one transaction
//! (the same rows landing where the store puts them, without its exactly-once checks, group
//! commit and replicas). Prints the rates and
//! the ratios (per round and of the best rounds, over a few alternating rounds), after
//! checking every event was stored exactly once, including when each agent's first batch is
//! sent again through the other replica.

use super::telemetry::{runtime, sample};
use anyhow::{Context, bail};
use cordon_controller::policy::grouping::Grouping;
use cordon_controller::store::pg::{PgOptions, PgStore, testing};
use cordon_controller::store::{Events, StoredEvent};
use cordon_proto::Event;
use prost::Message;
use std::time::{Duration, Instant};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// The simulated load.
#[derive(Clone, Copy)]
pub struct Load {
    pub agents_per_replica: usize,
    pub batches_per_agent: usize,
    pub batch_events: usize,
}

impl Load {
    fn events(&self) -> u64 {
        (2 * self.agents_per_replica * self.batches_per_agent * self.batch_events) as u64
    }
}

/// Rounds of the comparison, alternating, so a burst of load on a shared machine hits both.
const ROUNDS: usize = 3;

/// The windows the controller groups alerts with by default (no event here raises one).
const GROUPING: Grouping = Grouping {
    alert_window_ms: 3_600_000,
    incident_window_ms: 3_600_000,
};

/// One of a round's rates.
type Rate = fn(&Rates) -> f64;

/// One round's rates, in events (rows) per second.
struct Rates {
    store: f64,
    /// COPY into an unindexed table.
    plain: f64,
    /// COPY into a table with `events`' columns and indexes.
    indexed: f64,
    /// COPY into the store's own tables, `events` and `event_keys`, in a fresh database.
    schema: f64,
}

pub fn run(load: Load) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut all = Vec::new();
        for round in 0..ROUNDS {
            let Some(mut options) = testing::database("cordon-bench pg-ingest").await else {
                return Ok(());
            };
            // A controller's own pool, not the tests' smaller one.
            options.pool_size = PgOptions::new("").pool_size;
            let rates = round_rates(&options, load)
                .await
                .with_context(|| format!("round {}", round + 1))?;
            all.push(rates);
        }
        report(load, &all);
        Ok(())
    })
}

fn report(load: Load, all: &[Rates]) {
    let col = |f: Rate| all.iter().map(f).collect::<Vec<f64>>();
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let store = col(|r| r.store);
    println!(
        "pg-ingest, two replicas' stores on one PostgreSQL database (private cluster, fsync off, synchronous_commit on): {} agents per replica, {} batches of {} events each, n={} per round, best of {ROUNDS}:",
        load.agents_per_replica,
        load.batches_per_agent,
        load.batch_events,
        load.events(),
    );
    println!(
        "  store path: {:.0} events/s (rounds: {})",
        best(&store),
        rounds(&store)
    );
    let baselines: [(&str, Rate); 3] = [
        ("an unindexed table", |r| r.plain),
        ("a table with events' columns and indexes", |r| r.indexed),
        (
            "the store's own tables (events, and event_keys for the keys)",
            |r| r.schema,
        ),
    ];
    for (table, rate) in baselines {
        let copy = col(rate);
        let per_round: Vec<String> = all
            .iter()
            .map(|r| format!("{:.2}", r.store / rate(r)))
            .collect();
        println!(
            "  plain binary COPY of the same rows into {table}: {:.0} rows/s (rounds: {}); store/COPY = {:.2} (per round: {})",
            best(&copy),
            rounds(&copy),
            best(&store) / best(&copy),
            per_round.join(", ")
        );
    }
}

fn rounds(v: &[f64]) -> String {
    v.iter()
        .map(|r| format!("{r:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One round on a fresh database: the store path's rate, then COPY's, in events per second.
async fn round_rates(options: &PgOptions, load: Load) -> anyhow::Result<Rates> {
    let replicas = [PgStore::open(options).await?, PgStore::open(options).await?];
    let agents = agents(load);
    let n = load.events();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, batches) in agents.iter().enumerate() {
        let store = replicas[i % 2].clone();
        let batches = batches.clone();
        tasks.push(tokio::spawn(send(store, batches)));
    }
    let mut added = 0;
    for t in tasks {
        added += t.await??;
    }
    let store_rate = n as f64 / started.elapsed().as_secs_f64();
    if added != n {
        bail!("the store added {added} of {n} events");
    }
    check_exactly_once(&replicas, &agents, n).await?;

    let rows: Vec<&StoredEvent> = agents.iter().flatten().flatten().collect();
    let client = connect(options).await?;
    Ok(Rates {
        store: store_rate,
        plain: copy_table(&client, &rows, "copy_plain", "LIKE events").await?,
        indexed: copy_table(
            &client,
            &rows,
            "copy_indexed",
            "LIKE events INCLUDING INDEXES",
        )
        .await?,
        schema: copy_schema(&rows).await?,
    })
}

/// Each agent's batches, from sequence number 1, as the controller makes them from the wire
/// (`core::ingest`: kind and summary described, body encoded).
fn agents(load: Load) -> Vec<Vec<Vec<StoredEvent>>> {
    let now = cordon_proto::time::now_ms();
    (0..2 * load.agents_per_replica)
        .map(|a| {
            let agent = format!("{a:032x}");
            let per_agent = (load.batches_per_agent * load.batch_events) as u64;
            (1..=per_agent)
                .collect::<Vec<_>>()
                .chunks(load.batch_events)
                .map(|seqs| seqs.iter().map(|&seq| stored(&agent, seq, now)).collect())
                .collect()
        })
        .collect()
}

fn stored(agent: &str, seq: u64, now: i64) -> StoredEvent {
    let e = Event {
        seq,
        time_ms: now,
        body: Some(sample(seq)),
        ..Default::default()
    };
    let (kind, summary) = cordon_controller::core::describe(&e);
    StoredEvent {
        agent_id: agent.to_string(),
        seq,
        time_ms: now,
        kind: kind.to_string(),
        summary,
        body: e.encode_to_vec(),
        received_at_ms: now,
    }
}

/// One agent's session: its batches one after another, each stored before the next goes.
async fn send(store: PgStore, batches: Vec<Vec<StoredEvent>>) -> anyhow::Result<u64> {
    let mut added = 0;
    for batch in batches {
        let findings = vec![Vec::new(); batch.len()];
        let (new, _) = store.ingest(batch, findings, Some(GROUPING)).await?;
        added += new.len() as u64;
    }
    Ok(added)
}

/// Every agent's first batch again, through the other replica, adds nothing; each agent has
/// all its events once.
async fn check_exactly_once(
    replicas: &[PgStore; 2],
    agents: &[Vec<Vec<StoredEvent>>],
    n: u64,
) -> anyhow::Result<()> {
    let mut stored = 0;
    for (i, batches) in agents.iter().enumerate() {
        let again = batches[0].clone();
        let findings = vec![Vec::new(); again.len()];
        let store = &replicas[(i + 1) % 2];
        let (new, _) = store.ingest(again, findings, Some(GROUPING)).await?;
        if !new.is_empty() {
            bail!("a batch sent again stored {} events twice", new.len());
        }
        stored += store.event_count(batches[0][0].agent_id.clone()).await?;
    }
    if stored != n {
        bail!("{stored} events stored, {n} sent");
    }
    Ok(())
}

async fn connect(options: &PgOptions) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(&options.url, tokio_postgres::NoTls)
        .await
        .context("connecting for COPY")?;
    tokio::spawn(connection);
    Ok(client)
}

/// COPYs `rows` into a new table `name` made `(like)`; returns rows per second.
async fn copy_table(
    client: &tokio_postgres::Client,
    rows: &[&StoredEvent],
    name: &str,
    like: &str,
) -> anyhow::Result<f64> {
    client
        .batch_execute(&format!("CREATE TABLE {name} ({like})"))
        .await?;
    let started = Instant::now();
    copy_rows(client, rows, name).await?;
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// COPYs `rows` into a fresh database's `events` and their keys into its `event_keys`, in one
/// transaction, as a bulk load of the store's schema would; returns rows per second.
async fn copy_schema(rows: &[&StoredEvent]) -> anyhow::Result<f64> {
    let Some(options) = testing::database("cordon-bench pg-ingest COPY").await else {
        bail!("no PostgreSQL for the COPY baseline");
    };
    // The schema and today's partition, as the store makes them.
    drop(PgStore::open(&options).await?);
    let client = connect(&options).await?;
    let started = Instant::now();
    client.batch_execute("BEGIN").await?;
    let keys = ["agent_id", "seq", "time_ms"];
    copy_columns(&client, rows, "event_keys", &keys).await?;
    copy_rows(&client, rows, "events").await?;
    client.batch_execute("COMMIT").await?;
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// The columns the store writes (process columns empty, as for file events), in COPY's order.
const COLUMNS: [(&str, Type); 10] = [
    ("agent_id", Type::TEXT),
    ("seq", Type::INT8),
    ("time_ms", Type::INT8),
    ("kind", Type::TEXT),
    ("body", Type::BYTEA),
    ("received_at", Type::INT8),
    ("summary", Type::TEXT),
    ("pid", Type::INT8),
    ("ppid", Type::INT8),
    ("start_ticks", Type::INT8),
];

/// COPYs `rows` into `table`, every column the store writes.
async fn copy_rows(
    client: &tokio_postgres::Client,
    rows: &[&StoredEvent],
    table: &str,
) -> anyhow::Result<()> {
    let all = COLUMNS.map(|(name, _)| name);
    copy_columns(client, rows, table, &all).await
}

/// COPYs `columns` (the first of [`COLUMNS`]) of `rows` into `table`.
async fn copy_columns(
    client: &tokio_postgres::Client,
    rows: &[&StoredEvent],
    table: &str,
    columns: &[&str],
) -> anyhow::Result<()> {
    let sink = client
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            columns.join(", ")
        ))
        .await?;
    let types: Vec<Type> = COLUMNS[..columns.len()]
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    let none: Option<i64> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    for e in rows {
        if Instant::now() > deadline {
            bail!("COPY ran over 10 minutes");
        }
        let seq = e.seq as i64;
        let row: [&(dyn ToSql + Sync); 10] = [
            &e.agent_id,
            &seq,
            &e.time_ms,
            &e.kind,
            &e.body,
            &e.received_at_ms,
            &e.summary,
            &none,
            &none,
            &none,
        ];
        writer.as_mut().write(&row[..columns.len()]).await?;
    }
    let copied = writer.finish().await?;
    if copied != rows.len() as u64 {
        bail!("COPY wrote {copied} of {} rows", rows.len());
    }
    Ok(())
}
