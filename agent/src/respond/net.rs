//! Addresses as commands give them: `ADDR`, `ADDR/PREFIX`, and allowlist entries with an
//! optional port (`CIDR:PORT`, `[IPv6-CIDR]:PORT`). Parsed strictly, refused with a reason.

use std::fmt;
use std::net::IpAddr;

/// An address with a prefix length; a host address has the full length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(Self {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    pub fn is_host(&self) -> bool {
        self.prefix == if self.addr.is_ipv4() { 32 } else { 128 }
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `ip` lies in this network (always false across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_v4() && mask(ip, self.prefix) == self.addr
    }

    /// The first and last address as numbers (IPv4 in the low 32 bits).
    fn range(&self) -> (u128, u128) {
        let (start, bits) = match self.addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        };
        let host_bits = bits - u32::from(self.prefix);
        let span = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        (start, start + span)
    }
}

/// Whether `nets` together cover every address of one family (IPv4 if `v4`), however they
/// are split up: `0.0.0.0/1` and `128.0.0.0/1` cover IPv4 as `0.0.0.0/0` does.
pub fn cover_family(nets: &[Net], v4: bool) -> bool {
    let last = if v4 { u128::from(u32::MAX) } else { u128::MAX };
    let mut ranges: Vec<(u128, u128)> = nets
        .iter()
        .filter(|n| n.is_v4() == v4)
        .map(Net::range)
        .collect();
    ranges.sort_unstable();
    // The first address not covered by the ranges seen so far.
    let mut next = 0u128;
    for (start, end) in ranges {
        if start > next {
            return false;
        }
        if end >= last {
            return true;
        }
        next = next.max(end + 1);
    }
    false
}

/// Zeroes the host bits, so `10.1.2.3/8` means `10.0.0.0/8`.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// One allowlist entry of an isolation: a network, and optionally one TCP/UDP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allow {
    pub net: Net,
    pub port: Option<u16>,
}

impl Allow {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{s:?}: bad port {p:?}"))
        };
        if let Some(rest) = s.strip_prefix('[') {
            let (net, tail) = rest
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: missing ]"))?;
            let p = match tail.strip_prefix(':') {
                Some(p) => Some(port(p)?),
                None if tail.is_empty() => None,
                None => return Err(format!("{s:?}: expected :PORT after ]")),
            };
            return Ok(Self {
                net: Net::parse(net)?,
                port: p,
            });
        }
        // IPv4 with a port has exactly one ':'; a bare IPv6 has several.
        match s.matches(':').count() {
            1 => {
                let (net, p) = s.split_once(':').unwrap_or((s, ""));
                Ok(Self {
                    net: Net::parse(net)?,
                    port: Some(port(p)?),
                })
            }
            _ => Ok(Self {
                net: Net::parse(s)?,
                port: None,
            }),
        }
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.port, self.net.is_v4()) {
            (None, _) => write!(f, "{}", self.net),
            (Some(p), true) => write!(f, "{}:{p}", self.net),
            (Some(p), false) => write!(f, "[{}]:{p}", self.net),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_allow_entries_parse_strictly() {
        assert_eq!(Net::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Net::parse("fd00::1").unwrap().to_string(), "fd00::1");
        assert!(Net::parse("10.0.0.0/33").is_err());
        assert!(Net::parse("example.com").is_err());
        assert_eq!(
            Allow::parse("10.0.0.0/24:22").unwrap().to_string(),
            "10.0.0.0/24:22"
        );
        assert_eq!(
            Allow::parse("[fd00::/64]:443").unwrap().to_string(),
            "[fd00::/64]:443"
        );
        assert_eq!(Allow::parse("fd00::5").unwrap().port, None);
        assert!(Allow::parse("10.0.0.1:0").is_err());
        assert!(Allow::parse("10.0.0.1:99999").is_err());
        assert!(Allow::parse("[fd00::1]x").is_err());
    }

    fn nets(list: &[&str]) -> Vec<Net> {
        list.iter().map(|n| Net::parse(n).unwrap()).collect()
    }

    #[test]
    fn coverage_of_a_whole_family_is_found_however_it_is_split() {
        assert!(cover_family(&nets(&["0.0.0.0/0"]), true));
        assert!(!cover_family(&nets(&["0.0.0.0/0"]), false));
        assert!(cover_family(&nets(&["::/0"]), false));
        assert!(cover_family(&nets(&["128.0.0.0/1", "0.0.0.0/1"]), true));
        assert!(cover_family(
            &nets(&[
                "0.0.0.0/2",
                "64.0.0.0/2",
                "128.0.0.0/2",
                "192.0.0.0/3",
                "224.0.0.0/3"
            ]),
            true
        ));
        assert!(cover_family(
            &nets(&["8000::/1", "::/1", "fd00::/8"]),
            false
        ));
        // A gap, however small, is not coverage.
        assert!(!cover_family(
            &nets(&["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3"]),
            true
        ));
        assert!(!cover_family(&nets(&["0.0.0.0/1", "128.0.0.0/1"]), false));
        let mut all_but_one = nets(&["0.0.0.0/1"]);
        all_but_one.extend(nets(&[
            "128.0.0.0/2",
            "192.0.0.0/3",
            "224.0.0.0/4",
            "240.0.0.0/5",
        ]));
        assert!(!cover_family(&all_but_one, true));
        assert!(!cover_family(&[], true));
    }

    #[test]
    fn containment_of_an_address() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.231.0.1".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(!n.contains("::a00:1".parse().unwrap()));
        assert!(
            Net::parse("::/0")
                .unwrap()
                .contains("fd32::1".parse().unwrap())
        );
        assert!(
            !Net::parse("::/0")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
    }
}
