//! `cordonctl agents list|show|revoke|inventory`: the enrolled agents, their hosts, their
//! containment state (desired beside observed, so drift shows) and their cost.

use crate::cli::{JSON_LINES, JSON_ONE};
use crate::client::AdminClient;
use crate::error::CtlError;
use crate::json;
use crate::rpc::{call, submit};
use crate::term::{clean, outln};
use crate::text::{short, time};
use clap::Subcommand;
use cordon_proto::*;

#[derive(Subcommand, Debug)]
pub enum AgentsCmd {
    /// Lists the enrolled agents: host name, state, last seen, version.
    List {
        #[arg(long, help = JSON_LINES)]
        json: bool,
    },
    /// Shows an agent: host facts, labels, certificate, containment and agent metrics.
    Show {
        /// Agent id (or an unambiguous prefix).
        id: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Revokes an agent: its stream closes at once and its certificate is refused from now on.
    Revoke {
        /// Agent id (or an unambiguous prefix).
        id: String,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
    /// Collects the host inventory (OS, kernel, CPUs, memory, disks, interfaces, users).
    Inventory {
        /// Agent id (or an unambiguous prefix).
        id: String,
        /// Seconds to wait for the agent's answer.
        #[arg(long, default_value_t = 30)]
        wait: u64,
        #[arg(long, help = JSON_ONE)]
        json: bool,
    },
}

pub async fn run(admin: &mut AdminClient, cmd: AgentsCmd) -> Result<(), CtlError> {
    match cmd {
        AgentsCmd::List { json } => {
            let list = call(admin.list_agents(ListAgentsRequest {})).await?;
            if json {
                return json::print_lines(&list.agents);
            }
            table(&list.agents);
        }
        AgentsCmd::Show { id, json } => {
            let a = call(admin.get_agent(GetAgentRequest { agent_id: id })).await?;
            if json {
                return json::print_one(&a);
            }
            show(&a);
        }
        AgentsCmd::Revoke { id, json } => {
            let a = call(admin.revoke_agent(RevokeAgentRequest { agent_id: id })).await?;
            if json {
                return json::print_one(&a);
            }
            outln!(
                "revoked agent {}: its stream is closed and its certificate refused",
                a.agent_id
            );
        }
        AgentsCmd::Inventory { id, wait, json } => inventory(admin, id, wait, json).await?,
    }
    Ok(())
}

fn table(list: &[AgentRecord]) {
    outln!(
        "{:<32}  {:<20}  {:<8}  {:<25}  VERSION",
        "AGENT",
        "HOSTNAME",
        "STATE",
        "LAST SEEN"
    );
    for a in list {
        let host = a.host.clone().unwrap_or_default();
        outln!(
            "{:<32}  {:<20}  {:<8}  {:<25}  {}",
            a.agent_id,
            clean(&host.hostname),
            state(a),
            time(a.last_seen_ms),
            clean(&host.agent_version)
        );
    }
}

fn state(a: &AgentRecord) -> &'static str {
    if a.revoked {
        "revoked"
    } else if a.online {
        "online"
    } else {
        "offline"
    }
}

fn show(a: &AgentRecord) {
    let host = a.host.clone().unwrap_or_default();
    let mut labels: Vec<_> = a
        .labels
        .iter()
        .map(|(k, v)| format!("{}={}", clean(k), clean(v)))
        .collect();
    labels.sort();
    outln!("agent:          {}", a.agent_id);
    outln!("state:          {}", state(a));
    outln!("hostname:       {}", clean(&host.hostname));
    outln!(
        "os:             {} {}",
        clean(&host.os_name),
        clean(&host.os_version)
    );
    outln!(
        "kernel:         {} ({})",
        clean(&host.kernel_version),
        clean(&host.arch)
    );
    outln!("agent version:  {}", clean(&host.agent_version));
    let sensor = if a.process_sensor.is_empty() {
        "-"
    } else {
        &a.process_sensor
    };
    outln!("process sensor: {sensor}");
    outln!("labels:         {}", labels.join(", "));
    outln!("enrolled:       {}", time(a.enrolled_at_ms));
    outln!("last seen:      {}", time(a.last_seen_ms));
    outln!(
        "certificate:    serial {} expires {}",
        a.certificate_serial,
        time(a.certificate_expires_at_ms)
    );
    containment(a);
    if let Some(m) = &a.metrics {
        metrics(m);
    }
    let error = a.containment.as_ref().map_or("", |c| c.error.as_str());
    if !error.is_empty() {
        outln!("containment:    {}", clean(error));
    }
    if a.revoked {
        outln!("revoked:        {}", time(a.revoked_at_ms));
    }
}

/// Isolation as the controller wants it beside what the agent finds in the kernel.
fn containment(a: &AgentRecord) {
    let c = a.containment.clone().unwrap_or_default();
    let observed = if c.isolation_table_present {
        format!("isolated (ruleset {})", short(&c.isolation_ruleset_hash))
    } else {
        "not isolated".to_string()
    };
    let drift = a.isolation_desired != c.isolation_table_present
        || (c.isolation_table_present && c.isolation_ruleset_hash != c.isolation_applied_hash);
    let desired = if a.isolation_desired {
        "isolated"
    } else {
        "not isolated"
    };
    let drift = if drift { "  << DRIFT" } else { "" };
    outln!("isolation:      desired {desired}, observed {observed}{drift}");
    outln!("blocked:        {} address(es)", c.blocked_addresses);
}

fn metrics(m: &AgentMetrics) {
    outln!(
        "agent cost:     {:.1}% cpu, {} MiB rss",
        m.cpu_percent,
        m.rss_bytes >> 20
    );
    outln!(
        "telemetry:      {:.1} events/s, spool {} events ({} KiB), {} lost since start",
        m.events_per_sec,
        m.spool_events,
        m.spool_bytes >> 10,
        m.events_lost
    );
    for s in &m.sensors {
        outln!("sensor:         {}", clean(s));
    }
    if !m.prevention.is_empty() {
        outln!("prevention:     {}", clean(&m.prevention));
    }
    if m.edge_policies.is_empty() {
        outln!("edge policies:  none");
    }
    for p in &m.edge_policies {
        outln!(
            "edge policy:    {} v{}: {}",
            clean(&p.id),
            p.version,
            p.summary()
        );
    }
}

async fn inventory(
    admin: &mut AdminClient,
    id: String,
    wait: u64,
    json: bool,
) -> Result<(), CtlError> {
    let action = action::Kind::CollectInventory(CollectInventory {});
    let (rec, _) = submit(admin, id, action, wait).await?;
    let Some(command_result::Output::Inventory(inv)) =
        rec.result.as_ref().and_then(|r| r.output.as_ref())
    else {
        return Err(CtlError::Command("the agent sent no inventory".into()));
    };
    if json {
        return json::print_one(inv);
    }
    show_inventory(&rec.agent_id, inv);
    Ok(())
}

fn show_inventory(agent_id: &str, inv: &Inventory) {
    let host = inv.host.clone().unwrap_or_default();
    outln!("agent:    {agent_id}");
    outln!("hostname: {}", clean(&host.hostname));
    outln!(
        "os:       {} {}  kernel {} ({})",
        clean(&host.os_name),
        clean(&host.os_version),
        clean(&host.kernel_version),
        clean(&host.arch)
    );
    outln!("uptime:   {}s", inv.uptime_secs);
    outln!("cpus:     {} x {}", inv.cpu_count, inv.cpu_brand);
    outln!(
        "memory:   {} MiB used of {} MiB",
        inv.memory_used_bytes >> 20,
        inv.memory_total_bytes >> 20
    );
    outln!("disks:");
    for d in &inv.disks {
        outln!(
            "  {:<20} {:<20} {:<8} {} GiB free of {} GiB",
            clean(&d.name),
            clean(&d.mount_point),
            clean(&d.file_system),
            d.available_bytes >> 30,
            d.total_bytes >> 30
        );
    }
    outln!("interfaces:");
    for i in &inv.interfaces {
        outln!(
            "  {:<16} {:<18} {}",
            clean(&i.name),
            clean(&i.mac),
            clean(&i.addresses.join(", "))
        );
    }
    outln!("users:");
    for u in &inv.users {
        outln!("  {:<16} uid {:<6} gid {}", clean(&u.name), u.uid, u.gid);
    }
}
