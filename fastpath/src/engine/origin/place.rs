//! The policy's decisions, as origin events: a connection's first request,
//! one taken again after a handoff failed, every later request of a routed
//! connection, and a moving connection's request.

use std::time::Instant;

use baton_handoff::state::OriginEvent;

use super::moves::settle;
use super::route::{Dest, Route};
use crate::engine::drive::Input;
use crate::engine::flow::{peer_index, Flow, FlowKey, Handoff, OriginFlow, OriginState, Role};
use crate::engine::{Engine, Load, Placement, ServiceKind};

/// Request bytes were held, or a handoff failed: asks the placer where the
/// request goes, once it can tell or the hold limit is reached.
///
/// The placer is told which peers can take it: those whose channel is up
/// and that this request did not fail with already; none when the kernel's
/// SYN-ACK, whose ISN a request needs, was not seen. So a request decided
/// again goes to the next node the policy picks, or here when this node is
/// a member of its pool, or nowhere.
pub(super) fn decide(e: &mut Engine, key: FlowKey, now: Instant) {
    let own = Load {
        active_connections: u32::try_from(e.flows.len()).unwrap_or(u32::MAX),
        ..Load::default()
    };
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get(&key)
    else {
        return;
    };
    let full =
        o.setup.held.len() >= e.cfg.hold_bytes || o.setup.held_frames.len() >= e.cfg.hold_segments;
    let knows_isn = o.setup.isn_origin.is_some();
    let retrying = o.state == OriginState::Retrying;
    // Retrying: the handoff still on record is the one that just failed.
    let failed = o.handoff().filter(|_| retrying).map(|h| h.peer);
    let can_take: Vec<bool> = e
        .peers_up
        .iter()
        .enumerate()
        .map(|(i, &up)| {
            let i = peer_index(i);
            up && knows_isn && !o.setup.tried.contains(&i) && failed != Some(i)
        })
        .collect();
    let http = o.setup.kind == ServiceKind::Http;
    let placement = e.placer.place(&o.setup.held, o.setup.kind, &can_take, own);
    let (event, input) = match placement {
        Placement::NeedMore if !full && !retrying => return,
        Placement::NeedMore => (OriginEvent::HoldLimitReached, Input::Nothing),
        // An HTTP connection's later requests are routed one by one; a TLS
        // one is routed by its SNI, once.
        Placement::Local if http => {
            plan_requests(e, key, Dest::Here);
            (OriginEvent::DecidedLocal, Input::Nothing)
        }
        Placement::Local => (OriginEvent::DecidedLocalPinned, Input::Nothing),
        Placement::Invalid => (OriginEvent::Unclassifiable, Input::Nothing),
        Placement::Unavailable => (OriginEvent::NoCandidate, Input::Nothing),
        Placement::Peer(peer) if can_take.get(peer) == Some(&true) => {
            let id = e.next_id();
            let peer = peer_index(peer);
            if http {
                plan_requests(e, key, Dest::Peer(peer));
            }
            let handoff = Handoff { peer, id };
            (OriginEvent::DecidedHandoff, Input::Chosen(handoff))
        }
        // A placer that picks a peer it was told cannot take it: no node can.
        Placement::Peer(_) => (OriginEvent::NoCandidate, Input::Nothing),
    };
    e.step::<OriginFlow>(key, event, input, now);
    settle(e, key, now);
}

/// The requests in the held bytes, planned: the first goes where the
/// decision just sent it (`first`); any pipelined after it are decided
/// each on its own, so that the takeover carries only what is for the
/// same node.
fn plan_requests(e: &mut Engine, key: FlowKey, first: Dest) {
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    else {
        return;
    };
    let mut route = o
        .setup
        .route
        .take()
        .unwrap_or_else(|| Box::new(Route::new(o.setup.isn_client + 1)));
    if route.plan.is_empty() {
        let held = std::mem::take(&mut o.setup.held);
        let at = o.setup.isn_client + 1;
        let mut decided = 0;
        // Held bytes continue one another: no gap.
        let _ = route.read(at, &held, |head| {
            decided += 1;
            if decided == 1 {
                first
            } else {
                place_request(e, head, first)
            }
        });
        if let Some(Flow {
            role: Role::Origin(o),
            ..
        }) = e.flows.get_mut(&key)
        {
            o.setup.held = held;
        }
    } else if let Some(front) = route.plan.front_mut() {
        // Decided again, after a failed handoff.
        front.dest = first;
    }
    if let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    {
        o.setup.route = Some(route);
    }
}

/// Where a later request on a routed connection goes, by its head. A
/// request the policy cannot place (it always can, given a whole head)
/// stays with the connection's `owner`.
pub(super) fn place_request(e: &mut Engine, head: &[u8], owner: Dest) -> Dest {
    let own = Load {
        active_connections: u32::try_from(e.flows.len()).unwrap_or(u32::MAX),
        ..Load::default()
    };
    let can_take = e.peers_up.clone();
    match e.placer.place(head, ServiceKind::Http, &can_take, own) {
        Placement::Local => Dest::Here,
        Placement::Peer(peer) if can_take.get(peer) == Some(&true) => Dest::Peer(peer_index(peer)),
        Placement::Unavailable | Placement::Peer(_) => Dest::Nowhere,
        Placement::NeedMore | Placement::Invalid => owner,
    }
}

/// A moving connection's request, decided: a peer that can take it and was
/// not tried for this move, this node unless its kernel refused the
/// replay already, or nobody.
pub(super) fn decide_move(e: &mut Engine, key: FlowKey, now: Instant) {
    let own = Load {
        active_connections: u32::try_from(e.flows.len()).unwrap_or(u32::MAX),
        ..Load::default()
    };
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    else {
        return;
    };
    if o.state != OriginState::Moving {
        return;
    }
    // A replay here that brought the connection back to Moving failed.
    if o.setup.replay.take().is_some() {
        if let Some(route) = &mut o.setup.route {
            route.tried_here = true;
        }
    }
    let tried_here = o.setup.route.as_ref().is_some_and(|r| r.tried_here);
    let can_take: Vec<bool> = e
        .peers_up
        .iter()
        .enumerate()
        .map(|(i, &up)| up && !o.setup.tried.contains(&peer_index(i)))
        .collect();
    let placement = e
        .placer
        .place(&o.setup.held, ServiceKind::Http, &can_take, own);
    let (event, input, dest) = match placement {
        Placement::Local if !tried_here => (OriginEvent::DecidedHere, Input::Nothing, Dest::Here),
        Placement::Peer(peer) if can_take.get(peer) == Some(&true) => {
            let peer = peer_index(peer);
            let handoff = Handoff {
                peer,
                id: e.next_id(),
            };
            (
                OriginEvent::DecidedHandoff,
                Input::Chosen(handoff),
                Dest::Peer(peer),
            )
        }
        _ => (OriginEvent::NoCandidate, Input::Nothing, Dest::Nowhere),
    };
    if let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    {
        if let Some(front) = o.setup.route.as_mut().and_then(|r| r.plan.front_mut()) {
            front.dest = dest;
        }
    }
    e.step::<OriginFlow>(key, event, input, now);
}

/// After a target's answer (or its absence): a failed handoff, or a
/// failed move's takeover, is decided again at once.
pub(super) fn decide_again(e: &mut Engine, key: FlowKey, now: Instant) {
    match e.flows.get(&key).map(|f| &f.role) {
        Some(Role::Origin(o)) if o.state == OriginState::Retrying => decide(e, key, now),
        Some(Role::Origin(o)) if o.state == OriginState::Moving => decide_move(e, key, now),
        _ => {}
    }
}
