//! nftables through its JSON interface: batches are checked against the `nftables` crate's
//! schema, then applied by `nft -j -f -` as one atomic transaction; tables are listed back
//! and hashed so the agent can report what the kernel really holds.

use nftables::schema::Nftables;
use ring::digest::{SHA256, digest};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("the nftables batch does not fit the schema: {0}")]
    Schema(serde_json::Error),
    #[error("nft failed: {0}")]
    Nft(String),
    #[error("nft printed unreadable JSON: {0}")]
    Output(serde_json::Error),
}

fn nft_error(e: nftables::helper::NftablesError) -> NftError {
    NftError::Nft(e.to_string().replace('\n', " "))
}

/// Applies `batch` (a JSON array of nft commands) atomically: all of it or none of it.
pub fn apply(batch: Vec<Value>) -> Result<(), NftError> {
    let doc = serde_json::json!({ "nftables": batch });
    let typed: Nftables<'_> = serde_json::from_value(doc).map_err(NftError::Schema)?;
    nftables::helper::apply_ruleset(&typed).map_err(nft_error)
}

/// The table as nft lists it, or None if it does not exist.
pub fn list_table(family: &str, name: &str) -> Result<Option<Value>, NftError> {
    match nftables::helper::get_current_ruleset_raw(None::<&str>, ["list", "table", family, name]) {
        Ok(text) => parse_listing(&text).map(Some),
        Err(nftables::helper::NftablesError::NftFailed { stderr, .. })
            if stderr.contains("No such file or directory") =>
        {
            Ok(None)
        }
        Err(e) => Err(nft_error(e)),
    }
}

/// nft's JSON listing as the agent reads it (its output is parsed, never trusted to be well
/// formed).
pub fn parse_listing(text: &str) -> Result<Value, NftError> {
    serde_json::from_str(text).map_err(NftError::Output)
}

/// SHA-256 over a listed table with the kernel's handles and nft's metainfo removed, so the
/// same ruleset always hashes the same.
pub fn table_hash(listed: &Value) -> String {
    fn strip(v: &Value) -> Option<Value> {
        match v {
            Value::Object(map) => {
                if map.contains_key("metainfo") {
                    return None;
                }
                Some(Value::Object(
                    map.iter()
                        .filter(|(k, _)| k.as_str() != "handle")
                        .filter_map(|(k, v)| strip(v).map(|v| (k.clone(), v)))
                        .collect(),
                ))
            }
            Value::Array(items) => Some(Value::Array(items.iter().filter_map(strip).collect())),
            other => Some(other.clone()),
        }
    }
    let canonical = strip(listed).unwrap_or(Value::Null).to_string();
    hex::encode(digest(&SHA256, canonical.as_bytes()))
}

/// `add chain` for the input, output and forward filter hooks of an `inet` table.
pub fn base_chains(table: &str, priority: i32, policy: &str) -> Vec<Value> {
    [
        ("input", "input"),
        ("output", "output"),
        ("forward", "forward"),
    ]
    .iter()
    .map(|(chain, hook)| {
        serde_json::json!({"add": {"chain": {
            "family": "inet", "table": table, "name": chain,
            "type": "filter", "hook": hook, "prio": priority, "policy": policy
        }}})
    })
    .collect()
}

/// A match statement: `left == right`.
pub fn eq(left: Value, right: Value) -> Value {
    serde_json::json!({ "match": { "op": "==", "left": left, "right": right } })
}

/// A packet field, e.g. `payload("ip", "saddr")`.
pub fn payload(protocol: &str, field: &str) -> Value {
    serde_json::json!({ "payload": { "protocol": protocol, "field": field } })
}

pub fn meta(key: &str) -> Value {
    serde_json::json!({ "meta": { "key": key } })
}

pub fn accept() -> Value {
    serde_json::json!({ "accept": null })
}

pub fn drop_verdict() -> Value {
    serde_json::json!({ "drop": null })
}

/// An address or network as nft JSON: a plain address, or a prefix.
pub fn addr(net: &super::net::Net) -> Value {
    if net.is_host() {
        Value::String(net.addr.to_string())
    } else {
        serde_json::json!({ "prefix": { "addr": net.addr.to_string(), "len": net.prefix } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_ignore_handles_and_metainfo() {
        let a = serde_json::json!({"nftables": [{"metainfo": {"version": "1"}}, {"table": {"name": "t", "handle": 3}}]});
        let b = serde_json::json!({"nftables": [{"metainfo": {"version": "2"}}, {"table": {"name": "t", "handle": 9}}]});
        let c = serde_json::json!({"nftables": [{"table": {"name": "u", "handle": 9}}]});
        assert_eq!(table_hash(&a), table_hash(&b));
        assert_ne!(table_hash(&a), table_hash(&c));
    }
}
