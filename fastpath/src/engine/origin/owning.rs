//! What the origin does for a routed connection's owner: passes it the
//! client's packets, holds the bytes a move is for, asks it to let the
//! connection go, and, when that owner is this node's own kernel after a
//! move back, replays the connection into it and translates.

use baton_handoff::msg::{HandoffRequest, Message, Release};
use baton_handoff::state::{OriginState, Owner};

use super::exec::{redirect, target_mac};
use super::route::Replay;
use crate::counters::Counter;
use crate::engine::api::Verdict;
use crate::engine::drive::Carried;
use crate::engine::flow::{FlowKey, OriginFlow};
use crate::engine::frames;
use crate::engine::parts::Parts;
use crate::engine::replay::{self, Ends};
use crate::packet::{MacAddr, SeqNum, TcpFlags, TcpFrame};

/// Who has the connection, by the state it is in.
pub(super) fn owner(state: OriginState) -> Option<Owner> {
    match state {
        OriginState::Serving => Some(Owner::Kernel),
        OriginState::ServingReplayed | OriginState::Closing => Some(Owner::Replayed),
        OriginState::Forwarding => Some(Owner::Peer),
        OriginState::Quiescing(owner) => Some(owner),
        _ => None,
    }
}

/// A client frame for the owner: to the kernel as it is, translated into
/// the replayed connection's space, or on to the peer.
pub(super) fn to_owner(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    key: FlowKey,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Carried {
    match owner(o.state) {
        Some(Owner::Kernel) => Ok(Some(Verdict::ToHost)),
        Some(Owner::Replayed) => translate_to_kernel(o, parts, key, frame, seg),
        Some(Owner::Peer) => {
            redirect(frame, target_mac(o, parts), parts.cfg.own_mac);
            parts.count(Counter::ForwardedToPeer, 1);
            Ok(Some(Verdict::ToWire))
        }
        // Nobody has the connection: what came before the held request
        // was the old owner's, and is repeated to the new one if needed.
        None => {
            parts.count(Counter::DropWhilePending, 1);
            Ok(Some(Verdict::Drop))
        }
    }
}

/// Frames this node built for the owner (the part of a segment before a
/// move's request, held bytes it gets after all).
pub(super) fn frames_to_owner(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    key: FlowKey,
    frames: Vec<Vec<u8>>,
) {
    for mut frame in frames {
        let Ok(Some(seg)) = TcpFrame::parse(&frame) else {
            continue;
        };
        match to_owner(o, parts, key, &mut frame, &seg) {
            Ok(Some(Verdict::ToHost)) => parts.out.to_host.push(frame),
            Ok(Some(Verdict::ToWire)) => parts.out.to_wire.push(frame),
            _ => {}
        }
    }
}

/// Client segments carrying `bytes` from `seq`, like the latest held frame.
pub(super) fn client_frames(
    o: &OriginFlow,
    dst_mac: MacAddr,
    seq: SeqNum,
    bytes: &[u8],
) -> Vec<Vec<u8>> {
    let Some(like) = &o.setup.template else {
        return Vec::new();
    };
    let Ok(Some(tcp)) = TcpFrame::parse(like) else {
        return Vec::new();
    };
    frames::client_data(like, &tcp, dst_mac, seq, bytes)
}

/// Holds the bytes of a moving connection: those that continue the held
/// ones are kept (the request a move is for starts the held bytes); a
/// segment's part before them goes to the owner, who still serves the
/// requests before; a segment past a gap is dropped (the client sends the
/// missing bytes again).
pub(super) fn hold_for_move(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    key: FlowKey,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Carried {
    let base = o.setup.isn_client + 1;
    let expected = base.add_len(o.setup.held.len());
    let payload = seg.payload(frame);
    let end = seg.seq.add_len(payload.len());
    if !end.is_after(base) {
        return to_owner(o, parts, key, frame, seg);
    }
    if seg.seq.is_before(base) {
        let before = usize::try_from(base.distance_from(seg.seq)).unwrap_or(0);
        let part = frames::client_data(frame, seg, parts.cfg.own_mac, seg.seq, &payload[..before]);
        frames_to_owner(o, parts, key, part);
    }
    if seg.seq.is_after(expected) {
        parts.count(Counter::DropHeldOutOfOrder, 1);
        return Ok(Some(Verdict::Drop));
    }
    if end.is_after(expected) {
        let from = usize::try_from(expected.distance_from(seg.seq)).unwrap_or(0);
        if o.setup.held.len() + (payload.len() - from) > parts.cfg.hold_bytes.max(1) * 4 {
            // A client that keeps sending while nobody takes its requests:
            // it sends these again once the connection has moved.
            parts.count(Counter::DropHeldOutOfOrder, 1);
            return Ok(Some(Verdict::Drop));
        }
        o.setup.held.extend_from_slice(&payload[from..]);
    } else {
        parts.count(Counter::DropHeldDuplicate, 1);
    }
    o.setup.template = Some(frame.to_vec());
    o.setup.client_window = seg.window;
    if let Some(ts) = seg.tsval(frame) {
        o.setup.client_tsval = Some(ts);
    }
    Ok(Some(Verdict::Consumed))
}

/// The owner waits for the client to acknowledge its last response, and
/// that acknowledgement may come with the held request: the owner gets a
/// bare ACK with it, at the held request's start.
pub(super) fn ack_owner(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    key: FlowKey,
    frame: &[u8],
    seg: &TcpFrame,
) {
    if !seg.flags.contains(TcpFlags::ACK) {
        return;
    }
    let base = o.setup.isn_client + 1;
    let ack = frames::client_ack(frame, seg, parts.cfg.own_mac, base);
    frames_to_owner(o, parts, key, vec![ack]);
}

/// Asks the owner to let the connection go once every earlier response is
/// whole: a Release to a peer; the kernel here is watched (see `moves`).
pub(super) fn ask_release(o: &mut OriginFlow, parts: &mut Parts<'_>, key: FlowKey) {
    let at = o.setup.isn_client + 1;
    match owner(o.state) {
        Some(Owner::Peer) => {
            let Some(handoff) = o.handoff() else {
                return;
            };
            let release = Release {
                id: handoff.id.get(),
                client: key.client(),
                at,
                client_ack: o.client_ack,
            };
            parts.send(usize::from(handoff.peer), Message::Release(release));
        }
        Some(Owner::Kernel | Owner::Replayed) => {
            let delta = o
                .setup
                .replay
                .as_ref()
                .and_then(|r| r.offsets)
                .map(|off| off.seq_delta);
            let ack = match delta {
                Some(delta) => o.client_ack - delta,
                None => o.client_ack,
            };
            if let Some(owned) = o.setup.route.as_mut().and_then(|r| r.owned.as_mut()) {
                owned.ask_release(at, ack);
            }
        }
        None => {}
    }
}

/// The owner cannot let the connection go: it gets the held bytes after
/// all, and the connection is routed no more.
pub(super) fn held_to_owner(o: &mut OriginFlow, parts: &mut Parts<'_>, key: FlowKey) {
    let held = std::mem::take(&mut o.setup.held);
    let frames = client_frames(o, parts.cfg.own_mac, o.setup.isn_client + 1, &held);
    o.setup.isn_client = o.setup.isn_client.add_len(held.len());
    frames_to_owner(o, parts, key, frames);
    if let Some(route) = &mut o.setup.route {
        route.pin("its owner could not let it go");
    }
}

/// The takeover the held request is for, as a HandoffRequest would carry
/// it (a replay here replays the same).
pub(super) fn takeover(o: &OriginFlow, key: FlowKey, held: usize) -> HandoffRequest {
    HandoffRequest {
        id: 0,
        key: baton_handoff::msg::FlowKey {
            client: key.client(),
            server: key.server(),
        },
        client_mac: o.setup.client_mac.0,
        isn_client: o.setup.isn_client,
        isn_origin: o.setup.isn_origin.unwrap_or_default(),
        client_syn_options: o.setup.client_syn_options.clone(),
        origin_synack_options: o.setup.origin_synack_options.clone(),
        client_window: o.setup.client_window,
        client_tsval: o.setup.client_tsval,
        origin_tsval: o.setup.origin_tsval,
        held: o.setup.held[..held].to_vec(),
    }
}

/// Replays the connection into the kernel here, at its current sequence
/// numbers, addressed as the client addressed it (the kernel's copy of the
/// original connection is gone, so the 4-tuple is free).
pub(super) fn replay_syn(o: &mut OriginFlow, parts: &mut Parts<'_>, key: FlowKey) {
    if o.setup.replay.as_ref().is_none_or(|r| r.request.is_none()) {
        let held = o.setup.held.len();
        let len = o
            .setup
            .route
            .as_ref()
            .map_or(held, |r| r.takeover_len(super::route::Dest::Here, held));
        o.setup.sent_len = len;
        let request = takeover(o, key, len);
        o.setup.replay = Some(Box::new(Replay {
            request: Some(Box::new(request)),
            syns_sent: 0,
            offsets: None,
            ends: Ends {
                client: key.client(),
                client_mac: o.setup.client_mac,
                kernel: key.server(),
                own_mac: parts.cfg.own_mac,
            },
            client_next: o.setup.isn_client + 1,
        }));
    }
    let Some(replay) = &mut o.setup.replay else {
        return;
    };
    let Some(request) = &replay.request else {
        return;
    };
    replay.syns_sent = replay.syns_sent.saturating_add(1);
    if replay.syns_sent > 1 {
        parts.count(Counter::ReplaysRetransmitted, 1);
    }
    parts.out.to_host.push(replay::syn(request, replay.ends));
}

/// The kernel answered the replay: the translation, the client's ACK and
/// the held request injected; the kernel here owns the connection again.
pub(super) fn complete_replay(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    synack: &[u8],
    seg: &TcpFrame,
) -> Carried {
    let Some(replay) = &mut o.setup.replay else {
        return Err(Verdict::Drop);
    };
    let Some(request) = replay.request.take() else {
        return Err(Verdict::Drop);
    };
    let (offsets, frames) = replay::complete(&request, synack, seg, replay.ends);
    replay.offsets = Some(offsets);
    replay.client_next = (request.isn_client + 1).add_len(request.held.len());
    parts.out.to_host.extend(frames);
    if let Some(route) = &mut o.setup.route {
        route.owned = Some(crate::engine::owner::Owned::new(seg.seq + 1, None));
    }
    Ok(Some(Verdict::Consumed))
}

/// A client packet of the connection replayed here, into its space.
pub(super) fn translate_to_kernel(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    key: FlowKey,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Carried {
    let Some(replay) = &mut o.setup.replay else {
        return Err(Verdict::Drop);
    };
    let Some(offsets) = replay.offsets else {
        return Err(Verdict::Drop);
    };
    let end = replay::segment_end(seg);
    if end.is_after(replay.client_next) {
        replay.client_next = end;
    }
    if seg.flags.contains(TcpFlags::ACK) {
        if let Some(owned) = o.setup.route.as_mut().and_then(|r| r.owned.as_mut()) {
            owned.client_ack(seg.ack - offsets.seq_delta);
        }
    }
    replay::to_kernel(offsets, parts, &key, key.server_addr(), frame, seg)
}

/// A kernel packet of the connection replayed here, into the client's
/// space; its responses followed.
pub(super) fn translate_to_client(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    key: FlowKey,
    frame: &mut [u8],
    seg: &TcpFrame,
    now: std::time::Instant,
) -> Carried {
    let Some(offsets) = o.setup.replay.as_ref().and_then(|r| r.offsets) else {
        return Err(Verdict::Drop);
    };
    if let Some(owned) = o.setup.route.as_mut().and_then(|r| r.owned.as_mut()) {
        let fin = seg.flags.contains(TcpFlags::FIN);
        owned.kernel_segment(seg.seq, seg.payload(frame), fin, seg.tsval(frame), now);
    }
    let client_mac = o.setup.client_mac;
    replay::to_client(
        offsets,
        parts,
        &key,
        key.server_addr(),
        client_mac,
        frame,
        seg,
    )
}

/// The client packets queued while the replay was under way, into its
/// space, in order.
pub(super) fn queued_to_kernel(o: &mut OriginFlow, parts: &mut Parts<'_>, key: FlowKey) {
    for mut frame in std::mem::take(&mut o.setup.queued) {
        let Ok(Some(seg)) = TcpFrame::parse(&frame) else {
            continue;
        };
        if let Ok(Some(Verdict::ToHost)) = translate_to_kernel(o, parts, key, &mut frame, &seg) {
            parts.out.to_host.push(frame);
        }
    }
}
