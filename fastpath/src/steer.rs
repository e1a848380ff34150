//! Which worker owns a packet's flow (DESIGN §4).
//!
//! A flow belongs to exactly one worker: `hash(client address, client
//! port) mod workers`. Both directions compute the same owner: from the
//! wire the client is the source, from the host it is the destination. Only
//! packets of managed services need their owner, since only they touch
//! flow state; everything else is passed through by whichever worker
//! received it.

use crate::packet::TcpFrame;

// Defined with the protocol: the control plane needs it too.
pub use baton_handoff::workers::owner_of;

/// Where a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Wire,
    Host,
}

/// The worker that owns this TCP packet's flow, or None when the packet is
/// not for a managed service (any worker may pass it through). It reads
/// only the addresses and ports of the packet's one parse.
#[inline]
pub fn owner(tcp: &TcpFrame, side: Side, services: &[u16], workers: usize) -> Option<usize> {
    let (client, client_port, service_port) = match side {
        Side::Wire => (tcp.src_addr, tcp.src_port, tcp.dst_port),
        Side::Host => (tcp.dst_addr, tcp.dst_port, tcp.src_port),
    };
    services
        .contains(&service_port)
        .then(|| owner_of(u32::from(client), client_port, workers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TcpFrameBuilder;
    use std::net::Ipv4Addr;

    fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> TcpFrame {
        let frame = TcpFrameBuilder::default()
            .addrs(src.0, dst.0)
            .ports(src.1, dst.1)
            .build();
        TcpFrame::parse(&frame).unwrap().unwrap()
    }

    #[test]
    fn both_directions_of_a_flow_have_the_same_owner() {
        let client = (Ipv4Addr::new(198, 18, 0, 100), 40000);
        let server = (Ipv4Addr::new(198, 18, 0, 11), 80);
        for workers in 1..8 {
            let from_wire = owner(&tcp(client, server), Side::Wire, &[80], workers);
            let from_host = owner(&tcp(server, client), Side::Host, &[80], workers);
            assert_eq!(from_wire, from_host);
            assert!(from_wire.unwrap() < workers);
        }
    }

    #[test]
    fn unmanaged_packets_have_no_owner() {
        let a = (Ipv4Addr::new(198, 18, 0, 100), 40000);
        let b = (Ipv4Addr::new(198, 18, 0, 11), 22);
        assert_eq!(owner(&tcp(a, b), Side::Wire, &[80, 443], 4), None);
    }
}
