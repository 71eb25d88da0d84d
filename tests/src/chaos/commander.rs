//! Isolate and release orders for the soak, sent from a thread inside the controller's network
//! namespace through the admin API as `cordonctl` sends them: each a command with a one-minute
//! life. Keeps the ids of the commands the controller took, and counts the orders it could not
//! take (it was down).

use crate::deploy::Deployment;
use anyhow::Context;
use cordon_proto::{Isolate, Release, SubmitCommandRequest, action};
use cordonctl::client::{AdminConfig, connect};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A command's life: long enough to outlast an agent's restart, short enough to end in a run.
const TTL_SECS: u64 = 60;

/// What the orders came to.
#[derive(Debug, Default)]
pub struct Tally {
    /// (agent id, command id) of every command the controller took.
    pub taken: Vec<(String, String)>,
    /// Orders refused or unanswered (the controller was down).
    pub refused: usize,
}

pub struct Commander {
    tx: mpsc::Sender<(String, bool)>,
    thread: JoinHandle<Tally>,
}

impl Commander {
    pub fn start(d: &Deployment) -> anyhow::Result<Self> {
        let admin = AdminConfig::load(&d.data_dir.join("admin.toml"))?;
        let ns = d
            .ctl_ns
            .as_ref()
            .context("a namespace deployment")?
            .name
            .clone();
        let (tx, rx) = mpsc::channel::<(String, bool)>();
        let thread = std::thread::spawn(move || {
            let mut tally = Tally::default();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let (Ok(()), Ok(rt)) = (cordon_agent::sys::netns::enter(&ns), rt) else {
                tally.refused = rx.iter().count();
                return tally;
            };
            for (agent_id, isolate) in rx {
                match rt.block_on(submit(&admin, &agent_id, isolate)) {
                    Ok(id) => tally.taken.push((agent_id, id)),
                    Err(_) => tally.refused += 1,
                }
            }
            tally
        });
        Ok(Self { tx, thread })
    }

    /// Orders the agent isolated (true) or released.
    pub fn order(&self, agent_id: &str, isolate: bool) {
        let _ = self.tx.send((agent_id.to_string(), isolate));
    }

    /// Waits for the orders sent to be submitted; what they came to.
    pub fn finish(self) -> Tally {
        drop(self.tx);
        self.thread.join().unwrap_or_default()
    }
}

async fn submit(admin: &AdminConfig, agent_id: &str, isolate: bool) -> anyhow::Result<String> {
    let kind = if isolate {
        action::Kind::Isolate(Isolate {
            allow: Vec::new(),
            reason: "chaos soak".into(),
        })
    } else {
        action::Kind::Release(Release {})
    };
    let req = SubmitCommandRequest {
        agent_id: agent_id.to_string(),
        ttl_secs: TTL_SECS,
        wait_secs: 1,
        action: Some(kind.into()),
    };
    let mut client = connect(admin).await?;
    Ok(client.submit_command(req).await?.into_inner().command_id)
}
