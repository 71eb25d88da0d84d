//! `cordon-controller serve`: opens the controller, binds the gRPC listener (`api`) and, when
//! `[console] listen` is set, the web console's (`console`), and serves both until SIGINT or
//! SIGTERM; then the console stops with the gRPC listener.

use crate::api::{self, ServeError};
use crate::console::{Console, ConsoleError};
use crate::core::{Controller, OpenError};
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Console(#[from] ConsoleError),
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })
}

/// Opens the controller in `data_dir`, binds its configured addresses and serves until
/// SIGINT or SIGTERM.
pub async fn run(data_dir: &Path, config: Option<&Path>) -> Result<(), RunError> {
    let ctl = Controller::open_with(data_dir, config).await?;
    let listener = bind(ctl.config.listen).await?;
    let stop = CancellationToken::new();
    let console = match ctl.config.console.listen {
        Some(addr) => {
            let console = Console::new(ctl.clone())?;
            let listener = bind(addr).await?;
            tracing::info!(listen = %addr, "web console serving");
            Some(tokio::spawn(
                console.serve(listener, stop.clone().cancelled_owned()),
            ))
        }
        None => None,
    };
    let health = match ctl.config.health_listen {
        Some(addr) => {
            let listener = bind(addr).await?;
            tracing::info!(listen = %addr, "health endpoint serving (GET /healthz)");
            let stopped = stop.clone().cancelled_owned();
            Some(tokio::spawn(crate::healthz::serve(
                listener,
                ctl.health.clone(),
                stopped,
            )))
        }
        None => None,
    };
    let probe = tokio::spawn(crate::core::health::watch(ctl.clone()));
    tracing::info!(listen = %ctl.config.listen, url = %ctl.config.url, ca = %ctl.ca.fingerprint(), "controller serving");
    let signal = stop.clone();
    let served = api::serve(ctl, listener, async move {
        tokio::select! {
            () = cordon_proto::process::shutdown_signal() => {}
            () = signal.cancelled() => {}
        }
    })
    .await;
    stop.cancel();
    probe.abort();
    for task in [console, health].into_iter().flatten() {
        let _ = task.await;
    }
    Ok(served?)
}
