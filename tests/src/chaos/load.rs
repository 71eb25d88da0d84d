//! The soak's load: on each host, files made in the directory its file sensor watches and
//! short processes run, at a steady pace, until told to stop or a deadline passes.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One file every this often on each host, and one process every other file.
const PACE: Duration = Duration::from_millis(50);

/// The load threads, one per host.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl Load {
    /// Starts a thread per watched directory; each stops at `deadline` at the latest.
    pub fn start(watched: Vec<PathBuf>, deadline: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = watched
            .into_iter()
            .enumerate()
            .map(|(i, dir)| {
                let stop = stop.clone();
                std::thread::spawn(move || host_load(&dir, i, &stop, deadline))
            })
            .collect();
        Self { stop, threads }
    }

    /// Stops the threads; how many files they made in all.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap_or(0))
            .sum()
    }
}

fn host_load(dir: &std::path::Path, host: usize, stop: &AtomicBool, deadline: Instant) -> u64 {
    let mut made = 0u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let name = format!("load-{host}-{made:07}");
        if std::fs::write(dir.join(&name), made.to_string()).is_ok() {
            made += 1;
        }
        if made.is_multiple_of(2) {
            let _ = Command::new("/bin/true")
                .arg(format!("cordon-chaos-{name}"))
                .stdout(Stdio::null())
                .status();
        }
        std::thread::sleep(PACE);
    }
    made
}
