//! The audit page (`GET /audit`): entries newest first, filtered by actor, action (a prefix
//! such as `rule.`) and time range, a page at a time (`before` = the oldest seq shown); and
//! the verification of the whole hash chain (`POST /audit/verify`), whose result is shown in
//! `#audit-verify`: intact with the last entry and its hash, or the first broken entry.

use super::Shared;
use super::guard::{Caller, refused};
use super::layout::{csrf, failed, html, page, when};
use super::urls::encode;
use crate::core::AuditFilter;
use crate::policy::audit::{AuditRecord, Verification};
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Entries per page.
const PAGE: u32 = 100;
/// Longest filter text accepted.
const MAX_FILTER: usize = 256;

/// The filters, as the form sends them (and the next page's link repeats them).
#[derive(Deserialize, Debug, Default, Clone)]
pub struct Filters {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    /// RFC 3339, Unix milliseconds, or an age such as `1h` (ago).
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    before: Option<u64>,
}

/// `GET /audit`.
pub async fn audit(
    State(s): State<Arc<Shared>>,
    Extension(c): Extension<Caller>,
    Query(f): Query<Filters>,
) -> Response {
    show(&s, &c, f, None).await
}

/// `POST /audit/verify`: walks the chain, then shows the first page with the result.
pub async fn verify(State(s): State<Arc<Shared>>, Extension(c): Extension<Caller>) -> Response {
    match s.ctl.verify_audit(&c.admin).await {
        Ok(v) => show(&s, &c, Filters::default(), Some(v)).await,
        Err(e) => failed(&e),
    }
}

async fn show(s: &Shared, c: &Caller, f: Filters, v: Option<Verification>) -> Response {
    let filter = match filter(&f, cordon_proto::time::now_ms()) {
        Ok(filter) => filter,
        Err(why) => return refused(StatusCode::BAD_REQUEST, &why),
    };
    match s.ctl.audit_page(filter).await {
        Ok(entries) => html(render(c, &f, &entries, v.as_ref())),
        Err(e) => failed(&e),
    }
}

/// The store's filter for the form's, or what is wrong with it.
fn filter(f: &Filters, now_ms: i64) -> Result<AuditFilter, String> {
    if [&f.actor, &f.action, &f.since, &f.until]
        .iter()
        .any(|t| t.len() > MAX_FILTER)
    {
        return Err(format!("a filter is at most {MAX_FILTER} characters"));
    }
    let since_ms = match f.since.trim() {
        "" => 0,
        t => time_at(t, now_ms)?,
    };
    let until_ms = match f.until.trim() {
        "" => None,
        t => Some(time_at(t, now_ms)?),
    };
    Ok(AuditFilter {
        since_ms,
        until_ms,
        actor: Some(f.actor.trim().to_string()),
        action: Some(f.action.trim().to_string()),
        before_seq: f.before,
        limit: PAGE,
    })
}

/// RFC 3339, Unix milliseconds, or an age (`90s`, `15m`, `1h`, `7d`) before `now_ms`.
fn time_at(t: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(at) = OffsetDateTime::parse(t, &Rfc3339) {
        return Ok((at.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let bad = || format!("{t:?} is not RFC 3339, Unix milliseconds or an age such as 15m");
    let (n, unit) = t.split_at(t.len() - 1);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs * 1000)
        .map(|ms| now_ms - ms)
        .ok_or_else(bad)
}

fn render(c: &Caller, f: &Filters, entries: &[AuditRecord], v: Option<&Verification>) -> Markup {
    let body = html! {
        section #audit-verify aria-live="polite" {
            @if let Some(v) = v { (verification(v)) }
            form.inline method="post" action="/audit/verify" {
                (csrf(c))
                button type="submit" { "Verify the hash chain" }
            }
        }
        form.filters method="get" action="/audit" {
            label { "Actor" input type="text" name="actor" value=(f.actor) maxlength="256"; }
            label { "Action (or its start, such as rule.)" input type="text" name="action" value=(f.action) maxlength="256"; }
            label { "From" input type="text" name="since" value=(f.since) placeholder="2026-01-31T09:00:00Z or 1h"; }
            label { "Until" input type="text" name="until" value=(f.until) placeholder="RFC 3339 or an age"; }
            button type="submit" { "Filter" }
        }
        @if entries.is_empty() { p { "No entries match." } }
        table {
            thead { tr { th { "Seq" } th { "When" } th { "Actor" } th { "Action" } th { "Target" } th { "Outcome" } th { "Detail" } } }
            tbody #audit { @for e in entries { (row(e)) } }
        }
        @if entries.len() == PAGE as usize {
            @if let Some(last) = entries.last() {
                p { a rel="next" href=(next_page(f, last.seq)) { "Older entries" } }
            }
        }
    };
    page("Audit", Some(c), body)
}

fn verification(v: &Verification) -> Markup {
    match &v.first_bad {
        None => html! {
            p.ok data-ok="true" {
                strong { "Intact: " } (v.entries_checked) " entries checked; the hash chain is unbroken up to entry "
                (v.last_seq) " (hash " code { (v.last_hash) } "). Compare them with a copy kept elsewhere to see that no newest entries were removed."
            }
        },
        Some((seq, problem)) => html! {
            p.problem data-ok="false" data-seq=(seq) {
                strong { "Broken at entry " (seq) ": " } (problem) " (" (v.entries_checked) " entries checked)."
            }
        },
    }
}

fn row(e: &AuditRecord) -> Markup {
    html! {
        tr {
            td { (e.seq) }
            td { (when(e.time_ms)) }
            td { (e.actor) }
            td { (e.action) }
            td.id { (e.target) }
            td { (e.outcome) }
            td.id { (e.detail) }
        }
    }
}

/// The link to the page of entries older than `seq`, with the same filters.
fn next_page(f: &Filters, seq: u64) -> String {
    let q = [
        ("actor", f.actor.as_str()),
        ("action", &f.action),
        ("since", &f.since),
        ("until", &f.until),
    ];
    let mut link = String::from("/audit?");
    for (k, v) in q.iter().filter(|(_, v)| !v.is_empty()) {
        link.push_str(&format!("{k}={}&", encode(v)));
    }
    link.push_str(&format!("before={seq}"));
    link
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::caller;
    use crate::policy::roles::Role;

    #[test]
    fn filters_read_times_and_ages() {
        let f = Filters {
            actor: " ada ".into(),
            since: "1h".into(),
            until: "2026-01-01T00:00:00Z".into(),
            ..Filters::default()
        };
        let got = filter(&f, 10_000_000).unwrap();
        assert_eq!(got.since_ms, 10_000_000 - 3_600_000);
        assert_eq!(got.until_ms, Some(1_767_225_600_000));
        assert_eq!(got.actor.as_deref(), Some("ada"));
        let bad = Filters {
            since: "yesterday".into(),
            ..Filters::default()
        };
        assert!(filter(&bad, 0).unwrap_err().contains("\"yesterday\""));
        assert!(time_at("5x", 0).is_err() && time_at("h", 0).is_err());
    }

    #[test]
    fn the_verification_and_the_next_page_are_shown() {
        let v = Verification {
            entries_checked: 9,
            first_bad: Some((4, "edited".into())),
            last_seq: 4,
            last_hash: "ab".into(),
        };
        let f = Filters {
            actor: "a b&c".into(),
            ..Filters::default()
        };
        let page = render(&caller("vic", Role::Viewer), &f, &[], Some(&v)).into_string();
        assert!(page.contains("data-ok=\"false\"") && page.contains("Broken at entry 4"));
        assert_eq!(next_page(&f, 7), "/audit?actor=a%20b%26c&before=7");
    }
}
