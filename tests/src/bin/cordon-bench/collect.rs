//! Collections (issue #15): the `processes` collector on a host with `--collect-procs N`
//! (default 2,000) processes, and the `files` collector over a tree of `--collect-files N`
//! (default 100,000) files, each run in this process as the agent runs it (on a thread of
//! its own at nice 19, unthrottled), with its wall time and CPU time. The processes are
//! `sleep` children this bench starts (and kills); the tree is made under a temporary
//! directory and removed.

use super::telemetry::cpu_secs;
use anyhow::Context;
use cordon_agent::collect::{Args, Host, Limits, Outcome, throttle::run_low};
use std::process::{Child, Command};
use std::time::Instant;

/// Children this bench started, killed and reaped when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs collector `name` with `args` on the host; prints and returns what it found.
fn measure(name: &str, args: &[(&str, &str)], host: Host) -> anyhow::Result<Outcome> {
    let args = Args::new(args.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let (started, cpu) = (Instant::now(), cpu_secs());
    let out = run_low(name.into(), args, host, Limits::default())
        .join()
        .map_err(|_| anyhow::anyhow!("the collection panicked"))??;
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_secs() - cpu);
    println!(
        "  {name}: {} rows in {wall:.2} s, {cpu:.2} s of CPU ({:.0}% of a core){}",
        out.rows.len(),
        100.0 * cpu / wall.max(1e-6),
        out.truncated
            .map_or(String::new(), |t| format!(", truncated: {}", t.as_str())),
    );
    Ok(out)
}

pub fn run(procs: usize, files: usize) -> anyhow::Result<()> {
    println!("collect: processes with {procs} extra processes, files over {files} files");
    let mut children = Children(Vec::with_capacity(procs));
    for _ in 0..procs {
        children.0.push(
            Command::new("sleep")
                .arg("600")
                .spawn()
                .context("spawning sleep")?,
        );
    }
    let out = measure("processes", &[], Host::default())?;
    let mine = out
        .rows
        .iter()
        .filter(|r| r["ppid"] == std::process::id())
        .count();
    println!("  ({mine} of them this bench's children)");
    drop(children);

    let dir = tempfile::tempdir().context("a temporary directory")?;
    for d in 0..files.div_ceil(1000) {
        let sub = dir.path().join(format!("d{d:04}"));
        std::fs::create_dir(&sub)?;
        for f in 0..1000.min(files - d * 1000) {
            std::fs::write(sub.join(format!("f{f:04}.log")), format!("{d}/{f}"))?;
        }
    }
    let host = Host {
        root: dir.path().to_path_buf(),
        proc: "/proc".into(),
    };
    let limit = (2 * files).to_string();
    measure("files", &[("root", "/"), ("limit", &limit)], host.clone())?;
    measure(
        "files",
        &[("root", "/"), ("glob", "f0999.log")],
        host.clone(),
    )?;
    measure(
        "files",
        &[("root", "/"), ("hash", "true"), ("limit", &limit)],
        host,
    )?;
    Ok(())
}
