//! What the peer channels count, for each peer and in total over all of
//! them (the total also holds what no one peer can be blamed for).

use baton_counters::{SharedCounters, Values};

baton_counters::counters! {
    /// Every counter of the peer channels. `baton stats` shows their totals.
    pub enum PeerCounter {
        /// Configured peers (for one peer: 1).
        Peers => "peer_peers", gauge;
        /// Peers Up now (for one peer: whether it is).
        PeersUp => "peer_peers_up", gauge;
        /// Peers Up but suspect now: not heard from for `suspect_after`.
        PeersSuspect => "peer_peers_suspect", gauge;
        /// Times a peer became suspect (no new handoffs go to it).
        Suspected => "peer_suspected", connections;
        /// Times a suspect peer was heard from again before it was dead.
        Recovered => "peer_recovered", connections;
        /// Application frames received (heartbeats not included).
        FramesIn => "peer_frames_in", messages;
        /// Application frames sent (heartbeats not included).
        FramesOut => "peer_frames_out", messages;
        /// Bytes of the application frames received.
        BytesIn => "peer_bytes_in", bytes;
        /// Bytes of the application frames sent.
        BytesOut => "peer_bytes_out", bytes;
        /// Dropped: frames accepted by `send` but discarded because the
        /// connection went down before they were written.
        FramesDropped => "peer_frames_dropped", messages, drop;
        /// Handshakes that failed (wrong key, wrong name, timeout). The
        /// total includes failed inbound handshakes that named no
        /// configured peer (wrong key, garbage, strangers).
        HandshakeFailures => "peer_handshake_failures", connections;
        /// Control connections closed unheard: the address of a configured
        /// peer already had all its handshakes in progress.
        RefusedPeerSlots => "peer_refused_peer_slots", connections, drop;
        /// Control connections closed unheard: their address, no
        /// configured peer's, already had all its handshakes in progress.
        RefusedPerSource => "peer_refused_per_source", connections, drop;
        /// Control connections closed unheard: addresses of no configured
        /// peer held every handshake strangers may hold.
        RefusedStrangers => "peer_refused_strangers", connections, drop;
        /// Control connections closed unheard: no thread for the handshake.
        RefusedNoThread => "peer_refused_no_thread", connections, drop;
        /// Connections the listener failed to accept (e.g. out of file
        /// descriptors).
        AcceptFailures => "peer_accept_failures", connections;
        /// Dials that did not reach the peer at all.
        ConnectFailures => "peer_connect_failures", connections;
        /// Connections closed because of an undecryptable or malformed
        /// message.
        BadFrames => "peer_bad_frames", connections;
        /// Connections closed because the peer was silent for `dead_after`.
        DeadTimeouts => "peer_dead_timeouts", connections;
        /// Times the peer came Up again after its first connection.
        Reconnects => "peer_reconnects", connections;
    }
}

/// The peer counters' values, of one peer or in total.
pub type PeerValues = Values<PeerCounter, { PeerCounter::COUNT }>;

/// The cells the background threads count in: a peer's link, reader and
/// the listener all add to the same peer's.
pub(crate) type PeerCells = SharedCounters<PeerCounter, { PeerCounter::COUNT }>;
