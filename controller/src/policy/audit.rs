//! The audit log's hash chain: what an entry is, how its hash is computed, and how a chain is
//! checked. Entry `seq` (1, 2, 3, ... without gaps) stores `prev_hash`, the hash of entry
//! `seq - 1` (64 zeros, [`GENESIS_HASH`], for entry 1), and its own `hash`: the lowercase hex
//! of SHA-256 over this encoding, integers big-endian:
//!
//! ```text
//! b"cordon-audit-v1\n"                     16 bytes, fixed
//! seq                                      u64
//! time_ms                                  i64 (two's complement)
//! actor, action, target, detail, outcome,  each: its length in bytes as a u64,
//! prev_hash                                then its UTF-8 bytes
//! ```
//!
//! `detail` is hashed as the exact JSON text stored; `prev_hash` as its 64 hex characters.
//! Every variable field carries its length, so no two different entries encode alike.
//! [`ChainCheck`] names the first entry that was edited (its hash does not match its
//! content), replaced or inserted (its `prev_hash` does not match the entry before), or
//! follows a deleted one (a gap in `seq`).

use ring::digest::{Context, SHA256};
use serde_json::Value;

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const DOMAIN: &[u8; 16] = b"cordon-audit-v1\n";

/// An action to record. `actor` is an admin identity from a certificate, or for automatic
/// actions a name such as `playbook:NAME`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub actor: String,
    /// Dotted, object first: `token.create`, `agent.revoke`, `command.isolate`, ...
    pub action: String,
    /// What it acted on: `agent:ID`, `rule:ID`, `incident:ID`, ... or empty.
    pub target: String,
    pub detail: Value,
    /// `ok`, a command's status, or `refused: WHY` / `error: WHY`.
    pub outcome: String,
}

impl AuditEntry {
    /// An entry with an empty detail and the outcome `ok`.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            detail: Value::Object(Default::default()),
            outcome: "ok".into(),
        }
    }

    /// Adds `detail`'s keys to the entry's (or replaces a detail that is not an object).
    pub fn detail(mut self, detail: Value) -> Self {
        match (&mut self.detail, detail) {
            (Value::Object(mine), Value::Object(more)) => mine.extend(more),
            (slot, other) => *slot = other,
        }
        self
    }
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: u64,
    pub time_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// JSON text, exactly as hashed.
    pub detail: String,
    pub outcome: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this entry's content and `prev_hash` call for (see the module header).
    pub fn compute_hash(&self) -> String {
        let mut h = Context::new(&SHA256);
        h.update(DOMAIN);
        h.update(&self.seq.to_be_bytes());
        h.update(&self.time_ms.to_be_bytes());
        for field in [
            &self.actor,
            &self.action,
            &self.target,
            &self.detail,
            &self.outcome,
            &self.prev_hash,
        ] {
            h.update(&(field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        hex::encode(h.finish())
    }
}

/// The result of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries read, up to and including the first bad one.
    pub entries_checked: u64,
    /// The first bad entry and what is wrong with it.
    pub first_bad: Option<(u64, String)>,
    /// The last entry read and its stored hash (0 and [`GENESIS_HASH`] for an empty log).
    pub last_seq: u64,
    pub last_hash: String,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Checks a chain entry by entry, in seq order.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    last_seq: u64,
    last_hash: String,
    checked: u64,
}

impl Default for ChainCheck {
    fn default() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS_HASH.into(),
            checked: 0,
        }
    }
}

impl ChainCheck {
    /// Checks the next entry; the error says what is wrong with it.
    pub fn next(&mut self, r: &AuditRecord) -> Result<(), String> {
        self.checked += 1;
        let expected = self.last_seq + 1;
        let result = if r.seq > expected {
            Err(match r.seq - expected {
                1 => format!("entry {expected} before it is missing (deleted)"),
                _ => format!(
                    "entries {expected} to {} before it are missing (deleted)",
                    r.seq - 1
                ),
            })
        } else if r.seq < expected {
            Err(format!(
                "seq {} out of order after {}",
                r.seq, self.last_seq
            ))
        } else if r.prev_hash != self.last_hash {
            Err(match self.last_seq {
                0 => "its prev_hash is not the genesis value (entries before it were removed, or it was replaced)".into(),
                n => format!(
                    "its prev_hash does not match the hash of entry {n} (an entry was replaced or inserted, or entry {n} was edited and re-hashed)"
                ),
            })
        } else if r.compute_hash() != r.hash {
            Err("its hash does not match its content (the entry was edited)".into())
        } else {
            Ok(())
        };
        self.last_seq = r.seq;
        self.last_hash = r.hash.clone();
        result
    }

    /// Counts an entry that could not be read at all (the caller reports it as the first bad
    /// one).
    pub fn unreadable(&mut self) {
        self.checked += 1;
    }

    /// The verification of everything checked so far, with the first bad entry if any.
    pub fn into_verification(self, first_bad: Option<(u64, String)>) -> Verification {
        Verification {
            entries_checked: self.checked,
            first_bad,
            last_seq: self.last_seq,
            last_hash: self.last_hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    seq,
                    time_ms: 1_000 + seq as i64,
                    actor: "alice".into(),
                    action: "agent.revoke".into(),
                    target: format!("agent:{seq}"),
                    detail: "{}".into(),
                    outcome: "ok".into(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn first_bad(records: &[AuditRecord]) -> Option<(u64, String)> {
        let mut check = ChainCheck::default();
        records
            .iter()
            .find_map(|r| check.next(r).err().map(|why| (r.seq, why)))
    }

    #[test]
    fn field_boundaries_are_part_of_the_hash() {
        let mut a = chain(1).remove(0);
        let before = a.compute_hash();
        a.actor = "alic".into();
        a.action = "eagent.revoke".into();
        assert_ne!(a.compute_hash(), before);
        assert_eq!(before.len(), 64);
    }

    #[test]
    fn a_chain_checks_and_each_kind_of_tampering_is_named() {
        let good = chain(4);
        assert_eq!(first_bad(&good), None);

        let mut edited = good.clone();
        edited[1].outcome = "refused: nothing".into();
        let (seq, why) = first_bad(&edited).unwrap();
        assert_eq!(seq, 2);
        assert!(why.contains("edited"), "{why}");

        let mut rehashed = edited.clone();
        rehashed[1].hash = rehashed[1].compute_hash();
        let (seq, why) = first_bad(&rehashed).unwrap();
        assert_eq!(seq, 3);
        assert!(
            why.contains("prev_hash does not match the hash of entry 2"),
            "{why}"
        );

        let mut deleted = good.clone();
        deleted.remove(2);
        let (seq, why) = first_bad(&deleted).unwrap();
        assert_eq!(seq, 4);
        assert!(why.contains("entry 3 before it is missing"), "{why}");
    }
}
