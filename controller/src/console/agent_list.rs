//! The agents list: filtered by label, state and sensor mode with a plain GET form, each host
//! linking to its page, with its state, isolation as the host reports it and its labels.

use super::agent_page::labels_text;
use super::guard::Caller;
use super::layout::{id, page, when};
use crate::core::{AGENT_STATES, AgentFilter, Isolation, Presence};
use maud::{Markup, html};

pub fn list(c: &Caller, agents: &[Presence], f: &AgentFilter, modes: &[String]) -> Markup {
    let body = html! {
        form.filters #agent-filters method="get" action="/agents" {
            label { "Label (key=value)" input type="text" name="label" value=(f.label); }
            label { "State" select name="state" {
                option value="" selected[f.state.is_empty()] { "any" }
                @for s in AGENT_STATES { option value=(s) selected[f.state == s] { (s) } }
            } }
            label { "Sensor mode" select name="sensor" {
                option value="" selected[f.sensor.is_empty()] { "any" }
                @for m in modes { option value=(m) selected[&f.sensor == m] { (m) } }
            } }
            button type="submit" { "Filter" }
        }
        @if agents.is_empty() { p { "No agent matches." } }
        @else {
            table #agents {
                thead { tr { th { "Host" } th { "State" } th { "Isolation" } th { "Process sensor" } th { "Last seen" } th { "Labels" } } }
                tbody { @for p in agents { (row(p)) } }
            }
        }
    };
    page("Agents", Some(c), body)
}

fn row(p: &Presence) -> Markup {
    let a = &p.agent;
    html! {
        tr {
            td { a href={ "/agents/" (a.id) } { (a.host.hostname) } (id(&a.id)) }
            td { (p.state()) }
            td { (isolation_cell(p)) }
            td { (a.process_sensor) @if !p.degraded().is_empty() { " (degraded)" } }
            td { (when(a.last_seen_ms)) }
            td { (labels_text(p).join(", ")) }
        }
    }
}

/// The list's isolation column, from the last heartbeat: what the host reports, and drift.
fn isolation_cell(p: &Presence) -> &'static str {
    let iso = Isolation::of(p, &[]);
    match (iso.desired, iso.observed) {
        (true, Some(true)) => "isolated",
        (true, _) => "isolation asked, not reported",
        (false, Some(true)) => "drift: isolated, release asked",
        (false, _) => "-",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::agent_page::tests::{caller, presence};
    use crate::policy::roles::Role;

    #[test]
    fn the_list_keeps_its_filters_and_links_each_host() {
        let f = AgentFilter {
            label: "env=prod".into(),
            state: "isolated".into(),
            sensor: "poll".into(),
        };
        let page = list(&caller(Role::Viewer), &[presence()], &f, &["poll".into()]).into_string();
        assert!(page.contains("method=\"get\" action=\"/agents\""));
        assert!(page.contains("name=\"label\" value=\"env=prod\""));
        assert!(page.contains("value=\"isolated\" selected"));
        assert!(page.contains("href=\"/agents/a1b2\""));
        assert!(page.contains("isolation asked, not reported") && page.contains("(degraded)"));
    }
}
