//! Live lists, over the server-sent events of `sse.rs`: the incidents list
//! (`GET /live/incidents`, with the page's filters), an incident's timeline
//! (`GET /live/incidents/{id}`) and the approvals queue (`GET /live/approvals`). Each sends,
//! as a `row` event, every row that is new or changed since it last looked (all of them when
//! it opens), rendered on the server by the same function as the page (so maud escapes every
//! value), and a `gone` event for a row that left the list. `assets/incidents.js` puts them
//! into the element whose `data-live` names the stream.

use super::guard::Caller;
use super::incident_pages::{ListFilter, incident_row, timeline_entry};
use super::sse::{self, Feed, Stream};
use super::{Shared, incidents, pages};
use crate::core::CoreError;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::sse::Event;
use maud::Markup;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often the lists are looked at again.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// One row of a live list: its key (the `data-key` of its element), what tells a changed row
/// from the one sent before, and its HTML.
pub struct Row {
    pub key: String,
    pub version: String,
    pub html: Markup,
}

#[derive(Serialize)]
struct Sent<'a> {
    key: &'a str,
    html: String,
}

/// The rows a stream has sent, by key, with their versions.
#[derive(Default)]
pub struct Rows(HashMap<String, String>);

impl Rows {
    /// The events that bring a page showing what was sent up to `now`.
    pub fn changes(&mut self, now: Vec<Row>) -> Vec<Event> {
        let mut events = Vec::new();
        let keys: std::collections::HashSet<&str> = now.iter().map(|r| r.key.as_str()).collect();
        let gone: Vec<String> = self
            .0
            .keys()
            .filter(|k| !keys.contains(k.as_str()))
            .cloned()
            .collect();
        for k in gone {
            self.0.remove(&k);
            events.push(Event::default().event("gone").data(k));
        }
        for r in now {
            if self.0.get(&r.key) == Some(&r.version) {
                continue;
            }
            let sent = Sent {
                key: &r.key,
                html: r.html.into_string(),
            };
            events.push(sse::json_event("row", &sent));
            self.0.insert(r.key, r.version);
        }
        events
    }
}

struct IncidentList {
    filter: ListFilter,
    rows: Rows,
}

impl Feed for IncidentList {
    async fn next(&mut self, shared: &Shared, _: &Caller) -> Result<Vec<Event>, CoreError> {
        let found = incidents::matching(&shared.ctl, &self.filter).await?;
        // Oldest first, so each new row goes on top in order.
        let rows = found.iter().rev().map(|i| Row {
            key: i.id.clone(),
            version: format!("{}/{}/{}", i.updated_at_ms, i.status, i.severity),
            html: incident_row(i),
        });
        Ok(self.rows.changes(rows.collect()))
    }
}

/// `GET /live/incidents?status=&severity=`.
pub async fn incidents_events(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(filter): Query<ListFilter>,
) -> Stream {
    let feed = IncidentList {
        filter,
        rows: Rows::default(),
    };
    sse::stream(shared, caller, INTERVAL, feed)
}

struct Timeline {
    incident: String,
    rows: Rows,
}

impl Feed for Timeline {
    async fn next(&mut self, shared: &Shared, _: &Caller) -> Result<Vec<Event>, CoreError> {
        let d = shared.ctl.incident(&self.incident).await?;
        let rows = d.timeline.iter().enumerate().map(|(n, t)| Row {
            key: n.to_string(),
            version: String::new(),
            html: timeline_entry(n, t),
        });
        Ok(self.rows.changes(rows.collect()))
    }
}

/// `GET /live/incidents/{id}`: the incident's timeline.
pub async fn timeline_events(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(incident): Path<String>,
) -> Stream {
    let feed = Timeline {
        incident,
        rows: Rows::default(),
    };
    sse::stream(shared, caller, INTERVAL, feed)
}

struct Approvals(Rows);

impl Feed for Approvals {
    async fn next(&mut self, shared: &Shared, caller: &Caller) -> Result<Vec<Event>, CoreError> {
        let pending = shared.ctl.approvals(false).await?;
        let rows = pending.iter().map(|a| Row {
            key: a.id.clone(),
            version: a.status.to_string(),
            html: pages::approval_row(caller, a),
        });
        Ok(self.0.changes(rows.collect()))
    }
}

/// `GET /live/approvals`: the pending approvals.
pub async fn approvals_events(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Stream {
    sse::stream(shared, caller, INTERVAL, Approvals(Rows::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use maud::html;

    fn row(key: &str, version: &str) -> Row {
        Row {
            key: key.into(),
            version: version.into(),
            html: html! { li { (key) } },
        }
    }

    #[test]
    fn only_new_changed_and_gone_rows_are_sent() {
        let mut rows = Rows::default();
        assert_eq!(rows.changes(vec![row("a", "1"), row("b", "1")]).len(), 2);
        assert!(rows.changes(vec![row("a", "1"), row("b", "1")]).is_empty());
        let later = rows.changes(vec![row("a", "2"), row("c", "1")]);
        assert_eq!(later.len(), 3, "b gone, a changed, c new");
    }
}
