//! The web console's speed (issue 13, section 5): seeds a data directory (`seed.rs`: by
//! default 1,000 agents, 1,000,000 events over the last day, 10,000 alerts in 1,000
//! incidents), then measures p50 and p95 of
//! - the core calls the console's pages make, in-process on that store (the overview's
//!   figures, the incidents list, an incident with its history, an events search by text
//!   over the last day, 50 to a page), and
//! - the pages themselves, served by the real controller binary over HTTPS: the server's
//!   time from each answer's `Server-Timing: app;dur=MS` header, and the client's time
//!   (a new TLS connection per request included).
//!
//! Every loop is bounded in count and in time. With `CORDON_BENCH_KEEP=DIR` the seeded
//! database is copied to DIR (for `EXPLAIN QUERY PLAN` and the like).

use crate::fleet::Rng;
use crate::seed::{self, Size};
use anyhow::Context;
use cordon_controller::core::{Controller, EventQuery};
use cordon_tests::console::{Browser, Console};
use cordon_tests::deploy::Deployment;
use std::future::Future;
use std::time::{Duration, Instant};

/// Longest one measurement may take; it stops early past this.
const BUDGET: Duration = Duration::from_secs(60);
const PASSWORD: &str = "bench console password";
/// Events a search page shows.
const PAGE: u32 = 50;
/// What people search events for: an attacker's address and tools (rare), a service's
/// name (common), words in paths and command lines.
const SEARCHES: &[&str] = &[
    "198.51.100.23",
    "xmrig",
    "/etc/shadow",
    "postgresql",
    "nginx",
    "backup",
    "deploy",
    "no such text anywhere",
];

/// Runs the section with `size` and `requests` measurements of each call and page.
pub fn run(size: Size, requests: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut d, console) = Deployment::with_console("", "");
    d.invite("bench", "admin", &[]);
    d.set_password("bench", PASSWORD);
    d.stop_controller();
    let seeded = rt.block_on(async {
        let ctl = Controller::open(&d.data_dir).await?;
        let seeded = seed::seed(&ctl.store, size).await?;
        core_calls(&ctl, &seeded, requests).await?;
        anyhow::Ok(seeded)
    })?;
    if let Some(keep) = std::env::var_os("CORDON_BENCH_KEEP") {
        copy_store(&d.data_dir, std::path::Path::new(&keep))?;
    }
    d.start_controller();
    rt.block_on(pages(&console, &seeded, requests))
}

/// Copies the seeded database (and its log) into `to`, to look at its query plans later.
fn copy_store(data_dir: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for suffix in ["", "-wal"] {
        let name = format!("{}{suffix}", cordon_controller::store::DB_FILE);
        if data_dir.join(&name).exists() {
            std::fs::copy(data_dir.join(&name), to.join(&name))?;
        }
    }
    println!("console: the seeded database is copied to {}", to.display());
    Ok(())
}

/// Figures of one measurement, in milliseconds.
struct Figures(Vec<f64>);

impl Figures {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    }

    fn line(&self) -> String {
        format!(
            "n={} p50={:.1} ms p95={:.1} ms max={:.1} ms",
            self.0.len(),
            self.pct(0.50),
            self.pct(0.95),
            self.pct(1.0)
        )
    }
}

/// Times `f(i)` up to `n` times, within [`BUDGET`].
async fn time<F, Fut>(n: usize, mut f: F) -> anyhow::Result<Figures>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let deadline = Instant::now() + BUDGET;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if Instant::now() > deadline {
            break;
        }
        let started = Instant::now();
        f(i).await?;
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Figures(out))
}

/// The core calls behind the pages, on the seeded store.
async fn core_calls(ctl: &Controller, s: &seed::Seeded, n: usize) -> anyhow::Result<()> {
    use cordon_controller::core::IncidentStatus;
    // What `console::live::gather` calls for the overview, one by one and together.
    let agents = time(n, |_| async move {
        ctl.agents().await.map(drop).context("agents")
    })
    .await?;
    let open = time(n, |_| async move {
        let open = IncidentStatus::Open.as_str();
        let limit = cordon_proto::limits::MAX_LIST;
        ctl.incidents(open, limit)
            .await
            .map(drop)
            .context("incidents")
    })
    .await?;
    let approvals = time(n, |_| async move {
        ctl.approvals(false).await.map(drop).context("approvals")
    })
    .await?;
    let latest = time(n, |_| async move {
        ctl.alerts(0, "informational", "", 10)
            .await
            .map(drop)
            .context("alerts")
    })
    .await?;
    let overview = time(n, |_| overview(ctl)).await?;
    println!("console core, overview: agents() {}", agents.line());
    println!("console core, overview: open incidents {}", open.line());
    println!(
        "console core, overview: pending approvals {}",
        approvals.line()
    );
    println!("console core, overview: latest alerts {}", latest.line());
    println!("console core, overview: all of it {}", overview.line());
    let list = time(n, |_| async move {
        ctl.incidents("", 100).await.map(drop).context("incidents")
    })
    .await?;
    println!("console core, incidents list (newest 100): {}", list.line());
    let mut rng = Rng::new(7);
    let picks: Vec<&String> = (0..n)
        .map(|_| &s.incidents[rng.below(s.incidents.len())])
        .collect();
    let picks = &picks;
    let one = time(n, |i| async move {
        ctl.incident(picks[i]).await.map(drop).context("incident")
    })
    .await?;
    println!("console core, incident(id): {}", one.line());
    let history = time(n, |i| async move {
        ctl.incident_history(picks[i])
            .await
            .map(drop)
            .context("incident history")
    })
    .await?;
    println!("console core, incident_history(id): {}", history.line());
    let search = time(n, |i| {
        let q = EventQuery {
            since_ms: Some(s.day_start_ms),
            contains: SEARCHES[i % SEARCHES.len()].into(),
            limit: PAGE,
            ..Default::default()
        };
        async move { ctl.query_events(q).await.map(drop).context("query_events") }
    })
    .await?;
    println!(
        "console core, events search by text over the last day, {PAGE} to a page ({}): {}",
        SEARCHES.join(" | "),
        search.line()
    );
    Ok(())
}

/// The overview's calls, as `console::live::gather` makes them (that module is private to
/// the console).
async fn overview(ctl: &Controller) -> anyhow::Result<()> {
    use cordon_controller::core::IncidentStatus;
    ctl.agents().await?;
    ctl.incidents(
        IncidentStatus::Open.as_str(),
        cordon_proto::limits::MAX_LIST,
    )
    .await?;
    ctl.alerts(0, "informational", "", 10).await?;
    ctl.approvals(false).await?;
    Ok(())
}

/// The pages over HTTPS from the real controller.
async fn pages(c: &Console, s: &seed::Seeded, n: usize) -> anyhow::Result<()> {
    let b = c.browser("bench", PASSWORD).await;
    let mut rng = Rng::new(11);
    let incident_paths: Vec<String> = (0..n)
        .map(|_| format!("/incidents/{}", s.incidents[rng.below(s.incidents.len())]))
        .collect();
    let search_paths: Vec<String> = (0..n)
        .map(|i| {
            let text = SEARCHES[i % SEARCHES.len()]
                .replace('/', "%2F")
                .replace(' ', "+");
            format!("/events?text={text}&range=1d")
        })
        .collect();
    let fixed = |p: &str| vec![p.to_string(); n];
    let all = [
        ("overview GET /", fixed("/")),
        ("agents list GET /agents", fixed("/agents")),
        ("incidents list GET /incidents", fixed("/incidents")),
        ("incident page GET /incidents/{id}", incident_paths),
        ("events search GET /events?text=..&range=1d", search_paths),
    ];
    for (what, paths) in all {
        page(c, &b, what, &paths).await?;
    }
    Ok(())
}

/// Requests `paths` one after another; prints the server's and the client's times, or that
/// the page is not there.
async fn page(c: &Console, b: &Browser, what: &str, paths: &[String]) -> anyhow::Result<()> {
    let first = c.get(&paths[0], Some(b)).await;
    if first.status != 200 {
        println!(
            "console page, {what}: answered {} (not served by this build): not measured",
            first.status
        );
        return Ok(());
    }
    let deadline = Instant::now() + BUDGET;
    let (mut server, mut client) = (Vec::new(), Vec::new());
    for path in paths {
        if Instant::now() > deadline {
            break;
        }
        let started = Instant::now();
        let r = c.get(path, Some(b)).await;
        client.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(r.status == 200, "{path} answered {}", r.status);
        server.push(server_ms(r.header("server-timing")).context("no Server-Timing header")?);
    }
    println!(
        "console page, {what}: server {}; client {}",
        Figures(server).line(),
        Figures(client).line()
    );
    Ok(())
}

/// The `dur` of `app;dur=MS`.
fn server_ms(header: Option<&str>) -> Option<f64> {
    header?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("dur="))?
        .parse()
        .ok()
}
