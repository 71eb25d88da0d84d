//! The order commands that change the host run in: isolate, release, block, unblock, kill,
//! quarantine and restore run one at a time, in the order they arrived (across reconnects),
//! so "isolate" then "release" sent back to back (an agent catching up after an outage gets
//! its open commands in one burst) leaves the host released, never isolated by whichever
//! task came last. Reading commands (collections, a file fetch, the inventory, the quarantine
//! listing, a ping) run beside them, so a long collection never holds up an isolation.

use cordon_proto::{Command, SignedCommand, action};
use prost::Message;
use tokio::sync::oneshot;

/// Whether a command takes its turn in the lane. Decoded before the signature is checked, to
/// pick the lane only: nothing runs before the dispatcher has verified it.
pub fn in_order(signed: &SignedCommand) -> bool {
    let Ok(command) = Command::decode(signed.command.as_slice()) else {
        return false;
    };
    !matches!(
        command.action.and_then(|a| a.kind),
        None | Some(
            action::Kind::Ping(_)
                | action::Kind::CollectInventory(_)
                | action::Kind::ListQuarantine(_)
                | action::Kind::Collect(_)
                | action::Kind::FetchFile(_)
        )
    )
}

/// Turns handed out in the order they are asked for.
#[derive(Default)]
pub struct Lane {
    /// Ends when the newest turn handed out ends.
    last: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

/// One command's place in the lane: it goes once the turn before it has ended, and the next
/// one goes when this is dropped.
pub struct Turn {
    before: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Lane {
    /// The next turn. Call it where commands arrive, in their order, not in the task that
    /// runs the command.
    pub fn join(&self) -> Turn {
        let (done, ended) = oneshot::channel();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        Turn {
            before: last.replace(ended),
            _done: done,
        }
    }
}

impl Turn {
    /// Waits until every earlier turn has ended.
    pub async fn wait(&mut self) {
        if let Some(before) = self.before.take() {
            // A dropped sender is the end of that turn, as a sent value would be.
            let _ = before.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn signed(kind: action::Kind) -> SignedCommand {
        let command = Command {
            action: Some(cordon_proto::Action { kind: Some(kind) }),
            ..Default::default()
        };
        SignedCommand {
            command: command.encode_to_vec(),
            signature: Vec::new(),
        }
    }

    #[test]
    fn state_changes_take_turns_and_reads_do_not() {
        assert!(in_order(&signed(action::Kind::Isolate(Default::default()))));
        assert!(in_order(&signed(action::Kind::Release(Default::default()))));
        assert!(in_order(&signed(action::Kind::Kill(Default::default()))));
        assert!(!in_order(&signed(
            action::Kind::Collect(Default::default())
        )));
        assert!(!in_order(&SignedCommand {
            command: vec![0xff; 3],
            signature: Vec::new(),
        }));
    }

    /// The first command is the slowest: without the lane the others would finish first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_finish_in_the_order_they_arrived() {
        let lane = Lane::default();
        let finished = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, delay_ms) in [(0, 150), (1, 50), (2, 0), (3, 20)] {
            let mut turn = lane.join();
            let finished = finished.clone();
            tasks.push(tokio::spawn(async move {
                turn.wait().await;
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                finished.lock().unwrap().push(i);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*finished.lock().unwrap(), vec![0, 1, 2, 3]);
    }

    /// A turn whose command failed or panicked still lets the next one go.
    #[tokio::test]
    async fn a_turn_that_ends_badly_frees_the_next() {
        let lane = Lane::default();
        let first = lane.join();
        let mut second = lane.join();
        let panicked = tokio::spawn(async move {
            let _turn = first;
            panic!("the action panicked");
        });
        assert!(panicked.await.is_err());
        tokio::time::timeout(Duration::from_secs(5), second.wait())
            .await
            .expect("the next turn goes");
    }
}
