//! The plumbing every live update shares: a server-sent event stream that asks its [`Feed`]
//! for what to send when it opens and every interval after, re-checks the session and the
//! person each time, and ends (with an `end` event) when either has. The overview
//! (`live.rs`) and the live lists (`live_incidents.rs`) are feeds.

use super::Shared;
use super::guard::Caller;
use crate::core::CoreError;
use crate::policy::people::Kind;
use crate::policy::roles::Permission;
use axum::response::sse::{Event, Sse};
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// A live stream as the response.
pub type Stream = Sse<ReceiverStream<Result<Event, Infallible>>>;

/// What a stream sends: asked once when it opens, then every interval.
pub trait Feed: Send + 'static {
    /// The events to send now (none when nothing changed).
    fn next(
        &mut self,
        shared: &Shared,
        caller: &Caller,
    ) -> impl Future<Output = Result<Vec<Event>, CoreError>> + Send;
}

/// The stream of `feed`, asked every `every`, for as long as the caller may read.
pub fn stream(shared: Arc<Shared>, caller: Caller, every: Duration, mut feed: impl Feed) -> Stream {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if !still_allowed(&shared, &caller) {
                let _ = tx
                    .send(Ok(Event::default().event("end").data("signed out")))
                    .await;
                return;
            }
            let events = match feed.next(&shared, &caller).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(error = %e, "console live update");
                    vec![Event::default().event("error").data(e.public_message())]
                }
            };
            for e in events {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
        }
    });
    Sse::new(ReceiverStream::new(rx))
}

/// An event named `name` whose data is `value` as JSON.
pub fn json_event(name: &str, value: &impl Serialize) -> Event {
    match serde_json::to_string(value) {
        Ok(json) => Event::default().event(name).data(json),
        Err(e) => Event::default().event("error").data(e.to_string()),
    }
}

/// Whether the caller's session is still live and the person may still read. (Live updates
/// do not count as use: an open page alone does not keep a session from going idle.)
fn still_allowed(shared: &Shared, caller: &Caller) -> bool {
    let admin = &caller.admin;
    shared.sessions.is_live(&caller.session)
        && shared
            .ctl
            .authorize(Kind::User, &admin.name, &admin.serial, Permission::Read)
            .is_ok()
}
