//! IPv4 headers (RFC 791), options and fragmentation fields included.

use std::net::Ipv4Addr;

use super::checksum::{self, ChecksumDelta};
use super::error::{Error, Result};

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LENGTH: Range<usize> = 2..4;
    pub const IDENTIFICATION: Range<usize> = 4..6;
    pub const FLAGS_FRAGMENT_OFFSET: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SOURCE: Range<usize> = 12..16;
    pub const DESTINATION: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = field::DESTINATION.end;

const FLAG_DONT_FRAGMENT: u16 = 0x4000;
const FLAG_MORE_FRAGMENTS: u16 = 0x2000;
const FRAGMENT_OFFSET_MASK: u16 = 0x1fff;

/// IP protocol numbers Baton looks at.
pub mod protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without validation.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after checking the version, the header length and the
    /// total length against the buffer. Bytes past the total length (Ethernet
    /// padding) are allowed and ignored.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::BadTotalLength);
        }
        if len < total_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, range: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn read_addr(&self, range: core::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[range];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Version (4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification bits.
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length: header plus payload, in bytes.
    pub fn total_len(&self) -> u16 {
        self.read_u16(field::TOTAL_LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        self.read_u16(field::IDENTIFICATION)
    }

    /// The DF flag.
    pub fn dont_frag(&self) -> bool {
        self.read_u16(field::FLAGS_FRAGMENT_OFFSET) & FLAG_DONT_FRAGMENT != 0
    }

    /// The MF flag.
    pub fn more_frags(&self) -> bool {
        self.read_u16(field::FLAGS_FRAGMENT_OFFSET) & FLAG_MORE_FRAGMENTS != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.read_u16(field::FLAGS_FRAGMENT_OFFSET) & FRAGMENT_OFFSET_MASK) << 3
    }

    /// Whether this packet is a fragment (first, middle or last) rather than
    /// a whole datagram.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload (see [`protocol`]).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        self.read_addr(field::SOURCE)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        self.read_addr(field::DESTINATION)
    }

    /// Header options (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// Whether the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::internet(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// The payload, up to the total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn write_u16(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets version 4 and the header length in bytes (a multiple of 4).
    // Truncation intended: the header length field is the low 4 bits.
    #[allow(clippy::cast_possible_truncation)]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP and ECN.
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, len: u16) {
        self.write_u16(field::TOTAL_LENGTH, len);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, ident: u16) {
        self.write_u16(field::IDENTIFICATION, ident);
    }

    /// Sets DF, MF and the fragment offset in bytes (a multiple of 8).
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & FRAGMENT_OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DONT_FRAGMENT;
        }
        if more_frags {
            v |= FLAG_MORE_FRAGMENTS;
        }
        self.write_u16(field::FLAGS_FRAGMENT_OFFSET, v);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.write_u16(field::CHECKSUM, checksum);
    }

    /// Sets the source address, leaving the checksum alone.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address, leaving the checksum alone.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.octets());
    }

    /// Replaces the source address and updates the header checksum
    /// incrementally. Returns the change, which the caller applies to the
    /// transport checksum too (the address is in its pseudo-header).
    pub fn rewrite_src_addr(&mut self, addr: Ipv4Addr) -> ChecksumDelta {
        let mut delta = ChecksumDelta::ZERO;
        delta.addr(self.src_addr(), addr);
        self.set_src_addr(addr);
        self.set_checksum(delta.apply(self.checksum()));
        delta
    }

    /// Replaces the destination address; see [`Self::rewrite_src_addr`].
    pub fn rewrite_dst_addr(&mut self, addr: Ipv4Addr) -> ChecksumDelta {
        let mut delta = ChecksumDelta::ZERO;
        delta.addr(self.dst_addr(), addr);
        self.set_dst_addr(addr);
        self.set_checksum(delta.apply(self.checksum()));
        delta
    }

    /// Computes and stores the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let sum = checksum::internet(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(sum);
    }

    /// The header options, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..end]
    }

    /// The payload, mutably, up to the total length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = usize::from(self.total_len());
        &mut self.buffer.as_mut()[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 198.18.0.2 -> 198.18.0.1, TCP, 20-byte payload of zeros, DF, TTL 64.
    fn packet() -> Vec<u8> {
        let mut v = vec![
            0x45, 0x00, 0x00, 0x28, 0xa7, 0x5b, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 198, 18, 0, 2,
            198, 18, 0, 1,
        ];
        v.extend_from_slice(&[0; 20]);
        let mut p = Ipv4Packet::new_checked(&mut v[..]).unwrap();
        p.fill_checksum();
        v
    }

    #[test]
    fn fields() {
        let buf = packet();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 40);
        assert_eq!(p.ident(), 0xa75b);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), protocol::TCP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 18, 0, 1));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 20);
        assert!(p.verify_checksum());
    }

    #[test]
    fn padding_beyond_total_length_is_ignored() {
        let mut buf = packet();
        buf.extend_from_slice(&[0xee; 6]);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 20);
    }

    #[test]
    fn fragments_are_flagged() {
        let mut buf = packet();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_flags_and_frag_offset(false, true, 0);
        assert!(p.is_fragment() && p.more_frags());
        p.set_flags_and_frag_offset(false, false, 1480);
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
    }

    #[test]
    fn rewrite_keeps_checksum_valid() {
        let mut buf = packet();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        p.rewrite_dst_addr(Ipv4Addr::new(198, 19, 255, 7));
        p.rewrite_src_addr(Ipv4Addr::new(198, 18, 200, 1));
        assert!(p.verify_checksum());
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 19, 255, 7));
    }

    #[test]
    fn malformed_headers() {
        let buf = packet();
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..39]).unwrap_err(),
            Error::Truncated
        );
        let mut v6 = buf.clone();
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]).unwrap_err(),
            Error::BadVersion
        );
        let mut ihl = buf.clone();
        ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&ihl[..]).unwrap_err(),
            Error::BadHeaderLength
        );
        let mut big_ihl = buf.clone();
        big_ihl[0] = 0x4f; // 60 bytes of header, but total length 40
        assert_eq!(
            Ipv4Packet::new_checked(&big_ihl[..]).unwrap_err(),
            Error::BadTotalLength
        );
        let mut short_total = buf;
        short_total[3] = 10;
        assert_eq!(
            Ipv4Packet::new_checked(&short_total[..]).unwrap_err(),
            Error::BadTotalLength
        );
    }
}
