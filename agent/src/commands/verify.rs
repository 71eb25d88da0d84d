//! Checks a signed command against the pinned command-signing key, this agent's id and the
//! clock.

use cordon_proto::{Command, SignedCommand};
use prost::Message;
use ring::signature::{ED25519, UnparsedPublicKey};

/// Why a command was not run. Sent back to the controller as the result's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unsigned command")]
    Unsigned,
    #[error("bad signature: not signed by the pinned command-signing key")]
    BadSignature,
    #[error("malformed command: {0}")]
    Malformed(String),
    #[error("misaddressed: the command is for agent {0}")]
    Misaddressed(String),
    #[error("expired at {0} ms")]
    Expired(i64),
    #[error("replayed: this command id was already received")]
    Replayed,
}

pub struct Verifier {
    agent_id: String,
    key: Vec<u8>,
}

impl Verifier {
    /// `key` is the raw 32-byte Ed25519 public key pinned at enrolment.
    pub fn new(agent_id: String, key: Vec<u8>) -> Self {
        Self { agent_id, key }
    }

    /// The verified command, or the id it claims (if readable) and why it is refused.
    pub fn verify(
        &self,
        signed: &SignedCommand,
        now_ms: i64,
    ) -> Result<Command, (String, Refusal)> {
        // The id is only read for the report; nothing about it is trusted before the check.
        let claimed = Command::decode(signed.command.as_slice())
            .map(|c| c.id)
            .unwrap_or_default();
        if signed.signature.is_empty() {
            return Err((claimed, Refusal::Unsigned));
        }
        UnparsedPublicKey::new(&ED25519, &self.key)
            .verify(&signed.command, &signed.signature)
            .map_err(|_| (claimed.clone(), Refusal::BadSignature))?;
        let command = Command::decode(signed.command.as_slice())
            .map_err(|e| (claimed.clone(), Refusal::Malformed(e.to_string())))?;
        if command.id.is_empty() || command.id.len() > 128 {
            return Err((claimed, Refusal::Malformed("bad command id".into())));
        }
        if command.agent_id != self.agent_id {
            return Err((command.id, Refusal::Misaddressed(command.agent_id)));
        }
        if command.expires_at_ms <= now_ms {
            return Err((command.id, Refusal::Expired(command.expires_at_ms)));
        }
        Ok(command)
    }
}
