//! The target's state machine: the node that takes a connection over.
//!
//! ```text
//!  HandoffRequest ──▶ Replaying ──(kernel SYN-ACK: learn the translation,
//!                       │          drop it, inject ACK + held bytes,
//!                       │          send Accept)──▶ Established
//!                       ├─(kernel RST: Reject KernelRefused)──▶ Closed
//!                       ├─(timeout: Reject Timeout)───────────▶ Closed
//!                       └─(origin gave up, or peer down)──────▶ Closed
//!
//!  Established ──(FIN or RST either way)──▶ Closing ──(linger timeout:
//!       │                                      │      send HandoffClosed)──▶ Closed
//!       ├─(idle timeout: reset both sides)────────────────────────────────▶ Closed
//!       └─(origin gave up, or peer down)──────────────────────────────────▶ Closed
//! ```
//!
//! Replaying: a SYN carrying the client's address, ISN and options was
//! injected into the local kernel, as if the client had connected here. The
//! kernel's SYN-ACK gives its ISN, from which the sequence delta, the
//! timestamp offset and the window-scale difference follow; the SYN-ACK is
//! dropped (the client already has the origin's), and the client's ACK and
//! the held request are injected instead. From then on, every packet is
//! translated both ways. Closing lingers for a TIME-WAIT-like delay so that
//! the last ACKs and retransmitted FINs still get translated.

use super::Actions;
use crate::msg::RejectReason;

/// Where a connection handed in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    /// The replayed SYN is in the kernel; waiting for its SYN-ACK.
    Replaying,
    /// The kernel has the connection and the request; translating.
    Established,
    /// A FIN or RST was seen; translating until the linger timer expires.
    Closing,
    /// The flow is over; the glue has freed it.
    Closed,
}

/// What happened to a handed-in connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetEvent {
    /// The local kernel answered the replayed SYN.
    SynAckFromKernel,
    /// Any other kernel segment without FIN or RST.
    FromKernel,
    /// A kernel segment with FIN or RST (a RST in Replaying: it refused).
    FinOrRstFromKernel,
    /// A client segment, forwarded by the origin, without FIN or RST.
    FromClient,
    /// A client segment with FIN or RST.
    FinOrRstFromClient,
    /// The state's timer expired (see [`TargetState::timer`]).
    Timeout,
    /// HandoffClosed from the origin: it abandoned the handoff.
    OriginClosed,
    /// The control channel to the origin went down.
    PeerDown,
}

/// What the glue must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetAction {
    /// Inject the replayed SYN (client's ISN and options, destination
    /// rewritten to this node's own address) into the local kernel.
    InjectSyn,
    /// Compute the sequence delta (isn_origin − isn_target), timestamp
    /// offset and window shifts from the kernel's SYN-ACK.
    LearnTranslation,
    /// Discard the packet.
    Drop,
    /// Inject the client's ACK of the kernel's SYN-ACK and the held request
    /// bytes into the local kernel.
    InjectAckAndHeld,
    /// Send HandoffAccept (with the kernel's ISN) to the origin.
    SendAccept,
    /// Send HandoffReject to the origin.
    SendReject(RejectReason),
    /// Translate the kernel's packet and send it to the client directly.
    TranslateToClient,
    /// Translate the client's packet and give it to the local kernel.
    TranslateToKernel,
    /// Send a RST to the local kernel, as from the client.
    ResetKernel,
    /// Send a RST to the client, as from the address it connected to.
    ResetClient,
    /// Send HandoffClosed to the origin, so that it frees its flow.
    SendClosed,
    /// Free the flow's state.
    Free,
}

/// The timer each state runs, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetTimer {
    /// The kernel did not answer the replayed SYN: reject.
    Replay,
    /// No packet for a long while: reset both sides. Restarted by every
    /// packet.
    Idle,
    /// The TIME-WAIT-like delay after a FIN or RST.
    Linger,
}

impl TargetState {
    /// A new flow, for an accepted HandoffRequest. (A request refused
    /// outright, e.g. when overloaded, gets a HandoffReject and no state.)
    pub fn start() -> (TargetState, Actions<TargetAction>) {
        (
            TargetState::Replaying,
            Actions::of(&[TargetAction::InjectSyn]),
        )
    }

    /// The timer the glue runs while in this state.
    pub fn timer(self) -> Option<TargetTimer> {
        match self {
            TargetState::Replaying => Some(TargetTimer::Replay),
            TargetState::Established => Some(TargetTimer::Idle),
            TargetState::Closing => Some(TargetTimer::Linger),
            TargetState::Closed => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TargetState::Replaying => "Replaying",
            TargetState::Established => "Established",
            TargetState::Closing => "Closing",
            TargetState::Closed => "Closed",
        }
    }

    /// The transition function; the module documentation has the diagram.
    /// Every event has a meaning in every state (a stray packet is dropped),
    /// so, unlike the origin's, this one cannot fail.
    pub fn on(self, event: TargetEvent) -> (TargetState, Actions<TargetAction>) {
        use TargetAction::*;
        use TargetEvent as E;
        use TargetState as S;

        let stay = |actions: &[TargetAction]| (self, Actions::of(actions));
        let go = |next: TargetState, actions: &[TargetAction]| (next, Actions::of(actions));

        match (self, event) {
            (S::Closed, _) => stay(&[]),

            (S::Replaying, E::SynAckFromKernel) => go(
                S::Established,
                &[LearnTranslation, Drop, InjectAckAndHeld, SendAccept],
            ),
            (S::Replaying, E::FinOrRstFromKernel) => go(
                S::Closed,
                &[Drop, SendReject(RejectReason::KernelRefused), Free],
            ),
            (S::Replaying, E::Timeout) => go(
                S::Closed,
                &[ResetKernel, SendReject(RejectReason::Timeout), Free],
            ),
            // The origin forwards nothing before Accept; stray packets go.
            (S::Replaying, E::FromKernel | E::FromClient | E::FinOrRstFromClient) => stay(&[Drop]),

            // Our injected ACK was lost and the kernel repeats its SYN-ACK.
            (S::Established, E::SynAckFromKernel) => stay(&[Drop, InjectAckAndHeld]),
            (S::Closing, E::SynAckFromKernel) => stay(&[Drop]),
            (S::Established | S::Closing, E::FromKernel) => stay(&[TranslateToClient]),
            (S::Established | S::Closing, E::FromClient) => stay(&[TranslateToKernel]),
            (S::Established, E::FinOrRstFromKernel) => go(S::Closing, &[TranslateToClient]),
            (S::Established, E::FinOrRstFromClient) => go(S::Closing, &[TranslateToKernel]),
            (S::Closing, E::FinOrRstFromKernel) => stay(&[TranslateToClient]),
            (S::Closing, E::FinOrRstFromClient) => stay(&[TranslateToKernel]),

            (S::Established, E::Timeout) => {
                go(S::Closed, &[ResetClient, ResetKernel, SendClosed, Free])
            }
            (S::Closing, E::Timeout) => go(S::Closed, &[SendClosed, Free]),

            // The origin called the handoff off (its client left, or it
            // already serves the connection itself): drop our copy quietly.
            (S::Replaying | S::Established | S::Closing, E::OriginClosed) => {
                go(S::Closed, &[ResetKernel, Free])
            }
            // Without the origin, the client's packets cannot reach us: tell
            // the client at once rather than leave it hanging.
            (S::Established, E::PeerDown) => go(S::Closed, &[ResetClient, ResetKernel, Free]),
            (S::Replaying | S::Closing, E::PeerDown) => go(S::Closed, &[ResetKernel, Free]),
        }
    }
}

impl TargetEvent {
    pub fn name(self) -> &'static str {
        match self {
            TargetEvent::SynAckFromKernel => "SynAckFromKernel",
            TargetEvent::FromKernel => "FromKernel",
            TargetEvent::FinOrRstFromKernel => "FinOrRstFromKernel",
            TargetEvent::FromClient => "FromClient",
            TargetEvent::FinOrRstFromClient => "FinOrRstFromClient",
            TargetEvent::Timeout => "Timeout",
            TargetEvent::OriginClosed => "OriginClosed",
            TargetEvent::PeerDown => "PeerDown",
        }
    }
}
