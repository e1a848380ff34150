//! One parse of an untagged Ethernet/IPv4/TCP frame, for the fast path.
//!
//! A worker needs a packet's addresses for the flow lookup, its sequence
//! numbers and flags for the flow's state, and its header offsets for the
//! translation. [`TcpFrame::parse`] validates the headers once and keeps
//! all of it, so that nothing downstream parses the frame again.

use std::net::Ipv4Addr;

use super::classify::classify;
use super::error::Result;
use super::ethernet::{ethertype, EthernetFrame, MacAddr, HEADER_LEN as ETHERNET_HEADER_LEN};
use super::ipv4::{protocol, Ipv4Packet};
use super::seq::{SeqNum, TsVal};
use super::tcp::{TcpFlags, TcpPacket, MIN_HEADER_LEN as TCP_MIN_HEADER_LEN};

/// The fields of an untagged IPv4/TCP frame and where its headers are.
/// Offsets are from the start of the frame and are proven in bounds by
/// [`TcpFrame::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFrame {
    pub src_mac: MacAddr,
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub window: u16,
    pub flags: TcpFlags,
    /// Start of the TCP header.
    pub l4: u16,
    /// Start of the TCP payload.
    pub data: u16,
    /// End of the IPv4 packet (Ethernet padding excluded).
    pub end: u16,
}

impl TcpFrame {
    /// Offset of the IPv4 header: frames with a VLAN tag are not parsed.
    pub const L3: usize = ETHERNET_HEADER_LEN;

    /// Parses an untagged, unfragmented IPv4/TCP frame. Any other frame is
    /// `Ok(None)`; a frame whose headers do not hold together is the error
    /// [`classify`] would give for it.
    ///
    /// Inlined into the caller: returned through memory, its fields would
    /// be read back before the stores that wrote them have retired, a stall
    /// that cost more than the parse itself.
    #[inline(always)]
    pub fn parse(frame: &[u8]) -> Result<Option<TcpFrame>> {
        if let Some(seg) = Self::parse_common(frame) {
            return Ok(Some(seg));
        }
        Self::parse_any(frame)
    }

    /// The frame nearly every packet is: untagged, an IPv4 header without
    /// options, unfragmented TCP. Its fields are read at fixed places of
    /// one 54-byte header, with one bounds check; None sends any other
    /// frame (or a malformed one) to the full parse, whose answer
    /// for the frames accepted here would be the same. Also what the worker
    /// reads a frame's addresses with to prefetch its flow ahead.
    #[inline(always)]
    pub fn parse_common(frame: &[u8]) -> Option<TcpFrame> {
        const L4: usize = TcpFrame::L3 + 20;
        let h = frame.first_chunk::<{ L4 + TCP_MIN_HEADER_LEN }>()?;
        let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
        let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let ipv4_tcp = be16(12) == ethertype::IPV4 && h[14] == 0x45 && h[23] == protocol::TCP;
        // More fragments, or an offset: a fragment.
        if !ipv4_tcp || be16(20) & 0x3fff != 0 {
            return None;
        }
        let total = usize::from(be16(16));
        let tcp_header = usize::from(h[L4 + 12] >> 4) * 4;
        let end = TcpFrame::L3 + total;
        if tcp_header < TCP_MIN_HEADER_LEN || total < 20 + tcp_header || end > frame.len() {
            return None;
        }
        // Cannot truncate: L4 is 34 and a TCP header at most 60 bytes.
        #[allow(clippy::cast_possible_truncation)]
        let (l4, data) = (L4 as u16, (L4 + tcp_header) as u16);
        Some(TcpFrame {
            src_mac: MacAddr([h[6], h[7], h[8], h[9], h[10], h[11]]),
            src_addr: Ipv4Addr::from(be32(26)),
            dst_addr: Ipv4Addr::from(be32(30)),
            src_port: be16(L4),
            dst_port: be16(L4 + 2),
            seq: SeqNum::new(be32(L4 + 4)),
            ack: SeqNum::new(be32(L4 + 8)),
            window: be16(L4 + 14),
            flags: TcpFlags(h[L4 + 13]),
            l4,
            data,
            // At most 14 + 65535: a frame that long is not in a u16 either.
            end: u16::try_from(end).ok()?,
        })
    }

    /// [`TcpFrame::parse`] for any frame.
    #[inline(never)]
    fn parse_any(frame: &[u8]) -> Result<Option<TcpFrame>> {
        let eth = EthernetFrame::new_checked(frame)?;
        if eth.is_tagged() || eth.ethertype() != ethertype::IPV4 {
            return not_ipv4(frame);
        }
        let ip = Ipv4Packet::new_checked(eth.payload())?;
        if ip.is_fragment() || ip.protocol() != protocol::TCP {
            return Ok(None);
        }
        let l4 = Self::L3 + ip.header_len();
        let end = Self::L3 + usize::from(ip.total_len());
        let tcp = TcpPacket::new_checked(ip.payload())?;
        // Offsets are kept in 16 bits: a frame so long they do not fit is
        // not one Baton manages.
        let (Ok(l4), Ok(data), Ok(end)) = (
            u16::try_from(l4),
            u16::try_from(l4 + tcp.header_len()),
            u16::try_from(end),
        ) else {
            return Ok(None);
        };
        Ok(Some(TcpFrame {
            src_mac: eth.src_addr(),
            src_addr: ip.src_addr(),
            dst_addr: ip.dst_addr(),
            src_port: tcp.src_port(),
            dst_port: tcp.dst_port(),
            seq: tcp.seq_number(),
            ack: tcp.ack_number(),
            window: tcp.window_len(),
            flags: tcp.flags(),
            l4,
            data,
            end,
        }))
    }

    /// The TCP options of `frame`, the frame this was parsed from.
    #[inline]
    pub fn options<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        frame
            .get(usize::from(self.l4) + TCP_MIN_HEADER_LEN..usize::from(self.data))
            .unwrap_or_default()
    }

    /// The TCP payload of `frame`, the frame this was parsed from.
    #[inline]
    pub fn payload<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        frame
            .get(usize::from(self.data)..usize::from(self.end))
            .unwrap_or_default()
    }

    #[inline]
    pub fn payload_len(&self) -> usize {
        usize::from(self.end - self.data)
    }

    /// Whether the IPv4 header checksum and the TCP checksum of `frame`,
    /// the frame this was parsed from, hold. A sum over the whole segment:
    /// for the frames that change a connection's state, not for every
    /// packet (a translated frame keeps a bad checksum bad, and its
    /// receiver drops it). Always true in a fuzzing build.
    pub fn checksums_valid(&self, frame: &[u8]) -> bool {
        // Fuzzing: a fuzzer cannot make checksums hold, so the engine's
        // checks would stop its frames before any state they could change
        // (cargo-fuzz builds with `--cfg fuzzing`).
        if cfg!(fuzzing) {
            return true;
        }
        let (l4, end) = (usize::from(self.l4), usize::from(self.end));
        let (Some(ip), Some(segment)) = (frame.get(Self::L3..l4), frame.get(l4..end)) else {
            return false;
        };
        super::checksum::internet(ip) == 0
            && TcpPacket::new_unchecked(segment).verify_checksum(self.src_addr, self.dst_addr)
    }

    /// The TS value, if the segment carries timestamps (and its options
    /// are well formed). Found as the translation finds it
    /// ([`RewriteSites`](super::tcp_options::RewriteSites)), on demand: the
    /// translated fast path does not need it.
    pub fn tsval(&self, frame: &[u8]) -> Option<TsVal> {
        let options = self.options(frame);
        let at = super::tcp_options::RewriteSites::locate(options)
            .ok()?
            .timestamps?;
        let value = options.get(at + 2..)?.first_chunk::<4>()?;
        Some(TsVal::new(u32::from_be_bytes(*value)))
    }
}

/// Any frame but an untagged IPv4 one: the full classification says
/// whether it is malformed.
#[cold]
#[inline(never)]
fn not_ipv4(frame: &[u8]) -> Result<Option<TcpFrame>> {
    classify(frame).map(|_| None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{FrameClass, TcpFrameBuilder};

    #[test]
    fn agrees_with_classify() {
        let frame = TcpFrameBuilder {
            payload: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            ..TcpFrameBuilder::default()
        }
        .build();
        let seg = TcpFrame::parse(&frame).unwrap().unwrap();
        assert_eq!(classify(&frame).unwrap().class, FrameClass::Ipv4Tcp);
        let b = TcpFrameBuilder::default();
        assert_eq!(
            (seg.src_addr, seg.src_port, seg.dst_addr, seg.dst_port),
            (b.src_addr, b.src_port, b.dst_addr, b.dst_port)
        );
        assert_eq!(seg.flags, b.flags);
        assert_eq!(seg.payload_len(), 18);
        assert_eq!(seg.payload(&frame), b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn checksums_are_verified() {
        let frame = TcpFrameBuilder {
            payload: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            ..TcpFrameBuilder::default()
        }
        .build();
        let seg = TcpFrame::parse(&frame).unwrap().unwrap();
        assert!(seg.checksums_valid(&frame));
        for at in [14 + 10, 14 + 20 + 16, frame.len() - 1] {
            // IPv4 checksum, TCP checksum, a payload byte.
            let mut bad = frame.clone();
            bad[at] ^= 0x40;
            assert!(!seg.checksums_valid(&bad), "byte {at} changed");
        }
    }

    #[test]
    fn the_common_frame_parses_as_any_frame_does() {
        for options in [vec![], vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]] {
            let frame = TcpFrameBuilder {
                tcp_options: options,
                payload: b"x".to_vec(),
                ..TcpFrameBuilder::default()
            }
            .build();
            let common = TcpFrame::parse_common(&frame).expect("the common case");
            assert_eq!(Some(common), TcpFrame::parse_any(&frame).unwrap());
            // Padding after the IPv4 packet is not payload.
            let mut padded = frame.clone();
            padded.extend_from_slice(&[0; 8]);
            assert_eq!(TcpFrame::parse_common(&padded), Some(common));
        }
    }

    #[test]
    fn truncated_and_foreign_frames() {
        let frame = TcpFrameBuilder::default().build();
        for len in 0..frame.len() {
            // Whatever the cut, the same answer as classify, and no panic.
            let cut = &frame[..len];
            assert_eq!(TcpFrame::parse(cut).is_err(), classify(cut).is_err());
        }
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(matches!(TcpFrame::parse(&arp), Ok(None) | Err(_)));
    }
}
