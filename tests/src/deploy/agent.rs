//! One enrolled agent as a test holds it: its files, its process, the namespace it runs in,
//! and a reading of its spool from a copy.

use super::merge_toml;
use crate::binaries::Proc;
use cordon_agent::spool::{OpenReport, Spool, SpoolConfig};
use std::path::{Path, PathBuf};

/// One enrolled agent's files.
pub struct AgentHandle {
    pub id: String,
    pub state_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub proc: Option<Proc>,
    /// The network namespace it enrols and runs in (`--netns`), if any.
    pub netns: Option<String>,
}

impl AgentHandle {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Adds settings to the agent's config file (replacing top-level keys and tables it
    /// already has); takes effect at the agent's next start.
    pub fn configure(&self, extra: &str) {
        merge_toml(&self.config, extra);
    }

    /// Points the file sensor (inotify, which sees nothing else) at `dir` alone and turns
    /// the process sensor off, so the files a test makes are the only events besides the
    /// agent's own notices.
    pub fn watch_only(&self, dir: &Path) {
        let dir = toml::Value::from(dir.display().to_string());
        self.configure(&format!(
            "[files]\nmode = \"inotify\"\nwatch = [{dir}]\nrecursive = []\n\
             [process]\nmode = \"off\"\n"
        ));
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }

    /// What the agent's spool holds now, read from a copy with the agent's own spool code
    /// (the agent's files are not touched). Take it while nothing trims the spool: the agent
    /// stopped, or cut off from the controller.
    pub fn spool_snapshot(&self) -> SpoolSnapshot {
        let copy = tempfile::tempdir().expect("tempdir");
        for entry in std::fs::read_dir(self.spool_dir()).expect("the agent's spool") {
            let path = entry.expect("spool entry").path();
            match std::fs::copy(&path, copy.path().join(path.file_name().unwrap())) {
                Ok(_) => {}
                // Gone since the listing: a segment deleted behind an acknowledgement.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("copying {}: {e}", path.display()),
            }
        }
        let (mut spool, report) = Spool::open(SpoolConfig {
            dir: copy.path().to_path_buf(),
            max_bytes: u64::MAX,
            segment_bytes: u64::MAX,
        })
        .expect("opening the copied spool");
        let unacked = spool
            .read_from(spool.acked() + 1, usize::MAX)
            .expect("reading the copied spool");
        SpoolSnapshot {
            acked: spool.acked(),
            last_seq: spool.last_seq(),
            unacked,
            report,
        }
    }
}

/// An agent's spool at one moment (see [`AgentHandle::spool_snapshot`]).
#[derive(Debug)]
pub struct SpoolSnapshot {
    /// The controller had acknowledged storing everything through this sequence number.
    pub acked: u64,
    pub last_seq: u64,
    /// The events after `acked`, in order.
    pub unacked: Vec<cordon_proto::Event>,
    /// Corrupt or torn regions opening the spool found (and cut from the copy).
    pub report: OpenReport,
}
