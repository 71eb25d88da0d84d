//! Isolate and release orders for the soak, sent from a thread inside the controller's network
//! namespace through the admin API as `cordonctl` sends them: each a command with a one-minute
//! life. Counts the orders the controller could not take (it was down); the commands it took
//! are read back from it at the end.

use crate::deploy::Deployment;
use cordon_proto::{Isolate, Release, SubmitCommandRequest, action};
use cordonctl::client::{AdminConfig, connect};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A command's life: long enough to outlast an agent's restart, short enough to end in a run.
const TTL_SECS: u64 = 60;

/// What the orders came to.
#[derive(Debug, Default)]
pub struct Tally {
    /// Orders refused or unanswered (the controller was down).
    pub refused: usize,
}

pub struct Commander {
    tx: mpsc::Sender<(String, bool)>,
    thread: JoinHandle<Tally>,
}

impl Commander {
    pub fn start(d: &Deployment) -> anyhow::Result<Self> {
        let (admin, ns) = d.admin_in_ctl_ns()?;
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
                if rt.block_on(submit(&admin, &agent_id, isolate)).is_err() {
                    tally.refused += 1;
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

/// Submits one order on a fresh connection (the controller may have restarted since the last).
async fn submit(admin: &AdminConfig, agent_id: &str, isolate: bool) -> anyhow::Result<()> {
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
    client.submit_command(req).await?;
    Ok(())
}
