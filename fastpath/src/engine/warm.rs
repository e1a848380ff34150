//! Cache warming. On a large table a flow's slot is rarely in cache, and a
//! lookup costs a memory latency that the packet's processing then waits
//! for. The worker prefetches each frame's slot a few frames before it
//! processes the frame (see `Worker::through_engine`), so that latency
//! overlaps other work. Nothing here changes state or decides anything: a
//! frame the quick parse gets wrong only misses the warming.

use std::net::Ipv4Addr;

use super::{Engine, FlowKey};

/// Below this many flows the table (twice as many 64-byte slots) stays in
/// the CPU's caches, and warming would only cost.
const WARM_ABOVE: usize = 4096;

impl Engine {
    /// Whether a burst's lookups are worth warming.
    #[inline]
    pub fn wants_warming(&self) -> bool {
        self.flows.len() >= WARM_ABOVE
    }

    /// Starts bringing in the slot [`Engine::from_wire`] will read for `frame`.
    #[inline]
    pub fn warm_wire(&self, frame: &[u8]) {
        if let Some((src, sport, dst, dport)) = addresses(frame) {
            self.flows.prefetch(&FlowKey::new(src, sport, dst, dport));
        }
    }

    /// Starts bringing in the slot [`Engine::from_host`] will read for `frame`:
    /// the same slot, whichever side's key finds the flow.
    #[inline]
    pub fn warm_host(&self, frame: &[u8]) {
        if let Some((src, sport, dst, dport)) = addresses(frame) {
            self.flows.prefetch(&FlowKey::new(dst, dport, src, sport));
        }
    }
}

/// Addresses and ports of an untagged IPv4/TCP frame, read at their fixed
/// places with no validation beyond bounds (the real parse comes later).
#[inline]
fn addresses(frame: &[u8]) -> Option<(Ipv4Addr, u16, Ipv4Addr, u16)> {
    const L3: usize = 14;
    if frame.get(12..L3)? != [0x08, 0x00] || *frame.get(L3 + 9)? != 6 {
        return None;
    }
    let l4 = L3 + usize::from(frame.get(L3)? & 0x0f) * 4;
    let quad = |at: usize| -> Option<[u8; 4]> { frame.get(at..at + 4)?.try_into().ok() };
    let (src, dst, ports) = (quad(L3 + 12)?, quad(L3 + 16)?, quad(l4)?);
    Some((
        Ipv4Addr::from(src),
        u16::from_be_bytes([ports[0], ports[1]]),
        Ipv4Addr::from(dst),
        u16::from_be_bytes([ports[2], ports[3]]),
    ))
}

#[cfg(test)]
mod tests {
    use super::addresses;
    use crate::packet::{classify, FrameClass, TcpFrameBuilder};

    #[test]
    fn quick_parse_agrees_with_classify() {
        let frame = TcpFrameBuilder::default().build();
        let FrameClass::Ipv4Tcp(tcp) = classify(&frame).unwrap().class else {
            panic!("not IPv4/TCP");
        };
        assert_eq!(
            addresses(&frame),
            Some((tcp.src_addr, tcp.src_port, tcp.dst_addr, tcp.dst_port))
        );
        assert_eq!(addresses(&frame[..30]), None);
    }
}
