//! The agent page: host facts, labels (a form for those who manage agents), sensors and the
//! agent's own cost, isolation desired against observed, the action links for responders,
//! commands with their results, the latest inventory and recent events.

use super::action_page;
use super::guard::Caller;
use super::layout::{MAX_REASON, csrf, id, page, when};
use crate::core::{ApprovalRow, Isolation, Presence, result_of};
use crate::policy::roles::Permission;
use crate::store::{CommandRow, StoredEvent};
use cordon_proto::{Inventory, command_result::Output};
use maud::{Markup, html};

/// What the agent page shows.
pub struct AgentView {
    pub presence: Presence,
    /// Newest first.
    pub commands: Vec<CommandRow>,
    pub pending: Vec<ApprovalRow>,
    /// Newest first.
    pub events: Vec<StoredEvent>,
    /// What became of the action just taken, if the page was reached from one.
    pub notice: Option<Notice>,
}

/// What the agent page says about the action just taken.
pub enum Notice {
    Command(CommandRow),
    Pending(ApprovalRow),
}

pub(super) fn labels_text(p: &Presence) -> Vec<String> {
    let mut l: Vec<String> = p
        .agent
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    l.sort();
    l
}

pub fn agent(c: &Caller, v: &AgentView) -> Markup {
    let p = &v.presence;
    let title = format!("Agent {}", p.agent.host.hostname);
    let body = html! {
        @if let Some(n) = &v.notice { (notice(n)) }
        (facts(p))
        (labels(c, p))
        (sensors(p))
        (isolation(c, v))
        (commands(&v.commands))
        (inventory(c, p, &v.commands))
        (events(&v.events))
    };
    page(&title, Some(c), body)
}

fn notice(n: &Notice) -> Markup {
    html! {
        @match n {
            Notice::Command(r) => p.notice #notice role="status" {
                "Command " (r.kind) " " (id(&r.id)) ": " (outcome(r))
            },
            Notice::Pending(a) => p.notice #notice role="status" {
                "Pending approval: " (a.what) " waits for another person's decision ("
                a href="/approvals" { "approvals" } ", " (id(&a.id)) "). Nothing has been sent yet."
            },
        }
    }
}

fn facts(p: &Presence) -> Markup {
    let a = &p.agent;
    let h = &a.host;
    html! {
        section #facts {
            h2 { "Host" }
            dl.facts {
                dt { "Agent id" } dd { (id(&a.id)) }
                dt { "State" } dd #state { (p.state()) }
                dt { "Hostname" } dd { (h.hostname) }
                dt { "System" } dd { (h.os_name) " " (h.os_version) }
                dt { "Kernel" } dd { (h.kernel_version) " (" (h.arch) ")" }
                dt { "Agent version" } dd { (h.agent_version) }
                dt { "Enrolled" } dd { (when(a.enrolled_at_ms)) }
                dt { "Last seen" } dd { (when(a.last_seen_ms)) }
                dt { "Certificate expires" } dd { (when(a.cert_expires_at_ms)) }
                @if let Some(r) = a.revoked_at_ms { dt { "Revoked" } dd { (when(r)) } }
            }
        }
    }
}

fn labels(c: &Caller, p: &Presence) -> Markup {
    let text = labels_text(p);
    html! {
        section #labels {
            h2 { "Labels" }
            @if text.is_empty() { p { "No labels." } }
            @else { ul.labels { @for l in &text { li { code { (l) } } } } }
            @if c.may(Permission::ManageAgents) {
                form.labels method="post" action={ "/agents/" (p.agent.id) "/labels" } {
                    (csrf(c))
                    label { "Labels, one key=value a line" textarea name="labels" rows="4" { (text.join("\n")) } }
                    label { "Reason" input type="text" name="reason" maxlength=(MAX_REASON) required; }
                    button #save-labels type="submit" { "Save labels" }
                }
            }
        }
    }
}

fn sensors(p: &Presence) -> Markup {
    let a = &p.agent;
    let degraded = p.degraded();
    html! {
        section #sensors {
            h2 { "Sensors and agent cost" }
            dl.facts {
                dt { "Process sensor" } dd #sensor-mode { @if a.process_sensor.is_empty() { "not reported yet" } @else { (a.process_sensor) } }
                @if let Some(m) = &a.metrics {
                    @for s in &m.sensors { dt { "Sensor" } dd { (s) } }
                    dt { "CPU" } dd { (format!("{:.1}% of a core", m.cpu_percent)) }
                    dt { "Memory (RSS)" } dd { (mib(m.rss_bytes)) }
                    dt { "Events per second" } dd { (format!("{:.1}", m.events_per_sec)) }
                    dt { "Spool" } dd { (m.spool_events) " events, " (mib(m.spool_bytes)) }
                    dt { "Events lost" } dd { (m.events_lost) }
                    @if !m.prevention.is_empty() { dt { "Prevention" } dd #prevention { (m.prevention) } }
                    @for e in &m.edge_policies {
                        dt { "Edge policy" }
                        dd.edge-policy { (e.id) " v" (e.version) ": " (e.summary()) }
                    }
                }
            }
            @if !degraded.is_empty() {
                p.problem #degraded { "Degraded: " (degraded.join("; ")) }
            }
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn isolation(c: &Caller, v: &AgentView) -> Markup {
    let p = &v.presence;
    let iso = Isolation::of(p, &v.commands);
    // Worded so that only an observed isolation says "isolated".
    let desired = if iso.desired {
        "isolate"
    } else {
        "on the network"
    };
    html! {
        section #isolation {
            h2 { "Isolation" }
            dl.facts {
                dt { "Desired" } dd #isolation-desired { (desired) }
                dt { "Observed" } dd #isolation-observed {
                    @match iso.observed {
                        None => "not reported yet",
                        Some(true) => { "isolated (reported " (when(iso.observed_at_ms)) ")" },
                        Some(false) => { "on the network (reported " (when(iso.observed_at_ms)) ")" },
                    }
                }
            }
            @if iso.drift() { p.problem #drift { "Drift: the controller wants “" (desired) "” but the host reports otherwise." } }
            @if !iso.error.is_empty() { p.problem { "The agent reports: " (iso.error) } }
            @for a in &v.pending { p.note { "Pending approval: " (a.what) " (asked by " (a.requested_by) ", " (id(&a.id)) ")" } }
            @if c.may(Permission::Respond) && p.agent.revoked_at_ms.is_none() {
                h3 { "Actions" }
                (action_page::buttons(&p.agent.id))
            }
        }
    }
}

fn commands(rows: &[CommandRow]) -> Markup {
    html! {
        section {
            h2 { "Commands" }
            @if rows.is_empty() { p { "No commands yet." } }
            @else {
                table #commands {
                    thead { tr { th { "Sent" } th { "Command" } th { "By" } th { "Status" } th { "Result" } } }
                    tbody { @for r in rows {
                        tr { td { (when(r.created_at_ms)) } td { (r.kind) } td { (r.created_by) } td { (r.status.as_str()) } td { (outcome(r)) } }
                    } }
                }
            }
        }
    }
}

/// A command's state and result, in a sentence.
pub fn outcome(r: &CommandRow) -> String {
    let status = r.status.as_str();
    if !r.error.is_empty() {
        return format!("{status}: {}", r.error);
    }
    let Some(out) = result_of(r).and_then(|x| x.output) else {
        return status.to_string();
    };
    let what = match out {
        Output::Isolation(i) if i.isolated => match i.allowed.is_empty() {
            true => "isolated".to_string(),
            false => format!("isolated; allowed {}", i.allowed.join(", ")),
        },
        Output::Isolation(_) => "released from isolation".into(),
        Output::Kill(k) => k
            .killed
            .iter()
            .map(|p| format!("killed pid {} ({})", p.pid, p.exe))
            .collect::<Vec<_>>()
            .join("; "),
        Output::Quarantined(q) => format!("quarantined {} as {}", q.original_path, q.id),
        Output::Restored(q) => format!("restored {}", q.original_path),
        Output::QuarantineList(l) => format!("{} files in quarantine", l.entries.len()),
        Output::Block(b) if b.blocked => format!("blocked {}", b.cidr),
        Output::Block(b) => format!("unblocked {}", b.cidr),
        Output::Inventory(_) => "inventory collected".into(),
        Output::Pong(_) => "answered".into(),
        Output::Collection(c) => crate::core::collections::summary(&c),
        Output::Fetched(f) => crate::core::fetch::summary(&f),
    };
    format!("{status}: {what}")
}

fn inventory(c: &Caller, p: &Presence, rows: &[CommandRow]) -> Markup {
    let latest = rows.iter().find_map(|r| match result_of(r)?.output? {
        Output::Inventory(i) => Some((r.completed_at_ms.unwrap_or(r.created_at_ms), i)),
        _ => None,
    });
    html! {
        section #inventory {
            h2 { "Inventory" }
            @match &latest {
                Some((at, inv)) => { p { "Collected " (when(*at)) "." } (inventory_facts(inv)) },
                None => p { "No inventory collected yet." },
            }
            @if c.may(Permission::Respond) && p.agent.revoked_at_ms.is_none() {
                form method="post" action={ "/agents/" (p.agent.id) "/inventory" } {
                    (csrf(c))
                    button #request-inventory type="submit" { "Request an inventory" }
                }
            }
        }
    }
}

fn inventory_facts(i: &Inventory) -> Markup {
    html! {
        dl.facts {
            dt { "CPU" } dd { (i.cpu_count) " × " (i.cpu_brand) }
            dt { "Memory" } dd { (mib(i.memory_used_bytes)) " used of " (mib(i.memory_total_bytes)) }
            dt { "Up" } dd { (i.uptime_secs / 3600) " h" }
            @for d in &i.disks { dt { "Disk" } dd { (d.mount_point) " (" (d.file_system) "): " (mib(d.available_bytes)) " free of " (mib(d.total_bytes)) } }
            @for n in &i.interfaces { dt { "Interface" } dd { (n.name) " " (n.addresses.join(", ")) } }
            dt { "Users" } dd { (i.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", ")) }
        }
    }
}

fn events(events: &[StoredEvent]) -> Markup {
    html! {
        section #recent-events {
            h2 { "Recent events" }
            @if events.is_empty() { p { "No events stored." } }
            @else {
                table {
                    thead { tr { th { "When" } th { "Seq" } th { "Kind" } th { "What" } } }
                    tbody { @for e in events {
                        tr { td { (when(e.time_ms)) } td { (e.seq) } td { (e.kind) } td { (e.summary) } }
                    } }
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::core::Admin;
    use crate::policy::people::Kind;
    use crate::policy::roles::Role;
    use crate::store::Agent;

    pub(in crate::console) fn caller(role: Role) -> Caller {
        Caller {
            admin: Admin {
                name: role.name().into(),
                kind: Kind::User,
                role,
                serial: "console:00".into(),
            },
            session: "s".into(),
            csrf: "c0ffee".into(),
        }
    }

    pub(in crate::console) fn presence() -> Presence {
        let mut agent = Agent::for_tests("a1b2", &[("env", "prod")]);
        agent.host.hostname = "<b>web-1</b>".into();
        agent.process_sensor = "poll".into();
        agent.isolation_desired = true;
        Presence {
            agent,
            online: true,
        }
    }

    fn page_for(role: Role) -> String {
        let v = AgentView {
            presence: presence(),
            commands: Vec::new(),
            pending: Vec::new(),
            events: Vec::new(),
            notice: None,
        };
        agent(&caller(role), &v).into_string()
    }

    #[test]
    fn actions_are_offered_to_responders_and_labels_to_admins_only() {
        let viewer = page_for(Role::Viewer);
        assert!(!viewer.contains("action-") && !viewer.contains("save-labels"));
        assert!(!viewer.contains("request-inventory"));
        let responder = page_for(Role::Responder);
        for a in [
            "isolate",
            "release",
            "kill",
            "quarantine",
            "restore",
            "block",
            "unblock",
        ] {
            let link = format!("id=\"action-{a}\" href=\"/agents/a1b2/{a}\"");
            assert!(responder.contains(&link), "{a}: {responder}");
        }
        assert!(!responder.contains("save-labels") && responder.contains("request-inventory"));
        let admin = page_for(Role::Admin);
        assert!(admin.contains("save-labels") && admin.contains("value=\"c0ffee\""));
    }

    #[test]
    fn the_edge_policies_in_force_are_listed() {
        let mut presence = presence();
        presence.agent.metrics = Some(cordon_proto::AgentMetrics {
            edge_policies: vec![cordon_proto::EdgePolicyState {
                id: "playbook:reverse-shell".into(),
                version: 4,
                rules: 5,
                steps: 1,
                ..Default::default()
            }],
            ..Default::default()
        });
        let v = AgentView {
            presence,
            commands: Vec::new(),
            pending: Vec::new(),
            events: Vec::new(),
            notice: None,
        };
        let page = agent(&caller(Role::Viewer), &v).into_string();
        assert!(
            page.contains("playbook:reverse-shell v4: 5 rule(s), 1 step(s)"),
            "{page}"
        );
    }

    #[test]
    fn the_page_escapes_host_text_and_says_isolated_only_when_observed() {
        let page = page_for(Role::Viewer);
        assert!(page.contains("&lt;b&gt;web-1") && !page.contains("<b>web-1"));
        assert!(page.contains("Degraded: process sensor in poll mode"));
        let iso = &page[page.find("id=\"isolation\"").unwrap()..];
        let iso = &iso[..iso.find("</section>").unwrap()];
        assert!(!iso.contains("isolated"), "desired only: {iso}");
    }
}
