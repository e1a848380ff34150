//! Ethernet MAC addresses.

use std::fmt;
use std::str::FromStr;

use crate::error::ValueError;
use crate::value_serde::string_serde;

/// A 48-bit Ethernet MAC address, written `02:00:00:00:00:01`.
///
/// Parsing accepts either case; `Display` writes lower case. Parsing only
/// checks the syntax: where a key names one station (a port or a peer),
/// use [`MacAddr::parse_unicast`] or [`MacAddr::check_unicast`] so that a
/// group address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr([u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub const fn new(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Parses `xx:xx:xx:xx:xx:xx` (exactly two hex digits per octet).
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let malformed = || {
            ValueError::new(format!(
                "`{text}` is not a MAC address: expected six colon-separated hex octets, \
                 e.g. 02:00:00:00:00:01"
            ))
        };
        let mut octets = [0u8; 6];
        let mut fields = text.split(':');
        for octet in &mut octets {
            let field = fields.next().ok_or_else(malformed)?;
            if field.len() != 2 || !field.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(malformed());
            }
            *octet = u8::from_str_radix(field, 16).map_err(|_| malformed())?;
        }
        if fields.next().is_some() {
            return Err(malformed());
        }
        Ok(MacAddr(octets))
    }

    /// Parses a MAC that must name a single station: not a group
    /// (multicast or broadcast) address and not all zeros.
    pub fn parse_unicast(text: &str) -> Result<Self, ValueError> {
        let mac = Self::parse(text)?;
        mac.check_unicast()?;
        Ok(mac)
    }

    /// Refuses addresses that cannot belong to one station.
    pub fn check_unicast(&self) -> Result<(), ValueError> {
        if self.is_multicast() {
            let kind = if self.is_broadcast() {
                "the broadcast address"
            } else {
                "a multicast address (the low bit of the first octet is set)"
            };
            return Err(ValueError::new(format!(
                "`{self}` is {kind}; a station needs a unicast MAC, e.g. 02:00:00:00:00:01"
            )));
        }
        if self.is_zero() {
            return Err(ValueError::new(format!(
                "`{self}` is all zeros; a station needs a unicast MAC, e.g. 02:00:00:00:00:01"
            )));
        }
        Ok(())
    }

    /// Group address: the I/G bit (low bit of the first octet) is set.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Unicast and not all zeros: usable as a port's or peer's own address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }

    /// The U/L bit is set: the address was assigned locally, not by a vendor.
    pub const fn is_locally_administered(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl FromStr for MacAddr {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MacAddr::parse(s)
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

string_serde!(
    MacAddr,
    "a MAC address string such as \"02:00:00:00:00:01\""
);

/// `#[serde(deserialize_with = "baton_config::mac::deserialize_unicast")]`
/// for keys that name one station.
pub fn deserialize_unicast<'de, D>(deserializer: D) -> Result<MacAddr, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let mac: MacAddr = serde::Deserialize::deserialize(deserializer)?;
    mac.check_unicast().map_err(serde::de::Error::custom)?;
    Ok(mac)
}

/// [`deserialize_unicast`] for an optional key.
pub fn deserialize_unicast_opt<'de, D>(deserializer: D) -> Result<Option<MacAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    deserialize_unicast(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lower_case() {
        let mac = MacAddr::parse("02:00:AB:cd:00:01").unwrap();
        assert_eq!(mac.octets(), [0x02, 0x00, 0xab, 0xcd, 0x00, 0x01]);
        assert_eq!(mac.to_string(), "02:00:ab:cd:00:01");
        assert!(mac.is_unicast());
        assert!(mac.is_locally_administered());
    }

    #[test]
    fn rejects_malformed() {
        for input in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02-00-00-00-00-01",
            "2:00:00:00:00:01",
            "002:00:00:00:00:01",
            "02:00:00:00:00:0g",
            "02:00:00:00:00:+1",
            "02:00:00:00:00:01:",
        ] {
            let err = MacAddr::parse(input).unwrap_err();
            assert!(
                err.to_string().contains("is not a MAC address"),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn unicast_refuses_group_and_zero_addresses() {
        assert!(MacAddr::parse_unicast("02:00:00:00:00:01").is_ok());
        let err = MacAddr::parse_unicast("01:00:5e:00:00:01").unwrap_err();
        assert!(err.to_string().contains("multicast"), "{err}");
        let err = MacAddr::parse_unicast("ff:ff:ff:ff:ff:ff").unwrap_err();
        assert!(err.to_string().contains("broadcast"), "{err}");
        let err = MacAddr::parse_unicast("00:00:00:00:00:00").unwrap_err();
        assert!(err.to_string().contains("all zeros"), "{err}");
    }
}
