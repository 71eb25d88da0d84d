//! The core's side of the playbook engine's interface (`playbook::deps`): commands and the
//! audit log of the running controller. The engine holds only a weak reference, so a
//! controller that is dropped (in tests, several come and go in one process) is freed, and
//! its runs fail with "the controller has stopped" instead of keeping it alive.

use super::Controller;
use crate::playbook::deps::{Audit, BoxFuture, CommandError, CommandState, Commands};
use crate::policy::audit::AuditEntry;
use cordon_proto::action;
use std::sync::{Arc, Weak};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("the controller has stopped")]
struct Stopped;

pub(super) struct Link(pub(super) Weak<Controller>);

impl Link {
    fn controller(&self) -> Result<Arc<Controller>, CommandError> {
        self.0
            .upgrade()
            .ok_or_else(|| Box::new(Stopped) as CommandError)
    }
}

impl Commands for Link {
    fn submit(
        &self,
        agent_id: String,
        action: action::Kind,
        ttl: Duration,
        by: String,
    ) -> BoxFuture<'_, Result<String, CommandError>> {
        Box::pin(async move {
            let ctl = self.controller()?;
            let row = ctl.submit_command(agent_id, action, ttl, by).await?;
            Ok(row.id)
        })
    }

    fn wait(
        &self,
        id: String,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Option<CommandState>, CommandError>> {
        Box::pin(async move {
            let ctl = self.controller()?;
            let row = ctl.wait_command(&id, wait).await?;
            Ok(row.map(|r| CommandState {
                result: super::collections::result_summary(&r),
                status: r.status,
                error: r.error,
            }))
        })
    }
}

impl Audit for Link {
    fn record(&self, entry: AuditEntry) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match self.0.upgrade() {
                Some(ctl) => {
                    let _ = ctl.record(entry).await;
                }
                None => {
                    tracing::error!(actor = %entry.actor, action = %entry.action, target = %entry.target, detail = %entry.detail, outcome = %entry.outcome, "the controller stopped before this audit entry was recorded")
                }
            }
        })
    }
}
