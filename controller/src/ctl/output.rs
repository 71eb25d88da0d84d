//! How `cordonctl` shows things: aligned text for people, `--json` for scripts.

use super::print_json;
use cordon_proto::*;
use serde_json::{Value, json};
use std::time::Duration;

pub fn time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

pub fn status_name(status: i32) -> &'static str {
    match CommandStatus::try_from(status).unwrap_or(CommandStatus::Unspecified) {
        CommandStatus::Pending => "pending",
        CommandStatus::Delivered => "delivered",
        CommandStatus::Succeeded => "succeeded",
        CommandStatus::Failed => "failed",
        CommandStatus::Expired => "expired",
        CommandStatus::Unspecified => "unknown",
    }
}

fn outcome_name(outcome: i32) -> &'static str {
    match CommandOutcome::try_from(outcome).unwrap_or(CommandOutcome::Unspecified) {
        CommandOutcome::Succeeded => "succeeded",
        CommandOutcome::Failed => "failed",
        CommandOutcome::Refused => "refused",
        CommandOutcome::Unspecified => "unknown",
    }
}

/// A command record as JSON, with enum numbers replaced by their names.
fn command_json(c: &CommandRecord) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(c)?;
    v["status"] = json!(status_name(c.status));
    if let Some(r) = &c.result {
        v["result"]["outcome"] = json!(outcome_name(r.outcome));
    }
    Ok(v)
}

pub fn token(t: &CreateTokenResponse, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return print_json(t);
    }
    println!("token:          {}", t.token);
    println!("controller:     {}", t.controller_url);
    println!("ca fingerprint: {}", t.ca_fingerprint);
    println!(
        "expires:        {}   uses: {}",
        time(t.expires_at_ms),
        t.uses
    );
    println!();
    println!(
        "enrol a host with:\n  cordon-agent enroll --controller {} --token {} --ca-fingerprint {}",
        t.controller_url, t.token, t.ca_fingerprint
    );
    Ok(())
}

pub fn agents(list: &[AgentRecord], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return print_json(&list);
    }
    println!(
        "{:<32}  {:<20}  {:<8}  {:<25}  VERSION",
        "AGENT", "HOSTNAME", "STATE", "LAST SEEN"
    );
    for a in list {
        let host = a.host.clone().unwrap_or_default();
        println!(
            "{:<32}  {:<20}  {:<8}  {:<25}  {}",
            a.agent_id,
            host.hostname,
            state(a),
            time(a.last_seen_ms),
            host.agent_version
        );
    }
    Ok(())
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

pub fn agent(a: &AgentRecord, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return print_json(a);
    }
    let host = a.host.clone().unwrap_or_default();
    let mut labels: Vec<_> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    println!("agent:          {}", a.agent_id);
    println!("state:          {}", state(a));
    println!("hostname:       {}", host.hostname);
    println!("os:             {} {}", host.os_name, host.os_version);
    println!("kernel:         {} ({})", host.kernel_version, host.arch);
    println!("agent version:  {}", host.agent_version);
    println!(
        "process sensor: {}",
        if a.process_sensor.is_empty() {
            "-"
        } else {
            &a.process_sensor
        }
    );
    println!("labels:         {}", labels.join(", "));
    println!("enrolled:       {}", time(a.enrolled_at_ms));
    println!("last seen:      {}", time(a.last_seen_ms));
    println!(
        "certificate:    serial {} expires {}",
        a.certificate_serial,
        time(a.certificate_expires_at_ms)
    );
    let c = a.containment.clone().unwrap_or_default();
    let observed = if c.isolation_table_present {
        format!("isolated (ruleset {})", short(&c.isolation_ruleset_hash))
    } else {
        "not isolated".to_string()
    };
    let drift = a.isolation_desired != c.isolation_table_present
        || (c.isolation_table_present && c.isolation_ruleset_hash != c.isolation_applied_hash);
    println!(
        "isolation:      desired {}, observed {}{}",
        if a.isolation_desired {
            "isolated"
        } else {
            "not isolated"
        },
        observed,
        if drift { "  << DRIFT" } else { "" }
    );
    println!("blocked:        {} address(es)", c.blocked_addresses);
    if let Some(m) = &a.metrics {
        println!(
            "agent cost:     {:.1}% cpu, {} MiB rss",
            m.cpu_percent,
            m.rss_bytes >> 20
        );
        println!(
            "telemetry:      {:.1} events/s, spool {} events ({} KiB), {} lost since start",
            m.events_per_sec,
            m.spool_events,
            m.spool_bytes >> 10,
            m.events_lost
        );
        for s in &m.sensors {
            println!("sensor:         {s}");
        }
    }
    if !c.error.is_empty() {
        println!("containment:    {}", c.error);
    }
    if a.revoked {
        println!("revoked:        {}", time(a.revoked_at_ms));
    }
    Ok(())
}

pub fn pong(rec: &CommandRecord, rtt: Duration, as_json: bool) -> anyhow::Result<()> {
    let agent_ms = match rec.result.as_ref().and_then(|r| r.output.as_ref()) {
        Some(command_result::Output::Pong(p)) => p.agent_time_ms,
        _ => rec.result.as_ref().map(|r| r.agent_time_ms).unwrap_or(0),
    };
    if as_json {
        let v = json!({
            "agent_id": rec.agent_id,
            "command_id": rec.command_id,
            "agent_time_ms": agent_ms,
            "round_trip_ms": rtt.as_secs_f64() * 1000.0,
        });
        return print_json(&v);
    }
    println!(
        "pong from {} in {:.1} ms (agent clock {})",
        rec.agent_id,
        rtt.as_secs_f64() * 1000.0,
        time(agent_ms)
    );
    Ok(())
}

pub fn inventory(agent_id: &str, inv: &Inventory, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return print_json(inv);
    }
    let host = inv.host.clone().unwrap_or_default();
    println!("agent:    {agent_id}");
    println!("hostname: {}", host.hostname);
    println!(
        "os:       {} {}  kernel {} ({})",
        host.os_name, host.os_version, host.kernel_version, host.arch
    );
    println!("uptime:   {}s", inv.uptime_secs);
    println!("cpus:     {} x {}", inv.cpu_count, inv.cpu_brand);
    println!(
        "memory:   {} MiB used of {} MiB",
        inv.memory_used_bytes >> 20,
        inv.memory_total_bytes >> 20
    );
    println!("disks:");
    for d in &inv.disks {
        println!(
            "  {:<20} {:<20} {:<8} {} GiB free of {} GiB",
            d.name,
            d.mount_point,
            d.file_system,
            d.available_bytes >> 30,
            d.total_bytes >> 30
        );
    }
    println!("interfaces:");
    for i in &inv.interfaces {
        println!("  {:<16} {:<18} {}", i.name, i.mac, i.addresses.join(", "));
    }
    println!("users:");
    for u in &inv.users {
        println!("  {:<16} uid {:<6} gid {}", u.name, u.uid, u.gid);
    }
    Ok(())
}

pub fn commands(list: &[CommandRecord], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        let values: Vec<Value> = list.iter().map(command_json).collect::<Result<_, _>>()?;
        return print_json(&values);
    }
    println!(
        "{:<28}  {:<32}  {:<10}  {:<10}  {:<25}  ERROR",
        "COMMAND", "AGENT", "KIND", "STATUS", "CREATED"
    );
    for c in list {
        println!(
            "{:<28}  {:<32}  {:<10}  {:<10}  {:<25}  {}",
            c.command_id,
            c.agent_id,
            c.kind,
            status_name(c.status),
            time(c.created_at_ms),
            c.error
        );
    }
    Ok(())
}

pub fn command(c: &CommandRecord, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return print_json(&command_json(c)?);
    }
    println!("command:   {}", c.command_id);
    println!("agent:     {}", c.agent_id);
    println!("kind:      {}", c.kind);
    println!("status:    {}", status_name(c.status));
    println!("by:        {}", c.created_by);
    println!("created:   {}", time(c.created_at_ms));
    println!("delivered: {}", time(c.delivered_at_ms));
    println!("completed: {}", time(c.completed_at_ms));
    println!("expires:   {}", time(c.expires_at_ms));
    if !c.error.is_empty() {
        println!("error:     {}", c.error);
    }
    if let Some(r) = &c.result {
        println!(
            "outcome:   {} (agent clock {})",
            outcome_name(r.outcome),
            time(r.agent_time_ms)
        );
    }
    Ok(())
}

/// The confirmed result of a host action.
pub fn action_result(rec: &CommandRecord, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return print_json(&command_json(rec)?);
    }
    use command_result::Output;
    let agent = &rec.agent_id;
    match rec.result.as_ref().and_then(|r| r.output.as_ref()) {
        Some(Output::Isolation(i)) if i.isolated => println!(
            "{agent} isolated (ruleset {}, applied in {} us); reachable: controller {}{}",
            short(&i.ruleset_hash),
            i.apply_micros,
            i.controller_addresses.join(", "),
            if i.allowed.is_empty() {
                String::new()
            } else {
                format!("; allowed {}", i.allowed.join(", "))
            }
        ),
        Some(Output::Isolation(_)) => println!("{agent} released from isolation"),
        Some(Output::Kill(k)) => {
            println!("killed on {agent}:");
            for p in &k.killed {
                println!(
                    "  pid {:<8} start {:<12} {} ({})",
                    p.pid, p.start_time, p.exe, p.comm
                );
            }
        }
        Some(Output::Quarantined(q)) => println!(
            "quarantined {} on {agent} as {} (sha256 {}, {} bytes)",
            q.original_path, q.id, q.sha256, q.size
        ),
        Some(Output::Restored(q)) => {
            println!("restored {} on {agent} from {}", q.original_path, q.id)
        }
        Some(Output::QuarantineList(l)) => {
            println!(
                "{:<28}  {:<25}  {:<10}  ORIGINAL PATH",
                "QUARANTINE ID", "WHEN", "SIZE"
            );
            for q in &l.entries {
                println!(
                    "{:<28}  {:<25}  {:<10}  {}",
                    q.id,
                    time(q.quarantined_at_ms),
                    q.size,
                    q.original_path
                );
            }
        }
        Some(Output::Block(b)) if b.blocked => println!(
            "{} blocked on {agent}{}",
            b.cidr,
            if b.ttl_secs > 0 {
                format!(" for {}s", b.ttl_secs)
            } else {
                String::new()
            }
        ),
        Some(Output::Block(b)) => println!("{} unblocked on {agent}", b.cidr),
        _ => println!("command {} {}", rec.command_id, status_name(rec.status)),
    }
    Ok(())
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Events, one line each (or one JSON object per line with --json).
pub fn events(list: &[EventRecord], as_json: bool) -> anyhow::Result<()> {
    for e in list {
        if as_json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            println!(
                "{:<25}  {:<12}  {:>8}  {:<7}  {}",
                time(e.time_ms),
                short(&e.agent_id),
                e.seq,
                e.kind,
                e.summary
            );
        }
    }
    Ok(())
}
