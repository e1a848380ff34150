//! What each origin action does.

use std::time::Instant;

use baton_handoff::msg::{FlowKey as MsgFlowKey, HandoffCancel, HandoffRequest, Message};
use baton_handoff::state::{OriginAction, OriginState, Side};

use super::owning;
use super::route::Dest;
use crate::counters::Counter;
use crate::engine::api::Verdict;
use crate::engine::drive::{Carried, Input};
use crate::engine::flow::{FlowKey, Handoff, OriginFlow};
use crate::engine::frames::{self, Segment};
use crate::engine::parts::Parts;
use crate::engine::ServiceKind;
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
                note_kernel_segment(o, frame, seg, now);
            }
            Ok(Some(Verdict::ToWire))
        }
        OriginAction::Withhold => {
            parts.count(Counter::HandshakesDeferred, 1);
            Ok(Some(Verdict::Drop))
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
        OriginAction::ClearQueue => {
            o.setup.queued.clear();
            Ok(None)
        }
        OriginAction::ReleaseHeldToKernel => {
            release_held_to_kernel(o, parts);
            Ok(None)
        }
        OriginAction::Drop => {
            let counter = match input {
                Input::Packet(_, _, Side::Client) if o.state == OriginState::Refusing => {
                    Counter::DropRefusing
                }
                Input::Packet(_, _, Side::Client) => Counter::DropWhilePending,
                _ => Counter::DropStaleKernel,
            };
            parts.count(counter, 1);
            Ok(Some(Verdict::Drop))
        }
        OriginAction::SendRequest => {
            if let Input::Chosen(handoff) = *input {
                send_request(o, parts, key, handoff, now);
            }
            Ok(None)
        }
        OriginAction::SendCancel => {
            if let Some(Handoff { peer, id }) = o.handoff() {
                let cancel = HandoffCancel {
                    id: id.get(),
                    client: key.client(),
                };
                parts.send(usize::from(peer), Message::HandoffCancel(cancel));
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
        OriginAction::Refuse => {
            refuse(o, parts, key);
            Ok(None)
        }
        OriginAction::AckClient => match input {
            Input::Packet(_, seg, _) => {
                ack_client_fin(o, parts, key, seg);
                Ok(None)
            }
            _ => Ok(None),
        },
        OriginAction::ResetClient => {
            reset_client(o, parts, key);
            Ok(None)
        }
        OriginAction::HoldForMove => match input {
            Input::Packet(frame, seg, _) => owning::hold_for_move(o, parts, key, frame, seg),
            _ => Ok(None),
        },
        OriginAction::AckOwner => {
            if let Input::Packet(frame, seg, _) = input {
                owning::ack_owner(o, parts, key, frame, seg);
            }
            Ok(None)
        }
        OriginAction::ToOwner => match input {
            Input::Packet(frame, seg, _) => owning::to_owner(o, parts, key, frame, seg),
            _ => Ok(None),
        },
        OriginAction::AskRelease => {
            owning::ask_release(o, parts, key);
            Ok(None)
        }
        OriginAction::HeldToOwner => {
            owning::held_to_owner(o, parts, key);
            Ok(None)
        }
        OriginAction::ReplaySyn => {
            owning::replay_syn(o, parts, key);
            Ok(None)
        }
        OriginAction::CompleteReplay => match input {
            Input::Packet(synack, seg, _) => owning::complete_replay(o, parts, synack, seg),
            _ => Ok(None),
        },
        OriginAction::TranslateToKernel => match input {
            Input::Packet(frame, seg, _) => owning::translate_to_kernel(o, parts, key, frame, seg),
            _ => Ok(None),
        },
        OriginAction::TranslateToClient => match input {
            Input::Packet(frame, seg, _) => {
                owning::translate_to_client(o, parts, key, frame, seg, now)
            }
            _ => Ok(None),
        },
        OriginAction::QueuedToKernel => {
            owning::queued_to_kernel(o, parts, key);
            Ok(None)
        }
    }
}

/// What a handoff request needs from the kernel's segments: its SYN-ACK's
/// ISN and options, and the latest timestamp the client has seen; for a
/// routed connection the kernel here serves, how far its responses went.
fn note_kernel_segment(o: &mut OriginFlow, frame: &[u8], seg: &TcpFrame, now: Instant) {
    if seg.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
        o.setup.isn_origin = Some(seg.seq);
        o.setup.origin_synack_options = seg.options(frame).to_vec();
    }
    let tsval = seg.tsval(frame);
    if let Some(tsval) = tsval {
        o.setup.origin_tsval = Some(tsval);
    }
    if let Some(owned) = o.setup.route.as_mut().and_then(|r| r.owned.as_mut()) {
        let fin = seg.flags.contains(TcpFlags::FIN);
        owned.kernel_segment(seg.seq, seg.payload(frame), fin, tsval, now);
        o.watch = owned.server_next();
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
    let expected = (o.setup.isn_client + 1).add_len(o.setup.held.len());
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
    o.setup.template = Some(frame.to_vec());
    Ok(())
}

/// Gives the local kernel the held bytes a decision to serve here covers:
/// the frames as the client sent them, or, when requests for other nodes
/// follow in them, segments cut at the first of those.
fn release_held_to_kernel(o: &mut OriginFlow, parts: &mut Parts<'_>) {
    let held = o.setup.held.len();
    let len = o
        .setup
        .route
        .as_ref()
        .map_or(held, |r| r.takeover_len(Dest::Here, held));
    o.setup.sent_len = len;
    if len == held {
        parts.out.to_host.append(&mut o.setup.held_frames);
        return;
    }
    o.setup.held_frames.clear();
    let from = o.setup.isn_client + 1;
    let frames = owning::client_frames(o, parts.cfg.own_mac, from, &o.setup.held[..len]);
    parts.out.to_host.extend(frames);
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
    let held = o.setup.held.len();
    let len = o
        .setup
        .route
        .as_ref()
        .map_or(held, |r| r.takeover_len(Dest::Peer(handoff.peer), held));
    o.setup.sent_len = len;
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
        held: o.setup.held[..len].to_vec(),
    };
    // A request that replaces one: that one failed, and its id is done.
    if let Some(failed) = o.set_handoff(Some(handoff)) {
        parts.by_id.remove(&failed.id.get());
        o.setup.tried.push(failed.peer);
    }
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
/// client, so that it forgets the connection: the first request's start,
/// or for a replayed connection the client's next byte.
fn reset_kernel(o: &mut OriginFlow, parts: &mut Parts<'_>, key: FlowKey) {
    o.setup.held_frames = Vec::new();
    let macs = (o.setup.client_mac, parts.cfg.own_mac);
    let seq = match &o.setup.replay {
        Some(replay) => replay.client_next,
        None => o.setup.isn_client + 1,
    };
    parts
        .out
        .to_host
        .push(frames::rst(macs, key.client(), key.server(), seq));
}

/// What an HTTP client is told when no node can serve its request: a
/// complete, retryable answer, after which the connection closes.
const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Retry-After: 1\r\n\
Content-Type: text/plain\r\n\
Content-Length: 37\r\n\
Connection: close\r\n\
\r\n\
No server can take this request now.\n";

/// The window Baton announces while it refuses: it takes no more data.
const REFUSAL_WINDOW: u16 = 1024;

/// Answers the client as the node it connected to (the kernel here was
/// reset and never saw the request): for HTTP the 503 and a FIN, right
/// after the kernel's SYN-ACK in sequence, acknowledging the request; for
/// TLS, which cannot be answered without the server's keys, a RST.
fn refuse(o: &mut OriginFlow, parts: &mut Parts<'_>, key: FlowKey) {
    let first = o.setup.refusals_sent == 0;
    o.setup.refusals_sent = o.setup.refusals_sent.saturating_add(1);
    // Only what may have been lost goes again: a reset is never
    // acknowledged (one is enough, and the final timeout sends another),
    // and a 503 whose FIN the client acknowledged arrived whole.
    let delivered = o
        .setup
        .isn_origin
        .is_some_and(|isn| !(isn + 2).add_len(UNAVAILABLE.len()).is_after(o.client_ack));
    if !first && (o.setup.kind == ServiceKind::Tls || delivered) {
        return;
    }
    let macs = (parts.cfg.own_mac, o.setup.client_mac);
    let Some(isn_origin) = o.setup.isn_origin else {
        // Without the kernel's ISN there is no sequence to answer in.
        parts
            .out
            .to_wire
            .push(frames::rst(macs, key.server(), key.client(), o.client_ack));
        return;
    };
    if o.setup.kind == ServiceKind::Tls {
        parts.out.to_wire.push(frames::rst(
            macs,
            key.server(),
            key.client(),
            isn_origin + 1,
        ));
        return;
    }
    let options = answer_timestamps(o);
    parts.out.to_wire.push(frames::build(&Segment {
        src_mac: macs.0,
        dst_mac: macs.1,
        src: key.server(),
        dst: key.client(),
        seq: isn_origin + 1,
        ack: (o.setup.isn_client + 1).add_len(o.setup.held.len()),
        flags: TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN,
        window: REFUSAL_WINDOW,
        options: &options,
        payload: UNAVAILABLE,
    }));
}

/// Acknowledges the client's FIN after a refusal (the refusal's own FIN
/// comes first in sequence), so the client's close completes.
fn ack_client_fin(o: &OriginFlow, parts: &mut Parts<'_>, key: FlowKey, fin: &TcpFrame) {
    let Some(isn_origin) = o.setup.isn_origin else {
        return;
    };
    let options = answer_timestamps(o);
    parts.out.to_wire.push(frames::build(&Segment {
        src_mac: parts.cfg.own_mac,
        dst_mac: o.setup.client_mac,
        src: key.server(),
        dst: key.client(),
        seq: (isn_origin + 2).add_len(UNAVAILABLE.len()),
        ack: fin.seq.add_len(fin.payload_len()) + 1,
        flags: TcpFlags::ACK,
        window: REFUSAL_WINDOW,
        options: &options,
        payload: &[],
    }));
}

/// The timestamps Baton's own answers carry when the client negotiated
/// them: the kernel's latest value, which the client has seen (so PAWS
/// keeps passing), and the client's latest, echoed.
fn answer_timestamps(o: &OriginFlow) -> Vec<u8> {
    match (o.setup.origin_tsval, o.setup.client_tsval) {
        (Some(ours), Some(theirs)) => frames::timestamps(ours, theirs),
        _ => Vec::new(),
    }
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

/// The MAC of the node serving the connection (broadcast while a peer's
/// is not learned yet: see [`crate::peer_mac`]).
pub(in crate::engine) fn target_mac(o: &OriginFlow, parts: &Parts<'_>) -> MacAddr {
    o.peer
        .and_then(|peer| parts.cfg.peers.get(usize::from(peer)))
        .map_or(parts.cfg.own_mac, |p| {
            p.mac.get().unwrap_or(crate::peer_mac::BROADCAST)
        })
}

/// Sends a client frame on to the target: only the MACs change.
pub(in crate::engine) fn redirect(frame: &mut [u8], peer_mac: MacAddr, own_mac: MacAddr) {
    if let Ok(mut eth) = EthernetFrame::new_checked(frame) {
        eth.set_dst_addr(peer_mac);
        eth.set_src_addr(own_mac);
    }
}
