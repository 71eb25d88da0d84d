//! One step of a playbook file: its action, the options that action takes, and the fields
//! every step has (name, condition, timeout, what a failure does).

use super::*;

const STEP_FIELDS: [&str; 17] = [
    "name",
    "action",
    "if",
    "at",
    "timeout_secs",
    "on_failure",
    "tree",
    "allow",
    "target",
    "cidr",
    "ttl_secs",
    "webhook",
    "text",
    "on_timeout",
    "status",
    "collector",
    "args",
];

/// A `collect` step's collector (one the agents run) and its `KEY=VALUE` arguments.
fn collect(
    cx: &Ctx<'_>,
    node: &Node,
    field: &str,
    collector: Option<&Node>,
    args: Option<&Node>,
) -> Result<Action, SpecError> {
    let f = |key: &str| join(field, key);
    let v = collector.ok_or_else(|| cx.err(node, &f("collector"), "is required for collect"))?;
    let collector = cx.one_of(v, &f("collector"), &cordon_proto::names::COLLECTORS)?;
    let Some(v) = args else {
        return Ok(Action::Collect {
            collector,
            args: Vec::new(),
        });
    };
    let args = cx.texts(v, &f("args"))?;
    if let Some(bad) = args
        .iter()
        .find(|a| a.split_once('=').is_none_or(|(k, _)| k.is_empty()))
    {
        return Err(cx.err(v, &f("args"), format!("{bad:?} is not KEY=VALUE")));
    }
    Ok(Action::Collect { collector, args })
}

pub(super) fn step(cx: &Ctx<'_>, node: &Node, field: &str) -> Result<Step, SpecError> {
    let mut allowed = STEP_FIELDS.to_vec();
    allowed.push("severity");
    let pairs = cx.map(node, field, &allowed)?;
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    let f = |key: &str| join(field, key);
    let action_node = get("action").ok_or_else(|| cx.err(node, &f("action"), "is required"))?;
    let action_name = cx.text(action_node, &f("action"))?;
    // Which options each action takes.
    let options: &[&str] = match action_name.as_str() {
        "kill_process" => &["tree"],
        "isolate_host" => &["allow"],
        "quarantine_file" => &["target"],
        "block_ip" => &["cidr", "ttl_secs"],
        "notify" => &["webhook", "text"],
        "wait_for_approval" => &["on_timeout"],
        "set_incident" => &["status", "severity"],
        "collect" => &["collector", "args"],
        "release_host" | "collect_inventory" => &[],
        other => {
            return Err(cx.err(
                action_node,
                &f("action"),
                format!(
                    "unknown action {other:?} (kill_process, isolate_host, release_host, quarantine_file, block_ip, collect_inventory, collect, notify, wait_for_approval, set_incident)"
                ),
            ));
        }
    };
    for (k, _) in pairs {
        let key = k.as_str().unwrap_or_default();
        let common = ["name", "action", "if", "at", "timeout_secs", "on_failure"].contains(&key);
        if !common && !options.contains(&key) {
            return Err(cx.err(k, &f(key), format!("{action_name} takes no {key:?}")));
        }
    }
    let action = match action_name.as_str() {
        "kill_process" => Action::KillProcess {
            tree: get("tree")
                .map(|v| cx.boolean(v, &f("tree")))
                .transpose()?
                .unwrap_or(false),
        },
        "isolate_host" => {
            let allow = get("allow")
                .map(|v| cx.texts(v, &f("allow")))
                .transpose()?
                .unwrap_or_default();
            Action::IsolateHost { allow }
        }
        "release_host" => Action::ReleaseHost,
        "quarantine_file" => {
            let target = match get("target") {
                None => FileTarget::File,
                Some(v) => match cx.one_of(v, &f("target"), &["file", "exe"])?.as_str() {
                    "exe" => FileTarget::Exe,
                    _ => FileTarget::File,
                },
            };
            Action::QuarantineFile { target }
        }
        "block_ip" => {
            let v =
                get("cidr").ok_or_else(|| cx.err(node, &f("cidr"), "is required for block_ip"))?;
            let cidr = cx.text(v, &f("cidr"))?;
            let addr = cidr.split('/').next().unwrap_or_default();
            if !["ioc", "destination"].contains(&cidr.as_str())
                && addr.parse::<std::net::IpAddr>().is_err()
            {
                return Err(cx.err(
                    v,
                    &f("cidr"),
                    "an address or network, \"ioc\" (the address an indicator matched) or \"destination\" (the connection's remote address)",
                ));
            }
            let ttl_secs = get("ttl_secs")
                .map(|v| cx.number(v, &f("ttl_secs"), MAX_TIMEOUT))
                .transpose()?
                .unwrap_or(0);
            Action::BlockIp { cidr, ttl_secs }
        }
        "collect_inventory" => Action::CollectInventory,
        "collect" => collect(cx, node, field, get("collector"), get("args"))?,
        "notify" => Action::Notify {
            webhook: get("webhook")
                .map(|v| cx.text(v, &f("webhook")))
                .transpose()?
                .unwrap_or_default(),
            text: get("text")
                .map(|v| cx.text(v, &f("text")))
                .transpose()?
                .unwrap_or_default(),
        },
        "wait_for_approval" => Action::WaitForApproval {
            proceed_on_timeout: match get("on_timeout") {
                None => false,
                Some(v) => cx.one_of(v, &f("on_timeout"), &["proceed", "abort"])? == "proceed",
            },
        },
        _ => {
            let status = get("status")
                .map(|v| cx.one_of(v, &f("status"), IncidentStatus::NAMES))
                .transpose()?
                .and_then(|s| IncidentStatus::parse(&s));
            let severity = get("severity")
                .map(|v| cx.one_of(v, &f("severity"), &LEVELS))
                .transpose()?;
            if status.is_none() && severity.is_none() {
                return Err(cx.err(node, field, "set_incident needs a status or a severity"));
            }
            Action::SetIncident { status, severity }
        }
    };
    let name = match get("name") {
        Some(v) => cx.text(v, &f("name"))?,
        None => action.name().to_string(),
    };
    let when = get("if")
        .map(|v| cx.conds(v, &f("if")))
        .transpose()?
        .unwrap_or_default();
    let default_timeout = if matches!(action, Action::WaitForApproval { .. }) {
        3600
    } else {
        DEFAULT_TIMEOUT
    };
    let timeout_secs = get("timeout_secs")
        .map(|v| cx.number(v, &f("timeout_secs"), MAX_TIMEOUT))
        .transpose()?
        .unwrap_or(default_timeout);
    let on_failure = match get("on_failure") {
        None => OnFailure::Abort,
        Some(v) => match cx
            .one_of(v, &f("on_failure"), &["continue", "abort"])?
            .as_str()
        {
            "continue" => OnFailure::Continue,
            _ => OnFailure::Abort,
        },
    };
    let at_edge = match get("at") {
        Some(v) => at_edge(cx, v, &f("at"), &action, &when)?,
        None => false,
    };
    Ok(Step {
        name,
        action,
        when,
        timeout_secs,
        on_failure,
        at_edge,
    })
}

/// `at: edge` (the agent acts on its own, before the event leaves the host) or `at:
/// controller` (the default). Only kill, quarantine and block run at the edge, and their
/// conditions may look only at what the host knows: the event and the host.
fn at_edge(
    cx: &Ctx<'_>,
    v: &Node,
    field: &str,
    action: &Action,
    when: &[Cond],
) -> Result<bool, SpecError> {
    if cx.one_of(v, field, &["edge", "controller"])? == "controller" {
        return Ok(false);
    }
    if !matches!(
        action,
        Action::KillProcess { .. } | Action::QuarantineFile { .. } | Action::BlockIp { .. }
    ) {
        return Err(cx.err(
            v,
            field,
            format!(
                "{} cannot run at the edge (kill_process, quarantine_file and block_ip can)",
                action.name()
            ),
        ));
    }
    if matches!(action, Action::BlockIp { cidr, .. } if cidr == "ioc") {
        return Err(cx.err(
            v,
            field,
            "block_ip with cidr \"ioc\" cannot run at the edge (the host does not match indicators); use an address or \"destination\"",
        ));
    }
    if let Some(c) = when.iter().find(|c| !is_edge_path(&c.path)) {
        return Err(cx.err(
            v,
            field,
            format!(
                "a step at the edge may only test event.* and host.* fields, not {}",
                c.path
            ),
        ));
    }
    Ok(true)
}

/// What an edge policy can test on the host (alert and step outcomes exist only on the
/// controller).
pub fn is_edge_path(path: &str) -> bool {
    path.starts_with("event.") || path.starts_with("host.")
}
