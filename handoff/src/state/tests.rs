//! Every state × event pair of both machines, as tables, and the two
//! machines driven against each other in memory.

use super::*;
use crate::msg::RejectReason;
use crate::policy::Decision;

use OriginAction as OA;
use OriginEvent as OE;
use OriginState as OS;
use TargetAction as TA;
use TargetEvent as TE;
use TargetState as TS;

const HS0: OS = OS::Handshake {
    syn_ack_seen: false,
};
const HS1: OS = OS::Handshake { syn_ack_seen: true };

fn origin_states() -> [OS; 7] {
    [
        HS0,
        HS1,
        OS::Held,
        OS::Local,
        OS::HandoffPending,
        OS::Forwarding,
        OS::Closed,
    ]
}

fn origin_events() -> [OE; 12] {
    [
        OE::SynAckFromKernel,
        OE::AckFromClient,
        OE::DataFromClient,
        OE::Classified(Decision::Local),
        OE::Classified(Decision::Handoff { node: "b".into() }),
        OE::HoldLimitReached,
        OE::Accept,
        OE::Reject,
        OE::Timeout,
        OE::PeerDown,
        OE::ClientFinOrRst,
        OE::TargetClosed,
    ]
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
fn origin_table() -> Vec<Vec<Expect<OS, OA>>> {
    use OA::*;
    vec![
        // Handshake { syn_ack_seen: false }
        vec![
            Go(HS1, &[PassToClient]),                // SynAckFromKernel
            Go(HS0, &[PassToKernel]),                // AckFromClient
            Go(OS::Local, &[PassToKernel]),          // DataFromClient
            Invalid,                                 // Classified(Local)
            Invalid,                                 // Classified(Handoff)
            Invalid,                                 // HoldLimitReached
            Invalid,                                 // Accept
            Invalid,                                 // Reject
            Go(OS::Closed, &[Free]),                 // Timeout
            Go(HS0, &[]),                            // PeerDown
            Go(OS::Closed, &[PassToKernel, Free]),   // ClientFinOrRst
            Invalid,                                 // TargetClosed
        ],
        // Handshake { syn_ack_seen: true }
        vec![
            Go(HS1, &[PassToClient]),
            Go(HS1, &[PassToKernel]),
            Go(OS::Held, &[Hold]),
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Closed, &[Free]),
            Go(HS1, &[]),
            Go(OS::Closed, &[PassToKernel, Free]),
            Invalid,
        ],
        // Held
        vec![
            Go(OS::Held, &[PassToClient]),
            Go(OS::Held, &[PassToKernel]),
            Go(OS::Held, &[Hold]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Go(OS::HandoffPending, &[SendRequest]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Invalid,
            Invalid,
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Go(OS::Held, &[]),
            Go(OS::Closed, &[ReleaseHeldToKernel, PassToKernel, Free]),
            Invalid,
        ],
        // Local
        vec![
            Go(OS::Local, &[PassToClient]),
            Go(OS::Local, &[PassToKernel]),
            Go(OS::Local, &[PassToKernel]),
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Local, &[SendClosed]),            // a late Accept
            Go(OS::Local, &[]),                      // a late Reject
            Go(OS::Closed, &[Free]),
            Go(OS::Local, &[]),
            Go(OS::Closed, &[PassToKernel, Free]),
            Go(OS::Local, &[]),
        ],
        // HandoffPending
        vec![
            Go(OS::HandoffPending, &[PassToClient]),
            Go(OS::HandoffPending, &[PassToKernel]),
            Go(OS::HandoffPending, &[Drop]),
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Forwarding, &[ResetKernel]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Go(OS::Local, &[SendClosed, ReleaseHeldToKernel]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
            Go(OS::Closed, &[SendClosed, ReleaseHeldToKernel, PassToKernel, Free]),
            Go(OS::Local, &[ReleaseHeldToKernel]),
        ],
        // Forwarding
        vec![
            Go(OS::Forwarding, &[Drop]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Invalid,
            Go(OS::Forwarding, &[]),
            Go(OS::Closed, &[ResetClient, Free]),
            Go(OS::Forwarding, &[ForwardToTarget]),
            Go(OS::Closed, &[Free]),
        ],
        // Closed
        vec![
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[SendClosed]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
            Go(OS::Closed, &[]),
        ],
    ]
}

#[test]
fn origin_every_state_and_event() {
    let table = origin_table();
    assert_eq!(table.len(), origin_states().len());
    for (state, row) in origin_states().into_iter().zip(&table) {
        assert_eq!(row.len(), origin_events().len(), "row {state:?}");
        for (event, expected) in origin_events().into_iter().zip(row) {
            let got = state.on(event.clone());
            match expected {
                Go(next, actions) => {
                    let (got_next, got_actions) =
                        got.unwrap_or_else(|e| panic!("{state:?} × {event:?}: {e}"));
                    assert_eq!(
                        (got_next, got_actions.to_vec()),
                        (*next, actions.to_vec()),
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

fn target_states() -> [TS; 4] {
    [TS::Replaying, TS::Established, TS::Closing, TS::Closed]
}

fn target_events() -> [TE; 8] {
    [
        TE::SynAckFromKernel,
        TE::FromKernel,
        TE::FinOrRstFromKernel,
        TE::FromClient,
        TE::FinOrRstFromClient,
        TE::Timeout,
        TE::OriginClosed,
        TE::PeerDown,
    ]
}

#[rustfmt::skip]
fn target_table() -> [[(TS, &'static [TA]); 8]; 4] {
    use TA::*;
    const REFUSED: TA = SendReject(RejectReason::KernelRefused);
    const TIMED_OUT: TA = SendReject(RejectReason::Timeout);
    [
        // Replaying
        [
            (TS::Established, &[LearnTranslation, Drop, InjectAckAndHeld, SendAccept]),
            (TS::Replaying, &[Drop]),
            (TS::Closed, &[Drop, REFUSED, Free]),
            (TS::Replaying, &[Drop]),
            (TS::Replaying, &[Drop]),
            (TS::Closed, &[ResetKernel, TIMED_OUT, Free]),
            (TS::Closed, &[ResetKernel, Free]),
            (TS::Closed, &[ResetKernel, Free]),
        ],
        // Established
        [
            (TS::Established, &[Drop, InjectAckAndHeld]),
            (TS::Established, &[TranslateToClient]),
            (TS::Closing, &[TranslateToClient]),
            (TS::Established, &[TranslateToKernel]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closed, &[ResetClient, ResetKernel, SendClosed, Free]),
            (TS::Closed, &[ResetKernel, Free]),
            (TS::Closed, &[ResetClient, ResetKernel, Free]),
        ],
        // Closing
        [
            (TS::Closing, &[Drop]),
            (TS::Closing, &[TranslateToClient]),
            (TS::Closing, &[TranslateToClient]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closing, &[TranslateToKernel]),
            (TS::Closed, &[SendClosed, Free]),
            (TS::Closed, &[ResetKernel, Free]),
            (TS::Closed, &[ResetKernel, Free]),
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

/// Properties that hold across the tables: what frees a flow ends in
/// Closed, and Closed is final.
#[test]
fn free_and_closed_go_together() {
    for state in origin_states() {
        for event in origin_events() {
            if let Ok((next, actions)) = state.on(event) {
                if state != OS::Closed {
                    assert_eq!(actions.contains(OA::Free), next == OS::Closed);
                }
                if state == OS::Closed {
                    assert_eq!(next, OS::Closed);
                }
                // The kernel is reset only when the target took over.
                if actions.contains(OA::ResetKernel) {
                    assert_eq!(next, OS::Forwarding);
                }
            }
        }
    }
    for state in target_states() {
        for event in target_events() {
            let (next, actions) = state.on(event);
            if state != TS::Closed {
                assert_eq!(actions.contains(TA::Free), next == TS::Closed);
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
            Some(OriginTimer::Handshake),
            Some(OriginTimer::Hold),
            Some(OriginTimer::Idle),
            Some(OriginTimer::Handoff),
            None,
            None
        ]
    );
    let target: Vec<_> = target_states().iter().map(|s| s.timer()).collect();
    assert_eq!(
        target,
        [
            Some(TargetTimer::Replay),
            Some(TargetTimer::Idle),
            Some(TargetTimer::Linger),
            None
        ]
    );
    assert_eq!(
        OriginState::start(),
        (HS0, Actions::of(&[OA::PassToKernel]))
    );
    assert_eq!(
        TargetState::start(),
        (TS::Replaying, Actions::of(&[TA::InjectSyn]))
    );
}

/// An origin and a target wired together in memory: control messages are
/// delivered at once, packets become events on whichever side they reach.
struct Pair {
    origin: OS,
    target: Option<TS>,
    /// Everything either side was asked to do, in order.
    log: Vec<String>,
}

impl Pair {
    fn new() -> Pair {
        let (origin, actions) = OriginState::start();
        let mut pair = Pair {
            origin,
            target: None,
            log: Vec::new(),
        };
        pair.record_origin(actions);
        pair
    }

    fn origin(&mut self, event: OE) {
        let (next, actions) = self.origin.on(event).expect("valid origin event");
        self.origin = next;
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
                OA::ForwardToTarget => self.target(TE::FromClient),
                _ => {}
            }
        }
    }

    fn handshake_and_request(&mut self, decision: Decision) {
        self.origin(OE::SynAckFromKernel);
        self.origin(OE::AckFromClient);
        self.origin(OE::DataFromClient);
        self.origin(OE::Classified(decision));
    }
}

#[test]
fn a_handoff_from_start_to_finish() {
    let mut pair = Pair::new();
    pair.handshake_and_request(Decision::Handoff { node: "b".into() });
    assert_eq!(pair.origin, OS::HandoffPending);
    pair.target(TE::SynAckFromKernel);
    assert_eq!(
        (pair.origin, pair.target),
        (OS::Forwarding, Some(TS::Established))
    );
    pair.origin(OE::AckFromClient); // forwarded, translated into B's kernel
    pair.target(TE::FromKernel); // the response, straight to the client
    pair.target(TE::FinOrRstFromKernel);
    pair.origin(OE::ClientFinOrRst);
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
            "B LearnTranslation",
            "B Drop",
            "B InjectAckAndHeld",
            "B SendAccept",
            "A ResetKernel",
            "A ForwardToTarget",
            "B TranslateToKernel",
            "B TranslateToClient",
            "B TranslateToClient",
            "A ForwardToTarget",
            "B TranslateToKernel",
            "B SendClosed",
            "A Free",
            "B Free",
        ]
    );
}

#[test]
fn a_refused_handoff_loses_nothing() {
    let mut pair = Pair::new();
    pair.handshake_and_request(Decision::Handoff { node: "b".into() });
    pair.target(TE::FinOrRstFromKernel); // B's kernel refuses the SYN
    assert_eq!((pair.origin, pair.target), (OS::Local, Some(TS::Closed)));
    assert!(pair.log.ends_with(&[
        "B Drop".into(),
        "B SendReject(KernelRefused)".into(),
        "A ReleaseHeldToKernel".into(),
        "B Free".into(),
    ]));
}

#[test]
fn an_origin_timeout_calls_the_target_off() {
    let mut pair = Pair::new();
    pair.handshake_and_request(Decision::Handoff { node: "b".into() });
    pair.origin(OE::Timeout);
    assert_eq!((pair.origin, pair.target), (OS::Local, Some(TS::Closed)));
    // The target's late SYN-ACK changes nothing.
    pair.target(TE::SynAckFromKernel);
    assert_eq!((pair.origin, pair.target), (OS::Local, Some(TS::Closed)));
    assert!(pair.log.contains(&"B ResetKernel".into()));
    assert!(pair.log.contains(&"A ReleaseHeldToKernel".into()));
}

#[test]
fn a_local_decision_never_involves_the_target() {
    let mut pair = Pair::new();
    pair.handshake_and_request(Decision::Local);
    pair.origin(OE::DataFromClient);
    pair.origin(OE::ClientFinOrRst);
    assert_eq!((pair.origin, pair.target), (OS::Closed, None));
    assert!(pair.log.iter().all(|l| l.starts_with('A')));
}

#[test]
fn a_target_that_loses_its_origin_resets_the_client() {
    let mut pair = Pair::new();
    pair.handshake_and_request(Decision::Handoff { node: "b".into() });
    pair.target(TE::SynAckFromKernel);
    pair.origin(OE::PeerDown);
    pair.target(TE::PeerDown);
    assert_eq!((pair.origin, pair.target), (OS::Closed, Some(TS::Closed)));
    assert!(pair.log.contains(&"A ResetClient".into()));
    assert!(pair.log.contains(&"B ResetClient".into()));
}
