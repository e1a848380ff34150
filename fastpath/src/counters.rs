//! Per-worker counters, every one named, shown by `baton stats`.
//!
//! Each counter is declared once below, with its name, its kind (frames,
//! bytes, connections, messages or a gauge) and what it counts. Each worker
//! owns one [`WorkerCounters`] and is its only writer, so an increment is a
//! relaxed load and store (no locked instruction); the control lcore reads
//! them at any time.

pub use baton_counters::Kind;

baton_counters::counters! {
    /// Everything a worker counts.
    pub enum Counter {
        /// Frames received on the wire port.
        WireRx => "wire_rx", packets;
        /// Frames sent on the wire port.
        WireTx => "wire_tx", packets;
        /// Frames received from the host port.
        HostRx => "host_rx", packets;
        /// Frames sent to the host port.
        HostTx => "host_tx", packets;
        /// Dropped: the wire port's TX ring stayed full.
        DropWireTxFull => "drop_wire_tx_full", packets, drop;
        /// Dropped: the host port's TX ring stayed full (the kernel is not reading).
        DropHostTxFull => "drop_host_tx_full", packets, drop;
        /// New client connections to a managed service (handshakes that made a flow).
        ConnsSeen => "conns_seen", connections;
        /// Connections whose first request was served by this node's own kernel.
        ServedLocal => "served_local", connections;
        /// Connections handed to another node (its accept received).
        HandedOff => "handed_off", connections;
        /// Connections taken over from another node.
        HandedIn => "handed_in", connections;
        /// Handoffs a peer refused.
        HandoffRejected => "handoff_rejected", connections;
        /// Handoffs not answered in time.
        HandoffTimedOut => "handoff_timed_out", connections;
        /// Handoffs tried again with the next node the policy picks, after
        /// one failed (refused, timed out, its channel down).
        HandoffsRetried => "handoffs_retried", connections;
        /// Connections served locally after a handoff was tried and failed
        /// (refused, timed out, its channel down), this node being a member
        /// of the request's pool.
        FellBack => "fell_back", connections;
        /// Requests on a routed connection for another node than its
        /// owner: the connection moves at the response boundary.
        MovesStarted => "moves_started", connections;
        /// Moves whose request a new owner took (a peer, or this node).
        MovesCompleted => "moves_completed", connections;
        /// Time from a move's start to its new owner taking it, summed
        /// over `moves_completed`.
        MoveMicros => "move_micros", micros;
        /// Moves nobody could take: the client got a 503 in sequence.
        MovesRefused => "moves_refused", connections;
        /// Moves the owner could not make (the connection closes, or
        /// switched protocols): the request stayed with it.
        MovesStayed => "moves_stayed", connections;
        /// Connections this node gave up for a move, every response whole.
        ConnectionsReleased => "connections_released", connections;
        /// Moves asked of this node for connections that could not move.
        ReleasesRefused => "releases_refused", connections;
        /// Requests no node could serve (the pool's members all down or
        /// refusing, this node not one): the client got a `503 Service
        /// Unavailable` with `Retry-After` (HTTP) or a reset (TLS).
        RefusedUnavailable => "refused_unavailable", connections;
        /// Connections the client closed before sending a request: the
        /// kernel closes them, untracked.
        NoRequest => "no_request", connections;
        /// Requests still undecided at a hold limit (bytes, segments or time): served locally.
        HoldUndecided => "hold_undecided", connections;
        /// Requests that are not valid HTTP or TLS: served locally, unclassified.
        BadRequest => "bad_request", connections;
        /// Clients that reset while their connection was being handed off.
        ClientResetMidHandoff => "client_reset_mid_handoff", connections;
        /// Handed-off connections reset toward the client because their target went down.
        PeerDownResets => "peer_down_resets", connections;
        /// Handoffs this node refused because its kernel cannot take them: the
        /// port is no service here, the 4-tuple is in use, or the kernel reset
        /// the replayed SYN.
        KernelRefused => "kernel_refused", connections;
        /// Handoffs this node gave up on because its kernel did not answer the
        /// replayed SYN in time.
        ReplayTimedOut => "replay_timed_out", connections;
        /// Replayed SYNs sent again because the local kernel did not answer
        /// (its accept queue was full, say): after 100 ms, then doubling up to 400 ms.
        ReplaysRetransmitted => "replays_retransmitted", packets;
        /// Handed-off connections this node forgot (it restarted) and
        /// learned again from the peer that holds them.
        FlowsRecovered => "flows_recovered", connections;
        /// Connections handed here whose origin stayed away longer than
        /// `handoff.orphan_timeout_ms`: reset at both ends.
        OrphansReset => "orphans_reset", connections;
        /// Client packets forwarded to the node serving their connection.
        ForwardedToPeer => "forwarded_to_peer", packets;
        /// Packets translated for handed-in connections, both directions.
        TranslatedPackets => "translated_packets", packets;
        /// Bytes of those packets.
        TranslatedBytes => "translated_bytes", bytes;
        /// Flows forgotten after being idle too long.
        FlowsExpired => "flows_expired", connections;
        /// Connections not yet handed off or decided, evicted from a full flow
        /// table to make room (their held bytes go to the local kernel).
        FlowsEvicted => "flows_evicted", connections;
        /// New connections the full flow table could not take: passed to the
        /// local kernel untracked, and served here.
        TableFullUntracked => "table_full_untracked", connections;
        /// New connections on a 4-tuple the local kernel already serves for a
        /// connection handed here: the kernel answers them, untracked.
        TupleInUseUntracked => "tuple_in_use_untracked", connections;
        /// Handoffs refused because the flow table was full.
        HandoffsRefusedTableFull => "handoffs_refused_table_full", connections;
        /// Handoffs refused because this node drains (`baton drain`).
        HandoffsRefusedDraining => "handoffs_refused_draining", connections;
        /// Frames whose headers do not parse (truncated, bad lengths), passed
        /// through unchanged.
        MalformedPassed => "malformed_passed", packets;
        /// Client SYNs to a managed service remembered as half-open
        /// connections (apart from the flow table) until their handshake
        /// completes.
        HalfOpenCreated => "half_open_created", connections;
        /// Half-open connections whose handshake completed (the client
        /// acknowledged the kernel's SYN-ACK): they became flows.
        HalfOpenPromoted => "half_open_promoted", connections;
        /// Connections whose handshake ACK the local kernel did not get: its
        /// connection completes with the request's first segment instead, so
        /// one handed off never reaches this node's web server.
        HandshakesDeferred => "handshakes_deferred", connections;
        /// Half-open connections forgotten after `handoff.half_open_ms`
        /// without completing their handshake (spoofed SYNs, mostly).
        HalfOpenExpired => "half_open_expired", connections;
        /// Half-open connections forgotten to make room for newer ones (the
        /// table held `handoff.half_open`): should one still complete, the
        /// local kernel serves it, untracked.
        HalfOpenDropped => "half_open_dropped", connections;
        /// Flows in the table now (a gauge).
        FlowsActive => "flows_active", gauge;
        /// Half-open connections remembered now (a gauge).
        HalfOpenActive => "half_open_active", gauge;
        /// Handoffs waiting for an answer now (a gauge).
        HandoffsPending => "handoffs_pending", gauge;
        /// Connections this node handed off and forwards now (a gauge).
        HandedOffActive => "handed_off_active", gauge;
        /// Connections handed to this node, not yet over (a gauge).
        HandedInActive => "handed_in_active", gauge;
        /// 1 while this node drains (`baton drain`): it refuses new
        /// handoffs and its peers choose it for nothing new (a gauge).
        Draining => "draining", gauge;
        /// Dropped: a client frame with a bad IPv4 or TCP checksum, as the NIC
        /// reports it, or as Baton finds it on a frame that would change a
        /// connection's state (a SYN, FIN or RST, request bytes to hold).
        DropBadChecksum => "drop_bad_checksum", packets, drop;
        /// Dropped: a managed packet whose headers cannot be translated.
        DropUntranslatable => "drop_untranslatable", packets, drop;
        /// Dropped: a retransmission of request bytes already held.
        DropHeldDuplicate => "drop_held_duplicate", packets, drop;
        /// Dropped: request bytes beyond a gap while holding (the client resends them).
        DropHeldOutOfOrder => "drop_held_out_of_order", packets, drop;
        /// Dropped: client request bytes past a gap on a routed connection
        /// (requests are read in order; the client resends them).
        DropRequestGap => "drop_request_gap", packets, drop;
        /// Dropped: client packets while a handoff is pending, beyond what is
        /// queued for the target (the client resends them).
        DropWhilePending => "drop_while_pending", packets, drop;
        /// Dropped: the origin kernel's packets for a connection it no longer owns.
        DropStaleKernel => "drop_stale_kernel", packets, drop;
        /// Dropped: client packets for a handed-in connection not yet established.
        DropBeforeEstablished => "drop_before_established", packets, drop;
        /// Dropped: client packets to a connection being refused (after its 503 or reset).
        DropRefusing => "drop_refusing", packets, drop;
        /// Dropped: packets of a handed-in connection whose origin is gone, while it is reset.
        DropOrphaned => "drop_orphaned", packets, drop;
        /// Dropped: no packet buffer for a frame Baton builds.
        DropNoMbuf => "drop_no_mbuf", packets, drop;
        /// Dropped: a peer message for a connection Baton does not know.
        DropUnknownHandoff => "drop_unknown_handoff", messages, drop;
        /// Dropped: a message about a handoff whose client another worker
        /// owns. Always 0: messages are routed by their client.
        DropMisrouted => "drop_misrouted", messages, drop;
        /// Dropped: a client segment of no flow to a managed service while
        /// this node learns from its peers which connections they hold for
        /// it (just after it started); the client sends it again.
        DropRecovering => "drop_recovering", packets, drop;
        /// Events a flow's state machine could not accept in its state (a
        /// repeated Accept, say): counted, and the flow keeps its state.
        InvalidTransition => "invalid_transition", messages;
        /// Packets this worker passed to the worker that owns their flow.
        SteeredOut => "steered_out", packets;
        /// Packets other workers passed to this one, the owner of their flow.
        SteeredIn => "steered_in", packets;
        /// Dropped: the owning worker's steering ring was full.
        DropSteerRingFull => "drop_steer_ring_full", packets, drop;
        /// Messages for the control lcore that found its queue full, and
        /// waited in the worker's backlog.
        MessagesDeferred => "messages_deferred", messages;
        /// Dropped: a message for the control lcore found its queue full and
        /// the worker's backlog of 65,536 full too (the handoff it belongs
        /// to times out and is decided again), or, stopping, no control
        /// lcore.
        DropControlQueueFull => "drop_control_queue_full", messages, drop;
        /// Idle sleeps a frame on a port ended (`poll.wake = "packets"`).
        WokenByPacket => "woken_by_packet", packets;
        /// Idle sleeps of the packet wait a message from the control lcore
        /// ended.
        WokenByMessage => "woken_by_message", messages;
        /// Packet-wait system calls that failed: that sleep was a timed one.
        WakeErrors => "wake_errors", messages;
    }
}

/// One worker's counters, on cache lines of their own, and its handoff
/// latency histogram.
#[derive(Default)]
pub struct WorkerCounters {
    counters: baton_counters::OwnedCounters<Counter, { Counter::COUNT }>,
    /// From asking a peer to take a connection to its accept.
    pub handoff_latency: HandoffLatency,
}

impl std::ops::Deref for WorkerCounters {
    type Target = baton_counters::OwnedCounters<Counter, { Counter::COUNT }>;
    fn deref(&self) -> &Self::Target {
        &self.counters
    }
}

/// The time from a HandoffRequest to its HandoffAccept, per worker: one
/// event per accept (of a handoff, or of a move to a peer).
pub struct HandoffLatency(pub baton_counters::OwnedHistogram);

impl HandoffLatency {
    /// Its name without `baton_` or the unit.
    pub const NAME: &'static str = "handoff_latency";
    pub const HELP: &'static str = "Time from asking a peer to take a connection to its accept.";
    /// Bucket bounds, µs: a handoff within a LAN takes tens of µs to a few
    /// ms; the last bounds catch retransmitted requests and slow peers.
    pub const BOUNDS_MICROS: &'static [u64] = &[
        50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    ];
}

impl Default for HandoffLatency {
    fn default() -> Self {
        HandoffLatency(baton_counters::OwnedHistogram::new(Self::BOUNDS_MICROS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_drops_are_named_as_such() {
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
        for c in Counter::ALL {
            assert_eq!(c.is_drop(), c.name().starts_with("drop_"), "{}", c.name());
        }
    }

    /// The README's counters table names every counter, in a row of its
    /// own or shared with its pair (`wire_rx`, `wire_tx`).
    #[test]
    fn the_readme_documents_every_counter() {
        let readme = include_str!("../../README.md");
        let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
        for c in Counter::ALL {
            let name = format!("`{}`", c.name());
            assert!(
                rows.iter().any(|row| row
                    .split('|')
                    .nth(1)
                    .is_some_and(|cell| cell.contains(&name))),
                "README.md's counters table lacks {name}"
            );
        }
    }

    #[test]
    fn add_accumulates_and_snapshot_reports_it() {
        let c = WorkerCounters::default();
        c.add(Counter::WireRx, 3);
        c.add(Counter::WireRx, 4);
        c.add(Counter::DropHostTxFull, 2);
        assert_eq!(c.get(Counter::WireRx), 7);
        assert_eq!(c.drops(), 2);
        let snap = c.snapshot();
        assert_eq!(snap[0], ("wire_rx", 7));
        assert!(snap.contains(&("drop_host_tx_full", 2)));
    }

    #[test]
    fn dropped_messages_are_shown_but_not_summed_as_dropped_packets() {
        let c = WorkerCounters::default();
        c.add(Counter::DropUnknownHandoff, 3);
        c.add(Counter::DropControlQueueFull, 4);
        c.add(Counter::DropNoMbuf, 1);
        assert_eq!(c.drops(), 1);
        for m in [Counter::DropUnknownHandoff, Counter::DropControlQueueFull] {
            assert!(m.is_drop() && m.kind() == Kind::Messages);
        }
        let snap = c.snapshot();
        assert!(snap.contains(&("drop_control_queue_full", 4)));
    }

    #[test]
    fn gauges_are_set() {
        let c = WorkerCounters::default();
        c.set(Counter::FlowsActive, 5);
        c.set(Counter::FlowsActive, 2);
        assert_eq!(c.get(Counter::FlowsActive), 2);
        let gauges: Vec<_> = Counter::ALL
            .iter()
            .filter(|c| c.kind() == Kind::Gauge)
            .collect();
        assert_eq!(
            gauges,
            [
                &Counter::FlowsActive,
                &Counter::HalfOpenActive,
                &Counter::HandoffsPending,
                &Counter::HandedOffActive,
                &Counter::HandedInActive,
                &Counter::Draining
            ]
        );
    }
}
