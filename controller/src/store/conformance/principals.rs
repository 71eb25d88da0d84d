//! The contract of the principal aggregate: an invite creates its principal once, its code is
//! redeemed once before its expiry, changes apply except where they would leave no enabled
//! admin or touch a revoked principal, and credentials are recorded only for those who may
//! act.

use crate::policy::people::{Inactive, InviteRefusal, Kind};
use crate::policy::roles::Role;
use crate::store::{ChangeRefusal, Invitation, PrincipalChange, Principals};

fn invitation(name: &str, role: Role, code: &str, code_expires_at_ms: i64) -> Invitation {
    Invitation {
        name: name.into(),
        kind: Kind::User,
        role,
        expires_at_ms: None,
        created_by: "admin".into(),
        code_hash: code.into(),
        code_expires_at_ms,
    }
}

/// A store starts with the first admin; an invite makes its principal once (names are unique
/// across kinds); a code is redeemed once, before its expiry, and records the serial.
pub async fn invites<S: Principals>(s: &S) {
    let all = s.principals().await.expect("list");
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].name.as_str(), all[0].standing.role),
        ("admin", Role::Admin)
    );

    assert!(
        s.invite(invitation("alice", Role::Analyst, "c1", 100), 10)
            .await
            .expect("invite")
    );
    let mut again = invitation("alice", Role::Admin, "c2", 100);
    again.kind = Kind::Service;
    assert!(
        !s.invite(again, 11).await.expect("invite"),
        "the name is taken"
    );
    assert_eq!(s.invited_name("c2".into()).await.expect("lookup"), None);
    assert_eq!(
        s.invited_name("c1".into())
            .await
            .expect("lookup")
            .as_deref(),
        Some("alice")
    );

    let late = s
        .redeem_invite("c1".into(), "s0".into(), 100)
        .await
        .expect("redeem");
    assert_eq!(late, Err(InviteRefusal::Expired));
    let row = s
        .redeem_invite("c1".into(), "s1".into(), 99)
        .await
        .expect("redeem");
    let row = row.expect("redeemed");
    assert_eq!(
        (row.cert_serial.as_str(), row.last_login_ms),
        ("s1", Some(99))
    );
    assert_eq!(row.standing.role, Role::Analyst);
    assert_eq!(row.created_by, "admin");
    let twice = s
        .redeem_invite("c1".into(), "s2".into(), 50)
        .await
        .expect("redeem");
    assert_eq!(twice, Err(InviteRefusal::Used));
    let unknown = s
        .redeem_invite("zz".into(), "s3".into(), 50)
        .await
        .expect("redeem");
    assert_eq!(unknown, Err(InviteRefusal::Unknown));
}

/// State, role and password changes apply; the last enabled admin stays; revocation is final
/// and stops credentials being recorded.
pub async fn changes<S: Principals>(s: &S) {
    let change = |name: &str, c: PrincipalChange| s.change_principal(name.into(), c, 5);
    let last = change("admin", PrincipalChange::Disable)
        .await
        .expect("change");
    assert!(matches!(last, Err(ChangeRefusal::LastAdmin(_))));
    let demote = change("admin", PrincipalChange::SetRole(Role::Viewer));
    assert!(matches!(
        demote.await.expect("change"),
        Err(ChangeRefusal::LastAdmin(_))
    ));

    assert!(
        s.invite(invitation("bob", Role::Admin, "b", 100), 1)
            .await
            .expect("invite")
    );
    let off = change("admin", PrincipalChange::Disable)
        .await
        .expect("change")
        .expect("ok");
    assert!(!off.standing.enabled);
    let bob_last = change("bob", PrincipalChange::Revoke)
        .await
        .expect("change");
    assert!(matches!(bob_last, Err(ChangeRefusal::LastAdmin(_))));
    change("admin", PrincipalChange::Enable)
        .await
        .expect("change")
        .expect("ok");

    let pw = change("bob", PrincipalChange::SetPassword("$argon2id$x".into()));
    assert!(pw.await.expect("change").expect("ok").has_password);
    let gone = change("bob", PrincipalChange::Revoke)
        .await
        .expect("change")
        .expect("ok");
    assert_eq!(gone.standing.revoked_at_ms, Some(5));
    let back = change("bob", PrincipalChange::Enable)
        .await
        .expect("change");
    assert_eq!(back, Err(ChangeRefusal::Revoked("bob".into())));
    let renewed = s
        .record_credential("bob".into(), "s9".into(), 6)
        .await
        .expect("record");
    assert_eq!(renewed.map(|_| ()), Err(Inactive::Revoked));
    let nobody = change("nobody", PrincipalChange::Enable)
        .await
        .expect("change");
    assert_eq!(nobody, Err(ChangeRefusal::Unknown("nobody".into())));

    let fresh = s
        .record_credential("admin".into(), "s10".into(), 7)
        .await
        .expect("record");
    assert_eq!(fresh.expect("recorded").cert_serial, "s10");
    let stored = s
        .principal("admin".into())
        .await
        .expect("get")
        .expect("admin");
    assert_eq!(
        (stored.cert_serial.as_str(), stored.last_login_ms),
        ("s10", Some(7))
    );
}

/// A sign-in reads the standing, the password hash and the TOTP secret as last set; an
/// unknown name has none.
pub async fn sign_in_secrets<S: Principals>(s: &S) {
    assert_eq!(s.sign_in_secrets("nobody".into()).await.expect("get"), None);
    assert!(
        s.invite(invitation("carol", Role::Viewer, "k", 100), 1)
            .await
            .expect("invite")
    );
    let fresh = s.sign_in_secrets("carol".into()).await.expect("get");
    let fresh = fresh.expect("carol");
    assert_eq!((fresh.password_hash, fresh.totp_secret), (None, None));
    assert_eq!(fresh.standing.role, Role::Viewer);

    let change = |c: PrincipalChange| s.change_principal("carol".into(), c, 5);
    change(PrincipalChange::SetPassword("$argon2id$y".into()))
        .await
        .expect("change")
        .expect("ok");
    let with = change(PrincipalChange::SetTotp(Some("JBSWY3DPEHPK3PXP".into())));
    assert!(with.await.expect("change").expect("ok").has_totp);
    change(PrincipalChange::Disable)
        .await
        .expect("change")
        .expect("ok");
    let set = s.sign_in_secrets("carol".into()).await.expect("get");
    let set = set.expect("carol");
    assert_eq!(set.password_hash.as_deref(), Some("$argon2id$y"));
    assert_eq!(set.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
    assert!(
        !set.standing.enabled,
        "the standing is read with the secrets"
    );

    let without = change(PrincipalChange::SetTotp(None));
    assert!(!without.await.expect("change").expect("ok").has_totp);
    let cleared = s.sign_in_secrets("carol".into()).await.expect("get");
    assert_eq!(cleared.expect("carol").totp_secret, None);
}
