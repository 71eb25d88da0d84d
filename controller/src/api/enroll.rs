//! The enrolment service: a single-use token and a CSR in, a short-lived client certificate,
//! the CA and the command-signing key out (`Controller::enrol` decides). Reached over
//! server-authenticated TLS only, so anyone who can reach the port can call it: each source
//! has a few attempts at a time (`[enrolment]`, `core/ratelimit.rs`; an enrolment that succeeds
//! gives its attempt back), and refusals are counted for the periodic summary (`tally.rs`)
//! instead of being logged one by one.

use super::tally::Tally;
use crate::core::admission::source_key;
use crate::core::ratelimit::RateLimiter;
use crate::core::{Controller, CoreError};
use cordon_proto::enrollment_server::Enrollment;
use cordon_proto::{EnrollRequest, EnrollResponse, LoginRequest, LoginResponse};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

pub struct EnrollApi {
    pub ctl: Arc<Controller>,
    /// Enrolment attempts per source.
    pub limiter: RateLimiter,
    /// Refused enrolment attempts, reported in summary.
    pub refusals: Arc<Tally>,
}

/// The reason the refusal summary counts an enrolment under.
fn reason(e: &CoreError) -> &'static str {
    match e {
        CoreError::Enrol(r) => r.reason(),
        CoreError::Invite(_) => "bad_invite",
        CoreError::TokenMissing | CoreError::BadHost(_) => "invalid_request",
        CoreError::Ca(ca) if ca.is_csr_problem() => "bad_csr",
        _ => "internal_error",
    }
}

impl EnrollApi {
    /// Takes one attempt for the request's source, or refuses it as rate-limited.
    fn attempt<T>(&self, req: &Request<T>) -> Result<IpAddr, Status> {
        let source = req
            .remote_addr()
            .map(|a| source_key(a.ip()))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if !self.limiter.try_take(&source, Instant::now()) {
            self.refusals.note("rate_limited", source);
            return Err(Status::resource_exhausted(
                "too many enrolment attempts from this address; retry later",
            ));
        }
        Ok(source)
    }
}

#[tonic::async_trait]
impl Enrollment for EnrollApi {
    async fn login(&self, req: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        let source = self.attempt(&req)?;
        match super::users::login(&self.ctl, req.into_inner()).await {
            Ok(done) => {
                self.limiter.give_back(&source, Instant::now());
                Ok(done)
            }
            Err(e) => {
                self.refusals.note(reason(&e), source);
                Err(e.into())
            }
        }
    }

    async fn enroll(
        &self,
        req: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let source = self.attempt(&req)?;
        match self.ctl.enrol(req.into_inner()).await {
            Ok(done) => {
                self.limiter.give_back(&source, Instant::now());
                Ok(Response::new(EnrollResponse {
                    agent_id: done.agent_id,
                    certificate_pem: done.certificate_pem,
                    ca_certificate_pem: self.ctl.ca.cert_pem().to_string(),
                    command_signing_key: self.ctl.signer.public_key(),
                    certificate_expires_at_ms: done.certificate_expires_at_ms,
                    controller_urls: self.ctl.config.controller_urls(),
                }))
            }
            Err(e) => {
                self.refusals.note(reason(&e), source);
                Err(e.into())
            }
        }
    }
}
