//! IPv4 interface addresses with a prefix length.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::error::ValueError;
use crate::value_serde::string_serde;

/// An IPv4 address with its prefix length, written `198.18.1.11/24`: an
/// interface address together with the subnet it sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, ValueError> {
        if prefix_len > 32 {
            return Err(ValueError::new(format!(
                "prefix length /{prefix_len} is out of range (0 to 32)"
            )));
        }
        Ok(Ipv4Cidr { addr, prefix_len })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    pub fn netmask(&self) -> Ipv4Addr {
        let bits = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        Ipv4Addr::from(bits)
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & u32::from(self.netmask()))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !u32::from(self.netmask()))
    }

    /// Refuses addresses an interface cannot usefully carry: unspecified,
    /// multicast, limited broadcast, or the network or broadcast address of
    /// its own subnet (/31 and /32 have neither).
    pub fn check_host_address(&self) -> Result<(), ValueError> {
        let addr = self.addr;
        let problem = if addr.is_unspecified() {
            "is the unspecified address"
        } else if addr.is_multicast() {
            "is a multicast address"
        } else if addr.is_broadcast() {
            "is the limited broadcast address"
        } else if self.prefix_len <= 30 && addr == self.network() {
            "is the network address of its subnet"
        } else if self.prefix_len <= 30 && addr == self.broadcast() {
            "is the broadcast address of its subnet"
        } else {
            return Ok(());
        };
        Err(ValueError::new(format!(
            "`{self}` {problem}; give the interface's own address, e.g. 198.18.1.11/24"
        )))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((addr, prefix)) = s.split_once('/') else {
            return Err(ValueError::new(format!(
                "`{s}` has no prefix length: write the address as CIDR, e.g. 198.18.1.11/24"
            )));
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| {
            ValueError::new(format!(
                "`{addr}` is not an IPv4 address (expected a.b.c.d in `{s}`)"
            ))
        })?;
        let prefix_len = match prefix.parse::<u8>() {
            Ok(len) if prefix.bytes().all(|b| b.is_ascii_digit()) => len,
            _ => {
                return Err(ValueError::new(format!(
                    "`/{prefix}` is not a prefix length (expected /0 to /32 in `{s}`)"
                )))
            }
        };
        Ipv4Cidr::new(addr, prefix_len)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

string_serde!(Ipv4Cidr, "an IPv4 CIDR string such as \"198.18.1.11/24\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_derives_subnet() {
        let cidr: Ipv4Cidr = "198.18.1.11/24".parse().unwrap();
        assert_eq!(cidr.addr(), Ipv4Addr::new(198, 18, 1, 11));
        assert_eq!(cidr.prefix_len(), 24);
        assert_eq!(cidr.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(cidr.network(), Ipv4Addr::new(198, 18, 1, 0));
        assert_eq!(cidr.broadcast(), Ipv4Addr::new(198, 18, 1, 255));
        assert_eq!(cidr.to_string(), "198.18.1.11/24");
        let all: Ipv4Cidr = "10.0.0.1/0".parse().unwrap();
        assert_eq!(all.netmask(), Ipv4Addr::UNSPECIFIED);
        let host: Ipv4Cidr = "10.0.0.1/32".parse().unwrap();
        assert_eq!(host.netmask(), Ipv4Addr::BROADCAST);
        assert!(host.check_host_address().is_ok());
    }

    #[test]
    fn rejects_malformed() {
        let cases = [
            ("198.18.1.11", "no prefix length"),
            ("198.18.1/24", "not an IPv4 address"),
            ("198.18.1.256/24", "not an IPv4 address"),
            ("198.18.1.11/33", "out of range"),
            ("198.18.1.11/", "not a prefix length"),
            ("198.18.1.11/+4", "not a prefix length"),
            ("198.18.1.11/24/1", "not a prefix length"),
        ];
        for (input, fragment) in cases {
            let err = input.parse::<Ipv4Cidr>().unwrap_err().to_string();
            assert!(err.contains(fragment), "{input}: {err}");
        }
    }

    #[test]
    fn host_address_check() {
        for (input, fragment) in [
            ("0.0.0.0/24", "unspecified"),
            ("224.0.0.1/24", "multicast"),
            ("198.18.1.0/24", "network address"),
            ("198.18.1.255/24", "broadcast address of its subnet"),
        ] {
            let cidr: Ipv4Cidr = input.parse().unwrap();
            let err = cidr.check_host_address().unwrap_err().to_string();
            assert!(err.contains(fragment), "{input}: {err}");
        }
        let p2p: Ipv4Cidr = "198.18.1.0/31".parse().unwrap();
        assert!(p2p.check_host_address().is_ok());
    }
}
