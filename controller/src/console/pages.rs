//! The console's HTML, written with maud: every value is escaped unless marked otherwise
//! (nothing here is), and no page has inline script or style (the CSP forbids both). A page
//! offers only the actions the person's role holds; the server refuses the others anyway.

use super::guard::Caller;
use super::layout::{csrf, id, page, when};
use super::live::{AlertLine, Overview};
use crate::core::ApprovalRow;
use crate::policy::roles::Permission;
use maud::{Markup, html};

/// The sign-in page, with what went wrong last time, if anything.
pub fn login(csrf: &str, problem: Option<&str>) -> Markup {
    let body = html! {
        @if let Some(msg) = problem { p.problem role="alert" { (msg) } }
        form.login method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Name" input type="text" name="name" autocomplete="username" required autofocus; }
            label { "Password" input type="password" name="password" autocomplete="current-password" required; }
            label { "Code (if you have an authenticator)" input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}"; }
            button type="submit" { "Sign in" }
        }
        p { "Invited? " a href="/invite" { "Accept your invite" } " to choose your password first." }
    };
    page("Sign in", None, body)
}

/// An error page.
pub fn error(status: http::StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    page(
        title,
        None,
        html! { p.problem { (message) } p { a href="/" { "Back to the overview" } } },
    )
}

pub fn overview(c: &Caller, o: &Overview) -> Markup {
    let body = html! {
        section #overview {
            dl.figures {
                div { dt { "Agents online" } dd #agents_online { (o.agents_online) } }
                div { dt { "Agents offline" } dd #agents_offline { (o.agents_offline) } }
                div { dt { "Isolated" } dd #agents_isolated { (o.agents_isolated) } }
                div { dt { "Degraded sensors" } dd #agents_degraded { (o.agents_degraded) } }
                div { dt { "Events per second" } dd #events_per_sec { (format!("{:.1}", o.events_per_sec)) } }
                div { dt { "Pending approvals" } dd #pending_approvals { (o.pending_approvals) } }
            }
            h2 { "Open incidents" }
            dl.figures #open_incidents {
                @for (severity, n) in &o.open_incidents {
                    div { dt { (severity) } dd data-severity=(severity) { (n) } }
                }
            }
            h2 { "Latest alerts" }
            table {
                thead { tr { th { "When" } th { "Level" } th { "Rule" } th { "Agent" } th { "Count" } } }
                tbody #latest_alerts { @for a in &o.latest_alerts { (alert_row(a)) } }
            }
        }
    };
    page("Overview", Some(c), body)
}

fn alert_row(a: &AlertLine) -> Markup {
    html! {
        tr {
            td { (when(a.at_ms)) } td { (a.level) }
            td { a href={ "/incidents/" (a.incident_id) } { (a.title) } }
            td.id { a href={ "/agents/" (a.agent_id) } { (a.agent_id) } } td { (a.count) }
        }
    }
}

pub fn approvals(c: &Caller, pending: &[ApprovalRow]) -> Markup {
    let body = html! {
        table {
            thead { tr { th { "Approval" } th { "Host" } th { "What" } th { "Why" } th { "Asked by" } th { "Asked" } th { "Expires" } th { "Decision" } } }
            tbody #approvals data-live="/live/approvals" {
                @if pending.is_empty() { tr.empty { td colspan="8" { "Nothing waits for approval." } } }
                @for a in pending { (approval_row(c, a)) }
            }
        }
    };
    page("Approvals", Some(c), body)
}

/// One pending approval's row (also sent live, keyed by its id).
pub fn approval_row(c: &Caller, a: &ApprovalRow) -> Markup {
    html! {
        tr data-key=(a.id) {
            td { (id(&a.id)) }
            td.id { a href={ "/agents/" (a.agent_id) } { (a.agent_id) } }
            td { (a.what) }
            td { (a.reason) }
            td { (a.requested_by) }
            td { (when(a.requested_at_ms)) }
            td { (when(a.expires_at_ms)) }
            td { (decision(c, a, None)) }
        }
    }
}

/// The approve and deny form, for those who may decide this approval; after deciding, the
/// browser goes back to `back` (a local path), or to the approvals page.
pub fn decision(c: &Caller, a: &ApprovalRow, back: Option<&str>) -> Markup {
    if !c.may(Permission::Approve) {
        return html! { "needs the approve permission" };
    }
    if a.requested_by == c.admin.name {
        return html! { "your request: another person decides it" };
    }
    html! {
        form.decide method="post" action={ "/approvals/" (a.id) "/decide" } {
            (csrf(c))
            @if let Some(b) = back { input type="hidden" name="back" value=(b); }
            label { "Reason" input type="text" name="reason" maxlength="1024"; }
            button type="submit" name="decision" value="approve" { "Approve" }
            button type="submit" name="decision" value="deny" { "Deny" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::caller;
    use crate::policy::roles::Role;

    fn request(by: &str, what: &str) -> ApprovalRow {
        let timeout = std::time::Duration::from_secs(60);
        let mut a = ApprovalRow::pending(
            by.into(),
            "a1".into(),
            what.into(),
            "why".into(),
            0,
            timeout,
        );
        a.id = "apr-1".into();
        a
    }

    #[test]
    fn only_another_approver_is_offered_the_decision() {
        let pending = [request("alice", "isolate a1")];
        let page = |c: &Caller| approvals(c, &pending).into_string();
        let bob = page(&caller("bob", Role::Approver));
        assert!(bob.contains("value=\"approve\"") && bob.contains("value=\"c0ffee\""));
        assert!(bob.contains("action=\"/approvals/apr-1/decide\""));
        let viewer = page(&caller("vera", Role::Viewer));
        assert!(!viewer.contains("value=\"approve\"") && viewer.contains("apr-1"));
        let asker = page(&caller("alice", Role::Admin));
        assert!(!asker.contains("value=\"approve\"") && asker.contains("your request"));
    }

    #[test]
    fn the_overview_counts_degraded_agents_and_links_alerts_to_their_incident() {
        let o = Overview {
            agents_online: 1,
            agents_offline: 0,
            agents_isolated: 0,
            agents_degraded: 3,
            events_per_sec: 12.345,
            open_incidents: Vec::new(),
            pending_approvals: 0,
            latest_alerts: vec![AlertLine {
                at_ms: 0,
                level: "high".into(),
                title: "Base64 piped to a shell".into(),
                agent_id: "a1".into(),
                count: 1,
                incident_id: "inc-7".into(),
            }],
        };
        let page = overview(&caller("vera", Role::Viewer), &o).into_string();
        assert!(page.contains("id=\"agents_degraded\">3<"), "{page}");
        assert!(page.contains("id=\"events_per_sec\">12.3<"), "{page}");
        assert!(page.contains("href=\"/incidents/inc-7\">Base64 piped to a shell</a>"));
    }

    #[test]
    fn what_hosts_and_people_wrote_is_escaped_and_no_page_has_inline_script() {
        let pending = [request(
            "alice",
            "<script>alert(1)</script>\" onmouseover=\"x",
        )];
        let page = approvals(&caller("bob", Role::Approver), &pending).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;") && !page.contains("\" onmouseover"));
        let login = login("t0k", Some("<b>no</b>")).into_string();
        assert!(login.contains("&lt;b&gt;no") && login.contains("value=\"t0k\""));
        for p in [page, login] {
            let files = p.matches("<script src=\"/assets/").count();
            assert_eq!(
                p.matches("<script").count(),
                files,
                "only script files: {p}"
            );
            assert!(p.contains("<script src=\"/assets/console.js\"") && !p.contains("style="));
        }
    }
}
