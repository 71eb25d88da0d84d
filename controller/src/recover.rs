//! `cordon-controller admin-credential`: a fresh credential for an enabled admin, written where
//! `init` wrote the first one (`DATA_DIR/admin.toml`). Credentials are short-lived and renew
//! only when used, so this is the way back in when every admin's has lapsed; it takes what
//! only the controller's host has (the CA key in the data directory, readable by root), and
//! is audited like any credential issued.

use crate::ca::Ca;
use crate::config::ControllerConfig;
use crate::init::{InitError, Layout, write_admin_credential};
use crate::policy::audit::AuditEntry;
use crate::policy::people::{Kind, active};
use crate::policy::roles::Role;
use crate::store::{AuditLog, Principals, Store, StoreError};
use cordon_proto::time::now_ms;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The audit log's actor for a credential issued on the controller's host.
pub const LOCAL_ACTOR: &str = "local-root";

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Write(#[from] InitError),
    #[error("{0} is not an enabled admin: only an admin's credential is issued this way")]
    NotAnAdmin(String),
}

/// Issues `name` (an active person with role admin) a new credential in `data_dir`.
pub async fn admin_credential(
    data_dir: &Path,
    config: Option<&Path>,
    name: &str,
) -> Result<PathBuf, RecoverError> {
    let config = ControllerConfig::load_from(data_dir, config)?;
    let store = Store::open(data_dir)?;
    let p = store.principal(name.to_string()).await?;
    let is_admin = p.as_ref().is_some_and(|p| {
        p.standing.kind == Kind::User
            && p.standing.role == Role::Admin
            && active(Some(&p.standing), now_ms()).is_ok()
    });
    if !is_admin {
        return Err(RecoverError::NotAnAdmin(name.to_string()));
    }
    let l = Layout::new(data_dir);
    let ca = Ca::load(&l.ca_cert, &l.ca_key)?;
    let ttl = Duration::from_secs(config.people.credential_ttl_secs);
    let serial = write_admin_credential(&l, &ca, &config.url, name, ttl)?;
    store
        .record_credential(name.to_string(), serial.clone(), now_ms())
        .await?
        .map_err(|_| RecoverError::NotAnAdmin(name.to_string()))?;
    let entry = AuditEntry::new(LOCAL_ACTOR, "user.credential", format!("user:{name}"))
        .detail(serde_json::json!({ "cert_serial": serial }));
    store.append_audit(entry, now_ms()).await?;
    Ok(l.admin_config)
}
