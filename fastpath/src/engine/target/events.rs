//! The target events a handed-in connection's segments are.

use std::time::Instant;

use baton_handoff::state::{Side, TargetEvent};

use super::signals::check_release;
use crate::engine::api::Verdict;
use crate::engine::drive::Input;
use crate::engine::flow::{FlowKey, TargetFlow};
use crate::engine::Engine;
use crate::packet::{TcpFlags, TcpFrame};

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
pub(in crate::engine) fn from_kernel(
    e: &mut Engine,
    wire_key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    let event = kernel_event(tcp.flags);
    let verdict = e
        .step::<TargetFlow>(
            wire_key,
            event,
            Input::Packet(frame, tcp, Side::Kernel),
            now,
        )
        .map_or(Verdict::ToWire, |d| d.verdict);
    check_release(e, wire_key, now);
    verdict
}

/// A client packet (forwarded by the origin) on a handed-in connection.
pub(in crate::engine) fn from_client(
    e: &mut Engine,
    wire_key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    let event = client_event(tcp.flags);
    let verdict = e
        .step::<TargetFlow>(
            wire_key,
            event,
            Input::Packet(frame, tcp, Side::Client),
            now,
        )
        .map_or(Verdict::ToHost, |d| d.verdict);
    check_release(e, wire_key, now);
    verdict
}
