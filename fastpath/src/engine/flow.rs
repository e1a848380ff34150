//! Flow state, origin and target side. Where a flow stands is the state
//! of its role's machine in `baton_handoff::state`; the rest is what the
//! actions of those machines need.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

pub(super) use baton_handoff::state::{OriginState, TargetState};

use crate::packet::{MacAddr, Translation};

use super::ServiceKind;

/// A connection as the client sees it: its own address and port, and the
/// address and port it connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
}

impl FlowKey {
    pub fn new(client: Ipv4Addr, client_port: u16, server: Ipv4Addr, server_port: u16) -> FlowKey {
        FlowKey {
            client: SocketAddrV4::new(client, client_port),
            server: SocketAddrV4::new(server, server_port),
        }
    }
}

pub(super) struct Flow {
    /// When the timer of the flow's state fires (`OriginState::timer`,
    /// `TargetState::timer`).
    pub deadline: Instant,
    /// The timer wheel tick of this flow's live entry (see `timers`).
    pub armed: u64,
    pub role: Role,
}

pub(super) enum Role {
    Origin(Box<OriginFlow>),
    /// Inline: every packet of a handed-in connection reads it, and a
    /// pointer to a separate allocation would cost a cache miss per packet
    /// on a large table. Its cold part (the request) is boxed apart.
    Target(TargetFlow),
}

/// An origin connection: everything the handoff request needs, gathered
/// from the handshake and the first request.
pub(super) struct OriginFlow {
    pub state: OriginState,
    /// The handoff under way or done (HandoffPending and Forwarding).
    pub handoff: Option<Handoff>,
    pub kind: ServiceKind,
    pub client_mac: MacAddr,
    pub isn_client: u32,
    pub client_syn_options: Vec<u8>,
    /// The kernel's SYN-ACK: its ISN and options.
    pub isn_origin: Option<u32>,
    pub origin_synack_options: Vec<u8>,
    pub origin_tsval: Option<u32>,
    pub client_window: u16,
    pub client_tsval: Option<u32>,
    /// The client's latest acknowledgement: a RST toward it uses it as seq.
    pub client_ack: u32,
    /// Request bytes from isn_client + 1 on, and the frames that carried
    /// them, to release to the local kernel unchanged.
    pub held: Vec<u8>,
    pub held_frames: Vec<Vec<u8>>,
    /// Client packets that arrive while the handoff is pending. The target
    /// may answer the client before its accept reaches us, and the client
    /// then acknowledges data this node never sent: those packets belong to
    /// the target, and go there once it accepts.
    pub queued: Vec<Vec<u8>>,
    /// When the handoff request was sent, for the log.
    pub requested_at: Option<std::time::Instant>,
}

/// A handoff request: the node it went to, and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Handoff {
    pub peer: usize,
    pub id: u64,
}

impl OriginFlow {
    pub fn handoff_id(&self) -> Option<u64> {
        self.handoff.map(|h| h.id)
    }
}

/// A connection handed to this node.
pub(super) struct TargetFlow {
    pub state: TargetState,
    /// The origin peer and its id for the handoff.
    pub origin: usize,
    pub id: u64,
    /// The key the local kernel's packets carry.
    pub kernel_key: FlowKey,
    pub client_mac: MacAddr,
    /// Set once the kernel's SYN-ACK is seen.
    pub translation: Option<Translation>,
    /// What the replay needs until the connection is established.
    pub request: Option<Box<baton_handoff::msg::HandoffRequest>>,
    /// The next sequence number the client will send (for a RST to the kernel).
    pub client_next_seq: u32,
}

/// A flow's timer, borrowed from the flow while its state changes.
pub(super) struct Timer<'f> {
    pub deadline: &'f mut Instant,
    pub armed: &'f mut u64,
}

impl Timer<'_> {
    /// Sets the deadline of a new state, which may be sooner than the one
    /// the wheel holds: arm a new entry (the old one becomes stale).
    pub fn set(self, parts: &mut super::Parts<'_>, key: FlowKey, at: Instant) {
        *self.deadline = at;
        *self.armed = parts.timers.arm(key, at);
    }
}

/// A table entry stays within two cache lines (key included), so that a
/// handed-in flow's packet touches its bucket and nothing else.
const _: () = assert!(core::mem::size_of::<(FlowKey, Flow)>() <= 128);
