//! The health listener: plain HTTP/1.1 on `health_listen`, for load balancers. `GET
//! /healthz` answers 200 `ok` while the store answers and 503 with the reason while it does
//! not (`core::health`); anything else is 404. It carries no data and takes no input, so it
//! needs neither TLS nor a client certificate. Connections are few and short: each gets
//! five seconds.

use crate::core::health::{Health, report};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;

/// Longest one connection may stay open.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections served at once; more wait in the kernel's backlog.
const MAX_OPEN: usize = 64;

/// Serves until `shutdown` resolves.
pub async fn serve(listener: TcpListener, health: Health, shutdown: impl Future<Output = ()>) {
    let mut open = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept(), if open.len() < MAX_OPEN => match accepted {
                Ok((tcp, _)) => {
                    let health = health.clone();
                    open.spawn(tokio::time::timeout(CONNECTION_TIMEOUT, async move {
                        let service = hyper::service::service_fn(move |req| answer(req, health.clone()));
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service);
                        let _ = conn.await;
                    }));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "health listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = open.join_next(), if !open.is_empty() => {}
        }
    }
    open.shutdown().await;
}

async fn answer(
    req: http::Request<Incoming>,
    health: Health,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let (code, body) = match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/healthz") => report(&health),
        _ => (404, "not found\n".into()),
    };
    let mut res = http::Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(res)
}
