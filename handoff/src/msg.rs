//! The messages two Baton nodes exchange over their control channel.
//!
//! The origin (the node that accepted a client's connection) asks a target
//! to take a live connection over with a [`HandoffRequest`]; the target
//! answers with [`HandoffAccept`] or [`HandoffReject`], and announces the
//! end of the flow with [`HandoffClosed`]; an origin that abandons a
//! handoff says so with [`HandoffCancel`]. Every node also sends [`Load`]
//! periodically: it feeds the selection policy and doubles as the heartbeat.
//!
//! A handoff is named by the id its origin chose, unique per node whatever
//! its number of workers (see [`crate::workers::handoff_id`]), and every
//! message about one names its client too: the worker that owns the
//! client's flow, on either node, is the one the message is for (see
//! [`crate::workers::route`]).
//!
//! A connection moves when a later request on it is for another node: the
//! origin asks its owner to let it go once every earlier response is
//! complete ([`Release`]); the owner answers with where the server's
//! sequence stands ([`Released`]), or that the connection cannot move
//! ([`ReleaseRefused`]). The new owner gets an ordinary [`HandoffRequest`]
//! at the connection's current sequence numbers.
//!
//! When the channel between two nodes comes up, each tells the other which
//! connections it holds that the other handed it ([`FlowsHeld`]): an origin
//! that restarted (or lost its state) learns where its connections went
//! before it lets their packets reach its kernel.
//!
//! These are plain data; [`crate::codec`] puts them on the wire.

use std::net::SocketAddrV4;

pub use crate::seq::{SeqDelta, SeqNum, TsOffset, TsVal};

/// The TCP connection as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// The client's address and port.
    pub client: SocketAddrV4,
    /// The address and port the client connected to: the origin's own
    /// address, or the cluster VIP. The target answers from this address, so
    /// the client never notices the handoff.
    pub server: SocketAddrV4,
}

/// Limits a peer must respect; the decoder rejects anything larger.
pub mod limits {
    /// TCP options fit in at most 40 bytes (data offset 15 words − 5).
    pub const TCP_OPTIONS: usize = 40;
    /// The most request bytes an origin holds before deciding.
    pub const HELD_BYTES: usize = 64 * 1024;
    /// The most connections one FlowsHeld names.
    pub const FLOWS_HELD: usize = 4096;
}

/// One control-channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    HandoffRequest(HandoffRequest),
    HandoffAccept(HandoffAccept),
    HandoffReject(HandoffReject),
    HandoffClosed(HandoffClosed),
    HandoffCancel(HandoffCancel),
    FlowsHeld(FlowsHeld),
    /// Sent periodically by every node; doubles as the heartbeat.
    Load(Load),
    Release(Release),
    Released(Released),
    ReleaseRefused(ReleaseRefused),
}

/// Origin → target: "take this connection over".
///
/// It carries everything the target needs to replay the handshake into its
/// own kernel (the client's SYN options and ISN) and to translate the
/// kernel's answers into what the client already agreed to with the origin
/// (the origin's ISN, options and timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffRequest {
    /// Chosen by the origin, unique per origin; every answer names it.
    pub id: u64,
    pub key: FlowKey,
    /// Where the target sends responses: the L2 next hop towards the client.
    pub client_mac: [u8; 6],
    /// The client's initial sequence number (from its SYN).
    pub isn_client: SeqNum,
    /// The origin kernel's initial sequence number (from its SYN-ACK).
    pub isn_origin: SeqNum,
    /// Raw TCP option bytes of the client's SYN (at most 40), replayed
    /// verbatim to the target's kernel.
    pub client_syn_options: Vec<u8>,
    /// Raw TCP option bytes of the origin kernel's SYN-ACK (at most 40): the
    /// window scale and timestamps the client agreed to.
    pub origin_synack_options: Vec<u8>,
    /// Raw window field of the client's latest segment.
    pub client_window: u16,
    /// The client's latest TSval; `None` when timestamps were not negotiated.
    pub client_tsval: Option<TsVal>,
    /// The origin kernel's latest TSval the client has seen.
    pub origin_tsval: Option<TsVal>,
    /// Request bytes held so far, starting at sequence `isn_client + 1`
    /// (at most 64 KiB).
    pub held: Vec<u8>,
}

/// Target → origin: the target's kernel has the connection and the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoffAccept {
    pub id: u64,
    /// The target kernel's ISN; with `isn_origin` it gives the sequence delta.
    pub isn_target: SeqNum,
    /// The client, so that an origin that no longer has the handoff can
    /// still cancel it (see [`HandoffCancel`]).
    pub client: SocketAddrV4,
}

/// Target → origin: the target will not take the connection; the origin
/// serves it locally, and nothing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoffReject {
    pub id: u64,
    pub client: SocketAddrV4,
    pub reason: RejectReason,
}

/// Target → origin: the handed-off connection is over; the origin frees
/// its forwarding entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoffClosed {
    pub id: u64,
    pub client: SocketAddrV4,
}

/// Target → origin, when their channel comes up: connections the origin
/// handed this node that it still holds, in batches; the last says so.
/// The origin forwards their clients' packets here again, should it have
/// forgotten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowsHeld {
    /// At most [`limits::FLOWS_HELD`].
    pub flows: Vec<HeldFlow>,
    /// The last batch: every connection held is named.
    pub last: bool,
}

/// One connection in [`FlowsHeld`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldFlow {
    /// The origin's id for its handoff.
    pub id: u64,
    pub key: FlowKey,
    /// The L2 next hop towards the client, as the origin's request gave it.
    pub client_mac: [u8; 6],
}

/// Origin → target: the handoff is abandoned (the client went away, the
/// origin stopped waiting, or an Accept came after the origin moved on);
/// the target resets its kernel's copy of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoffCancel {
    pub id: u64,
    /// The client, whose address and port name the target's worker that
    /// holds the connection.
    pub client: SocketAddrV4,
}

/// Origin → owner: the connection's next request, from `at` on, is for
/// another node. Once every response to the requests before it is whole
/// and acknowledged, the owner resets its kernel's copy and answers with
/// [`Released`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The id of the handoff that gave the owner the connection.
    pub id: u64,
    pub client: SocketAddrV4,
    /// The client's sequence number where the held request starts: the
    /// owner has everything before it, and nothing after.
    pub at: SeqNum,
    /// The client's latest acknowledgement the origin has seen, in the
    /// client's space (it may have come with the held request).
    pub client_ack: SeqNum,
}

/// Owner → origin: the connection is free to move: every response is
/// whole and acknowledged, and the owner's kernel no longer has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub id: u64,
    pub client: SocketAddrV4,
    /// The server's next sequence number, as the client sees it.
    pub server_next: SeqNum,
    /// At least the latest TSval the client has seen from the server
    /// (client's space); `None` without timestamps.
    pub tsval: Option<TsVal>,
}

/// Owner → origin: the connection cannot move (it is closing, or no
/// longer carries HTTP): the held request goes to the owner after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseRefused {
    pub id: u64,
    pub client: SocketAddrV4,
}

/// A node's load, as the selection policy sees it. Also the heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    /// Connections this node currently serves (local and handed in).
    pub active_connections: u32,
    /// Handoffs this node has requested and not yet had answered.
    pub pending_handoffs: u32,
    /// Connections currently served here after a handoff from a peer.
    pub handed_in: u32,
    /// The node is draining (`baton drain`): it refuses new handoffs, so
    /// its peers choose it for nothing new, as if it were down, while the
    /// connections it serves finish.
    pub draining: bool,
}

impl Load {
    /// The figure strategies compare: connections served plus connections
    /// about to be served elsewhere on this node's behalf.
    pub fn weight(&self) -> u64 {
        u64::from(self.active_connections) + u64::from(self.pending_handoffs)
    }
}

/// Why a target refused a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The target is too busy to take more connections.
    Overloaded,
    /// The target's kernel answered the replayed SYN with a RST.
    KernelRefused,
    /// The target's kernel did not answer the replayed SYN in time.
    Timeout,
    /// The request itself was unusable (bad options, limits exceeded).
    BadRequest,
    /// The target is stopping and takes no new connections.
    ShuttingDown,
    /// The target is draining (`baton drain`): it takes no new handoffs.
    Draining,
    /// A reason this version does not know; kept so that newer peers can add
    /// reasons without breaking older ones.
    Unknown(u8),
}

impl RejectReason {
    /// The reason's wire code.
    pub fn code(self) -> u8 {
        match self {
            RejectReason::Overloaded => 1,
            RejectReason::KernelRefused => 2,
            RejectReason::Timeout => 3,
            RejectReason::BadRequest => 4,
            RejectReason::ShuttingDown => 5,
            RejectReason::Draining => 6,
            RejectReason::Unknown(code) => code,
        }
    }

    /// The reason for a wire code. `Unknown(c)` with a known `c` is not
    /// produced: the known variant is returned instead.
    pub fn from_code(code: u8) -> RejectReason {
        match code {
            1 => RejectReason::Overloaded,
            2 => RejectReason::KernelRefused,
            3 => RejectReason::Timeout,
            4 => RejectReason::BadRequest,
            5 => RejectReason::ShuttingDown,
            6 => RejectReason::Draining,
            other => RejectReason::Unknown(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_codes_round_trip() {
        for code in 0..=u8::MAX {
            assert_eq!(RejectReason::from_code(code).code(), code);
        }
    }

    #[test]
    fn known_codes_are_distinct() {
        let known = [
            RejectReason::Overloaded,
            RejectReason::KernelRefused,
            RejectReason::Timeout,
            RejectReason::BadRequest,
            RejectReason::ShuttingDown,
            RejectReason::Draining,
        ];
        for r in known {
            assert_eq!(RejectReason::from_code(r.code()), r);
            assert!(!matches!(r, RejectReason::Unknown(_)));
        }
    }

    #[test]
    fn load_weight_does_not_overflow() {
        let load = Load {
            active_connections: u32::MAX,
            pending_handoffs: u32::MAX,
            handed_in: 0,
            draining: false,
        };
        assert_eq!(load.weight(), 2 * u64::from(u32::MAX));
    }
}
