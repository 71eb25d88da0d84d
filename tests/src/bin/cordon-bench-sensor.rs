//! cordon-bench-sensor: what the process sensor catches and what the agent costs. Prints the
//! figures; asserts nothing. Needs root (BPF, the process connector).
//!
//! 1. Exec capture: the three sensor modes (eBPF, process connector, sysinfo polling) open at
//!    once, each with its own stage-one thread (the agent's, which reads /proc the moment an
//!    exec is seen) and a collector, while exec loops run: at 1,000 execs/s and as fast as
//!    they go, serial and two loops in parallel, through `execve` and `execveat`. Every child
//!    has a unique argument; a capture counts only when its argv is exactly the child's.
//! 2. Agent cost: a real `cordon-agent run`, enrolled against a real controller on loopback,
//!    with the eBPF sensor: CPU (utime + stime from /proc/PID/stat) and VmRSS while idle, and
//!    while this host runs 1,000 execs/s; then whether the controller stored every exec.
//!
//! Run: `cargo run --release -p cordon-tests --bin cordon-bench-sensor -- [--n 10000]
//!       [--idle-secs 120] [--load-secs 20] [--only capture|agent]`

use anyhow::{Context, bail};
use cordon_agent::sensors::process::{self, Mode, ProcessSensorConfig, Raw};
use cordon_proto::{QueryEventsRequest, event, process_event};
use cordon_tests::deploy::Deployment;
use cordon_tests::execload::{self, LoopOpts, Via, Workload};
use cordon_tests::procstat::{cost, tick_secs};
use cordonctl::client::{AdminConfig, connect};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn num(name: &str, default: f64) -> anyhow::Result<f64> {
    flag(name).map_or(Ok(default), |v| v.parse().context(name.to_string()))
}

fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("exec-loop") => return exec_loop_command(),
        Some("execveat-child") => return execload::execveat_child(),
        _ => {}
    }
    if !cordon_tests::is_root() {
        bail!("cordon-bench-sensor needs root (BPF and the process connector)");
    }
    let only = flag("--only");
    if only.as_deref().is_none_or(|o| o == "capture") {
        let n = num("--n", 10_000.0)? as usize;
        capture_figures(n.clamp(10, 1_000_000))?;
    }
    if only.as_deref().is_none_or(|o| o == "agent") {
        let idle = num("--idle-secs", 120.0)?.max(1.0);
        let load = num("--load-secs", 20.0)?.max(1.0);
        agent_figures(Duration::from_secs_f64(idle), Duration::from_secs_f64(load))?;
    }
    Ok(())
}

/// `exec-loop --n N [--rate R] --unique-prefix P --via execve|execveat`: prints one line,
/// `elapsed_secs failed pid...`.
fn exec_loop_command() -> anyhow::Result<()> {
    let opts = LoopOpts {
        n: num("--n", 1000.0)? as usize,
        rate: flag("--rate").map(|r| r.parse()).transpose()?,
        prefix: flag("--unique-prefix").context("--unique-prefix")?,
        via: Via::parse(&flag("--via").unwrap_or_else(|| "execve".into()))?,
    };
    let r = execload::exec_loop(&opts)?;
    let pids: Vec<String> = r.pids.iter().map(u32::to_string).collect();
    println!(
        "{} {} {}",
        r.elapsed.as_secs_f64(),
        r.failed,
        pids.join(" ")
    );
    Ok(())
}

/// What one mode's collector has seen.
#[derive(Default)]
struct Seen {
    /// marker -> every argv captured with it.
    by_marker: HashMap<String, Vec<Vec<String>>>,
    exec_pids: HashSet<u32>,
    /// Sum of counted losses, and loss records with no count (the connector's overflow).
    lost: u64,
    lost_uncounted: u64,
    lost_why: Vec<String>,
}

struct Mode3 {
    name: &'static str,
    seen: Arc<Mutex<Seen>>,
}

fn capture_figures(n: usize) -> anyhow::Result<()> {
    let cfg = ProcessSensorConfig::default();
    let run_prefix = format!("cbs{}-", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let mut modes = Vec::new();
    let mut threads = Vec::new();
    for mode in [Mode::Ebpf, Mode::Connector, Mode::Poll] {
        let source = match process::open_source(mode, &cfg) {
            Ok(s) => s,
            Err(why) => {
                println!("{mode:?}: UNAVAILABLE: {why}");
                continue;
            }
        };
        let name = source.name();
        let (thread, rx) = process::start_capture(source, cfg.argv_max_bytes, &stop)?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s, prefix) = (seen.clone(), run_prefix.clone());
        let collector = std::thread::spawn(move || {
            for raw in rx.iter().flatten() {
                collect(&s, &prefix, raw);
            }
        });
        threads.extend([thread, collector]);
        modes.push(Mode3 { name, seen });
    }
    println!(
        "exec capture: {} side by side (poll interval {} ms); {n} execs per workload; \
         a capture counts when its argv is exactly the child's",
        modes.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
        cfg.poll_interval_ms,
    );
    // Let every source settle (the poller's first scan is its baseline).
    std::thread::sleep(Duration::from_millis(1500));
    let mut k = 0;
    for via in [Via::Execve, Via::Execveat] {
        for rate in [Some(1000.0), None] {
            for loops in [1, 2] {
                k += 1;
                let w = Workload {
                    via,
                    rate,
                    loops,
                    n,
                    prefix: format!("{run_prefix}w{k}"),
                };
                measure(&w, &modes)?;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn collect(seen: &Mutex<Seen>, prefix: &str, raw: Raw) {
    let Ok(mut s) = seen.lock() else { return };
    match raw {
        Raw::Exec(e) => {
            s.exec_pids.insert(e.pid);
            if let Some(argv) = e.argv
                && let Some(m) = argv.iter().find(|a| a.starts_with(prefix)).cloned()
            {
                s.by_marker.entry(m).or_default().push(argv);
            }
        }
        Raw::Lost { count, why } => {
            s.lost += count;
            if count == 0 {
                s.lost_uncounted += 1;
            }
            if s.lost_why.len() < 3 {
                s.lost_why.push(why);
            }
        }
        Raw::Fork { .. } | Raw::Exit { .. } | Raw::Mark { .. } => {}
    }
}

fn lost(m: &Mode3) -> (u64, u64) {
    let s = m.seen.lock().expect("collector lock");
    (s.lost, s.lost_uncounted)
}

/// Runs `w`, waits until every mode has caught up, and prints one line per mode.
fn measure(w: &Workload, modes: &[Mode3]) -> anyhow::Result<()> {
    let before: Vec<(u64, u64)> = modes.iter().map(lost).collect();
    let ran = w.run()?;
    let expected = w.expected();
    let issued = expected.len();
    println!(
        "\n{}: {issued} execs in {:.2} s ({:.0}/s){}",
        w.name(),
        ran.elapsed.as_secs_f64(),
        issued as f64 / ran.elapsed.as_secs_f64(),
        if ran.failed > 0 {
            format!(", {} children FAILED", ran.failed)
        } else {
            String::new()
        }
    );
    if w.via == Via::Execveat {
        println!("  (each execveat child is started by an execve of a helper: twice the execs)");
    }
    // Caught up: at least 2.5 s (the poll interval, the eBPF drop check every second), then
    // until no mode has captured another of this workload's markers for a second.
    let count = |m: &Mode3| {
        let s = m.seen.lock().expect("collector lock");
        expected
            .iter()
            .filter(|(mk, _)| s.by_marker.contains_key(mk))
            .count()
    };
    std::thread::sleep(Duration::from_millis(2500));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Vec<usize> = modes.iter().map(count).collect();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now: Vec<usize> = modes.iter().map(count).collect();
        if now == last {
            break;
        }
        last = now;
    }
    let pids: HashSet<u32> = ran.pids.iter().copied().collect();
    for (m, (lost0, unc0)) in modes.iter().zip(before) {
        let s = m.seen.lock().expect("collector lock");
        let mut ok = 0;
        let mut wrong = 0;
        let mut dup = 0;
        for (mk, argv) in &expected {
            match s.by_marker.get(mk) {
                Some(got) if got.iter().any(|a| a[..] == argv[..]) => {
                    ok += 1;
                    dup += got.len() - 1;
                }
                Some(_) => wrong += 1,
                None => {}
            }
        }
        // Children the sensor reported an exec for (by pid) without their exact argv.
        let seen_pids = pids.iter().filter(|p| s.exec_pids.contains(p)).count();
        let without_argv = seen_pids.saturating_sub(ok);
        let lost = s.lost - lost0;
        let uncounted = s.lost_uncounted - unc0;
        println!(
            "  {:<9} argv exact {ok:>7}/{issued} ({:>7.3}%)  pid seen without it {without_argv:>6}  \
             wrong argv {wrong}  duplicates {dup}  losses counted {lost}{}",
            m.name,
            100.0 * ok as f64 / issued as f64,
            if uncounted > 0 {
                format!(" + {uncounted} overflows of unknown size")
            } else {
                String::new()
            },
        );
    }
    Ok(())
}

/// Processes created on the whole host since boot (/proc/stat), which the agent sees too.
fn host_forks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("processes "))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Watches `pid` until `done()` holds: the share of one core it used, and its largest and
/// last RSS in MB. Also prints how busy the host was meanwhile.
fn watch(pid: u32, mut done: impl FnMut() -> bool) -> anyhow::Result<(f64, f64, f64)> {
    let forks0 = host_forks();
    let tick = tick_secs();
    let started = Instant::now();
    let (t0, mut rss) = cost(pid)?;
    let mut peak = rss;
    while !done() {
        std::thread::sleep(Duration::from_millis(250));
        rss = cost(pid)?.1;
        peak = peak.max(rss);
    }
    let (t1, _) = cost(pid)?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = (t1 - t0) as f64 * tick / secs * 100.0;
    println!(
        "  (the host created {:.0} processes/s meanwhile, all seen by the agent)",
        host_forks().saturating_sub(forks0) as f64 / secs
    );
    Ok((cpu, peak as f64 / 1024.0, rss as f64 / 1024.0))
}

fn agent_figures(idle: Duration, load: Duration) -> anyhow::Result<()> {
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent("bench-sensor", &[]);
    // The agent's own defaults (a heartbeat every 10 s), not the tests' quick ones.
    std::fs::write(&agent.config, "")?;
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(30));
    let pid = agent.proc.as_ref().map(|p| p.pid()).context("agent pid")?;
    let sensor = cordon_tests::poll(Duration::from_secs(30), || {
        let s = d.agent_record(&agent.id)["process_sensor"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (!s.is_empty()).then_some(s)
    })
    .context("the agent reported no process sensor")?;
    println!("\nagent cost: a real cordon-agent run (pid {pid}), process sensor: {sensor}");
    if sensor != "ebpf" {
        bail!("the agent runs without the eBPF sensor: {sensor}");
    }
    // Past start-up (the process table seeded, the first heartbeats sent).
    std::thread::sleep(Duration::from_secs(5));
    let until = Instant::now() + idle;
    let (cpu, peak, rss) = watch(pid, || Instant::now() >= until)?;
    println!(
        "  idle {:.0} s: {cpu:.3}% of one core, RSS {rss:.1} MB (peak {peak:.1} MB)",
        idle.as_secs_f64()
    );

    let w = Workload {
        via: Via::Execve,
        rate: Some(1000.0),
        // Two loops at 500/s each: one loop alone cannot fork and exec 1,000 children a
        // second on a small machine.
        loops: 2,
        n: (1000.0 * load.as_secs_f64()) as usize,
        prefix: format!("cba{}-", std::process::id()),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let (figures, ran) = std::thread::scope(|scope| {
        let runner = scope.spawn(|| {
            let r = w.run();
            let _ = tx.send(());
            r
        });
        let figures = watch(pid, || rx.try_recv().is_ok());
        (figures, runner.join())
    });
    let ran = ran.map_err(|_| anyhow::anyhow!("the exec loop panicked"))??;
    let (cpu, peak, rss) = figures?;
    println!(
        "  {} ({} execs in {:.1} s, {:.0}/s, {} failed): {cpu:.2}% of one core, RSS {rss:.1} MB (peak {peak:.1} MB)",
        w.name(),
        w.n,
        ran.elapsed.as_secs_f64(),
        w.n as f64 / ran.elapsed.as_secs_f64(),
        ran.failed,
    );
    let until = Instant::now() + Duration::from_secs(5);
    let (cpu, _, rss) = watch(pid, || Instant::now() >= until)?;
    println!("  the 5 s after: {cpu:.2}% of one core, RSS {rss:.1} MB");
    stored_execs(&d, &agent.id, &w)?;
    Ok(())
}

/// How many of the workload's execs the controller stored, with their exact argv, and how
/// many of those were partial.
fn stored_execs(d: &Deployment, agent_id: &str, w: &Workload) -> anyhow::Result<()> {
    let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
    let expected: HashMap<String, [String; 2]> = w.expected().into_iter().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ok, partial) = rt.block_on(async {
        let mut client = connect(&admin).await?;
        let mut last = (0, 0);
        let mut stable = 0;
        for _ in 0..60 {
            let mut ok = HashSet::new();
            let mut partial = 0;
            // At most 10,000 a query: one per loop and 10,000 markers (marker = the loop's
            // prefix + 6 digits).
            let queries = (0..w.loops).flat_map(|l| (0..w.n.div_ceil(10_000)).map(move |c| (l, c)));
            for (l, chunk) in queries {
                let req = QueryEventsRequest {
                    agent_id: agent_id.to_string(),
                    kind: "process".into(),
                    contains: format!("{}{:02}", w.loop_prefix(l), chunk),
                    limit: 10_000,
                    ..Default::default()
                };
                for rec in client.query_events(req).await?.into_inner().events {
                    if let Some(event::Body::Process(p)) = rec.event.and_then(|e| e.body)
                        && p.kind() == process_event::Kind::Exec
                        && let Some(m) = p.argv.get(1)
                        && expected.get(m).is_some_and(|a| p.argv[..] == a[..])
                        && ok.insert(m.clone())
                        && p.partial
                    {
                        partial += 1;
                    }
                }
            }
            let now = (ok.len(), partial);
            stable = if now == last { stable + 1 } else { 0 };
            last = now;
            if now.0 == expected.len() || stable >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        anyhow::Ok(last)
    })?;
    println!(
        "  stored by the controller: {ok}/{} of those execs with their exact argv ({partial} partial)",
        expected.len()
    );
    Ok(())
}
