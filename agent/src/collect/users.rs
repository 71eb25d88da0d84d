//! The host's local users from `/etc/passwd` (under the collection's root): names for uids,
//! and each user's home, for the collectors that look in every home directory.

use super::Host;

/// One line of /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Parses passwd's text; a malformed line is skipped.
pub fn parse(text: &str) -> Vec<User> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let [name, _, uid, gid, _, home, shell] = f.as_slice() else {
                return None;
            };
            Some(User {
                name: name.to_string(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: home.to_string(),
                shell: shell.to_string(),
            })
        })
        .collect()
}

/// The host's users (none if passwd cannot be read).
pub fn all(host: &Host) -> Vec<User> {
    std::fs::read_to_string(host.path("/etc/passwd"))
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// Each uid's name.
pub fn names(host: &Host) -> std::collections::HashMap<u32, String> {
    all(host).into_iter().map(|u| (u.uid, u.name)).collect()
}
