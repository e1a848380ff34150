//! Per-worker counters, every one named, shown by `baton stats`.
//!
//! Each worker owns one [`WorkerCounters`] and is its only writer, so an
//! increment is a relaxed load and store (no locked instruction); the control
//! lcore reads them at any time.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[doc = $doc:expr])* $variant:ident => $name:literal, $drop:literal; )*) => {
        /// Everything a worker counts.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Counter {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Counter {
            /// Every counter, in display order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant,)*];

            /// The name `baton stats` shows.
            pub fn name(self) -> &'static str {
                match self { $(Counter::$variant => $name,)* }
            }

            /// Whether this counts packets that were dropped.
            pub fn is_drop(self) -> bool {
                match self { $(Counter::$variant => $drop,)* }
            }
        }
    };
}

counters! {
    /// Frames received on the wire port.
    WireRx => "wire_rx", false;
    /// Frames sent on the wire port.
    WireTx => "wire_tx", false;
    /// Frames received from the host port.
    HostRx => "host_rx", false;
    /// Frames sent to the host port.
    HostTx => "host_tx", false;
    /// Dropped: the wire port's TX ring stayed full.
    DropWireTxFull => "drop_wire_tx_full", true;
    /// Dropped: the host port's TX ring stayed full (the kernel is not reading).
    DropHostTxFull => "drop_host_tx_full", true;
    /// New client connections to a managed service (SYNs that made a flow).
    ConnsSeen => "conns_seen", false;
    /// Connections whose first request was served by this node's own kernel.
    ServedLocal => "served_local", false;
    /// Connections handed to another node (its accept received).
    HandedOff => "handed_off", false;
    /// Connections taken over from another node.
    HandedIn => "handed_in", false;
    /// Handoffs a peer refused.
    HandoffRejected => "handoff_rejected", false;
    /// Handoffs not answered in time.
    HandoffTimedOut => "handoff_timed_out", false;
    /// Connections served locally after a handoff was tried (reject, timeout, peer down).
    FellBack => "fell_back", false;
    /// Requests still undecided at a hold limit (bytes, segments or time): served locally.
    HoldUndecided => "hold_undecided", false;
    /// Requests that are not valid HTTP or TLS: served locally, unclassified.
    BadRequest => "bad_request", false;
    /// Clients that reset while their connection was being handed off.
    ClientResetMidHandoff => "client_reset_mid_handoff", false;
    /// Handed-off connections reset toward the client because their target went down.
    PeerDownResets => "peer_down_resets", false;
    /// Handoffs this node refused because its kernel cannot take them: the
    /// port is no service here, the 4-tuple is in use, or the kernel reset
    /// the replayed SYN.
    KernelRefused => "kernel_refused", false;
    /// Handoffs this node gave up on because its kernel did not answer the
    /// replayed SYN in time.
    ReplayTimedOut => "replay_timed_out", false;
    /// Client packets forwarded to the node serving their connection.
    ForwardedToPeer => "forwarded_to_peer", false;
    /// Packets translated for handed-in connections, both directions.
    TranslatedPackets => "translated_packets", false;
    /// Bytes of those packets.
    TranslatedBytes => "translated_bytes", false;
    /// Flows forgotten after being idle too long.
    FlowsExpired => "flows_expired", false;
    /// Connections not yet handed off or decided, evicted from a full flow
    /// table to make room (their held bytes go to the local kernel).
    FlowsEvicted => "flows_evicted", false;
    /// New connections the full flow table could not take: passed to the
    /// local kernel untracked, and served here.
    TableFullUntracked => "table_full_untracked", false;
    /// New connections on a 4-tuple the local kernel already serves for a
    /// connection handed here: the kernel answers them, untracked.
    TupleInUseUntracked => "tuple_in_use_untracked", false;
    /// Handoffs refused because the flow table was full.
    HandoffsRefusedTableFull => "handoffs_refused_table_full", false;
    /// Frames whose headers do not parse (truncated, bad lengths), passed
    /// through unchanged.
    MalformedPassed => "malformed_passed", false;
    /// Flows in the table now (a gauge).
    FlowsActive => "flows_active", false;
    /// Handoffs waiting for an answer now (a gauge).
    HandoffsPending => "handoffs_pending", false;
    /// Dropped: a client frame with a bad IPv4 or TCP checksum, as the NIC
    /// reports it, or as Baton finds it on a frame that would change a
    /// connection's state (a SYN, FIN or RST, request bytes to hold).
    DropBadChecksum => "drop_bad_checksum", true;
    /// Dropped: a managed packet whose headers cannot be translated.
    DropUntranslatable => "drop_untranslatable", true;
    /// Dropped: a retransmission of request bytes already held.
    DropHeldDuplicate => "drop_held_duplicate", true;
    /// Dropped: request bytes beyond a gap while holding (the client resends them).
    DropHeldOutOfOrder => "drop_held_out_of_order", true;
    /// Dropped: client packets while a handoff is pending, beyond what is
    /// queued for the target or when it falls back (the client resends them).
    DropWhilePending => "drop_while_pending", true;
    /// Dropped: the origin kernel's packets for a connection it no longer owns.
    DropStaleKernel => "drop_stale_kernel", true;
    /// Dropped: client packets for a handed-in connection not yet established.
    DropBeforeEstablished => "drop_before_established", true;
    /// Dropped: no packet buffer for a frame Baton builds.
    DropNoMbuf => "drop_no_mbuf", true;
    /// Dropped: a peer message for a connection Baton does not know.
    DropUnknownHandoff => "drop_unknown_handoff", true;
    /// Events a flow's state machine could not accept in its state (a
    /// repeated Accept, say): counted, and the flow keeps its state.
    InvalidTransition => "invalid_transition", false;
    /// Packets this worker passed to the worker that owns their flow.
    SteeredOut => "steered_out", false;
    /// Packets other workers passed to this one, the owner of their flow.
    SteeredIn => "steered_in", false;
    /// Dropped: the owning worker's steering ring was full.
    DropSteerRingFull => "drop_steer_ring_full", true;
    /// Dropped: a message for the control lcore found its queue full (the
    /// handoff it belongs to times out and is served locally).
    DropControlQueueFull => "drop_control_queue_full", true;
}

const COUNT: usize = Counter::ALL.len();

/// One worker's counters, on cache lines of their own.
#[repr(align(64))]
pub struct WorkerCounters {
    values: [AtomicU64; COUNT],
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WorkerCounters {
    /// Adds `n` to `counter`. Call only from the owning worker.
    #[inline]
    pub fn add(&self, counter: Counter, n: u64) {
        let cell = &self.values[counter as usize];
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Sets a gauge. Call only from the owning worker.
    #[inline]
    pub fn set(&self, counter: Counter, value: u64) {
        self.values[counter as usize].store(value, Ordering::Relaxed);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize].load(Ordering::Relaxed)
    }

    /// Every counter by name, in display order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Counter::ALL
            .iter()
            .map(|&c| (c.name(), self.get(c)))
            .collect()
    }

    /// All packets dropped, whatever the reason.
    pub fn drops(&self) -> u64 {
        Counter::ALL
            .iter()
            .filter(|c| c.is_drop())
            .map(|&c| self.get(c))
            .sum()
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
}
