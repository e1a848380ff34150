//! The origin events a connection's segments are: the client's SYN that
//! opens a flow, the client's later segments, and the local kernel's.

use std::time::Instant;

use baton_handoff::state::{OriginEvent, Side};

use super::place::decide;
use crate::counters::Counter;
use crate::engine::api::Verdict;
use crate::engine::drive::Input;
use crate::engine::flow::{Flow, FlowKey, OriginFlow, OriginSetup, OriginState, Role};
use crate::engine::{Engine, ServiceKind};
use crate::packet::{SeqNum, TcpFlags, TcpFrame};

/// A client's SYN to a managed service: a new flow, passed to the kernel.
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
    e.count(Counter::ConnsSeen, 1);
    if !e.make_room() {
        // Every tracked connection is established or handed off: this one
        // is served here, untracked, like any connection kept local.
        e.count(Counter::TableFullUntracked, 1);
        return Verdict::ToHost;
    }
    let setup = OriginSetup {
        isn_client: seg.seq,
        client_syn_options: seg.options(frame).to_vec(),
        client_window: seg.window,
        client_tsval: seg.tsval(frame),
        ..OriginSetup::new(kind, seg.src_mac)
    };
    let make = |state| {
        Role::Origin(OriginFlow {
            state,
            client_ack: SeqNum::default(),
            handoff: None,
            setup: Box::new(setup),
        })
    };
    // The machine starts by passing the SYN to the kernel.
    let verdict = e.open::<OriginFlow>(key, make, Input::Packet(frame, seg, Side::Client), now);
    e.note_embryonic(key);
    verdict
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
    let Some(Flow {
        role: Role::Origin(o),
        ..
    }) = e.flows.get_mut(&key)
    else {
        return Verdict::ToHost;
    };
    let event = client_event(tcp, o.setup.isn_client);
    let kind = o.setup.kind;
    // What a handoff request or a RST toward the client needs.
    if tcp.flags.contains(TcpFlags::ACK) {
        o.client_ack = tcp.ack;
    }
    // The rest only goes into a handoff request: once one is sent, there
    // is no need to scan options for it.
    if matches!(o.state, OriginState::Handshake | OriginState::Held) {
        o.setup.client_window = tcp.window;
        if let Some(tsval) = tcp.tsval(frame) {
            o.setup.client_tsval = Some(tsval);
        }
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
    let holding = matches!(
        e.flows.get(&key).map(|f| &f.role),
        Some(Role::Origin(o)) if o.state == OriginState::Held
    );
    if event == OriginEvent::DataFromClient && holding && driven.verdict == Verdict::Consumed {
        decide(e, key, now);
    }
    driven.verdict
}

/// A packet from the local kernel on an origin flow.
pub(in crate::engine) fn from_kernel(
    e: &mut Engine,
    key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    e.step::<OriginFlow>(
        key,
        OriginEvent::FromKernel,
        Input::Packet(frame, tcp, Side::Kernel),
        now,
    )
    .map_or(Verdict::ToWire, |d| d.verdict)
}
