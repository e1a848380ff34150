//! The target side: a peer handed this node a live connection.

use std::time::Instant;

use baton_handoff::msg::{
    HandoffAccept, HandoffClosed, HandoffReject, HandoffRequest, Message, RejectReason,
};

use crate::counters::Counter;
use crate::packet::{
    EthernetFrame, MacAddr, TcpFlags, TcpSummary, Translation, Verdict as Translated,
};

use super::flow::{Flow, FlowKey, Role, TargetFlow, TargetState};
use super::frames::{self, syn_options, Segment, SEGMENT_PAYLOAD};
use super::{socket, view, Engine, Verdict};

/// Replays the client's SYN, with its original options, to the local
/// kernel, addressed to this node's own address.
pub(super) fn on_request(e: &mut Engine, peer: usize, req: HandoffRequest, now: Instant) {
    let wire_key = FlowKey {
        client: req.key.client,
        server: req.key.server,
    };
    let kernel_key = FlowKey {
        client: req.key.client,
        server: socket(e.cfg.own_addr, req.key.server.port()),
    };
    let managed = e
        .cfg
        .services
        .iter()
        .any(|(port, _)| *port == req.key.server.port());
    if !managed
        || e.flows.contains_key(&wire_key)
        || e.flows.contains_key(&kernel_key)
        || e.kernel_side.contains_key(&kernel_key)
    {
        // Not a service here, or the kernel already has this 4-tuple.
        e.send(
            peer,
            Message::HandoffReject(HandoffReject {
                id: req.id,
                reason: RejectReason::KernelRefused,
            }),
        );
        e.count(Counter::KernelRefused, 1);
        return;
    }
    let client_mac = MacAddr(req.client_mac);
    let syn = frames::build(&Segment {
        src_mac: client_mac,
        dst_mac: e.cfg.own_mac,
        src: kernel_key.client,
        dst: kernel_key.server,
        seq: req.isn_client,
        ack: 0,
        flags: TcpFlags::SYN,
        window: req.client_window,
        options: &req.client_syn_options,
        payload: &[],
    });
    e.out.to_host.push(syn);
    let flow = TargetFlow {
        state: TargetState::Replaying,
        origin: peer,
        id: req.id,
        kernel_key,
        client_mac,
        translation: None,
        client_next_seq: req
            .isn_client
            .wrapping_add(1)
            .wrapping_add(req.held.len() as u32),
        request: Some(Box::new(req)),
        fin_from_client: false,
        fin_from_kernel: false,
    };
    e.by_origin.insert((peer, flow.id), wire_key);
    e.kernel_side.insert(kernel_key, wire_key);
    e.flows.insert(
        wire_key,
        Flow {
            deadline: now + e.cfg.handoff_timeout,
            role: Role::Target(Box::new(flow)),
        },
    );
}

/// A packet from the local kernel on a handed-in connection.
pub(super) fn from_kernel(
    e: &mut Engine,
    wire_key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpSummary,
    now: Instant,
) -> Verdict {
    let own_mac = e.cfg.own_mac;
    let (linger, idle) = (e.cfg.linger, e.cfg.idle_timeout);
    let Some(Flow {
        deadline,
        role: Role::Target(t),
    }) = e.flows.get_mut(&wire_key)
    else {
        return Verdict::ToWire;
    };
    match t.state {
        TargetState::Replaying => {
            if tcp.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
                establish(e, wire_key, frame, now);
                return Verdict::Consumed;
            }
            if tcp.flags.contains(TcpFlags::RST) {
                let (origin, id) = (t.origin, t.id);
                e.count(Counter::KernelRefused, 1);
                e.remove(&wire_key);
                e.send(
                    origin,
                    Message::HandoffReject(HandoffReject {
                        id,
                        reason: RejectReason::KernelRefused,
                    }),
                );
            }
            Verdict::Drop
        }
        TargetState::Established | TargetState::Closing => {
            let Some(translation) = t.translation else {
                return Verdict::Drop;
            };
            if translation.target_to_client(frame) != Translated::Translated {
                e.count(Counter::DropUntranslatable, 1);
                return Verdict::Drop;
            }
            if let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) {
                eth.set_src_addr(own_mac);
                eth.set_dst_addr(t.client_mac);
            }
            t.fin_from_kernel |= tcp.flags.contains(TcpFlags::FIN);
            *deadline = next_deadline(t, tcp.flags, now, linger, idle);
            e.count(Counter::TranslatedPackets, 1);
            e.count(Counter::TranslatedBytes, frame.len() as u64);
            Verdict::ToWire
        }
    }
}

/// The kernel answered the replayed SYN. Work out the translation, finish
/// the handshake for the client, hand the kernel the held request, and
/// tell the origin.
fn establish(e: &mut Engine, wire_key: FlowKey, synack: &[u8], now: Instant) {
    let (own_addr, own_mac, idle) = (e.cfg.own_addr, e.cfg.own_mac, e.cfg.idle_timeout);
    let Some(seg) = view(synack) else {
        return;
    };
    let Some(Flow {
        deadline,
        role: Role::Target(t),
    }) = e.flows.get_mut(&wire_key)
    else {
        return;
    };
    let Some(req) = t.request.take() else {
        return;
    };
    let isn_target = seg.seq;
    let kernel = syn_options(seg.options);
    let client = syn_options(&req.client_syn_options);
    let origin = syn_options(&req.origin_synack_options);
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
        (Some(origin_ts), Some(kernel_ts)) => origin_ts.wrapping_sub(kernel_ts),
        _ => 0,
    };
    t.translation = Some(Translation {
        seq_delta: req.isn_origin.wrapping_sub(isn_target),
        ts_offset,
        client_visible_addr: *wire_key.server.ip(),
        target_kernel_addr: own_addr,
        wscale_kernel: shift(kernel.window_scale),
        wscale_origin: shift(origin.window_scale),
    });
    t.state = TargetState::Established;
    *deadline = now + idle;
    let options = match (req.client_tsval, kernel.tsval) {
        (Some(client_ts), Some(kernel_ts)) => frames::timestamps(client_ts, kernel_ts),
        _ => Vec::new(),
    };
    let segment = |seq: u32, flags: TcpFlags, payload: &[u8]| {
        frames::build(&Segment {
            src_mac: t.client_mac,
            dst_mac: own_mac,
            src: t.kernel_key.client,
            dst: t.kernel_key.server,
            seq,
            ack: isn_target.wrapping_add(1),
            flags,
            window: req.client_window,
            options: &options,
            payload,
        })
    };
    let first = req.isn_client.wrapping_add(1);
    let mut to_host = vec![segment(first, TcpFlags::ACK, &[])];
    for (i, chunk) in req.held.chunks(SEGMENT_PAYLOAD).enumerate() {
        let seq = first.wrapping_add((i * SEGMENT_PAYLOAD) as u32);
        to_host.push(segment(seq, TcpFlags::ACK | TcpFlags::PSH, chunk));
    }
    let (origin_peer, id) = (t.origin, t.id);
    e.out.to_host.extend(to_host);
    e.count(Counter::HandedIn, 1);
    tracing::debug!(
        "handoff {id:x}: took over {} -> {} from {}",
        wire_key.client,
        wire_key.server,
        e.cfg.peers[origin_peer].name
    );
    e.send(
        origin_peer,
        Message::HandoffAccept(HandoffAccept { id, isn_target }),
    );
}

/// A client packet (forwarded by the origin) on a handed-in connection.
pub(super) fn from_client(
    e: &mut Engine,
    wire_key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpSummary,
    now: Instant,
) -> Verdict {
    let (linger, idle) = (e.cfg.linger, e.cfg.idle_timeout);
    let Some(Flow {
        deadline,
        role: Role::Target(t),
    }) = e.flows.get_mut(&wire_key)
    else {
        return Verdict::ToHost;
    };
    let Some(translation) = t.translation else {
        e.count(Counter::DropBeforeEstablished, 1);
        return Verdict::Drop;
    };
    if let Some(seg) = view(frame) {
        let fin = u32::from(tcp.flags.contains(TcpFlags::FIN));
        let end = seg
            .seq
            .wrapping_add(seg.payload.len() as u32)
            .wrapping_add(fin);
        if (end.wrapping_sub(t.client_next_seq) as i32) > 0 {
            t.client_next_seq = end;
        }
    }
    if translation.client_to_target(frame) != Translated::Translated {
        e.count(Counter::DropUntranslatable, 1);
        return Verdict::Drop;
    }
    t.fin_from_client |= tcp.flags.contains(TcpFlags::FIN);
    *deadline = next_deadline(t, tcp.flags, now, linger, idle);
    e.count(Counter::TranslatedPackets, 1);
    e.count(Counter::TranslatedBytes, frame.len() as u64);
    Verdict::ToHost
}

/// Once both sides have sent FIN, or either RST, the flow lingers for late
/// retransmissions; until then it lives while it is used.
fn next_deadline(
    t: &mut TargetFlow,
    flags: TcpFlags,
    now: Instant,
    linger: std::time::Duration,
    idle: std::time::Duration,
) -> Instant {
    if flags.contains(TcpFlags::RST) || (t.fin_from_client && t.fin_from_kernel) {
        t.state = TargetState::Closing;
    }
    if t.state == TargetState::Closing {
        now + linger
    } else {
        now + idle
    }
}

/// The origin's client went away (or the origin gave up): the local kernel
/// is told with a RST, and the flow is forgotten.
pub(super) fn on_origin_closed(e: &mut Engine, peer: usize, closed: HandoffClosed) -> bool {
    let Some(&wire_key) = e.by_origin.get(&(peer, closed.id)) else {
        return false;
    };
    let own_mac = e.cfg.own_mac;
    if let Some(Flow {
        role: Role::Target(t),
        ..
    }) = e.remove(&wire_key)
    {
        let rst = frames::build(&Segment {
            src_mac: t.client_mac,
            dst_mac: own_mac,
            src: t.kernel_key.client,
            dst: t.kernel_key.server,
            seq: t.client_next_seq,
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: &[],
            payload: &[],
        });
        e.out.to_host.push(rst);
    }
    true
}

pub(super) fn on_deadline(e: &mut Engine, wire_key: FlowKey, _now: Instant) {
    let Some(Flow {
        role: Role::Target(t),
        ..
    }) = e.flows.get(&wire_key)
    else {
        return;
    };
    let (state, origin, id) = (t.state, t.origin, t.id);
    match state {
        TargetState::Replaying => {
            // The kernel never answered the SYN.
            e.count(Counter::KernelRefused, 1);
            e.send(
                origin,
                Message::HandoffReject(HandoffReject {
                    id,
                    reason: RejectReason::Timeout,
                }),
            );
        }
        TargetState::Established => {
            e.count(Counter::FlowsExpired, 1);
            e.send(origin, Message::HandoffClosed(HandoffClosed { id }));
        }
        TargetState::Closing => e.send(origin, Message::HandoffClosed(HandoffClosed { id })),
    }
    e.remove(&wire_key);
}
