//! The origin side: this node accepted the connection.
//!
//! The transitions are [`OriginState`]'s. This module turns frames, peer
//! messages and timer expiries into its events, carries out the actions it
//! returns, and counts what happened.

use std::time::{Duration, Instant};

use baton_handoff::msg::{
    FlowKey as MsgFlowKey, HandoffAccept, HandoffClosed, HandoffReject, HandoffRequest, Load,
    Message,
};
use baton_handoff::state::{
    InvalidTransition, OriginAction, OriginEvent, OriginState, OriginTimer,
};

use crate::counters::Counter;
use crate::packet::{EthernetFrame, MacAddr, SeqNum, TcpFlags, TcpFrame, TsVal};

use super::flow::{Flow, FlowKey, Handoff, OriginFlow, OriginSetup, PeerIndex, Role, Timer};
use super::frames::{self, Segment};
use super::{view, Engine, EngineConfig, Parts, Placement, ServiceKind, Verdict};

/// Client packets kept while a handoff is pending; more are dropped (the
/// client sends them again).
const MAX_QUEUED: usize = 64;

/// What a transition acts on besides the flow.
enum Input<'a> {
    /// A packet from the client.
    Client(&'a mut [u8]),
    /// A packet from the local kernel: its ISN and options when it is the
    /// SYN-ACK, and its timestamp. A handoff request carries them.
    Kernel {
        syn_ack: Option<(SeqNum, &'a [u8])>,
        tsval: Option<TsVal>,
    },
    /// The policy chose this peer; the request gets this id.
    Chosen(Handoff),
    /// A message or a timer.
    Nothing,
}

/// What a committed transition leaves to the caller.
struct Outcome {
    verdict: Verdict,
    /// The flow reached a final state: forget it.
    finished: bool,
}

fn timer_duration(cfg: &EngineConfig, timer: OriginTimer) -> Duration {
    match timer {
        // A request that never comes is an idle connection.
        OriginTimer::Handshake | OriginTimer::Idle => cfg.idle_timeout,
        OriginTimer::Hold => cfg.hold_timeout,
        OriginTimer::Handoff => cfg.handoff_timeout,
    }
}

/// A client's SYN to a managed service: a new flow, passed to the kernel.
pub(super) fn on_syn(
    e: &mut Engine,
    key: FlowKey,
    kind: ServiceKind,
    frame: &[u8],
    seg: &TcpFrame,
    now: Instant,
) -> Verdict {
    // Data on a SYN (TCP Fast Open) is the kernel's business alone.
    if seg.payload_len() != 0 {
        return Verdict::ToHost;
    }
    e.count(Counter::ConnsSeen, 1);
    if !e.make_room() {
        // Every tracked connection is established or handed off: this one
        // is served here, untracked, like any connection kept local.
        e.count(Counter::TableFullUntracked, 1);
        return Verdict::ToHost;
    }
    // The machine starts by passing the SYN to the kernel.
    let (state, actions) = OriginState::start();
    debug_assert!(actions.contains(OriginAction::PassToKernel));
    let flow = OriginFlow {
        state,
        client_ack: SeqNum::default(),
        handoff: None,
        setup: Box::new(OriginSetup {
            isn_client: seg.seq,
            client_syn_options: seg.options(frame).to_vec(),
            client_window: seg.window,
            client_tsval: seg.tsval(frame),
            ..OriginSetup::new(kind, seg.src_mac)
        }),
    };
    let timer = state
        .timer()
        .map_or(Duration::ZERO, |t| timer_duration(&e.cfg, t));
    let deadline = e.timers.deadline(now, timer);
    e.insert(key, deadline, Role::Origin(flow));
    e.note_embryonic(key);
    Verdict::ToHost
}

/// The event a client segment is.
fn client_event(flags: TcpFlags, has_payload: bool) -> OriginEvent {
    if flags.contains(TcpFlags::RST) {
        OriginEvent::RstFromClient
    } else if flags.contains(TcpFlags::SYN) {
        // A repeated SYN: nothing to hold, whatever it carries.
        OriginEvent::AckFromClient
    } else if has_payload {
        OriginEvent::DataFromClient
    } else if flags.contains(TcpFlags::FIN) {
        OriginEvent::FinFromClient
    } else {
        OriginEvent::AckFromClient
    }
}

/// A packet from the client of an origin flow.
pub(super) fn from_client(
    e: &mut Engine,
    key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    let event = client_event(tcp.flags, tcp.payload_len() != 0);
    let (ack, window) = (tcp.ack, tcp.window);
    let Some((
        Flow {
            deadline,
            armed,
            role: Role::Origin(o),
        },
        mut parts,
    )) = e.flow_and_parts(&key)
    else {
        return Verdict::ToHost;
    };
    // What a handoff request or a RST toward the client needs.
    if tcp.flags.contains(TcpFlags::ACK) {
        o.client_ack = ack;
    }
    // The rest only goes into a handoff request: once one is sent, there
    // is no need to scan options for it.
    if matches!(o.state, OriginState::Handshake | OriginState::Held) {
        o.setup.client_window = window;
        if let Some(tsval) = tcp.tsval(frame) {
            o.setup.client_tsval = Some(tsval);
        }
    }
    let before = o.state;
    let Ok(outcome) = transition(
        o,
        Timer { deadline, armed },
        &mut parts,
        key,
        event,
        Input::Client(frame),
        now,
    ) else {
        // Packet events are valid in every state.
        return Verdict::ToHost;
    };
    let held = event == OriginEvent::DataFromClient && o.state == OriginState::Held;
    match (before, event) {
        (OriginState::HandoffPending, OriginEvent::RstFromClient) => {
            parts.count(Counter::ClientResetMidHandoff, 1);
        }
        (OriginState::Held, OriginEvent::FinFromClient) => {
            parts.count(Counter::HoldUndecided, 1);
        }
        _ => {}
    }
    if outcome.finished {
        e.remove(&key);
    } else if held && outcome.verdict == Verdict::Consumed {
        decide(e, key, now);
    }
    outcome.verdict
}

/// Request bytes were held: asks the placer where they go, once it can
/// tell or the hold limit is reached.
fn decide(e: &mut Engine, key: FlowKey, now: Instant) {
    let own = Load {
        active_connections: e.flows.len() as u32,
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
        Placement::NeedMore => {
            e.count(Counter::HoldUndecided, 1);
            (OriginEvent::HoldLimitReached, Input::Nothing)
        }
        Placement::Local => {
            e.count(Counter::ServedLocal, 1);
            (OriginEvent::DecidedLocal, Input::Nothing)
        }
        Placement::Invalid => {
            e.count(Counter::BadRequest, 1);
            (OriginEvent::DecidedLocal, Input::Nothing)
        }
        // A handoff needs the kernel's ISN, and a node that can take it.
        Placement::Peer(peer) if knows_isn && e.peers_up.get(peer) == Some(&true) => {
            let id = e.next_id();
            (
                OriginEvent::DecidedHandoff,
                Input::Chosen(Handoff {
                    peer: peer as PeerIndex,
                    id,
                }),
            )
        }
        Placement::Peer(_) => {
            e.count(Counter::FellBack, 1);
            (OriginEvent::DecidedLocal, Input::Nothing)
        }
    };
    let _ = step(e, key, event, input, now);
}

/// A packet from the local kernel on an origin flow.
pub(super) fn from_kernel(
    e: &mut Engine,
    key: FlowKey,
    frame: &[u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    let input = Input::Kernel {
        syn_ack: tcp
            .flags
            .contains(TcpFlags::SYN | TcpFlags::ACK)
            .then_some((tcp.seq, tcp.options(frame))),
        tsval: tcp.tsval(frame),
    };
    step(e, key, OriginEvent::FromKernel, input, now).unwrap_or(Verdict::ToWire)
}

/// The target took the connection: the local kernel forgets it, and client
/// packets go there.
pub(super) fn on_accept(e: &mut Engine, peer: usize, accept: HandoffAccept, now: Instant) {
    let Some(key) = handoff_flow(e, peer, accept.id, OriginEvent::Accept) else {
        return;
    };
    if step(e, key, OriginEvent::Accept, Input::Nothing, now).is_err() {
        // Accepted twice.
        e.count(Counter::DropUnknownHandoff, 1);
        return;
    }
    e.count(Counter::HandedOff, 1);
    let waited = match e.flows.get(&key).map(|f| &f.role) {
        Some(Role::Origin(o)) => o
            .setup
            .requested_at
            .map(|t| now.saturating_duration_since(t)),
        _ => None,
    };
    tracing::debug!(
        "handoff {:x}: {} -> {} accepted by {} after {:?}",
        accept.id,
        key.client(),
        key.server(),
        e.cfg.peers[peer].name,
        waited.unwrap_or_default()
    );
}

pub(super) fn on_reject(e: &mut Engine, peer: usize, reject: HandoffReject, now: Instant) {
    let Some(key) = handoff_flow(e, peer, reject.id, OriginEvent::Reject) else {
        return;
    };
    if step(e, key, OriginEvent::Reject, Input::Nothing, now).is_err() {
        e.count(Counter::DropUnknownHandoff, 1);
        return;
    }
    tracing::debug!(
        "handoff {:x}: rejected by {} ({:?}); serving locally",
        reject.id,
        e.cfg.peers[peer].name,
        reject.reason
    );
    e.count(Counter::HandoffRejected, 1);
    e.count(Counter::FellBack, 1);
}

/// The origin flow of handoff `id` to `peer`. When there is none (this
/// node gave up on it, or never asked), counts it and answers `event` as
/// a forgotten flow does: a late Accept is undone at the target.
fn handoff_flow(e: &mut Engine, peer: usize, id: u64, event: OriginEvent) -> Option<FlowKey> {
    if let Some(key) = flow_of(e, peer, id) {
        return Some(key);
    }
    e.count(Counter::DropUnknownHandoff, 1);
    if let Ok((_, actions)) = OriginState::Closed.on(event) {
        if actions.contains(OriginAction::SendClosed) && !e.by_id.contains_key(&id) {
            e.send(peer, Message::HandoffClosed(HandoffClosed { id }));
        }
    }
    None
}

/// The origin flow whose handoff `id` went to `peer`.
fn flow_of(e: &Engine, peer: usize, id: u64) -> Option<FlowKey> {
    let peer = peer as PeerIndex;
    let key = *e.by_id.get(&id)?;
    match e.flows.get(&key).map(|f| &f.role) {
        Some(Role::Origin(o))
            if o.handoff
                .is_some_and(|h| h.peer == peer && h.id.get() == id) =>
        {
            Some(key)
        }
        _ => None,
    }
}

/// The target says a connection it served is over, or that it gave up
/// before accepting. Returns false when no origin flow matches.
pub(super) fn on_closed(e: &mut Engine, peer: usize, closed: HandoffClosed, now: Instant) -> bool {
    let Some(key) = flow_of(e, peer, closed.id) else {
        return false;
    };
    let before = state_of(e, &key);
    if step(e, key, OriginEvent::TargetClosed, Input::Nothing, now).is_err() {
        return false;
    }
    if before == Some(OriginState::HandoffPending) {
        e.count(Counter::FellBack, 1);
    }
    true
}

/// Handoffs pending to `peer` fall back to local; connections handed to it
/// are reset toward their clients.
pub(super) fn on_peer_down(e: &mut Engine, peer: usize, now: Instant) {
    let affected: Vec<FlowKey> = e
        .flows
        .iter()
        .filter_map(|(k, f)| match &f.role {
            Role::Origin(o) if o.handoff.is_some_and(|h| usize::from(h.peer) == peer) => Some(*k),
            _ => None,
        })
        .collect();
    for key in affected {
        let before = state_of(e, &key);
        let _ = step(e, key, OriginEvent::PeerDown, Input::Nothing, now);
        if before == Some(OriginState::HandoffPending) {
            e.count(Counter::FellBack, 1);
        }
    }
}

pub(super) fn on_deadline(e: &mut Engine, key: FlowKey, now: Instant) {
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get(&key)
    else {
        return;
    };
    match (o.state, o.handoff) {
        (OriginState::Held, _) => e.count(Counter::HoldUndecided, 1),
        (OriginState::HandoffPending, Some(Handoff { peer, id })) => {
            tracing::debug!(
                "handoff {id:x}: no answer from {}; serving locally",
                e.cfg.peers[usize::from(peer)].name
            );
            e.count(Counter::HandoffTimedOut, 1);
            e.count(Counter::FellBack, 1);
        }
        _ => e.count(Counter::FlowsExpired, 1),
    }
    let _ = step(e, key, OriginEvent::Timeout, Input::Nothing, now);
}

fn state_of(e: &Engine, key: &FlowKey) -> Option<OriginState> {
    match e.flows.get(key).map(|f| &f.role) {
        Some(Role::Origin(o)) => Some(o.state),
        _ => None,
    }
}

/// Feeds `event` to flow `key`'s machine and carries the transition out,
/// forgetting the flow when it ends. Returns the packet's verdict.
fn step(
    e: &mut Engine,
    key: FlowKey,
    event: OriginEvent,
    input: Input<'_>,
    now: Instant,
) -> Result<Verdict, InvalidTransition> {
    let Some((
        Flow {
            deadline,
            armed,
            role: Role::Origin(o),
        },
        mut parts,
    )) = e.flow_and_parts(&key)
    else {
        return Ok(Verdict::ToHost);
    };
    let timer = Timer { deadline, armed };
    let outcome = transition(o, timer, &mut parts, key, event, input, now)?;
    if outcome.finished {
        e.remove(&key);
    }
    Ok(outcome.verdict)
}

/// One transition: the actions, in order, then the new state and its timer.
/// When an action cannot be carried out for this packet, the packet is
/// dropped and the flow keeps the state it had.
fn transition(
    o: &mut OriginFlow,
    timer_of_flow: Timer<'_>,
    parts: &mut Parts<'_>,
    key: FlowKey,
    event: OriginEvent,
    mut input: Input<'_>,
    now: Instant,
) -> Result<Outcome, InvalidTransition> {
    let (next, actions) = o.state.on(event)?;
    let mut verdict = Verdict::Consumed;
    for action in actions {
        match carry_out(o, parts, key, action, &mut input, now) {
            Ok(Some(fate)) => verdict = fate,
            Ok(None) => {}
            Err(fate) => {
                return Ok(Outcome {
                    verdict: fate,
                    finished: false,
                })
            }
        }
    }
    let finished = next.is_final();
    if let Some(timer) = next.timer() {
        let passed = matches!(verdict, Verdict::ToHost | Verdict::ToWire);
        let at = parts.timers.deadline(now, timer_duration(parts.cfg, timer));
        if next != o.state {
            timer_of_flow.set(parts, key, at);
        } else if passed && timer.restarts_with_traffic() {
            *timer_of_flow.deadline = at;
        }
    }
    if next != o.state {
        if next == OriginState::HandoffPending {
            *parts.pending += 1;
        } else if o.state == OriginState::HandoffPending {
            *parts.pending -= 1;
        }
    }
    o.state = next;
    Ok(Outcome { verdict, finished })
}

/// Carries out one action. `Ok(Some(verdict))` says where the packet goes;
/// `Err(verdict)` means the packet cannot be taken as the transition
/// assumes.
fn carry_out(
    o: &mut OriginFlow,
    parts: &mut Parts<'_>,
    key: FlowKey,
    action: OriginAction,
    input: &mut Input<'_>,
    now: Instant,
) -> Result<Option<Verdict>, Verdict> {
    // Packet actions come only from packet events, which always bring
    // their packet; an input of the wrong kind leaves the packet alone.
    match action {
        OriginAction::PassToKernel => Ok(Some(Verdict::ToHost)),
        OriginAction::PassToClient => {
            if let Input::Kernel { syn_ack, tsval } = *input {
                if let Some((isn, options)) = syn_ack {
                    o.setup.isn_origin = Some(isn);
                    o.setup.origin_synack_options = options.to_vec();
                }
                if tsval.is_some() {
                    o.setup.origin_tsval = tsval;
                }
            }
            Ok(Some(Verdict::ToWire))
        }
        OriginAction::Hold => match input {
            Input::Client(frame) => hold(o, parts, frame).map(|()| Some(Verdict::Consumed)),
            _ => Ok(None),
        },
        OriginAction::Queue => match input {
            Input::Client(frame) if o.setup.queued.len() < MAX_QUEUED => {
                o.setup.queued.push(frame.to_vec());
                Ok(Some(Verdict::Consumed))
            }
            Input::Client(_) => {
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
            Input::Client(frame) => {
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

/// Holds request bytes that continue the held ones. A retransmission or a
/// segment past a gap is dropped: the client sends it again.
fn hold(o: &mut OriginFlow, parts: &Parts<'_>, frame: &[u8]) -> Result<(), Verdict> {
    let Some(seg) = view(frame) else {
        return Err(Verdict::ToHost);
    };
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
    let rst = frames::build(&Segment {
        src_mac: o.setup.client_mac,
        dst_mac: parts.cfg.own_mac,
        src: key.client(),
        dst: key.server(),
        seq: o.setup.isn_client + 1,
        ack: SeqNum::default(),
        flags: TcpFlags::RST,
        window: 0,
        options: &[],
        payload: &[],
    });
    parts.out.to_host.push(rst);
}

/// Tells the client its connection is gone, at the sequence number it
/// expects next, so it fails at once instead of hanging.
fn reset_client(o: &OriginFlow, parts: &mut Parts<'_>, key: FlowKey) {
    let rst = frames::build(&Segment {
        src_mac: parts.cfg.own_mac,
        dst_mac: o.setup.client_mac,
        src: key.server(),
        dst: key.client(),
        seq: o.client_ack,
        ack: SeqNum::default(),
        flags: TcpFlags::RST,
        window: 0,
        options: &[],
        payload: &[],
    });
    parts.out.to_wire.push(rst);
    parts.count(Counter::PeerDownResets, 1);
}

/// The MAC of the node serving the connection.
pub(super) fn target_mac(o: &OriginFlow, parts: &Parts<'_>) -> MacAddr {
    o.handoff
        .and_then(|h| parts.cfg.peers.get(usize::from(h.peer)))
        .map_or(parts.cfg.own_mac, |p| p.mac)
}

/// Sends a client frame on to the target: only the MACs change.
pub(super) fn redirect(frame: &mut [u8], peer_mac: MacAddr, own_mac: MacAddr) {
    if let Ok(mut eth) = EthernetFrame::new_checked(frame) {
        eth.set_dst_addr(peer_mac);
        eth.set_src_addr(own_mac);
    }
}
