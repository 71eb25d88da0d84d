//! Who is calling: the roster of people and service accounts (a copy of their standing that
//! the TLS handshake and every admin call consult without waiting on the store), the check of
//! a caller against it and against the permission a call needs, and the credentials they
//! obtain with an invite code and renew with the one they hold.

use super::{Admin, Controller, CoreError};
use crate::policy::audit::AuditEntry;
use crate::policy::people::{Inactive, InviteRefusal, Kind, Standing, active};
use crate::policy::roles::Permission;
use crate::store::{PrincipalRow, Principals, StoreError};
use cordon_proto::time::now_ms;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::broadcast;

/// The standing of every principal, by name; kept equal to the store by each change.
#[derive(Clone, Debug)]
pub struct Roster {
    standing: Arc<RwLock<HashMap<String, Standing>>>,
    /// Names whose standing just changed (open streams of theirs re-check it).
    changed: broadcast::Sender<String>,
}

impl Default for Roster {
    fn default() -> Self {
        Self {
            standing: Arc::default(),
            changed: broadcast::channel(64).0,
        }
    }
}

impl Roster {
    /// Loads every principal from the store.
    pub async fn load<S: Principals>(&self, store: &S) -> Result<(), StoreError> {
        for p in store.principals().await? {
            self.put(&p);
        }
        Ok(())
    }

    /// Records a principal's standing as stored, and tells open streams.
    pub fn put(&self, p: &PrincipalRow) {
        if let Ok(mut map) = self.standing.write() {
            map.insert(p.name.clone(), p.standing.clone());
        }
        let _ = self.changed.send(p.name.clone());
    }

    /// Whether `name`, presenting a certificate of `kind`, may act now.
    pub fn check(&self, kind: Kind, name: &str, now_ms: i64) -> Result<Standing, Inactive> {
        let map = self.standing.read().map_err(|_| Inactive::Unknown)?;
        let s = map.get(name).filter(|s| s.kind == kind);
        active(s, now_ms)?;
        s.cloned().ok_or(Inactive::Unknown)
    }

    /// Names whose standing changes from now on.
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.changed.subscribe()
    }
}

/// A credential just issued from a CSR.
#[derive(Debug, Clone)]
pub struct Credential {
    pub name: String,
    pub kind: Kind,
    pub role: crate::policy::roles::Role,
    pub certificate_pem: String,
    pub expires_at_ms: i64,
}

impl Controller {
    /// The caller behind a verified certificate, if they may act now and hold `needed`.
    pub fn authorize(
        &self,
        kind: Kind,
        name: &str,
        serial: &str,
        needed: Permission,
    ) -> Result<Admin, CoreError> {
        let standing = self
            .roster
            .check(kind, name, now_ms())
            .map_err(|why| CoreError::Inactive(name.to_string(), why))?;
        let caller = Admin {
            name: name.to_string(),
            kind,
            role: standing.role,
            serial: serial.to_string(),
        };
        if !standing.role.allows(needed) {
            return Err(CoreError::PermissionDenied {
                needed,
                role: standing.role,
            });
        }
        Ok(caller)
    }

    /// Records a refused permission check in the audit log.
    pub async fn record_refusal(
        &self,
        kind: Kind,
        name: &str,
        serial: &str,
        what: &str,
        e: &CoreError,
    ) {
        let mut entry = AuditEntry::new(name, "permission.refused", format!("rpc:{what}"))
            .detail(json!({ "kind": kind.name(), "cert_serial": serial }));
        entry.outcome = e.outcome();
        let _ = self.record(entry).await;
    }

    /// The invited name behind an invite code, and the code's hash; an empty, overlong or
    /// unknown code is refused alike.
    pub(super) async fn invited(&self, code: &str) -> Result<(String, String), CoreError> {
        let unknown = || CoreError::Invite(InviteRefusal::Unknown);
        if code.is_empty() || code.len() > 128 {
            return Err(unknown());
        }
        let hash = super::token_hash(code);
        let name = self
            .store
            .invited_name(hash.clone())
            .await?
            .ok_or_else(unknown)?;
        Ok((name, hash))
    }

    fn credential_ttl(&self) -> Duration {
        Duration::from_secs(self.config.people.credential_ttl_secs)
    }

    /// Exchanges an invite code and a CSR for a credential. The certificate is signed before
    /// the code is used up (a bad CSR leaves the code usable); a certificate whose code turns
    /// out unusable is never handed out.
    pub async fn login(&self, code: &str, csr_der: &[u8]) -> Result<Credential, CoreError> {
        let unknown = || CoreError::Invite(InviteRefusal::Unknown);
        let (name, hash) = self.invited(code).await?;
        let invited = self
            .store
            .principal(name.clone())
            .await?
            .ok_or_else(unknown)?;
        let kind = invited.standing.kind;
        let signed = self
            .ca
            .sign_principal(csr_der, kind, &name, self.credential_ttl())?;
        let redeemed = self
            .store
            .redeem_invite(hash, signed.serial.clone(), now_ms())
            .await?
            .map_err(CoreError::Invite);
        if let Ok(row) = &redeemed {
            self.standing_changed(row).await;
            tracing::info!(name = %name, kind = %kind, serial = %signed.serial, "credential issued for an invite");
        }
        let entry = AuditEntry::new(&name, "user.login", format!("{kind}:{name}"))
            .detail(json!({ "cert_serial": signed.serial, "invite": super::token_ref(code) }));
        let row = self.audited(entry, redeemed, |_, _| {}).await?;
        Ok(Credential {
            name,
            kind,
            role: row.standing.role,
            certificate_pem: signed.pem,
            expires_at_ms: signed.expires_at_ms,
        })
    }

    /// A fresh credential for the caller's own key: the CSR must carry `key_id`, the key of
    /// the certificate they called with. Refused once they may no longer act.
    pub async fn renew_credential(
        &self,
        who: &Admin,
        key_id: &str,
        csr_der: &[u8],
    ) -> Result<Credential, CoreError> {
        let signed = self
            .ca
            .sign_principal(csr_der, who.kind, &who.name, self.credential_ttl())?;
        if signed.key_id != key_id {
            tracing::warn!(name = %who.name, "renewal CSR is for another key");
            return Err(CoreError::RenewalKeyMismatch);
        }
        let row = self
            .store
            .record_credential(who.name.clone(), signed.serial.clone(), now_ms())
            .await?
            .map_err(|why| CoreError::Inactive(who.name.clone(), why))?;
        self.standing_changed(&row).await;
        tracing::info!(name = %who.name, serial = %signed.serial, "credential renewed");
        Ok(Credential {
            name: who.name.clone(),
            kind: who.kind,
            role: row.standing.role,
            certificate_pem: signed.pem,
            expires_at_ms: signed.expires_at_ms,
        })
    }
}
