//! The policy's decision on a held request, as an origin event.

use std::time::Instant;

use baton_handoff::state::OriginEvent;

use crate::engine::drive::Input;
use crate::engine::flow::{Flow, FlowKey, Handoff, OriginFlow, PeerIndex, Role};
use crate::engine::{Engine, Load, Placement};

/// Request bytes were held: asks the placer where they go, once it can
/// tell or the hold limit is reached.
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
    let placement = e
        .placer
        .place(&o.setup.held, o.setup.kind, &e.peers_up, own);
    let (event, input) = match placement {
        Placement::NeedMore if !full => return,
        Placement::NeedMore => (OriginEvent::HoldLimitReached, Input::Nothing),
        Placement::Local => (OriginEvent::DecidedLocal, Input::Nothing),
        Placement::Invalid => (OriginEvent::Unclassifiable, Input::Nothing),
        // A handoff needs the kernel's ISN, and a node that can take it.
        Placement::Peer(peer) if knows_isn && e.peers_up.get(peer) == Some(&true) => {
            let id = e.next_id();
            // Cannot truncate: a peer index, below 65536 (see Engine::new).
            #[allow(clippy::cast_possible_truncation)]
            let peer = peer as PeerIndex;
            let handoff = Handoff { peer, id };
            (OriginEvent::DecidedHandoff, Input::Chosen(handoff))
        }
        Placement::Peer(_) => (OriginEvent::ChosenUnavailable, Input::Nothing),
    };
    e.step::<OriginFlow>(key, event, input, now);
}
