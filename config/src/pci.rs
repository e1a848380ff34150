//! PCI addresses of the NICs Baton can own.

use std::fmt;
use std::str::FromStr;

use crate::error::ValueError;
use crate::value_serde::string_serde;

/// A PCI device address, written `DDDD:BB:DD.F` (domain, bus, device,
/// function; hex). `BB:DD.F` is accepted on input and means domain 0000.
///
/// `Display` gives the normalised form DPDK uses as the ethdev name:
/// four-digit domain, lower-case hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    domain: u16,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// Highest device number on a bus (5 bits).
    pub const MAX_DEVICE: u8 = 0x1f;
    /// Highest function number of a device (3 bits).
    pub const MAX_FUNCTION: u8 = 7;

    /// Builds an address, checking the device and function ranges.
    pub fn new(domain: u16, bus: u8, device: u8, function: u8) -> Result<Self, ValueError> {
        if device > Self::MAX_DEVICE {
            return Err(ValueError::new(format!(
                "PCI device number {device:#04x} is out of range (at most {:#04x})",
                Self::MAX_DEVICE
            )));
        }
        if function > Self::MAX_FUNCTION {
            return Err(ValueError::new(format!(
                "PCI function number {function} is out of range (at most {})",
                Self::MAX_FUNCTION
            )));
        }
        Ok(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }

    pub fn domain(&self) -> u16 {
        self.domain
    }

    pub fn bus(&self) -> u8 {
        self.bus
    }

    pub fn device(&self) -> u8 {
        self.device
    }

    pub fn function(&self) -> u8 {
        self.function
    }
}

/// Parses exactly `digits` hex digits.
fn hex_field(text: &str, digits: usize) -> Option<u32> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

impl FromStr for PciAddress {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || {
            ValueError::new(format!(
                "`{s}` is not a PCI address: expected DDDD:BB:DD.F or BB:DD.F in hex, \
                 e.g. 0000:3b:00.0 (see `dpdk-devbind.py --status`)"
            ))
        };
        let (rest, function) = s.rsplit_once('.').ok_or_else(malformed)?;
        let fields: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match fields.as_slice() {
            [domain, bus, device] => (hex_field(domain, 4), *bus, *device),
            [bus, device] => (Some(0), *bus, *device),
            _ => return Err(malformed()),
        };
        let parts = (
            domain,
            hex_field(bus, 2),
            hex_field(device, 2),
            hex_field(function, 1),
        );
        let (Some(domain), Some(bus), Some(device), Some(function)) = parts else {
            return Err(malformed());
        };
        // Cannot truncate: the field widths above bound every value.
        #[allow(clippy::cast_possible_truncation)]
        let (domain, bus, device, function) =
            (domain as u16, bus as u8, device as u8, function as u8);
        PciAddress::new(domain, bus, device, function)
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

string_serde!(PciAddress, "a PCI address string such as \"0000:3b:00.0\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let cases = [
            ("0000:3b:00.0", "0000:3b:00.0"),
            ("3b:00.0", "0000:3b:00.0"),
            ("0001:AF:1F.7", "0001:af:1f.7"),
            ("ffff:ff:1f.7", "ffff:ff:1f.7"),
        ];
        for (input, want) in cases {
            let pci: PciAddress = input.parse().unwrap();
            assert_eq!(pci.to_string(), want, "{input}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for input in [
            "",
            "3b:00",
            "0:3b:00.0",
            "00000:3b:00.0",
            "0000:3b:0.0",
            "0000:3b:00.00",
            "0000:3g:00.0",
            "0000:0000:3b:00.0",
            " 3b:00.0",
            "+b:00.0",
        ] {
            let err = input.parse::<PciAddress>().unwrap_err();
            assert!(
                err.to_string().contains("is not a PCI address"),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn rejects_out_of_range_device_and_function() {
        let err = "0000:3b:20.0".parse::<PciAddress>().unwrap_err();
        assert!(err.to_string().contains("device number 0x20"), "{err}");
        let err = "0000:3b:00.8".parse::<PciAddress>().unwrap_err();
        assert!(err.to_string().contains("function number 8"), "{err}");
    }
}
