//! The admin service's calls about people and service accounts (invite, list, show, state,
//! role, password, TOTP, renewal, who-am-i) and the enrolment service's login with an invite code:
//! proto in, core call, proto out.

use super::admin::{Answer, answer};
use crate::ca::Peer;
use crate::core::{Admin, Controller, CoreError, Credential, InviteRequest};
use crate::policy::people::{Kind, active};
use crate::policy::roles::{Permission, Role};
use crate::store::{PrincipalChange, PrincipalRow};
use cordon_proto::time::now_ms;
use cordon_proto::*;
use tonic::{Request, Response, Status};

/// The proto form of a principal.
pub fn user_record(p: PrincipalRow) -> UserRecord {
    let s = &p.standing;
    let state = match active(Some(s), now_ms()) {
        Ok(()) => "active".to_string(),
        Err(why) => why.to_string(),
    };
    UserRecord {
        name: p.name.clone(),
        kind: s.kind.name().into(),
        role: s.role.name().into(),
        state,
        expires_at_ms: s.expires_at_ms.unwrap_or(0),
        created_by: p.created_by,
        created_at_ms: p.created_at_ms,
        revoked_at_ms: s.revoked_at_ms.unwrap_or(0),
        has_password: p.has_password,
        has_totp: p.has_totp,
        last_login_ms: p.last_login_ms.unwrap_or(0),
        cert_serial: p.cert_serial,
    }
}

fn kind(s: &str) -> Result<Kind, CoreError> {
    match s {
        "" => Ok(Kind::User),
        other => Kind::from_name(other).ok_or_else(|| CoreError::BadKind(other.into())),
    }
}

pub async fn invite(
    ctl: &Controller,
    by: &Admin,
    r: InviteUserRequest,
) -> Answer<InviteUserResponse> {
    let made = async {
        let asked = InviteRequest {
            kind: kind(&r.kind)?,
            role: r.role.parse::<Role>()?,
            expires_at_ms: (r.expires_at_ms != 0).then_some(r.expires_at_ms),
            name: r.name,
        };
        ctl.invite(by, asked).await
    }
    .await;
    answer(made, |i| InviteUserResponse {
        code: i.code,
        code_expires_at_ms: i.code_expires_at_ms,
        user: Some(user_record(i.user)),
        controller_url: ctl.config.url.clone(),
        ca_fingerprint: ctl.ca.fingerprint(),
    })
}

pub async fn set_state(ctl: &Controller, by: &Admin, r: SetUserStateRequest) -> Answer<UserRecord> {
    let change = match r.state.as_str() {
        "enabled" => PrincipalChange::Enable,
        "disabled" => PrincipalChange::Disable,
        "revoked" => PrincipalChange::Revoke,
        other => {
            return Err(Status::invalid_argument(format!(
                "unknown state {other:?}: enabled, disabled or revoked"
            )));
        }
    };
    answer(ctl.change_user(by, &r.name, change).await, user_record)
}

pub async fn set_role(ctl: &Controller, by: &Admin, r: SetUserRoleRequest) -> Answer<UserRecord> {
    let role = r.role.parse::<Role>().map_err(CoreError::from)?;
    let change = PrincipalChange::SetRole(role);
    answer(ctl.change_user(by, &r.name, change).await, user_record)
}

/// A new TOTP secret for a person (or none), with the URI an authenticator app reads.
pub async fn set_totp(
    ctl: &Controller,
    by: &Admin,
    r: SetUserTotpRequest,
) -> Answer<SetUserTotpResponse> {
    answer(ctl.set_totp(by, &r.name, r.enable).await, |(p, secret)| {
        let secret = secret.unwrap_or_default();
        let otpauth_uri = match secret.as_str() {
            "" => String::new(),
            s => format!(
                "otpauth://totp/Cordon:{}?secret={s}&issuer=Cordon&algorithm=SHA1&digits=6&period=30",
                p.name
            ),
        };
        SetUserTotpResponse {
            user: Some(user_record(p)),
            secret,
            otpauth_uri,
        }
    })
}

/// Who the caller is, and the permissions of their role.
pub async fn who_am_i(ctl: &Controller, me: &Admin) -> Answer<WhoAmIResponse> {
    answer(ctl.user(&me.name).await, |p| WhoAmIResponse {
        user: Some(user_record(p)),
        cert_serial: me.serial.clone(),
        permissions: Permission::ALL
            .into_iter()
            .filter(|p| me.role.allows(*p))
            .map(|p| p.name().to_string())
            .collect(),
    })
}

/// Renews the caller's credential for the key of the certificate they called with.
pub async fn renew(
    ctl: &Controller,
    req: Request<RenewCredentialRequest>,
) -> Answer<RenewCredentialResponse> {
    let me = super::admin_peer(&req)?;
    let key_id = match super::peer(&req)?.0 {
        Peer::Principal { key_id, .. } => key_id,
        Peer::Agent { .. } => return Err(Status::permission_denied("not a principal")),
    };
    let renewed = ctl
        .renew_credential(&me, &key_id, &req.into_inner().csr_der)
        .await;
    answer(renewed, |c: Credential| RenewCredentialResponse {
        certificate_pem: c.certificate_pem,
        certificate_expires_at_ms: c.expires_at_ms,
    })
}

/// The enrolment service's login: an invite code and a CSR for a first credential.
pub async fn login(
    ctl: &Controller,
    r: LoginRequest,
) -> Result<Response<LoginResponse>, CoreError> {
    let c = ctl.login(&r.invite, &r.csr_der).await?;
    Ok(Response::new(LoginResponse {
        name: c.name,
        kind: c.kind.name().into(),
        role: c.role.name().into(),
        certificate_pem: c.certificate_pem,
        ca_certificate_pem: ctl.ca.cert_pem().to_string(),
        certificate_expires_at_ms: c.expires_at_ms,
    }))
}
