//! Text put into a URL the pages write (a path segment such as a rule's id, a query value):
//! percent-encoded, so any id or filter reaches the handler as it was.

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reserved_characters_are_encoded() {
        assert_eq!(super::encode("a/b c&é~"), "a%2Fb%20c%26%C3%A9~");
    }
}
