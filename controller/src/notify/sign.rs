//! Webhook signatures, for senders and receivers alike.
//!
//! Every request carries:
//! - `X-Cordon-Timestamp: T`, the Unix time in seconds when the attempt was made (decimal);
//! - `X-Cordon-Signature: sha256=HEX`, the lowercase hex HMAC-SHA256, keyed with the secret
//!   file's contents (surrounding whitespace removed), of the bytes `T`, `.`, then the exact
//!   request body: `"{timestamp}.{body}"`;
//! - `X-Cordon-Delivery: ID`, the same for every attempt of one send (not signed; it lets a
//!   receiver drop a retry of a request it already handled).
//!
//! A receiver recomputes the HMAC over the raw body it received (before any JSON parsing),
//! compares in constant time ([`verify`] does), and rejects timestamps more than a few minutes
//! from its own clock: the signature binds the timestamp, so an old request cannot be replayed
//! with a fresh one. Each retry is signed anew with its own timestamp.

use ring::hmac;

pub const SIGNATURE_HEADER: &str = "x-cordon-signature";
pub const TIMESTAMP_HEADER: &str = "x-cordon-timestamp";
pub const DELIVERY_HEADER: &str = "x-cordon-delivery";

/// The bytes that are signed: `"{timestamp}.{body}"`.
pub fn signed_material(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + 1 + body.len());
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'.');
    m.extend_from_slice(body);
    m
}

/// The `X-Cordon-Signature` value for `body` sent at `timestamp`.
pub fn sign(key: &hmac::Key, timestamp: &str, body: &[u8]) -> String {
    let tag = hmac::sign(key, &signed_material(timestamp, body));
    format!("sha256={}", hex::encode(tag.as_ref()))
}

/// Checks a received signature header against the secret, in constant time. Does not judge
/// the timestamp's age: the receiver compares it with its own clock.
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(tag) = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed_material(timestamp, body), &tag).is_ok()
}

/// The HMAC key for a secret.
pub fn key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_signature_matches_an_independent_hmac() {
        // Python: hmac.new(b"0123456789abcdef", b'1700000000.{"a":1}', "sha256").hexdigest()
        let want = "sha256=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23";
        let got = sign(&key(b"0123456789abcdef"), "1700000000", br#"{"a":1}"#);
        assert_eq!(got, want);
        assert!(verify(
            b"0123456789abcdef",
            "1700000000",
            br#"{"a":1}"#,
            &got
        ));
    }

    #[test]
    fn notify_signature_fails_for_another_secret_body_or_timestamp() {
        let secret = b"0123456789abcdef";
        let sig = sign(&key(secret), "1700000000", b"{}");
        assert!(verify(secret, "1700000000", b"{}", &sig));
        assert!(!verify(b"0123456789abcdeX", "1700000000", b"{}", &sig));
        assert!(!verify(secret, "1700000001", b"{}", &sig));
        assert!(!verify(secret, "1700000000", b"{ }", &sig));
        assert!(!verify(
            secret,
            "1700000000",
            b"{}",
            &sig.replace("sha256=", "")
        ));
        assert!(!verify(secret, "1700000000", b"{}", "sha256=zz"));
    }
}
