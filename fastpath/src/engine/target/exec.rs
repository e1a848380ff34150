//! What each target action does: the replay, the translation both ways,
//! and the messages to the origin.

use baton_handoff::msg::{HandoffAccept, HandoffClosed, HandoffReject, Message};
use baton_handoff::state::{Side, TargetAction, TargetState};

use crate::counters::Counter;
use crate::engine::api::Verdict;
use crate::engine::drive::{Carried, Input};
use crate::engine::flow::{FlowKey, Offsets, TargetFlow};
use crate::engine::frames::{self, Segment, SEGMENT_PAYLOAD};
use crate::engine::parts::Parts;
use crate::packet::tcp_options::SynOptions;
use crate::packet::{EthernetFrame, SeqNum, TcpFlags, TcpFrame, TsOffset, Verdict as Translated};

/// Carries out one action (see [`Carried`]). Packet actions come only
/// from packet events, which always bring their packet; an input of the
/// wrong kind leaves the packet alone.
pub(super) fn carry_out(
    t: &mut TargetFlow,
    parts: &mut Parts<'_>,
    wire_key: FlowKey,
    action: TargetAction,
    input: &mut Input<'_>,
) -> Carried {
    match action {
        TargetAction::InjectSyn => {
            inject_syn(t, parts, wire_key);
            Ok(None)
        }
        TargetAction::CompleteHandshake => match input {
            Input::Packet(synack, seg, _) => complete_handshake(t, parts, wire_key, synack, seg)
                .map(|()| Some(Verdict::Consumed))
                .ok_or(Verdict::Consumed),
            _ => Ok(None),
        },
        TargetAction::SendAccept => {
            // The kernel's ISN, from the SYN-ACK that completed the handshake.
            let isn_target = match input {
                Input::Packet(_, seg, _) => seg.seq,
                _ => SeqNum::default(),
            };
            parts.send(
                usize::from(t.setup.origin),
                Message::HandoffAccept(HandoffAccept {
                    id: t.setup.id,
                    isn_target,
                    client: wire_key.client(),
                }),
            );
            Ok(None)
        }
        TargetAction::SendReject(reason) => {
            parts.send(
                usize::from(t.setup.origin),
                Message::HandoffReject(HandoffReject {
                    id: t.setup.id,
                    client: wire_key.client(),
                    reason,
                }),
            );
            Ok(None)
        }
        TargetAction::Drop => {
            // Nothing from the client should come before the Accept; once
            // orphaned, nothing from it can be delivered.
            if let Input::Packet(_, _, Side::Client) = input {
                parts.count(
                    match t.state {
                        TargetState::Orphaned => Counter::DropOrphaned,
                        _ => Counter::DropBeforeEstablished,
                    },
                    1,
                );
            }
            Ok(Some(Verdict::Drop))
        }
        TargetAction::TranslateToClient => match input {
            Input::Packet(frame, seg, _) => translate_to_client(t, parts, &wire_key, frame, seg),
            _ => Ok(None),
        },
        TargetAction::TranslateToKernel => match input {
            Input::Packet(frame, seg, _) => translate_to_kernel(t, parts, &wire_key, frame, seg),
            _ => Ok(None),
        },
        TargetAction::ResetKernel => {
            reset_kernel(t, parts, wire_key);
            Ok(None)
        }
        TargetAction::ProbeKernel => {
            probe_kernel(t, parts, wire_key);
            Ok(None)
        }
        TargetAction::ResetBoth => match input {
            // The probe's answer is a bare ACK at the kernel's next
            // sequence number; a retransmission that crosses it carries
            // data from earlier in the stream, where a RST would not land.
            Input::Packet(_, answer, _) if answer.payload_len() > 0 => {
                parts.count(Counter::DropOrphaned, 1);
                Err(Verdict::Drop)
            }
            Input::Packet(_, answer, _) => {
                reset_both(t, parts, wire_key, answer);
                Ok(Some(Verdict::Consumed))
            }
            _ => Ok(None),
        },
        TargetAction::SendClosed => {
            parts.send(
                usize::from(t.setup.origin),
                Message::HandoffClosed(HandoffClosed {
                    id: t.setup.id,
                    client: wire_key.client(),
                }),
            );
            Ok(None)
        }
    }
}

/// The client's SYN, as the client sent it to the origin, but addressed to
/// this node's own address.
fn inject_syn(t: &mut TargetFlow, parts: &mut Parts<'_>, wire_key: FlowKey) {
    let Some(req) = &t.setup.request else {
        return;
    };
    t.setup.syns_sent = t.setup.syns_sent.saturating_add(1);
    let syn = frames::build(&Segment {
        src_mac: t.client_mac,
        dst_mac: parts.cfg.own_mac,
        src: wire_key.client(),
        dst: kernel_key(parts, &wire_key).server(),
        seq: req.isn_client,
        ack: SeqNum::default(),
        flags: TcpFlags::SYN,
        window: req.client_window,
        options: &req.client_syn_options,
        payload: &[],
    });
    parts.out.to_host.push(syn);
}

/// The kernel answered the replayed SYN. Works out the translation, and
/// finishes the handshake for the client with the held request.
fn complete_handshake(
    t: &mut TargetFlow,
    parts: &mut Parts<'_>,
    wire_key: FlowKey,
    synack: &[u8],
    seg: &TcpFrame,
) -> Option<()> {
    let req = t.setup.request.take()?;
    let own_mac = parts.cfg.own_mac;
    let kernel_side = kernel_key(parts, &wire_key);
    let isn_target = seg.seq;
    let kernel = SynOptions::parse(seg.options(synack));
    let client = SynOptions::parse(&req.client_syn_options);
    let origin = SynOptions::parse(&req.origin_synack_options);
    // Window scaling and timestamps are on only where the client's SYN and
    // the answering kernel's SYN-ACK both carried them.
    let shift = |synack: Option<u8>| {
        if client.window_scale.is_some() {
            synack.unwrap_or(0)
        } else {
            0
        }
    };
    let ts_offset = match (req.origin_tsval, kernel.tsval) {
        (Some(origin_ts), Some(kernel_ts)) => origin_ts - kernel_ts,
        _ => TsOffset::default(),
    };
    t.offsets = Some(Offsets::new(
        req.isn_origin - isn_target,
        ts_offset,
        shift(kernel.window_scale),
        shift(origin.window_scale),
    ));
    let options = match (req.client_tsval, kernel.tsval) {
        (Some(client_ts), Some(kernel_ts)) => frames::timestamps(client_ts, kernel_ts),
        _ => Vec::new(),
    };
    let segment = |seq: SeqNum, flags: TcpFlags, payload: &[u8]| {
        frames::build(&Segment {
            src_mac: t.client_mac,
            dst_mac: own_mac,
            src: wire_key.client(),
            dst: kernel_side.server(),
            seq,
            ack: isn_target + 1,
            flags,
            window: req.client_window,
            options: &options,
            payload,
        })
    };
    let first = req.isn_client + 1;
    parts.out.to_host.push(segment(first, TcpFlags::ACK, &[]));
    for (i, chunk) in req.held.chunks(SEGMENT_PAYLOAD).enumerate() {
        let seq = first.add_len(i * SEGMENT_PAYLOAD);
        parts
            .out
            .to_host
            .push(segment(seq, TcpFlags::ACK | TcpFlags::PSH, chunk));
    }
    tracing::debug!(
        "handoff {:x}: took over {} -> {} from {}",
        t.setup.id,
        wire_key.client(),
        wire_key.server(),
        parts.cfg.peers[usize::from(t.setup.origin)].name
    );
    Some(())
}

pub(in crate::engine) fn translate_to_client(
    t: &TargetFlow,
    parts: &Parts<'_>,
    wire_key: &FlowKey,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Carried {
    let Some(offsets) = t.offsets else {
        return Err(Verdict::Drop);
    };
    let translation = offsets.translation(wire_key, kernel_key(parts, wire_key).server_addr());
    if translation.target_to_client_parsed(frame, seg) != Translated::Translated {
        parts.count(Counter::DropUntranslatable, 1);
        return Err(Verdict::Drop);
    }
    if let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) {
        eth.set_src_addr(parts.cfg.own_mac);
        eth.set_dst_addr(t.client_mac);
    }
    parts.count(Counter::TranslatedPackets, 1);
    parts.count(Counter::TranslatedBytes, frame.len() as u64);
    Ok(Some(Verdict::ToWire))
}

pub(in crate::engine) fn translate_to_kernel(
    t: &mut TargetFlow,
    parts: &Parts<'_>,
    wire_key: &FlowKey,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Carried {
    let Some(offsets) = t.offsets else {
        return Err(Verdict::Drop);
    };
    let translation = offsets.translation(wire_key, kernel_key(parts, wire_key).server_addr());
    // Where a RST to the kernel must start.
    let fin = u32::from(seg.flags.contains(TcpFlags::FIN));
    let end = seg.seq.add_len(seg.payload_len()) + fin;
    if end.is_after(t.client_next_seq) {
        t.client_next_seq = end;
    }
    if translation.client_to_target_parsed(frame, seg) != Translated::Translated {
        parts.count(Counter::DropUntranslatable, 1);
        return Err(Verdict::Drop);
    }
    parts.count(Counter::TranslatedPackets, 1);
    parts.count(Counter::TranslatedBytes, frame.len() as u64);
    Ok(Some(Verdict::ToHost))
}

/// A RST into the kernel, as from the client, where the client's next
/// segment would start: the kernel drops its copy of the connection.
fn reset_kernel(t: &TargetFlow, parts: &mut Parts<'_>, wire_key: FlowKey) {
    let macs = (t.client_mac, parts.cfg.own_mac);
    let kernel_side = kernel_key(parts, &wire_key);
    parts.out.to_host.push(frames::rst(
        macs,
        wire_key.client(),
        kernel_side.server(),
        t.client_next_seq,
    ));
}

/// A segment from the client the kernel cannot take (its sequence number
/// half the number space away from what it expects): it answers with an
/// ACK that says exactly where it stands.
fn probe_kernel(t: &TargetFlow, parts: &mut Parts<'_>, wire_key: FlowKey) {
    let kernel_side = kernel_key(parts, &wire_key);
    parts.out.to_host.push(frames::build(&Segment {
        src_mac: t.client_mac,
        dst_mac: parts.cfg.own_mac,
        src: wire_key.client(),
        dst: kernel_side.server(),
        seq: t.client_next_seq + (1 << 31),
        ack: SeqNum::default(),
        flags: TcpFlags::ACK,
        window: 0,
        options: &[],
        payload: &[],
    }));
}

/// The kernel's answer to a probe names its next sequence number (which
/// the client expects next, once it has everything) and the client's next
/// (which the kernel expects): both ends are reset exactly there.
fn reset_both(t: &TargetFlow, parts: &mut Parts<'_>, wire_key: FlowKey, answer: &TcpFrame) {
    let kernel_side = kernel_key(parts, &wire_key);
    let to_client = t.offsets.map_or(answer.seq, |o| answer.seq + o.seq_delta);
    parts.out.to_wire.push(frames::rst(
        (parts.cfg.own_mac, t.client_mac),
        wire_key.server(),
        wire_key.client(),
        to_client,
    ));
    parts.out.to_host.push(frames::rst(
        (t.client_mac, parts.cfg.own_mac),
        wire_key.client(),
        kernel_side.server(),
        answer.ack,
    ));
}

/// The connection with `wire_key`, as the local kernel sees it.
#[inline]
fn kernel_key(parts: &Parts<'_>, wire_key: &FlowKey) -> FlowKey {
    wire_key.with_server_addr(parts.kernel_addrs.kernel_of(wire_key.server_addr()))
}
