//! The origin side: this node accepted the connection.

use std::time::Instant;

use baton_handoff::msg::{
    FlowKey as MsgFlowKey, HandoffAccept, HandoffClosed, HandoffReject, HandoffRequest, Load,
    Message,
};

use crate::counters::Counter;
use crate::packet::{EthernetFrame, TcpFlags, TcpSummary};

use super::flow::{Flow, FlowKey, OriginFlow, OriginState, Role};
use super::frames::{self, Segment};
use super::{view, Engine, Placement, ServiceKind, Verdict};

/// Client packets kept while a handoff is pending; more are dropped (the
/// client sends them again).
const MAX_QUEUED: usize = 64;

/// A client's SYN to a managed service: a new flow, passed to the kernel.
pub(super) fn on_syn(
    e: &mut Engine,
    key: FlowKey,
    kind: ServiceKind,
    frame: &[u8],
    now: Instant,
) -> Verdict {
    let Some(seg) = view(frame) else {
        return Verdict::ToHost;
    };
    // Data on a SYN (TCP Fast Open) is the kernel's business alone.
    if !seg.payload.is_empty() {
        return Verdict::ToHost;
    }
    e.count(Counter::ConnsSeen, 1);
    let flow = OriginFlow {
        state: OriginState::Handshake,
        kind,
        client_mac: seg.src_mac,
        isn_client: seg.seq,
        client_syn_options: seg.options.to_vec(),
        isn_origin: None,
        origin_synack_options: Vec::new(),
        origin_tsval: None,
        client_window: seg.window,
        client_tsval: seg.tsval,
        client_ack: 0,
        held: Vec::new(),
        held_frames: Vec::new(),
        queued: Vec::new(),
        requested_at: None,
    };
    e.flows.insert(
        key,
        Flow {
            deadline: now + e.cfg.idle_timeout,
            role: Role::Origin(Box::new(flow)),
        },
    );
    Verdict::ToHost
}

/// A packet from the client of an origin flow.
pub(super) fn from_client(
    e: &mut Engine,
    key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpSummary,
    now: Instant,
) -> Verdict {
    let Some(seg) = view(frame) else {
        return Verdict::ToHost;
    };
    let own_mac = e.cfg.own_mac;
    let Some(flow) = e.flows.get_mut(&key) else {
        return Verdict::ToHost;
    };
    let Role::Origin(o) = &mut flow.role else {
        return Verdict::ToHost;
    };
    if tcp.flags.contains(TcpFlags::ACK) {
        o.client_ack = seg.ack;
    }
    o.client_window = seg.window;
    if seg.tsval.is_some() {
        o.client_tsval = seg.tsval;
    }
    match o.state {
        OriginState::Forwarding { peer, .. } => {
            flow.deadline = now + e.cfg.idle_timeout;
            let peer_mac = e.cfg.peers[peer].mac;
            if let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) {
                eth.set_dst_addr(peer_mac);
                eth.set_src_addr(own_mac);
            }
            e.count(Counter::ForwardedToPeer, 1);
            Verdict::ToWire
        }
        OriginState::Pending { peer, id } => {
            if tcp.flags.contains(TcpFlags::RST) {
                // The client gave up mid-handoff: its RST goes to the local
                // kernel (still the owner), and the target forgets the flow.
                e.count(Counter::ClientResetMidHandoff, 1);
                e.remove(&key);
                e.send(peer, Message::HandoffClosed(HandoffClosed { id }));
                return Verdict::ToHost;
            }
            if o.queued.len() < MAX_QUEUED {
                o.queued.push(frame.to_vec());
                return Verdict::Consumed;
            }
            e.count(Counter::DropWhilePending, 1);
            Verdict::Drop
        }
        OriginState::Handshake | OriginState::Held => {
            if tcp.flags.contains(TcpFlags::RST) || tcp.flags.contains(TcpFlags::SYN) {
                if tcp.flags.contains(TcpFlags::RST) {
                    e.remove(&key);
                }
                return Verdict::ToHost;
            }
            if seg.payload.is_empty() {
                if tcp.flags.contains(TcpFlags::FIN) && o.state == OriginState::Held {
                    // The client finished sending before a decision: serve
                    // what it sent here, FIN included.
                    e.count(Counter::HoldUndecided, 1);
                    release_local(e, &key);
                }
                return Verdict::ToHost;
            }
            hold(e, key, frame, seg.seq, seg.payload.len(), now)
        }
    }
}

/// Holds request bytes that continue the held ones, then asks the placer.
fn hold(e: &mut Engine, key: FlowKey, frame: &[u8], seq: u32, len: usize, now: Instant) -> Verdict {
    let hold_timeout = e.cfg.hold_timeout;
    let Some(Flow {
        deadline,
        role: Role::Origin(o),
    }) = e.flows.get_mut(&key)
    else {
        return Verdict::ToHost;
    };
    let expected = o
        .isn_client
        .wrapping_add(1)
        .wrapping_add(o.held.len() as u32);
    let offset = seq.wrapping_sub(expected) as i32;
    if offset < 0 {
        e.count(Counter::DropHeldDuplicate, 1);
        return Verdict::Drop;
    }
    if offset > 0 {
        e.count(Counter::DropHeldOutOfOrder, 1);
        return Verdict::Drop;
    }
    let Some(seg) = view(frame) else {
        return Verdict::ToHost;
    };
    debug_assert_eq!(seg.payload.len(), len);
    o.held.extend_from_slice(seg.payload);
    o.held_frames.push(frame.to_vec());
    if o.state == OriginState::Handshake {
        o.state = OriginState::Held;
        *deadline = now + hold_timeout;
    }
    let full = o.held.len() >= e.cfg.hold_bytes || o.held_frames.len() >= e.cfg.hold_segments;
    let kind = o.kind;
    let knows_isn = o.isn_origin.is_some();
    let own = Load {
        active_connections: e.flows.len() as u32,
        ..Load::default()
    };
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get(&key)
    else {
        return Verdict::ToHost;
    };
    let placement = e.placer.place(&o.held, kind, &e.peers_up, own);
    match placement {
        Placement::NeedMore if !full => return Verdict::Consumed,
        Placement::NeedMore => e.count(Counter::HoldUndecided, 1),
        Placement::Local => e.count(Counter::ServedLocal, 1),
        Placement::Invalid => e.count(Counter::BadRequest, 1),
        Placement::Peer(peer) if knows_isn && e.peers_up.get(peer) == Some(&true) => {
            start_handoff(e, key, peer, now);
            return Verdict::Consumed;
        }
        Placement::Peer(_) => e.count(Counter::FellBack, 1),
    }
    release_local(e, &key);
    Verdict::Consumed
}

fn start_handoff(e: &mut Engine, key: FlowKey, peer: usize, now: Instant) {
    let id = e.next_id();
    let timeout = e.cfg.handoff_timeout;
    let Some(Flow {
        deadline,
        role: Role::Origin(o),
    }) = e.flows.get_mut(&key)
    else {
        return;
    };
    let request = HandoffRequest {
        id,
        key: MsgFlowKey {
            client: key.client,
            server: key.server,
        },
        client_mac: o.client_mac.0,
        isn_client: o.isn_client,
        isn_origin: o.isn_origin.unwrap_or_default(),
        client_syn_options: o.client_syn_options.clone(),
        origin_synack_options: o.origin_synack_options.clone(),
        client_window: o.client_window,
        client_tsval: o.client_tsval,
        origin_tsval: o.origin_tsval,
        held: o.held.clone(),
    };
    o.state = OriginState::Pending { peer, id };
    o.requested_at = Some(now);
    *deadline = now + timeout;
    e.by_id.insert(id, key);
    tracing::debug!(
        "handoff {id:x}: {} -> {} to {} ({} request bytes)",
        key.client,
        key.server,
        e.cfg.peers[peer].name,
        request.held.len()
    );
    e.send(peer, Message::HandoffRequest(request));
}

/// Serves the connection here: the held frames go to the local kernel as
/// they came, and the flow is forgotten (later packets pass through).
fn release_local(e: &mut Engine, key: &FlowKey) {
    if let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.remove(key)
    {
        e.out.to_host.extend(o.held_frames);
    }
}

/// A packet from the local kernel on an origin flow.
pub(super) fn from_kernel(
    e: &mut Engine,
    key: FlowKey,
    frame: &[u8],
    tcp: &TcpSummary,
    _now: Instant,
) -> Verdict {
    let Some(seg) = view(frame) else {
        return Verdict::ToWire;
    };
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    else {
        return Verdict::ToWire;
    };
    if let OriginState::Forwarding { .. } = o.state {
        e.count(Counter::DropStaleKernel, 1);
        return Verdict::Drop;
    }
    if tcp.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
        o.isn_origin = Some(seg.seq);
        o.origin_synack_options = seg.options.to_vec();
    }
    if seg.tsval.is_some() {
        o.origin_tsval = seg.tsval;
    }
    Verdict::ToWire
}

/// The target took the connection: the local kernel forgets it (a RST at
/// exactly the sequence number it expects), and client packets go there.
pub(super) fn on_accept(e: &mut Engine, peer: usize, accept: HandoffAccept, now: Instant) {
    let own_mac = e.cfg.own_mac;
    let idle = e.cfg.idle_timeout;
    let Some(&key) = e.by_id.get(&accept.id) else {
        // We fell back already: the target must let go of it too.
        e.count(Counter::DropUnknownHandoff, 1);
        e.send(
            peer,
            Message::HandoffClosed(HandoffClosed { id: accept.id }),
        );
        return;
    };
    let Some(Flow {
        deadline,
        role: Role::Origin(o),
    }) = e.flows.get_mut(&key)
    else {
        return;
    };
    if o.state
        != (OriginState::Pending {
            peer,
            id: accept.id,
        })
    {
        e.count(Counter::DropUnknownHandoff, 1);
        return;
    }
    o.state = OriginState::Forwarding {
        peer,
        id: accept.id,
    };
    *deadline = now + idle;
    o.held = Vec::new();
    o.held_frames = Vec::new();
    let queued = std::mem::take(&mut o.queued);
    let waited = o.requested_at.map(|t| now.saturating_duration_since(t));
    let rst = frames::build(&Segment {
        src_mac: o.client_mac,
        dst_mac: own_mac,
        src: key.client,
        dst: key.server,
        seq: o.isn_client.wrapping_add(1),
        ack: 0,
        flags: TcpFlags::RST,
        window: 0,
        options: &[],
        payload: &[],
    });
    e.out.to_host.push(rst);
    let peer_mac = e.cfg.peers[peer].mac;
    for mut frame in queued {
        if let Ok(mut eth) = EthernetFrame::new_checked(&mut frame[..]) {
            eth.set_dst_addr(peer_mac);
            eth.set_src_addr(own_mac);
        }
        e.out.to_wire.push(frame);
        e.count(Counter::ForwardedToPeer, 1);
    }
    e.count(Counter::HandedOff, 1);
    tracing::debug!(
        "handoff {:x}: {} -> {} accepted by {} after {:?}",
        accept.id,
        key.client,
        key.server,
        e.cfg.peers[peer].name,
        waited.unwrap_or_default()
    );
}

pub(super) fn on_reject(e: &mut Engine, peer: usize, reject: HandoffReject, _now: Instant) {
    let Some(&key) = e.by_id.get(&reject.id) else {
        e.count(Counter::DropUnknownHandoff, 1);
        return;
    };
    let pending = matches!(
        e.flows.get(&key).map(|f| &f.role),
        Some(Role::Origin(o)) if o.state == (OriginState::Pending { peer, id: reject.id })
    );
    if !pending {
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
    release_local(e, &key);
}

/// The target says a connection it served is over. Returns false when no
/// origin flow matches.
pub(super) fn on_closed(e: &mut Engine, peer: usize, closed: HandoffClosed) -> bool {
    let Some(&key) = e.by_id.get(&closed.id) else {
        return false;
    };
    let state = match e.flows.get(&key).map(|f| &f.role) {
        Some(Role::Origin(o)) => o.state,
        _ => return false,
    };
    match state {
        OriginState::Forwarding { peer: p, .. } if p == peer => {
            e.remove(&key);
            true
        }
        OriginState::Pending { peer: p, .. } if p == peer => {
            // The target gave up before accepting: serve it here.
            e.count(Counter::FellBack, 1);
            release_local(e, &key);
            true
        }
        _ => false,
    }
}

pub(super) fn on_peer_down(e: &mut Engine, peer: usize, _now: Instant) {
    let affected: Vec<(FlowKey, OriginState)> = e
        .flows
        .iter()
        .filter_map(|(k, f)| match &f.role {
            Role::Origin(o) => match o.state {
                OriginState::Pending { peer: p, .. } | OriginState::Forwarding { peer: p, .. }
                    if p == peer =>
                {
                    Some((*k, o.state))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    for (key, state) in affected {
        match state {
            OriginState::Pending { .. } => {
                e.count(Counter::FellBack, 1);
                release_local(e, &key);
            }
            _ => reset_client(e, &key),
        }
    }
}

/// Tells the client its connection is gone, at the sequence number it
/// expects next, so it fails at once instead of hanging.
fn reset_client(e: &mut Engine, key: &FlowKey) {
    let own_mac = e.cfg.own_mac;
    if let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.remove(key)
    {
        let rst = frames::build(&Segment {
            src_mac: own_mac,
            dst_mac: o.client_mac,
            src: key.server,
            dst: key.client,
            seq: o.client_ack,
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: &[],
            payload: &[],
        });
        e.out.to_wire.push(rst);
        e.count(Counter::PeerDownResets, 1);
    }
}

pub(super) fn on_deadline(e: &mut Engine, key: FlowKey, _now: Instant) {
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get(&key)
    else {
        return;
    };
    match o.state {
        OriginState::Handshake | OriginState::Forwarding { .. } => {
            e.count(Counter::FlowsExpired, 1);
            e.remove(&key);
        }
        OriginState::Held => {
            e.count(Counter::HoldUndecided, 1);
            release_local(e, &key);
        }
        OriginState::Pending { peer, id } => {
            tracing::debug!(
                "handoff {id:x}: no answer from {}; serving locally",
                e.cfg.peers[peer].name
            );
            e.count(Counter::HandoffTimedOut, 1);
            e.count(Counter::FellBack, 1);
            release_local(e, &key);
            // Should the target still accept, it resets its copy.
            e.send(peer, Message::HandoffClosed(HandoffClosed { id }));
        }
    }
}
