//! Harness for Cordon's end-to-end tests and benchmarks: an in-process controller on
//! loopback, the real binaries as child processes, network namespaces joined by veth pairs,
//! and the root/CI rules for tests that need privileges.

#![allow(clippy::unwrap_used)] // test harness: a failed unwrap is a failed test

pub mod binaries;
pub mod browser;
pub mod burst;
pub mod chaos;
pub mod console;
pub mod deploy;
pub mod execload;
pub mod inproc;
pub mod logs;
pub mod netns;
pub mod owned;
pub mod people;
pub mod procstat;
pub mod rawconn;
pub mod replicas;
pub mod repo;
pub mod resolver;
pub mod sim;
pub mod webhook;

/// True when the test may use root-only facilities (network namespaces). Outside CI a test
/// without root skips, recorded by `cordon_skips::skip`; under CI=true missing root is a
/// failure.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if cordon_skips::in_ci() {
        panic!("{test} needs root (network namespaces) and CI=true: refusing to skip");
    }
    cordon_skips::skip(
        test,
        "needs root (network namespaces, eBPF); run the suite as root",
    );
    false
}

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Polls `check` every 50 ms until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Calls `check` every 100 ms until it returns Some or `timeout` passes (it runs once more at
/// the end). The blocking twin of [`eventually`], for tests that drive the binaries.
pub fn poll<T>(timeout: std::time::Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Some(v) = check() {
            return Some(v);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    check()
}

/// Whether `f` becomes true within `timeout`.
pub fn within(timeout: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    poll(timeout, || f().then_some(())).is_some()
}

/// The real path of an existing file (symlinks resolved), as sensors report executables.
pub fn real_path(path: &str) -> String {
    std::fs::canonicalize(path)
        .expect("a path that exists")
        .to_string_lossy()
        .into_owned()
}
