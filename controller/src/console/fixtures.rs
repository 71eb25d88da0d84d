//! What the console's unit tests share: a signed-in person of a given role.

use super::guard::Caller;
use crate::core::Admin;
use crate::policy::people::Kind;
use crate::policy::roles::Role;

/// `name`, signed in with `role`, whose pages carry the CSRF token `c0ffee`.
pub fn caller(name: &str, role: Role) -> Caller {
    Caller {
        admin: Admin {
            name: name.into(),
            kind: Kind::User,
            role,
            serial: "console:00".into(),
        },
        session: "s".into(),
        csrf: "c0ffee".into(),
    }
}
