//! A hunt across a simulated fleet (`--only hunt`, `--hunt-agents N`, default 1,000): issue
//! #15's fleet-wide figure. One controller process (SQLite store) and N simulated agents
//! carrying `bench=hunt`, all online; one `CreateHunt` request (as `cordonctl hunts create
//! --collect processes --labels bench=hunt` sends it) asks each for a collection, which a
//! simulated agent answers with [`SIM_ROWS`] rows in one chunk and its result.
//!
//! Timed from the request to every agent answered, read from the hunt's progress through the
//! admin API (`GetHunt`, polled every 50 ms); then every row is read back through
//! `ListCollectionRows` and must number N × SIM_ROWS.

use crate::scale::start_online;
use anyhow::bail;
use cordon_proto::{Collect, CreateHuntRequest, GetHuntRequest, ListCollectionRowsRequest};
use cordon_tests::deploy::Deployment;
use cordon_tests::sim::{Batch, SIM_ROWS, batch_identities, raise_nofile};
use cordonctl::client::{AdminClient, AdminConfig, connect};
use std::time::{Duration, Instant};

/// Longest the bench waits for every answer.
const WAIT: Duration = Duration::from_secs(60);

/// Polls the hunt until every agent answered (or `WAIT` passes); returns how long that took
/// from `started` and the answered count.
async fn until_answered(
    client: &mut AdminClient,
    id: &str,
    n: usize,
    started: Instant,
) -> anyhow::Result<(Duration, u64)> {
    loop {
        let req = GetHuntRequest { hunt_id: id.into() };
        let h = client.get_hunt(req).await?.into_inner();
        if h.answered as usize >= n || started.elapsed() > WAIT {
            return Ok((started.elapsed(), h.answered));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every row of the hunt, read a page at a time (bounded by the expected count).
async fn rows(client: &mut AdminClient, id: &str, want: usize) -> anyhow::Result<usize> {
    let mut req = ListCollectionRowsRequest {
        hunt_id: id.into(),
        limit: 10_000,
        ..Default::default()
    };
    let mut total = 0;
    for _ in 0..=want / 10_000 + 1 {
        let page = client
            .list_collection_rows(req.clone())
            .await?
            .into_inner()
            .rows;
        total += page.len();
        match page.last() {
            Some(last) if page.len() == 10_000 => {
                (req.after_command_id, req.after_row) = (last.command_id.clone(), last.row_no)
            }
            _ => break,
        }
    }
    Ok(total)
}

async fn hunt(admin: &AdminConfig, n: usize) -> anyhow::Result<()> {
    let mut client = connect(admin).await?;
    let req = CreateHuntRequest {
        collect: Some(Collect {
            collector: "processes".into(),
            ..Default::default()
        }),
        labels: [("bench".to_string(), "hunt".to_string())].into(),
        expires_secs: 3600,
        ..Default::default()
    };
    let started = Instant::now();
    let created = client.create_hunt(req).await?.into_inner();
    let issued = started.elapsed();
    let (took, answered) = until_answered(&mut client, &created.hunt_id, n, started).await?;
    let stored = rows(&mut client, &created.hunt_id, n * SIM_ROWS as usize).await?;
    let full = client
        .get_hunt(GetHuntRequest {
            hunt_id: created.hunt_id.clone(),
        })
        .await?
        .into_inner();
    println!(
        "hunt: {} targeted; the request answered (commands stored and sent) after {:.2} s; {answered} answered after {:.2} s; {} failed; {stored} rows stored ({} expected)",
        created.targeted,
        issued.as_secs_f64(),
        took.as_secs_f64(),
        full.failed,
        n * SIM_ROWS as usize
    );
    let met = answered as usize == n && took < Duration::from_secs(10);
    println!(
        "  target: every agent answered within 10 s: {}",
        if met { "met" } else { "MISSED" }
    );
    if stored != n * SIM_ROWS as usize {
        bail!("{stored} rows stored, {} expected", n * SIM_ROWS as usize);
    }
    Ok(())
}

pub fn run(n: usize) -> anyhow::Result<()> {
    let nofile = raise_nofile();
    let d = Deployment::loopback("");
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cache = d.dir.path().join("sim-cache");
    let batch = Batch {
        first: 0,
        n,
        labels: [("bench".to_string(), "hunt".to_string())].into(),
    };
    let agents = rt.block_on(batch_identities(&admin, &cache, &batch, 16))?.0;
    let fleet = start_online(&rt, &admin, &agents, "hunt", nofile)?;
    rt.block_on(hunt(&admin, n))?;
    drop(fleet);
    Ok(())
}
