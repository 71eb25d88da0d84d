//! The client side of the transport: an mTLS channel to the controller that verifies the
//! server against the Cordon CA and presents a client certificate.

use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("controller URL {0:?} must look like https://HOST:PORT")]
    BadUrl(String),
    #[error("cannot reach the controller at {url}: {source}")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
}

/// Connects to `url`, verifying the server against `ca` and presenting `identity` (if any).
pub async fn tls_channel(
    url: &str,
    ca: Certificate,
    identity: Option<Identity>,
) -> Result<Channel, ChannelError> {
    tls_endpoint(url, ca, identity)?
        .connect()
        .await
        .map_err(|source| ChannelError::Connect {
            url: url.to_string(),
            source,
        })
}

/// The endpoint [`tls_channel`] connects to, for a caller that sets more on it (such as the
/// local address) before connecting.
pub fn tls_endpoint(
    url: &str,
    ca: Certificate,
    identity: Option<Identity>,
) -> Result<Endpoint, ChannelError> {
    let host = url_host(url).ok_or_else(|| ChannelError::BadUrl(url.to_string()))?;
    let mut tls = ClientTlsConfig::new().ca_certificate(ca).domain_name(host);
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Ok(Endpoint::from_shared(url.to_string())
        .map_err(|_| ChannelError::BadUrl(url.to_string()))?
        .tls_config(tls)
        .map_err(|source| ChannelError::Connect {
            url: url.to_string(),
            source,
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10)))
}

/// The host part of an https URL, without IPv6 brackets.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().map(str::to_string);
    }
    let host = authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority);
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::url_host;

    #[test]
    fn hosts_come_out_of_urls() {
        assert_eq!(
            url_host("https://10.0.0.1:7443").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(url_host("https://[::1]:7443/x").as_deref(), Some("::1"));
        assert_eq!(
            url_host("https://ctl.example").as_deref(),
            Some("ctl.example")
        );
        assert_eq!(url_host("http://x:1"), None);
    }
}
