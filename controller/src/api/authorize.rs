//! The admin service's gate: before any handler runs, the caller's certificate names a person
//! or service account, the roster says they may act now, and their role holds the one
//! permission that the called RPC needs (`policy::roles::ADMIN_RPCS`). An RPC missing from
//! that table is refused to everyone. Refused permission checks are audited. The handler then
//! finds the caller as an [`Admin`] in the request's extensions.

use crate::ca::{Peer, peer_identity};
use crate::core::{Admin, Controller, CoreError};
use crate::policy::people::Kind;
use crate::policy::roles::permission_for;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower_service::Service;

/// `inner` (the admin service) behind the permission check.
#[derive(Clone)]
pub struct Authorized<S> {
    pub inner: S,
    pub ctl: Arc<Controller>,
}

impl<S: NamedService> NamedService for Authorized<S> {
    const NAME: &'static str = S::NAME;
}

type Answer = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<S, B> Service<http::Request<B>> for Authorized<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let rpc = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        match check(&self.ctl, &req, &rpc) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                Box::pin(self.inner.call(req))
            }
            Err(refused) => {
                let ctl = self.ctl.clone();
                Box::pin(async move { Ok(refused.answer(&ctl, &rpc).await.into_http()) })
            }
        }
    }
}

/// Why a call did not reach its handler.
enum Refused {
    /// No usable identity: nothing to audit under a name.
    Status(Status),
    /// A known principal refused: audited.
    Principal {
        kind: Kind,
        name: String,
        serial: String,
        error: Box<CoreError>,
    },
}

impl Refused {
    async fn answer(self, ctl: &Controller, rpc: &str) -> Status {
        match self {
            Self::Status(s) => s,
            Self::Principal {
                kind,
                name,
                serial,
                error,
            } => {
                ctl.record_refusal(kind, &name, &serial, rpc, &error).await;
                if matches!(*error, CoreError::PermissionDenied { .. }) {
                    tracing::warn!(name = %name, rpc, error = %error, "permission refused");
                }
                (*error).into()
            }
        }
    }
}

fn check<B>(ctl: &Controller, req: &http::Request<B>, rpc: &str) -> Result<Admin, Refused> {
    let (kind, name, serial) = match presented(req).map_err(Refused::Status)? {
        Peer::Principal {
            kind, name, serial, ..
        } => (kind, name, serial),
        Peer::Agent { .. } => {
            return Err(Refused::Status(Status::permission_denied(
                "an agent certificate cannot be used on the admin service",
            )));
        }
    };
    let Some(needed) = permission_for(rpc) else {
        return Err(Refused::Status(Status::permission_denied(format!(
            "no permission is defined for {rpc}: refused to everyone"
        ))));
    };
    ctl.authorize(kind, &name, &serial, needed)
        .map_err(|error| Refused::Principal {
            kind,
            name: name.clone(),
            serial: serial.clone(),
            error: Box::new(error),
        })
}

/// The identity in the request's client certificate (verified by the handshake).
pub fn presented<B>(req: &http::Request<B>) -> Result<Peer, Status> {
    let certs = req
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|i| i.peer_certs())
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    peer_identity(leaf)
        .map(|(peer, _)| peer)
        .map_err(Status::unauthenticated)
}
