//! The events search page: the form (agent, kind, time range, text), a page of events newest
//! first, each expanding to its full JSON (`<details>`, no script), links to the older and
//! newer pages, and from a process event its tree and, for those who may respond, kill.

use super::guard::Caller;
use super::layout::{page, when};
use crate::core::StoredEvent;
use crate::core::records::event_record;
use crate::policy::roles::Permission;
use cordon_proto::{ProcessEvent, process_event};
use maud::{Markup, html};

/// Relative time ranges offered beside the explicit bounds: (value, label, milliseconds).
pub const PRESETS: &[(&str, &str, i64)] = &[
    ("1h", "last hour", 3_600_000),
    ("1d", "last day", 86_400_000),
    ("7d", "last week", 7 * 86_400_000),
];
/// Event kinds offered.
const KINDS: &[&str] = &["process", "file", "network", "dns", "prevention", "notice"];

/// The search as the form (query string) gives it.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct Search {
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub range: String,
    /// `YYYY-MM-DDTHH:MM` in UTC, as a datetime-local input sends it.
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default)]
    pub text: String,
    /// Page cursors: `TIME:SEQ:AGENT` of the event to go past.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub before: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub after: String,
}

/// What the page shows: the events found (oldest first), or why the search failed.
pub struct Found<'a> {
    pub events: Result<&'a [StoredEvent], String>,
    /// Whether there may be older events than this page's.
    pub older: bool,
}

pub use crate::core::process_tree::process_of;

/// The tree page of the process an event is about.
pub fn tree_href(agent_id: &str, p: &ProcessEvent, time_ms: i64) -> String {
    format!(
        "/agents/{agent_id}/tree?pid={}&start={}&at={time_ms}",
        p.pid, p.start_ticks
    )
}

/// The cursor naming an event's place, for `before` and `after`.
pub fn cursor(e: &StoredEvent) -> String {
    format!("{}:{}:{}", e.time_ms, e.seq, e.agent_id)
}

/// The search with a page cursor in place of the other.
fn page_href(s: &Search, before: String, after: String) -> String {
    let q = Search {
        before,
        after,
        ..s.clone()
    };
    format!("/events?{}", query_string(&q))
}

/// The query string of a search (values percent-encoded).
fn query_string(s: &Search) -> String {
    let pairs = [
        ("agent", &s.agent),
        ("kind", &s.kind),
        ("range", &s.range),
        ("since", &s.since),
        ("until", &s.until),
        ("text", &s.text),
        ("before", &s.before),
        ("after", &s.after),
    ];
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", super::urls::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn events(c: &Caller, s: &Search, found: &Found<'_>) -> Markup {
    let body = html! {
        form.search method="get" action="/events" {
            label { "Agent " input type="text" name="agent" value=(s.agent); }
            label { "Kind " select name="kind" {
                option value="" selected[s.kind.is_empty()] { "any" }
                @for k in KINDS { option value=(k) selected[*k == s.kind] { (k) } }
            } }
            label { "Time " select name="range" {
                option value="" selected[s.range.is_empty()] { "any time, or the bounds below" }
                @for (v, label, _) in PRESETS { option value=(v) selected[*v == s.range] { (label) } }
            } }
            label { "Since (UTC) " input type="datetime-local" name="since" value=(s.since); }
            label { "Until (UTC) " input type="datetime-local" name="until" value=(s.until); }
            label { "Text " input type="search" name="text" value=(s.text) maxlength="1024"; }
            button type="submit" { "Search" }
        }
        @match &found.events {
            Err(why) => p.problem role="alert" { (why) },
            Ok(events) => (results(c, s, events, found.older)),
        }
    };
    page("Events", Some(c), body)
}

fn results(c: &Caller, s: &Search, events: &[StoredEvent], older: bool) -> Markup {
    let paged = !s.before.is_empty() || !s.after.is_empty();
    html! {
        @if events.is_empty() { p { "No events match." } }
        ol #events reversed {
            @for e in events.iter().rev() { (one(c, e)) }
        }
        nav.pages aria-label="Pages" {
            @if let (true, Some(newest)) = (paged, events.last()) {
                a #newer rel="prev" href=(page_href(s, String::new(), cursor(newest))) { "Newer events" } " "
            }
            @if let (true, Some(oldest)) = (older, events.first()) {
                a #older rel="next" href=(page_href(s, cursor(oldest), String::new())) { "Older events" }
            }
        }
    }
}

/// One event: when, where, what, its JSON, and for a process its tree and kill.
fn one(c: &Caller, e: &StoredEvent) -> Markup {
    let process = process_of(e);
    let json = serde_json::to_string_pretty(&event_record(e)).unwrap_or_default();
    html! {
        li.event data-key=(cursor(e)) {
            (when(e.time_ms)) " "
            code { (e.agent_id) } " " span.kind { (e.kind) } " "
            span.summary { (e.summary) }
            @if let Some(p) = &process {
                " " a href=(tree_href(&e.agent_id, p, e.time_ms)) { "Process tree" }
                @if c.may(Permission::Respond) && p.kind() == process_event::Kind::Exec {
                    " " a.kill href={ "/agents/" (e.agent_id) "/kill?pid=" (p.pid) "&event=" (e.seq) } { "Kill pid " (p.pid) }
                }
            }
            details { summary { "JSON of event " (e.seq) } pre { (json) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::caller;
    use crate::policy::roles::Role;
    use crate::store::conformance::exec;

    fn shown(role: Role) -> String {
        let stored = [exec("ag-1", 7, (42, 1, 9), "curl <http://x>")];
        let found = Found {
            events: Ok(&stored),
            older: true,
        };
        let s = Search {
            text: "curl & co".into(),
            before: "1:2:ag-1".into(),
            ..Default::default()
        };
        events(&caller("x", role), &s, &found).into_string()
    }

    #[test]
    fn a_process_event_links_to_its_tree_and_kill_only_for_responders() {
        let viewer = shown(Role::Viewer);
        assert!(viewer.contains("href=\"/agents/ag-1/tree?pid=42&amp;start=9&amp;at=7\""));
        assert!(!viewer.contains("/kill?"), "{viewer}");
        let responder = shown(Role::Responder);
        assert!(responder.contains("href=\"/agents/ag-1/kill?pid=42&amp;event=7\""));
        assert!(viewer.contains("<details><summary>JSON of event 7</summary><pre>"));
        assert!(viewer.contains("curl &lt;http://x&gt;") && !viewer.contains("<http"));
    }

    #[test]
    fn page_links_keep_the_search_and_move_the_cursor() {
        let p = shown(Role::Viewer);
        assert!(p.contains("id=\"older\" rel=\"next\" href=\"/events?text=curl%20%26%20co&amp;before=7%3A7%3Aag-1\""), "{p}");
        assert!(p.contains("id=\"newer\" rel=\"prev\" href=\"/events?text=curl%20%26%20co&amp;after=7%3A7%3Aag-1\""), "{p}");
    }
}
