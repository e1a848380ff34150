//! The origin's state machine: the node that accepted the connection.
//!
//! ```text
//!  SYN ──▶ Handshake ──(data, after the SYN-ACK)──▶ Held ──(Local, hold
//!            │  (data before the SYN-ACK)            │     limit, timeout)──▶ Local
//!            └──────────────────────────────────────────────────────────────▶ Local
//!                                                   │
//!                                          Classified(Handoff)
//!                                                   ▼
//!                      ┌── Reject / Timeout / PeerDown / TargetClosed ──▶ Local
//!              HandoffPending
//!                      └── Accept ──▶ Forwarding ──(TargetClosed)──▶ Closed
//!                                        └────────(PeerDown: ResetClient)──▶ Closed
//!
//!  Handshake, Held, HandoffPending, Local ──(client FIN/RST)──▶ Closed
//!  Handshake, Local ──(timeout)──▶ Closed
//! ```
//!
//! Until the target accepts, the origin kernel owns a healthy connection
//! (it saw the handshake, and the request bytes are only held back), so
//! every failure before Forwarding falls back to serving the request here
//! with nothing lost. Once the target accepts, the origin kernel is reset
//! and the client's packets are forwarded to the target; from then on the
//! target decides when the flow ends.

use super::{Actions, InvalidTransition, Step};
use crate::policy::Decision;

/// Where a connection accepted here stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginState {
    /// The client's SYN was seen and passed to the kernel; waiting for the
    /// kernel's SYN-ACK (whose ISN, options and timestamps a handoff needs)
    /// and the client's first data.
    Handshake { syn_ack_seen: bool },
    /// Request bytes are held back from the kernel while they are classified.
    Held,
    /// Served here: packets pass through untouched.
    Local,
    /// A HandoffRequest is out; the kernel still owns the connection.
    HandoffPending,
    /// The target took over: client packets are forwarded to it.
    Forwarding,
    /// The flow is over; the glue has freed it.
    Closed,
}

/// What happened to a connection, as the origin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginEvent {
    /// The local kernel sent its SYN-ACK towards the client.
    SynAckFromKernel,
    /// A client segment without payload (and without FIN or RST).
    AckFromClient,
    /// A client segment with payload.
    DataFromClient,
    /// The held bytes were classified and the policy decided. (A request the
    /// classifier finds invalid is `Classified(Decision::Local)`.)
    Classified(Decision),
    /// The held bytes or segments reached their limit without a decision.
    HoldLimitReached,
    /// HandoffAccept from the target.
    Accept,
    /// HandoffReject from the target.
    Reject,
    /// The state's timer expired (see [`OriginState::timer`]).
    Timeout,
    /// The control channel to the target went down.
    PeerDown,
    /// A client segment with FIN or RST.
    ClientFinOrRst,
    /// HandoffClosed from the target.
    TargetClosed,
}

/// What the glue must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginAction {
    /// Pass the client's packet to the local kernel.
    PassToKernel,
    /// Pass the kernel's packet to the client (recording the SYN-ACK's ISN,
    /// options and timestamps the first time).
    PassToClient,
    /// Append the packet's payload to the held bytes; do not pass it on.
    Hold,
    /// Give the held bytes to the local kernel, in order, as the client
    /// sent them.
    ReleaseHeldToKernel,
    /// Discard the packet; the client will retransmit it, and whoever serves
    /// the connection by then will get it.
    Drop,
    /// Send a HandoffRequest to the node named by the decision.
    SendRequest,
    /// Send HandoffClosed to the target: the handoff is abandoned, and the
    /// target must reset its copy of the connection.
    SendClosed,
    /// Send a RST to the local kernel (seq = isn_client + 1) so that it
    /// forgets the connection; its web server never sees the request.
    ResetKernel,
    /// Forward the client's packet to the target (destination MAC rewrite).
    ForwardToTarget,
    /// Send a RST to the client: its connection cannot be served any more.
    ResetClient,
    /// Free the flow's state.
    Free,
}

/// The timer each state runs, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginTimer {
    /// The handshake or the first data takes too long: forget the flow.
    Handshake,
    /// No decision within the hold time: serve here.
    Hold,
    /// No answer from the target: serve here.
    Handoff,
    /// No packet for a while on a local flow: forget it. Restarted by every
    /// packet.
    Idle,
}

impl OriginState {
    /// A new flow: the client's SYN was seen.
    pub fn start() -> (OriginState, Actions<OriginAction>) {
        (
            OriginState::Handshake {
                syn_ack_seen: false,
            },
            Actions::of(&[OriginAction::PassToKernel]),
        )
    }

    /// The timer the glue runs while in this state. A Forwarding flow has
    /// none: the target ends it (or the channel to the target going down).
    pub fn timer(self) -> Option<OriginTimer> {
        match self {
            OriginState::Handshake { .. } => Some(OriginTimer::Handshake),
            OriginState::Held => Some(OriginTimer::Hold),
            OriginState::HandoffPending => Some(OriginTimer::Handoff),
            OriginState::Local => Some(OriginTimer::Idle),
            OriginState::Forwarding | OriginState::Closed => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OriginState::Handshake { .. } => "Handshake",
            OriginState::Held => "Held",
            OriginState::Local => "Local",
            OriginState::HandoffPending => "HandoffPending",
            OriginState::Forwarding => "Forwarding",
            OriginState::Closed => "Closed",
        }
    }

    /// The transition function; the module documentation has the diagram.
    pub fn on(self, event: OriginEvent) -> Step<OriginState, OriginAction> {
        use OriginAction::*;
        use OriginEvent as E;
        use OriginState as S;

        let stay = |actions: &[OriginAction]| Ok((self, Actions::of(actions)));
        let go = |next: OriginState, actions: &[OriginAction]| Ok((next, Actions::of(actions)));
        let invalid = || {
            Err(InvalidTransition {
                state: self.name(),
                event: event.name(),
            })
        };

        match (self, &event) {
            // A finished flow ignores everything; only a late Accept needs
            // an answer, or the target would keep its copy.
            (S::Closed, E::Accept) => stay(&[SendClosed]),
            (S::Closed, _) => stay(&[]),

            // Packets, in every live state.
            (S::Forwarding, E::SynAckFromKernel) => stay(&[Drop]),
            (_, E::SynAckFromKernel) => match self {
                S::Handshake { .. } => go(S::Handshake { syn_ack_seen: true }, &[PassToClient]),
                _ => stay(&[PassToClient]),
            },
            (S::Forwarding, E::AckFromClient | E::DataFromClient | E::ClientFinOrRst) => {
                stay(&[ForwardToTarget])
            }
            (_, E::AckFromClient) => stay(&[PassToKernel]),
            (S::Handshake { syn_ack_seen: true }, E::DataFromClient) => go(S::Held, &[Hold]),
            // Without the SYN-ACK there is nothing to hand off with.
            (
                S::Handshake {
                    syn_ack_seen: false,
                },
                E::DataFromClient,
            ) => go(S::Local, &[PassToKernel]),
            (S::Held, E::DataFromClient) => stay(&[Hold]),
            (S::HandoffPending, E::DataFromClient) => stay(&[Drop]),
            (S::Local, E::DataFromClient) => stay(&[PassToKernel]),

            // The client goes away before the target took over: the local
            // kernel gets everything, and any handoff is called off.
            (S::Handshake { .. } | S::Local, E::ClientFinOrRst) => {
                go(S::Closed, &[PassToKernel, Free])
            }
            (S::Held, E::ClientFinOrRst) => {
                go(S::Closed, &[ReleaseHeldToKernel, PassToKernel, Free])
            }
            (S::HandoffPending, E::ClientFinOrRst) => go(
                S::Closed,
                &[SendClosed, ReleaseHeldToKernel, PassToKernel, Free],
            ),

            // Deciding.
            (S::Held, E::Classified(Decision::Local) | E::HoldLimitReached | E::Timeout) => {
                go(S::Local, &[ReleaseHeldToKernel])
            }
            (S::Held, E::Classified(Decision::Handoff { .. })) => {
                go(S::HandoffPending, &[SendRequest])
            }

            // The target's answer.
            (S::HandoffPending, E::Accept) => go(S::Forwarding, &[ResetKernel]),
            (S::HandoffPending, E::Reject | E::PeerDown | E::TargetClosed) => {
                go(S::Local, &[ReleaseHeldToKernel])
            }
            (S::HandoffPending, E::Timeout) => go(S::Local, &[SendClosed, ReleaseHeldToKernel]),
            // Too late: this node serves the connection now.
            (S::Local, E::Accept) => stay(&[SendClosed]),
            (S::Local, E::Reject | E::TargetClosed) => stay(&[]),

            // The end of a handed-off connection.
            (S::Forwarding, E::TargetClosed) => go(S::Closed, &[Free]),
            (S::Forwarding, E::PeerDown) => go(S::Closed, &[ResetClient, Free]),
            // The target decides when a forwarded flow ends.
            (S::Forwarding, E::Timeout) => stay(&[]),

            (S::Handshake { .. } | S::Local, E::Timeout) => go(S::Closed, &[Free]),
            // No peer is involved yet (or any more).
            (S::Handshake { .. } | S::Held | S::Local, E::PeerDown) => stay(&[]),

            // Classification outside Held, or answers to a request never
            // sent: the glue or the peer is confused.
            (
                _,
                E::Classified(_) | E::HoldLimitReached | E::Accept | E::Reject | E::TargetClosed,
            ) => invalid(),
        }
    }
}

impl OriginEvent {
    pub fn name(&self) -> &'static str {
        match self {
            OriginEvent::SynAckFromKernel => "SynAckFromKernel",
            OriginEvent::AckFromClient => "AckFromClient",
            OriginEvent::DataFromClient => "DataFromClient",
            OriginEvent::Classified(_) => "Classified",
            OriginEvent::HoldLimitReached => "HoldLimitReached",
            OriginEvent::Accept => "Accept",
            OriginEvent::Reject => "Reject",
            OriginEvent::Timeout => "Timeout",
            OriginEvent::PeerDown => "PeerDown",
            OriginEvent::ClientFinOrRst => "ClientFinOrRst",
            OriginEvent::TargetClosed => "TargetClosed",
        }
    }
}
