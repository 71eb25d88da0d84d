//! Console sessions, held in the controller's memory: a random 256-bit id in a cookie
//! (`__Host-cordon`: Secure, HttpOnly, SameSite=Strict, Path=/), a CSRF token of its own, an
//! idle expiry and an absolute one (`[console]`). A restart ends every session.

use crate::config::ConsoleConfig;
use ring::digest::{SHA256, digest};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The session cookie's name; the `__Host-` prefix makes browsers insist on Secure, Path=/
/// and no Domain.
pub const COOKIE: &str = "__Host-cordon";
/// The cookie that binds the sign-in form's CSRF token to the browser that loaded it (there
/// is no session yet).
pub const SIGN_IN_COOKIE: &str = "__Host-cordon-login";
/// Most sessions held at once; past it the oldest ends.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in person's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub name: String,
    pub csrf: String,
    /// What the session's actions carry as their serial in the audit log.
    pub serial: String,
    created: Instant,
    used: Instant,
}

/// What a session id leads to.
#[derive(Debug)]
pub enum Lookup {
    Live(Session),
    /// It ended now, for the reason given (`idle` or `expired`).
    Ended(Session, &'static str),
    Missing,
}

pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle: Duration,
    max: Duration,
}

impl Sessions {
    pub fn new(cfg: &ConsoleConfig) -> Self {
        Self {
            map: Mutex::default(),
            idle: Duration::from_secs(cfg.session_idle_secs),
            max: Duration::from_secs(cfg.session_max_secs),
        }
    }

    /// Records a session for `name` under `id` (from [`new_id`]); returns it.
    pub fn open(&self, id: &str, name: &str) -> Session {
        let now = Instant::now();
        let session = Session {
            name: name.to_string(),
            csrf: random_hex(),
            serial: serial_for(id),
            created: now,
            used: now,
        };
        let mut map = self.map();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| self.why_ended(s, now).is_none());
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.to_string(), session.clone());
        session
    }

    /// The session `id` names, marked as used now if it is still live.
    pub fn lookup(&self, id: &str) -> Lookup {
        let now = Instant::now();
        let mut map = self.map();
        let Some(s) = map.get_mut(id) else {
            return Lookup::Missing;
        };
        if let Some(why) = self.why_ended(s, now) {
            let s = map.remove(id).map(|s| Lookup::Ended(s, why));
            return s.unwrap_or(Lookup::Missing);
        }
        s.used = now;
        Lookup::Live(s.clone())
    }

    /// Whether session `id` is live, without counting this as its use.
    pub fn is_live(&self, id: &str) -> bool {
        let now = Instant::now();
        let map = self.map();
        map.get(id)
            .is_some_and(|s| self.why_ended(s, now).is_none())
    }

    /// Ends session `id`; returns it if it existed.
    pub fn end(&self, id: &str) -> Option<Session> {
        self.map().remove(id)
    }

    fn why_ended(&self, s: &Session, now: Instant) -> Option<&'static str> {
        if now.saturating_duration_since(s.created) >= self.max {
            Some("expired")
        } else if now.saturating_duration_since(s.used) >= self.idle {
            Some("idle")
        } else {
            None
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A new session id: 256 random bits, in hex.
pub fn new_id() -> String {
    random_hex()
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The audit log's name for a session: `console:` and the start of its id's SHA-256, so one
/// session's actions can be told apart without the id (a bearer secret) being written down.
pub fn serial_for(id: &str) -> String {
    let hash = digest(&SHA256, id.as_bytes());
    format!("console:{}", hex::encode(&hash.as_ref()[..8]))
}

/// The `Set-Cookie` value that hands a browser cookie `name` (its session, or the sign-in
/// form's token).
pub fn cookie(name: &str, value: &str) -> String {
    format!("{name}={value}; Secure; HttpOnly; SameSite=Strict; Path=/")
}

/// A new CSRF token for the sign-in form.
pub fn sign_in_token() -> String {
    random_hex()
}

/// The `Set-Cookie` value that makes a browser forget its session.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; Max-Age=0; Secure; HttpOnly; SameSite=Strict; Path=/")
}

/// The session id in a request's `Cookie` headers, if any.
pub fn from_headers(headers: &http::HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE)
}

/// The value of cookie `name` in a request's `Cookie` headers, if it is there and not empty.
pub fn cookie_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// Compares two tokens in time that depends only on their lengths.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(idle: u64, max: u64) -> Sessions {
        Sessions::new(&ConsoleConfig {
            listen: None,
            session_idle_secs: idle,
            session_max_secs: max,
        })
    }

    #[test]
    fn a_session_lives_until_idle_or_ended() {
        let s = sessions(60, 600);
        let id = new_id();
        assert_eq!(id.len(), 64);
        let opened = s.open(&id, "alice");
        assert!(opened.serial.starts_with("console:") && !opened.serial.contains(&id[..16]));
        let Lookup::Live(live) = s.lookup(&id) else {
            panic!("live")
        };
        assert_eq!((live.name.as_str(), live.csrf.len()), ("alice", 64));
        assert!(matches!(s.lookup(&new_id()), Lookup::Missing));
        assert!(s.end(&id).is_some());
        assert!(matches!(s.lookup(&id), Lookup::Missing));
    }

    #[test]
    fn sessions_end_when_idle_and_at_their_maximum() {
        let s = sessions(60, 600);
        let id = new_id();
        s.open(&id, "alice");
        s.map().get_mut(&id).unwrap().used -= Duration::from_secs(61);
        assert!(matches!(s.lookup(&id), Lookup::Ended(_, "idle")));
        assert!(matches!(s.lookup(&id), Lookup::Missing), "ended for good");
        s.open(&id, "alice");
        s.map().get_mut(&id).unwrap().created -= Duration::from_secs(601);
        assert!(matches!(s.lookup(&id), Lookup::Ended(_, "expired")));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_tokens_compare() {
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=1; __Host-cordon=abc; b=2".parse().unwrap(),
        );
        assert_eq!(from_headers(&h).as_deref(), Some("abc"));
        h.clear();
        h.append(http::header::COOKIE, "__Host-cordon=".parse().unwrap());
        assert_eq!(from_headers(&h), None);
        let c = cookie(COOKIE, "abc");
        for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("a", "ab"));
    }
}
