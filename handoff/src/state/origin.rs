//! The origin's state machine: the node that accepted the connection.
//!
//! ```text
//!  SYN ──▶ Handshake ──data──▶ Held ──DecidedHandoff──▶ HandoffPending ──Accept──▶ Forwarding
//!            │                  │                          │                          │
//!            │   DecidedLocal, Unclassifiable,      Reject, TargetClosed,    TargetClosed, Timeout,
//!            │   ChosenUnavailable,                 Timeout, PeerDown        PeerDown (RST to client)
//!            │   HoldLimitReached, Timeout, client FIN
//!            │                  ▼                          ▼                          ▼
//!            │                Local ◀──────────────────────┘                        Closed
//!            │                                                                        ▲
//!            └──── Timeout, client RST ──── (client RST also from Held, HandoffPending) ┘
//! ```
//!
//! Each outcome is noted by the transition that decides it
//! ([`Note`](super::Note)): served here, unclassifiable, undecided at a hold
//! limit, handed off, fell back (and why), reset mid-handoff, reset because
//! the target went down, expired.
//!
//! Local and Closed are final: the flow is forgotten. A connection served
//! here leaves the flow table at the decision, and its later packets pass
//! between client and kernel with no work but the table lookup.
//!
//! Until the target accepts, the origin kernel owns a healthy connection
//! (it saw the handshake, and the request bytes are only held back), so
//! every failure before Forwarding falls back to serving the request here
//! with nothing lost. While the request is pending, the client's packets
//! are queued, not passed on: the target may answer the client before its
//! Accept arrives here, and the client's acknowledgements of that answer
//! belong to the target. Once the target accepts, the origin kernel is
//! reset, and the queued and all later client packets go to the target;
//! from then on the target decides when the flow ends.

use super::{
    Actions, Event, Fallback, Gauge, InvalidTransition, Machine, Note, Step, TimerKind, Transition,
};

/// Where a connection accepted here stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginState {
    /// The client's SYN was seen and passed to the kernel; waiting for the
    /// request's first bytes. The kernel's SYN-ACK (whose ISN, options and
    /// timestamps a handoff needs) passes by meanwhile.
    Handshake,
    /// Request bytes are held back from the kernel while they are classified.
    Held,
    /// A HandoffRequest is out; the kernel still owns the connection.
    HandoffPending,
    /// The target took over: client packets are forwarded to it.
    Forwarding,
    /// Final: served here. The kernel has everything; the flow is forgotten.
    Local,
    /// Final: the connection is over (or was handed off and is now over).
    Closed,
}

/// What happened to a connection, as the origin sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginEvent {
    /// A segment from the local kernel (its SYN-ACK among them).
    FromKernel,
    /// A client segment with nothing to hold: no payload, no FIN, no RST;
    /// or a repeated SYN, whatever it carries.
    AckFromClient,
    /// A client segment with payload (a FIN may ride on it).
    DataFromClient,
    /// A client FIN without payload.
    FinFromClient,
    /// A client RST.
    RstFromClient,
    /// The held bytes were classified: the policy chose this node.
    DecidedLocal,
    /// The held bytes are not the request the service expects (HTTP or
    /// TLS): serve here, unclassified.
    Unclassifiable,
    /// The policy chose a node that cannot take the connection: its channel
    /// is down, or the kernel's SYN-ACK (whose ISN a request needs) was
    /// never seen.
    ChosenUnavailable,
    /// The held bytes were classified: hand off to a node that is up.
    DecidedHandoff,
    /// The held bytes or segments reached their limit without a decision.
    HoldLimitReached,
    /// HandoffAccept from the target.
    Accept,
    /// HandoffReject from the target.
    Reject,
    /// HandoffClosed from the target.
    TargetClosed,
    /// The state's timer expired (see [`OriginState::timer`]).
    Timeout,
    /// The control channel to the target went down.
    PeerDown,
}

/// What the engine must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginAction {
    /// Pass the client's packet to the local kernel.
    PassToKernel,
    /// Pass the kernel's packet to the client, recording what a handoff
    /// request carries (the SYN-ACK's ISN and options, the latest timestamp).
    PassToClient,
    /// Append the packet's payload to the held bytes; do not pass it on.
    Hold,
    /// Keep the client's packet for the target, up to a bound (beyond it,
    /// drop it: the client sends it again).
    Queue,
    /// Give the held frames to the local kernel, in order, as the client
    /// sent them. Queued packets are dropped: the client repeats what the
    /// kernel needs.
    ReleaseHeldToKernel,
    /// Discard the kernel's packet: the kernel was reset, it is stale.
    Drop,
    /// Send a HandoffRequest to the chosen node.
    SendRequest,
    /// Send HandoffClosed to the target: the handoff is abandoned, and the
    /// target must reset its copy of the connection.
    SendClosed,
    /// Send a RST to the local kernel (seq = isn_client + 1) so that it
    /// forgets the connection; its web server never sees the request.
    ResetKernel,
    /// Forward the queued client packets to the target, in order.
    ForwardQueued,
    /// Forward the client's packet to the target (destination MAC rewrite).
    ForwardToTarget,
    /// Send a RST to the client at its last acknowledgement: its connection
    /// cannot be served any more.
    ResetClient,
}

/// The timer each live state runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginTimer {
    /// The request takes too long to come: forget the flow.
    Handshake,
    /// No decision within the hold time: serve here.
    Hold,
    /// No answer from the target: serve here, and call the target off.
    Handoff,
    /// No client packet for a while on a forwarded flow: forget it.
    /// Restarted by every packet forwarded.
    Idle,
}

impl TimerKind for OriginTimer {
    fn restarts_with_traffic(self) -> bool {
        self == OriginTimer::Idle
    }
}

impl Machine for OriginState {
    type Event = OriginEvent;
    type Action = OriginAction;
    type Timer = OriginTimer;

    /// A new flow: the client's SYN was seen.
    fn start() -> Transition<OriginState> {
        Transition {
            next: OriginState::Handshake,
            actions: Actions::of(&[OriginAction::PassToKernel]),
            note: None,
        }
    }

    fn timer(self) -> Option<OriginTimer> {
        match self {
            OriginState::Handshake => Some(OriginTimer::Handshake),
            OriginState::Held => Some(OriginTimer::Hold),
            OriginState::HandoffPending => Some(OriginTimer::Handoff),
            OriginState::Forwarding => Some(OriginTimer::Idle),
            OriginState::Local | OriginState::Closed => None,
        }
    }

    fn is_final(self) -> bool {
        matches!(self, OriginState::Local | OriginState::Closed)
    }

    fn gauge(self) -> Option<Gauge> {
        (self == OriginState::HandoffPending).then_some(Gauge::HandoffsPending)
    }

    fn name(self) -> &'static str {
        match self {
            OriginState::Handshake => "Handshake",
            OriginState::Held => "Held",
            OriginState::HandoffPending => "HandoffPending",
            OriginState::Forwarding => "Forwarding",
            OriginState::Local => "Local",
            OriginState::Closed => "Closed",
        }
    }

    /// The module documentation has the diagram. Packet events are valid
    /// in every state.
    fn on(self, event: OriginEvent) -> Step<OriginState> {
        use OriginAction::*;
        use OriginEvent as E;
        use OriginState as S;

        let step = |next: OriginState, actions: &[OriginAction], note: Option<Note>| {
            Ok(Transition {
                next,
                actions: Actions::of(actions),
                note,
            })
        };
        let stay = |actions: &[OriginAction]| step(self, actions, None);
        let go = |next: OriginState, actions: &[OriginAction]| step(next, actions, None);
        let fell_back = |why: Fallback, actions: &[OriginAction]| {
            step(S::Local, actions, Some(Note::FellBack(why)))
        };
        let invalid = || Err(InvalidTransition { state: self, event });

        match (self, event) {
            // A forgotten flow: its packets pass through, and only a late
            // Accept needs an answer, or the target would keep its copy.
            (S::Local | S::Closed, E::FromKernel) => stay(&[PassToClient]),
            (
                S::Local | S::Closed,
                E::AckFromClient | E::DataFromClient | E::FinFromClient | E::RstFromClient,
            ) => stay(&[PassToKernel]),
            (S::Local | S::Closed, E::Accept) => stay(&[SendClosed]),
            (S::Local | S::Closed, E::Reject | E::TargetClosed | E::Timeout | E::PeerDown) => {
                stay(&[])
            }

            // The kernel's packets reach the client until the target takes
            // over; after that the kernel was reset and has nothing to say.
            (S::Forwarding, E::FromKernel) => stay(&[Drop]),
            (_, E::FromKernel) => stay(&[PassToClient]),

            // Everything from the client goes to the target once it took
            // over, and waits for its answer while the request is pending.
            (
                S::Forwarding,
                E::AckFromClient | E::DataFromClient | E::FinFromClient | E::RstFromClient,
            ) => stay(&[ForwardToTarget]),
            (S::HandoffPending, E::AckFromClient | E::DataFromClient | E::FinFromClient) => {
                stay(&[Queue])
            }
            // The client gave up mid-handoff: the kernel, still the owner,
            // gets its RST, and the target forgets the flow.
            (S::HandoffPending, E::RstFromClient) => step(
                S::Closed,
                &[SendClosed, PassToKernel],
                Some(Note::ClientResetMidHandoff),
            ),

            // Before a decision.
            (S::Handshake | S::Held, E::AckFromClient) => stay(&[PassToKernel]),
            (S::Handshake | S::Held, E::DataFromClient) => go(S::Held, &[Hold]),
            (S::Handshake, E::FinFromClient) => stay(&[PassToKernel]),
            // The client finished sending before a decision: serve what it
            // sent here, FIN included.
            (S::Held, E::FinFromClient) => step(
                S::Local,
                &[ReleaseHeldToKernel, PassToKernel],
                Some(Note::HoldUndecided),
            ),
            // The kernel is reset along with whatever was held.
            (S::Handshake | S::Held, E::RstFromClient) => go(S::Closed, &[PassToKernel]),

            // Deciding.
            (S::Held, E::DecidedLocal) => {
                step(S::Local, &[ReleaseHeldToKernel], Some(Note::ServedLocal))
            }
            (S::Held, E::Unclassifiable) => {
                step(S::Local, &[ReleaseHeldToKernel], Some(Note::BadRequest))
            }
            (S::Held, E::ChosenUnavailable) => {
                fell_back(Fallback::Unavailable, &[ReleaseHeldToKernel])
            }
            (S::Held, E::HoldLimitReached | E::Timeout) => {
                step(S::Local, &[ReleaseHeldToKernel], Some(Note::HoldUndecided))
            }
            (S::Held, E::DecidedHandoff) => go(S::HandoffPending, &[SendRequest]),

            // The target's answer.
            (S::HandoffPending, E::Accept) => step(
                S::Forwarding,
                &[ResetKernel, ForwardQueued],
                Some(Note::HandedOff),
            ),
            (S::HandoffPending, E::Reject) => fell_back(Fallback::Rejected, &[ReleaseHeldToKernel]),
            (S::HandoffPending, E::TargetClosed) => {
                fell_back(Fallback::TargetClosed, &[ReleaseHeldToKernel])
            }
            (S::HandoffPending, E::PeerDown) => {
                fell_back(Fallback::PeerDown, &[ReleaseHeldToKernel])
            }
            // Should the target still accept, it resets its copy.
            (S::HandoffPending, E::Timeout) => {
                fell_back(Fallback::TimedOut, &[ReleaseHeldToKernel, SendClosed])
            }

            // The end of a handed-off connection: the target says so, the
            // client stopped sending, or the target can no longer be reached.
            (S::Forwarding, E::TargetClosed) => go(S::Closed, &[]),
            (S::Forwarding, E::Timeout) => step(S::Closed, &[], Some(Note::Expired)),
            (S::Forwarding, E::PeerDown) => {
                step(S::Closed, &[ResetClient], Some(Note::PeerDownReset))
            }

            (S::Handshake, E::Timeout) => step(S::Closed, &[], Some(Note::Expired)),
            // No peer is involved yet.
            (S::Handshake | S::Held, E::PeerDown) => stay(&[]),

            // Decisions outside Held, or answers to a request never sent (or
            // already answered): the engine or the peer is confused.
            (
                _,
                E::DecidedLocal
                | E::Unclassifiable
                | E::ChosenUnavailable
                | E::DecidedHandoff
                | E::HoldLimitReached
                | E::Accept
                | E::Reject
                | E::TargetClosed,
            ) => invalid(),
        }
    }
}

impl Event for OriginEvent {
    fn carries_packet(self) -> bool {
        matches!(
            self,
            OriginEvent::FromKernel
                | OriginEvent::AckFromClient
                | OriginEvent::DataFromClient
                | OriginEvent::FinFromClient
                | OriginEvent::RstFromClient
        )
    }

    fn from_timer(self) -> bool {
        self == OriginEvent::Timeout
    }

    fn name(self) -> &'static str {
        match self {
            OriginEvent::FromKernel => "FromKernel",
            OriginEvent::AckFromClient => "AckFromClient",
            OriginEvent::DataFromClient => "DataFromClient",
            OriginEvent::FinFromClient => "FinFromClient",
            OriginEvent::RstFromClient => "RstFromClient",
            OriginEvent::DecidedLocal => "DecidedLocal",
            OriginEvent::Unclassifiable => "Unclassifiable",
            OriginEvent::ChosenUnavailable => "ChosenUnavailable",
            OriginEvent::DecidedHandoff => "DecidedHandoff",
            OriginEvent::HoldLimitReached => "HoldLimitReached",
            OriginEvent::Accept => "Accept",
            OriginEvent::Reject => "Reject",
            OriginEvent::TargetClosed => "TargetClosed",
            OriginEvent::Timeout => "Timeout",
            OriginEvent::PeerDown => "PeerDown",
        }
    }
}
