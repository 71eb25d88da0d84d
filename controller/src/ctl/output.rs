//! How `cordonctl` shows things: aligned text for people, `--json` for scripts.

use super::print_json;
use super::term::{clean, emit, outln};
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
    outln!("token:          {}", t.token);
    outln!("controller:     {}", t.controller_url);
    outln!("ca fingerprint: {}", t.ca_fingerprint);
    outln!(
        "expires:        {}   uses: {}",
        time(t.expires_at_ms),
        t.uses
    );
    outln!();
    outln!(
        "enrol a host with (the token in the environment or a file, not on the command line,\n\
         where every process listing shows it):\n  \
         CORDON_TOKEN={} cordon-agent enroll --controller {} --ca-fingerprint {}\n\
         or put the token in a file readable only by root and pass --token-file FILE",
        t.token,
        t.controller_url,
        t.ca_fingerprint
    );
    Ok(())
}

pub fn agents(list: &[AgentRecord], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return print_json(&list);
    }
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
    outln!(
        "process sensor: {}",
        if a.process_sensor.is_empty() {
            "-"
        } else {
            &a.process_sensor
        }
    );
    outln!("labels:         {}", labels.join(", "));
    outln!("enrolled:       {}", time(a.enrolled_at_ms));
    outln!("last seen:      {}", time(a.last_seen_ms));
    outln!(
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
    outln!(
        "isolation:      desired {}, observed {}{}",
        if a.isolation_desired {
            "isolated"
        } else {
            "not isolated"
        },
        observed,
        if drift { "  << DRIFT" } else { "" }
    );
    outln!("blocked:        {} address(es)", c.blocked_addresses);
    if let Some(m) = &a.metrics {
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
    }
    if !c.error.is_empty() {
        outln!("containment:    {}", clean(&c.error));
    }
    if a.revoked {
        outln!("revoked:        {}", time(a.revoked_at_ms));
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
    outln!(
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
    Ok(())
}

pub fn commands(list: &[CommandRecord], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        let values: Vec<Value> = list.iter().map(command_json).collect::<Result<_, _>>()?;
        return print_json(&values);
    }
    outln!(
        "{:<28}  {:<32}  {:<10}  {:<10}  {:<25}  ERROR",
        "COMMAND",
        "AGENT",
        "KIND",
        "STATUS",
        "CREATED"
    );
    for c in list {
        outln!(
            "{:<28}  {:<32}  {:<10}  {:<10}  {:<25}  {}",
            c.command_id,
            c.agent_id,
            c.kind,
            status_name(c.status),
            time(c.created_at_ms),
            clean(&c.error)
        );
    }
    Ok(())
}

pub fn command(c: &CommandRecord, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return print_json(&command_json(c)?);
    }
    outln!("command:   {}", c.command_id);
    outln!("agent:     {}", c.agent_id);
    outln!("kind:      {}", c.kind);
    outln!("status:    {}", status_name(c.status));
    outln!("by:        {}", c.created_by);
    outln!("created:   {}", time(c.created_at_ms));
    outln!("delivered: {}", time(c.delivered_at_ms));
    outln!("completed: {}", time(c.completed_at_ms));
    outln!("expires:   {}", time(c.expires_at_ms));
    if !c.error.is_empty() {
        outln!("error:     {}", clean(&c.error));
    }
    if let Some(r) = &c.result {
        outln!(
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
        Some(Output::Isolation(i)) if i.isolated => outln!(
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
        Some(Output::Isolation(_)) => outln!("{agent} released from isolation"),
        Some(Output::Kill(k)) => {
            outln!("killed on {agent}:");
            for p in &k.killed {
                outln!(
                    "  pid {:<8} start {:<12} {} ({})",
                    p.pid,
                    p.start_time,
                    clean(&p.exe),
                    clean(&p.comm)
                );
            }
        }
        Some(Output::Quarantined(q)) => outln!(
            "quarantined {} on {agent} as {} (sha256 {}, {} bytes)",
            clean(&q.original_path),
            q.id,
            q.sha256,
            q.size
        ),
        Some(Output::Restored(q)) => {
            outln!(
                "restored {} on {agent} from {}",
                clean(&q.original_path),
                q.id
            )
        }
        Some(Output::QuarantineList(l)) => {
            outln!(
                "{:<28}  {:<25}  {:<10}  ORIGINAL PATH",
                "QUARANTINE ID",
                "WHEN",
                "SIZE"
            );
            for q in &l.entries {
                outln!(
                    "{:<28}  {:<25}  {:<10}  {}",
                    q.id,
                    time(q.quarantined_at_ms),
                    q.size,
                    clean(&q.original_path)
                );
            }
        }
        Some(Output::Block(b)) if b.blocked => outln!(
            "{} blocked on {agent}{}",
            b.cidr,
            if b.ttl_secs > 0 {
                format!(" for {}s", b.ttl_secs)
            } else {
                String::new()
            }
        ),
        Some(Output::Block(b)) => outln!("{} unblocked on {agent}", b.cidr),
        _ => outln!("command {} {}", rec.command_id, status_name(rec.status)),
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
            emit(&format!("{}\n", serde_json::to_string(e)?), false);
        } else {
            outln!(
                "{:<25}  {:<12}  {:>8}  {:<7}  {}",
                time(e.time_ms),
                short(&e.agent_id),
                e.seq,
                clean(&e.kind),
                clean(&e.summary)
            );
        }
    }
    Ok(())
}
