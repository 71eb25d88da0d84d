//! The process sensor: every exec and every exit on the host, in one of three modes, best
//! first. eBPF programs at the exec, fork and exit tracepoints read argv, ids and the cgroup in
//! the kernel, so even a process that lives a microsecond is seen whole. Without BPF the
//! kernel's process connector says which pids exec'd and /proc is read at once (short-lived
//! processes may be gone by then: their events go out flagged partial). Without either,
//! /proc is polled, which misses most short-lived processes; the agent says so.
//!
//! Every mode feeds the same two-stage pipeline: the source thread reads what can vanish
//! (/proc of the new process) right away; a second thread adds what can wait (parent from a
//! process table, user name, executable hash, cgroup path) and emits the events.

mod capture;
pub mod clock;
mod connector;
#[cfg(cordon_ebpf)]
mod ebpf;
pub mod enrich;
mod poll;
pub mod table;

use crate::telemetry::Emitter;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
pub use table::{Known, ProcessTable};

/// Which process sensor to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The best that works here: eBPF, then the process connector, then polling.
    Auto,
    Ebpf,
    Connector,
    Poll,
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessSensorConfig {
    pub mode: Mode,
    /// Longest argument list kept per exec (bytes, NULs included); longer ones are cut and
    /// flagged. The eBPF programs read at most 8 KiB in the kernel.
    pub argv_max_bytes: usize,
    /// Executables larger than this are reported without a hash.
    pub hash_max_bytes: u64,
    /// Polling mode: how often /proc is scanned.
    pub poll_interval_ms: u64,
}

impl Default for ProcessSensorConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Auto,
            argv_max_bytes: 8192,
            hash_max_bytes: 64 * 1024 * 1024,
            poll_interval_ms: 1000,
        }
    }
}

impl ProcessSensorConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(64..=1 << 20).contains(&self.argv_max_bytes) {
            return Err("process.argv_max_bytes must be between 64 and 1048576".into());
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err("process.poll_interval_ms must be between 10 and 60000".into());
        }
        Ok(())
    }
}

/// A new process image: what the source saw, then what stage one read from /proc.
#[derive(Debug, Clone, Default)]
pub struct RawExec {
    pub pid: u32,
    pub ppid: u32,
    /// CLOCK_BOOTTIME nanoseconds at process start (what /proc's start ticks count too).
    pub start_ns: Option<u64>,
    pub parent_start_ns: Option<u64>,
    /// The path exec was given (eBPF only).
    pub filename: Option<String>,
    pub argv: Option<Vec<String>>,
    pub argv_truncated: bool,
    /// uid, euid, gid.
    pub ids: Option<(u32, u32, u32)>,
    pub tty: Option<String>,
    pub session: Option<u32>,
    pub cgroup_id: Option<u64>,
    pub cgroup: Option<String>,
    pub comm: Option<String>,
    pub exe: Option<String>,
    pub cwd: Option<String>,
}

/// What a source reports, in the order it happened.
#[derive(Debug, Clone)]
pub enum Raw {
    Exec(Box<RawExec>),
    Fork {
        pid: u32,
        ppid: u32,
        start_ns: Option<u64>,
    },
    Exit {
        pid: u32,
        start_ns: Option<u64>,
        /// The wait status: exit code << 8, or the signal number.
        status: Option<i32>,
        /// CLOCK_BOOTTIME nanoseconds at exit.
        time_ns: u64,
    },
    /// Records the source itself lost (ring buffer or socket overflow), counted.
    Lost {
        count: u64,
        why: String,
    },
}

/// Where a source delivers its records, in order: each one, then a `flush` once it has
/// delivered what the kernel had ready, so the next stage wakes once per burst rather than
/// once per record.
pub trait Sink {
    fn push(&mut self, raw: Raw);
    fn flush(&mut self) {}
}

impl<F: FnMut(Raw)> Sink for F {
    fn push(&mut self, raw: Raw) {
        self(raw)
    }
}

/// A source of raw records, opened before the agent enters a network namespace.
pub trait Source: Send {
    /// "ebpf", "connector" or "poll".
    fn name(&self) -> &'static str;
    /// Delivers records in order until `stop` is set.
    fn run(self: Box<Self>, out: &mut dyn Sink, stop: &AtomicBool);
}

/// An opened process sensor, not yet emitting.
pub struct ProcessSensor {
    source: Box<dyn Source>,
    cfg: ProcessSensorConfig,
    table: Arc<ProcessTable>,
    /// Why better modes were not used.
    fallbacks: Vec<String>,
}

impl ProcessSensor {
    /// Opens the configured mode, or under `auto` the best one that opens here. None when
    /// the sensor is off or nothing could open (the reasons are logged).
    pub fn open(cfg: &ProcessSensorConfig) -> Option<Self> {
        let mut fallbacks = Vec::new();
        let modes: &[Mode] = match cfg.mode {
            Mode::Off => return None,
            Mode::Auto => &[Mode::Ebpf, Mode::Connector, Mode::Poll],
            Mode::Ebpf => &[Mode::Ebpf],
            Mode::Connector => &[Mode::Connector],
            Mode::Poll => &[Mode::Poll],
        };
        for mode in modes {
            match open_mode(*mode, cfg) {
                Ok(source) => {
                    return Some(Self {
                        source,
                        cfg: cfg.clone(),
                        table: Arc::new(ProcessTable::new(
                            crate::sys::procfs::Proc::default(),
                            cfg.argv_max_bytes,
                        )),
                        fallbacks,
                    });
                }
                Err(why) => {
                    tracing::warn!(?mode, %why, "process sensor mode unavailable");
                    fallbacks.push(format!("{mode:?} unavailable: {why}").to_lowercase());
                }
            }
        }
        tracing::error!("no process sensor could open: {}", fallbacks.join("; "));
        None
    }

    pub fn mode(&self) -> &'static str {
        self.source.name()
    }

    /// The table of processes this sensor keeps, for other sensors to name processes by.
    pub fn table(&self) -> Arc<ProcessTable> {
        self.table.clone()
    }

    /// One line for heartbeats: the mode, and why it is not eBPF.
    pub fn status(&self) -> String {
        if self.fallbacks.is_empty() {
            self.mode().to_string()
        } else {
            format!("{} ({})", self.mode(), self.fallbacks.join("; "))
        }
    }

    /// Starts the two stages. A mode below eBPF is reported as a `sensor_degraded` event.
    pub fn start(self, emit: Emitter) -> Running {
        let mode = self.mode();
        if mode != "ebpf" {
            let what = if mode == "poll" {
                "polling /proc misses most short-lived processes"
            } else {
                "short-lived processes may be reported without argv"
            };
            tracing::warn!(mode, "process sensor degraded: {what}");
            emit.notice(
                "sensor_degraded",
                format!("process sensor in {} mode: {what}", self.status()),
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (capture, rx) = match start_capture(self.source, self.cfg.argv_max_bytes, &stop) {
            Ok((thread, rx)) => (Ok(thread), rx),
            Err(e) => (Err(e), std::sync::mpsc::sync_channel(0).1),
        };
        let cfg = self.cfg;
        let table = self.table;
        let enrich = std::thread::Builder::new()
            .name("cordon-proc-enrich".into())
            .spawn(move || {
                let mut enricher = enrich::Enricher::new(&cfg, mode, table);
                enricher.seed();
                for raw in rx.iter().flatten() {
                    match enricher.handle(raw) {
                        Some(enrich::Out::Event(body)) => emit.emit(*body),
                        Some(enrich::Out::Lost { count, why }) => emit.lost(count, why),
                        None => {}
                    }
                }
            });
        let threads = [capture, enrich]
            .into_iter()
            .filter_map(|t| t.map_err(|e| tracing::error!(error = %e, "thread")).ok())
            .collect();
        Running { stop, threads }
    }
}

/// Stage one on its own thread: runs `source` until `stop` is set, reads /proc for each exec
/// the moment it is seen, and passes every record on, in order, a burst at a time, through a
/// bounded channel (a slow second stage holds the source back, and the source counts what
/// the kernel could then not deliver). The thread ends, closing the channel, once `stop` is
/// set.
pub fn start_capture(
    source: Box<dyn Source>,
    argv_max: usize,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<(JoinHandle<()>, std::sync::mpsc::Receiver<Vec<Raw>>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Raw>>(256);
    let stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("cordon-proc-src".into())
        .spawn(move || {
            let mut stage = Capture {
                proc: crate::sys::procfs::Proc::default(),
                argv_max,
                burst: Vec::new(),
                tx,
            };
            source.run(&mut stage, &stop);
            stage.flush();
        })?;
    Ok((thread, rx))
}

/// Stage one's sink: /proc is read as each exec arrives; records go on per burst.
struct Capture {
    proc: crate::sys::procfs::Proc,
    argv_max: usize,
    burst: Vec<Raw>,
    tx: std::sync::mpsc::SyncSender<Vec<Raw>>,
}

/// Most records passed on at once.
const BURST: usize = 1024;

impl Sink for Capture {
    fn push(&mut self, mut raw: Raw) {
        if let Raw::Exec(e) = &mut raw {
            capture::exec(&self.proc, e, self.argv_max);
        }
        self.burst.push(raw);
        if self.burst.len() >= BURST {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.burst.is_empty() {
            let _ = self.tx.send(std::mem::take(&mut self.burst));
        }
    }
}

/// Opens exactly one mode (no fallback), e.g. to compare the modes side by side.
pub fn open_source(mode: Mode, cfg: &ProcessSensorConfig) -> Result<Box<dyn Source>, String> {
    open_mode(mode, cfg)
}

fn open_mode(mode: Mode, cfg: &ProcessSensorConfig) -> Result<Box<dyn Source>, String> {
    match mode {
        Mode::Ebpf => open_ebpf(),
        Mode::Connector => Ok(Box::new(connector::Connector::open()?)),
        Mode::Poll => Ok(Box::new(poll::Poller::new(cfg))),
        Mode::Auto | Mode::Off => Err("not a mode".into()),
    }
}

#[cfg(cordon_ebpf)]
fn open_ebpf() -> Result<Box<dyn Source>, String> {
    Ok(Box::new(ebpf::Ebpf::open()?))
}

#[cfg(not(cordon_ebpf))]
fn open_ebpf() -> Result<Box<dyn Source>, String> {
    Err("this agent was built with CORDON_NO_EBPF (or for a big-endian target), so without the eBPF sensor".into())
}

/// A started sensor; dropping it stops the threads.
pub struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// Root is needed to load BPF or join the proc events group: skip loudly without it,
    /// fail under CI.
    fn root_or_skip(what: &str) -> bool {
        if crate::sys::privileges::is_root() {
            return true;
        }
        assert!(
            !cordon_skips::in_ci(),
            "{what} needs root, and CI must run it"
        );
        cordon_skips::skip(what, "needs root");
        false
    }

    /// Runs `source` (with stage one) while `work` runs, until `done` holds for what it
    /// delivered and what `work` returned, or five seconds pass. Other tests run processes
    /// at the same time, so `done` must look for this test's own processes.
    fn collect<T>(
        source: Box<dyn Source>,
        work: impl FnOnce() -> T,
        done: impl Fn(&[Raw], &T) -> bool,
    ) -> (Vec<Raw>, T) {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, st) = (seen.clone(), stop.clone());
        let t = std::thread::spawn(move || {
            let proc = crate::sys::procfs::Proc::default();
            source.run(
                &mut |mut raw| {
                    if let Raw::Exec(e) = &mut raw {
                        capture::exec(&proc, e, 8192);
                    }
                    s.lock().unwrap().push(raw);
                },
                &st,
            )
        });
        let made = work();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !done(&seen.lock().unwrap(), &made) {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        (std::mem::take(&mut *seen.lock().unwrap()), made)
    }

    fn exited(seen: &[Raw], pid: u32) -> bool {
        seen.iter()
            .any(|r| matches!(r, Raw::Exit { pid: p, .. } if *p == pid))
    }

    fn execs_with<'a>(seen: &'a [Raw], marker: &'a str) -> impl Iterator<Item = &'a RawExec> {
        seen.iter().filter_map(move |r| match r {
            Raw::Exec(e)
                if e.argv
                    .as_ref()
                    .is_some_and(|a| a.iter().any(|x| x == marker)) =>
            {
                Some(&**e)
            }
            _ => None,
        })
    }

    /// Runs `sh -c 'exit 3'`-like children with a unique marker: one plain exec and one
    /// through a shell that exits with a code.
    fn workload(marker: &str) -> (u32, u32) {
        let mut a = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 3", marker])
            .spawn()
            .unwrap();
        let pid_a = a.id();
        assert_eq!(a.wait().unwrap().code(), Some(3));
        let mut b = std::process::Command::new("/bin/echo")
            .arg(marker)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid_b = b.id();
        b.wait().unwrap();
        (pid_a, pid_b)
    }

    #[cfg(not(cordon_ebpf))]
    #[test]
    fn ci_builds_the_ebpf_sensor() {
        assert!(
            !cordon_skips::in_ci(),
            "under CI the agent must be built with the eBPF sensor (CORDON_NO_EBPF unset)"
        );
        cordon_skips::skip(
            "the eBPF process sensor tests",
            "this agent was built with CORDON_NO_EBPF",
        );
    }

    #[cfg(cordon_ebpf)]
    #[test]
    fn ebpf_sees_short_lived_execs_whole_and_their_exits() {
        if !root_or_skip("the eBPF process sensor test") {
            return;
        }
        let source = Box::new(ebpf::Ebpf::open().expect("eBPF loads on this kernel"));
        let marker = format!("cordon-ebpf-{}", std::process::id());
        let (seen, pids) = collect(
            source,
            || workload(&marker),
            |seen, pids| exited(seen, pids.0) && execs_with(seen, &marker).count() >= 2,
        );
        let execs: Vec<_> = execs_with(&seen, &marker).collect();
        assert_eq!(execs.len(), 2, "both execs, once each");
        let sh = execs.iter().find(|e| e.pid == pids.0).unwrap();
        assert_eq!(
            sh.argv.as_deref().unwrap(),
            &[
                "/bin/sh".to_string(),
                "-c".into(),
                "exit 3".into(),
                marker.clone()
            ]
        );
        assert_eq!(sh.ppid, std::process::id());
        assert_eq!(sh.filename.as_deref(), Some("/bin/sh"));
        // Read in the kernel, so right even though the shell was gone at once.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(sh.cwd.as_deref(), cwd.to_str());
        let real = std::fs::canonicalize("/bin/sh").unwrap();
        assert_eq!(sh.exe.as_deref(), real.to_str());
        assert!(sh.start_ns.is_some() && sh.ids.is_some() && sh.cgroup_id.is_some());
        let echo = execs.iter().find(|e| e.pid == pids.1).unwrap();
        assert!(echo.exe.as_deref().unwrap().ends_with("/echo"));
        let exit = seen.iter().find_map(|r| match r {
            Raw::Exit { pid, status, .. } if *pid == pids.0 => *status,
            _ => None,
        });
        assert_eq!(exit, Some(3 << 8), "the shell's exit status");
        assert!(
            seen.iter()
                .any(|r| matches!(r, Raw::Fork { pid, .. } if *pid == pids.0)),
            "the fork before the exec"
        );
    }

    #[test]
    fn the_process_connector_reports_execs_forks_and_exits() {
        if !root_or_skip("the process connector test") {
            return;
        }
        let source = Box::new(connector::Connector::open().expect("the connector opens"));
        let marker = format!("cordon-cn-{}", std::process::id());
        let (seen, pids) = collect(
            source,
            || workload(&marker),
            |seen, pids| exited(seen, pids.0) && execs_with(seen, &marker).count() >= 2,
        );
        let exec_pids: Vec<u32> = seen
            .iter()
            .filter_map(|r| match r {
                Raw::Exec(e) => Some(e.pid),
                _ => None,
            })
            .collect();
        assert!(exec_pids.contains(&pids.0) && exec_pids.contains(&pids.1));
        let exit = seen.iter().find_map(|r| match r {
            Raw::Exit { pid, status, .. } if *pid == pids.0 => *status,
            _ => None,
        });
        assert_eq!(exit, Some(3 << 8));
        assert!(
            seen.iter()
                .any(|r| matches!(r, Raw::Fork { pid, ppid, .. } if *pid == pids.0 && *ppid == std::process::id()))
        );
    }

    #[test]
    fn polling_sees_a_process_that_lives_across_scans() {
        let cfg = ProcessSensorConfig {
            poll_interval_ms: 50,
            ..Default::default()
        };
        let (seen, pid) = collect(
            Box::new(poll::Poller::new(&cfg)),
            || {
                // After the poller's first scan, which is the baseline and reports nothing.
                std::thread::sleep(Duration::from_millis(300));
                let mut sleep = std::process::Command::new("/bin/sleep")
                    .arg("0.6")
                    .spawn()
                    .unwrap();
                let pid = sleep.id();
                std::thread::spawn(move || sleep.wait());
                pid
            },
            |seen, pid| exited(seen, *pid),
        );
        let exec = seen
            .iter()
            .find_map(|r| match r {
                Raw::Exec(e) if e.pid == pid => Some(e),
                _ => None,
            })
            .expect("the sleep was seen");
        assert_eq!(
            exec.argv.as_deref().unwrap(),
            &["/bin/sleep".to_string(), "0.6".into()]
        );
        assert!(exited(&seen, pid));
    }
}
