//! Every state × event pair of both machines, as tables, and the two
//! machines driven against each other in memory.

use super::*;
use crate::msg::RejectReason;

use OriginAction as OA;
use OriginEvent as OE;
use OriginState as OS;
use TargetAction as TA;
use TargetEvent as TE;
use TargetState as TS;

fn origin_states() -> [OS; 6] {
    [
        OS::Handshake,
        OS::Held,
        OS::HandoffPending,
        OS::Forwarding,
        OS::Local,
        OS::Closed,
    ]
}

fn origin_events() -> [OE; 13] {
    [
        OE::FromKernel,
        OE::AckFromClient,
        OE::DataFromClient,
        OE::FinFromClient,
        OE::RstFromClient,
        OE::DecidedLocal,
        OE::DecidedHandoff,
        OE::HoldLimitReached,
        OE::Accept,
        OE::Reject,
        OE::TargetClosed,
        OE::Timeout,
        OE::PeerDown,
    ]
}

/// The events that come from packets: valid in every state.
fn is_packet(event: OE) -> bool {
    matches!(
        event,
        OE::FromKernel
            | OE::AckFromClient
            | OE::DataFromClient
            | OE::FinFromClient
            | OE::RstFromClient
    )
}

/// The expected outcome of one pair.
#[derive(Debug)]
enum Expect<S, A: 'static> {
    /// This next state (possibly the same) and these actions.
    Go(S, &'static [A]),
    /// Not valid in this state.
    Invalid,
}

use Expect::{Go, Invalid};

/// Origin: one row per state, one column per event, in the order of
/// `origin_states()` × `origin_events()`.
#[rustfmt::skip]
fn origin_table() -> [[Expect<OS, OA>; 13]; 6] {
    use OA::*;
    [
        // Handshake
        [
            Go(OS::Handshake, &[PassToClient]),      // FromKernel
            Go(OS::Handshake, &[PassToKernel]),      // AckFromClient
            Go(OS::Held, &[Hold]),                   // DataFromClient
            Go(OS::Handshake, &[PassToKernel]),      // FinFromClient
            Go(OS::Closed, &[PassToKernel]),         // RstFromClient
            Invalid,                                 // DecidedLocal
            Invalid,                                 // DecidedHandoff
            Invalid,                                 // HoldLimitReached
            Invalid,                                 // Accept
            Invalid,                                 // Reject
            Invalid,                                 // TargetClosed
            Go(OS::Closed, &[]),                     // Timeout
            Go(OS::Handshake, &[]),                  // PeerDown
        ],
        // Held
        [
            Go(OS::Held, &[PassToClient]),
            Go(OS::Held, &[PassToKernel]),
            Go(OS::Held, &[Hold]),
            Go(OS::Local, &[ReleaseHeldToKernel, PassToKernel]),
            Go(OS::Closed, &[PassToKernel]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Go(OS::HandoffPending, &[SendRequest]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Go(OS::Held, &[]),
        ],
        // HandoffPending
        [
            Go(OS::HandoffPending, &[PassToClient]),
            Go(OS::HandoffPending, &[Queue]),
            Go(OS::HandoffPending, &[Queue]),
            Go(OS::HandoffPending, &[Queue]),
            Go(OS::Closed, &[SendClosed, PassToKernel]),
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Forwarding, &[ResetKernel, ForwardQueued]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Go(OS::Local, &[ReleaseHeldToKernel, SendClosed]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
        ],
        // Forwarding
        [
            Go(OS::Forwarding, &[Drop]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Invalid,
            Invalid,
            Invalid,
            Invalid,                                 // a repeated Accept
            Invalid,
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[ResetClient]),
        ],
        // Local
        [
            Go(OS::Local, &[PassToClient]),
            Go(OS::Local, &[PassToKernel]),
            Go(OS::Local, &[PassToKernel]),
            Go(OS::Local, &[PassToKernel]),
            Go(OS::Local, &[PassToKernel]),
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Local, &[SendClosed]),            // a late Accept
            Go(OS::Local, &[]),                      // a late Reject
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
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Closed, &[SendClosed]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
        ],
    ]
}

#[test]
fn origin_every_state_and_event() {
    for (state, row) in origin_states().into_iter().zip(origin_table()) {
        for (event, expected) in origin_events().into_iter().zip(row) {
            let got = state.on(event);
            match expected {
                Go(next, actions) => {
                    let (got_next, got_actions) =
                        got.unwrap_or_else(|e| panic!("{state:?} × {event:?}: {e}"));
                    assert_eq!(
                        (got_next, got_actions.to_vec()),
                        (next, actions.to_vec()),
                        "{state:?} × {event:?}"
                    );
                }
                Invalid => assert_eq!(
                    got,
                    Err(InvalidTransition {
                        state: state.name(),
                        event: event.name()
                    }),
                    "{state:?} × {event:?}"
                ),
            }
        }
    }
}

fn target_states() -> [TS; 6] {
    [
        TS::Replaying,
        TS::Established,
        TS::HalfClosed(Side::Client),
        TS::HalfClosed(Side::Kernel),
        TS::Closing,
        TS::Closed,
    ]
}

fn target_events() -> [TE; 9] {
    [
        TE::SynAckFromKernel,
        TE::FromKernel,
        TE::FinFromKernel,
        TE::RstFromKernel,
        TE::FromClient,
        TE::FinFromClient,
        TE::RstFromClient,
        TE::Timeout,
        TE::OriginClosed,
    ]
}

#[rustfmt::skip]
fn target_table() -> [[(TS, &'static [TA]); 9]; 6] {
    use TA::*;
    const REFUSED: TA = SendReject(RejectReason::KernelRefused);
    const TIMED_OUT: TA = SendReject(RejectReason::Timeout);
    const HC_CLIENT: TS = TS::HalfClosed(Side::Client);
    const HC_KERNEL: TS = TS::HalfClosed(Side::Kernel);
    [
        // Replaying
        [
            (TS::Established, &[CompleteHandshake, SendAccept]), // SynAckFromKernel
            (TS::Replaying, &[Drop]),                            // FromKernel
            (TS::Replaying, &[Drop]),                            // FinFromKernel
            (TS::Closed, &[Drop, REFUSED]),                      // RstFromKernel
            (TS::Replaying, &[Drop]),                            // FromClient
            (TS::Replaying, &[Drop]),                            // FinFromClient
            (TS::Replaying, &[Drop]),                            // RstFromClient
            (TS::Closed, &[TIMED_OUT]),                          // Timeout
            (TS::Closed, &[ResetKernel]),                        // OriginClosed
        ],
        // Established
        [
            (TS::Established, &[TranslateToClient]),
            (TS::Established, &[TranslateToClient]),
            (HC_KERNEL, &[TranslateToClient]),
            (TS::Closing, &[TranslateToClient]),
            (TS::Established, &[TranslateToKernel]),
            (HC_CLIENT, &[TranslateToKernel]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closed, &[SendClosed]),
            (TS::Closed, &[ResetKernel]),
        ],
        // HalfClosed(Client): the client sent its FIN
        [
            (HC_CLIENT, &[TranslateToClient]),
            (HC_CLIENT, &[TranslateToClient]),
            (TS::Closing, &[TranslateToClient]),
            (TS::Closing, &[TranslateToClient]),
            (HC_CLIENT, &[TranslateToKernel]),
            (HC_CLIENT, &[TranslateToKernel]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closed, &[SendClosed]),
            (TS::Closed, &[ResetKernel]),
        ],
        // HalfClosed(Kernel): the kernel sent its FIN
        [
            (HC_KERNEL, &[TranslateToClient]),
            (HC_KERNEL, &[TranslateToClient]),
            (HC_KERNEL, &[TranslateToClient]),
            (TS::Closing, &[TranslateToClient]),
            (HC_KERNEL, &[TranslateToKernel]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closed, &[SendClosed]),
            (TS::Closed, &[ResetKernel]),
        ],
        // Closing
        [
            (TS::Closing, &[TranslateToClient]),
            (TS::Closing, &[TranslateToClient]),
            (TS::Closing, &[TranslateToClient]),
            (TS::Closing, &[TranslateToClient]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closed, &[SendClosed]),
            (TS::Closed, &[ResetKernel]),
        ],
        // Closed
        [
            (TS::Closed, &[]),
            (TS::Closed, &[]),
            (TS::Closed, &[]),
            (TS::Closed, &[]),
            (TS::Closed, &[]),
            (TS::Closed, &[]),
            (TS::Closed, &[]),
            (TS::Closed, &[]),
            (TS::Closed, &[]),
        ],
    ]
}

#[test]
fn target_every_state_and_event() {
    for (state, row) in target_states().into_iter().zip(target_table()) {
        for (event, (next, actions)) in target_events().into_iter().zip(row) {
            let (got_next, got_actions) = state.on(event);
            assert_eq!(
                (got_next, got_actions.to_vec()),
                (next, actions.to_vec()),
                "{state:?} × {event:?}"
            );
        }
    }
}

/// Properties that hold across the tables.
#[test]
fn origin_invariants() {
    for state in origin_states() {
        for event in origin_events() {
            let got = state.on(event);
            // The glue feeds packets in every state.
            if is_packet(event) {
                assert!(got.is_ok(), "{state:?} × {event:?}");
            }
            let Ok((next, actions)) = got else { continue };
            // Final is final.
            if state.is_final() {
                assert_eq!(next, state, "{state:?} × {event:?}");
                continue;
            }
            // The kernel is reset only when the target took over.
            assert_eq!(
                actions.contains(OA::ResetKernel),
                next == OS::Forwarding && state != OS::Forwarding,
                "{state:?} × {event:?}"
            );
            // Served here means the kernel gets what was held back.
            assert_eq!(
                actions.contains(OA::ReleaseHeldToKernel),
                next == OS::Local,
                "{state:?} × {event:?}"
            );
            // A packet's actions say where it goes: exactly one of these.
            if is_packet(event) {
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
    let packets = [
        TE::SynAckFromKernel,
        TE::FromKernel,
        TE::FinFromKernel,
        TE::RstFromKernel,
        TE::FromClient,
        TE::FinFromClient,
        TE::RstFromClient,
    ];
    for state in target_states() {
        for event in target_events() {
            let (next, actions) = state.on(event);
            if state.is_final() {
                assert_eq!((next, actions.len()), (state, 0));
                continue;
            }
            // The origin hears of every end but the one it asked for.
            let told = actions
                .iter()
                .any(|a| matches!(a, TA::SendClosed | TA::SendReject(_)));
            assert_eq!(
                told,
                next.is_final() && event != TE::OriginClosed,
                "{state:?} × {event:?}"
            );
            if packets.contains(&event) {
                let fates = actions
                    .iter()
                    .filter(|a| {
                        matches!(
                            a,
                            TA::CompleteHandshake
                                | TA::Drop
                                | TA::TranslateToClient
                                | TA::TranslateToKernel
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
        OriginTimer::Idle,
    ]
    .map(OriginTimer::restarts_with_traffic)
    .into();
    assert_eq!(restarts, [false, false, false, true]);

    let target: Vec<_> = target_states().iter().map(|s| s.timer()).collect();
    assert_eq!(
        target,
        [
            Some(TargetTimer::Replay),
            Some(TargetTimer::Idle),
            Some(TargetTimer::Idle),
            Some(TargetTimer::Idle),
            Some(TargetTimer::Linger),
            None
        ]
    );
    let restarts: Vec<_> = [TargetTimer::Replay, TargetTimer::Idle, TargetTimer::Linger]
        .map(TargetTimer::restarts_with_traffic)
        .into();
    assert_eq!(restarts, [false, true, true]);

    assert_eq!(
        OriginState::start(),
        (OS::Handshake, Actions::of(&[OA::PassToKernel]))
    );
    assert_eq!(
        TargetState::start(),
        (TS::Replaying, Actions::of(&[TA::InjectSyn]))
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
        let (origin, actions) = OriginState::start();
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
        let (next, actions) = self.origin.on(event).expect("valid origin event");
        self.origin = next;
        self.current = event;
        self.record_origin(actions);
    }

    fn target(&mut self, event: TE) {
        let Some(state) = self.target else { return };
        let (next, actions) = state.on(event);
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
                    let (state, actions) = TargetState::start();
                    self.target = Some(state);
                    self.log.extend(actions.iter().map(|a| format!("B {a:?}")));
                }
                OA::SendClosed => self.target(TE::OriginClosed),
                OA::ForwardToTarget => self.target(self.as_target_event()),
                OA::Queue => self.queued.push(self.as_target_event()),
                OA::ForwardQueued => {
                    for event in std::mem::take(&mut self.queued) {
                        self.target(event);
                    }
                }
                OA::ReleaseHeldToKernel => self.queued.clear(),
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
fn a_refused_handoff_loses_nothing() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedHandoff);
    pair.target(TE::RstFromKernel); // B's kernel refuses the SYN
    assert_eq!((pair.origin, pair.target), (OS::Local, Some(TS::Closed)));
    assert!(pair.log.ends_with(&[
        "B Drop".into(),
        "B SendReject(KernelRefused)".into(),
        "A ReleaseHeldToKernel".into(),
    ]));
}

#[test]
fn an_origin_timeout_calls_the_target_off() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedHandoff);
    pair.origin(OE::Timeout);
    assert_eq!((pair.origin, pair.target), (OS::Local, Some(TS::Closed)));
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
    assert_eq!(pair.origin, OS::Local);
    assert_eq!(
        OS::Local.on(OE::Accept).map(|(_, a)| a.to_vec()),
        Ok(vec![OA::SendClosed])
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
        "A SendClosed".into(),
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
