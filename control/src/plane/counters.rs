//! What the control plane counts of its own work, beside the peer
//! channels' counters.

use baton_counters::OwnedCounters;

baton_counters::counters! {
    /// Every counter of the control plane.
    pub enum ControlCounter {
        /// Messages from peers that decoded, whatever they were.
        MessagesIn => "control_messages_in", messages;
        /// Of those, the messages a worker or the peer's reader thread read
        /// and handed to their worker itself, past the control lcore.
        MessagesInDirect => "control_messages_in_direct", messages;
        /// Messages queued for peers: the workers' and this node's load.
        MessagesOut => "control_messages_out", messages;
        /// Of those, the workers' messages that the worker wrote to the
        /// peer's channel itself, past the control lcore.
        MessagesOutDirect => "control_messages_out_direct", messages;
        /// Frames from a peer that decrypted but are not one valid message:
        /// the peer is reset.
        BadMessages => "control_bad_messages", messages, drop;
        /// Messages for a peer that could not be queued: it was down, or
        /// its backlog was full too; a load announcement that found its
        /// queue full.
        SendFailures => "control_send_failures", messages, drop;
        /// Messages that found their peer's send queue full, and waited in
        /// its backlog (they are in `messages_out` once queued).
        SendsDeferred => "control_sends_deferred", messages;
        /// Messages waiting in the peers' and the workers' backlogs now.
        Backlog => "control_backlog", gauge;
        /// Messages for a worker lost: its inbox was full, and so was its
        /// backlog; or a peer's load that found the inbox full.
        WorkerQueueFull => "control_worker_queue_full", messages, drop;
        /// Messages for a worker that found its inbox full, and waited in
        /// its backlog.
        WorkerQueueDeferred => "control_worker_queue_deferred", messages;
        /// Times this node began to drain (`baton drain`).
        DrainsStarted => "control_drains_started", connections;
        /// Times this node stopped draining (`baton drain --undo`).
        DrainsEnded => "control_drains_ended", connections;
        /// Configurations applied by `baton reload` or SIGHUP.
        ReloadsApplied => "control_reloads_applied", messages;
        /// Reloads refused: the file was invalid, or changed what only a
        /// restart changes; the running configuration stayed.
        ReloadsRefused => "control_reloads_refused", messages;
    }
}

/// The control plane's counters; the control lcore is their only writer.
pub(crate) type ControlCounters = OwnedCounters<ControlCounter, { ControlCounter::COUNT }>;
