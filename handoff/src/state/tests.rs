//! Every state × event pair of both machines, as tables (next state,
//! actions and note), and the two machines driven against each other in
//! memory.

use super::*;
use crate::msg::RejectReason;

use OriginAction as OA;
use OriginEvent as OE;
use OriginState as OS;
use TargetAction as TA;
use TargetEvent as TE;
use TargetState as TS;

fn origin_states() -> [OS; 8] {
    [
        OS::Handshake,
        OS::Held,
        OS::HandoffPending,
        OS::Retrying,
        OS::Refusing,
        OS::Forwarding,
        OS::Local,
        OS::Closed,
    ]
}

fn origin_events() -> [OE; 18] {
    [
        OE::FromKernel,
        OE::AckFromClient,
        OE::DataFromClient,
        OE::FinFromClient,
        OE::RstFromClient,
        OE::NewSynFromClient,
        OE::DecidedLocal,
        OE::Unclassifiable,
        OE::DecidedHandoff,
        OE::NoCandidate,
        OE::HoldLimitReached,
        OE::Accept,
        OE::Reject,
        OE::TargetClosed,
        OE::TargetAnswered,
        OE::Timeout,
        OE::Retransmit,
        OE::PeerDown,
    ]
}

/// The expected outcome of one pair.
#[derive(Debug)]
enum Expect<S, A: 'static> {
    /// This next state (possibly the same) and these actions, no note.
    Go(S, &'static [A]),
    /// The same, with a note.
    Noted(S, &'static [A], Note),
    /// Not valid in this state.
    Invalid,
}

use Expect::{Go, Invalid, Noted};

/// Checks one machine's whole table against `on`.
fn check_table<M: Machine>(states: &[M], events: &[M::Event], table: &[&[Expect<M, M::Action>]]) {
    assert_eq!(table.len(), states.len());
    for (&state, row) in states.iter().zip(table) {
        assert_eq!(row.len(), events.len(), "{state:?}");
        for (&event, expected) in events.iter().zip(row.iter()) {
            let got = state.on(event);
            let (next, actions, note) = match expected {
                Go(next, actions) => (next, actions, None),
                Noted(next, actions, note) => (next, actions, Some(*note)),
                Invalid => {
                    assert_eq!(
                        got,
                        Err(InvalidTransition { state, event }),
                        "{state:?} × {event:?}"
                    );
                    continue;
                }
            };
            let got = got.unwrap_or_else(|e| panic!("{state:?} × {event:?}: {e}"));
            assert_eq!(
                (got.next, got.actions.to_vec(), got.note),
                (*next, actions.to_vec(), note),
                "{state:?} × {event:?}"
            );
        }
    }
}

/// Origin: one row per state, one column per event, in the order of
/// `origin_states()` × `origin_events()`.
#[rustfmt::skip]
fn origin_table() -> [[Expect<OS, OA>; 18]; 8] {
    use OA::*;
    use Note::{
        BadRequest, ClientResetMidHandoff, Expired, FellBack, HandedOff, HandoffRejected,
        HandoffRetried, HandoffTimedOut, HoldUndecided, NoRequest, PeerDownReset, Refused, ServedLocal,
    };
    const RELEASE: &[OA] = &[ReleaseHeldToKernel];
    const REFUSE: &[OA] = &[Refuse, ResetKernel];
    const TAKE_OVER: &[OA] = &[ResetKernel, ForwardQueued];
    [
        // Handshake
        [
            Go(OS::Handshake, &[PassToClient]),      // FromKernel
            Go(OS::Handshake, &[PassToKernel]),      // AckFromClient
            Go(OS::Held, &[Hold]),                   // DataFromClient
            Noted(OS::Local, &[ReleaseHeldToKernel, PassToKernel], NoRequest), // FinFromClient
            Go(OS::Closed, &[PassToKernel]),         // RstFromClient
            Go(OS::Handshake, &[PassToKernel]),      // NewSynFromClient
            Invalid,                                 // DecidedLocal
            Invalid,                                 // Unclassifiable
            Invalid,                                 // DecidedHandoff
            Invalid,                                 // NoCandidate
            Invalid,                                 // HoldLimitReached
            Invalid,                                 // Accept
            Invalid,                                 // Reject
            Invalid,                                 // TargetClosed
            Invalid,                                 // TargetAnswered
            Noted(OS::Closed, &[], Expired),         // Timeout
            Go(OS::Handshake, &[]),                  // Retransmit
            Go(OS::Handshake, &[]),                  // PeerDown
        ],
        // Held
        [
            Go(OS::Held, &[PassToClient]),
            Go(OS::Held, &[PassToKernel]),
            Go(OS::Held, &[Hold]),
            Noted(OS::Local, &[ReleaseHeldToKernel, PassToKernel], HoldUndecided),
            Go(OS::Closed, &[PassToKernel]),
            Go(OS::Held, &[PassToKernel]),
            Noted(OS::Local, RELEASE, ServedLocal),
            Noted(OS::Local, RELEASE, BadRequest),
            Go(OS::HandoffPending, &[SendRequest]),
            Noted(OS::Refusing, REFUSE, Refused),
            Noted(OS::Local, RELEASE, HoldUndecided),
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Noted(OS::Local, RELEASE, HoldUndecided),
            Go(OS::Held, &[]),
            Go(OS::Held, &[]),
        ],
        // HandoffPending
        [
            Go(OS::HandoffPending, &[PassToClient]),
            Go(OS::HandoffPending, &[Queue]),
            Go(OS::HandoffPending, &[Queue]),
            Go(OS::HandoffPending, &[Queue]),
            Noted(OS::Closed, &[SendCancel, PassToKernel], ClientResetMidHandoff),
            Go(OS::HandoffPending, &[Queue]),
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Noted(OS::Forwarding, TAKE_OVER, HandedOff),
            Noted(OS::Retrying, &[ClearQueue], HandoffRejected),
            Go(OS::Retrying, &[ClearQueue]),
            Noted(OS::Forwarding, TAKE_OVER, HandedOff),
            Noted(OS::Retrying, &[SendCancel, ClearQueue], HandoffTimedOut),
            Go(OS::HandoffPending, &[]),
            Go(OS::Retrying, &[ClearQueue]),
        ],
        // Retrying
        [
            Go(OS::Retrying, &[PassToClient]),
            Go(OS::Retrying, &[PassToKernel]),
            Go(OS::Retrying, &[Hold]),
            Noted(OS::Local, &[ReleaseHeldToKernel, PassToKernel], FellBack),
            Go(OS::Closed, &[PassToKernel]),
            Go(OS::Retrying, &[PassToKernel]),
            Noted(OS::Local, RELEASE, FellBack),
            Noted(OS::Local, RELEASE, FellBack),
            Noted(OS::HandoffPending, &[SendRequest], HandoffRetried),
            Noted(OS::Refusing, REFUSE, Refused),
            Noted(OS::Local, RELEASE, FellBack),
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Noted(OS::Local, RELEASE, FellBack),
            Go(OS::Retrying, &[]),
            Go(OS::Retrying, &[]),
        ],
        // Refusing
        [
            Go(OS::Refusing, &[Drop]),
            Go(OS::Refusing, &[Drop]),
            Go(OS::Refusing, &[Drop]),
            Go(OS::Closed, &[Drop, AckClient]),
            Go(OS::Closed, &[Drop]),
            Go(OS::Closed, &[]),
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Refusing, &[SendCancel]),         // a late Accept
            Go(OS::Refusing, &[]),
            Go(OS::Refusing, &[]),
            Invalid,
            Go(OS::Closed, &[ResetClient]),
            Go(OS::Refusing, &[Refuse]),
            Go(OS::Refusing, &[]),
        ],
        // Forwarding
        [
            Go(OS::Forwarding, &[Drop]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Go(OS::Closed, &[SendCancel]),
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Invalid,                                 // a repeated Accept
            Invalid,
            Go(OS::Closed, &[]),
            Invalid,
            Noted(OS::Closed, &[], Expired),
            Go(OS::Forwarding, &[]),
            Noted(OS::Closed, &[ResetClient], PeerDownReset),
        ],
        // Local
        [
            Go(OS::Local, &[PassToClient]),
            Go(OS::Local, &[PassToKernel]),
            Go(OS::Local, &[PassToKernel]),
            Go(OS::Local, &[PassToKernel]),
            Go(OS::Local, &[PassToKernel]),
            Go(OS::Local, &[PassToKernel]),
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Local, &[SendCancel]),            // a late Accept
            Go(OS::Local, &[]),                      // a late Reject
            Go(OS::Local, &[]),
            Invalid,
            Go(OS::Local, &[]),
            Go(OS::Local, &[]),
            Go(OS::Local, &[]),
        ],
        // Closed
        [
            Go(OS::Closed, &[PassToClient]),
            Go(OS::Closed, &[PassToKernel]),
            Go(OS::Closed, &[PassToKernel]),
            Go(OS::Closed, &[PassToKernel]),
            Go(OS::Closed, &[PassToKernel]),
            Go(OS::Closed, &[PassToKernel]),
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Closed, &[SendCancel]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Invalid,
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
        ],
    ]
}

#[test]
fn origin_every_state_and_event() {
    let table = origin_table();
    let rows: Vec<&[Expect<OS, OA>]> = table.iter().map(|r| &r[..]).collect();
    check_table(&origin_states(), &origin_events(), &rows);
}

fn target_states() -> [TS; 7] {
    [
        TS::Replaying,
        TS::Established,
        TS::HalfClosed(Side::Client),
        TS::HalfClosed(Side::Kernel),
        TS::Closing,
        TS::Orphaned,
        TS::Closed,
    ]
}

fn target_events() -> [TE; 11] {
    [
        TE::SynAckFromKernel,
        TE::FromKernel,
        TE::FinFromKernel,
        TE::RstFromKernel,
        TE::FromClient,
        TE::FinFromClient,
        TE::RstFromClient,
        TE::Timeout,
        TE::Retransmit,
        TE::OriginClosed,
        TE::OriginGone,
    ]
}

#[rustfmt::skip]
fn target_table() -> [[Expect<TS, TA>; 11]; 7] {
    use TA::*;
    const REFUSED: TA = SendReject(RejectReason::KernelRefused);
    const TIMED_OUT: TA = SendReject(RejectReason::Timeout);
    const HC_CLIENT: TS = TS::HalfClosed(Side::Client);
    const HC_KERNEL: TS = TS::HalfClosed(Side::Kernel);
    const ORPHAN: Note = Note::OrphanReset;
    [
        // Replaying
        [
            Noted(TS::Established, &[CompleteHandshake, SendAccept], Note::HandedIn), // SynAckFromKernel
            Go(TS::Replaying, &[Drop]),                            // FromKernel
            Go(TS::Replaying, &[Drop]),                            // FinFromKernel
            Noted(TS::Closed, &[Drop, REFUSED], Note::KernelRefused), // RstFromKernel
            Go(TS::Replaying, &[Drop]),                            // FromClient
            Go(TS::Replaying, &[Drop]),                            // FinFromClient
            Go(TS::Replaying, &[Drop]),                            // RstFromClient
            Noted(TS::Closed, &[TIMED_OUT], Note::ReplayTimedOut), // Timeout
            Noted(TS::Replaying, &[InjectSyn], Note::ReplayRetransmitted), // Retransmit
            Go(TS::Closed, &[ResetKernel]),                        // OriginClosed
            Noted(TS::Closed, &[ResetKernel], ORPHAN),             // OriginGone
        ],
        // Established
        [
            Go(TS::Established, &[TranslateToClient]),
            Go(TS::Established, &[TranslateToClient]),
            Go(HC_KERNEL, &[TranslateToClient]),
            Go(TS::Closing, &[TranslateToClient]),
            Go(TS::Established, &[TranslateToKernel]),
            Go(HC_CLIENT, &[TranslateToKernel]),
            Go(TS::Closing, &[TranslateToKernel]),
            Noted(TS::Closed, &[SendClosed], Note::Expired),
            Go(TS::Established, &[]),
            Go(TS::Closed, &[ResetKernel]),
            Go(TS::Orphaned, &[ProbeKernel]),
        ],
        // HalfClosed(Client)
        [
            Go(HC_CLIENT, &[TranslateToClient]),
            Go(HC_CLIENT, &[TranslateToClient]),
            Go(TS::Closing, &[TranslateToClient]),
            Go(TS::Closing, &[TranslateToClient]),
            Go(HC_CLIENT, &[TranslateToKernel]),
            Go(HC_CLIENT, &[TranslateToKernel]),
            Go(TS::Closing, &[TranslateToKernel]),
            Noted(TS::Closed, &[SendClosed], Note::Expired),
            Go(HC_CLIENT, &[]),
            Go(TS::Closed, &[ResetKernel]),
            Go(TS::Orphaned, &[ProbeKernel]),
        ],
        // HalfClosed(Kernel)
        [
            Go(HC_KERNEL, &[TranslateToClient]),
            Go(HC_KERNEL, &[TranslateToClient]),
            Go(HC_KERNEL, &[TranslateToClient]),
            Go(TS::Closing, &[TranslateToClient]),
            Go(HC_KERNEL, &[TranslateToKernel]),
            Go(TS::Closing, &[TranslateToKernel]),
            Go(TS::Closing, &[TranslateToKernel]),
            Noted(TS::Closed, &[SendClosed], Note::Expired),
            Go(HC_KERNEL, &[]),
            Go(TS::Closed, &[ResetKernel]),
            Go(TS::Orphaned, &[ProbeKernel]),
        ],
        // Closing
        [
            Go(TS::Closing, &[TranslateToClient]),
            Go(TS::Closing, &[TranslateToClient]),
            Go(TS::Closing, &[TranslateToClient]),
            Go(TS::Closing, &[TranslateToClient]),
            Go(TS::Closing, &[TranslateToKernel]),
            Go(TS::Closing, &[TranslateToKernel]),
            Go(TS::Closing, &[TranslateToKernel]),
            Go(TS::Closed, &[SendClosed]),
            Go(TS::Closing, &[]),
            Go(TS::Closed, &[ResetKernel]),
            Noted(TS::Closed, &[ResetKernel], ORPHAN),
        ],
        // Orphaned
        [
            Noted(TS::Closed, &[ResetBoth], ORPHAN),
            Noted(TS::Closed, &[ResetBoth], ORPHAN),
            Noted(TS::Closed, &[ResetBoth], ORPHAN),
            Noted(TS::Closed, &[Drop], ORPHAN),
            Go(TS::Orphaned, &[Drop]),
            Go(TS::Orphaned, &[Drop]),
            Go(TS::Orphaned, &[Drop]),
            Noted(TS::Closed, &[ResetKernel], ORPHAN),
            Go(TS::Orphaned, &[]),
            Go(TS::Closed, &[ResetKernel]),
            Go(TS::Orphaned, &[]),
        ],
        // Closed
        [
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
            Go(TS::Closed, &[]),
        ],
    ]
}

#[test]
fn target_every_state_and_event() {
    let table = target_table();
    let rows: Vec<&[Expect<TS, TA>]> = table.iter().map(|r| &r[..]).collect();
    check_table(&target_states(), &target_events(), &rows);
}

/// Each machine's events say which are packets: exactly those the engine
/// maps a segment to.
#[test]
fn packet_events_are_the_segments() {
    let origin: Vec<OE> = origin_events()
        .into_iter()
        .filter(|e| e.carries_packet())
        .collect();
    assert_eq!(
        origin,
        [
            OE::FromKernel,
            OE::AckFromClient,
            OE::DataFromClient,
            OE::FinFromClient,
            OE::RstFromClient,
            OE::NewSynFromClient
        ]
    );
    let signals: Vec<TE> = target_events()
        .into_iter()
        .filter(|e| !e.carries_packet())
        .collect();
    assert_eq!(
        signals,
        [
            TE::Timeout,
            TE::Retransmit,
            TE::OriginClosed,
            TE::OriginGone
        ]
    );
}

/// Gauges follow the states: pending handoffs, and handed-in connections
/// until they are over.
#[test]
fn gauges() {
    for state in origin_states() {
        let want = match state {
            OS::HandoffPending => Some(Gauge::HandoffsPending),
            OS::Forwarding => Some(Gauge::Forwarding),
            _ => None,
        };
        assert_eq!(state.gauge(), want, "{state:?}");
    }
    for state in target_states() {
        assert_eq!(
            state.gauge(),
            (!state.is_final()).then_some(Gauge::HandedIn)
        );
    }
}

#[test]
fn origin_invariants() {
    for state in origin_states() {
        for event in origin_events() {
            let got = state.on(event);
            // The engine feeds packets in every state.
            if event.carries_packet() {
                assert!(got.is_ok(), "{state:?} × {event:?}");
            }
            let Ok(Transition { next, actions, .. }) = got else {
                continue;
            };
            // Final is final.
            if state.is_final() {
                assert_eq!(next, state, "{state:?} × {event:?}");
                continue;
            }
            // The kernel is reset only when the target took over.
            // The kernel is reset exactly when another takes the
            // connection, or nobody does.
            assert_eq!(
                actions.contains(OA::ResetKernel),
                matches!(next, OS::Forwarding | OS::Refusing) && state != next,
                "{state:?} × {event:?}"
            );
            // Served here means the kernel gets what was held back.
            assert_eq!(
                actions.contains(OA::ReleaseHeldToKernel),
                next == OS::Local,
                "{state:?} × {event:?}"
            );
            // A packet's actions say where it goes: exactly one of these.
            // A SYN for a new connection on a flow that ends opens a flow of
            // its own, which decides where the SYN goes.
            let reopens = event == OE::NewSynFromClient && next.is_final();
            if event.carries_packet() && !reopens {
                let fates = actions
                    .iter()
                    .filter(|a| {
                        matches!(
                            a,
                            OA::PassToKernel
                                | OA::PassToClient
                                | OA::Hold
                                | OA::Queue
                                | OA::Drop
                                | OA::ForwardToTarget
                        )
                    })
                    .count();
                assert_eq!(fates, 1, "{state:?} × {event:?}");
            }
        }
    }
}

#[test]
fn target_invariants() {
    for state in target_states() {
        for event in target_events() {
            let Transition { next, actions, .. } = state.on(event).expect("always valid");
            if state.is_final() {
                assert_eq!((next, actions.len()), (state, 0));
                continue;
            }
            // The origin hears of every end but the one it asked for, and
            // those it is gone for.
            let told = actions
                .iter()
                .any(|a| matches!(a, TA::SendClosed | TA::SendReject(_)));
            let origin_away = event == TE::OriginGone || state == TS::Orphaned;
            assert_eq!(
                told,
                next.is_final() && event != TE::OriginClosed && !origin_away,
                "{state:?} × {event:?}"
            );
            if event.carries_packet() {
                let fates = actions
                    .iter()
                    .filter(|a| {
                        matches!(
                            a,
                            TA::CompleteHandshake
                                | TA::Drop
                                | TA::TranslateToClient
                                | TA::TranslateToKernel
                                | TA::ResetBoth
                        )
                    })
                    .count();
                assert_eq!(fates, 1, "{state:?} × {event:?}");
            }
        }
    }
}

#[test]
fn timers() {
    let origin: Vec<_> = origin_states().iter().map(|s| s.timer()).collect();
    assert_eq!(
        origin,
        [
            Some(OriginTimer::Handshake),
            Some(OriginTimer::Hold),
            Some(OriginTimer::Handoff),
            Some(OriginTimer::Hold),
            Some(OriginTimer::Refusal),
            Some(OriginTimer::Idle),
            None,
            None
        ]
    );
    for state in origin_states() {
        assert_eq!(state.timer().is_none(), state.is_final());
    }
    let restarts: Vec<_> = [
        OriginTimer::Handshake,
        OriginTimer::Hold,
        OriginTimer::Handoff,
        OriginTimer::Refusal,
        OriginTimer::Idle,
    ]
    .map(OriginTimer::restarts_with_traffic)
    .into();
    assert_eq!(restarts, [false, false, false, false, true]);

    let target: Vec<_> = target_states().iter().map(|s| s.timer()).collect();
    assert_eq!(
        target,
        [
            Some(TargetTimer::Replay),
            Some(TargetTimer::Idle),
            Some(TargetTimer::Idle),
            Some(TargetTimer::Idle),
            Some(TargetTimer::Linger),
            Some(TargetTimer::Probe),
            None
        ]
    );
    let restarts: Vec<_> = [
        TargetTimer::Replay,
        TargetTimer::Idle,
        TargetTimer::Linger,
        TargetTimer::Probe,
    ]
    .map(TargetTimer::restarts_with_traffic)
    .into();
    assert_eq!(restarts, [false, true, true, false]);

    let start = OriginState::start();
    assert_eq!(
        (start.next, start.actions.to_vec(), start.note),
        (OS::Handshake, vec![OA::PassToKernel], None)
    );
    let start = TargetState::start();
    assert_eq!(
        (start.next, start.actions.to_vec(), start.note),
        (TS::Replaying, vec![TA::InjectSyn], None)
    );
}

/// Names identify states and events in error messages and logs.
#[test]
fn names_are_distinct() {
    for list in [
        origin_states().map(OS::name).to_vec(),
        origin_events().map(OE::name).to_vec(),
        target_states().map(TS::name).to_vec(),
        target_events().map(TE::name).to_vec(),
    ] {
        let mut sorted = list.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), list.len(), "{list:?}");
    }
}

/// An origin and a target wired together in memory: control messages are
/// delivered at once, packets become events on whichever side they reach.
struct Pair {
    origin: OS,
    target: Option<TS>,
    /// The client packets the origin queued for the target, as the
    /// target's events.
    queued: Vec<TE>,
    /// The origin's event being handled.
    current: OE,
    /// Everything either side was asked to do, in order.
    log: Vec<String>,
}

impl Pair {
    fn new() -> Pair {
        let Transition {
            next: origin,
            actions,
            ..
        } = OriginState::start();
        let mut pair = Pair {
            origin,
            target: None,
            queued: Vec::new(),
            current: OE::AckFromClient,
            log: Vec::new(),
        };
        pair.record_origin(actions);
        pair
    }

    fn origin(&mut self, event: OE) {
        let Transition { next, actions, .. } = self.origin.on(event).expect("valid origin event");
        self.origin = next;
        self.current = event;
        self.record_origin(actions);
    }

    fn target(&mut self, event: TE) {
        let Some(state) = self.target else { return };
        let Transition { next, actions, .. } = state.on(event).expect("always valid");
        self.target = Some(next);
        for action in actions {
            self.log.push(format!("B {action:?}"));
            match action {
                TA::SendAccept => self.origin(OE::Accept),
                TA::SendReject(_) => self.origin(OE::Reject),
                TA::SendClosed => self.origin(OE::TargetClosed),
                _ => {}
            }
        }
    }

    fn record_origin(&mut self, actions: Actions<OA>) {
        for action in actions {
            self.log.push(format!("A {action:?}"));
            match action {
                OA::SendRequest => {
                    let Transition { next, actions, .. } = TargetState::start();
                    self.target = Some(next);
                    self.log.extend(actions.iter().map(|a| format!("B {a:?}")));
                }
                OA::SendCancel => self.target(TE::OriginClosed),
                OA::ForwardToTarget => self.target(self.as_target_event()),
                OA::Queue => self.queued.push(self.as_target_event()),
                OA::ForwardQueued => {
                    for event in std::mem::take(&mut self.queued) {
                        self.target(event);
                    }
                }
                OA::ReleaseHeldToKernel | OA::ClearQueue => self.queued.clear(),
                _ => {}
            }
        }
    }

    /// The client packet the origin handles, as it reaches the target.
    fn as_target_event(&self) -> TE {
        match self.current {
            OE::FinFromClient => TE::FinFromClient,
            OE::RstFromClient => TE::RstFromClient,
            _ => TE::FromClient,
        }
    }

    fn handshake_and_request(&mut self, decision: OE) {
        self.origin(OE::FromKernel); // the SYN-ACK
        self.origin(OE::AckFromClient);
        self.origin(OE::DataFromClient);
        self.origin(decision);
    }
}

#[test]
fn a_handoff_from_start_to_finish() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedHandoff);
    assert_eq!(pair.origin, OS::HandoffPending);
    pair.target(TE::SynAckFromKernel);
    assert_eq!(
        (pair.origin, pair.target),
        (OS::Forwarding, Some(TS::Established))
    );
    pair.origin(OE::AckFromClient); // forwarded, translated into B's kernel
    pair.target(TE::FromKernel); // the response, straight to the client
    pair.target(TE::FinFromKernel);
    pair.origin(OE::FinFromClient);
    assert_eq!(pair.target, Some(TS::Closing));
    pair.target(TE::Timeout); // linger over
    assert_eq!((pair.origin, pair.target), (OS::Closed, Some(TS::Closed)));
    assert_eq!(
        pair.log,
        [
            "A PassToKernel",
            "A PassToClient",
            "A PassToKernel",
            "A Hold",
            "A SendRequest",
            "B InjectSyn",
            "B CompleteHandshake",
            "B SendAccept",
            "A ResetKernel",
            "A ForwardQueued",
            "A ForwardToTarget",
            "B TranslateToKernel",
            "B TranslateToClient",
            "B TranslateToClient",
            "A ForwardToTarget",
            "B TranslateToKernel",
            "B SendClosed",
        ]
    );
}

#[test]
fn client_packets_racing_the_accept_reach_the_target() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedHandoff);
    // B answers the client before its Accept reaches A.
    pair.origin(OE::AckFromClient);
    pair.origin(OE::AckFromClient);
    assert_eq!(pair.queued.len(), 2);
    pair.target(TE::SynAckFromKernel);
    assert_eq!(pair.origin, OS::Forwarding);
    let translated = pair
        .log
        .iter()
        .filter(|l| *l == "B TranslateToKernel")
        .count();
    assert_eq!(translated, 2);
}

#[test]
fn a_refused_handoff_loses_nothing_and_is_decided_again() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedHandoff);
    pair.target(TE::RstFromKernel); // B's kernel refuses the SYN
    assert_eq!((pair.origin, pair.target), (OS::Retrying, Some(TS::Closed)));
    assert!(pair.log.ends_with(&[
        "B Drop".into(),
        "B SendReject(KernelRefused)".into(),
        "A ClearQueue".into(),
    ]));
    // The next node the policy picks gets the request, and takes it.
    pair.origin(OE::DecidedHandoff);
    assert_eq!(
        (pair.origin, pair.target),
        (OS::HandoffPending, Some(TS::Replaying))
    );
    pair.target(TE::SynAckFromKernel);
    assert_eq!(
        (pair.origin, pair.target),
        (OS::Forwarding, Some(TS::Established))
    );
}

#[test]
fn a_refused_handoff_is_served_here_by_a_member_and_refused_otherwise() {
    for (decision, end, last) in [
        (OE::DecidedLocal, OS::Local, "A ReleaseHeldToKernel"),
        (OE::NoCandidate, OS::Refusing, "A ResetKernel"),
    ] {
        let mut pair = Pair::new();
        pair.handshake_and_request(OE::DecidedHandoff);
        pair.target(TE::RstFromKernel);
        pair.origin(decision);
        assert_eq!(pair.origin, end);
        assert_eq!(pair.log.last().map(String::as_str), Some(last));
    }
}

#[test]
fn an_origin_timeout_calls_the_target_off() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedHandoff);
    pair.origin(OE::Timeout);
    assert_eq!((pair.origin, pair.target), (OS::Retrying, Some(TS::Closed)));
    pair.origin(OE::DecidedLocal);
    // The target's late SYN-ACK changes nothing.
    pair.target(TE::SynAckFromKernel);
    assert_eq!((pair.origin, pair.target), (OS::Local, Some(TS::Closed)));
    assert!(pair.log.contains(&"B ResetKernel".into()));
    assert!(pair.log.contains(&"A ReleaseHeldToKernel".into()));
}

#[test]
fn a_late_accept_is_answered_with_closed() {
    // The origin served the connection itself; the target accepts anyway.
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedHandoff);
    pair.origin(OE::Reject);
    pair.origin(OE::DecidedLocal);
    assert_eq!(pair.origin, OS::Local);
    assert_eq!(
        OS::Local.on(OE::Accept).map(|t| t.actions.to_vec()),
        Ok(vec![OA::SendCancel])
    );
}

#[test]
fn a_local_decision_never_involves_the_target() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedLocal);
    assert_eq!(pair.origin, OS::Local);
    pair.origin(OE::DataFromClient);
    pair.origin(OE::FinFromClient);
    assert_eq!((pair.origin, pair.target), (OS::Local, None));
    assert!(pair.log.iter().all(|l| l.starts_with('A')));
}

#[test]
fn a_client_reset_mid_handoff_calls_the_target_off() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedHandoff);
    pair.origin(OE::RstFromClient);
    assert_eq!((pair.origin, pair.target), (OS::Closed, Some(TS::Closed)));
    assert!(pair.log.ends_with(&[
        "A SendCancel".into(),
        "B ResetKernel".into(),
        "A PassToKernel".into(),
    ]));
}

#[test]
fn an_origin_that_loses_its_target_resets_the_client() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedHandoff);
    pair.target(TE::SynAckFromKernel);
    pair.origin(OE::PeerDown);
    assert_eq!(
        (pair.origin, pair.target),
        (OS::Closed, Some(TS::Established))
    );
    assert!(pair.log.ends_with(&["A ResetClient".into()]));
}
