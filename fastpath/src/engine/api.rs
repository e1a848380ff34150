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
    /// Its wire MAC, configured or learned ([`crate::peer_mac`]).
    pub mac: crate::peer_mac::PeerMac,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The worker this engine runs on, among the node's: its handoff ids
    /// name it, so that answers reach it.
    pub worker: usize,
    /// How many workers the node runs: a message about a handoff belongs
    /// to the one that owns its client ([`baton_handoff::workers::route`]).
    pub workers: usize,
    /// This node's host address, which its kernel owns.
    pub own_addr: Ipv4Addr,
    /// This node's wire (and host port) MAC.
    pub own_mac: MacAddr,
    /// The cluster VIP, when there is one.
    pub vip: Option<Ipv4Addr>,
    /// Where connections handed here are replayed into the local kernel
    /// (see [`KernelAddrs`]): None replays them to `own_addr`.
    pub handoff_net: Option<HandoffNet>,
    pub services: Vec<(u16, ServiceKind)>,
    pub peers: Vec<PeerInfo>,
    pub hold_bytes: usize,
    pub hold_segments: usize,
    pub hold_timeout: Duration,
    pub handoff_timeout: Duration,
    pub linger: Duration,
    pub idle_timeout: Duration,
    /// How long after it starts the engine waits for its peers to name the
    /// connections they hold that it handed them, before it gives unknown
    /// segments of managed services to the kernel (see `resync`).
    pub recovery_wait: Duration,
    /// How long a peer's channel may stay down before the connections it
    /// handed here are reset (see `resync`).
    pub orphan_timeout: Duration,
    /// The most flows this engine tracks. Under pressure, connections not
    /// yet decided are evicted (oldest first); established and handed-off
    /// ones are never evicted.
    pub max_flows: usize,
    /// The most half-open connections (a SYN seen, the handshake not done)
    /// this engine remembers, apart from its flows; under pressure the
    /// oldest is forgotten, and that connection is served here untracked.
    pub half_open: usize,
    /// How long a half-open connection is remembered.
    pub half_open_timeout: Duration,
}

/// The handoff network (`cluster.handoff_net`): a peer's address, by its
/// host part, names its handoff address here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoffNet {
    /// The handoff network's address.
    pub network: Ipv4Addr,
    /// The bits of an address that are its host part (the host network's
    /// and the handoff network's prefix lengths are the same).
    pub host_mask: u32,
}

/// The address the local kernel sees a handed-in connection at, by the
/// address its client connected to: the VIP at the VIP (every node's
/// kernel owns it), a peer's own address at that peer's handoff address.
/// Either stands for the connection's origin alone, so its 4-tuple in the
/// kernel never meets one of a direct connection or of another origin's
/// handoff. Arithmetic only, on every translated packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelAddrs {
    vip: Option<Ipv4Addr>,
    /// Outside the VIP, the kernel's address is `base | (server &
    /// host_mask)`: with a handoff network, its address and host part;
    /// without one, this node's own address and no host part. One formula
    /// for both, without a branch on the lookup of every kernel packet.
    base: u32,
    host_mask: u32,
}

impl KernelAddrs {
    pub fn new(cfg: &EngineConfig) -> KernelAddrs {
        let (base, host_mask) = match cfg.handoff_net {
            Some(net) => (u32::from(net.network), net.host_mask),
            None => (u32::from(cfg.own_addr), 0),
        };
        KernelAddrs {
            vip: cfg.vip,
            base,
            host_mask,
        }
    }

    /// The kernel's address for a connection the client opened to `server`.
    #[inline(always)]
    pub fn kernel_of(&self, server: Ipv4Addr) -> Ipv4Addr {
        if Some(server) == self.vip {
            return server;
        }
        Ipv4Addr::from(self.base | (u32::from(server) & self.host_mask))
    }
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
    /// Peers this engine has named, in `messages`, every connection they
    /// handed it (on their Up).
    pub resync_done: Vec<usize>,
    /// Peers removed by a reload that this engine holds no connection
    /// with any more.
    pub released: Vec<usize>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.to_host.is_empty()
            && self.to_wire.is_empty()
            && self.messages.is_empty()
            && self.resync_done.is_empty()
            && self.released.is_empty()
    }
}
