//! What a frame is, decided from its headers alone.
//!
//! Every kind of frame Baton may see, tagged or not, down to what it
//! carries. The fast path does not call this: it parses the frames it
//! manages once, with [`TcpFrame::parse`](super::TcpFrame::parse), which
//! gives the same answer as this for every frame it accepts, and falls back
//! to this to tell a malformed frame from a foreign one. A frame's TCP
//! fields are [`TcpFrame`](super::TcpFrame)'s: there is one summary type.

use super::arp::ArpPacket;
use super::error::Result;
use super::ethernet::{ethertype, EthernetFrame};
use super::ipv4::{protocol, Ipv4Packet};
use super::ipv6::Ipv6Packet;
use super::tcp::TcpPacket;

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
    /// A whole (unfragmented) IPv4 datagram holding a TCP segment, its
    /// headers valid; [`TcpFrame::parse`](super::TcpFrame::parse) gives
    /// its fields, when the frame is untagged.
    Ipv4Tcp,
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
    TcpPacket::new_checked(ip.payload())?;
    Ok(FrameClass::Ipv4Tcp)
}
