//! The trees an analyst asks for by what they are looking at: that of a stored process event
//! (`cordonctl events tree AGENT:SEQ`), and that of an incident's triggering process (its
//! report and its console page).

use super::{ProcessTree, build};
use crate::core::{AlertRow, Controller, CoreError, level_index};
use crate::store::{Events, StoredEvent};
use cordon_proto::{Event, ProcessEvent, event};
use prost::Message;

/// A process event's body, if the event is one.
pub fn process_of(e: &StoredEvent) -> Option<ProcessEvent> {
    match Event::decode(e.body.as_slice()).ok()?.body? {
        event::Body::Process(p) => Some(p),
        _ => None,
    }
}

/// The event behind an incident's triggering process: that of its most severe alert (the
/// first of those) raised by a stored process event.
pub fn triggering_event(alerts: &[AlertRow]) -> Option<(&StoredEvent, ProcessEvent)> {
    let mut by_level: Vec<_> = alerts.iter().collect();
    // A stable sort: among alerts of one level, the first stays first.
    by_level.sort_by_key(|a| std::cmp::Reverse(level_index(&a.rule.level).unwrap_or(0)));
    by_level.into_iter().find_map(|a| {
        let e = a.event.as_ref()?;
        Some((e, process_of(e)?))
    })
}

/// The tree of the process `p` (from event `e`) at the event's time.
async fn tree_at<S: Events>(
    store: &S,
    e: &StoredEvent,
    p: &ProcessEvent,
) -> Result<Option<ProcessTree>, CoreError> {
    let start = (p.start_ticks > 0).then_some(p.start_ticks);
    Ok(build(store, &e.agent_id, p.pid, start, Some(e.time_ms)).await?)
}

impl Controller {
    /// The process tree of a stored process event of an agent (id or prefix): the process
    /// that event is about (its pid and start), as the agent's stored events tell it.
    pub async fn event_tree(&self, agent: &str, seq: u64) -> Result<ProcessTree, CoreError> {
        let agent = self.resolve(agent).await?.id;
        let Some(e) = self.store.event(agent.clone(), seq).await? else {
            return Err(CoreError::NoEvent { agent, seq });
        };
        let Some(p) = process_of(&e) else {
            let kind = e.kind;
            return Err(CoreError::NotAProcessEvent { agent, seq, kind });
        };
        let pid = p.pid;
        tree_at(&self.store, &e, &p)
            .await?
            .ok_or(CoreError::NoProcess { agent, pid })
    }

    /// The tree of an incident's triggering process (see [`triggering_event`]) with the seq
    /// of its event; None when no alert of it was raised by a stored process event.
    pub async fn incident_tree(
        &self,
        alerts: &[AlertRow],
    ) -> Result<Option<(u64, ProcessTree)>, CoreError> {
        let Some((e, p)) = triggering_event(alerts) else {
            return Ok(None);
        };
        Ok(tree_at(&self.store, e, &p).await?.map(|t| (e.seq, t)))
    }
}
