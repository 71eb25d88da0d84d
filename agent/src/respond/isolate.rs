//! Network isolation as one nftables table, `inet cordon`, replaced atomically: loopback, the
//! controller's addresses, the allowlist and the configured DNS and DHCP pass; everything else
//! is dropped in input, output and forward, including connections already open (there is no
//! blanket "established" rule) and IPv6.

use super::net::{Allow, Net};
use super::nft::{self, NftError, accept, eq, meta, payload};
use serde_json::{Value, json};
use std::net::IpAddr;

pub const TABLE: &str = "cordon";
const FAMILY: &str = "inet";
/// Before the usual filter priority (0), so other tables cannot open holes first.
const PRIORITY: i32 = -200;

/// What the isolation ruleset lets through.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub controller: Vec<IpAddr>,
    pub allow: Vec<Allow>,
    pub dns: Vec<IpAddr>,
    pub dhcp: bool,
}

/// Puts isolation in the kernel, takes it out, and reports what is there.
pub trait Isolator: Send + Sync {
    /// Replaces any isolation with `plan`, atomically.
    fn apply(&self, plan: &Plan) -> Result<(), NftError>;
    /// Swaps the controller addresses only (after re-resolving), atomically.
    fn set_controller(&self, addrs: &[IpAddr]) -> Result<(), NftError>;
    /// Removes isolation; fine if there is none.
    fn remove(&self) -> Result<(), NftError>;
    /// The hash of the table in the kernel, or None if it is absent.
    fn observe(&self) -> Result<Option<String>, NftError>;
}

impl<T: Isolator + ?Sized> Isolator for std::sync::Arc<T> {
    fn apply(&self, plan: &Plan) -> Result<(), NftError> {
        (**self).apply(plan)
    }
    fn set_controller(&self, addrs: &[IpAddr]) -> Result<(), NftError> {
        (**self).set_controller(addrs)
    }
    fn remove(&self) -> Result<(), NftError> {
        (**self).remove()
    }
    fn observe(&self) -> Result<Option<String>, NftError> {
        (**self).observe()
    }
}

/// The real isolator: `nft` in the agent's network namespace.
pub struct NftIsolator;

impl Isolator for NftIsolator {
    fn apply(&self, plan: &Plan) -> Result<(), NftError> {
        // Creating is several times faster than replacing; try it first.
        nft::apply(ruleset(plan, Mode::Create))
            .or_else(|_| nft::apply(ruleset(plan, Mode::Replace)))
    }

    fn set_controller(&self, addrs: &[IpAddr]) -> Result<(), NftError> {
        nft::apply(controller_batch(addrs))
    }

    fn remove(&self) -> Result<(), NftError> {
        let table = json!({"table": {"family": FAMILY, "name": TABLE}});
        nft::apply(vec![
            json!({ "add": table.clone() }),
            json!({ "delete": table }),
        ])
    }

    fn observe(&self) -> Result<Option<String>, NftError> {
        Ok(nft::list_table(FAMILY, TABLE)?.map(|t| nft::table_hash(&t)))
    }
}

/// Swaps the controller addresses in one transaction.
pub fn controller_batch(addrs: &[IpAddr]) -> Vec<Value> {
    let mut batch = flush_controller_sets();
    batch.extend(controller_elements(addrs));
    batch
}

/// Empties both controller sets (the schema wants each set's type).
fn flush_controller_sets() -> Vec<Value> {
    [("ctl4", "ipv4_addr"), ("ctl6", "ipv6_addr")]
        .iter()
        .map(|(set, kind)| json!({"flush": {"set": {"family": FAMILY, "table": TABLE, "name": set, "type": kind}}}))
        .collect()
}

fn controller_elements(addrs: &[IpAddr]) -> Vec<Value> {
    let mut out = Vec::new();
    for (set, v4) in [("ctl4", true), ("ctl6", false)] {
        let elems: Vec<Value> = addrs
            .iter()
            .filter(|a| a.is_ipv4() == v4)
            .map(|a| Value::String(a.to_string()))
            .collect();
        if !elems.is_empty() {
            out.push(json!({"add": {"element": {"family": FAMILY, "table": TABLE, "name": set, "elem": elems}}}));
        }
    }
    out
}

/// How a ruleset batch meets the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No table yet: create it (the batch fails, changing nothing, if one exists).
    Create,
    /// A table exists: empty it and fill it again, keeping its base chains hooked.
    Replace,
}

/// The whole isolation table as one atomic batch.
pub fn ruleset(plan: &Plan, mode: Mode) -> Vec<Value> {
    let table = json!({"table": {"family": FAMILY, "name": TABLE}});
    let verb = if mode == Mode::Create {
        "create"
    } else {
        "add"
    };
    let mut batch = vec![json!({ verb: table.clone() })];
    for (set, kind) in [("ctl4", "ipv4_addr"), ("ctl6", "ipv6_addr")] {
        batch.push(
            json!({"add": {"set": {"family": FAMILY, "table": TABLE, "name": set, "type": kind}}}),
        );
    }
    batch.extend(nft::base_chains(TABLE, PRIORITY, "drop"));
    if mode == Mode::Replace {
        batch.push(json!({ "flush": table }));
        batch.extend(flush_controller_sets());
    }
    batch.extend(controller_elements(&plan.controller));
    let mut rule = |chain: &str, expr: Vec<Value>| {
        batch.push(json!({"add": {"rule": {"family": FAMILY, "table": TABLE, "chain": chain, "expr": expr}}}));
    };
    rule("input", vec![eq(meta("iifname"), json!("lo")), accept()]);
    rule("output", vec![eq(meta("oifname"), json!("lo")), accept()]);
    for (proto, set) in [("ip", "@ctl4"), ("ip6", "@ctl6")] {
        rule(
            "input",
            vec![eq(payload(proto, "saddr"), json!(set)), accept()],
        );
        rule(
            "output",
            vec![eq(payload(proto, "daddr"), json!(set)), accept()],
        );
    }
    // IPv6 needs neighbour discovery to reach anything at all, the controller included.
    let nd = json!({"set": ["nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-solicit", "nd-router-advert"]});
    for chain in ["input", "output"] {
        rule(
            chain,
            vec![eq(payload("icmpv6", "type"), nd.clone()), accept()],
        );
    }
    for allow in &plan.allow {
        rule(
            "input",
            peer_match(&allow.net, "saddr", allow.port.map(|p| ("sport", p))),
        );
        rule(
            "output",
            peer_match(&allow.net, "daddr", allow.port.map(|p| ("dport", p))),
        );
    }
    for resolver in &plan.dns {
        let net = Net {
            addr: *resolver,
            prefix: if resolver.is_ipv4() { 32 } else { 128 },
        };
        rule("input", peer_match(&net, "saddr", Some(("sport", 53))));
        rule("output", peer_match(&net, "daddr", Some(("dport", 53))));
    }
    if plan.dhcp {
        for (server, client) in [(67, 68), (547, 546)] {
            rule("input", udp_ports(server, client));
            rule("output", udp_ports(client, server));
        }
    }
    batch
}

/// `ip[6] FIELD NET [meta l4proto {tcp, udp} th PORTFIELD PORT] accept`
fn peer_match(net: &Net, field: &str, port: Option<(&str, u16)>) -> Vec<Value> {
    let proto = if net.is_v4() { "ip" } else { "ip6" };
    let mut expr = vec![eq(payload(proto, field), nft::addr(net))];
    if let Some((port_field, port)) = port {
        expr.push(eq(meta("l4proto"), json!({"set": ["tcp", "udp"]})));
        expr.push(eq(payload("th", port_field), json!(port)));
    }
    expr.push(accept());
    expr
}

fn udp_ports(sport: u16, dport: u16) -> Vec<Value> {
    vec![
        eq(payload("udp", "sport"), json!(sport)),
        eq(payload("udp", "dport"), json!(dport)),
        accept(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_fits_the_nftables_schema_and_has_no_established_hole() {
        let plan = Plan {
            controller: vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
            allow: vec![
                Allow::parse("192.0.2.0/24:22").unwrap(),
                Allow::parse("[fd00::/64]").unwrap(),
            ],
            dns: vec!["10.0.0.53".parse().unwrap()],
            dhcp: true,
        };
        for batch in [
            ruleset(&plan, Mode::Create),
            ruleset(&plan, Mode::Replace),
            controller_batch(&plan.controller),
        ] {
            let doc = json!({ "nftables": batch });
            let typed: Result<nftables::schema::Nftables<'_>, _> =
                serde_json::from_value(doc.clone());
            assert!(typed.is_ok(), "{typed:?}\n{doc}");
            let text = doc.to_string();
            assert!(!text.contains("established"), "no blanket established rule");
        }
        let text = json!(ruleset(&plan, Mode::Create)).to_string();
        assert!(text.contains("\"policy\":\"drop\""));
        assert!(text.contains("fd00::1") && text.contains("192.0.2.0"));
    }
}
