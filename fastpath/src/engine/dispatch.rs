//! Where a frame goes in the engine: its flow looked up once, the fast path
//! for established flows, and otherwise the stage that decides which
//! role's events it becomes.

use std::time::Instant;

use super::api::Verdict;
use super::fast::Fast;
use super::flow::FlowKey;
use super::{origin, target, Engine, ServiceKind};
use crate::counters::{Counter, WorkerCounters};
use crate::packet::{TcpFlags, TcpFrame};

/// Where a client frame stands after the fast path, when it needs the
/// general one.
enum Stage {
    /// A frame of a connection this node accepted.
    Origin,
    /// A frame of a connection handed to this node.
    Target,
    /// No flow: a SYN that opens one, for this kind of service.
    Opens(ServiceKind),
    /// No flow: a segment of a half-open connection (see `half_open`).
    HalfOpen,
}

/// An IPv4/TCP frame received on the wire port: from a client (or another
/// node).
#[inline(always)]
pub(super) fn from_wire(e: &mut Engine, frame: &mut [u8], tcp: &TcpFrame, now: Instant) -> Verdict {
    let key = FlowKey::new(tcp.src_addr, tcp.src_port, tcp.dst_addr, tcp.dst_port);
    let stage = match e.fast_from_client(&key, frame, tcp, now) {
        Fast::Done(verdict) => return verdict,
        Fast::Origin => Stage::Origin,
        Fast::Target => Stage::Target,
        // A packet of no flow passes, unless it opens one, or may belong to
        // a connection a peer holds and has not yet named (see `resync`).
        Fast::Unknown => match e.new_connection(tcp) {
            Some(kind) => Stage::Opens(kind),
            // A second lookup for a packet of no flow, while any
            // connection is half-open: the price of keeping half-open ones
            // out of the flow table (see `half_open`).
            None if e.half_open.contains(&key) => Stage::HalfOpen,
            None if e.recovery.recovering() && e.to_service(tcp) => {
                e.count(Counter::DropRecovering, 1);
                return Verdict::Drop;
            }
            None => return Verdict::ToHost,
        },
    };
    // What follows may change a connection's state: a corrupted frame
    // must not (a RST that is not one, request bytes that differ).
    if !tcp.checksums_valid(frame) {
        e.count(Counter::DropBadChecksum, 1);
        return Verdict::Drop;
    }
    match stage {
        Stage::Origin => origin::from_client(e, key, frame, tcp, now),
        Stage::Target => target::from_client(e, key, frame, tcp, now),
        Stage::Opens(_) if e.kernel_key_taken(&key) => {
            // A handed-in connection's kernel side: the kernel answers.
            e.count(Counter::TupleInUseUntracked, 1);
            Verdict::ToHost
        }
        Stage::Opens(kind) => origin::on_syn(e, key, kind, frame, tcp, now),
        Stage::HalfOpen => half_open_from_client(e, key, frame, tcp, now),
    }
}

/// A client segment of a half-open connection: the one that completes its
/// handshake makes it a flow; a RST ends it; anything else (a SYN again,
/// an ACK of no SYN-ACK this node saw) is the kernel's to answer.
fn half_open_from_client(
    e: &mut Engine,
    key: FlowKey,
    frame: &mut [u8],
    tcp: &TcpFrame,
    now: Instant,
) -> Verdict {
    if tcp.flags.contains(TcpFlags::RST) {
        e.half_open.remove(&key);
        return Verdict::ToHost;
    }
    if tcp.flags.contains(TcpFlags::SYN) {
        return Verdict::ToHost;
    }
    let Some(half_open) = e.half_open.promote(&key, tcp) else {
        return Verdict::ToHost;
    };
    if e.kernel_key_taken(&key) {
        // Taken meanwhile by a handed-in connection's kernel side.
        e.count(Counter::TupleInUseUntracked, 1);
        return Verdict::ToHost;
    }
    origin::on_handshake_done(e, key, &half_open, frame, tcp, now)
}

/// An IPv4/TCP frame the host kernel sent.
#[inline(always)]
pub(super) fn from_host(e: &mut Engine, frame: &mut [u8], tcp: &TcpFrame, now: Instant) -> Verdict {
    // The kernel is the server: the client is the destination.
    let key = FlowKey::new(tcp.dst_addr, tcp.dst_port, tcp.src_addr, tcp.src_port);
    match e.fast_from_kernel(&key, frame, tcp, now) {
        (_, Fast::Done(verdict)) => verdict,
        (key, Fast::Origin) => origin::from_kernel(e, key, frame, tcp, now),
        (wire_key, Fast::Target) => target::from_kernel(e, wire_key, frame, tcp, now),
        (key, Fast::Unknown) => {
            // The kernel's SYN-ACK or RST for a half-open connection.
            if tcp.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
                e.half_open.synack(&key, frame, tcp);
            } else if tcp.flags.contains(TcpFlags::RST) {
                e.half_open.remove(&key);
            }
            Verdict::ToWire
        }
    }
}

impl Engine {
    /// Whether `key`, as the local kernel sees a connection, is in use: by
    /// an origin flow, or as the kernel side of a handed-in one. A new flow
    /// never takes a kernel key in use, so that the kernel's packets
    /// always find one flow.
    pub(super) fn kernel_key_taken(&self, key: &FlowKey) -> bool {
        self.flows
            .find_kernel_side(key, &self.kernel_addrs)
            .is_some()
    }

    /// A SYN (without ACK) to a managed service on this node or the VIP.
    fn new_connection(&self, tcp: &TcpFrame) -> Option<ServiceKind> {
        if !tcp.flags.contains(TcpFlags::SYN) || tcp.flags.contains(TcpFlags::ACK) {
            return None;
        }
        self.service_of(tcp)
    }

    /// Whether a client segment is for a managed service on this node or
    /// the VIP.
    fn to_service(&self, tcp: &TcpFrame) -> bool {
        self.service_of(tcp).is_some()
    }

    fn service_of(&self, tcp: &TcpFrame) -> Option<ServiceKind> {
        if tcp.dst_addr != self.cfg.own_addr && Some(tcp.dst_addr) != self.cfg.vip {
            return None;
        }
        self.cfg
            .services
            .iter()
            .find(|(port, _)| *port == tcp.dst_port)
            .map(|&(_, kind)| kind)
    }
}

/// The IPv4/TCP frame in a parse, or None for anything else, which passes
/// through untouched. A frame whose headers do not parse (truncated, bad
/// lengths) is counted, then passed through too: the kernel or the next
/// hop decides what to do with it, as without Baton.
///
/// It lends the parse rather than moving it: a copy of the struct reads
/// it back in other widths than it was written in, which stalls the load
/// until the stores retire (about a third of a packet's time, measured).
#[inline(always)]
pub fn managed<'p>(
    parsed: &'p crate::packet::error::Result<Option<TcpFrame>>,
    counters: &WorkerCounters,
) -> Option<&'p TcpFrame> {
    match parsed {
        Ok(tcp) => tcp.as_ref(),
        Err(_) => {
            counters.add(Counter::MalformedPassed, 1);
            None
        }
    }
}
