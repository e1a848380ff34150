//! A peer's wire MAC: configured, or learned from the wire.
//!
//! Client packets of a connection handed to a peer are forwarded to the
//! peer's wire MAC. When the config gives none, the workers learn it from
//! the frames of the peer's control channel: TCP between the peer's
//! address and the control port, which only the peer's own kernel sends
//! (handed-off connections use service ports, never the control port, and
//! translated frames never carry a peer's address with the control port).
//! The channel's handshake crosses the wire before the peer counts as up,
//! so the MAC is known before the first handoff to it. Learned once; a
//! configured MAC is never replaced. The cell is shared by every worker's
//! engine: whichever worker receives the frame teaches them all.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::packet::{MacAddr, TcpFrame};

/// What the frames of a learned peer's control channel look like.
#[derive(Debug)]
struct Learn {
    addr: Ipv4Addr,
    control_port: u16,
}

#[derive(Debug)]
struct Cell {
    /// The MAC in the low 48 bits; 0 while not known.
    mac: AtomicU64,
    /// `None` for a configured MAC.
    learn: Option<Learn>,
}

/// One peer's MAC, shared by the engines of every worker.
#[derive(Debug, Clone)]
pub struct PeerMac(Arc<Cell>);

/// Where client packets go while a peer's MAC is not known: everyone on
/// the segment, the peer included (its wire port is promiscuous).
pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

fn encode(mac: MacAddr) -> u64 {
    mac.0.iter().fold(0, |v, &b| (v << 8) | u64::from(b))
}

fn decode(v: u64) -> MacAddr {
    MacAddr(std::array::from_fn(|i| {
        // The shift leaves one byte in the low 8 bits.
        #[allow(clippy::cast_possible_truncation)]
        let b = (v >> (8 * (5 - i))) as u8;
        b
    }))
}

impl PeerMac {
    /// A MAC from the config.
    pub fn fixed(mac: MacAddr) -> PeerMac {
        PeerMac(Arc::new(Cell {
            mac: AtomicU64::new(encode(mac)),
            learn: None,
        }))
    }

    /// A MAC to learn from the frames of the control channel of the peer
    /// at `addr` (`cluster.control_port`).
    pub fn learned(addr: Ipv4Addr, control_port: u16) -> PeerMac {
        PeerMac(Arc::new(Cell {
            mac: AtomicU64::new(0),
            learn: Some(Learn { addr, control_port }),
        }))
    }

    /// Whether this is the MAC a config giving `mac` (or none) for the
    /// peer at `addr` makes: a reload keeps it, and what was learned.
    pub fn is(&self, mac: Option<[u8; 6]>, addr: Ipv4Addr) -> bool {
        match (&self.0.learn, mac) {
            (None, Some(mac)) => self.get() == Some(MacAddr(mac)),
            (Some(learn), None) => learn.addr == addr,
            _ => false,
        }
    }

    /// The MAC, if known.
    #[inline]
    pub fn get(&self) -> Option<MacAddr> {
        match self.0.mac.load(Ordering::Relaxed) {
            0 => None,
            v => Some(decode(v)),
        }
    }

    /// The control port whose frames teach this MAC; None for a
    /// configured one.
    pub fn learns_on(&self) -> Option<u16> {
        self.0.learn.as_ref().map(|l| l.control_port)
    }

    /// Learns the MAC from `tcp` if it is a frame of this peer's control
    /// channel and the MAC is not known yet; true if it was learned now.
    #[inline]
    pub fn learn_from(&self, tcp: &TcpFrame) -> bool {
        let Some(learn) = &self.0.learn else {
            return false;
        };
        // Every wire frame asks: the cheap tests first, and nothing more
        // once the MAC is known.
        let of_channel = tcp.src_addr == learn.addr
            && (tcp.src_port == learn.control_port || tcp.dst_port == learn.control_port);
        if !of_channel || self.0.mac.load(Ordering::Relaxed) != 0 {
            return false;
        }
        let mac = encode(tcp.src_mac);
        mac != 0
            && tcp.src_mac.0[0] & 1 == 0
            && self
                .0
                .mac
                .compare_exchange(0, mac, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TcpFrameBuilder;

    fn frame(src: Ipv4Addr, sport: u16, dport: u16, mac: [u8; 6]) -> TcpFrame {
        let bytes = TcpFrameBuilder {
            src_mac: MacAddr(mac),
            src_addr: src,
            src_port: sport,
            dst_port: dport,
            ..Default::default()
        }
        .build();
        TcpFrame::parse(&bytes).unwrap().unwrap()
    }

    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);
    const MAC: [u8; 6] = [0x02, 0xba, 0x70, 0, 0, 2];

    #[test]
    fn only_the_peers_control_channel_teaches_its_mac_and_only_once() {
        let m = PeerMac::learned(PEER, 7300);
        assert_eq!(m.get(), None);
        // A service port from the peer's address: a translated frame of a
        // connection another node serves for it, maybe. Not learned.
        assert!(!m.learn_from(&frame(PEER, 80, 40000, [2, 0, 0, 0, 0, 9])));
        assert!(!m.learn_from(&frame(Ipv4Addr::new(198, 18, 0, 13), 7300, 5000, MAC)));
        assert!(!m.learn_from(&frame(PEER, 7300, 5000, [0x01, 0, 0x5e, 0, 0, 1])));
        assert_eq!(m.get(), None);
        let shared = m.clone();
        assert!(m.learn_from(&frame(PEER, 45000, 7300, MAC)));
        assert_eq!(shared.get(), Some(MacAddr(MAC)), "every worker sees it");
        assert!(!m.learn_from(&frame(PEER, 7300, 45000, [2, 0, 0, 0, 0, 7])));
        assert_eq!(m.get(), Some(MacAddr(MAC)), "learned once");
    }

    #[test]
    fn a_configured_mac_is_never_replaced() {
        let m = PeerMac::fixed(MacAddr(MAC));
        assert!(!m.learn_from(&frame(PEER, 7300, 5000, [2, 0, 0, 0, 0, 7])));
        assert_eq!(m.get(), Some(MacAddr(MAC)));
    }
}
