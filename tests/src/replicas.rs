//! Several controllers on one PostgreSQL store: a deployment whose controller uses a fresh
//! database on the test cluster, and replicas beside it: each a copy of the first one's
//! keys and settings (the operator's way of sharing the CA, the server certificate and the
//! command-signing key), listening on a port of its own, with its own log.

use crate::binaries::{Proc, bin, run};
use crate::deploy::{Deployment, answers_within, json_lines, merged_toml};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use tempfile::TempDir;

/// A controller deployment on a fresh database of the test cluster, or None when
/// PostgreSQL is missing and the test may skip (it says so).
pub fn on_postgres(test: &str, extra: &str) -> Option<(Deployment, String)> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The cluster outlives the runtime: it lives as long as this test binary (its watchdog
    // waits for it).
    let options = rt.block_on(cordon_controller::store::pg::testing::database(test))?;
    let url = cordon_controller::store::pg::testing::store_url(&options);
    let toml = format!(
        "{extra}\n[store]\nurl = {}\n",
        toml::Value::from(url.clone())
    );
    Some((Deployment::loopback(&toml), url))
}

/// A second controller on the deployment's store.
pub struct Replica {
    pub dir: TempDir,
    pub data_dir: PathBuf,
    /// The URL agents and cordonctl reach it at.
    pub url: String,
    proc: Option<Proc>,
}

/// The files a replica copies from the first controller's data directory.
const SHARED_FILES: [&str; 9] = [
    "ca.pem",
    "ca.key",
    "server.pem",
    "server.key",
    "signing.key",
    "admin.pem",
    "admin.key",
    "admin.toml",
    "controller.toml",
];

impl Replica {
    /// Copies `d`'s keys and settings, moves the listener to a free loopback port and starts
    /// the replica.
    pub fn beside(d: &Deployment) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("controller");
        std::fs::create_dir_all(&data_dir).unwrap();
        for f in SHARED_FILES {
            let (from, to) = (d.data_dir.join(f), data_dir.join(f));
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
            if f.ends_with(".toml") {
                let text = std::fs::read_to_string(&to).unwrap();
                let old = d.data_dir.display().to_string();
                std::fs::write(&to, text.replace(&old, &data_dir.display().to_string())).unwrap();
            }
        }
        let port = crate::deploy::free_loopback_port();
        let url = format!("https://127.0.0.1:{port}");
        let config = data_dir.join("controller.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let moved = format!("listen = \"127.0.0.1:{port}\"\nurl = \"{url}\"\n");
        std::fs::write(&config, merged_toml(&text, &moved)).unwrap();
        let admin = data_dir.join("admin.toml");
        let text = std::fs::read_to_string(&admin).unwrap();
        std::fs::write(&admin, text.replace(&d.url, &url)).unwrap();
        let mut r = Self {
            dir,
            data_dir,
            url,
            proc: None,
        };
        r.start();
        r
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("controller.log")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Starts the replica and waits until it answers.
    pub fn start(&mut self) {
        let mut cmd = Command::new(bin("cordon-controller"));
        cmd.args(["serve", "--data-dir"]).arg(&self.data_dir);
        self.proc = Some(Proc::spawn("cordon-controller", cmd, self.log()));
        if !answers_within(Duration::from_secs(20), || {
            self.try_ctl(&["agents", "list"])
        }) {
            panic!("replica did not come up:\n{}", self.log_text());
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    pub fn try_ctl(&self, args: &[&str]) -> Output {
        ctl_at(&self.data_dir, args)
    }

    /// Runs cordonctl against this replica, which must succeed; returns stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.try_ctl(args);
        assert!(
            out.status.success(),
            "cordonctl {args:?} on the replica failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A `--json` list (one object per line).
    pub fn ctl_list(&self, args: &[&str]) -> Value {
        Value::Array(json_lines(args, |all| self.ctl(all)))
    }

    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ctl(&all)).expect("cordonctl --json output")
    }
}

fn ctl_at(data_dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("cordonctl"));
    cmd.env("CORDON_ADMIN", data_dir.join("admin.toml"))
        .args(args);
    run(cmd, Duration::from_secs(60))
}
