//! People and service accounts with the real binaries: onboarding by invite, the role
//! matrix over every admin RPC, disabling and revoking (open streams close, handshakes are
//! refused), the last-admin guard, expiry and renewal, service accounts and forged
//! certificates.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use cordon_controller::policy::roles::{ADMIN_RPCS, Role};
use cordon_proto::TailEventsRequest;
use cordon_proto::admin_service_client::AdminServiceClient;
use cordon_tests::deploy::Deployment;
use cordon_tests::people::{Member, channel, raw_call};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::Duration;
use tonic::Code;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn whoami(d: &Deployment, m: &Member) -> Output {
    d.try_ctl_as(&m.credential(), &["users", "whoami", "--json"])
}

fn started() -> Deployment {
    Deployment::loopback("")
}

#[test]
fn an_invite_makes_a_credential_on_the_invitees_machine_once() {
    let d = started();
    let invite = d.invite("alice", "analyst", &[]);
    let code = invite["code"].as_str().unwrap();
    let dir = d.dir.path().join("alice-laptop");
    let out = d.try_login(code, &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let key_mode = std::fs::metadata(dir.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        key_mode & 0o777,
        0o600,
        "the private key is the owner's only"
    );
    let alice = Member {
        name: "alice".into(),
        dir,
    };
    let me: Value = serde_json::from_slice(&whoami(&d, &alice).stdout).unwrap();
    assert_eq!(me["user"]["name"], "alice");
    assert_eq!(me["user"]["role"], "analyst");
    assert_eq!(me["user"]["kind"], "user");
    let serial = me["cert_serial"].as_str().unwrap().to_string();
    assert!(!serial.is_empty());

    let again = d.try_login(code, &d.dir.path().join("mallory"));
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already been used"),
        "{}",
        stderr(&again)
    );
    let unknown = d.try_login("not-a-code", &d.dir.path().join("mallory2"));
    assert!(
        stderr(&unknown).contains("unknown invite code"),
        "{}",
        stderr(&unknown)
    );

    let audit = d.ctl_list(&["audit"]);
    let entries = audit.as_array().unwrap();
    let login = entries
        .iter()
        .find(|e| e["action"] == "user.login" && e["outcome"] == "ok");
    let login = login.expect("the login is audited");
    assert_eq!(login["actor"], "alice");
    assert_eq!(login["detail"]["cert_serial"], serial.as_str());
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "user.invite" && e["actor"] == "admin")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "user.login" && e["outcome"] != "ok"),
        "the reused code is audited as refused"
    );
}

/// Every admin RPC, called by every role: allowed exactly when the role holds the RPC's
/// permission; a refusal is PermissionDenied naming the permission, and audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_is_allowed_or_refused_by_role() {
    let d = started();
    for role in Role::ALL {
        let m = d.member(&format!("m-{role}"), role.name(), &[]);
        for (rpc, needed) in ADMIN_RPCS {
            let ch = channel(&m.credential()).await.unwrap();
            let status = raw_call(ch, rpc, matches!(*rpc, "TailEvents" | "DownloadFile")).await;
            if role.allows(*needed) {
                assert!(
                    !matches!(
                        status.code(),
                        Code::PermissionDenied | Code::Unauthenticated
                    ),
                    "{role} may call {rpc}: {status:?}"
                );
            } else {
                assert_eq!(
                    status.code(),
                    Code::PermissionDenied,
                    "{role} {rpc}: {status:?}"
                );
                let want = format!("permission {needed} is required");
                assert!(status.message().contains(&want), "{role} {rpc}: {status:?}");
            }
        }
    }
    let audit = d.ctl_list(&["audit", "--limit", "10000"]);
    let refused = audit.as_array().unwrap().iter().any(|e| {
        e["action"] == "permission.refused"
            && e["actor"] == "m-viewer"
            && e["target"] == "rpc:InviteUser"
            && e["detail"]["cert_serial"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
    });
    assert!(
        refused,
        "refused permission checks are audited with the serial"
    );
}

#[test]
fn refusals_with_the_real_binaries_name_the_missing_permission() {
    let d = started();
    let r = d.member("rita", "responder", &[]);
    let invite = d.try_ctl_as(
        &r.credential(),
        &["users", "invite", "x", "--role", "viewer"],
    );
    assert!(!invite.status.success());
    assert!(
        stderr(&invite).contains("permission manage_users is required"),
        "{}",
        stderr(&invite)
    );
    let rule = d.dir.path().join("r.yml");
    std::fs::write(&rule, "title: x\n").unwrap();
    let import = d.try_ctl_as(
        &r.credential(),
        &["rules", "import", rule.to_str().unwrap()],
    );
    assert!(
        stderr(&import).contains("permission manage_detection is required"),
        "{}",
        stderr(&import)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_closes_open_streams_and_revoking_is_final() {
    let d = started();
    let bob = d.member("bob", "viewer", &[]);
    let mut client = AdminServiceClient::new(channel(&bob.credential()).await.unwrap());
    // The stream is open once its response has arrived.
    let mut tail = client
        .tail_events(TailEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    d.ctl(&["users", "disable", "bob"]);
    let ended = tokio::time::timeout(Duration::from_secs(10), tail.message()).await;
    let status = ended.expect("the stream ends at once").unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("disabled"), "{status:?}");
    assert!(
        !whoami(&d, &bob).status.success(),
        "the next handshake is refused"
    );

    d.ctl(&["users", "enable", "bob"]);
    assert!(whoami(&d, &bob).status.success());
    d.ctl(&["users", "revoke", "bob"]);
    assert!(!whoami(&d, &bob).status.success());
    let back = d.try_ctl(&["users", "enable", "bob"]);
    assert!(
        stderr(&back).contains("revocation is final"),
        "{}",
        stderr(&back)
    );
    let state = d.ctl_json(&["users", "show", "bob"]);
    assert_eq!(state["state"], "revoked");
}

#[test]
fn the_last_admin_cannot_be_disabled_revoked_or_demoted() {
    let d = started();
    for args in [
        &["users", "disable", "admin"][..],
        &["users", "revoke", "admin"],
        &["users", "set-role", "admin", "viewer"],
    ] {
        let out = d.try_ctl(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains("without an enabled admin"),
            "{}",
            stderr(&out)
        );
    }
    let carol = d.member("carol", "admin", &[]);
    d.ctl(&["users", "disable", "admin"]);
    let demote = d.try_ctl_as(
        &carol.credential(),
        &["users", "set-role", "carol", "viewer"],
    );
    assert!(
        stderr(&demote).contains("without an enabled admin"),
        "{}",
        stderr(&demote)
    );
}

#[test]
fn a_service_account_cannot_decide_an_approval() {
    let d = started();
    let soar = d.member("soar", "admin", &["--service"]);
    let me: Value = serde_json::from_slice(&whoami(&d, &soar).stdout).unwrap();
    assert_eq!(me["user"]["kind"], "service");
    let out = d.try_ctl_as(
        &soar.credential(),
        &["approvals", "approve", "some-approval"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("only a person decides"),
        "{}",
        stderr(&out)
    );
}

/// Certificates renew when used past half their life; an unused one expires and is refused,
/// and so is a principal past its own expiry.
#[test]
fn credentials_renew_when_used_and_expire_when_not() {
    let mut d = Deployment::loopback("[people]\ncredential_ttl_secs = 4\n");
    let dave = d.member("dave", "viewer", &[]);
    let before = std::fs::read(dave.dir.join("cert.pem")).unwrap();
    let out = whoami(&d, &dave);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("credential renewed"),
        "{}",
        stderr(&out)
    );
    let cert = std::fs::read(dave.dir.join("cert.pem")).unwrap();
    assert_ne!(before, cert, "a new certificate replaced the old one");

    let expires_ms = cert_expiry(&cert);
    while cordon_proto::time::now_ms() <= expires_ms + 1000 {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !whoami(&d, &dave).status.success(),
        "an expired certificate is refused"
    );

    d.configure_controller("[people]\ncredential_ttl_secs = 3600\n");
    let until = (cordon_proto::time::now_ms() + 3000).to_string();
    let eve = d.member("eve", "viewer", &["--expires", &until]);
    assert!(whoami(&d, &eve).status.success());
    while cordon_proto::time::now_ms() <= until.parse::<i64>().unwrap() {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !whoami(&d, &eve).status.success(),
        "an expired principal is refused"
    );
    assert_eq!(d.ctl_json(&["users", "show", "eve"])["state"], "expired");
}

fn cert_expiry(pem: &[u8]) -> i64 {
    let der = cordon_controller::ca::pem_to_der(std::str::from_utf8(pem).unwrap()).unwrap();
    cordon_controller::ca::peer_identity(&der).unwrap().1
}

/// A certificate for `cordon://user/admin` from another CA gets nowhere.
#[test]
fn a_forged_admin_certificate_is_refused() {
    let d = started();
    let forger = d.dir.path().join("forger");
    std::fs::create_dir_all(&forger).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::default();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::default();
    leaf.subject_alt_names = vec![rcgen::SanType::URI(
        "cordon://user/admin".try_into().unwrap(),
    )];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(forger.join("cert.pem"), cert.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(forger.join("key.pem"), key.serialize_pem()).unwrap();
    let real = d.data_dir.join("admin.toml");
    let text = std::fs::read_to_string(&real).unwrap();
    let mut cfg: toml::Table = text.parse().unwrap();
    cfg.insert(
        "cert".into(),
        forger.join("cert.pem").display().to_string().into(),
    );
    cfg.insert(
        "key".into(),
        forger.join("key.pem").display().to_string().into(),
    );
    let file = forger.join("credential.toml");
    std::fs::write(&file, toml::to_string(&cfg).unwrap()).unwrap();
    let out = d.try_ctl_as(&file, &["users", "list"]);
    assert!(
        !out.status.success(),
        "forged: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Refused at the handshake (the file itself is read and used), not on some other way.
    assert!(stderr(&out).contains("transport error"), "{}", stderr(&out));
    assert!(d.ctl_list(&["users", "list"]).as_array().unwrap().len() == 1);
}

#[test]
fn an_expired_invite_code_is_refused() {
    let d = Deployment::loopback("[people]\ninvite_ttl_secs = 1\n");
    let invite = d.invite("late", "viewer", &[]);
    let expires = invite["code_expires_at_ms"].as_i64().unwrap();
    while cordon_proto::time::now_ms() <= expires {
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = d.try_login(invite["code"].as_str().unwrap(), &d.dir.path().join("late"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invite code has expired"),
        "{}",
        stderr(&out)
    );
    assert!(!d.dir.path().join("late/credential.toml").exists());
}
