//! The engine's public types: what it is configured with, what it says of
//! each frame, and what it wants sent.

use std::net::Ipv4Addr;
use std::time::Duration;

use baton_handoff::msg::Message;

use super::ServiceKind;
use crate::packet::MacAddr;

/// What the worker does with a frame after the engine saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it to the host kernel.
    ToHost,
    /// Send it out of the wire port.
    ToWire,
    /// Free it; the engine has counted why.
    Drop,
    /// Free it; the engine kept what it needed (a held request).
    Consumed,
}

/// A peer node, as the data plane needs it.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub name: String,
    pub mac: MacAddr,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The worker this engine runs on, among the node's: its handoff ids
    /// name it, so that answers reach it.
    pub worker: usize,
    /// This node's host address, which its kernel owns.
    pub own_addr: Ipv4Addr,
    /// This node's wire (and host port) MAC.
    pub own_mac: MacAddr,
    /// The cluster VIP, when there is one.
    pub vip: Option<Ipv4Addr>,
    pub services: Vec<(u16, ServiceKind)>,
    pub peers: Vec<PeerInfo>,
    pub hold_bytes: usize,
    pub hold_segments: usize,
    pub hold_timeout: Duration,
    pub handoff_timeout: Duration,
    pub linger: Duration,
    pub idle_timeout: Duration,
    /// The most flows this engine tracks. Under pressure, connections not
    /// yet decided are evicted (oldest first); established and handed-off
    /// ones are never evicted.
    pub max_flows: usize,
}

/// What the engine wants done besides the verdicts.
#[derive(Debug, Default)]
pub struct Output {
    /// Frames to send to the host kernel.
    pub to_host: Vec<Vec<u8>>,
    /// Frames to send out of the wire port.
    pub to_wire: Vec<Vec<u8>>,
    /// Messages for peers, by index in [`EngineConfig::peers`].
    pub messages: Vec<(usize, Message)>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.to_host.is_empty() && self.to_wire.is_empty() && self.messages.is_empty()
    }
}
