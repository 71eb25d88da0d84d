//! An exec workload for the sensor benchmark: N short-lived children, one after another, at a
//! fixed rate or as fast as they go, each with a unique argument so that a sensor's capture
//! can be matched to exactly one exec. Children run `/bin/true` through `execve`, or through
//! `execveat` on a descriptor (a helper child, see [`execveat_child`]).

use anyhow::{Context, bail};
use std::ffi::{CStr, CString};
use std::process::Command;
use std::time::{Duration, Instant};

/// The environment variable that hands the helper child its unique argument. Passed in the
/// environment, not argv, so the helper's own exec never carries the marker.
pub const MARKER_ENV: &str = "CORDON_BENCH_MARKER";
/// The argv[0] the `execveat` children get.
pub const EXECVEAT_ARGV0: &str = "true";
/// The program the `execve` children run, which is also their argv[0].
pub const TRUE: &str = "/bin/true";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Execve,
    Execveat,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Execve => "execve",
            Via::Execveat => "execveat",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "execve" => Ok(Via::Execve),
            "execveat" => Ok(Via::Execveat),
            other => bail!("--via must be execve or execveat, not {other}"),
        }
    }

    /// The exact argv a child with `marker` runs with.
    pub fn argv(self, marker: &str) -> [String; 2] {
        let argv0 = match self {
            Via::Execve => TRUE,
            Via::Execveat => EXECVEAT_ARGV0,
        };
        [argv0.to_string(), marker.to_string()]
    }
}

/// The unique argument of the i-th child of a loop.
pub fn marker(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:06}")
}

pub struct LoopOpts {
    pub n: usize,
    /// Execs per second; None: as fast as they go.
    pub rate: Option<f64>,
    pub prefix: String,
    pub via: Via,
}

/// What a loop did: its children's pids (in order) and how long it took.
pub struct LoopReport {
    pub pids: Vec<u32>,
    pub failed: usize,
    pub elapsed: Duration,
}

/// Runs the children one at a time (each waited for before the next starts), the i-th due at
/// `i / rate` seconds after the start; a child that is late starts at once.
pub fn exec_loop(o: &LoopOpts) -> anyhow::Result<LoopReport> {
    let me = std::env::current_exe().context("own executable")?;
    let started = Instant::now();
    let mut pids = Vec::with_capacity(o.n);
    let mut failed = 0;
    for i in 0..o.n {
        if let Some(rate) = o.rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let marker = marker(&o.prefix, i);
        let mut cmd = match o.via {
            Via::Execve => {
                let mut c = Command::new(TRUE);
                c.arg(&marker);
                c
            }
            Via::Execveat => {
                let mut c = Command::new(&me);
                c.arg("execveat-child").env(MARKER_ENV, &marker);
                c
            }
        };
        let mut child = cmd.spawn().with_context(|| format!("spawning {marker}"))?;
        pids.push(child.id());
        if !child.wait().context("waiting for a child")?.success() {
            failed += 1;
        }
    }
    Ok(LoopReport {
        pids,
        failed,
        elapsed: started.elapsed(),
    })
}

/// Exec loops started as child processes of this benchmark, run to completion.
pub struct Workload {
    pub via: Via,
    pub rate: Option<f64>,
    pub loops: usize,
    pub n: usize,
    pub prefix: String,
}

pub struct Ran {
    pub pids: Vec<u32>,
    pub failed: usize,
    pub elapsed: Duration,
}

impl Workload {
    pub fn name(&self) -> String {
        let rate = self
            .rate
            .map_or("max rate".to_string(), |r| format!("{r}/s"));
        let shape = if self.loops == 1 {
            "serial".to_string()
        } else {
            format!("{} loops in parallel", self.loops)
        };
        format!("{}, {rate}, {shape}", self.via.name())
    }

    /// Loop `l`'s prefix; its children are `marker(prefix, i)`.
    pub fn loop_prefix(&self, l: usize) -> String {
        format!("{}l{l}-", self.prefix)
    }

    pub fn loop_n(&self, l: usize) -> usize {
        self.n / self.loops + usize::from(l < self.n % self.loops)
    }

    /// Every child's marker and exact argv.
    pub fn expected(&self) -> Vec<(String, [String; 2])> {
        (0..self.loops)
            .flat_map(|l| {
                let p = self.loop_prefix(l);
                (0..self.loop_n(l)).map(move |i| marker(&p, i))
            })
            .map(|m| {
                let argv = self.via.argv(&m);
                (m, argv)
            })
            .collect()
    }

    /// Runs the loops (the rate is shared among them) and waits for them.
    pub fn run(&self) -> anyhow::Result<Ran> {
        let me = std::env::current_exe()?;
        let started = Instant::now();
        let children = (0..self.loops)
            .map(|l| {
                let mut c = std::process::Command::new(&me);
                // The loops are this same benchmark binary's `exec-loop` command.
                c.args(["exec-loop", "--n", &self.loop_n(l).to_string()])
                    .args(["--unique-prefix", &self.loop_prefix(l)])
                    .args(["--via", self.via.name()])
                    .stdout(std::process::Stdio::piped());
                if let Some(r) = self.rate {
                    c.args(["--rate", &(r / self.loops as f64).to_string()]);
                }
                c.spawn().context("starting an exec loop")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut ran = Ran {
            pids: Vec::new(),
            failed: 0,
            elapsed: Duration::ZERO,
        };
        for c in children {
            let out = c.wait_with_output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                bail!("an exec loop failed: {text}");
            }
            let mut words = text.split_whitespace();
            words.next().context("loop output")?;
            ran.failed += words.next().context("loop output")?.parse::<usize>()?;
            for p in words {
                ran.pids.push(p.parse()?);
            }
        }
        ran.elapsed = started.elapsed();
        Ok(ran)
    }
}

/// The helper child of an `execveat` loop: replaces itself with /bin/true through
/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`, so the kernel execs a descriptor (the
/// name it reports is `/dev/fd/N`). Returns only on failure.
pub fn execveat_child() -> anyhow::Result<()> {
    let marker = std::env::var(MARKER_ENV).with_context(|| format!("{MARKER_ENV} unset"))?;
    // Close-on-exec is fine for an ELF binary (only a script needs the descriptor after).
    let file = std::fs::File::open(TRUE).with_context(|| format!("opening {TRUE}"))?;
    let argv = [
        CString::new(EXECVEAT_ARGV0)?,
        CString::new(marker).context("marker")?,
    ];
    let env: [&CStr; 0] = [];
    let Err(err) =
        nix::unistd::execveat(&file, c"", &argv, &env, nix::fcntl::AtFlags::AT_EMPTY_PATH);
    bail!("execveat of {TRUE}: {err}")
}
