//! WAL checkpoints off the write path. By default SQLite checkpoints in the committing
//! connection, right after a commit: the writer stops to copy the log into the database file
//! and sync it. Here a thread with its own connection does that instead (a passive
//! checkpoint, which never blocks the writer), at most every `GAP`, after commits wake it;
//! the writer keeps a high automatic threshold only as a backstop should this thread fall
//! behind. Checkpoints do not change durability: a commit is durable once the log is synced.

use super::StoreError;
use rusqlite::Connection;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

/// Least time between two checkpoints.
const GAP: Duration = Duration::from_millis(100);
/// Log pages after which the writer checkpoints itself (SQLite's default is 1000): 80 MiB of
/// 16 KiB pages.
pub(super) const BACKSTOP_PAGES: u32 = 5_000;

/// Wakes the checkpoint thread; the thread ends when this is dropped.
pub(super) struct Checkpointer(SyncSender<()>);

impl Checkpointer {
    /// Starts the thread with `conn`, a second connection to the store's database.
    pub(super) fn start(conn: Connection) -> Result<Self, StoreError> {
        let (wake, woken) = sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("cordon-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    let done = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
                    if let Err(e) = done {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                    std::thread::sleep(GAP);
                }
            })
            .map_err(|e| StoreError::Task(format!("starting the checkpoint thread: {e}")))?;
        Ok(Self(wake))
    }

    /// Asks for a checkpoint soon (after a commit).
    pub(super) fn poke(&self) {
        if let Err(TrySendError::Disconnected(())) = self.0.try_send(()) {
            tracing::warn!("the checkpoint thread has stopped");
        }
    }
}
