//! What a frame is, decided from its headers alone.
//!
//! The fast path classifies every received frame before the flow lookup:
//! IPv4/TCP goes to the flow table, everything else (ARP, ICMP, UDP, IPv6,
//! fragments) passes through between the wire and the host untouched.

use std::net::Ipv4Addr;

use super::arp::ArpPacket;
use super::error::Result;
use super::ethernet::{ethertype, EthernetFrame};
use super::ipv4::{protocol, Ipv4Packet};
use super::ipv6::Ipv6Packet;
use super::tcp::{TcpFlags, TcpPacket};

/// The result of [`classify`]: the VLAN the frame came on and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// The 802.1Q VLAN identifier, for a tagged frame.
    pub vlan_id: Option<u16>,
    /// What the frame carries.
    pub class: FrameClass,
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameClass {
    /// An ARP packet.
    Arp {
        /// Request (1) or reply (2).
        operation: u16,
    },
    /// A whole (unfragmented) IPv4 datagram holding a TCP segment.
    Ipv4Tcp(TcpSummary),
    /// A fragment of an IPv4 datagram, of any protocol.
    Ipv4Fragment {
        /// Protocol of the fragmented datagram.
        protocol: u8,
    },
    /// An unfragmented IPv4 datagram of another protocol.
    Ipv4Other {
        /// IP protocol number.
        protocol: u8,
    },
    /// An IPv6 packet.
    Ipv6 {
        /// The fixed header's next-header field.
        next_header: u8,
    },
    /// Any other EtherType.
    Other {
        /// The payload's EtherType.
        ethertype: u16,
    },
}

/// The fields of an IPv4/TCP frame the flow lookup needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSummary {
    /// IPv4 source address.
    pub src_addr: Ipv4Addr,
    /// IPv4 destination address.
    pub dst_addr: Ipv4Addr,
    /// TCP source port.
    pub src_port: u16,
    /// TCP destination port.
    pub dst_port: u16,
    /// TCP control bits.
    pub flags: TcpFlags,
    /// Bytes of TCP payload.
    pub payload_len: u16,
}

/// Classifies an Ethernet frame. Headers are validated as far as the class
/// requires (TCP options are not: translation checks them); a malformed
/// one is an error, never a panic.
pub fn classify(frame: &[u8]) -> Result<Classified> {
    let eth = EthernetFrame::new_checked(frame)?;
    let class = match eth.ethertype() {
        ethertype::ARP => FrameClass::Arp {
            operation: ArpPacket::new_checked(eth.payload())?.operation(),
        },
        ethertype::IPV4 => classify_ipv4(eth.payload())?,
        ethertype::IPV6 => FrameClass::Ipv6 {
            next_header: Ipv6Packet::new_checked(eth.payload())?.next_header(),
        },
        ethertype => FrameClass::Other { ethertype },
    };
    Ok(Classified {
        vlan_id: eth.vlan_id(),
        class,
    })
}

fn classify_ipv4(packet: &[u8]) -> Result<FrameClass> {
    let ip = Ipv4Packet::new_checked(packet)?;
    let protocol = ip.protocol();
    if ip.is_fragment() {
        return Ok(FrameClass::Ipv4Fragment { protocol });
    }
    if protocol != protocol::TCP {
        return Ok(FrameClass::Ipv4Other { protocol });
    }
    let tcp = TcpPacket::new_checked(ip.payload())?;
    Ok(FrameClass::Ipv4Tcp(TcpSummary {
        src_addr: ip.src_addr(),
        dst_addr: ip.dst_addr(),
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        flags: tcp.flags(),
        // The payload lies within a 16-bit total length.
        payload_len: tcp.payload().len() as u16,
    }))
}
