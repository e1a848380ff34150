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

fn origin_states() -> [OS; 17] {
    [
        OS::Handshake,
        OS::Held,
        OS::HandoffPending,
        OS::Retrying,
        OS::Refusing,
        OS::Forwarding,
        OS::Serving,
        OS::ServingReplayed,
        OS::Quiescing(Owner::Kernel),
        OS::Quiescing(Owner::Replayed),
        OS::Quiescing(Owner::Peer),
        OS::Moving,
        OS::MovePending,
        OS::Replaying,
        OS::Closing,
        OS::Local,
        OS::Closed,
    ]
}
fn origin_events() -> [OE; 27] {
    [
        OE::FromKernel,
        OE::SynAckFromKernel,
        OE::FinFromKernel,
        OE::RstFromKernel,
        OE::HandshakeAck,
        OE::AckFromClient,
        OE::DataFromClient,
        OE::FinFromClient,
        OE::RstFromClient,
        OE::NewSynFromClient,
        OE::DecidedLocal,
        OE::DecidedLocalPinned,
        OE::Unclassifiable,
        OE::DecidedHandoff,
        OE::NoCandidate,
        OE::HoldLimitReached,
        OE::RequestElsewhere,
        OE::Released,
        OE::ReleaseRefused,
        OE::DecidedHere,
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
fn origin_table() -> [[Expect<OS, OA>; 27]; 17] {
    use OA::*;
    [
        // Handshake
        [
            Go(OS::Handshake, &[PassToClient]), // FromKernel
            Go(OS::Handshake, &[PassToClient]), // SynAckFromKernel
            Go(OS::Handshake, &[PassToClient]), // FinFromKernel
            Go(OS::Handshake, &[PassToClient]), // RstFromKernel
            Go(OS::Handshake, &[Withhold]), // HandshakeAck
            Go(OS::Handshake, &[PassToKernel]), // AckFromClient
            Go(OS::Held, &[Hold]), // DataFromClient
            Noted(OS::Local, &[ReleaseHeldToKernel, PassToKernel], Note::NoRequest), // FinFromClient
            Go(OS::Closed, &[PassToKernel]), // RstFromClient
            Go(OS::Handshake, &[PassToKernel]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Invalid, // Accept
            Invalid, // Reject
            Invalid, // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Closed, &[], Note::Expired), // Timeout
            Go(OS::Handshake, &[]), // Retransmit
            Go(OS::Handshake, &[]), // PeerDown
        ],
        // Held
        [
            Go(OS::Held, &[PassToClient]), // FromKernel
            Go(OS::Held, &[PassToClient]), // SynAckFromKernel
            Go(OS::Held, &[PassToClient]), // FinFromKernel
            Go(OS::Held, &[PassToClient]), // RstFromKernel
            Go(OS::Held, &[PassToKernel]), // HandshakeAck
            Go(OS::Held, &[PassToKernel]), // AckFromClient
            Go(OS::Held, &[Hold]), // DataFromClient
            Noted(OS::Local, &[ReleaseHeldToKernel, PassToKernel], Note::HoldUndecided), // FinFromClient
            Go(OS::Closed, &[PassToKernel]), // RstFromClient
            Go(OS::Held, &[PassToKernel]), // NewSynFromClient
            Noted(OS::Serving, &[ReleaseHeldToKernel], Note::ServedLocal), // DecidedLocal
            Noted(OS::Local, &[ReleaseHeldToKernel], Note::ServedLocal), // DecidedLocalPinned
            Noted(OS::Local, &[ReleaseHeldToKernel], Note::BadRequest), // Unclassifiable
            Go(OS::HandoffPending, &[SendRequest]), // DecidedHandoff
            Noted(OS::Refusing, &[Refuse, ResetKernel], Note::Refused), // NoCandidate
            Noted(OS::Local, &[ReleaseHeldToKernel], Note::HoldUndecided), // HoldLimitReached
            Invalid, // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Invalid, // Accept
            Invalid, // Reject
            Invalid, // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Local, &[ReleaseHeldToKernel], Note::HoldUndecided), // Timeout
            Go(OS::Held, &[]), // Retransmit
            Go(OS::Held, &[]), // PeerDown
        ],
        // HandoffPending
        [
            Go(OS::HandoffPending, &[PassToClient]), // FromKernel
            Go(OS::HandoffPending, &[PassToClient]), // SynAckFromKernel
            Go(OS::HandoffPending, &[PassToClient]), // FinFromKernel
            Go(OS::HandoffPending, &[PassToClient]), // RstFromKernel
            Go(OS::HandoffPending, &[Queue]), // HandshakeAck
            Go(OS::HandoffPending, &[Queue]), // AckFromClient
            Go(OS::HandoffPending, &[Hold]), // DataFromClient
            Go(OS::HandoffPending, &[Queue]), // FinFromClient
            Noted(OS::Closed, &[SendCancel, PassToKernel], Note::ClientResetMidHandoff), // RstFromClient
            Go(OS::HandoffPending, &[Queue]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Noted(OS::Forwarding, &[ResetKernel, ForwardQueued], Note::HandedOff), // Accept
            Noted(OS::Retrying, &[ClearQueue], Note::HandoffRejected), // Reject
            Go(OS::Retrying, &[ClearQueue]), // TargetClosed
            Noted(OS::Forwarding, &[ResetKernel, ForwardQueued], Note::HandedOff), // TargetAnswered
            Noted(OS::Retrying, &[SendCancel, ClearQueue], Note::HandoffTimedOut), // Timeout
            Go(OS::HandoffPending, &[]), // Retransmit
            Go(OS::Retrying, &[ClearQueue]), // PeerDown
        ],
        // Retrying
        [
            Go(OS::Retrying, &[PassToClient]), // FromKernel
            Go(OS::Retrying, &[PassToClient]), // SynAckFromKernel
            Go(OS::Retrying, &[PassToClient]), // FinFromKernel
            Go(OS::Retrying, &[PassToClient]), // RstFromKernel
            Go(OS::Retrying, &[PassToKernel]), // HandshakeAck
            Go(OS::Retrying, &[PassToKernel]), // AckFromClient
            Go(OS::Retrying, &[Hold]), // DataFromClient
            Noted(OS::Local, &[ReleaseHeldToKernel, PassToKernel], Note::FellBack), // FinFromClient
            Go(OS::Closed, &[PassToKernel]), // RstFromClient
            Go(OS::Retrying, &[PassToKernel]), // NewSynFromClient
            Noted(OS::Serving, &[ReleaseHeldToKernel], Note::FellBack), // DecidedLocal
            Noted(OS::Local, &[ReleaseHeldToKernel], Note::FellBack), // DecidedLocalPinned
            Noted(OS::Local, &[ReleaseHeldToKernel], Note::FellBack), // Unclassifiable
            Noted(OS::HandoffPending, &[SendRequest], Note::HandoffRetried), // DecidedHandoff
            Noted(OS::Refusing, &[Refuse, ResetKernel], Note::Refused), // NoCandidate
            Noted(OS::Local, &[ReleaseHeldToKernel], Note::FellBack), // HoldLimitReached
            Invalid, // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Invalid, // Accept
            Invalid, // Reject
            Invalid, // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Local, &[ReleaseHeldToKernel], Note::FellBack), // Timeout
            Go(OS::Retrying, &[]), // Retransmit
            Go(OS::Retrying, &[]), // PeerDown
        ],
        // Refusing
        [
            Go(OS::Refusing, &[Drop]), // FromKernel
            Go(OS::Refusing, &[Drop]), // SynAckFromKernel
            Go(OS::Refusing, &[Drop]), // FinFromKernel
            Go(OS::Refusing, &[Drop]), // RstFromKernel
            Go(OS::Refusing, &[Drop]), // HandshakeAck
            Go(OS::Refusing, &[Drop]), // AckFromClient
            Go(OS::Refusing, &[Drop]), // DataFromClient
            Go(OS::Closed, &[Drop, AckClient]), // FinFromClient
            Go(OS::Closed, &[Drop]), // RstFromClient
            Go(OS::Closed, &[]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Go(OS::Refusing, &[SendCancel]), // Accept
            Go(OS::Refusing, &[]), // Reject
            Go(OS::Refusing, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Go(OS::Closed, &[ResetClient]), // Timeout
            Go(OS::Refusing, &[Refuse]), // Retransmit
            Go(OS::Refusing, &[]), // PeerDown
        ],
        // Forwarding
        [
            Go(OS::Forwarding, &[Drop]), // FromKernel
            Go(OS::Forwarding, &[Drop]), // SynAckFromKernel
            Go(OS::Forwarding, &[Drop]), // FinFromKernel
            Go(OS::Forwarding, &[Drop]), // RstFromKernel
            Go(OS::Forwarding, &[ForwardToTarget]), // HandshakeAck
            Go(OS::Forwarding, &[ForwardToTarget]), // AckFromClient
            Go(OS::Forwarding, &[ForwardToTarget]), // DataFromClient
            Go(OS::Forwarding, &[ForwardToTarget]), // FinFromClient
            Go(OS::Forwarding, &[ForwardToTarget]), // RstFromClient
            Go(OS::Closed, &[SendCancel]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Noted(OS::Quiescing(Owner::Peer), &[AskRelease], Note::MoveStarted), // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Invalid, // Accept
            Invalid, // Reject
            Go(OS::Closed, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Closed, &[], Note::Expired), // Timeout
            Go(OS::Forwarding, &[]), // Retransmit
            Noted(OS::Closed, &[ResetClient], Note::PeerDownReset), // PeerDown
        ],
        // Serving
        [
            Go(OS::Serving, &[PassToClient]), // FromKernel
            Go(OS::Serving, &[PassToClient]), // SynAckFromKernel
            Go(OS::Local, &[PassToClient]), // FinFromKernel
            Go(OS::Closed, &[PassToClient]), // RstFromKernel
            Go(OS::Serving, &[PassToKernel]), // HandshakeAck
            Go(OS::Serving, &[PassToKernel]), // AckFromClient
            Go(OS::Serving, &[PassToKernel]), // DataFromClient
            Go(OS::Local, &[PassToKernel]), // FinFromClient
            Go(OS::Closed, &[PassToKernel]), // RstFromClient
            Go(OS::Closed, &[]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Noted(OS::Quiescing(Owner::Kernel), &[AskRelease], Note::MoveStarted), // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Go(OS::Serving, &[SendCancel]), // Accept
            Go(OS::Serving, &[]), // Reject
            Go(OS::Serving, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Local, &[], Note::Expired), // Timeout
            Go(OS::Serving, &[]), // Retransmit
            Go(OS::Serving, &[]), // PeerDown
        ],
        // ServingReplayed
        [
            Go(OS::ServingReplayed, &[TranslateToClient]), // FromKernel
            Go(OS::ServingReplayed, &[TranslateToClient]), // SynAckFromKernel
            Go(OS::Closing, &[TranslateToClient]), // FinFromKernel
            Go(OS::Closing, &[TranslateToClient]), // RstFromKernel
            Go(OS::ServingReplayed, &[TranslateToKernel]), // HandshakeAck
            Go(OS::ServingReplayed, &[TranslateToKernel]), // AckFromClient
            Go(OS::ServingReplayed, &[TranslateToKernel]), // DataFromClient
            Go(OS::ServingReplayed, &[TranslateToKernel]), // FinFromClient
            Go(OS::Closing, &[TranslateToKernel]), // RstFromClient
            Go(OS::Closed, &[ResetKernel]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Noted(OS::Quiescing(Owner::Replayed), &[AskRelease], Note::MoveStarted), // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Go(OS::ServingReplayed, &[SendCancel]), // Accept
            Go(OS::ServingReplayed, &[]), // Reject
            Go(OS::ServingReplayed, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Closed, &[ResetKernel, ResetClient], Note::Expired), // Timeout
            Go(OS::ServingReplayed, &[]), // Retransmit
            Go(OS::ServingReplayed, &[]), // PeerDown
        ],
        // Quiescing(Owner::Kernel)
        [
            Go(OS::Quiescing(Owner::Kernel), &[PassToClient]), // FromKernel
            Go(OS::Quiescing(Owner::Kernel), &[PassToClient]), // SynAckFromKernel
            Go(OS::Local, &[PassToClient]), // FinFromKernel
            Go(OS::Closed, &[PassToClient]), // RstFromKernel
            Go(OS::Quiescing(Owner::Kernel), &[ToOwner]), // HandshakeAck
            Go(OS::Quiescing(Owner::Kernel), &[ToOwner]), // AckFromClient
            Go(OS::Quiescing(Owner::Kernel), &[HoldForMove, AckOwner]), // DataFromClient
            Go(OS::Quiescing(Owner::Kernel), &[Drop]), // FinFromClient
            Noted(OS::Closed, &[ToOwner], Note::ClientResetMidHandoff), // RstFromClient
            Go(OS::Closed, &[]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Go(OS::Moving, &[]), // Released
            Noted(OS::Serving, &[HeldToOwner], Note::MoveStayed), // ReleaseRefused
            Invalid, // DecidedHere
            Go(OS::Quiescing(Owner::Kernel), &[SendCancel]), // Accept
            Invalid, // Reject
            Invalid, // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Local, &[], Note::Expired), // Timeout
            Go(OS::Quiescing(Owner::Kernel), &[]), // Retransmit
            Go(OS::Quiescing(Owner::Kernel), &[]), // PeerDown
        ],
        // Quiescing(Owner::Replayed)
        [
            Go(OS::Quiescing(Owner::Replayed), &[TranslateToClient]), // FromKernel
            Go(OS::Quiescing(Owner::Replayed), &[TranslateToClient]), // SynAckFromKernel
            Go(OS::Closing, &[TranslateToClient]), // FinFromKernel
            Go(OS::Closing, &[TranslateToClient]), // RstFromKernel
            Go(OS::Quiescing(Owner::Replayed), &[ToOwner]), // HandshakeAck
            Go(OS::Quiescing(Owner::Replayed), &[ToOwner]), // AckFromClient
            Go(OS::Quiescing(Owner::Replayed), &[HoldForMove, AckOwner]), // DataFromClient
            Go(OS::Quiescing(Owner::Replayed), &[Drop]), // FinFromClient
            Noted(OS::Closing, &[ToOwner], Note::ClientResetMidHandoff), // RstFromClient
            Go(OS::Closed, &[ResetKernel]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Go(OS::Moving, &[]), // Released
            Noted(OS::ServingReplayed, &[HeldToOwner], Note::MoveStayed), // ReleaseRefused
            Invalid, // DecidedHere
            Go(OS::Quiescing(Owner::Replayed), &[SendCancel]), // Accept
            Invalid, // Reject
            Invalid, // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Closed, &[ResetKernel, ResetClient], Note::Expired), // Timeout
            Go(OS::Quiescing(Owner::Replayed), &[]), // Retransmit
            Go(OS::Quiescing(Owner::Replayed), &[]), // PeerDown
        ],
        // Quiescing(Owner::Peer)
        [
            Go(OS::Quiescing(Owner::Peer), &[Drop]), // FromKernel
            Go(OS::Quiescing(Owner::Peer), &[Drop]), // SynAckFromKernel
            Go(OS::Quiescing(Owner::Peer), &[Drop]), // FinFromKernel
            Go(OS::Quiescing(Owner::Peer), &[Drop]), // RstFromKernel
            Go(OS::Quiescing(Owner::Peer), &[ToOwner]), // HandshakeAck
            Go(OS::Quiescing(Owner::Peer), &[ToOwner]), // AckFromClient
            Go(OS::Quiescing(Owner::Peer), &[HoldForMove, AckOwner]), // DataFromClient
            Go(OS::Quiescing(Owner::Peer), &[Drop]), // FinFromClient
            Noted(OS::Closed, &[ToOwner], Note::ClientResetMidHandoff), // RstFromClient
            Go(OS::Closed, &[SendCancel]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Go(OS::Moving, &[]), // Released
            Noted(OS::Forwarding, &[HeldToOwner], Note::MoveStayed), // ReleaseRefused
            Invalid, // DecidedHere
            Invalid, // Accept
            Invalid, // Reject
            Go(OS::Closed, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Closed, &[SendCancel], Note::Expired), // Timeout
            Go(OS::Quiescing(Owner::Peer), &[]), // Retransmit
            Noted(OS::Closed, &[ResetClient], Note::PeerDownReset), // PeerDown
        ],
        // Moving
        [
            Go(OS::Moving, &[Drop]), // FromKernel
            Go(OS::Moving, &[Drop]), // SynAckFromKernel
            Go(OS::Moving, &[Drop]), // FinFromKernel
            Go(OS::Moving, &[Drop]), // RstFromKernel
            Go(OS::Moving, &[Queue]), // HandshakeAck
            Go(OS::Moving, &[Queue]), // AckFromClient
            Go(OS::Moving, &[HoldForMove]), // DataFromClient
            Go(OS::Moving, &[Queue]), // FinFromClient
            Noted(OS::Closed, &[Drop], Note::ClientResetMidHandoff), // RstFromClient
            Go(OS::Moving, &[Queue]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Go(OS::MovePending, &[SendRequest]), // DecidedHandoff
            Noted(OS::Refusing, &[Refuse], Note::MoveRefused), // NoCandidate
            Noted(OS::Refusing, &[Refuse], Note::MoveRefused), // HoldLimitReached
            Invalid, // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Go(OS::Replaying, &[ReplaySyn]), // DecidedHere
            Go(OS::Moving, &[SendCancel]), // Accept
            Go(OS::Moving, &[]), // Reject
            Go(OS::Moving, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Noted(OS::Refusing, &[Refuse], Note::MoveRefused), // Timeout
            Go(OS::Moving, &[]), // Retransmit
            Go(OS::Moving, &[]), // PeerDown
        ],
        // MovePending
        [
            Go(OS::MovePending, &[Drop]), // FromKernel
            Go(OS::MovePending, &[Drop]), // SynAckFromKernel
            Go(OS::MovePending, &[Drop]), // FinFromKernel
            Go(OS::MovePending, &[Drop]), // RstFromKernel
            Go(OS::MovePending, &[Queue]), // HandshakeAck
            Go(OS::MovePending, &[Queue]), // AckFromClient
            Go(OS::MovePending, &[HoldForMove]), // DataFromClient
            Go(OS::MovePending, &[Queue]), // FinFromClient
            Noted(OS::Closed, &[SendCancel, Drop], Note::ClientResetMidHandoff), // RstFromClient
            Go(OS::MovePending, &[Queue]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Noted(OS::Forwarding, &[ForwardQueued], Note::MoveCompleted), // Accept
            Noted(OS::Moving, &[ClearQueue], Note::HandoffRejected), // Reject
            Go(OS::Moving, &[ClearQueue]), // TargetClosed
            Noted(OS::Forwarding, &[ForwardQueued], Note::MoveCompleted), // TargetAnswered
            Noted(OS::Moving, &[SendCancel, ClearQueue], Note::HandoffTimedOut), // Timeout
            Go(OS::MovePending, &[]), // Retransmit
            Go(OS::Moving, &[ClearQueue]), // PeerDown
        ],
        // Replaying
        [
            Go(OS::Replaying, &[Drop]), // FromKernel
            Noted(OS::ServingReplayed, &[CompleteReplay, QueuedToKernel], Note::MoveCompleted), // SynAckFromKernel
            Go(OS::Replaying, &[Drop]), // FinFromKernel
            Go(OS::Moving, &[Drop, ClearQueue]), // RstFromKernel
            Go(OS::Replaying, &[Queue]), // HandshakeAck
            Go(OS::Replaying, &[Queue]), // AckFromClient
            Go(OS::Replaying, &[HoldForMove]), // DataFromClient
            Go(OS::Replaying, &[Queue]), // FinFromClient
            Noted(OS::Closed, &[ResetKernel, Drop], Note::ClientResetMidHandoff), // RstFromClient
            Go(OS::Closed, &[ResetKernel]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Go(OS::Replaying, &[SendCancel]), // Accept
            Go(OS::Replaying, &[]), // Reject
            Go(OS::Replaying, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Go(OS::Moving, &[ResetKernel, ClearQueue]), // Timeout
            Go(OS::Replaying, &[ReplaySyn]), // Retransmit
            Go(OS::Replaying, &[]), // PeerDown
        ],
        // Closing
        [
            Go(OS::Closing, &[TranslateToClient]), // FromKernel
            Go(OS::Closing, &[TranslateToClient]), // SynAckFromKernel
            Go(OS::Closing, &[TranslateToClient]), // FinFromKernel
            Go(OS::Closing, &[TranslateToClient]), // RstFromKernel
            Go(OS::Closing, &[TranslateToKernel]), // HandshakeAck
            Go(OS::Closing, &[TranslateToKernel]), // AckFromClient
            Go(OS::Closing, &[TranslateToKernel]), // DataFromClient
            Go(OS::Closing, &[TranslateToKernel]), // FinFromClient
            Go(OS::Closing, &[TranslateToKernel]), // RstFromClient
            Go(OS::Closed, &[ResetKernel]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Invalid, // Released
            Invalid, // ReleaseRefused
            Invalid, // DecidedHere
            Go(OS::Closing, &[SendCancel]), // Accept
            Go(OS::Closing, &[]), // Reject
            Go(OS::Closing, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Go(OS::Closed, &[]), // Timeout
            Go(OS::Closing, &[]), // Retransmit
            Go(OS::Closing, &[]), // PeerDown
        ],
        // Local
        [
            Go(OS::Local, &[PassToClient]), // FromKernel
            Go(OS::Local, &[PassToClient]), // SynAckFromKernel
            Go(OS::Local, &[PassToClient]), // FinFromKernel
            Go(OS::Local, &[PassToClient]), // RstFromKernel
            Go(OS::Local, &[PassToKernel]), // HandshakeAck
            Go(OS::Local, &[PassToKernel]), // AckFromClient
            Go(OS::Local, &[PassToKernel]), // DataFromClient
            Go(OS::Local, &[PassToKernel]), // FinFromClient
            Go(OS::Local, &[PassToKernel]), // RstFromClient
            Go(OS::Local, &[PassToKernel]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Go(OS::Local, &[]), // Released
            Go(OS::Local, &[]), // ReleaseRefused
            Invalid, // DecidedHere
            Go(OS::Local, &[SendCancel]), // Accept
            Go(OS::Local, &[]), // Reject
            Go(OS::Local, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Go(OS::Local, &[]), // Timeout
            Go(OS::Local, &[]), // Retransmit
            Go(OS::Local, &[]), // PeerDown
        ],
        // Closed
        [
            Go(OS::Closed, &[PassToClient]), // FromKernel
            Go(OS::Closed, &[PassToClient]), // SynAckFromKernel
            Go(OS::Closed, &[PassToClient]), // FinFromKernel
            Go(OS::Closed, &[PassToClient]), // RstFromKernel
            Go(OS::Closed, &[PassToKernel]), // HandshakeAck
            Go(OS::Closed, &[PassToKernel]), // AckFromClient
            Go(OS::Closed, &[PassToKernel]), // DataFromClient
            Go(OS::Closed, &[PassToKernel]), // FinFromClient
            Go(OS::Closed, &[PassToKernel]), // RstFromClient
            Go(OS::Closed, &[PassToKernel]), // NewSynFromClient
            Invalid, // DecidedLocal
            Invalid, // DecidedLocalPinned
            Invalid, // Unclassifiable
            Invalid, // DecidedHandoff
            Invalid, // NoCandidate
            Invalid, // HoldLimitReached
            Invalid, // RequestElsewhere
            Go(OS::Closed, &[]), // Released
            Go(OS::Closed, &[]), // ReleaseRefused
            Invalid, // DecidedHere
            Go(OS::Closed, &[SendCancel]), // Accept
            Go(OS::Closed, &[]), // Reject
            Go(OS::Closed, &[]), // TargetClosed
            Invalid, // TargetAnswered
            Go(OS::Closed, &[]), // Timeout
            Go(OS::Closed, &[]), // Retransmit
            Go(OS::Closed, &[]), // PeerDown
        ],
    ]
}

#[test]
fn origin_every_state_and_event() {
    let table = origin_table();
    let rows: Vec<&[Expect<OS, OA>]> = table.iter().map(|r| &r[..]).collect();
    check_table(&origin_states(), &origin_events(), &rows);
}

fn target_states() -> [TS; 9] {
    [
        TS::Replaying,
        TS::Established,
        TS::HalfClosed(Side::Client),
        TS::HalfClosed(Side::Kernel),
        TS::Closing,
        TS::Orphaned,
        TS::Releasing,
        TS::Released,
        TS::Closed,
    ]
}

fn target_events() -> [TE; 14] {
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
        TE::ReleaseAsked,
        TE::Ready,
        TE::CannotRelease,
    ]
}

#[rustfmt::skip]
fn target_table() -> [[Expect<TS, TA>; 14]; 9] {
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
            Noted(TS::Replaying, &[SendReleaseRefused], Note::ReleaseRefused), // ReleaseAsked
            Go(TS::Replaying, &[]), // Ready
            Go(TS::Replaying, &[]), // CannotRelease
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
            Go(TS::Releasing, &[]), // ReleaseAsked
            Go(TS::Established, &[]), // Ready
            Go(TS::Established, &[]), // CannotRelease
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
            Noted(HC_CLIENT, &[SendReleaseRefused], Note::ReleaseRefused), // ReleaseAsked
            Go(HC_CLIENT, &[]), // Ready
            Go(HC_CLIENT, &[]), // CannotRelease
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
            Noted(HC_KERNEL, &[SendReleaseRefused], Note::ReleaseRefused), // ReleaseAsked
            Go(HC_KERNEL, &[]), // Ready
            Go(HC_KERNEL, &[]), // CannotRelease
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
            Noted(TS::Closing, &[SendReleaseRefused], Note::ReleaseRefused), // ReleaseAsked
            Go(TS::Closing, &[]), // Ready
            Go(TS::Closing, &[]), // CannotRelease
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
            Noted(TS::Orphaned, &[SendReleaseRefused], Note::ReleaseRefused), // ReleaseAsked
            Go(TS::Orphaned, &[]), // Ready
            Go(TS::Orphaned, &[]), // CannotRelease
        ],
        // Releasing
        [
            Go(TS::Releasing, &[TranslateToClient]),                       // SynAckFromKernel
            Go(TS::Releasing, &[TranslateToClient]),                       // FromKernel
            Go(HC_KERNEL, &[TranslateToClient, SendReleaseRefused]),       // FinFromKernel
            Go(TS::Closing, &[TranslateToClient, SendReleaseRefused]),     // RstFromKernel
            Go(TS::Releasing, &[TranslateToKernel]),                       // FromClient
            Go(HC_CLIENT, &[TranslateToKernel, SendReleaseRefused]),       // FinFromClient
            Go(TS::Closing, &[TranslateToKernel, SendReleaseRefused]),     // RstFromClient
            Noted(TS::Closed, &[SendClosed], Note::Expired),               // Timeout
            Go(TS::Releasing, &[]),                                        // Retransmit
            Go(TS::Closed, &[ResetKernel]),                                // OriginClosed
            Go(TS::Orphaned, &[ProbeKernel]),                              // OriginGone
            Go(TS::Releasing, &[]),                                        // ReleaseAsked
            Noted(TS::Released, &[ResetKernel, SendReleased], Note::Released), // Ready
            Noted(TS::Established, &[SendReleaseRefused], Note::ReleaseRefused), // CannotRelease
        ],
        // Released
        [
            Go(TS::Released, &[Drop]),
            Go(TS::Released, &[Drop]),
            Go(TS::Released, &[Drop]),
            Go(TS::Released, &[Drop]),
            Go(TS::Released, &[Drop]),
            Go(TS::Released, &[Drop]),
            Go(TS::Released, &[Drop]),
            Go(TS::Closed, &[]),        // Timeout
            Go(TS::Released, &[]),      // Retransmit
            Go(TS::Closed, &[]),        // OriginClosed
            Go(TS::Closed, &[]),        // OriginGone
            Go(TS::Released, &[]),      // ReleaseAsked
            Go(TS::Released, &[]),      // Ready
            Go(TS::Released, &[]),      // CannotRelease
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
            Go(TS::Closed, &[]), // ReleaseAsked
            Go(TS::Closed, &[]), // Ready
            Go(TS::Closed, &[]), // CannotRelease
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
            OE::SynAckFromKernel,
            OE::FinFromKernel,
            OE::RstFromKernel,
            OE::HandshakeAck,
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
            TE::OriginGone,
            TE::ReleaseAsked,
            TE::Ready,
            TE::CannotRelease
        ]
    );
}

/// Gauges follow the states: pending handoffs, and handed-in connections
/// until they are over.
#[test]
fn gauges() {
    for state in origin_states() {
        let want = match state {
            OS::HandoffPending | OS::MovePending => Some(Gauge::HandoffsPending),
            OS::Forwarding | OS::Quiescing(Owner::Peer) => Some(Gauge::Forwarding),
            _ => None,
        };
        assert_eq!(state.gauge(), want, "{state:?}");
    }
    for state in target_states() {
        assert_eq!(
            state.gauge(),
            (!state.is_final() && state != TS::Released).then_some(Gauge::HandedIn)
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
            // Before the first decision is carried out, the kernel here has
            // the connection: it is reset exactly when another takes it,
            // or nobody does. Afterwards only a replayed copy is ever
            // reset here, when it leaves this node.
            let first = matches!(
                state,
                OS::Handshake | OS::Held | OS::Retrying | OS::HandoffPending
            );
            let replayed = matches!(
                state,
                OS::ServingReplayed | OS::Quiescing(Owner::Replayed) | OS::Replaying | OS::Closing
            );
            let reset_expected = if first {
                matches!(next, OS::Forwarding | OS::Refusing) && state != next
            } else {
                actions.contains(OA::ResetKernel)
            };
            assert_eq!(
                actions.contains(OA::ResetKernel),
                reset_expected,
                "{state:?} × {event:?}"
            );
            if !first && actions.contains(OA::ResetKernel) {
                assert!(
                    replayed && matches!(next, OS::Closed | OS::Moving),
                    "{state:?} × {event:?}"
                );
            }
            // Served here means the kernel gets what was held back.
            assert_eq!(
                actions.contains(OA::ReleaseHeldToKernel),
                matches!(next, OS::Local | OS::Serving) && (first || state == OS::Local),
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
                                | OA::Withhold
                                | OA::Hold
                                | OA::Queue
                                | OA::Drop
                                | OA::ForwardToTarget
                                | OA::ToOwner
                                | OA::HoldForMove
                                | OA::TranslateToKernel
                                | OA::TranslateToClient
                                | OA::CompleteReplay
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
            // those it is gone for; a released connection's end it heard of
            // as the release.
            let told = actions
                .iter()
                .any(|a| matches!(a, TA::SendClosed | TA::SendReject(_)));
            let origin_away =
                event == TE::OriginGone || matches!(state, TS::Orphaned | TS::Released);
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
    use OriginTimer as OT;
    let origin: Vec<_> = origin_states().iter().map(|s| s.timer()).collect();
    assert_eq!(
        origin,
        [
            Some(OT::Handshake), // Handshake
            Some(OT::Hold),      // Held
            Some(OT::Handoff),   // HandoffPending
            Some(OT::Hold),      // Retrying
            Some(OT::Refusal),   // Refusing
            Some(OT::Idle),      // Forwarding
            Some(OT::Idle),      // Serving
            Some(OT::Idle),      // ServingReplayed
            Some(OT::Idle),      // Quiescing(Kernel)
            Some(OT::Idle),      // Quiescing(Replayed)
            Some(OT::Idle),      // Quiescing(Peer)
            Some(OT::Hold),      // Moving
            Some(OT::Handoff),   // MovePending
            Some(OT::Replay),    // Replaying
            Some(OT::Linger),    // Closing
            None,                // Local
            None,                // Closed
        ]
    );
    for state in origin_states() {
        assert_eq!(state.timer().is_none(), state.is_final());
    }
    let restarts: Vec<_> = [
        OT::Handshake,
        OT::Hold,
        OT::Handoff,
        OT::Refusal,
        OT::Idle,
        OT::Replay,
        OT::Linger,
    ]
    .map(OriginTimer::restarts_with_traffic)
    .into();
    assert_eq!(restarts, [false, false, false, false, true, false, true]);

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
            Some(TargetTimer::Idle),   // Releasing
            Some(TargetTimer::Linger), // Released
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
fn the_machines_list_every_state_and_event_in_table_order() {
    assert_eq!(OS::STATES, origin_states());
    assert_eq!(OE::ALL, origin_events());
    assert_eq!(TS::STATES, target_states());
    assert_eq!(TE::ALL, target_events());
}

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
        (OE::DecidedLocal, OS::Serving, "A ReleaseHeldToKernel"),
        (OE::DecidedLocalPinned, OS::Local, "A ReleaseHeldToKernel"),
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
    assert_eq!((pair.origin, pair.target), (OS::Serving, Some(TS::Closed)));
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
    assert_eq!(pair.origin, OS::Serving);
    for state in [OS::Serving, OS::Local] {
        assert_eq!(
            state.on(OE::Accept).map(|t| t.actions.to_vec()),
            Ok(vec![OA::SendCancel])
        );
    }
}

#[test]
fn a_local_decision_never_involves_the_target() {
    let mut pair = Pair::new();
    pair.handshake_and_request(OE::DecidedLocal);
    assert_eq!(pair.origin, OS::Serving);
    pair.origin(OE::DataFromClient);
    assert_eq!(pair.origin, OS::Serving);
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
