//! One edge policy as the agent holds it: checked against the pinned command-signing key,
//! this agent's id and the version already held, then compiled (its Sigma rules parsed and
//! indexed) so that each event costs one index lookup.

use cordon_detect::RuleSet;
use cordon_detect::fields::{Fields, view_body};
use cordon_proto::{EdgeCondition, EdgePolicy, EdgeStep, SignedEdgePolicy, event};
use prost::Message;
use ring::signature::{ED25519, UnparsedPublicKey};

/// Why a policy was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unsigned edge policy")]
    Unsigned,
    #[error("bad signature: the edge policy is not signed by the pinned command-signing key")]
    BadSignature,
    #[error("malformed edge policy: {0}")]
    Malformed(String),
    #[error("misaddressed: the edge policy is for agent {0}")]
    Misaddressed(String),
    #[error("edge policy {id} version {got} is older than version {held}, which is in force")]
    Older { id: String, got: u64, held: u64 },
    #[error("edge policy {id}: rule {rule}: {error}")]
    BadRule {
        id: String,
        rule: String,
        error: String,
    },
}

/// Checks the signature and the address; the version is the caller's to compare.
pub fn verify(
    signed: &SignedEdgePolicy,
    key: &[u8],
    agent_id: &str,
) -> Result<EdgePolicy, Refusal> {
    if signed.signature.is_empty() {
        return Err(Refusal::Unsigned);
    }
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&signed.policy, &signed.signature)
        .map_err(|_| Refusal::BadSignature)?;
    let policy = EdgePolicy::decode(signed.policy.as_slice())
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    if policy.id.is_empty() || policy.id.len() > 200 || policy.version == 0 {
        return Err(Refusal::Malformed("no id or no version".into()));
    }
    if policy.agent_id != agent_id {
        return Err(Refusal::Misaddressed(policy.agent_id));
    }
    Ok(policy)
}

/// An active policy ready to evaluate events.
pub struct Compiled {
    pub policy: EdgePolicy,
    rules: RuleSet,
}

impl Compiled {
    pub fn new(policy: EdgePolicy) -> Result<Self, Refusal> {
        let mut rules = RuleSet::new();
        for r in &policy.rules {
            let bad = |error: String| Refusal::BadRule {
                id: policy.id.clone(),
                rule: r.id.clone(),
                error,
            };
            let rule = cordon_detect::parse_rule(&r.yaml, &format!("edge policy {}", policy.id))
                .map_err(|e| bad(e.to_string()))?;
            rules.insert(rule).map_err(|e| bad(e.to_string()))?;
        }
        rules.prepare();
        Ok(Self { policy, rules })
    }

    /// The id of the first rule that matches `body` where every condition holds, if any.
    pub fn matches(&self, body: &event::Body) -> Option<String> {
        let (category, fields) = view_body(body)?;
        let hit = self.rules.evaluate_fields(category, &fields);
        let first = hit.into_iter().next()?;
        all_hold(&self.policy.conditions, &fields).then_some(first.rule_id)
    }

    /// The steps whose own conditions hold for this event.
    pub fn steps<'a>(&'a self, body: &'a event::Body) -> impl Iterator<Item = &'a EdgeStep> + 'a {
        let fields = view_body(body).map(|(_, f)| f);
        self.policy.steps.iter().filter(move |s| match &fields {
            Some(f) => all_hold(&s.when, f),
            None => s.when.is_empty(),
        })
    }
}

/// Each condition holds: some value of the field equals, contains, starts or ends with one of
/// the condition's values, without regard to case (as the controller's playbooks compare).
pub fn all_hold(conds: &[EdgeCondition], fields: &dyn Fields) -> bool {
    conds.iter().all(|c| {
        let Some(have) = fields.get(&c.field) else {
            return false;
        };
        let have = have.to_text().to_lowercase();
        c.values.iter().any(|v| {
            let v = v.to_lowercase();
            match c.op.as_str() {
                "equals" => have == v,
                "contains" => have.contains(&v),
                "startswith" => have.starts_with(&v),
                "endswith" => have.ends_with(&v),
                _ => false,
            }
        })
    })
}
