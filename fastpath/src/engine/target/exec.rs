//! What each target action does: the replay, the translation both ways,
//! and the messages to the origin.

use std::time::Instant;

use baton_handoff::msg::{
    HandoffAccept, HandoffClosed, HandoffReject, Message, ReleaseRefused, Released,
};
use baton_handoff::state::{Side, TargetAction, TargetState};

use crate::counters::Counter;
use crate::engine::api::Verdict;
use crate::engine::drive::{Carried, Input};
use crate::engine::flow::{FlowKey, TargetFlow};
use crate::engine::frames::{self, Segment};
use crate::engine::owner::{Owned, Readiness};
use crate::engine::parts::Parts;
use crate::engine::replay::{self, Ends};
use crate::engine::ServiceKind;
use crate::packet::{SeqNum, TcpFlags, TcpFrame};

/// Carries out one action (see [`Carried`]). Packet actions come only
/// from packet events, which always bring their packet; an input of the
/// wrong kind leaves the packet alone.
pub(super) fn carry_out(
    t: &mut TargetFlow,
    parts: &mut Parts<'_>,
    wire_key: FlowKey,
    action: TargetAction,
    input: &mut Input<'_>,
    now: Instant,
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
            Input::Packet(frame, seg, _) => {
                follow_kernel(t, frame, seg, now);
                translate_to_client(t, parts, &wire_key, frame, seg)
            }
            _ => Ok(None),
        },
        TargetAction::TranslateToKernel => match input {
            Input::Packet(frame, seg, _) => {
                follow_client(t, parts, frame, seg)?;
                translate_to_kernel(t, parts, &wire_key, frame, seg)
            }
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
        TargetAction::SendReleased => {
            send_released(t, parts, wire_key, now);
            Ok(None)
        }
        TargetAction::SendReleaseRefused => {
            parts.send(
                usize::from(t.setup.origin),
                Message::ReleaseRefused(ReleaseRefused {
                    id: t.setup.id,
                    client: wire_key.client(),
                }),
            );
            Ok(None)
        }
    }
}

/// What a client segment tells an HTTP connection's owner: where the
/// client's next byte is, its requests, and its acknowledgement. A segment
/// whose request bytes start past a gap is dropped: the framing needs
/// them in order, and the client sends the missing ones again.
fn follow_client(
    t: &mut TargetFlow,
    parts: &Parts<'_>,
    frame: &[u8],
    seg: &TcpFrame,
) -> Result<(), crate::engine::api::Verdict> {
    let end = replay::segment_end(seg);
    if end.is_after(t.setup.client_next_seq) {
        t.setup.client_next_seq = end;
    }
    let (Some(owned), Some(offsets)) = (&mut t.setup.exchange, t.offsets) else {
        return Ok(());
    };
    if seg.payload_len() > 0 && owned.client_data(seg.seq, seg.payload(frame)).is_err() {
        parts.count(Counter::DropRequestGap, 1);
        return Err(Verdict::Drop);
    }
    if seg.flags.contains(TcpFlags::ACK) {
        owned.client_ack(seg.ack - offsets.seq_delta);
    }
    Ok(())
}

/// What a kernel segment tells an HTTP connection's owner: how far its
/// responses went. The fast path passes kernel segments that end before
/// [`TargetFlow::watch`] untouched.
fn follow_kernel(t: &mut TargetFlow, frame: &[u8], seg: &TcpFrame, now: Instant) {
    match &mut t.setup.exchange {
        Some(owned) => {
            let fin = seg.flags.contains(TcpFlags::FIN);
            owned.kernel_segment(seg.seq, seg.payload(frame), fin, seg.tsval(frame), now);
            t.watch = owned.server_next();
        }
        // Nothing to follow: the fast path may pass the next gigabyte.
        None => t.watch = replay::segment_end(seg) + (1 << 30),
    }
}

/// Tells the origin where the server's sequence stands, in the client's
/// space, so that the next owner continues it.
fn send_released(t: &TargetFlow, parts: &mut Parts<'_>, wire_key: FlowKey, now: Instant) {
    let (Some(owned), Some(offsets)) = (&t.setup.exchange, t.offsets) else {
        return;
    };
    let Readiness::Ready { server_next } = owned.readiness() else {
        return;
    };
    parts.send(
        usize::from(t.setup.origin),
        Message::Released(Released {
            id: t.setup.id,
            client: wire_key.client(),
            server_next: server_next + offsets.seq_delta,
            tsval: owned.tsval_bound(now).map(|ts| ts + offsets.ts_offset),
        }),
    );
}

/// Where this connection's replay goes.
fn ends(t: &TargetFlow, parts: &Parts<'_>, wire_key: &FlowKey) -> Ends {
    Ends {
        client: wire_key.client(),
        client_mac: t.client_mac,
        kernel: kernel_key(parts, wire_key).server(),
        own_mac: parts.cfg.own_mac,
    }
}

/// The client's SYN, as the client sent it to the origin, but addressed to
/// the kernel's side.
fn inject_syn(t: &mut TargetFlow, parts: &mut Parts<'_>, wire_key: FlowKey) {
    let Some(req) = &t.setup.request else {
        return;
    };
    t.setup.syns_sent = t.setup.syns_sent.saturating_add(1);
    let syn = replay::syn(req, ends(t, parts, &wire_key));
    parts.out.to_host.push(syn);
}

/// The kernel answered the replayed SYN. Works out the translation, and
/// finishes the handshake for the client with the held request; an HTTP
/// connection's owner starts following its requests and responses.
fn complete_handshake(
    t: &mut TargetFlow,
    parts: &mut Parts<'_>,
    wire_key: FlowKey,
    synack: &[u8],
    seg: &TcpFrame,
) -> Option<()> {
    let req = t.setup.request.take()?;
    let (offsets, frames) = replay::complete(&req, synack, seg, ends(t, parts, &wire_key));
    t.offsets = Some(offsets);
    parts.out.to_host.extend(frames);
    let http = parts
        .cfg
        .services
        .iter()
        .any(|&(port, kind)| port == wire_key.server().port() && kind == ServiceKind::Http);
    let server_at = seg.seq + 1;
    t.watch = server_at;
    if http {
        let first = req.isn_client + 1;
        let mut owned = Owned::new(server_at, Some(first));
        // The held request is the kernel's first; only a gap could make it
        // fail, and held bytes have none.
        let _ = owned.client_data(first, &req.held);
        t.setup.exchange = Some(owned);
    } else {
        t.watch = server_at + (1 << 30);
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

#[inline]
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
    // The kernel's address is the packet's source: no need to work it out.
    replay::to_client(
        offsets,
        parts,
        wire_key,
        seg.src_addr,
        t.client_mac,
        frame,
        seg,
    )
}

#[inline]
pub(in crate::engine) fn translate_to_kernel(
    t: &TargetFlow,
    parts: &Parts<'_>,
    wire_key: &FlowKey,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Carried {
    let Some(offsets) = t.offsets else {
        return Err(Verdict::Drop);
    };
    let kernel_addr = kernel_key(parts, wire_key).server_addr();
    replay::to_kernel(offsets, parts, wire_key, kernel_addr, frame, seg)
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
        t.setup.client_next_seq,
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
        seq: t.setup.client_next_seq + (1 << 31),
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
