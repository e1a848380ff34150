//! Builds Ethernet → IPv4 → TCP frames with valid checksums, for tests,
//! fuzz seeds and benches.
//!
//! ```
//! use baton_fastpath::packet::{TcpFrameBuilder, TcpFlags, TcpOption, SeqNum};
//! let frame = TcpFrameBuilder::default()
//!     .ports(40000, 80)
//!     .seq(SeqNum::new(1000))
//!     .flags(TcpFlags::SYN)
//!     .option(TcpOption::MaxSegmentSize(1460))
//!     .build();
//! assert_eq!(frame.len(), 14 + 20 + 24);
//! ```

use std::net::Ipv4Addr;

use super::ethernet::{self, ethertype, MacAddr};
use super::ipv4::{self, protocol, Ipv4Packet};
use super::seq::SeqNum;
use super::tcp::{self, TcpFlags, TcpPacket};
use super::tcp_options::TcpOption;

/// A TCP-over-IPv4-over-Ethernet frame under construction. Fields are public;
/// the chained setters are shorthands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpFrameBuilder {
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// An 802.1Q tag with this VLAN identifier, if set.
    pub vlan_id: Option<u16>,
    /// IPv4 source.
    pub src_addr: Ipv4Addr,
    /// IPv4 destination.
    pub dst_addr: Ipv4Addr,
    /// IPv4 time to live.
    pub ttl: u8,
    /// IPv4 identification.
    pub ident: u16,
    /// IPv4 DF flag.
    pub dont_frag: bool,
    /// IPv4 MF flag and fragment offset in bytes, to build fragments.
    pub fragment: (bool, u16),
    /// IPv4 option bytes, zero-padded to a multiple of 4.
    pub ip_options: Vec<u8>,
    /// TCP source port.
    pub src_port: u16,
    /// TCP destination port.
    pub dst_port: u16,
    /// TCP sequence number.
    pub seq: SeqNum,
    /// TCP acknowledgment number.
    pub ack: SeqNum,
    /// TCP control bits.
    pub flags: TcpFlags,
    /// TCP window field.
    pub window: u16,
    /// TCP option bytes, padded with EOL to a multiple of 4.
    pub tcp_options: Vec<u8>,
    /// TCP payload.
    pub payload: Vec<u8>,
}

impl Default for TcpFrameBuilder {
    /// A pure ACK from 198.18.0.2:40000 to 198.18.0.1:80.
    fn default() -> Self {
        TcpFrameBuilder {
            src_mac: MacAddr([0x02, 0, 0, 0, 0, 0x02]),
            dst_mac: MacAddr([0x02, 0, 0, 0, 0, 0x01]),
            vlan_id: None,
            src_addr: Ipv4Addr::new(198, 18, 0, 2),
            dst_addr: Ipv4Addr::new(198, 18, 0, 1),
            ttl: 64,
            ident: 0,
            dont_frag: true,
            fragment: (false, 0),
            ip_options: Vec::new(),
            src_port: 40000,
            dst_port: 80,
            seq: SeqNum::new(0),
            ack: SeqNum::new(0),
            flags: TcpFlags::ACK,
            window: 502,
            tcp_options: Vec::new(),
            payload: Vec::new(),
        }
    }
}

impl TcpFrameBuilder {
    /// Sets the Ethernet addresses.
    pub fn macs(mut self, src: MacAddr, dst: MacAddr) -> Self {
        (self.src_mac, self.dst_mac) = (src, dst);
        self
    }

    /// Adds an 802.1Q tag.
    pub fn vlan(mut self, id: u16) -> Self {
        self.vlan_id = Some(id);
        self
    }

    /// Sets the IPv4 addresses.
    pub fn addrs(mut self, src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        (self.src_addr, self.dst_addr) = (src, dst);
        self
    }

    /// Sets the TCP ports.
    pub fn ports(mut self, src: u16, dst: u16) -> Self {
        (self.src_port, self.dst_port) = (src, dst);
        self
    }

    /// Sets the sequence number.
    pub fn seq(mut self, seq: SeqNum) -> Self {
        self.seq = seq;
        self
    }

    /// Sets the acknowledgment number.
    pub fn ack(mut self, ack: SeqNum) -> Self {
        self.ack = ack;
        self
    }

    /// Sets the control bits.
    pub fn flags(mut self, flags: TcpFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Sets the window field.
    pub fn window(mut self, window: u16) -> Self {
        self.window = window;
        self
    }

    /// Appends a TCP option.
    pub fn option(mut self, option: TcpOption<'_>) -> Self {
        option.emit(&mut self.tcp_options);
        self
    }

    /// Appends raw TCP option bytes (for malformed or unusual layouts).
    pub fn raw_options(mut self, bytes: &[u8]) -> Self {
        self.tcp_options.extend_from_slice(bytes);
        self
    }

    /// Sets the IPv4 option bytes.
    pub fn ip_options(mut self, bytes: &[u8]) -> Self {
        self.ip_options = bytes.to_vec();
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, bytes: &[u8]) -> Self {
        self.payload = bytes.to_vec();
        self
    }

    /// Builds the frame with valid IPv4 and TCP checksums.
    ///
    /// # Panics
    /// If the options exceed 40 bytes or the packet exceeds 65535 bytes:
    /// no valid header can hold them.
    pub fn build(&self) -> Vec<u8> {
        let ip_options = padded(&self.ip_options, 0);
        let tcp_options = padded(&self.tcp_options, 0);
        assert!(ip_options.len() <= 40, "IPv4 options exceed 40 bytes");
        assert!(tcp_options.len() <= 40, "TCP options exceed 40 bytes");
        let ip_header_len = ipv4::MIN_HEADER_LEN + ip_options.len();
        let tcp_header_len = tcp::MIN_HEADER_LEN + tcp_options.len();
        let total_len = ip_header_len + tcp_header_len + self.payload.len();
        let total_len = u16::try_from(total_len).expect("IPv4 packet exceeds 65535 bytes");

        let mut frame = Vec::with_capacity(ethernet::TAGGED_HEADER_LEN + usize::from(total_len));
        frame.extend_from_slice(&self.dst_mac.0);
        frame.extend_from_slice(&self.src_mac.0);
        if let Some(id) = self.vlan_id {
            frame.extend_from_slice(&ethertype::VLAN.to_be_bytes());
            frame.extend_from_slice(&(id & 0x0fff).to_be_bytes());
        }
        frame.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        let l3 = frame.len();
        frame.resize(l3 + ip_header_len + tcp_header_len, 0);
        frame[l3 + ipv4::MIN_HEADER_LEN..l3 + ip_header_len].copy_from_slice(&ip_options);
        let l4 = l3 + ip_header_len;
        frame[l4 + tcp::MIN_HEADER_LEN..].copy_from_slice(&tcp_options);
        frame.extend_from_slice(&self.payload);

        let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..]);
        ip.set_version_and_header_len(ip_header_len);
        ip.set_dscp_ecn(0, 0);
        ip.set_total_len(total_len);
        ip.set_ident(self.ident);
        ip.set_flags_and_frag_offset(self.dont_frag, self.fragment.0, self.fragment.1);
        ip.set_ttl(self.ttl);
        ip.set_protocol(protocol::TCP);
        ip.set_src_addr(self.src_addr);
        ip.set_dst_addr(self.dst_addr);
        ip.fill_checksum();

        let mut tcp = TcpPacket::new_unchecked(&mut frame[l4..]);
        tcp.set_src_port(self.src_port);
        tcp.set_dst_port(self.dst_port);
        tcp.set_seq_number(self.seq);
        tcp.set_ack_number(self.ack);
        tcp.set_header_len(tcp_header_len);
        tcp.set_flags(self.flags);
        tcp.set_window_len(self.window);
        tcp.set_urgent_at(0);
        tcp.fill_checksum(self.src_addr, self.dst_addr);
        frame
    }
}

/// `bytes` padded with `fill` to a multiple of 4.
fn padded(bytes: &[u8], fill: u8) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.resize(bytes.len().div_ceil(4) * 4, fill);
    v
}

#[cfg(test)]
mod tests {
    use super::super::classify::{classify, FrameClass};
    use super::*;

    #[test]
    fn builds_valid_tagged_frame() {
        let frame = TcpFrameBuilder::default()
            .vlan(7)
            .flags(TcpFlags::SYN)
            .option(TcpOption::MaxSegmentSize(1460))
            .option(TcpOption::WindowScale(7))
            .ip_options(&[1, 1, 1])
            .payload(b"hi")
            .build();
        assert_eq!(frame.len(), 18 + 24 + 28 + 2);
        let c = classify(&frame).unwrap();
        assert_eq!(c.vlan_id, Some(7));
        assert_eq!(c.class, FrameClass::Ipv4Tcp, "{c:?}");
        // Tagged frames are not the fast path's: classify alone reads them.
        assert_eq!(crate::packet::TcpFrame::parse(&frame), Ok(None));
        let ip = Ipv4Packet::new_checked(&frame[18..]).unwrap();
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert_eq!(tcp.options(), &[2, 4, 5, 0xb4, 3, 3, 7, 0]);
    }
}
