//! The pages of host actions: the confirmation page (the host, exactly what the agent will
//! do, the action's fields, a required reason and the Confirm button) and the agent page's
//! links to each action.

use super::actions::{
    ACTIONS, ActionForm,
    Field::{self, *},
    Spec,
};
use super::guard::Caller;
use super::layout::{MAX_REASON, csrf, id, page};
use crate::core::Presence;
use maud::{Markup, html};

/// The confirmation page: the host, what will happen, the fields, the reason, Confirm.
pub fn confirmation(
    c: &Caller,
    spec: &Spec,
    p: &Presence,
    filled: &ActionForm,
    four_eyes: bool,
) -> Markup {
    let a = &p.agent;
    let body = html! {
        p { "Host " strong { (a.host.hostname) } " " (id(&a.id)) ", " (p.state()) "." }
        p #effect { (spec.effect) }
        @if !p.online {
            p.note { "The agent is offline: the command waits until it reconnects, or expires." }
        }
        @if four_eyes && spec.needs_reason {
            p.note { "Four eyes is on: on a protected host this waits for another person's approval." }
        }
        @if !filled.event.is_empty() {
            p { "From event " (id(&filled.event)) "." }
        }
        form.action method="post" action={ "/agents/" (a.id) "/" (spec.name) } {
            (csrf(c))
            input type="hidden" name="event" value=(filled.event);
            @for f in spec.fields { (field(*f, filled)) }
            label {
                @if spec.needs_reason { "Reason (required, recorded in the audit log)" }
                @else { "Reason (recorded in the audit log)" }
                textarea name="reason" maxlength=(MAX_REASON) required[spec.needs_reason] { (filled.reason) }
            }
            button #confirm type="submit" { "Confirm: " (spec.title.to_lowercase()) }
            " "
            a href={ "/agents/" (a.id) } { "Cancel" }
        }
    };
    page(spec.title, Some(c), body)
}

fn field(f: Field, v: &ActionForm) -> Markup {
    html! {
        @match f {
            Allow => label { "Addresses that stay reachable (CIDR or CIDR:PORT, [IPv6]:PORT; separated by spaces or lines)"
                textarea name="allow" { (v.allow) } },
            Pid => label { "Process id" input type="text" name="pid" inputmode="numeric" required value=(v.pid); },
            StartTime => label { "Start time (clock ticks after boot, /proc/PID/stat field 22; empty: as it is now)"
                input type="text" name="start_time" inputmode="numeric" value=(v.start_time); },
            Tree => label { input type="checkbox" name="tree" checked[v.tree == "on"]; " Kill its descendants too" },
            FilePath => label { "Absolute path of the file on the host" input type="text" name="path" required value=(v.path); },
            QuarantineId => label { "Quarantine id" input type="text" name="quarantine_id" required value=(v.quarantine_id); },
            Cidr => label { "Address or network (ADDR or ADDR/PREFIX, IPv4 or IPv6)" input type="text" name="cidr" required value=(v.cidr); },
            Ttl => label { "For how many seconds (empty: until unblocked)" input type="text" name="ttl_secs" inputmode="numeric" value=(v.ttl_secs); },
        }
    }
}

/// The agent page's action links, for those who may respond.
pub fn buttons(agent_id: &str) -> Markup {
    html! {
        ul.actions {
            @for s in ACTIONS.iter().filter(|s| s.needs_reason) {
                li { a.button id={ "action-" (s.name) } href={ "/agents/" (agent_id) "/" (s.name) } { (s.title) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::actions::spec;
    use crate::console::agent_page::tests::{caller, presence};
    use crate::policy::roles::Role;

    #[test]
    fn the_confirmation_says_what_happens_and_needs_a_reason() {
        let filled = ActionForm {
            pid: "4242".into(),
            event: "a1b2:17".into(),
            ..Default::default()
        };
        let c = caller(Role::Responder);
        let page =
            confirmation(&c, spec("kill").unwrap(), &presence(), &filled, true).into_string();
        assert!(page.contains("action=\"/agents/a1b2/kill\"") && page.contains("value=\"c0ffee\""));
        assert!(page.contains("name=\"pid\"") && page.contains("value=\"4242\""));
        assert!(page.contains("<textarea name=\"reason\"") && page.contains("required"));
        assert!(page.contains("id=\"confirm\"") && page.contains("a1b2:17"));
        assert!(page.contains("Four eyes is on"));
    }
}
