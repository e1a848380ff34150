//! Cache warming. On a large table a flow's slot is rarely in cache, and a
//! lookup costs a memory latency that the packet's processing then waits
//! for. The worker prefetches each frame's slot a few frames before it
//! processes the frame (see `Worker::through_engine`), so that latency
//! overlaps other work. Nothing here changes state or decides anything: a
//! frame other than the common one (`TcpFrame::parse_common`) only misses
//! the warming.

use super::{Engine, FlowKey};
use crate::packet::TcpFrame;

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
        if let Some(t) = TcpFrame::parse_common(frame) {
            self.flows.prefetch(&FlowKey::new(
                t.src_addr, t.src_port, t.dst_addr, t.dst_port,
            ));
        }
    }

    /// Starts bringing in the slot [`Engine::from_host`] will read for `frame`:
    /// the same slot, whichever side's key finds the flow.
    #[inline]
    pub fn warm_host(&self, frame: &[u8]) {
        if let Some(t) = TcpFrame::parse_common(frame) {
            self.flows.prefetch(&FlowKey::new(
                t.dst_addr, t.dst_port, t.src_addr, t.src_port,
            ));
        }
    }
}
