//! The policy's decision on a held request, as an origin event: the first
//! one, and one taken again after a handoff failed.

use std::time::Instant;

use baton_handoff::state::OriginEvent;

use crate::engine::drive::Input;
use crate::engine::flow::{peer_index, Flow, FlowKey, Handoff, OriginFlow, OriginState, Role};
use crate::engine::{Engine, Load, Placement};

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
    let failed = o.handoff.filter(|_| retrying).map(|h| h.peer);
    let can_take: Vec<bool> = e
        .peers_up
        .iter()
        .enumerate()
        .map(|(i, &up)| {
            let i = peer_index(i);
            up && knows_isn && !o.setup.tried.contains(&i) && failed != Some(i)
        })
        .collect();
    let placement = e.placer.place(&o.setup.held, o.setup.kind, &can_take, own);
    let (event, input) = match placement {
        Placement::NeedMore if !full && !retrying => return,
        Placement::NeedMore => (OriginEvent::HoldLimitReached, Input::Nothing),
        Placement::Local => (OriginEvent::DecidedLocal, Input::Nothing),
        Placement::Invalid => (OriginEvent::Unclassifiable, Input::Nothing),
        Placement::Unavailable => (OriginEvent::NoCandidate, Input::Nothing),
        Placement::Peer(peer) if can_take.get(peer) == Some(&true) => {
            let id = e.next_id();
            let peer = peer_index(peer);
            let handoff = Handoff { peer, id };
            (OriginEvent::DecidedHandoff, Input::Chosen(handoff))
        }
        // A placer that picks a peer it was told cannot take it: no node can.
        Placement::Peer(_) => (OriginEvent::NoCandidate, Input::Nothing),
    };
    e.step::<OriginFlow>(key, event, input, now);
}

/// After a target's answer (or its absence): a failed handoff is decided
/// again at once.
pub(super) fn decide_again(e: &mut Engine, key: FlowKey, now: Instant) {
    if matches!(
        e.flows.get(&key).map(|f| &f.role),
        Some(Role::Origin(o)) if o.state == OriginState::Retrying
    ) {
        decide(e, key, now);
    }
}
