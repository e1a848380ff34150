//! TCP headers (RFC 9293). Options are in [`super::tcp_options`].

use core::fmt;
use std::net::Ipv4Addr;

use super::checksum;
use super::error::{Error, Result};
use super::ipv4::protocol;
use super::seq::SeqNum;
use super::tcp_options::TcpOptions;

pub(crate) mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = field::URGENT.end;
/// Length of a header with the most options (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// The eight TCP control bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// A view of a TCP segment: header, options and payload.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without validation.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` (exactly the segment: header and payload) after
    /// checking that the header, options included, is present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = p.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if len < header_len {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, range: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn read_u32(&self, range: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[range];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.read_u16(field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.read_u16(field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> SeqNum {
        SeqNum::new(self.read_u32(field::SEQ_NUM))
    }

    /// Acknowledgment number (meaningful only with ACK set).
    pub fn ack_number(&self) -> SeqNum {
        SeqNum::new(self.read_u32(field::ACK_NUM))
    }

    /// Header length in bytes (data offset × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// Control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// FIN.
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// SYN.
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// RST.
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// PSH.
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }

    /// ACK.
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// Window as sent, before any window-scale shift.
    pub fn window_len(&self) -> u16 {
        self.read_u16(field::WINDOW)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        self.read_u16(field::URGENT)
    }

    /// The raw option bytes (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The options, parsed one by one.
    pub fn options_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Sum the checksum covers for an IPv4 segment, pseudo-header included.
    fn ipv4_sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let data = self.buffer.as_ref();
        // Cannot truncate: a TCP segment inside an IPv4 packet is below 64 KiB.
        #[allow(clippy::cast_possible_truncation)]
        let len = data.len() as u16;
        checksum::combine(
            checksum::pseudo_header_ipv4(src, dst, protocol::TCP, len),
            checksum::sum(data),
        )
    }

    /// Whether the checksum is correct for an IPv4 segment from `src` to `dst`.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::fold(self.ipv4_sum(src, dst)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn write_u16(&mut self, range: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    fn write_u32(&mut self, range: core::ops::Range<usize>, value: u32) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        self.write_u16(field::SRC_PORT, port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        self.write_u16(field::DST_PORT, port);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: SeqNum) {
        self.write_u32(field::SEQ_NUM, seq.raw());
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, ack: SeqNum) {
        self.write_u32(field::ACK_NUM, ack.raw());
    }

    /// Sets the header length in bytes (a multiple of 4, at most 60).
    // Cannot truncate: at most 60 bytes is at most 15 words.
    #[allow(clippy::cast_possible_truncation)]
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::DATA_OFFSET];
        *b = (((len / 4) as u8) << 4) | (*b & 0x0f);
    }

    /// Sets the control bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window field.
    pub fn set_window_len(&mut self, window: u16) {
        self.write_u16(field::WINDOW, window);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.write_u16(field::CHECKSUM, checksum);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, urgent: u16) {
        self.write_u16(field::URGENT, urgent);
    }

    /// The raw option bytes, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..end]
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }

    /// The whole segment, mutably, for patching fields at known offsets.
    pub(crate) fn buffer_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Computes and stores the checksum from scratch, for an IPv4 segment.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let sum = !checksum::fold(self.ipv4_sum(src, dst));
        self.set_checksum(sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    // ACK with timestamps and 3 payload bytes.
    fn segment() -> Vec<u8> {
        let mut v = vec![
            0x86, 0xec, 0x1f, 0x90, 0xbc, 0x42, 0xfc, 0xee, 0x92, 0x5e, 0x91, 0xde, 0x80, 0x18,
            0x00, 0x40, 0x00, 0x00, 0x00, 0x00, // fixed header
            0x01, 0x01, 0x08, 0x0a, 0x8d, 0x1d, 0xc6, 0x59, 0x40, 0x86, 0xd9,
            0x43, // NOP NOP TS
        ];
        v.extend_from_slice(b"abc");
        let mut p = TcpPacket::new_checked(&mut v[..]).unwrap();
        p.fill_checksum(SRC, DST);
        v
    }

    #[test]
    fn fields() {
        let buf = segment();
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.src_port(), 34540);
        assert_eq!(p.dst_port(), 8080);
        assert_eq!(p.seq_number(), SeqNum::new(0xbc42_fcee));
        assert_eq!(p.ack_number(), SeqNum::new(0x925e_91de));
        assert_eq!(p.header_len(), 32);
        assert_eq!(p.flags(), TcpFlags::ACK | TcpFlags::PSH);
        assert!(p.ack() && p.psh() && !p.syn() && !p.fin() && !p.rst());
        assert_eq!(p.window_len(), 64);
        assert_eq!(p.options().len(), 12);
        assert_eq!(p.payload(), b"abc");
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, Ipv4Addr::new(198, 18, 0, 3)));
        assert_eq!(format!("{:?}", p.flags()), "PSH|ACK");
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = segment();
        let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_seq_number(SeqNum::new(3));
        p.set_ack_number(SeqNum::new(4));
        p.set_flags(TcpFlags::SYN);
        p.set_window_len(5);
        p.set_urgent_at(6);
        p.fill_checksum(SRC, DST);
        assert_eq!(
            (
                p.src_port(),
                p.dst_port(),
                p.seq_number().raw(),
                p.ack_number().raw()
            ),
            (1, 2, 3, 4)
        );
        assert_eq!((p.window_len(), p.urgent_at(), p.header_len()), (5, 6, 32));
        assert!(p.syn());
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn malformed() {
        let buf = segment();
        assert_eq!(
            TcpPacket::new_checked(&buf[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&buf[..31]).unwrap_err(),
            Error::Truncated
        );
        let mut small = buf;
        small[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&small[..]).unwrap_err(),
            Error::BadHeaderLength
        );
    }
}
