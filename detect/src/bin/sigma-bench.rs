//! `sigma-bench`: events per second through every loaded community rule, on one thread.
//!
//! ```sh
//! cargo run --release -p cordon-detect --bin sigma-bench -- [--rules DIR] [--events N]
//! ```
//!
//! Loads `process_creation` and `file_event` rules under DIR (default: `../shared/sigma/linux`
//! beside the workspace), builds a pool of process exec events (mostly benign commands with
//! varied argv, parents, users and directories; about 2% are the sample commands that fire
//! rules), then evaluates N events (default 2,000,000) one after another through
//! `RuleSet::evaluate`, as the controller's ingest does, and prints the rate.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use cordon_detect::samples::SAMPLES;
use cordon_detect::{RuleSet, load_dir};
use cordon_proto::{Event, ProcessEvent, event, process_event};

fn main() -> anyhow::Result<()> {
    let mut rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/sigma/linux");
    let mut events: usize = 2_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rules" => rules = args.next().context("--rules DIR")?.into(),
            "--events" => events = args.next().context("--events N")?.parse()?,
            _ => bail!("usage: sigma-bench [--rules DIR] [--events N]"),
        }
    }
    let mut set = RuleSet::new();
    for sub in ["process_creation", "file_event"] {
        let report = load_dir(&rules.join(sub));
        if report.total() == 0 {
            bail!("no rules under {}", rules.join(sub).display());
        }
        println!(
            "{sub}: {} loaded, {} refused, {} skipped",
            report.loaded.len(),
            report.refused.len(),
            report.skipped.len()
        );
        for rule in report.loaded {
            set.insert(rule)?;
        }
    }
    let started = Instant::now();
    set.prepare();
    println!(
        "rules loaded: {} (index built in {:.1} ms)",
        set.len(),
        started.elapsed().as_secs_f64() * 1e3
    );

    let pool = event_pool(20_000);
    // Warm up caches and the allocator.
    for e in pool.iter().take(10_000) {
        std::hint::black_box(set.evaluate(e));
    }
    let (mut matches, mut matched_events) = (0usize, 0usize);
    let cpu_before = thread_cpu_ns();
    let started = Instant::now();
    for e in pool.iter().cycle().take(events) {
        let m = set.evaluate(e);
        matches += m.len();
        matched_events += usize::from(!m.is_empty());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "events: {events} in {secs:.2} s on one thread: {:.0} events/s ({:.2} us/event)",
        events as f64 / secs,
        secs * 1e6 / events as f64
    );
    if let (Some(a), Some(b)) = (cpu_before, thread_cpu_ns()) {
        let cpu = (b - a) as f64 / 1e9;
        println!(
            "cpu: {cpu:.2} s on the thread: {:.0} events per CPU second",
            events as f64 / cpu
        );
    }
    println!(
        "matches found: {matches} ({matched_events} events matched at least one rule, {:.1}%)",
        100.0 * matched_events as f64 / events as f64
    );
    Ok(())
}

/// Time this thread has spent on a CPU, in ns (`/proc/thread-self/schedstat`), which a busy
/// machine disturbs less than the wall clock.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Everyday commands: (exe, argv template); `{n}` and `{f}` are filled per event.
const BENIGN: &[(&str, &str)] = &[
    ("/usr/bin/ls", "ls -la /home/user{n}/projects"),
    ("/usr/bin/git", "git status --porcelain"),
    ("/usr/bin/git", "git -C /srv/repo{n} fetch origin main"),
    (
        "/usr/bin/python3.11",
        "python3 /opt/app/manage.py runjob --id {n}",
    ),
    ("/usr/bin/systemctl", "systemctl is-active nginx.service"),
    ("/usr/bin/ps", "ps -eo pid,ppid,cmd"),
    (
        "/usr/bin/gcc",
        "gcc -O2 -Wall -I/usr/include/openssl -c src/{f}.c -o build/{f}.o",
    ),
    (
        "/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
        "/usr/lib/gcc/x86_64-linux-gnu/12/cc1 -quiet -I /usr/include src/{f}.c -quiet -dumpbase {f}.c -O2 -Wall -o /tmp/ccX{n}.s",
    ),
    ("/usr/bin/make", "make -j8 all"),
    ("/usr/bin/date", "date +%s"),
    ("/usr/bin/sed", "sed -i s/foo/bar/g /srv/app/config{n}.ini"),
    ("/usr/bin/awk", "awk -F: {print $1} /srv/data/{f}.csv"),
    (
        "/usr/bin/tar",
        "tar czf /backup/home-{n}.tar.gz /home/user{n}",
    ),
    (
        "/usr/bin/rsync",
        "rsync -a --delete /srv/www/ backup:/srv/www/",
    ),
    ("/usr/sbin/sshd", "sshd: user{n} [priv]"),
    (
        "/usr/bin/dash",
        "sh -c /usr/lib/update-notifier/update-motd-updates-available",
    ),
    ("/usr/bin/bash", "bash /etc/cron.daily/logrotate"),
    (
        "/usr/sbin/logrotate",
        "/usr/sbin/logrotate /etc/logrotate.conf",
    ),
    (
        "/usr/bin/java",
        "java -Xmx2g -cp /opt/app/lib/a.jar:/opt/app/lib/b.jar:/opt/app/lib/c.jar:/opt/app/lib/d.jar com.example.Main --port 80{n}",
    ),
    ("/usr/bin/node", "node /srv/api/server.js --workers 4"),
    ("/usr/bin/docker", "docker ps --format {{.Names}}"),
    ("/usr/bin/cat", "cat /srv/app/logs/{f}.log"),
    ("/usr/bin/grep", "grep -rn TODO src/{f}.rs"),
    ("/usr/bin/sleep", "sleep 30"),
    ("/usr/bin/mkdir", "mkdir -p /srv/cache/{f}/{n}"),
    ("/usr/bin/cp", "cp /srv/app/{f}.conf /srv/app/{f}.conf.bak"),
    (
        "/usr/bin/rustc",
        "rustc --crate-name {f} --edition=2021 src/lib.rs --crate-type lib --emit=dep-info,metadata,link -C opt-level=3 -C embed-bitcode=no -C metadata={n} --out-dir /work/target/release/deps -L dependency=/work/target/release/deps",
    ),
    ("/usr/bin/apt-get", "apt-get -qq update"),
    ("/usr/bin/journalctl", "journalctl -u nginx --since -1h"),
    ("/usr/bin/vim", "vim /home/user{n}/notes.txt"),
];

const FILES: &[&str] = &[
    "main", "util", "parser", "net", "db", "report", "index", "cache",
];
const USERS: &[&str] = &["root", "alice", "bob", "www-data", "postgres"];
const PARENTS: &[(&str, &str)] = &[
    ("/usr/bin/bash", "-bash"),
    ("/usr/lib/systemd/systemd", "/sbin/init"),
    ("/usr/sbin/cron", "/usr/sbin/cron -f"),
    ("/usr/bin/make", "make -j8 all"),
    ("/usr/sbin/sshd", "sshd: alice@pts/0"),
];

fn event_pool(size: usize) -> Vec<Event> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let bad: Vec<_> = SAMPLES
        .iter()
        .flat_map(|s| s.observed())
        .filter(|o| o.category == "process_creation")
        .collect();
    (0..size)
        .map(|i| {
            let n = rng.below(1000).to_string();
            let (exe, argv) = if rng.below(100) < 2 {
                let o = &bad[rng.below(bad.len())];
                let get = |k: &str| {
                    o.fields
                        .iter()
                        .find(|(f, _)| *f == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                (get("Image"), get("CommandLine"))
            } else {
                let (exe, template) = BENIGN[rng.below(BENIGN.len())];
                let f = rng.pick(FILES);
                (
                    exe.to_string(),
                    template.replace("{n}", &n).replace("{f}", f),
                )
            };
            let (parent_exe, parent_cmd) = PARENTS[rng.below(PARENTS.len())];
            let sha: String = (0..4).map(|_| format!("{:016x}", rng.next())).collect();
            Event {
                seq: i as u64,
                time_ms: 1_700_000_000_000 + i as i64,
                body: Some(event::Body::Process(ProcessEvent {
                    kind: process_event::Kind::Exec as i32,
                    pid: 1000 + i as u32,
                    ppid: 900 + rng.below(100) as u32,
                    exe,
                    argv: argv.split(' ').map(str::to_string).collect(),
                    cwd: format!("/home/{}", rng.pick(USERS)),
                    user: rng.pick(USERS).to_string(),
                    exe_sha256: sha,
                    parent_exe: parent_exe.to_string(),
                    parent_argv: parent_cmd.split(' ').map(str::to_string).collect(),
                    ..Default::default()
                })),
                ..Default::default()
            }
        })
        .collect()
}
