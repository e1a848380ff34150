//! The target events that come without a packet: the origin's request,
//! its calling the handoff off, a move it asks for, and timers.

use std::time::Instant;

use baton_handoff::msg::{
    HandoffCancel, HandoffReject, HandoffRequest, Message, RejectReason, Release,
};
use baton_handoff::state::{TargetEvent, TargetState};

use crate::counters::Counter;
use crate::engine::drive::Input;
use crate::engine::flow::{peer_index, Flow, FlowKey, Role, TargetFlow, TargetSetup};
use crate::engine::owner::{Owned, Readiness};
use crate::engine::Engine;
use crate::packet::{MacAddr, SeqNum};

/// Takes a connection over: replays the client's SYN, with its original
/// options, to the local kernel, addressed to this node's own address.
pub(in crate::engine) fn on_request(
    e: &mut Engine,
    peer: usize,
    req: HandoffRequest,
    now: Instant,
) {
    let wire_key = FlowKey::new(
        *req.key.client.ip(),
        req.key.client.port(),
        *req.key.server.ip(),
        req.key.server.port(),
    );
    let kernel_key = wire_key.with_server_addr(e.kernel_addrs.kernel_of(wire_key.server_addr()));
    // A connection this node gave up for a move may come back: its
    // lingering copy has nothing the new one needs.
    if matches!(
        e.flows.get(&wire_key).map(|f| &f.role),
        Some(Role::Target(t)) if t.state == TargetState::Released
    ) {
        e.remove(&wire_key);
    }
    let managed = e
        .cfg
        .services
        .iter()
        .any(|(port, _)| *port == req.key.server.port());
    let refusal = if e.draining {
        // Its peers stop choosing it once they hear; until then, and for
        // a peer that has not heard yet, the origin decides again.
        Some((RejectReason::Draining, Counter::HandoffsRefusedDraining))
    } else if !managed || e.flows.contains_key(&wire_key) || e.kernel_key_taken(&kernel_key) {
        // Not a service here, or the kernel already has this 4-tuple.
        Some((RejectReason::KernelRefused, Counter::KernelRefused))
    } else if !e.make_room() {
        Some((RejectReason::Overloaded, Counter::HandoffsRefusedTableFull))
    } else {
        None
    };
    if let Some((reason, counter)) = refusal {
        e.send(
            peer,
            Message::HandoffReject(HandoffReject {
                id: req.id,
                client: req.key.client,
                reason,
            }),
        );
        e.count(counter, 1);
        return;
    }
    let origin = peer_index(peer);
    e.by_origin.insert((origin, req.id), wire_key);
    let held = req.held.len();
    let make = |state| {
        Role::Target(TargetFlow {
            state,
            client_mac: MacAddr(req.client_mac),
            offsets: None,
            watch: SeqNum::default(),
            setup: Box::new(TargetSetup {
                origin,
                id: req.id,
                client_next_seq: (req.isn_client + 1).add_len(held),
                request: Some(Box::new(req)),
                syns_sent: 0,
                exchange: None,
            }),
        })
    };
    e.open::<TargetFlow>(wire_key, make, Input::Nothing, now);
}

/// The origin abandoned the handoff (its client went away, or it moved
/// on): the local kernel is told with a RST, and the flow is forgotten.
pub(in crate::engine) fn on_cancel(
    e: &mut Engine,
    peer: usize,
    cancel: HandoffCancel,
    now: Instant,
) {
    let origin = peer_index(peer);
    let Some(&wire_key) = e.by_origin.get(&(origin, cancel.id)) else {
        e.count(Counter::DropUnknownHandoff, 1);
        return;
    };
    e.step::<TargetFlow>(wire_key, TargetEvent::OriginClosed, Input::Nothing, now);
}

/// The origin routes the connection's next request elsewhere: once every
/// response before it is whole and acknowledged, the connection goes.
pub(in crate::engine) fn on_release(e: &mut Engine, peer: usize, release: Release, now: Instant) {
    let origin = peer_index(peer);
    let Some(&wire_key) = e.by_origin.get(&(origin, release.id)) else {
        e.count(Counter::DropUnknownHandoff, 1);
        return;
    };
    if let Some(Flow {
        role: Role::Target(t),
        ..
    }) = e.flows.get_mut(&wire_key)
    {
        match (&mut t.setup.exchange, t.offsets) {
            (Some(owned), Some(offsets)) => {
                owned.ask_release(release.at, release.client_ack - offsets.seq_delta)
            }
            // Not HTTP, or not yet established: it cannot move.
            _ => {
                e.step::<TargetFlow>(wire_key, TargetEvent::CannotRelease, Input::Nothing, now);
                return;
            }
        }
    }
    e.step::<TargetFlow>(wire_key, TargetEvent::ReleaseAsked, Input::Nothing, now);
    check_release(e, wire_key, now);
}

/// A connection asked to move: goes once it can, stays if it never can.
pub(in crate::engine) fn check_release(e: &mut Engine, wire_key: FlowKey, now: Instant) {
    let readiness = match e.flows.get(&wire_key).map(|f| &f.role) {
        Some(Role::Target(t)) if t.state == TargetState::Releasing => {
            t.setup.exchange.as_ref().map(Owned::readiness)
        }
        _ => return,
    };
    let event = match readiness {
        Some(Readiness::Wait) => return,
        Some(Readiness::Ready { .. }) => TargetEvent::Ready,
        Some(Readiness::Never(why)) => {
            tracing::debug!("{:?}: stays here: {why}", wire_key);
            TargetEvent::CannotRelease
        }
        None => TargetEvent::CannotRelease,
    };
    e.step::<TargetFlow>(wire_key, event, Input::Nothing, now);
}

/// The flow's timer expired.
pub(in crate::engine) fn on_deadline(e: &mut Engine, wire_key: FlowKey, now: Instant) {
    e.expire::<TargetFlow>(wire_key, now);
}
