//! User names by uid, from the system's user database (NSS), remembered once looked up. An
//! unknown uid gives an empty name, also remembered.

use std::collections::HashMap;

/// Most names remembered; past it the cache starts again.
const MAX: usize = 4096;

#[derive(Debug, Default)]
pub struct UserNames {
    by_uid: HashMap<u32, String>,
}

impl UserNames {
    pub fn name(&mut self, uid: u32) -> String {
        if self.by_uid.len() >= MAX {
            self.by_uid.clear();
        }
        self.by_uid
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_default()
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_named_and_an_unknown_uid_is_empty() {
        let mut users = UserNames::default();
        assert_eq!(users.name(0), "root");
        assert_eq!(users.name(3_999_999_999), "");
    }
}
