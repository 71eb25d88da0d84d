//! The agent's responders: what a verified command does on this host. Network containment
//! (isolate, release, block) goes through [`containment::Containment`]; kill and quarantine
//! through their own modules. Every OS effect sits behind a trait with a real implementation
//! and, in tests, a recording fake.

pub mod block;
pub mod containment;
pub mod fakes;
pub mod isolate;
pub mod kill;
pub mod net;
pub mod nft;
pub mod protect;
pub mod quarantine;

use crate::commands::{Executor, Job};
use crate::config::ContainmentConfig;
use crate::outbox::Outbox;
use crate::sensors::inventory;
use crate::swap::Swap;
use containment::Containment;
use cordon_proto::time::now_ms;
use cordon_proto::{KillResult, KilledProcess, Pong, QuarantineList, action, command_result};
use std::sync::Arc;

/// Runs actions on the real host.
pub struct HostResponder {
    pub containment: Arc<Containment>,
    pub processes: Arc<dyn kill::ProcessTable>,
    pub signaller: Arc<dyn kill::Signaller>,
    /// Read once per kill command: a reloaded configuration replaces it.
    pub kill_policy: Arc<Swap<kill::Policy>>,
    pub quarantine: Arc<dyn quarantine::Quarantiner>,
    /// Where collections keep their rows until they are sent.
    pub outbox: Arc<Outbox>,
    /// What file fetch takes and refuses (its limit is read at start).
    pub fetch: Arc<crate::collect::fetch::Fetcher>,
}

impl HostResponder {
    /// The real responders for an agent with state in `state` talking to the controllers at
    /// `controller_urls`.
    pub fn new(
        state: &crate::state::StateDir,
        config: &crate::config::AgentConfig,
        controller_urls: Vec<String>,
    ) -> Self {
        let containment = Containment::new(
            Box::new(isolate::NftIsolator),
            Box::new(block::NftBlocker),
            Box::new(containment::TcpReachability),
            config.containment.clone(),
            controller_urls,
            state.dir.join("containment.json"),
        );
        Self {
            containment: Arc::new(containment),
            processes: Arc::new(kill::ProcFs::default()),
            signaller: Arc::new(kill::Pidfd {
                table: kill::ProcFs::default(),
            }),
            kill_policy: Arc::new(Swap::new(kill::Policy {
                self_pid: std::process::id(),
                protected: protect::Protected::new(config.containment.protected_processes.clone()),
            })),
            quarantine: Arc::new(quarantine::QuarantineStore::new(
                state.dir.join("quarantine"),
                quarantine_protection(state, config),
            )),
            outbox: Arc::new(Outbox::new(state.dir.join("outbox"))),
            fetch: Arc::new(crate::collect::fetch::Fetcher::new(
                &state.dir,
                config.source.clone(),
                config.investigation.max_fetch_bytes,
            )),
        }
    }
}

/// What quarantine must not take: the agent's state directory; its config and binary; the
/// critical files.
fn quarantine_protection(
    state: &crate::state::StateDir,
    config: &crate::config::AgentConfig,
) -> quarantine::Protection {
    let mut own_dirs = vec![state.dir.clone()];
    own_dirs.extend(state.dir.canonicalize().ok());
    let mut own_files: Vec<std::path::PathBuf> = config.source.iter().cloned().collect();
    own_files.extend(std::env::current_exe().ok());
    quarantine::Protection {
        own_dirs,
        own_files: protect::Protected::new(own_files),
        critical: protect::Protected::new(critical_files(&config.containment)),
    }
}

/// The files quarantine takes only with force: the configured ones, every file the agent has
/// mapped (its loader, libc and other libraries) and the nft it runs.
fn critical_files(config: &ContainmentConfig) -> Vec<std::path::PathBuf> {
    let mut critical = config.protected_files.clone();
    match std::fs::read_to_string("/proc/self/maps") {
        Ok(maps) => critical.extend(protect::mapped_files(&maps)),
        Err(e) => tracing::warn!(error = %e, "cannot list the agent's libraries to protect them"),
    }
    let path_var = std::env::var("PATH").unwrap_or_default();
    critical.extend(protect::find_program("nft", &path_var));
    critical
}

impl HostResponder {
    /// Puts reloaded containment settings in force from the next command on: the protected
    /// processes and files (re-resolved to device and inode; a path kept from before keeps
    /// the identity it had at start) and the isolation settings.
    pub fn reconfigure(&self, config: &ContainmentConfig) {
        let policy = self.kill_policy.load();
        self.kill_policy.store(kill::Policy {
            self_pid: policy.self_pid,
            protected: policy
                .protected
                .reloaded(config.protected_processes.clone()),
        });
        self.quarantine.protect(critical_files(config));
        self.containment.reconfigure(config.clone());
    }
}

/// Runs blocking work (nft, /proc, file copies) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the action panicked: {e}"))?
}

impl Executor for HostResponder {
    async fn execute(
        &self,
        job: &Job,
        action: &action::Kind,
    ) -> Result<command_result::Output, String> {
        use command_result::Output;
        let c = self.containment.clone();
        match action.clone() {
            action::Kind::Ping(_) => Ok(Output::Pong(Pong {
                agent_time_ms: now_ms(),
            })),
            action::Kind::CollectInventory(_) => blocking(|| Ok(inventory::collect()))
                .await
                .map(Output::Inventory),
            action::Kind::Isolate(i) => blocking(move || c.isolate(&i.allow, &i.reason))
                .await
                .map(Output::Isolation),
            action::Kind::Release(_) => blocking(move || c.release()).await.map(Output::Isolation),
            action::Kind::BlockIp(b) => blocking(move || c.block(&b.cidr, b.ttl_secs))
                .await
                .map(Output::Block),
            action::Kind::UnblockIp(b) => blocking(move || c.unblock(&b.cidr))
                .await
                .map(Output::Block),
            action::Kind::Kill(k) => {
                let (table, sig, policy) = (
                    self.processes.clone(),
                    self.signaller.clone(),
                    self.kill_policy.load(),
                );
                let killed = blocking(move || {
                    let targets = kill::plan(table.as_ref(), &policy, k.pid, k.start_time, k.tree)?;
                    kill::execute(table.as_ref(), sig.as_ref(), &policy, targets, k.tree)
                })
                .await?;
                for p in &killed {
                    tracing::warn!(pid = p.pid, comm = %p.comm, exe = %p.exe, "process killed");
                }
                let killed = killed
                    .into_iter()
                    .map(|p| KilledProcess {
                        pid: p.pid,
                        start_time: p.start_time,
                        exe: p.exe,
                        comm: p.comm,
                    })
                    .collect();
                Ok(Output::Kill(KillResult { killed }))
            }
            action::Kind::Quarantine(q) => {
                let store = self.quarantine.clone();
                blocking(move || store.quarantine(&q.path, q.force, now_ms()))
                    .await
                    .map(Output::Quarantined)
            }
            action::Kind::ListQuarantine(_) => {
                let store = self.quarantine.clone();
                blocking(move || store.list())
                    .await
                    .map(|entries| Output::QuarantineList(QuarantineList { entries }))
            }
            action::Kind::Collect(collect) => {
                let (job, outbox) = (job.clone(), self.outbox.clone());
                blocking(move || crate::collect::command::run(&collect, &job, &outbox))
                    .await
                    .map(Output::Collection)
            }
            action::Kind::FetchFile(f) => {
                let (id, outbox, fetch) = (
                    job.command_id.clone(),
                    self.outbox.clone(),
                    self.fetch.clone(),
                );
                blocking(move || fetch.fetch(&f, &id, &outbox).map_err(|e| e.to_string()))
                    .await
                    .map(Output::Fetched)
            }
            action::Kind::Restore(r) => {
                let store = self.quarantine.clone();
                blocking(move || store.restore(&r.quarantine_id))
                    .await
                    .map(Output::Restored)
            }
        }
    }
}
