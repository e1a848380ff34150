//! Flows set up without a handshake: for benchmarks and load tests, where
//! stateless generated traffic must find handed-off connections in place.

use std::time::Instant;

use crate::packet::{MacAddr, SeqNum, Translation};

use super::flow::{peer_index, FlowKey, Offsets, Role, TargetFlow, TargetSetup, TargetState};
use super::Engine;

impl Engine {
    /// Adds an origin connection already handed to peer `peer`, as a
    /// completed handoff leaves it: client packets go to that peer.
    /// `client_next`, the client's next sequence number when the caller
    /// knows it, lets even the first of them take the fast path.
    pub fn preload_forwarding(
        &mut self,
        key: FlowKey,
        peer: usize,
        client_mac: MacAddr,
        client_next: Option<SeqNum>,
        now: Instant,
    ) {
        let id = self.next_id();
        self.install_forwarding(key, peer, id, client_mac, client_next, now);
    }

    /// Adds a connection handed to this node by peer `origin` (its handoff
    /// `id`), established with `translation`. `key` is the connection as
    /// the client sees it; the translation's addresses are the address in
    /// `key` and this node's own.
    pub fn preload_handed_in(
        &mut self,
        key: FlowKey,
        origin: usize,
        id: u64,
        translation: Translation,
        client_mac: MacAddr,
        now: Instant,
    ) {
        let origin = peer_index(origin);
        let flow = TargetFlow {
            state: TargetState::Established,
            client_mac,
            offsets: Some(Offsets::of(&translation)),
            // Synthetic flows carry no HTTP to follow: the fast path
            // passes every kernel segment (it moves the mark along).
            watch: SeqNum::default() + (1 << 30),
            setup: Box::new(TargetSetup {
                origin,
                id,
                request: None,
                syns_sent: 0,
                client_next_seq: SeqNum::default(),
                exchange: None,
            }),
        };
        self.by_origin.insert((origin, id), key);
        let deadline = self.timers.deadline(now, self.cfg.idle_timeout);
        self.insert(key, deadline, Role::Target(flow));
    }
}
