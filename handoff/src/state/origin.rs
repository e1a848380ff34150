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
//! Local and Closed are final: the flow is forgotten, and its later packets
//! pass between client and kernel with no work but the table lookup. A TLS
//! connection served here goes Local at its decision (SNI routes it once),
//! and so does one whose request is not HTTP or was never decided.
//!
//! An HTTP connection is routed request by request. Served here, it stays
//! tracked (`Serving`); handed off, it is `Forwarding`; in both the engine
//! follows the client's stream and asks the policy for every new request.
//! A request for the node that has the connection changes nothing. One for
//! another node moves the connection at the response boundary:
//!
//! ```text
//!  Serving, ServingReplayed, Forwarding ──RequestElsewhere──▶ Quiescing(owner)
//!      (the request and all after it held; the owner asked to let go)
//!  Quiescing ──ReleaseRefused──▶ back to the owner's state (held bytes to it)
//!  Quiescing ──Released──▶ Moving ──DecidedHandoff──▶ MovePending ──Accept──▶ Forwarding
//!                           │  ▲                        │
//!                           │  └──Reject, Timeout, ─────┘
//!                           │     PeerDown, TargetClosed
//!                           ├──DecidedHere──▶ Replaying ──kernel SYN-ACK──▶ ServingReplayed
//!                           │                    └──kernel RST, Timeout──▶ Moving
//!                           └──NoCandidate──▶ Refusing (503)
//!  ServingReplayed ──kernel FIN or RST, client RST──▶ Closing ──linger──▶ Closed
//! ```
//!
//! The owner (this node's kernel, or a peer) keeps serving what it was
//! given until every earlier request has its whole response, acknowledged
//! by the client; then it resets its kernel's copy and says where the
//! server's sequence stands. No node has the connection then (`Moving`):
//! the held request goes to the node the policy picks as a takeover at
//! the current sequence numbers, to a peer as a HandoffRequest, or to this
//! node's own kernel as a replay (`Replaying`), after which this node
//! translates (`ServingReplayed`) as a target does. A takeover that fails
//! is decided again without the node that failed; when nobody can take
//! it, the client gets the 503 in sequence, as for a first request.
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
//! down, expired; and for moves: started, completed, refused, stayed.

use super::{Actions, Event, Gauge, InvalidTransition, Machine, Note, Step, TimerKind, Transition};

/// Who has a connection an origin routes, while a move is asked of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// This node's kernel, with the connection it accepted.
    Kernel,
    /// This node's kernel, with a connection replayed into it (translated).
    Replayed,
    /// A peer that took the connection.
    Peer,
}

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
    /// The target took over: client packets are forwarded to it, and each
    /// new request is routed.
    Forwarding,
    /// Served by the kernel here, each new request routed.
    Serving,
    /// Served by the kernel here after a move back: a replayed connection,
    /// translated both ways, each new request routed.
    ServingReplayed,
    /// A request for another node is held: the owner finishes what it was
    /// given, then lets the connection go.
    Quiescing(Owner),
    /// No node has the connection: the held request is decided. Left within
    /// the same step, by a decision.
    Moving,
    /// The held request went to a peer as a takeover at the current
    /// sequence numbers; waiting for its answer.
    MovePending,
    /// The held request goes to the kernel here: a SYN at the current
    /// sequence numbers was replayed into it; waiting for its SYN-ACK.
    Replaying,
    /// A replayed connection served here is closing: translated until the
    /// linger timer expires.
    Closing,
    /// Final: served here, untracked. The kernel has everything; the flow is
    /// forgotten.
    Local,
    /// Final: the connection is over (or was handed off and is now over).
    Closed,
}

/// What happened to a connection, as the origin sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginEvent {
    /// A segment from the local kernel without SYN, FIN or RST.
    FromKernel,
    /// The local kernel's SYN-ACK.
    SynAckFromKernel,
    /// A kernel segment with FIN (without RST).
    FinFromKernel,
    /// A kernel segment with RST.
    RstFromKernel,
    /// The segment that made the flow, when it carries nothing but its
    /// acknowledgement of the kernel's SYN-ACK (no payload, FIN or RST).
    HandshakeAck,
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
    /// The held bytes were classified: the policy chose this node, and the
    /// connection's later requests are routed (HTTP).
    DecidedLocal,
    /// The policy chose this node for the connection's life (TLS, routed
    /// by its SNI once).
    DecidedLocalPinned,
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
    /// A new request on the connection is for a node other than its owner;
    /// it and everything after it are held.
    RequestElsewhere,
    /// The owner let the connection go: every earlier response is whole and
    /// acknowledged, and its kernel's copy is gone.
    Released,
    /// The owner cannot let the connection go (it closes, or switched
    /// protocols): the connection stays there.
    ReleaseRefused,
    /// A moving connection's request goes to the kernel here.
    DecidedHere,
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
    /// A retransmission timer expired, with tries left: the refusal's, or
    /// the replayed SYN's.
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
    /// request carries (the SYN-ACK's ISN and options, the latest timestamp)
    /// and, for a routed connection, where its responses end.
    PassToClient,
    /// Keep the client's handshake ACK from the local kernel: its
    /// connection then completes with the request's first segment (as with
    /// `TCP_DEFER_ACCEPT`), so a connection handed off never reaches this
    /// node's web server. Any later client segment completes it as well.
    Withhold,
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
    /// Send a RST to the local kernel so that it forgets the connection:
    /// before the first handoff, at isn_client + 1 (its web server never
    /// sees the request); for a replayed one, where the client is.
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
    /// Hold a moving connection's request bytes: what continues the held
    /// ones is kept, what comes before them goes to the owner.
    HoldForMove,
    /// Give the owner a bare ACK with what the held packet acknowledges:
    /// the owner waits for the client to acknowledge its last response.
    AckOwner,
    /// Pass the client's packet to the owner (kernel here, translated, or
    /// the peer).
    ToOwner,
    /// Ask the owner to let the connection go once every earlier response
    /// is whole (a Release to a peer; the kernel here is watched).
    AskRelease,
    /// Give the held bytes to the owner after all: the connection stays.
    HeldToOwner,
    /// Replay a SYN at the connection's current sequence numbers, with the
    /// client's original options, into the local kernel.
    ReplaySyn,
    /// From the local kernel's SYN-ACK to the replay, learn the translation
    /// and inject the held request in the client's place (its first segment
    /// acknowledges the SYN-ACK).
    CompleteReplay,
    /// Translate the client's packet into the replayed connection's space,
    /// and give it to the local kernel.
    TranslateToKernel,
    /// Translate the kernel's packet into the client's space, and send it.
    TranslateToClient,
    /// Translate the queued client packets to the local kernel, in order.
    QueuedToKernel,
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
    /// No packet for a while on a routed connection: forget it. Restarted
    /// by every packet passed on.
    Idle,
    /// Paces the replayed SYN's retransmissions within the handoff budget.
    Replay,
    /// The TIME-WAIT-like delay of a closing replayed connection.
    /// Restarted by every packet translated.
    Linger,
}

impl TimerKind for OriginTimer {
    fn restarts_with_traffic(self) -> bool {
        matches!(self, OriginTimer::Idle | OriginTimer::Linger)
    }
}

impl Machine for OriginState {
    const STATES: &'static [OriginState] = &[
        OriginState::Handshake,
        OriginState::Held,
        OriginState::HandoffPending,
        OriginState::Retrying,
        OriginState::Refusing,
        OriginState::Forwarding,
        OriginState::Serving,
        OriginState::ServingReplayed,
        OriginState::Quiescing(Owner::Kernel),
        OriginState::Quiescing(Owner::Replayed),
        OriginState::Quiescing(Owner::Peer),
        OriginState::Moving,
        OriginState::MovePending,
        OriginState::Replaying,
        OriginState::Closing,
        OriginState::Local,
        OriginState::Closed,
    ];
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
        use OriginState as S;
        match self {
            S::Handshake => Some(OriginTimer::Handshake),
            // Retrying and Moving are left within the step that entered
            // them; should no decision come, the hold limit ends them.
            S::Held | S::Retrying | S::Moving => Some(OriginTimer::Hold),
            S::HandoffPending | S::MovePending => Some(OriginTimer::Handoff),
            S::Refusing => Some(OriginTimer::Refusal),
            S::Forwarding | S::Serving | S::ServingReplayed | S::Quiescing(_) => {
                Some(OriginTimer::Idle)
            }
            S::Replaying => Some(OriginTimer::Replay),
            S::Closing => Some(OriginTimer::Linger),
            S::Local | S::Closed => None,
        }
    }

    fn is_final(self) -> bool {
        matches!(self, OriginState::Local | OriginState::Closed)
    }

    fn gauge(self) -> Option<Gauge> {
        match self {
            OriginState::HandoffPending | OriginState::MovePending => Some(Gauge::HandoffsPending),
            OriginState::Forwarding | OriginState::Quiescing(Owner::Peer) => {
                Some(Gauge::Forwarding)
            }
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        use OriginState as S;
        match self {
            S::Handshake => "Handshake",
            S::Held => "Held",
            S::HandoffPending => "HandoffPending",
            S::Retrying => "Retrying",
            S::Refusing => "Refusing",
            S::Forwarding => "Forwarding",
            S::Serving => "Serving",
            S::ServingReplayed => "ServingReplayed",
            S::Quiescing(Owner::Kernel) => "Quiescing(Kernel)",
            S::Quiescing(Owner::Replayed) => "Quiescing(Replayed)",
            S::Quiescing(Owner::Peer) => "Quiescing(Peer)",
            S::Moving => "Moving",
            S::MovePending => "MovePending",
            S::Replaying => "Replaying",
            S::Closing => "Closing",
            S::Local => "Local",
            S::Closed => "Closed",
        }
    }

    /// The module documentation has the diagrams. Packet events are valid
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
        let kernel = matches!(
            event,
            E::FromKernel | E::SynAckFromKernel | E::FinFromKernel | E::RstFromKernel
        );
        let client_data = matches!(
            event,
            E::AckFromClient | E::DataFromClient | E::FinFromClient
        );

        // Only the segment that makes a flow is its handshake ACK; in any
        // other state such a segment is a client ACK like the rest.
        if event == E::HandshakeAck && self != S::Handshake {
            return self.on(E::AckFromClient);
        }
        match (self, event) {
            // A forgotten flow: its packets pass through, and only a late
            // Accept needs an answer, or the target would keep its copy.
            (S::Local | S::Closed, _) if kernel => stay(&[PassToClient]),
            (
                S::Local | S::Closed,
                E::AckFromClient
                | E::DataFromClient
                | E::FinFromClient
                | E::RstFromClient
                | E::NewSynFromClient,
            ) => stay(&[PassToKernel]),
            (S::Local | S::Closed, E::Accept) => stay(&[SendCancel]),
            (
                S::Local | S::Closed,
                E::Reject
                | E::TargetClosed
                | E::Timeout
                | E::Retransmit
                | E::PeerDown
                | E::Released
                | E::ReleaseRefused,
            ) => stay(&[]),

            // The kernel's packets reach the client until another node
            // takes over or the client is refused; after that the kernel
            // was reset and has nothing to say.
            (
                S::Forwarding
                | S::Refusing
                | S::Quiescing(Owner::Peer)
                | S::Moving
                | S::MovePending,
                _,
            ) if kernel => stay(&[Drop]),
            // The replay: the kernel's SYN-ACK completes it, its RST (or no
            // answer) means this node cannot take the request after all.
            (S::Replaying, E::SynAckFromKernel) => noted(
                S::ServingReplayed,
                &[CompleteReplay, QueuedToKernel],
                Note::MoveCompleted,
            ),
            (S::Replaying, E::RstFromKernel) => go(S::Moving, &[Drop, ClearQueue]),
            (S::Replaying, _) if kernel => stay(&[Drop]),
            // A replayed connection is translated both ways until it closes.
            (
                S::ServingReplayed | S::Quiescing(Owner::Replayed),
                E::FinFromKernel | E::RstFromKernel,
            ) => go(S::Closing, &[TranslateToClient]),
            (S::ServingReplayed | S::Quiescing(Owner::Replayed) | S::Closing, _) if kernel => {
                stay(&[TranslateToClient])
            }
            // Served here: the server's close ends the routing (no request
            // can follow), its reset the connection.
            (S::Serving | S::Quiescing(Owner::Kernel), E::FinFromKernel) => {
                go(S::Local, &[PassToClient])
            }
            (S::Serving | S::Quiescing(Owner::Kernel), E::RstFromKernel) => {
                go(S::Closed, &[PassToClient])
            }
            (_, _) if kernel => stay(&[PassToClient]),

            // The client reuses the 4-tuple of a connection that is over:
            // this flow ends (the target drops its lingering copy), and the
            // SYN opens a new one. Before a decision, the kernel here still
            // owns the old connection and answers the SYN as it would.
            (S::Forwarding | S::Quiescing(Owner::Peer), E::NewSynFromClient) => {
                go(S::Closed, &[SendCancel])
            }
            (S::Refusing | S::Serving | S::Quiescing(Owner::Kernel), E::NewSynFromClient) => {
                go(S::Closed, &[])
            }
            (
                S::ServingReplayed | S::Quiescing(Owner::Replayed) | S::Closing | S::Replaying,
                E::NewSynFromClient,
            ) => go(S::Closed, &[ResetKernel]),
            (S::HandoffPending | S::MovePending | S::Moving, E::NewSynFromClient) => stay(&[Queue]),
            (S::Handshake | S::Held | S::Retrying, E::NewSynFromClient) => stay(&[PassToKernel]),

            // Everything from the client goes to the target once it took
            // over, and waits for its answer while the request is pending.
            (
                S::Forwarding,
                E::AckFromClient | E::DataFromClient | E::FinFromClient | E::RstFromClient,
            ) => stay(&[ForwardToTarget]),
            // Request bytes are held: they may start requests for other
            // nodes, which the takeover must not carry. Acknowledgements
            // (and FINs) are queued for whoever takes over.
            (S::HandoffPending, E::DataFromClient) => stay(&[Hold]),
            (S::MovePending | S::Replaying, E::DataFromClient) => stay(&[HoldForMove]),
            (S::HandoffPending | S::MovePending | S::Replaying, _) if client_data => stay(&[Queue]),
            // The client gave up mid-handoff: the kernel, still the owner,
            // gets its RST, and the target forgets the flow.
            (S::HandoffPending, E::RstFromClient) => noted(
                S::Closed,
                &[SendCancel, PassToKernel],
                Note::ClientResetMidHandoff,
            ),
            (S::MovePending, E::RstFromClient) => {
                noted(S::Closed, &[SendCancel, Drop], Note::ClientResetMidHandoff)
            }
            (S::Replaying, E::RstFromClient) => {
                noted(S::Closed, &[ResetKernel, Drop], Note::ClientResetMidHandoff)
            }

            // Routed connections served here.
            (S::Serving, E::AckFromClient | E::DataFromClient) => stay(&[PassToKernel]),
            // The client's close ends the routing: no request can follow.
            (S::Serving, E::FinFromClient) => go(S::Local, &[PassToKernel]),
            (S::Serving, E::RstFromClient) => go(S::Closed, &[PassToKernel]),
            (
                S::ServingReplayed | S::Closing,
                E::AckFromClient | E::DataFromClient | E::FinFromClient,
            ) => stay(&[TranslateToKernel]),
            (S::ServingReplayed | S::Closing, E::RstFromClient) => {
                go(S::Closing, &[TranslateToKernel])
            }

            // A move asked of the owner: it still gets what came before the
            // held request, and the client's acknowledgements.
            (S::Serving, E::RequestElsewhere) => noted(
                S::Quiescing(Owner::Kernel),
                &[AskRelease],
                Note::MoveStarted,
            ),
            (S::ServingReplayed, E::RequestElsewhere) => noted(
                S::Quiescing(Owner::Replayed),
                &[AskRelease],
                Note::MoveStarted,
            ),
            (S::Forwarding, E::RequestElsewhere) => {
                noted(S::Quiescing(Owner::Peer), &[AskRelease], Note::MoveStarted)
            }
            (S::Quiescing(_), E::AckFromClient) => stay(&[ToOwner]),
            (S::Quiescing(_), E::DataFromClient) => stay(&[HoldForMove, AckOwner]),
            // A FIN after the held request waits for the new owner: the
            // client sends it again.
            (S::Quiescing(_), E::FinFromClient) => stay(&[Drop]),
            (S::Quiescing(Owner::Replayed), E::RstFromClient) => {
                noted(S::Closing, &[ToOwner], Note::ClientResetMidHandoff)
            }
            (S::Quiescing(_), E::RstFromClient) => {
                noted(S::Closed, &[ToOwner], Note::ClientResetMidHandoff)
            }
            (S::Quiescing(_), E::Released) => go(S::Moving, &[]),
            (S::Quiescing(Owner::Kernel), E::ReleaseRefused) => {
                noted(S::Serving, &[HeldToOwner], Note::MoveStayed)
            }
            (S::Quiescing(Owner::Replayed), E::ReleaseRefused) => {
                noted(S::ServingReplayed, &[HeldToOwner], Note::MoveStayed)
            }
            (S::Quiescing(Owner::Peer), E::ReleaseRefused) => {
                noted(S::Forwarding, &[HeldToOwner], Note::MoveStayed)
            }

            // Moving: nobody has the connection; the decision comes within
            // the step. The client's packets wait for the new owner.
            (S::Moving, E::AckFromClient | E::FinFromClient) => stay(&[Queue]),
            (S::Moving, E::DataFromClient) => stay(&[HoldForMove]),
            (S::Moving, E::RstFromClient) => noted(S::Closed, &[Drop], Note::ClientResetMidHandoff),
            (S::Moving, E::DecidedHandoff) => go(S::MovePending, &[SendRequest]),
            (S::Moving, E::DecidedHere) => go(S::Replaying, &[ReplaySyn]),
            (S::Moving, E::NoCandidate | E::HoldLimitReached | E::Timeout) => {
                noted(S::Refusing, &[Refuse], Note::MoveRefused)
            }
            (S::MovePending, E::Accept | E::TargetAnswered) => {
                noted(S::Forwarding, &[ForwardQueued], Note::MoveCompleted)
            }
            (S::MovePending, E::Reject) => noted(S::Moving, &[ClearQueue], Note::HandoffRejected),
            (S::MovePending, E::TargetClosed | E::PeerDown) => go(S::Moving, &[ClearQueue]),
            (S::MovePending, E::Timeout) => {
                noted(S::Moving, &[SendCancel, ClearQueue], Note::HandoffTimedOut)
            }
            (S::Replaying, E::Retransmit) => stay(&[ReplaySyn]),
            (S::Replaying, E::Timeout) => go(S::Moving, &[ResetKernel, ClearQueue]),

            // Before a decision (and, for the one step it lasts, while one
            // is taken again).
            (S::Handshake, E::HandshakeAck) => stay(&[Withhold]),
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
                noted(S::Serving, &[ReleaseHeldToKernel], Note::ServedLocal)
            }
            (S::Held, E::DecidedLocalPinned) => {
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
            (S::Retrying, E::DecidedLocal) => {
                noted(S::Serving, &[ReleaseHeldToKernel], Note::FellBack)
            }
            (
                S::Retrying,
                E::DecidedLocalPinned | E::Unclassifiable | E::HoldLimitReached | E::Timeout,
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
            (S::Forwarding | S::Quiescing(Owner::Peer), E::TargetClosed) => go(S::Closed, &[]),
            (S::Forwarding, E::Timeout) => noted(S::Closed, &[], Note::Expired),
            (S::Quiescing(Owner::Peer), E::Timeout) => {
                noted(S::Closed, &[SendCancel], Note::Expired)
            }
            (S::Forwarding | S::Quiescing(Owner::Peer), E::PeerDown) => {
                noted(S::Closed, &[ResetClient], Note::PeerDownReset)
            }
            // An idle connection served here is forgotten (its later
            // packets pass untracked); a replayed one is reset, since only
            // this node could translate it.
            (S::Serving | S::Quiescing(Owner::Kernel), E::Timeout) => {
                noted(S::Local, &[], Note::Expired)
            }
            (S::ServingReplayed | S::Quiescing(Owner::Replayed), E::Timeout) => {
                noted(S::Closed, &[ResetKernel, ResetClient], Note::Expired)
            }
            (S::Closing, E::Timeout) => go(S::Closed, &[]),

            (S::Handshake, E::Timeout) => noted(S::Closed, &[], Note::Expired),
            // No peer is involved yet, or any more.
            (
                S::Handshake
                | S::Held
                | S::Retrying
                | S::Serving
                | S::ServingReplayed
                | S::Quiescing(Owner::Kernel | Owner::Replayed)
                | S::Moving
                | S::Replaying
                | S::Closing,
                E::PeerDown,
            ) => stay(&[]),
            // Only a refusal and a replay retransmit.
            (_, E::Retransmit) => stay(&[]),
            // A late Accept from a target given up on (timed out) while the
            // kernel here kept the connection: undone there.
            (
                S::Serving
                | S::ServingReplayed
                | S::Quiescing(Owner::Kernel | Owner::Replayed)
                | S::Moving
                | S::Replaying
                | S::Closing,
                E::Accept,
            ) => stay(&[SendCancel]),
            // A peer's late word on a connection it no longer has.
            (
                S::Serving | S::ServingReplayed | S::Replaying | S::Closing | S::Moving,
                E::TargetClosed | E::Reject,
            ) => stay(&[]),

            // Decisions outside the states that take them, or answers to a
            // request never sent (or already answered): the engine or the
            // peer is confused.
            (
                _,
                E::DecidedLocal
                | E::DecidedLocalPinned
                | E::Unclassifiable
                | E::DecidedHandoff
                | E::DecidedHere
                | E::NoCandidate
                | E::HoldLimitReached
                | E::RequestElsewhere
                | E::Released
                | E::ReleaseRefused
                | E::Accept
                | E::Reject
                | E::TargetClosed
                | E::TargetAnswered,
            ) => invalid(),
            // Packet events are handled in every state above (the tests
            // check it); were one not, it would be counted, not obeyed.
            (_, _) => invalid(),
        }
    }
}

impl Event for OriginEvent {
    const ALL: &'static [OriginEvent] = &[
        OriginEvent::FromKernel,
        OriginEvent::SynAckFromKernel,
        OriginEvent::FinFromKernel,
        OriginEvent::RstFromKernel,
        OriginEvent::HandshakeAck,
        OriginEvent::AckFromClient,
        OriginEvent::DataFromClient,
        OriginEvent::FinFromClient,
        OriginEvent::RstFromClient,
        OriginEvent::NewSynFromClient,
        OriginEvent::DecidedLocal,
        OriginEvent::DecidedLocalPinned,
        OriginEvent::Unclassifiable,
        OriginEvent::DecidedHandoff,
        OriginEvent::NoCandidate,
        OriginEvent::HoldLimitReached,
        OriginEvent::RequestElsewhere,
        OriginEvent::Released,
        OriginEvent::ReleaseRefused,
        OriginEvent::DecidedHere,
        OriginEvent::Accept,
        OriginEvent::Reject,
        OriginEvent::TargetClosed,
        OriginEvent::TargetAnswered,
        OriginEvent::Timeout,
        OriginEvent::Retransmit,
        OriginEvent::PeerDown,
    ];
    fn carries_packet(self) -> bool {
        matches!(
            self,
            OriginEvent::FromKernel
                | OriginEvent::SynAckFromKernel
                | OriginEvent::FinFromKernel
                | OriginEvent::RstFromKernel
                | OriginEvent::HandshakeAck
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
        use OriginEvent as E;
        match self {
            E::FromKernel => "FromKernel",
            E::SynAckFromKernel => "SynAckFromKernel",
            E::FinFromKernel => "FinFromKernel",
            E::RstFromKernel => "RstFromKernel",
            E::HandshakeAck => "HandshakeAck",
            E::AckFromClient => "AckFromClient",
            E::DataFromClient => "DataFromClient",
            E::FinFromClient => "FinFromClient",
            E::RstFromClient => "RstFromClient",
            E::NewSynFromClient => "NewSynFromClient",
            E::DecidedLocal => "DecidedLocal",
            E::DecidedLocalPinned => "DecidedLocalPinned",
            E::Unclassifiable => "Unclassifiable",
            E::DecidedHandoff => "DecidedHandoff",
            E::NoCandidate => "NoCandidate",
            E::HoldLimitReached => "HoldLimitReached",
            E::RequestElsewhere => "RequestElsewhere",
            E::Released => "Released",
            E::ReleaseRefused => "ReleaseRefused",
            E::DecidedHere => "DecidedHere",
            E::Accept => "Accept",
            E::Reject => "Reject",
            E::TargetClosed => "TargetClosed",
            E::TargetAnswered => "TargetAnswered",
            E::Timeout => "Timeout",
            E::Retransmit => "Retransmit",
            E::PeerDown => "PeerDown",
        }
    }
}
