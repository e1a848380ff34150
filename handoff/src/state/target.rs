//! The target's state machine: the node that takes a connection over.
//!
//! ```text
//!  HandoffRequest ──▶ Replaying ──(kernel SYN-ACK: learn the translation,
//!                       │          inject ACK + held bytes in its place,
//!                       │          send Accept)──▶ Established
//!                       ├─(kernel RST: Reject KernelRefused)──▶ Closed
//!                       ├─(retransmit: the SYN again)─────────▶ Replaying
//!                       └─(timeout: Reject Timeout)───────────▶ Closed
//!
//!  Established ──(FIN one way)──▶ HalfClosed ──(FIN the other way)──▶ Closing
//!       │                             │                                 │
//!       └──────────(RST either way)───┴────────────────────────────────▶│
//!                                                                       │
//!  Established, HalfClosed ──(idle timeout: send HandoffClosed)──▶ Closed
//!  Closing ──(linger timeout: send HandoffClosed)──▶ Closed
//!  any live state ──(HandoffCancel from the origin: RST to the kernel)──▶ Closed
//!
//!  Established ──(Release from the origin)──▶ Releasing
//!  Releasing ──(every response whole and acknowledged: RST to the kernel,
//!               send Released)──▶ Released ──(linger timeout)──▶ Closed
//!  Releasing ──(the connection cannot move: send ReleaseRefused)──▶ Established
//!
//!  Established, HalfClosed ──(origin gone: probe the kernel)──▶ Orphaned
//!  Orphaned ──(the kernel's answer: RST to the client and the kernel)──▶ Closed
//!  Orphaned ──(no answer: RST to the kernel)──▶ Closed
//! ```
//!
//! Replaying: a SYN carrying the client's address, ISN and options was
//! injected into the local kernel, as if the client had connected here. A
//! kernel whose accept queue is full drops it without a word, as it would
//! a client's, so the SYN is sent again on the kernel's own schedule
//! (`Retransmit`) while the handoff's budget lasts; once it is spent, the
//! origin gets a Reject before its own deadline, and tries elsewhere. The
//! kernel's SYN-ACK gives its ISN, from which the sequence delta, the
//! timestamp offset and the window-scale difference follow; the SYN-ACK goes
//! no further (the client already has the origin's), and the client's ACK
//! and the held request are injected instead. From then on, every packet is
//! translated both ways. Closing lingers for a TIME-WAIT-like delay, restarted
//! by every packet, so that the last ACKs and retransmitted FINs still get
//! translated.
//!
//! Notes ([`Note`](super::Note)): handed in (the kernel's SYN-ACK), refused
//! by the kernel (its RST), replay timed out, expired (idle in Established
//! or HalfClosed). Every live state counts toward the handed-in gauge.
//!
//! The control channel to the origin going down changes nothing here at
//! first: it is re-established, and the origin's data plane keeps
//! forwarding the client's packets meanwhile (or, restarted, learns again
//! where they go). An origin that stays away longer than a bound is gone
//! (`OriginGone`): its client's packets no longer reach anyone, and the
//! kernel's copy would hold its buffers until the idle timeout. So the
//! kernel is asked where the connection stands (a segment it must answer
//! with an ACK naming its next sequence number and what it expects next,
//! `Orphaned`), and both ends are reset exactly there.
//!
//! Notes on the orphan path: orphan reset, whichever way it ends.
//!
//! A connection moves on when its origin routes a later request on it to
//! another node (see the origin's machine). The origin holds that request
//! back and asks for the connection (`Release`); this node keeps serving
//! what it was given until every request before the held one has its whole
//! response, acknowledged by the client (`Ready`, which the engine finds
//! from the HTTP framing of both streams), then drops its kernel's copy and
//! tells the origin where the server's sequence stands (`Released`). It
//! lingers, dropping strays, as after a close. A connection that can carry
//! no more requests (the server closes it, a protocol switch) stays
//! (`CannotRelease`).

use super::{Actions, Event, Gauge, Machine, Note, Step, TimerKind, Transition};
use crate::msg::RejectReason;

/// One direction of a connection, named by who sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Kernel,
}

/// Where a connection handed in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    /// The replayed SYN is in the kernel; waiting for its SYN-ACK.
    Replaying,
    /// The kernel has the connection and the request; translating.
    Established,
    /// This side sent its FIN; translating both ways.
    HalfClosed(Side),
    /// Both sides sent FIN, or one sent RST; translating until the linger
    /// timer expires.
    Closing,
    /// Its origin is gone: waiting for the kernel's answer to a probe, to
    /// reset both ends where they stand.
    Orphaned,
    /// The origin asked for the connection: translating as in Established
    /// until every response is whole and acknowledged.
    Releasing,
    /// Given up for a move: the kernel's copy was reset; stray packets are
    /// dropped until the linger timer expires.
    Released,
    /// Final: the flow is over, and forgotten.
    Closed,
}

/// What happened to a handed-in connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetEvent {
    /// The local kernel's SYN-ACK (to the replayed SYN, or repeated).
    SynAckFromKernel,
    /// Any other kernel segment without FIN or RST.
    FromKernel,
    /// A kernel segment with FIN (without RST).
    FinFromKernel,
    /// A kernel segment with RST (in Replaying: the kernel refused).
    RstFromKernel,
    /// A client segment, forwarded by the origin, without FIN or RST.
    FromClient,
    /// A client segment with FIN (without RST).
    FinFromClient,
    /// A client segment with RST.
    RstFromClient,
    /// The state's timer expired (see [`TargetState::timer`]).
    Timeout,
    /// The replay's retransmission timer expired, and the handoff's budget
    /// leaves room for another SYN.
    Retransmit,
    /// The origin's channel has been down longer than the bound: nobody
    /// forwards the client's packets any more.
    OriginGone,
    /// HandoffCancel from the origin: it abandoned the handoff (its client
    /// left or reopened the 4-tuple, or it gave the request to another).
    OriginClosed,
    /// Release from the origin: it routes the next request elsewhere.
    ReleaseAsked,
    /// Every request before the held one has its whole response, and the
    /// client acknowledged all of it: the connection can move.
    Ready,
    /// The connection carries no more requests Baton can route (the server
    /// closes it, or switched protocols): it stays.
    CannotRelease,
}

/// What the engine must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetAction {
    /// Inject the replayed SYN (client's ISN and options, destination
    /// rewritten to this node's own address) into the local kernel.
    InjectSyn,
    /// From the kernel's SYN-ACK, learn the translation (sequence delta
    /// isn_origin − isn_target, timestamp offset, window shifts), and inject
    /// the held request bytes into the kernel, their first segment
    /// acknowledging it. The SYN-ACK itself goes no further.
    CompleteHandshake,
    /// Send HandoffAccept (with the kernel's ISN) to the origin.
    SendAccept,
    /// Send HandoffReject to the origin.
    SendReject(RejectReason),
    /// Discard the packet.
    Drop,
    /// Translate the kernel's packet and send it to the client directly.
    TranslateToClient,
    /// Translate the client's packet and give it to the local kernel.
    TranslateToKernel,
    /// Send a RST to the local kernel, as from the client, at the next
    /// sequence number the client would send.
    ResetKernel,
    /// Send HandoffClosed to the origin, so that it frees its flow.
    SendClosed,
    /// Send the kernel, as from the client, a segment far outside its
    /// receive window: it answers with an ACK carrying its next sequence
    /// number and the next one it expects from the client.
    ProbeKernel,
    /// From the kernel's answer to the probe: a RST to the client at the
    /// kernel's next sequence number (translated), and one to the kernel
    /// at the client's. The answer goes no further.
    ResetBoth,
    /// Send Released to the origin: where the server's sequence stands
    /// (in the client's space), for the node that takes over.
    SendReleased,
    /// Send ReleaseRefused to the origin: the connection stays here.
    SendReleaseRefused,
}

/// The timer each live state runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetTimer {
    /// The kernel did not answer the replayed SYN: reject.
    Replay,
    /// No packet for a long while: tell the origin and forget the flow.
    /// Restarted by every packet translated.
    Idle,
    /// The TIME-WAIT-like delay after both FINs or a RST. Restarted by
    /// every packet translated.
    Linger,
    /// How long the kernel has to answer a probe.
    Probe,
}

impl TimerKind for TargetTimer {
    fn restarts_with_traffic(self) -> bool {
        matches!(self, TargetTimer::Idle | TargetTimer::Linger)
    }
}

impl Machine for TargetState {
    const STATES: &'static [TargetState] = &[
        TargetState::Replaying,
        TargetState::Established,
        TargetState::HalfClosed(Side::Client),
        TargetState::HalfClosed(Side::Kernel),
        TargetState::Closing,
        TargetState::Orphaned,
        TargetState::Releasing,
        TargetState::Released,
        TargetState::Closed,
    ];
    type Event = TargetEvent;
    type Action = TargetAction;
    type Timer = TargetTimer;

    /// A new flow, for an accepted HandoffRequest. (A request refused
    /// outright gets a HandoffReject and no state.)
    fn start() -> Transition<TargetState> {
        Transition {
            next: TargetState::Replaying,
            actions: Actions::of(&[TargetAction::InjectSyn]),
            note: None,
        }
    }

    fn timer(self) -> Option<TargetTimer> {
        match self {
            TargetState::Replaying => Some(TargetTimer::Replay),
            TargetState::Established | TargetState::HalfClosed(_) | TargetState::Releasing => {
                Some(TargetTimer::Idle)
            }
            TargetState::Closing | TargetState::Released => Some(TargetTimer::Linger),
            TargetState::Orphaned => Some(TargetTimer::Probe),
            TargetState::Closed => None,
        }
    }

    fn is_final(self) -> bool {
        self == TargetState::Closed
    }

    fn gauge(self) -> Option<Gauge> {
        (!matches!(self, TargetState::Closed | TargetState::Released)).then_some(Gauge::HandedIn)
    }

    fn name(self) -> &'static str {
        match self {
            TargetState::Replaying => "Replaying",
            TargetState::Established => "Established",
            TargetState::HalfClosed(Side::Client) => "HalfClosed(Client)",
            TargetState::HalfClosed(Side::Kernel) => "HalfClosed(Kernel)",
            TargetState::Closing => "Closing",
            TargetState::Orphaned => "Orphaned",
            TargetState::Releasing => "Releasing",
            TargetState::Released => "Released",
            TargetState::Closed => "Closed",
        }
    }

    /// The module documentation has the diagram. Every event has a meaning
    /// in every state (a stray packet is dropped), so, unlike the origin's,
    /// this one never fails.
    fn on(self, event: TargetEvent) -> Step<TargetState> {
        use TargetAction::*;
        use TargetEvent as E;
        use TargetState as S;

        let step = |next: TargetState, actions: &[TargetAction], note: Option<Note>| {
            Ok(Transition {
                next,
                actions: Actions::of(actions),
                note,
            })
        };
        let stay = |actions: &[TargetAction]| step(self, actions, None);
        let go = |next: TargetState, actions: &[TargetAction]| step(next, actions, None);

        match (self, event) {
            (S::Closed, _) => stay(&[]),

            (S::Replaying, E::SynAckFromKernel) => step(
                S::Established,
                &[CompleteHandshake, SendAccept],
                Some(Note::HandedIn),
            ),
            (S::Replaying, E::RstFromKernel) => step(
                S::Closed,
                &[Drop, SendReject(RejectReason::KernelRefused)],
                Some(Note::KernelRefused),
            ),
            (S::Replaying, E::Retransmit) => {
                step(S::Replaying, &[InjectSyn], Some(Note::ReplayRetransmitted))
            }
            (S::Replaying, E::Timeout) => step(
                S::Closed,
                &[SendReject(RejectReason::Timeout)],
                Some(Note::ReplayTimedOut),
            ),
            // Only a replay retransmits.
            (_, E::Retransmit) => stay(&[]),

            // A move. Only a connection that may carry more requests can
            // go; Ready and CannotRelease answer a Release, and are stale
            // anywhere else.
            (S::Established, E::ReleaseAsked) => go(S::Releasing, &[]),
            (S::Releasing | S::Released, E::ReleaseAsked) => stay(&[]),
            (_, E::ReleaseAsked) => step(self, &[SendReleaseRefused], Some(Note::ReleaseRefused)),
            (S::Releasing, E::Ready) => step(
                S::Released,
                &[ResetKernel, SendReleased],
                Some(Note::Released),
            ),
            (S::Releasing, E::CannotRelease) => step(
                S::Established,
                &[SendReleaseRefused],
                Some(Note::ReleaseRefused),
            ),
            (_, E::Ready | E::CannotRelease) => stay(&[]),
            (S::Released, E::Timeout | E::OriginClosed | E::OriginGone) => go(S::Closed, &[]),
            (S::Released, _) => stay(&[Drop]),
            // A close while releasing: the connection stays, and ends here.
            (S::Releasing, E::FinFromKernel) => go(
                S::HalfClosed(Side::Kernel),
                &[TranslateToClient, SendReleaseRefused],
            ),
            (S::Releasing, E::FinFromClient) => go(
                S::HalfClosed(Side::Client),
                &[TranslateToKernel, SendReleaseRefused],
            ),
            (S::Releasing, E::RstFromKernel) => {
                go(S::Closing, &[TranslateToClient, SendReleaseRefused])
            }
            (S::Releasing, E::RstFromClient) => {
                go(S::Closing, &[TranslateToKernel, SendReleaseRefused])
            }

            // The origin is gone. A replay, or a connection that is closing
            // anyway, only needs the kernel's copy gone; a live one is
            // probed, so that both ends are reset where they stand.
            (S::Replaying | S::Closing, E::OriginGone) => {
                step(S::Closed, &[ResetKernel], Some(Note::OrphanReset))
            }
            (S::Established | S::HalfClosed(_) | S::Releasing, E::OriginGone) => {
                go(S::Orphaned, &[ProbeKernel])
            }
            (S::Orphaned, E::OriginGone) => stay(&[]),
            (S::Orphaned, E::SynAckFromKernel | E::FromKernel | E::FinFromKernel) => {
                step(S::Closed, &[ResetBoth], Some(Note::OrphanReset))
            }
            (S::Orphaned, E::RstFromKernel) => step(S::Closed, &[Drop], Some(Note::OrphanReset)),
            (S::Orphaned, E::FromClient | E::FinFromClient | E::RstFromClient) => stay(&[Drop]),
            (S::Orphaned, E::Timeout) => step(S::Closed, &[ResetKernel], Some(Note::OrphanReset)),
            // The origin forwards nothing before Accept; stray packets go.
            (
                S::Replaying,
                E::FromKernel
                | E::FinFromKernel
                | E::FromClient
                | E::FinFromClient
                | E::RstFromClient,
            ) => stay(&[Drop]),

            // Translating. A repeated SYN-ACK (our injected ACK was lost)
            // reaches the client like any other segment, and the client's
            // answer repeats the ACK.
            (_, E::SynAckFromKernel | E::FromKernel) => stay(&[TranslateToClient]),
            (_, E::FromClient) => stay(&[TranslateToKernel]),
            (S::Established, E::FinFromKernel) => {
                go(S::HalfClosed(Side::Kernel), &[TranslateToClient])
            }
            (S::Established, E::FinFromClient) => {
                go(S::HalfClosed(Side::Client), &[TranslateToKernel])
            }
            (S::HalfClosed(Side::Client), E::FinFromKernel) => go(S::Closing, &[TranslateToClient]),
            (S::HalfClosed(Side::Kernel), E::FinFromClient) => go(S::Closing, &[TranslateToKernel]),
            (S::HalfClosed(_) | S::Closing, E::FinFromKernel) => stay(&[TranslateToClient]),
            (S::HalfClosed(_) | S::Closing, E::FinFromClient) => stay(&[TranslateToKernel]),
            (_, E::RstFromKernel) => go(S::Closing, &[TranslateToClient]),
            (_, E::RstFromClient) => go(S::Closing, &[TranslateToKernel]),

            (S::Established | S::HalfClosed(_) | S::Releasing, E::Timeout) => {
                step(S::Closed, &[SendClosed], Some(Note::Expired))
            }
            // The linger after both FINs or a RST is over: the normal end.
            (S::Closing, E::Timeout) => go(S::Closed, &[SendClosed]),

            // The origin called the handoff off (its client left, or it
            // already serves the connection itself): drop our copy quietly.
            (_, E::OriginClosed) => go(S::Closed, &[ResetKernel]),
        }
    }
}

impl Event for TargetEvent {
    const ALL: &'static [TargetEvent] = &[
        TargetEvent::SynAckFromKernel,
        TargetEvent::FromKernel,
        TargetEvent::FinFromKernel,
        TargetEvent::RstFromKernel,
        TargetEvent::FromClient,
        TargetEvent::FinFromClient,
        TargetEvent::RstFromClient,
        TargetEvent::Timeout,
        TargetEvent::Retransmit,
        TargetEvent::OriginClosed,
        TargetEvent::OriginGone,
        TargetEvent::ReleaseAsked,
        TargetEvent::Ready,
        TargetEvent::CannotRelease,
    ];
    fn carries_packet(self) -> bool {
        !matches!(
            self,
            TargetEvent::Timeout
                | TargetEvent::Retransmit
                | TargetEvent::OriginClosed
                | TargetEvent::OriginGone
                | TargetEvent::ReleaseAsked
                | TargetEvent::Ready
                | TargetEvent::CannotRelease
        )
    }

    fn is_expiry(self) -> bool {
        matches!(self, TargetEvent::Timeout | TargetEvent::Retransmit)
    }

    fn name(self) -> &'static str {
        match self {
            TargetEvent::SynAckFromKernel => "SynAckFromKernel",
            TargetEvent::FromKernel => "FromKernel",
            TargetEvent::FinFromKernel => "FinFromKernel",
            TargetEvent::RstFromKernel => "RstFromKernel",
            TargetEvent::FromClient => "FromClient",
            TargetEvent::FinFromClient => "FinFromClient",
            TargetEvent::RstFromClient => "RstFromClient",
            TargetEvent::Timeout => "Timeout",
            TargetEvent::Retransmit => "Retransmit",
            TargetEvent::OriginClosed => "OriginClosed",
            TargetEvent::OriginGone => "OriginGone",
            TargetEvent::ReleaseAsked => "ReleaseAsked",
            TargetEvent::Ready => "Ready",
            TargetEvent::CannotRelease => "CannotRelease",
        }
    }
}
