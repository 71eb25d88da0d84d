//! File writes across the file system (`--only fswrites`, root only): this process creates
//! and writes `--fswrites-rate N` files a second (default 10,000), spread over a directory on
//! the root filesystem (/var/tmp), one on /tmp and one on /dev/shm, for `--fswrites-secs S`
//! (default 10). Each write is one file created, written and closed. The agent runs once with
//! the fanotify file sensor (nothing configured names those directories) and once with inotify
//! watching exactly them, hashing off in both. Printed side by side: the share of writes
//! stored as a write with the right process (this one: pid and exe; fanotify only, inotify
//! cannot name it), the share stored at all, and the agent's CPU over the load and its drain.

use super::telemetry::cpu_secs_of;
use cordon_proto::{Event, event, file_event::Kind};
use cordon_tests::deploy::Deployment;
use prost::Message;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one mode made of the load.
struct Outcome {
    writes: u64,
    load_secs: f64,
    stored: u64,
    attributed: u64,
    agent_cpu: f64,
}

pub fn run(rate: u64, secs: u64) -> anyhow::Result<()> {
    if !cordon_tests::is_root() {
        println!("fswrites: SKIPPED (fanotify needs root)");
        return Ok(());
    }
    for mode in ["fanotify", "inotify"] {
        let o = one_mode(mode, rate, secs)?;
        let share = |n: u64| 100.0 * n as f64 / o.writes.max(1) as f64;
        println!(
            "fswrites, {mode}: {} writes in {:.1} s ({:.0}/s) on 3 filesystems: stored {:.2}%, with the right process {:.2}%; agent CPU {:.2} s = {:.1}% of a core over the load",
            o.writes,
            o.load_secs,
            o.writes as f64 / o.load_secs,
            share(o.stored),
            share(o.attributed),
            o.agent_cpu,
            100.0 * o.agent_cpu / o.load_secs,
        );
    }
    Ok(())
}

fn one_mode(mode: &str, rate: u64, secs: u64) -> anyhow::Result<Outcome> {
    let dirs: Vec<tempfile::TempDir> = ["/var/tmp", "/tmp", "/dev/shm"]
        .iter()
        .map(|root| {
            tempfile::Builder::new()
                .prefix("cordon-fswrites-")
                .tempdir_in(root)
        })
        .collect::<Result<_, _>>()?;
    let paths: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.path().canonicalize())
        .collect::<Result<_, _>>()?;
    let d = Deployment::loopback("");
    let mut agent = d.enroll_agent(&format!("fswrites-{mode}"), &[]);
    let watch = toml::Value::from(
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
    );
    let watch = if mode == "inotify" {
        watch.to_string()
    } else {
        "[]".into()
    };
    agent.configure(&format!(
        "[files]\nmode = \"{mode}\"\nwatch = {watch}\nrecursive = []\nhash_max_bytes = 0\n"
    ));
    d.start_agent(&mut agent);
    d.wait_online(&agent, true, Duration::from_secs(30));
    let pid = agent.proc.as_ref().map_or(0, |p| p.pid());
    let cpu0 = cpu_secs_of(pid);
    let (writes, load_secs) = write_load(&paths, rate, secs)?;
    let db = d.data_dir.join(cordon_controller::store::DB_FILE);
    let me = std::env::current_exe()?.canonicalize()?;
    // Drained when every write is stored, or nothing more came in five seconds (bounded).
    let mut last = (0, 0, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let (stored, attributed) = count(&db, &agent.id, &paths, &me)?;
        if stored != last.0 {
            last = (stored, attributed, Instant::now());
        }
        if stored >= writes || last.2.elapsed() > Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let agent_cpu = cpu_secs_of(pid) - cpu0;
    Ok(Outcome {
        writes,
        load_secs,
        stored: last.0,
        attributed: last.1,
        agent_cpu,
    })
}

/// Writes `rate` files a second for `secs`, round robin over `dirs`, paced each millisecond.
fn write_load(dirs: &[PathBuf], rate: u64, secs: u64) -> std::io::Result<(u64, f64)> {
    let started = Instant::now();
    let total = rate * secs;
    let mut n = 0;
    while n < total {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while n < due.min(total) {
            let dir = &dirs[(n % dirs.len() as u64) as usize];
            std::fs::write(dir.join(format!("w{n}")), b"x")?;
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((n, started.elapsed().as_secs_f64()))
}

/// Writes to `dirs` stored for `agent`, and those of them naming this process.
fn count(db: &Path, agent: &str, dirs: &[PathBuf], me: &Path) -> anyhow::Result<(u64, u64)> {
    let c = rusqlite::Connection::open(db)?;
    let mut stmt = c.prepare("SELECT body FROM events WHERE agent_id = ?1 AND kind = 'file'")?;
    let mut rows = stmt.query([agent])?;
    let (mut stored, mut attributed) = (0, 0);
    let me_pid = std::process::id();
    while let Some(row) = rows.next()? {
        let body: Vec<u8> = row.get(0)?;
        let Ok(Event {
            body: Some(event::Body::File(f)),
            ..
        }) = Event::decode(body.as_slice())
        else {
            continue;
        };
        if f.kind() != Kind::Modify || !dirs.iter().any(|d| Path::new(&f.path).starts_with(d)) {
            continue;
        }
        stored += 1;
        if f.process
            .is_some_and(|p| p.pid == me_pid && Path::new(&p.exe) == me)
        {
            attributed += 1;
        }
    }
    Ok((stored, attributed))
}
