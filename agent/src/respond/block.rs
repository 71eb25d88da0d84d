//! IP blocking: table `inet cordon_block`, apart from isolation so a release leaves blocks in
//! place, with one interval set per family whose elements carry their own timeouts; the
//! kernel expires them on time, even if the agent is down.

use super::net::Net;
use super::nft::{self, NftError, drop_verdict, eq, payload};
use serde_json::{Value, json};
use std::time::Duration;

const TABLE: &str = "cordon_block";
const FAMILY: &str = "inet";
const PRIORITY: i32 = -190;

pub trait Blocker: Send + Sync {
    /// Blocks traffic to and from `net`, for `ttl` or until unblocked.
    fn block(&self, net: &Net, ttl: Option<Duration>) -> Result<(), NftError>;
    fn unblock(&self, net: &Net) -> Result<(), NftError>;
    /// How many addresses or networks are blocked now.
    fn count(&self) -> Result<u32, NftError>;
}

impl<T: Blocker + ?Sized> Blocker for std::sync::Arc<T> {
    fn block(&self, net: &Net, ttl: Option<Duration>) -> Result<(), NftError> {
        (**self).block(net, ttl)
    }
    fn unblock(&self, net: &Net) -> Result<(), NftError> {
        (**self).unblock(net)
    }
    fn count(&self) -> Result<u32, NftError> {
        (**self).count()
    }
}

pub struct NftBlocker;

fn set_name(net: &Net) -> &'static str {
    if net.is_v4() { "block4" } else { "block6" }
}

fn element(net: &Net, ttl: Option<Duration>) -> Value {
    let val = nft::addr(net);
    match ttl {
        Some(t) => json!({"elem": {"val": val, "timeout": t.as_secs().max(1)}}),
        None => val,
    }
}

/// The table with its sets, chains and rules; created once, kept across releases.
fn table_batch() -> Vec<Value> {
    let mut batch = vec![json!({"add": {"table": {"family": FAMILY, "name": TABLE}}})];
    for (set, kind) in [("block4", "ipv4_addr"), ("block6", "ipv6_addr")] {
        batch.push(json!({"add": {"set": {
            "family": FAMILY, "table": TABLE, "name": set, "type": kind, "flags": ["interval", "timeout"]
        }}}));
    }
    batch.extend(nft::base_chains(TABLE, PRIORITY, "accept"));
    for chain in ["input", "output", "forward"] {
        for (proto, set) in [("ip", "@block4"), ("ip6", "@block6")] {
            for field in ["saddr", "daddr"] {
                batch.push(
                    json!({"add": {"rule": {"family": FAMILY, "table": TABLE, "chain": chain,
                    "expr": [eq(payload(proto, field), json!(set)), drop_verdict()]}}}),
                );
            }
        }
    }
    batch
}

impl NftBlocker {
    fn ensure_table(&self) -> Result<(), NftError> {
        if nft::list_table(FAMILY, TABLE)?.is_none() {
            nft::apply(table_batch())?;
        }
        Ok(())
    }
}

impl Blocker for NftBlocker {
    fn block(&self, net: &Net, ttl: Option<Duration>) -> Result<(), NftError> {
        self.ensure_table()?;
        let target = json!({"family": FAMILY, "table": TABLE, "name": set_name(net)});
        // Delete-then-add (in one transaction) replaces an earlier timeout for the same net.
        let mut del = target.clone();
        del["elem"] = json!([nft::addr(net)]);
        let mut add = target;
        add["elem"] = json!([element(net, ttl)]);
        let replace = vec![
            json!({"delete": {"element": del}}),
            json!({"add": {"element": add.clone()}}),
        ];
        match nft::apply(replace) {
            Ok(()) => Ok(()),
            // Not there yet: a plain add.
            Err(_) => nft::apply(vec![json!({"add": {"element": add}})]),
        }
    }

    fn unblock(&self, net: &Net) -> Result<(), NftError> {
        if nft::list_table(FAMILY, TABLE)?.is_none() {
            return Ok(());
        }
        let mut del = json!({"family": FAMILY, "table": TABLE, "name": set_name(net)});
        del["elem"] = json!([nft::addr(net)]);
        nft::apply(vec![json!({"delete": {"element": del}})])
    }

    fn count(&self) -> Result<u32, NftError> {
        let Some(listed) = nft::list_table(FAMILY, TABLE)? else {
            return Ok(0);
        };
        Ok(count_elements(&listed))
    }
}

/// The addresses in the sets of a listed table.
pub fn count_elements(listed: &Value) -> u32 {
    let Some(objects) = listed.get("nftables").and_then(Value::as_array) else {
        return 0;
    };
    objects
        .iter()
        .filter_map(|o| o.get("set"))
        .map(|s| {
            s.get("elem")
                .and_then(Value::as_array)
                .map_or(0, |e| e.len() as u32)
        })
        .fold(0u32, u32::saturating_add)
}
