//! Cache warming. On a large table a flow's slot is rarely in cache, and a
//! lookup costs a memory latency that the packet's processing then waits
//! for. The worker prefetches each frame's slot a few frames before it
//! processes the frame (see `Worker::through_engine`), so that latency
//! overlaps other work. The parse that finds the slot is the frame's one:
//! the worker keeps it for the frame's processing. Nothing here changes
//! state or decides anything: a frame other than the common one
//! (`TcpFrame::parse_common`) only misses the warming, and is parsed in
//! full when its turn comes.

use super::{Engine, FlowKey};
use crate::packet::TcpFrame;
use crate::steer::Side;

/// Below this many flows the table (twice as many 64-byte slots) stays in
/// the CPU's caches, and warming would only cost.
const WARM_ABOVE: usize = 4096;

impl Engine {
    /// Whether a burst's lookups are worth warming.
    #[inline]
    pub fn wants_warming(&self) -> bool {
        self.flows.len() >= WARM_ABOVE
    }

    /// Parses `frame`, received from `side`, and starts bringing in the
    /// slot [`Engine::from_wire_parsed`] or [`Engine::from_host_parsed`]
    /// will read for it: the same slot whichever side's key finds the flow.
    #[inline]
    pub fn warm(&self, frame: &[u8], side: Side) -> Option<TcpFrame> {
        let t = TcpFrame::parse_common(frame)?;
        let key = match side {
            Side::Wire => FlowKey::new(t.src_addr, t.src_port, t.dst_addr, t.dst_port),
            Side::Host => FlowKey::new(t.dst_addr, t.dst_port, t.src_addr, t.src_port),
        };
        self.flows.prefetch(&key);
        Some(t)
    }
}
