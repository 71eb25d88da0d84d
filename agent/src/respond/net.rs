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
}
