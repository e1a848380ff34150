//! The origin events that come without a packet: the target's answers,
//! its channel going down, and timers.

use std::time::Instant;

use std::net::SocketAddrV4;

use baton_handoff::msg::{HandoffAccept, HandoffCancel, HandoffClosed, HandoffReject, Message};
use baton_handoff::state::{Machine, OriginAction, OriginEvent, OriginState};

use super::moves::settle;
use super::place::decide_again;
use crate::counters::Counter;
use crate::engine::drive::Input;
use crate::engine::flow::{peer_index, Flow, FlowKey, OriginFlow, Role};
use crate::engine::Engine;

/// The target took the connection: the local kernel forgets it, and client
/// packets go there.
pub(in crate::engine) fn on_accept(
    e: &mut Engine,
    peer: usize,
    accept: HandoffAccept,
    now: Instant,
) {
    let Some(key) = handoff_flow(e, peer, accept.id, OriginEvent::Accept, accept.client) else {
        return;
    };
    let requested_at = match e.flows.get(&key).map(|f| &f.role) {
        Some(Role::Origin(o)) => o.setup.requested_at,
        _ => None,
    };
    if e.step::<OriginFlow>(key, OriginEvent::Accept, Input::Nothing, now)
        .is_none()
    {
        return; // accepted twice: counted as an invalid transition
    }
    if let Some(asked) = requested_at {
        let took = now.saturating_duration_since(asked).as_micros();
        e.counters
            .handoff_latency
            .0
            .record(u64::try_from(took).unwrap_or(u64::MAX));
    }
    settle(e, key, now);
    tracing::debug!(
        "handoff {:x}: {} -> {} accepted by {} after {:?}",
        accept.id,
        key.client(),
        key.server(),
        e.cfg.peers[peer].name,
        requested_at
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or_default()
    );
}

pub(in crate::engine) fn on_reject(
    e: &mut Engine,
    peer: usize,
    reject: HandoffReject,
    now: Instant,
) {
    let client = std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0);
    let Some(key) = handoff_flow(e, peer, reject.id, OriginEvent::Reject, client) else {
        return;
    };
    if e.step::<OriginFlow>(key, OriginEvent::Reject, Input::Nothing, now)
        .is_some()
    {
        tracing::debug!(
            "handoff {:x}: rejected by {} ({:?}); deciding again",
            reject.id,
            e.cfg.peers[peer].name,
            reject.reason
        );
        decide_again(e, key, now);
    }
}

/// The origin flow of handoff `id` to `peer`. When there is none (this
/// node gave up on it, or never asked), counts it and answers `event` as
/// a forgotten flow does: a late Accept is undone at the target, which
/// finds the connection by its `client`.
fn handoff_flow(
    e: &mut Engine,
    peer: usize,
    id: u64,
    event: OriginEvent,
    client: SocketAddrV4,
) -> Option<FlowKey> {
    if let Some(key) = flow_of(e, peer, id) {
        return Some(key);
    }
    e.count(Counter::DropUnknownHandoff, 1);
    if let Ok(t) = OriginState::Closed.on(event) {
        if t.actions.contains(OriginAction::SendCancel) && !e.by_id.contains_key(&id) {
            e.send(peer, Message::HandoffCancel(HandoffCancel { id, client }));
        }
    }
    None
}

/// The origin flow whose handoff `id` went to `peer`.
pub(super) fn flow_of(e: &Engine, peer: usize, id: u64) -> Option<FlowKey> {
    let peer = peer_index(peer);
    let key = *e.by_id.get(&id)?;
    match e.flows.get(&key).map(|f| &f.role) {
        Some(Role::Origin(o))
            if o.handoff()
                .is_some_and(|h| h.peer == peer && h.id.get() == id) =>
        {
            Some(key)
        }
        _ => None,
    }
}

/// The target says a connection it served is over, or that it gave up
/// before accepting. Returns false when no origin flow matches.
pub(in crate::engine) fn on_closed(
    e: &mut Engine,
    peer: usize,
    closed: HandoffClosed,
    now: Instant,
) -> bool {
    let Some(key) = flow_of(e, peer, closed.id) else {
        return false;
    };
    let known = e
        .step::<OriginFlow>(key, OriginEvent::TargetClosed, Input::Nothing, now)
        .is_some();
    decide_again(e, key, now);
    known
}

/// Handoffs pending to `peer` fall back to local; connections handed to it
/// are reset toward their clients.
pub(in crate::engine) fn on_peer_down(e: &mut Engine, peer: usize, now: Instant) {
    let affected: Vec<FlowKey> = e
        .flows
        .iter()
        .filter_map(|(k, f)| match &f.role {
            Role::Origin(o) if o.peer.is_some_and(|p| usize::from(p) == peer) => Some(*k),
            _ => None,
        })
        .collect();
    for key in affected {
        // A target that answered the client before it went down has the
        // connection: it is not served a second time from elsewhere.
        if answered_by_target(e, &key) {
            e.step::<OriginFlow>(key, OriginEvent::TargetAnswered, Input::Nothing, now);
            settle(e, key, now);
        }
        e.step::<OriginFlow>(key, OriginEvent::PeerDown, Input::Nothing, now);
        decide_again(e, key, now);
    }
}

/// Whether the client of a pending handoff acknowledged data the kernel
/// here never sent (it sent none past its SYN-ACK): the target's, which
/// it sent on taking the connection, before its Accept arrived.
pub(super) fn answered_by_target(e: &Engine, key: &FlowKey) -> bool {
    match e.flows.get(key).map(|f| &f.role) {
        Some(Role::Origin(o))
            if matches!(
                o.state,
                OriginState::HandoffPending | OriginState::MovePending
            ) =>
        {
            o.setup
                .isn_origin
                .is_some_and(|isn| o.client_ack.is_after(isn + 1))
        }
        _ => false,
    }
}

/// The flow's timer expired.
pub(in crate::engine) fn on_deadline(e: &mut Engine, key: FlowKey, now: Instant) {
    if let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get(&key)
    {
        if let (OriginState::HandoffPending | OriginState::MovePending, Some(h)) =
            (o.state, o.handoff())
        {
            tracing::debug!(
                "handoff {:x}: no answer from {}; deciding again",
                h.id,
                e.cfg.peers[usize::from(h.peer)].name
            );
        }
    }
    e.expire::<OriginFlow>(key, now);
    settle(e, key, now);
    decide_again(e, key, now);
}
