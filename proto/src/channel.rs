//! The client side of the transport: an mTLS channel to the controller that verifies the
//! server against the Cordon CA and presents a client certificate, to the address its URL
//! names or to one given address of it (one of several a DNS name resolves to); and the
//! checks of controller URLs and of lists of them (a controller and its replicas).

use std::net::SocketAddr;
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

/// Most controller URLs one list holds (a controller and its replicas).
pub const MAX_CONTROLLER_URLS: usize = 16;
/// Longest controller URL.
const MAX_URL: usize = 512;

/// Connects to `url`, verifying the server against `ca` and presenting `identity` (if any).
pub async fn tls_channel(
    url: &str,
    ca: Certificate,
    identity: Option<Identity>,
) -> Result<Channel, ChannelError> {
    tls_channel_at(url, None, ca, identity).await
}

/// As [`tls_channel`], but to `addr` (one address `url`'s host resolves to) when given; the
/// server's certificate is still checked against the host name in `url`.
pub async fn tls_channel_at(
    url: &str,
    addr: Option<SocketAddr>,
    ca: Certificate,
    identity: Option<Identity>,
) -> Result<Channel, ChannelError> {
    let shown = match addr {
        Some(a) => format!("{url} ({a})"),
        None => url.to_string(),
    };
    tls_endpoint_at(url, addr, ca, identity)?
        .connect()
        .await
        .map_err(|source| ChannelError::Connect { url: shown, source })
}

/// The endpoint [`tls_channel`] connects to, for a caller that sets more on it (such as the
/// local address) before connecting.
pub fn tls_endpoint(
    url: &str,
    ca: Certificate,
    identity: Option<Identity>,
) -> Result<Endpoint, ChannelError> {
    tls_endpoint_at(url, None, ca, identity)
}

/// As [`tls_endpoint`], to `addr` when given (see [`tls_channel_at`]).
pub fn tls_endpoint_at(
    url: &str,
    addr: Option<SocketAddr>,
    ca: Certificate,
    identity: Option<Identity>,
) -> Result<Endpoint, ChannelError> {
    let host = url_host(url).ok_or_else(|| ChannelError::BadUrl(url.to_string()))?;
    let target = addr.map_or_else(|| url.to_string(), |a| format!("https://{a}"));
    let mut tls = ClientTlsConfig::new().ca_certificate(ca).domain_name(host);
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Ok(Endpoint::from_shared(target)
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

/// Checks a controller URL: `https://HOST[:PORT]`.
pub fn check_url(url: &str) -> Result<(), String> {
    let bad = || format!("controller URL {url:?} must look like https://HOST:PORT");
    if url.len() > MAX_URL || url_host(url).is_none() {
        return Err(bad());
    }
    let uri: tonic::transport::Uri = url.parse().map_err(|_| bad())?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let port = match authority.rsplit_once(']') {
        Some((_, tail)) => tail.strip_prefix(':'),
        None => authority.rsplit_once(':').map(|(_, p)| p),
    };
    if port.is_some_and(|p| !p.parse::<u16>().is_ok_and(|p| p > 0)) {
        return Err(bad());
    }
    match uri.path() {
        "" | "/" if uri.query().is_none() => Ok(()),
        _ => Err(bad()),
    }
}

/// The port of a controller URL (443 when it names none).
pub fn url_port(url: &str) -> Option<u16> {
    let uri: tonic::transport::Uri = url.parse().ok()?;
    Some(uri.port_u16().unwrap_or(443))
}

/// A list of controller URLs, each checked, in the order given without repeats (a trailing
/// `/` does not make another URL); at least one and at most [`MAX_CONTROLLER_URLS`].
pub fn controller_urls<S: AsRef<str>>(
    urls: impl IntoIterator<Item = S>,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for url in urls {
        let url = url.as_ref().trim();
        check_url(url)?;
        let url = url.trim_end_matches('/').to_string();
        if !out.contains(&url) {
            out.push(url);
        }
    }
    if out.is_empty() {
        return Err("at least one controller URL is needed".into());
    }
    if out.len() > MAX_CONTROLLER_URLS {
        return Err(format!(
            "{} controller URLs: at most {MAX_CONTROLLER_URLS}",
            out.len()
        ));
    }
    Ok(out)
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
    use super::*;

    #[test]
    fn url_lists_are_checked_kept_in_order_and_without_repeats() {
        let urls = controller_urls([
            "https://a.example:7443",
            " https://[fd00::1]:7443/",
            "https://a.example:7443/",
            "https://10.0.0.2",
        ])
        .unwrap();
        assert_eq!(
            urls,
            [
                "https://a.example:7443",
                "https://[fd00::1]:7443",
                "https://10.0.0.2"
            ]
        );
        assert_eq!(url_port(&urls[1]), Some(7443));
        assert_eq!(url_port(&urls[2]), Some(443));
        for bad in [
            "http://a:1",
            "https://",
            "https://a:notaport",
            "https://[fd00::1]:0",
            "https://a:7443/path",
            "https://a:7443/?q=1",
            "a.example:7443",
        ] {
            let err = controller_urls([bad]).unwrap_err();
            assert!(err.contains("https://HOST:PORT"), "{bad}: {err}");
        }
        assert!(controller_urls(Vec::<String>::new()).is_err());
        let many: Vec<String> = (0..=MAX_CONTROLLER_URLS)
            .map(|i| format!("https://h{i}:1"))
            .collect();
        assert!(controller_urls(&many).unwrap_err().contains("at most"));
    }

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
