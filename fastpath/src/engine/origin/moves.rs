//! A routed connection changing owner, as the origin drives it: the owner
//! letting go (a peer's answer, or this node's kernel watched), and the
//! new owner settling in: the bytes it takes over, then whatever came
//! since, for it or for the next move.

use std::time::Instant;

use baton_handoff::msg::{ReleaseRefused, Released};
use baton_handoff::state::{OriginEvent, OriginState, Owner};

use super::owning::{client_frames, frames_to_owner};
use super::place::decide_again;
use super::route::Dest;
use super::signals::flow_of;
use crate::counters::Counter;
use crate::engine::drive::Input;
use crate::engine::flow::{Flow, FlowKey, OriginFlow, Role};
use crate::engine::owner::Readiness;
use crate::engine::Engine;
use crate::packet::{SeqNum, TsVal};

/// The peer that has the connection let it go: every earlier response is
/// whole and acknowledged, and its kernel's copy is gone.
pub(in crate::engine) fn on_released(
    e: &mut Engine,
    peer: usize,
    released: Released,
    now: Instant,
) {
    let Some(key) = flow_of(e, peer, released.id) else {
        e.count(Counter::DropUnknownHandoff, 1);
        return;
    };
    let quiescing = matches!(
        e.flows.get(&key).map(|f| &f.role),
        Some(Role::Origin(o)) if o.state == OriginState::Quiescing(Owner::Peer)
    );
    if !quiescing {
        e.count(Counter::InvalidTransition, 1);
        return;
    }
    released_at(e, key, released.server_next, released.tsval, now);
}

/// The peer cannot let the connection go: the held request is its.
pub(in crate::engine) fn on_release_refused(
    e: &mut Engine,
    peer: usize,
    refused: ReleaseRefused,
    now: Instant,
) {
    let Some(key) = flow_of(e, peer, refused.id) else {
        e.count(Counter::DropUnknownHandoff, 1);
        return;
    };
    e.step::<OriginFlow>(key, OriginEvent::ReleaseRefused, Input::Nothing, now);
}

/// Nobody has the connection any more; the server's next byte is
/// `server_next` and its clock at most `tsval`, as the client sees them.
/// The held request is decided.
fn released_at(
    e: &mut Engine,
    key: FlowKey,
    server_next: SeqNum,
    tsval: Option<TsVal>,
    now: Instant,
) {
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    else {
        return;
    };
    // The takeover continues the server's sequence and clock where the
    // client last saw them.
    o.setup.isn_origin = Some(server_next - 1);
    if tsval.is_some() {
        o.setup.origin_tsval = tsval;
    }
    o.setup.tried.clear();
    o.setup.refusals_sent = 0;
    if let Some(route) = &mut o.setup.route {
        route.owned = None;
        route.tried_here = false;
    }
    if let Some(old) = o.set_handoff(None) {
        e.by_id.remove(&old.id.get());
    }
    e.step::<OriginFlow>(key, OriginEvent::Released, Input::Nothing, now);
    decide_again(e, key, now);
}

/// The kernel here has the connection and a move was asked: once every
/// response is whole and acknowledged, its copy is reset and the held
/// request decided; a connection that can never move keeps its request.
pub(in crate::engine) fn check_local_release(e: &mut Engine, key: FlowKey, now: Instant) {
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get(&key)
    else {
        return;
    };
    if !matches!(
        o.state,
        OriginState::Quiescing(Owner::Kernel | Owner::Replayed)
    ) {
        return;
    }
    let Some(owned) = o.setup.route.as_ref().and_then(|r| r.owned.as_ref()) else {
        return;
    };
    let offsets = o.setup.replay.as_ref().and_then(|r| r.offsets);
    match owned.readiness() {
        Readiness::Wait => {}
        Readiness::Never(why) => {
            tracing::debug!("{key:?}: stays here: {why}");
            e.step::<OriginFlow>(key, OriginEvent::ReleaseRefused, Input::Nothing, now);
        }
        Readiness::Ready { server_next } => {
            let tsval = owned.tsval_bound(now);
            let (server_next, tsval) = match offsets {
                Some(off) => (
                    server_next + off.seq_delta,
                    tsval.map(|ts| ts + off.ts_offset),
                ),
                None => (server_next, tsval),
            };
            reset_local_copy(e, key);
            released_at(e, key, server_next, tsval, now);
        }
    }
}

/// The kernel here forgets the connection: a RST at the held request's
/// start, where it expects the client's next byte.
fn reset_local_copy(e: &mut Engine, key: FlowKey) {
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    else {
        return;
    };
    let at = o.setup.isn_client + 1;
    let macs = (o.setup.client_mac, e.cfg.own_mac);
    o.setup.replay = None;
    e.out.to_host.push(crate::engine::frames::rst(
        macs,
        key.client(),
        key.server(),
        at,
    ));
    e.count(Counter::ConnectionsReleased, 1);
}

/// The connection has a new owner (its first, or after a move): the held
/// bytes the takeover carried are its; what came since goes to it too, up
/// to a request for another node, which starts the next move.
pub(in crate::engine) fn settle(e: &mut Engine, key: FlowKey, now: Instant) {
    let next_move = {
        let Some((flow, mut parts)) = e.flow_and_parts(&key) else {
            return;
        };
        let Flow {
            role: Role::Origin(o),
            ..
        } = flow
        else {
            return;
        };
        let dest = match o.state {
            OriginState::Serving | OriginState::ServingReplayed => Dest::Here,
            OriginState::Forwarding => match o.peer {
                Some(peer) => Dest::Peer(peer),
                None => return,
            },
            _ => return,
        };
        // What the takeover carried is the owner's now.
        let sent = o.setup.sent_len.min(o.setup.held.len());
        o.setup.held.drain(..sent);
        o.setup.isn_client = o.setup.isn_client.add_len(sent);
        o.setup.sent_len = 0;
        o.setup.held_frames.clear();
        if o.state == OriginState::Serving {
            if let (Some(route), Some(isn)) = (o.setup.route.as_mut(), o.setup.isn_origin) {
                if route.owned.is_none() {
                    route.owned = Some(crate::engine::owner::Owned::new(isn + 1, None));
                }
            }
        }
        let next_move = o.setup.route.as_mut().and_then(|r| r.deliver(dest));
        if let Some(route) = o.setup.route.as_mut() {
            if let Some(started) = route.move_started.take() {
                let micros = now.saturating_duration_since(started).as_micros();
                parts.count(
                    Counter::MoveMicros,
                    u64::try_from(micros).unwrap_or(u64::MAX),
                );
            }
            if next_move.is_some() {
                route.move_started = Some(now);
            }
        }
        // Bytes that came since, up to the next move's request, go on.
        let base = o.setup.isn_client + 1;
        let give = next_move.map_or(o.setup.held.len(), |at| {
            usize::try_from(at.distance_from(base))
                .unwrap_or(0)
                .min(o.setup.held.len())
        });
        if give > 0 {
            let bytes: Vec<u8> = o.setup.held.drain(..give).collect();
            let frames = client_frames(o, parts.cfg.own_mac, base, &bytes);
            o.setup.isn_client = o.setup.isn_client.add_len(give);
            frames_to_owner(o, &mut parts, key, frames);
        }
        o.watch = watch_of(o, o.setup.isn_client + 1);
        next_move
    };
    if next_move.is_some() {
        e.step::<OriginFlow>(key, OriginEvent::RequestElsewhere, Input::Nothing, now);
        check_local_release(e, key, now);
    }
}

/// Where the fast path stops passing a routed connection's packets
/// without a look: the kernel's next response byte while it serves here,
/// the client's next request byte while a peer does. A connection not
/// routed passes a gigabyte at a time past `client_at`, the client's
/// latest byte.
pub(super) fn watch_of(o: &OriginFlow, client_at: SeqNum) -> SeqNum {
    let far = OriginFlow::unrouted_watch;
    match (&o.setup.route, o.state) {
        (Some(route), OriginState::Forwarding) if route.pinned.is_none() => route.requests.next(),
        (Some(route), OriginState::Serving) => route
            .owned
            .as_ref()
            .map_or(far(o.watch), |owned| owned.server_next()),
        (_, OriginState::Forwarding) => far(client_at),
        _ => o.watch,
    }
}
