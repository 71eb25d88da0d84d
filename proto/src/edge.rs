//! How an edge policy in force is described to people (cordonctl and the console alike).

use crate::EdgePolicyState;

/// The id of the edge policy that carries the block list (files denied at exec).
pub const BLOCKLIST: &str = "blocklist";

impl EdgePolicyState {
    /// "3 rule(s), 1 step(s)", "... (dry run)", or for the block list "12 blocked SHA-256".
    pub fn summary(&self) -> String {
        if self.id == BLOCKLIST {
            return format!("{} blocked SHA-256", self.block_sha256);
        }
        let dry = if self.dry_run { ", dry run" } else { "" };
        format!("{} rule(s), {} step(s){dry}", self.rules, self.steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_the_block_list_are_summarised() {
        let p = EdgePolicyState {
            id: "playbook:x".into(),
            rules: 3,
            steps: 1,
            dry_run: true,
            ..Default::default()
        };
        assert_eq!(p.summary(), "3 rule(s), 1 step(s), dry run");
        let b = EdgePolicyState {
            id: "blocklist".into(),
            block_sha256: 12,
            ..Default::default()
        };
        assert_eq!(b.summary(), "12 blocked SHA-256");
    }
}
