//! A connection replayed into the local kernel at its current sequence
//! numbers: the client's SYN (its ISN, or one before the held request, and
//! its original options), the kernel's SYN-ACK, and the request bytes Baton
//! injects in the client's place (their first segment acknowledges the
//! SYN-ACK); then every packet translated
//! between the kernel's space and the client's. A target does it for every
//! connection handed in; an origin does it when a connection moves back to
//! it.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use baton_handoff::msg::HandoffRequest;

use super::api::Verdict;
use super::drive::Carried;
use super::flow::{FlowKey, Offsets};
use super::frames::{self, Segment, SEGMENT_PAYLOAD};
use super::parts::Parts;
use crate::counters::Counter;
use crate::packet::tcp_options::SynOptions;
use crate::packet::{
    EthernetFrame, MacAddr, SeqNum, TcpFlags, TcpFrame, TsOffset, Verdict as Translated,
};

/// The replayed SYN's first retransmission timeout, doubling after each up
/// to [`REPLAY_RTO_MAX`]. A client's kernel starts at 1 s
/// (`TCP_TIMEOUT_INIT`) and doubles without bound because it knows nothing
/// of the path; the replay's path is this host's own port, where a SYN is
/// lost only to a full accept queue. That queue has room again the moment
/// the server accepts (milliseconds), and every other connection's
/// retransmissions compete for it, so what wins a slot is asking often: a
/// backed-off schedule (it was 250 ms doubling, four SYNs in the default
/// 3 s budget) lost that lottery to a server kept busy by sixteen
/// connections about once in 1,700 handoffs. A dropped SYN costs
/// the kernel a table lookup.
const REPLAY_RTO: Duration = Duration::from_millis(100);

/// The longest wait between two replayed SYNs: nine SYNs within the
/// default budget (at 0, 0.1, 0.3, 0.7, 1.1 ... 2.7 s).
const REPLAY_RTO_MAX: Duration = Duration::from_millis(400);

/// When a replay that has sent `syns_sent` SYNs acts next, and whether
/// that is another SYN: the n-th SYN goes after n - 1 waits of
/// [`REPLAY_RTO`], doubling up to [`REPLAY_RTO_MAX`], while it falls
/// within the budget; then the budget's end ends the replay.
pub(super) fn schedule(budget: Duration, syns_sent: u8) -> (Duration, bool) {
    // The wait after the (k + 1)-th SYN.
    let wait = |k: u32| (REPLAY_RTO * (1u32 << k.min(8))).min(REPLAY_RTO_MAX);
    let sent = u32::from(syns_sent.max(1));
    let last: Duration = (0..sent - 1).map(wait).sum();
    let next = last + wait(sent - 1);
    if next < budget {
        (next - last, true)
    } else {
        (budget.saturating_sub(last), false)
    }
}

/// Where a replay goes: the client (its address and MAC), and the local
/// kernel's side (this node's MAC, and the address the kernel sees).
#[derive(Clone, Copy)]
pub(super) struct Ends {
    pub client: SocketAddrV4,
    pub client_mac: MacAddr,
    pub kernel: SocketAddrV4,
    pub own_mac: MacAddr,
}

/// The client's SYN, as the client sent it to the origin, addressed to the
/// kernel's side.
pub(super) fn syn(req: &HandoffRequest, ends: Ends) -> Vec<u8> {
    frames::build(&Segment {
        src_mac: ends.client_mac,
        dst_mac: ends.own_mac,
        src: ends.client,
        dst: ends.kernel,
        seq: req.isn_client,
        ack: SeqNum::default(),
        flags: TcpFlags::SYN,
        window: req.client_window,
        options: &req.client_syn_options,
        payload: &[],
    })
}

/// The kernel answered the replayed SYN with `synack` (parsed as `seg`):
/// the translation between its space and the client's, and the frames to
/// inject in the client's place (the request bytes; a bare ACK when there
/// are none).
pub(super) fn complete(
    req: &HandoffRequest,
    synack: &[u8],
    seg: &TcpFrame,
    ends: Ends,
) -> (Offsets, Vec<Vec<u8>>) {
    let isn_kernel = seg.seq;
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
    let offsets = Offsets::new(
        req.isn_origin - isn_kernel,
        ts_offset,
        shift(kernel.window_scale),
        shift(origin.window_scale),
    );
    let options = match (req.client_tsval, kernel.tsval) {
        (Some(client_ts), Some(kernel_ts)) => frames::timestamps(client_ts, kernel_ts),
        _ => Vec::new(),
    };
    let segment = |seq: SeqNum, flags: TcpFlags, payload: &[u8]| {
        frames::build(&Segment {
            src_mac: ends.client_mac,
            dst_mac: ends.own_mac,
            src: ends.client,
            dst: ends.kernel,
            seq,
            ack: isn_kernel + 1,
            flags,
            window: req.client_window,
            options: &options,
            payload,
        })
    };
    let first = req.isn_client + 1;
    // The request's first segment completes the kernel's handshake: a bare
    // ACK before it would only be one more packet for the kernel to take.
    let mut out: Vec<Vec<u8>> = req
        .held
        .chunks(SEGMENT_PAYLOAD)
        .enumerate()
        .map(|(i, chunk)| {
            let seq = first.add_len(i * SEGMENT_PAYLOAD);
            segment(seq, TcpFlags::ACK | TcpFlags::PSH, chunk)
        })
        .collect();
    if out.is_empty() {
        out.push(segment(first, TcpFlags::ACK, &[]));
    }
    (offsets, out)
}

/// A replayed connection's kernel packet, into the client's space, sent to
/// the client from the address it connected to.
#[inline]
pub(super) fn to_client(
    offsets: Offsets,
    parts: &Parts<'_>,
    wire_key: &FlowKey,
    kernel_addr: Ipv4Addr,
    client_mac: MacAddr,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Carried {
    let translation = offsets.translation(wire_key, kernel_addr);
    if translation.target_to_client_parsed(frame, seg) != Translated::Translated {
        parts.count(Counter::DropUntranslatable, 1);
        return Err(Verdict::Drop);
    }
    if let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) {
        eth.set_src_addr(parts.cfg.own_mac);
        eth.set_dst_addr(client_mac);
    }
    parts.count(Counter::TranslatedPackets, 1);
    parts.count(Counter::TranslatedBytes, frame.len() as u64);
    Ok(Some(Verdict::ToWire))
}

/// A client packet of a replayed connection, into the kernel's space.
#[inline]
pub(super) fn to_kernel(
    offsets: Offsets,
    parts: &Parts<'_>,
    wire_key: &FlowKey,
    kernel_addr: Ipv4Addr,
    frame: &mut [u8],
    seg: &TcpFrame,
) -> Carried {
    let translation = offsets.translation(wire_key, kernel_addr);
    if translation.client_to_target_parsed(frame, seg) != Translated::Translated {
        parts.count(Counter::DropUntranslatable, 1);
        return Err(Verdict::Drop);
    }
    parts.count(Counter::TranslatedPackets, 1);
    parts.count(Counter::TranslatedBytes, frame.len() as u64);
    Ok(Some(Verdict::ToHost))
}

/// Where a client segment ends in sequence space (its FIN counts).
pub(super) fn segment_end(seg: &TcpFrame) -> SeqNum {
    let fin = u32::from(seg.flags.contains(TcpFlags::FIN));
    seg.seq.add_len(seg.payload_len()) + fin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_syns_go_at_doubling_intervals_up_to_a_cap_within_the_budget() {
        let ms = Duration::from_millis;
        let budget = ms(3000);
        // SYNs at 0, 100, 300, 700, 1100, 1500, 1900, 2300 and 2700 ms; the
        // next would be at 3100.
        let waits: Vec<_> = (1..=9).map(|n| schedule(budget, n)).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 400, 400, 400, 400, 400]
                .map(|w| (ms(w), true))
                .into_iter()
                .chain([(ms(300), false)])
                .collect::<Vec<_>>()
        );
        // A budget shorter than one RTO is one SYN and the timeout.
        assert_eq!(schedule(ms(80), 1), (ms(80), false));
        // Many SYNs in a long budget: the wait stays at the cap.
        assert_eq!(schedule(ms(10_000), 20), (ms(400), true));
    }
}
