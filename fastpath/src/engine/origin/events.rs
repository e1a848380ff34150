//! The origin events a connection's segments are: the client's SYN that
//! opens a flow, the client's later segments, and the local kernel's.

use std::time::Instant;

use baton_handoff::state::{OriginEvent, Owner, Side};

use super::moves::{check_local_release, settle, watch_of};
use super::place::{decide, decide_again, place_request};
use super::route::Dest;
use crate::counters::Counter;
use crate::engine::api::Verdict;
use crate::engine::drive::Input;
use crate::engine::flow::{Flow, FlowKey, OriginFlow, OriginState, Role};
use crate::engine::half_open::{Added, HalfOpen};
use crate::engine::{Engine, ServiceKind};
use crate::packet::{SeqNum, TcpFlags, TcpFrame};

/// A client's SYN to a managed service, of no flow: passed to the kernel,
/// and remembered as a half-open connection (see `half_open`). It becomes
/// a flow when its handshake completes ([`on_handshake_done`]).
pub(in crate::engine) fn on_syn(
    e: &mut Engine,
    key: FlowKey,
    kind: ServiceKind,
    frame: &mut [u8],
    seg: &TcpFrame,
    now: Instant,
) -> Verdict {
    // Data on a SYN (TCP Fast Open) is the kernel's business alone.
    if seg.payload_len() != 0 {
        return Verdict::ToHost;
    }
    match e.half_open.syn(key, kind, frame, seg, &mut e.timers, now) {
        Added::New { dropped } => {
            e.count(Counter::HalfOpenCreated, 1);
            e.count(Counter::HalfOpenDropped, u64::from(dropped));
        }
        Added::Again => {}
    }
    Verdict::ToHost
}

/// A client segment of a half-open connection that acknowledges the
/// kernel's SYN-ACK: the connection becomes a flow, in the state a flow
/// opened at its SYN would be in by now (the machine's start, with what
/// the handshake told), and the segment is that flow's.
pub(in crate::engine) fn on_handshake_done(
    e: &mut Engine,
    key: FlowKey,
    half_open: &HalfOpen,
    frame: &mut [u8],
    seg: &TcpFrame,
    now: Instant,
) -> Verdict {
    e.count(Counter::HalfOpenPromoted, 1);
    e.count(Counter::ConnsSeen, 1);
    if !e.make_room() {
        // Every tracked connection is established or handed off: this one
        // is served here, untracked, like any connection kept local.
        e.count(Counter::TableFullUntracked, 1);
        return Verdict::ToHost;
    }
    let setup = Box::new(half_open.setup());
    let make = |state| {
        Role::Origin(OriginFlow {
            state,
            peer: None,
            client_ack: SeqNum::default(),
            watch: SeqNum::default(),
            setup,
        })
    };
    // The machine's start passes the SYN to the kernel: that was done when
    // it came, so its verdict has nothing left to say.
    e.open::<OriginFlow>(key, make, Input::Nothing, now);
    e.note_embryonic(key);
    client_segment(e, key, frame, seg, now, Segment::MadeTheFlow)
}

/// Whether a client segment is the one that made its flow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Segment {
    MadeTheFlow,
    Later,
}

/// The event a client segment is, for a flow the client opened with ISN
/// `isn_client`.
fn client_event(tcp: &TcpFrame, isn_client: SeqNum) -> OriginEvent {
    let (flags, has_payload) = (tcp.flags, tcp.payload_len() != 0);
    if flags.contains(TcpFlags::RST) {
        OriginEvent::RstFromClient
    } else if flags.contains(TcpFlags::SYN)
        && !flags.contains(TcpFlags::ACK)
        && tcp.seq != isn_client
    {
        OriginEvent::NewSynFromClient
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
pub(in crate::engine) fn from_client(
    e: &mut Engine,
    key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    client_segment(e, key, frame, tcp, now, Segment::Later)
}

fn client_segment(
    e: &mut Engine,
    key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
    segment: Segment,
) -> Verdict {
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    else {
        return Verdict::ToHost;
    };
    let event = match client_event(tcp, o.setup.syn_isn) {
        OriginEvent::AckFromClient if segment == Segment::MadeTheFlow => OriginEvent::HandshakeAck,
        event => event,
    };
    let kind = o.setup.kind;
    // What a handoff request or a RST toward the client needs.
    if tcp.flags.contains(TcpFlags::ACK) {
        o.client_ack = tcp.ack;
        if let Some(owned) = o.setup.route.as_mut().and_then(|r| r.owned.as_mut()) {
            // (A replayed connection translates it when it is passed on.)
            if o.state == OriginState::Quiescing(Owner::Kernel) {
                owned.client_ack(tcp.ack);
            }
        }
    }
    // The rest only goes into a handoff request: once one is sent, there
    // is no need to scan options for it.
    if matches!(o.state, OriginState::Handshake | OriginState::Held) {
        o.setup.client_window = tcp.window;
        if let Some(tsval) = tcp.tsval(frame) {
            o.setup.client_tsval = Some(tsval);
        }
    }
    if event == OriginEvent::DataFromClient && !route_request(e, key, frame, tcp, now) {
        e.count(Counter::DropRequestGap, 1);
        return Verdict::Drop;
    }
    let Some(driven) =
        e.step::<OriginFlow>(key, event, Input::Packet(frame, tcp, Side::Client), now)
    else {
        // Packet events are valid in every state.
        return Verdict::ToHost;
    };
    if event == OriginEvent::NewSynFromClient && driven.finished {
        // The old connection's flow is gone: the SYN opens the new one.
        return on_syn(e, key, kind, frame, tcp, now);
    }
    let state = match e.flows.get(&key).map(|f| &f.role) {
        Some(Role::Origin(o)) => o.state,
        _ => return driven.verdict,
    };
    if event == OriginEvent::DataFromClient
        && state == OriginState::Held
        && driven.verdict == Verdict::Consumed
    {
        decide(e, key, now);
    }
    if let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    {
        o.watch = watch_of(o, tcp.seq.add_len(tcp.payload_len()));
    }
    check_local_release(e, key, now);
    driven.verdict
}

/// Reads a routed connection's client segment for requests: each new one
/// is decided, and one for another node than the connection's owner
/// starts a move (everything from it on is held). False when the segment
/// starts past a gap in the requests, to be dropped.
fn route_request(e: &mut Engine, key: FlowKey, frame: &[u8], tcp: &TcpFrame, now: Instant) -> bool {
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    else {
        return true;
    };
    let owner = match o.state {
        OriginState::Serving | OriginState::ServingReplayed => Some(Dest::Here),
        OriginState::Forwarding => o.peer.map(Dest::Peer),
        // A takeover is under way (the first, or a move's): requests are
        // read and planned, and wait for it. (The client may have its
        // first answer before this node hears the target took over.)
        OriginState::HandoffPending
        | OriginState::Quiescing(_)
        | OriginState::Moving
        | OriginState::MovePending
        | OriginState::Replaying => None,
        _ => return true,
    };
    let Some(mut route) = o.setup.route.take() else {
        return true;
    };
    let stays = owner.unwrap_or(Dest::Here);
    let read = route.read(tcp.seq, tcp.payload(frame), |head| {
        place_request(e, head, stays)
    });
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    else {
        return true;
    };
    let elsewhere = match (read, owner) {
        (Err(()), _) => {
            o.setup.route = Some(route);
            return false;
        }
        (Ok(()), Some(owner)) => route.deliver(owner),
        (Ok(()), None) => None,
    };
    if let Some(at) = elsewhere {
        // The request at `at` and all after it wait for the move; the
        // segment's part before it still goes to the owner (see
        // `HoldForMove`).
        route.move_started = Some(now);
        o.setup.isn_client = at - 1;
        o.setup.held.clear();
        o.setup.held_frames.clear();
    }
    o.setup.route = Some(route);
    if elsewhere.is_some() {
        e.step::<OriginFlow>(key, OriginEvent::RequestElsewhere, Input::Nothing, now);
    }
    true
}

/// The event a kernel segment is.
fn kernel_event(flags: TcpFlags) -> OriginEvent {
    if flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
        OriginEvent::SynAckFromKernel
    } else if flags.contains(TcpFlags::RST) {
        OriginEvent::RstFromKernel
    } else if flags.contains(TcpFlags::FIN) {
        OriginEvent::FinFromKernel
    } else {
        OriginEvent::FromKernel
    }
}

/// A packet from the local kernel on an origin flow.
pub(in crate::engine) fn from_kernel(
    e: &mut Engine,
    key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    let event = kernel_event(tcp.flags);
    let driven = e.step::<OriginFlow>(key, event, Input::Packet(frame, tcp, Side::Kernel), now);
    let verdict = driven.map_or(Verdict::ToWire, |d| d.verdict);
    match e.flows.get(&key).map(|f| &f.role) {
        // The replay here took the connection: what came meanwhile goes on.
        Some(Role::Origin(o))
            if o.state == OriginState::ServingReplayed
                && event == OriginEvent::SynAckFromKernel =>
        {
            settle(e, key, now);
        }
        // The kernel here refused the replay: decided again.
        Some(Role::Origin(o)) if o.state == OriginState::Moving => decide_again(e, key, now),
        _ => {}
    }
    check_local_release(e, key, now);
    verdict
}
