//! `GET /events`: the events search. The form's fields become the core's `EventQuery` (a
//! preset range or explicit UTC bounds, a page cursor); a search the core refuses (text over
//! its limit, an unknown agent) shows the form again with why, and status 400.

use super::Shared;
use super::events_page::{self, Found, PRESETS, Search};
use super::guard::Caller;
use super::layout::{html, status};
use crate::core::{EventKey, EventQuery};
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use cordon_proto::time::now_ms;
use http::StatusCode;
use std::sync::Arc;
use time::PrimitiveDateTime;
use time::format_description;

/// Events on one page.
pub const PAGE: u32 = 50;

/// `GET /events`.
pub async fn search(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(s): Query<Search>,
) -> Response {
    let q = match query(&s, now_ms()) {
        Ok(q) => q,
        Err(why) => return shown(&caller, &s, StatusCode::BAD_REQUEST, Err(why), false),
    };
    match shared.ctl.query_events(q).await {
        Ok(events) => {
            let older = events.len() == PAGE as usize || !s.after.is_empty();
            shown(&caller, &s, StatusCode::OK, Ok(&events), older)
        }
        Err(e) => {
            if e.is_internal() {
                tracing::error!(error = %e, "console: events search");
            }
            shown(&caller, &s, status(&e), Err(e.public_message()), false)
        }
    }
}

fn shown(
    c: &Caller,
    s: &Search,
    code: StatusCode,
    events: Result<&[crate::core::StoredEvent], String>,
    older: bool,
) -> Response {
    let found = Found { events, older };
    (code, html(events_page::events(c, s, &found))).into_response()
}

/// The core's query for a search made at `now` (Unix ms).
pub fn query(s: &Search, now: i64) -> Result<EventQuery, String> {
    let since = match s.range.as_str() {
        "" => bound(&s.since)?,
        r => match PRESETS.iter().find(|(v, _, _)| *v == r) {
            Some((_, _, span)) => Some(now - span),
            None => return Err(format!("unknown time range {r:?}")),
        },
    };
    Ok(EventQuery {
        agent: s.agent.trim().into(),
        kind: s.kind.clone(),
        since_ms: since,
        until_ms: bound(&s.until)?,
        contains: s.text.clone(),
        limit: PAGE,
        before: cursor(&s.before)?,
        after: cursor(&s.after)?,
    })
}

/// How a datetime-local input writes a time: to the minute, or to the second.
const FORMATS: [&str; 2] = [
    "[year]-[month]-[day]T[hour]:[minute]",
    "[year]-[month]-[day]T[hour]:[minute]:[second]",
];

/// A datetime-local value (UTC) as Unix ms; none for an empty field.
fn bound(v: &str) -> Result<Option<i64>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    let t = FORMATS
        .iter()
        .filter_map(|f| format_description::parse_borrowed::<2>(f).ok())
        .find_map(|f| PrimitiveDateTime::parse(v, &f).ok())
        .ok_or_else(|| format!("{v:?} is not a date and time (YYYY-MM-DDTHH:MM)"))?;
    Ok(Some(
        (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64,
    ))
}

/// A page cursor, `TIME:SEQ:AGENT`; none for an empty one.
fn cursor(v: &str) -> Result<Option<EventKey>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    let mut parts = v.splitn(3, ':');
    let key = (|| {
        Some(EventKey {
            time_ms: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
            agent_id: parts.next()?.to_string(),
        })
    })();
    key.map(Some)
        .ok_or_else(|| "that page link is damaged".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_becomes_the_core_query() {
        let s = Search {
            range: "1h".into(),
            until: "2026-11-30T10:15".into(),
            before: "1700:7:ab:cd".into(),
            text: "curl".into(),
            ..Default::default()
        };
        let q = query(&s, 10_000_000).expect("query");
        assert_eq!(q.since_ms, Some(10_000_000 - 3_600_000));
        assert_eq!(q.until_ms, Some(1_796_033_700_000));
        let b = q.before.expect("cursor");
        assert_eq!((b.time_ms, b.seq, b.agent_id.as_str()), (1700, 7, "ab:cd"));
        assert_eq!((q.contains.as_str(), q.limit), ("curl", PAGE));
        let bad = Search {
            since: "yesterday".into(),
            ..Default::default()
        };
        assert!(query(&bad, 0).unwrap_err().contains("not a date"));
        let odd = Search {
            after: "x:1:a".into(),
            ..Default::default()
        };
        assert!(query(&odd, 0).is_err());
    }
}
