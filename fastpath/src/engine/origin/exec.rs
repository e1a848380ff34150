//! What each origin action does.

use std::time::Instant;

use baton_handoff::msg::{FlowKey as MsgFlowKey, HandoffClosed, HandoffRequest, Message};
use baton_handoff::state::OriginAction;

use crate::counters::Counter;
use crate::engine::api::Verdict;
use crate::engine::drive::{Carried, Input};
use crate::engine::flow::{FlowKey, Handoff, OriginFlow};
use crate::engine::frames;
use crate::engine::parts::Parts;
use crate::packet::{EthernetFrame, MacAddr, TcpFlags, TcpFrame};

/// Client packets kept while a handoff is pending; more are dropped (the
/// client sends them again).
const MAX_QUEUED: usize = 64;

/// Carries out one action (see [`Carried`]). Packet actions come only
/// from packet events, which always bring their packet; an input of the
/// wrong kind leaves the packet alone.
pub(super) fn carry_out(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    key: FlowKey,
    action: OriginAction,
    input: &mut Input<'_>,
    now: Instant,
) -> Carried {
    match action {
        OriginAction::PassToKernel => Ok(Some(Verdict::ToHost)),
        OriginAction::PassToClient => {
            if let Input::Packet(frame, seg, _) = input {
                note_kernel_segment(o, frame, seg);
            }
            Ok(Some(Verdict::ToWire))
        }
        OriginAction::Hold => match input {
            Input::Packet(frame, seg, _) => {
                hold(o, parts, frame, seg).map(|()| Some(Verdict::Consumed))
            }
            _ => Ok(None),
        },
        OriginAction::Queue => match input {
            Input::Packet(frame, ..) if o.setup.queued.len() < MAX_QUEUED => {
                o.setup.queued.push(frame.to_vec());
                Ok(Some(Verdict::Consumed))
            }
            Input::Packet(..) => {
                parts.count(Counter::DropWhilePending, 1);
                Ok(Some(Verdict::Drop))
            }
            _ => Ok(None),
        },
        OriginAction::ReleaseHeldToKernel => {
            parts.out.to_host.append(&mut o.setup.held_frames);
            Ok(None)
        }
        OriginAction::Drop => {
            parts.count(Counter::DropStaleKernel, 1);
            Ok(Some(Verdict::Drop))
        }
        OriginAction::SendRequest => {
            if let Input::Chosen(handoff) = *input {
                send_request(o, parts, key, handoff, now);
            }
            Ok(None)
        }
        OriginAction::SendClosed => {
            if let Some(Handoff { peer, id }) = o.handoff {
                let id = id.get();
                parts.send(
                    usize::from(peer),
                    Message::HandoffClosed(HandoffClosed { id }),
                );
            }
            Ok(None)
        }
        OriginAction::ResetKernel => {
            reset_kernel(o, parts, key);
            Ok(None)
        }
        OriginAction::ForwardQueued => {
            let peer_mac = target_mac(o, parts);
            for mut frame in std::mem::take(&mut o.setup.queued) {
                redirect(&mut frame, peer_mac, parts.cfg.own_mac);
                parts.out.to_wire.push(frame);
                parts.count(Counter::ForwardedToPeer, 1);
            }
            Ok(None)
        }
        OriginAction::ForwardToTarget => match input {
            Input::Packet(frame, ..) => {
                redirect(frame, target_mac(o, parts), parts.cfg.own_mac);
                parts.count(Counter::ForwardedToPeer, 1);
                Ok(Some(Verdict::ToWire))
            }
            _ => Ok(None),
        },
        OriginAction::ResetClient => {
            reset_client(o, parts, key);
            Ok(None)
        }
    }
}

/// What a handoff request needs from the kernel's segments: its SYN-ACK's
/// ISN and options, and the latest timestamp the client has seen.
fn note_kernel_segment(o: &mut OriginFlow, frame: &[u8], seg: &TcpFrame) {
    if seg.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
        o.setup.isn_origin = Some(seg.seq);
        o.setup.origin_synack_options = seg.options(frame).to_vec();
    }
    if let Some(tsval) = seg.tsval(frame) {
        o.setup.origin_tsval = Some(tsval);
    }
}

/// Holds request bytes that continue the held ones. A retransmission or a
/// segment past a gap is dropped: the client sends it again.
fn hold(
    o: &mut OriginFlow,
    parts: &Parts<'_>,
    frame: &[u8],
    seg: &TcpFrame,
) -> Result<(), Verdict> {
    // Truncation intended: sequence arithmetic is mod 2^32, lengths included.
    #[allow(clippy::cast_possible_truncation)]
    let expected = o.setup.isn_client + 1 + o.setup.held.len() as u32;
    let offset = seg.seq.distance_from(expected);
    if offset < 0 {
        parts.count(Counter::DropHeldDuplicate, 1);
        return Err(Verdict::Drop);
    }
    if offset > 0 {
        parts.count(Counter::DropHeldOutOfOrder, 1);
        return Err(Verdict::Drop);
    }
    o.setup.held.extend_from_slice(seg.payload(frame));
    o.setup.held_frames.push(frame.to_vec());
    Ok(())
}

fn send_request(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    key: FlowKey,
    handoff: Handoff,
    now: Instant,
) {
    let id = handoff.id.get();
    let peer = usize::from(handoff.peer);
    let request = HandoffRequest {
        id,
        key: MsgFlowKey {
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
        held: o.setup.held.clone(),
    };
    o.handoff = Some(handoff);
    o.setup.requested_at = Some(now);
    parts.by_id.insert(id, key);
    tracing::debug!(
        "handoff {id:x}: {} -> {} to {} ({} request bytes)",
        key.client(),
        key.server(),
        parts.cfg.peers[peer].name,
        request.held.len()
    );
    parts.send(peer, Message::HandoffRequest(request));
}

/// A RST at exactly the sequence number the kernel expects, as from the
/// client, so that it forgets the connection. The held request is the
/// target's now.
fn reset_kernel(o: &mut OriginFlow, parts: &mut Parts<'_>, key: FlowKey) {
    o.setup.held = Vec::new();
    o.setup.held_frames = Vec::new();
    let macs = (o.setup.client_mac, parts.cfg.own_mac);
    let seq = o.setup.isn_client + 1;
    parts
        .out
        .to_host
        .push(frames::rst(macs, key.client(), key.server(), seq));
}

/// Tells the client its connection is gone, at the sequence number it
/// expects next, so it fails at once instead of hanging.
fn reset_client(o: &OriginFlow, parts: &mut Parts<'_>, key: FlowKey) {
    let macs = (parts.cfg.own_mac, o.setup.client_mac);
    parts
        .out
        .to_wire
        .push(frames::rst(macs, key.server(), key.client(), o.client_ack));
}

/// The MAC of the node serving the connection.
pub(in crate::engine) fn target_mac(o: &OriginFlow, parts: &Parts<'_>) -> MacAddr {
    o.handoff
        .and_then(|h| parts.cfg.peers.get(usize::from(h.peer)))
        .map_or(parts.cfg.own_mac, |p| p.mac)
}

/// Sends a client frame on to the target: only the MACs change.
pub(in crate::engine) fn redirect(frame: &mut [u8], peer_mac: MacAddr, own_mac: MacAddr) {
    if let Ok(mut eth) = EthernetFrame::new_checked(frame) {
        eth.set_dst_addr(peer_mac);
        eth.set_src_addr(own_mac);
    }
}
