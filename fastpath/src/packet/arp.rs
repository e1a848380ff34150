//! ARP (RFC 826): enough to recognise and inspect a request or reply, which
//! Baton passes through untouched.

use super::error::{Error, Result};

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const ADDRESSES: usize = 8;
}

/// Length of the fixed part, before the variable-size addresses.
pub const FIXED_LEN: usize = field::ADDRESSES;

/// ARP operation codes.
pub mod operation {
    /// Who has ...?
    pub const REQUEST: u16 = 1;
    /// ... is at.
    pub const REPLY: u16 = 2;
}

/// A view of an ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without validation.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` after checking that the fixed part and all four
    /// addresses are present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < FIXED_LEN || len < p.total_len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    fn read_u16(&self, range: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        self.read_u16(field::HTYPE)
    }

    /// Protocol type (an EtherType; 0x0800 for IPv4).
    pub fn protocol_type(&self) -> u16 {
        self.read_u16(field::PTYPE)
    }

    /// Length of a hardware address.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Length of a protocol address.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation (see [`operation`]).
    pub fn operation(&self) -> u16 {
        self.read_u16(field::OPER)
    }

    /// Length of the packet as its address lengths describe it.
    pub fn total_len(&self) -> usize {
        let h = usize::from(self.hardware_len());
        let p = usize::from(self.protocol_len());
        FIXED_LEN + 2 * (h + p)
    }

    fn address(&self, index: usize) -> &[u8] {
        let h = usize::from(self.hardware_len());
        let p = usize::from(self.protocol_len());
        let lens = [h, p, h, p];
        let start = field::ADDRESSES + lens[..index].iter().sum::<usize>();
        &self.buffer.as_ref()[start..start + lens[index]]
    }

    /// Sender hardware address.
    pub fn sender_hardware_addr(&self) -> &[u8] {
        self.address(0)
    }

    /// Sender protocol address.
    pub fn sender_protocol_addr(&self) -> &[u8] {
        self.address(1)
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> &[u8] {
        self.address(2)
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> &[u8] {
        self.address(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Who has 198.18.0.1? Tell 198.18.0.2.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, 0x02, 0, 0, 0, 0, 2, 198, 18, 0, 2, 0, 0, 0, 0,
        0, 0, 198, 18, 0, 1,
    ];

    #[test]
    fn request_fields() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!(p.operation(), operation::REQUEST);
        assert_eq!(p.sender_hardware_addr(), &[2, 0, 0, 0, 0, 2]);
        assert_eq!(p.sender_protocol_addr(), &[198, 18, 0, 2]);
        assert_eq!(p.target_hardware_addr(), &[0; 6]);
        assert_eq!(p.target_protocol_addr(), &[198, 18, 0, 1]);
    }

    #[test]
    fn short_addresses_rejected() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut big = REQUEST;
        big[4] = 255;
        assert_eq!(
            ArpPacket::new_checked(&big[..]).unwrap_err(),
            Error::Truncated
        );
    }
}
