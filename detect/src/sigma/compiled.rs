//! What a rule's detection compiles to: a boolean expression over leaves, each leaf a test of
//! one field. Literal text is kept apart (`literals`) so the rule set can put every rule's
//! literals for a field into one Aho-Corasick automaton and hand back a pattern id for each.

use std::net::IpAddr;

use regex::Regex;

use super::value::Anchor;

#[derive(Debug, Clone)]
pub(crate) struct Detection {
    /// The Cordon category the rule runs on (`process_creation`, `file_event`, `network_connection` or `dns_query`).
    pub category: &'static str,
    /// The field names the leaves refer to, by index.
    pub fields: Vec<String>,
    pub literals: Vec<Literal>,
    pub leaves: Vec<Leaf>,
    pub expr: Expr,
}

/// A literal to find in a field's value: folded to lower case unless `cased`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Literal {
    pub field: usize,
    pub text: String,
    pub cased: bool,
    pub anchor: Anchor,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// At least N of the list (`N of x*` for N > 1).
    AtLeast(usize, Vec<Expr>),
    Leaf(usize),
}

#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub field: usize,
    pub test: Test,
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// The value matches any group (every group with `all`); a group matches when any of its
    /// alternatives does (a value's windash or base64offset variants are alternatives).
    /// `when_absent`: the result for an absent field (true only through a `null` value).
    Values {
        groups: Vec<Vec<Matcher>>,
        all: bool,
        when_absent: bool,
    },
    /// `|exists: true` / `false`.
    Exists(bool),
}

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// Any present value (`*`, or an empty `contains`).
    Any,
    /// The empty string (also what `null` matches on a present field).
    Empty,
    /// `literals[i]` occurs at its anchor.
    Lit(usize),
    /// A regex on the value (`cased`) or on its lower-cased form; `trigger` is a literal that
    /// must occur for it to match (the longest literal run of a wildcard pattern).
    Regex {
        re: Regex,
        cased: bool,
        trigger: Option<usize>,
    },
    Cidr(Cidr),
    Num(Cmp, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Cmp {
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Cmp::Lt => value < bound,
            Cmp::Lte => value <= bound,
            Cmp::Gt => value > bound,
            Cmp::Gte => value >= bound,
        }
    }
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (
                a.trim().parse::<IpAddr>().ok()?,
                l.trim().parse::<u8>().ok()?,
            ),
            None => {
                let a = s.trim().parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Cidr { net: addr, len })
    }

    pub fn contains(&self, text: &str) -> bool {
        let Ok(ip) = text.trim().parse::<IpAddr>() else {
            return false;
        };
        let (a, b, bits) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (
                u128::from(u32::from(n)) << 96,
                u128::from(u32::from(i)) << 96,
                self.len,
            ),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), self.len),
            (IpAddr::V4(n), IpAddr::V6(i)) => match i.to_ipv4_mapped() {
                Some(i) => (
                    u128::from(u32::from(n)) << 96,
                    u128::from(u32::from(i)) << 96,
                    self.len,
                ),
                None => return false,
            },
            (IpAddr::V6(_), IpAddr::V4(_)) => return false,
        };
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(bits))
        };
        a & mask == b & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3"));
        assert!(!n.contains("11.1.2.3"));
        assert!(!n.contains("not an ip"));
        assert!(n.contains("::ffff:10.9.9.9"));
        let v6 = Cidr::parse("fe80::/10").unwrap();
        assert!(v6.contains("fe80::1"));
        assert!(!v6.contains("2001:db8::1"));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("1.2.3.4"));
        assert!(Cidr::parse("1.2.3.4").unwrap().contains("1.2.3.4"));
        assert!(Cidr::parse("1.2.3.0/33").is_none());
    }
}
