//! The origin's state machine: the node that accepted the connection.
//!
//! ```text
//!  SYN ──▶ Handshake ──data──▶ Held ──DecidedHandoff──▶ HandoffPending ──Accept──▶ Forwarding
//!            │                  │  ▲                      │  ▲    │  TargetAnswered   │
//!            │                  │  │     Reject, Timeout, │  │    │                   │ TargetClosed,
//!            │                  │  │  TargetClosed,       ▼  │    │                   │ Timeout, PeerDown
//!            │                  │  │  PeerDown ──▶ Retrying ─┘ DecidedHandoff         ▼ (RST to client)
//!            │                  │  │                 │ │                            Closed
//!            │   DecidedLocal,  │  └─────────────────┘ │ NoCandidate                  ▲
//!            │   Unclassifiable,│     DecidedLocal     ▼                              │
//!            │   HoldLimit,     │        │          Refusing ──client FIN, Timeout────┤
//!            │   Timeout, FIN   ▼        ▼   (503 or RST to the client)               │
//!            │                Local ◀────┘                                            │
//!            └──── Timeout, client RST ──── (client RST also from Held, HandoffPending) ┘
//! ```
//!
//! Local and Closed are final: the flow is forgotten. A connection served
//! here leaves the flow table at the decision, and its later packets pass
//! between client and kernel with no work but the table lookup.
//!
//! Until the target accepts, the origin kernel owns a healthy connection
//! (it saw the handshake, and the request bytes are only held back), so
//! a failed handoff loses nothing. It is decided again (`Retrying`) with
//! the node that failed counted out: the next node the policy picks gets a
//! new request, this node serves it when it is a member of the request's
//! pool, and otherwise no node can (`NoCandidate`): the client gets an
//! honest, retryable refusal (`Refusing`: an HTTP 503 with Retry-After, or
//! a RST for TLS) rather than an answer from a node without the content.
//!
//! While the request is pending, the client's packets are queued, not
//! passed on: the target may answer the client before its Accept arrives
//! here, and the client's acknowledgements of that answer belong to the
//! target. So when no answer comes (the timer, or the target's channel
//! going down) but the client has acknowledged data this node's kernel
//! never sent, the target evidently took the connection
//! (`TargetAnswered`): it is forwarded, never served a second time from
//! elsewhere. Once the target accepts, the origin kernel is reset, and the
//! queued and all later client packets go to the target; from then on the
//! target decides when the flow ends.
//!
//! Each outcome is noted by the transition that decides it
//! ([`Note`](super::Note)): served here, unclassifiable, undecided at a hold
//! limit, handed off, rejected, timed out, retried elsewhere, fell back to
//! this node, refused, reset mid-handoff, reset because the target went
//! down, expired.

use super::{Actions, Event, Gauge, InvalidTransition, Machine, Note, Step, TimerKind, Transition};

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
    /// A handoff failed; the request is decided again, without the node
    /// that failed. Left within the same step, by a decision.
    Retrying,
    /// No node can serve the request: the client is told so, and the flow
    /// lingers to finish the close.
    Refusing,
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
    /// A client SYN with an ISN other than the one that opened the flow:
    /// the client opens another connection on the same 4-tuple (its old
    /// one is over; the port was free again).
    NewSynFromClient,
    /// The held bytes were classified: the policy chose this node.
    DecidedLocal,
    /// The held bytes are not the request the service expects (HTTP or
    /// TLS): serve here, unclassified.
    Unclassifiable,
    /// The held bytes were classified: hand off to a node that can take it.
    DecidedHandoff,
    /// No node can take it: the request's pool has no member left that can
    /// (up, and not yet tried), and this node is not one.
    NoCandidate,
    /// The held bytes or segments reached their limit without a decision.
    HoldLimitReached,
    /// HandoffAccept from the target.
    Accept,
    /// HandoffReject from the target.
    Reject,
    /// HandoffClosed from the target.
    TargetClosed,
    /// No answer came, but the client acknowledged data this node's kernel
    /// never sent: the target has the connection.
    TargetAnswered,
    /// The state's timer expired (see [`OriginState::timer`]).
    Timeout,
    /// The refusal's retransmission timer expired, with tries left.
    Retransmit,
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
    /// Forget the queued client packets: no target answered the client,
    /// so they only repeat what the kernel here has, or will get again.
    ClearQueue,
    /// Give the held frames to the local kernel, in order, as the client
    /// sent them. Queued packets are dropped: the client repeats what the
    /// kernel needs.
    ReleaseHeldToKernel,
    /// Discard the packet: the kernel's, once it was reset (stale); the
    /// client's, once it is refused.
    Drop,
    /// Send a HandoffRequest to the chosen node.
    SendRequest,
    /// Send HandoffCancel to the target: the handoff is abandoned, and the
    /// target must reset its copy of the connection.
    SendCancel,
    /// Send a RST to the local kernel (seq = isn_client + 1) so that it
    /// forgets the connection; its web server never sees the request.
    ResetKernel,
    /// Forward the queued client packets to the target, in order.
    ForwardQueued,
    /// Forward the client's packet to the target (destination MAC rewrite).
    ForwardToTarget,
    /// Tell the client no node can serve it, as the node it connected to:
    /// an HTTP `503 Service Unavailable` with `Retry-After` and a FIN, or a
    /// RST for TLS (which cannot be answered without the server's keys).
    Refuse,
    /// Acknowledge the client's FIN after a refusal, so its close completes.
    AckClient,
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
    /// No answer from the target: decide again, and call the target off.
    Handoff,
    /// Paces the refusal's retransmissions; when they are spent, the
    /// client is reset.
    Refusal,
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
            // Retrying is left within the step that entered it; should no
            // decision come, the hold limit serves the request here.
            OriginState::Held | OriginState::Retrying => Some(OriginTimer::Hold),
            OriginState::HandoffPending => Some(OriginTimer::Handoff),
            OriginState::Refusing => Some(OriginTimer::Refusal),
            OriginState::Forwarding => Some(OriginTimer::Idle),
            OriginState::Local | OriginState::Closed => None,
        }
    }

    fn is_final(self) -> bool {
        matches!(self, OriginState::Local | OriginState::Closed)
    }

    fn gauge(self) -> Option<Gauge> {
        match self {
            OriginState::HandoffPending => Some(Gauge::HandoffsPending),
            OriginState::Forwarding => Some(Gauge::Forwarding),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            OriginState::Handshake => "Handshake",
            OriginState::Held => "Held",
            OriginState::HandoffPending => "HandoffPending",
            OriginState::Retrying => "Retrying",
            OriginState::Refusing => "Refusing",
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
        let noted = |next: OriginState, actions: &[OriginAction], note: Note| {
            step(next, actions, Some(note))
        };
        let invalid = || Err(InvalidTransition { state: self, event });
        // No node can serve the request: tell the client (acknowledging the
        // request held), and reset the kernel (it never saw the request).
        let refuse = || noted(S::Refusing, &[Refuse, ResetKernel], Note::Refused);

        match (self, event) {
            // A forgotten flow: its packets pass through, and only a late
            // Accept needs an answer, or the target would keep its copy.
            (S::Local | S::Closed, E::FromKernel) => stay(&[PassToClient]),
            (
                S::Local | S::Closed,
                E::AckFromClient | E::DataFromClient | E::FinFromClient | E::RstFromClient,
            ) => stay(&[PassToKernel]),
            (S::Local | S::Closed, E::Accept) => stay(&[SendCancel]),
            (
                S::Local | S::Closed,
                E::Reject | E::TargetClosed | E::Timeout | E::Retransmit | E::PeerDown,
            ) => stay(&[]),

            // The kernel's packets reach the client until the target takes
            // over or the client is refused; after that the kernel was
            // reset and has nothing to say.
            (S::Forwarding | S::Refusing, E::FromKernel) => stay(&[Drop]),

            // The client reuses the 4-tuple of a connection that is over:
            // this flow ends (the target drops its lingering copy), and the
            // SYN opens a new one. Before a decision, the kernel here still
            // owns the old connection and answers the SYN as it would.
            (S::Forwarding, E::NewSynFromClient) => go(S::Closed, &[SendCancel]),
            (S::Refusing, E::NewSynFromClient) => go(S::Closed, &[]),
            (S::Local | S::Closed, E::NewSynFromClient) => stay(&[PassToKernel]),
            (S::HandoffPending, E::NewSynFromClient) => stay(&[Queue]),
            (S::Handshake | S::Held | S::Retrying, E::NewSynFromClient) => stay(&[PassToKernel]),
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
            (S::HandoffPending, E::RstFromClient) => noted(
                S::Closed,
                &[SendCancel, PassToKernel],
                Note::ClientResetMidHandoff,
            ),

            // Before a decision (and, for the one step it lasts, while one
            // is taken again).
            (S::Handshake | S::Held | S::Retrying, E::AckFromClient) => stay(&[PassToKernel]),
            (S::Handshake | S::Held, E::DataFromClient) => go(S::Held, &[Hold]),
            (S::Retrying, E::DataFromClient) => stay(&[Hold]),
            // Nothing to decide: the rest is the kernel's, untracked (a
            // health check's connect-and-close, a client that gave up).
            (S::Handshake, E::FinFromClient) => {
                // (Nothing was held; releasing it keeps "served here"
                // one set of actions.)
                noted(
                    S::Local,
                    &[ReleaseHeldToKernel, PassToKernel],
                    Note::NoRequest,
                )
            }
            // The client finished sending before a decision: serve what it
            // sent here, FIN included.
            (S::Held, E::FinFromClient) => noted(
                S::Local,
                &[ReleaseHeldToKernel, PassToKernel],
                Note::HoldUndecided,
            ),
            (S::Retrying, E::FinFromClient) => noted(
                S::Local,
                &[ReleaseHeldToKernel, PassToKernel],
                Note::FellBack,
            ),
            // The kernel is reset along with whatever was held.
            (S::Handshake | S::Held | S::Retrying, E::RstFromClient) => {
                go(S::Closed, &[PassToKernel])
            }

            // Deciding.
            (S::Held, E::DecidedLocal) => {
                noted(S::Local, &[ReleaseHeldToKernel], Note::ServedLocal)
            }
            (S::Held, E::Unclassifiable) => {
                noted(S::Local, &[ReleaseHeldToKernel], Note::BadRequest)
            }
            (S::Held, E::HoldLimitReached | E::Timeout) => {
                noted(S::Local, &[ReleaseHeldToKernel], Note::HoldUndecided)
            }
            (S::Held, E::DecidedHandoff) => go(S::HandoffPending, &[SendRequest]),
            (S::Held | S::Retrying, E::NoCandidate) => refuse(),

            // Deciding again, after a failed handoff.
            (S::Retrying, E::DecidedHandoff) => {
                noted(S::HandoffPending, &[SendRequest], Note::HandoffRetried)
            }
            (
                S::Retrying,
                E::DecidedLocal | E::Unclassifiable | E::HoldLimitReached | E::Timeout,
            ) => noted(S::Local, &[ReleaseHeldToKernel], Note::FellBack),

            // The target's answer, or the lack of one.
            (S::HandoffPending, E::Accept) => noted(
                S::Forwarding,
                &[ResetKernel, ForwardQueued],
                Note::HandedOff,
            ),
            (S::HandoffPending, E::TargetAnswered) => noted(
                S::Forwarding,
                &[ResetKernel, ForwardQueued],
                Note::HandedOff,
            ),
            (S::HandoffPending, E::Reject) => {
                noted(S::Retrying, &[ClearQueue], Note::HandoffRejected)
            }
            (S::HandoffPending, E::TargetClosed | E::PeerDown) => go(S::Retrying, &[ClearQueue]),
            // Should the target still accept, it resets its copy.
            (S::HandoffPending, E::Timeout) => noted(
                S::Retrying,
                &[SendCancel, ClearQueue],
                Note::HandoffTimedOut,
            ),

            // Refused: the client's close is acknowledged; whatever else it
            // sends goes; the refusal goes again until the client answers,
            // and then the client is reset.
            (S::Refusing, E::AckFromClient | E::DataFromClient) => stay(&[Drop]),
            (S::Refusing, E::FinFromClient) => go(S::Closed, &[Drop, AckClient]),
            (S::Refusing, E::RstFromClient) => go(S::Closed, &[Drop]),
            (S::Refusing, E::Retransmit) => stay(&[Refuse]),
            (S::Refusing, E::Timeout) => go(S::Closed, &[ResetClient]),
            // A late Accept from a target tried before: undone there.
            (S::Refusing, E::Accept) => stay(&[SendCancel]),
            (S::Refusing, E::Reject | E::TargetClosed | E::PeerDown) => stay(&[]),

            // The end of a handed-off connection: the target says so, the
            // client stopped sending, or the target can no longer be reached.
            (S::Forwarding, E::TargetClosed) => go(S::Closed, &[]),
            (S::Forwarding, E::Timeout) => noted(S::Closed, &[], Note::Expired),
            (S::Forwarding, E::PeerDown) => noted(S::Closed, &[ResetClient], Note::PeerDownReset),

            (S::Handshake, E::Timeout) => noted(S::Closed, &[], Note::Expired),
            // No peer is involved yet, or any more.
            (S::Handshake | S::Held | S::Retrying, E::PeerDown) => stay(&[]),
            // Only a refusal retransmits.
            (_, E::Retransmit) => stay(&[]),

            // Decisions outside Held and Retrying, or answers to a request
            // never sent (or already answered): the engine or the peer is
            // confused.
            (
                _,
                E::DecidedLocal
                | E::Unclassifiable
                | E::DecidedHandoff
                | E::NoCandidate
                | E::HoldLimitReached
                | E::Accept
                | E::Reject
                | E::TargetClosed
                | E::TargetAnswered,
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
                | OriginEvent::NewSynFromClient
        )
    }

    fn is_expiry(self) -> bool {
        matches!(self, OriginEvent::Timeout | OriginEvent::Retransmit)
    }

    fn name(self) -> &'static str {
        match self {
            OriginEvent::FromKernel => "FromKernel",
            OriginEvent::AckFromClient => "AckFromClient",
            OriginEvent::DataFromClient => "DataFromClient",
            OriginEvent::FinFromClient => "FinFromClient",
            OriginEvent::RstFromClient => "RstFromClient",
            OriginEvent::NewSynFromClient => "NewSynFromClient",
            OriginEvent::DecidedLocal => "DecidedLocal",
            OriginEvent::Unclassifiable => "Unclassifiable",
            OriginEvent::DecidedHandoff => "DecidedHandoff",
            OriginEvent::NoCandidate => "NoCandidate",
            OriginEvent::HoldLimitReached => "HoldLimitReached",
            OriginEvent::Accept => "Accept",
            OriginEvent::Reject => "Reject",
            OriginEvent::TargetClosed => "TargetClosed",
            OriginEvent::TargetAnswered => "TargetAnswered",
            OriginEvent::Timeout => "Timeout",
            OriginEvent::Retransmit => "Retransmit",
            OriginEvent::PeerDown => "PeerDown",
        }
    }
}
