//! The command-signing key: Ed25519 over the exact encoded `Command` bytes. Agents pin the
//! public half at enrolment and refuse anything it did not sign.

use cordon_proto::{Command, EdgePolicy, SignedCommand, SignedEdgePolicy};
use prost::Message;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("reading the command-signing key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the command-signing key {path} is not a PKCS#8 Ed25519 key")]
    Invalid { path: PathBuf },
    #[error("generating the command-signing key failed")]
    Generate,
}

pub struct CommandSigner {
    key: Ed25519KeyPair,
}

impl CommandSigner {
    /// A new key, returned with its PKCS#8 encoding for storage.
    pub fn generate() -> Result<(Self, Vec<u8>), SigningError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| SigningError::Generate)?;
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| SigningError::Generate)?;
        Ok((Self { key }, pkcs8.as_ref().to_vec()))
    }

    pub fn load(path: &Path) -> Result<Self, SigningError> {
        let bytes = std::fs::read(path).map_err(|source| SigningError::Read {
            path: path.into(),
            source,
        })?;
        let key = Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|_| SigningError::Invalid { path: path.into() })?;
        Ok(Self { key })
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// An edge policy, signed the same way: over exactly its encoded bytes.
    pub fn sign_policy(&self, policy: &EdgePolicy) -> SignedEdgePolicy {
        let bytes = policy.encode_to_vec();
        let signature = self.key.sign(&bytes).as_ref().to_vec();
        SignedEdgePolicy {
            policy: bytes,
            signature,
        }
    }

    pub fn sign(&self, command: &Command) -> SignedCommand {
        let bytes = command.encode_to_vec();
        let signature = self.key.sign(&bytes).as_ref().to_vec();
        SignedCommand {
            command: bytes,
            signature,
        }
    }
}
