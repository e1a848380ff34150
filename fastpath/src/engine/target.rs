//! The target side: a peer handed this node a live connection.
//!
//! The transitions are [`TargetState`]'s. This module turns frames, peer
//! messages and timer expiries into its events, carries out the actions it
//! returns, and counts what happened.

use std::time::{Duration, Instant};

use baton_handoff::msg::{
    HandoffAccept, HandoffClosed, HandoffReject, HandoffRequest, Message, RejectReason,
};
use baton_handoff::state::{TargetAction, TargetEvent, TargetState, TargetTimer};

use crate::counters::Counter;
use crate::packet::{
    EthernetFrame, MacAddr, SeqNum, TcpFlags, TcpFrame, TsOffset, Verdict as Translated,
};

use super::flow::{Flow, FlowKey, Offsets, PeerIndex, Role, TargetFlow, TargetSetup, Timer};
use super::frames::{self, syn_options, Segment, SEGMENT_PAYLOAD};
use super::{Engine, EngineConfig, Parts, Verdict};

/// What a transition acts on besides the flow.
enum Input<'a> {
    /// A packet from the local kernel, and its parse.
    Kernel(&'a mut [u8], &'a TcpFrame),
    /// A packet from the client, forwarded by the origin, and its parse.
    Client(&'a mut [u8], &'a TcpFrame),
    /// A message or a timer.
    Nothing,
}

fn timer_duration(cfg: &EngineConfig, timer: TargetTimer) -> Duration {
    match timer {
        TargetTimer::Replay => cfg.handoff_timeout,
        TargetTimer::Idle => cfg.idle_timeout,
        TargetTimer::Linger => cfg.linger,
    }
}

/// Takes a connection over: replays the client's SYN, with its original
/// options, to the local kernel, addressed to this node's own address.
pub(super) fn on_request(e: &mut Engine, peer: usize, req: HandoffRequest, now: Instant) {
    let wire_key = FlowKey::new(
        *req.key.client.ip(),
        req.key.client.port(),
        *req.key.server.ip(),
        req.key.server.port(),
    );
    let kernel_key = wire_key.with_server_addr(e.cfg.own_addr);
    let managed = e
        .cfg
        .services
        .iter()
        .any(|(port, _)| *port == req.key.server.port());
    if !managed || e.flows.contains_key(&wire_key) || e.kernel_key_taken(&kernel_key) {
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
    if !e.make_room() {
        e.send(
            peer,
            Message::HandoffReject(HandoffReject {
                id: req.id,
                reason: RejectReason::Overloaded,
            }),
        );
        e.count(Counter::HandoffsRefusedTableFull, 1);
        return;
    }
    let (state, actions) = TargetState::start();
    let origin = peer as PeerIndex;
    let flow = TargetFlow {
        state,
        client_mac: MacAddr(req.client_mac),
        offsets: None,
        client_next_seq: req.isn_client + 1 + req.held.len() as u32,
        setup: Box::new(TargetSetup {
            origin,
            id: req.id,
            request: Some(Box::new(req)),
        }),
    };
    e.by_origin.insert((origin, flow.setup.id), wire_key);
    let timer = state
        .timer()
        .map_or(Duration::ZERO, |t| timer_duration(&e.cfg, t));
    let deadline = e.timers.deadline(now, timer);
    e.insert(wire_key, deadline, Role::Target(flow));
    if let Some((
        Flow {
            role: Role::Target(t),
            ..
        },
        mut parts,
    )) = e.flow_and_parts(&wire_key)
    {
        for action in actions {
            let _ = carry_out(t, &mut parts, wire_key, action, &mut Input::Nothing);
        }
    }
}

/// The event a kernel segment is.
fn kernel_event(flags: TcpFlags) -> TargetEvent {
    if flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
        TargetEvent::SynAckFromKernel
    } else if flags.contains(TcpFlags::RST) {
        TargetEvent::RstFromKernel
    } else if flags.contains(TcpFlags::FIN) {
        TargetEvent::FinFromKernel
    } else {
        TargetEvent::FromKernel
    }
}

/// The event a client segment is.
fn client_event(flags: TcpFlags) -> TargetEvent {
    if flags.contains(TcpFlags::RST) {
        TargetEvent::RstFromClient
    } else if flags.contains(TcpFlags::FIN) {
        TargetEvent::FinFromClient
    } else {
        TargetEvent::FromClient
    }
}

/// A packet from the local kernel on a handed-in connection.
pub(super) fn from_kernel(
    e: &mut Engine,
    wire_key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    let event = kernel_event(tcp.flags);
    step(e, wire_key, event, Input::Kernel(frame, tcp), now).unwrap_or(Verdict::ToWire)
}

/// A client packet (forwarded by the origin) on a handed-in connection.
pub(super) fn from_client(
    e: &mut Engine,
    wire_key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    let event = client_event(tcp.flags);
    step(e, wire_key, event, Input::Client(frame, tcp), now).unwrap_or(Verdict::ToHost)
}

/// The origin's client went away (or the origin gave up): the local kernel
/// is told with a RST, and the flow is forgotten.
pub(super) fn on_origin_closed(
    e: &mut Engine,
    peer: usize,
    closed: HandoffClosed,
    now: Instant,
) -> bool {
    let Some(&wire_key) = e.by_origin.get(&(peer as PeerIndex, closed.id)) else {
        return false;
    };
    let _ = step(e, wire_key, TargetEvent::OriginClosed, Input::Nothing, now);
    true
}

pub(super) fn on_deadline(e: &mut Engine, wire_key: FlowKey, now: Instant) {
    let Some(Flow {
        role: Role::Target(t),
        ..
    }) = e.flows.get(&wire_key)
    else {
        return;
    };
    if matches!(
        t.state,
        TargetState::Established | TargetState::HalfClosed(_)
    ) {
        e.count(Counter::FlowsExpired, 1);
    }
    let _ = step(e, wire_key, TargetEvent::Timeout, Input::Nothing, now);
}

/// Feeds `event` to flow `wire_key`'s machine: the actions, in order, then
/// the new state and its timer, or the flow forgotten when it ends. When an
/// action cannot be carried out for this packet, the packet is dropped and
/// the flow keeps the state it had. Returns the packet's verdict, or None
/// when there is no such flow.
fn step(
    e: &mut Engine,
    wire_key: FlowKey,
    event: TargetEvent,
    mut input: Input<'_>,
    now: Instant,
) -> Option<Verdict> {
    let (
        Flow {
            deadline,
            armed,
            role: Role::Target(t),
        },
        mut parts,
    ) = e.flow_and_parts(&wire_key)?
    else {
        return None;
    };
    let timer_of_flow = Timer { deadline, armed };
    let (next, actions) = t.state.on(event);
    let mut verdict = Verdict::Consumed;
    for action in actions {
        match carry_out(t, &mut parts, wire_key, action, &mut input) {
            Ok(Some(fate)) => verdict = fate,
            Ok(None) => {}
            Err(fate) => return Some(fate),
        }
    }
    if let Some(timer) = next.timer() {
        let passed = matches!(verdict, Verdict::ToHost | Verdict::ToWire);
        let at = parts.timers.deadline(now, timer_duration(parts.cfg, timer));
        if next != t.state {
            timer_of_flow.set(&mut parts, wire_key, at);
        } else if passed && timer.restarts_with_traffic() {
            *timer_of_flow.deadline = at;
        }
    }
    t.state = next;
    if next.is_final() {
        e.remove(&wire_key);
    }
    Some(verdict)
}

/// Carries out one action. `Ok(Some(verdict))` says where the packet goes;
/// `Err(verdict)` means the packet cannot be taken as the transition
/// assumes.
fn carry_out(
    t: &mut TargetFlow,
    parts: &mut Parts<'_>,
    wire_key: FlowKey,
    action: TargetAction,
    input: &mut Input<'_>,
) -> Result<Option<Verdict>, Verdict> {
    // Packet actions come only from packet events, which always bring
    // their packet; an input of the wrong kind leaves the packet alone.
    match action {
        TargetAction::InjectSyn => {
            inject_syn(t, parts, wire_key);
            Ok(None)
        }
        TargetAction::CompleteHandshake => match input {
            Input::Kernel(synack, seg) => complete_handshake(t, parts, wire_key, synack, seg)
                .map(|()| Some(Verdict::Consumed))
                .ok_or(Verdict::Consumed),
            _ => Ok(None),
        },
        TargetAction::SendAccept => {
            // The kernel's ISN, from the SYN-ACK that completed the handshake.
            let isn_target = match input {
                Input::Kernel(_, seg) => seg.seq,
                _ => SeqNum::default(),
            };
            parts.send(
                usize::from(t.setup.origin),
                Message::HandoffAccept(HandoffAccept {
                    id: t.setup.id,
                    isn_target,
                }),
            );
            Ok(None)
        }
        TargetAction::SendReject(reason) => {
            parts.count(Counter::KernelRefused, 1);
            parts.send(
                usize::from(t.setup.origin),
                Message::HandoffReject(HandoffReject {
                    id: t.setup.id,
                    reason,
                }),
            );
            Ok(None)
        }
        TargetAction::Drop => {
            // Nothing from the client should come before the Accept.
            if let Input::Client(..) = input {
                parts.count(Counter::DropBeforeEstablished, 1);
            }
            Ok(Some(Verdict::Drop))
        }
        TargetAction::TranslateToClient => match input {
            Input::Kernel(frame, seg) => translate_to_client(t, parts, &wire_key, frame, seg),
            _ => Ok(None),
        },
        TargetAction::TranslateToKernel => match input {
            Input::Client(frame, seg) => translate_to_kernel(t, parts, &wire_key, frame, seg),
            _ => Ok(None),
        },
        TargetAction::ResetKernel => {
            reset_kernel(t, parts, wire_key);
            Ok(None)
        }
        TargetAction::SendClosed => {
            parts.send(
                usize::from(t.setup.origin),
                Message::HandoffClosed(HandoffClosed { id: t.setup.id }),
            );
            Ok(None)
        }
    }
}

/// The client's SYN, as the client sent it to the origin, but addressed to
/// this node's own address.
fn inject_syn(t: &TargetFlow, parts: &mut Parts<'_>, wire_key: FlowKey) {
    let Some(req) = &t.setup.request else {
        return;
    };
    let syn = frames::build(&Segment {
        src_mac: t.client_mac,
        dst_mac: parts.cfg.own_mac,
        src: wire_key.client(),
        dst: wire_key.with_server_addr(parts.cfg.own_addr).server(),
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
    let (own_addr, own_mac) = (parts.cfg.own_addr, parts.cfg.own_mac);
    let isn_target = seg.seq;
    let kernel = syn_options(seg.options(synack));
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
            dst: wire_key.with_server_addr(own_addr).server(),
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
        let seq = first + (i * SEGMENT_PAYLOAD) as u32;
        parts
            .out
            .to_host
            .push(segment(seq, TcpFlags::ACK | TcpFlags::PSH, chunk));
    }
    parts.count(Counter::HandedIn, 1);
    tracing::debug!(
        "handoff {:x}: took over {} -> {} from {}",
        t.setup.id,
        wire_key.client(),
        wire_key.server(),
        parts.cfg.peers[usize::from(t.setup.origin)].name
    );
    Some(())
}

pub(super) fn translate_to_client(
    t: &TargetFlow,
    parts: &Parts<'_>,
    wire_key: &FlowKey,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Result<Option<Verdict>, Verdict> {
    let Some(offsets) = t.offsets else {
        return Err(Verdict::Drop);
    };
    let translation = offsets.translation(wire_key, parts.cfg.own_addr);
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

pub(super) fn translate_to_kernel(
    t: &mut TargetFlow,
    parts: &Parts<'_>,
    wire_key: &FlowKey,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Result<Option<Verdict>, Verdict> {
    let Some(offsets) = t.offsets else {
        return Err(Verdict::Drop);
    };
    let translation = offsets.translation(wire_key, parts.cfg.own_addr);
    // Where a RST to the kernel must start.
    let fin = u32::from(seg.flags.contains(TcpFlags::FIN));
    let end = seg.seq + seg.payload_len() as u32 + fin;
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
    let rst = frames::build(&Segment {
        src_mac: t.client_mac,
        dst_mac: parts.cfg.own_mac,
        src: wire_key.client(),
        dst: wire_key.with_server_addr(parts.cfg.own_addr).server(),
        seq: t.client_next_seq,
        ack: SeqNum::default(),
        flags: TcpFlags::RST,
        window: 0,
        options: &[],
        payload: &[],
    });
    parts.out.to_host.push(rst);
}
