//! Certificate renewal: once the configured fraction of the certificate's life has passed,
//! ask for a new one for the same key over the current mTLS connection, store it, and have
//! the stream reconnect with it.

use super::{Uplink, UplinkError};
use cordon_proto::RenewRequest;
use cordon_proto::time::now_ms;
use std::sync::Arc;
use std::time::Duration;

/// Runs for the agent's lifetime.
pub async fn renew_loop(up: Arc<Uplink>) {
    loop {
        let identity = match up.state.identity() {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the agent identity for renewal");
                tokio::time::sleep(Duration::from_secs(30)).await;
                continue;
            }
        };
        let life = (identity.cert_expires_at_ms - identity.cert_issued_at_ms).max(0) as f64;
        let due = identity.cert_issued_at_ms + (life * up.config.load().renew_at_fraction) as i64;
        let wait = (due - now_ms()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        match renew_once(&up).await {
            Ok(expires) => {
                tracing::info!(expires_at_ms = expires, "client certificate renewed");
                // Wakes the running stream, if any; a stream started later reads the new
                // certificate from disk anyway.
                up.renewed.notify_waiters();
            }
            Err(e) => {
                let left = identity.cert_expires_at_ms - now_ms();
                if left <= 0 {
                    tracing::error!(error = %e, "the client certificate has expired and renewal failed; enrol again if it keeps failing");
                } else {
                    tracing::warn!(error = %e, left_ms = left, "certificate renewal failed; retrying");
                }
                let retry = ((left.max(0) / 10) as u64).clamp(1_000, 30_000);
                tokio::time::sleep(Duration::from_millis(retry)).await;
            }
        }
    }
}

async fn renew_once(up: &Uplink) -> Result<i64, UplinkError> {
    let key_pem = up.state.read(&up.state.key())?;
    let key = rcgen::KeyPair::from_pem(&key_pem)
        .map_err(|e| UplinkError::Refused(format!("the private key is unreadable: {e}")))?;
    let csr_der = super::enroll::csr_for(&key).map_err(|e| UplinkError::Refused(e.to_string()))?;
    let mut client = up.client(&up.current_target()).await?;
    let resp = client
        .renew(RenewRequest { csr_der })
        .await
        .map_err(|s| UplinkError::Refused(cordon_proto::status::describe(&s)))?
        .into_inner();
    let issued = now_ms();
    up.state.save_cert(&resp.certificate_pem)?;
    let mut identity = up.state.identity()?;
    identity.cert_issued_at_ms = issued;
    identity.cert_expires_at_ms = resp.certificate_expires_at_ms;
    up.state.save_identity(&identity)?;
    Ok(resp.certificate_expires_at_ms)
}
