//! Flows set up without a handshake: for benchmarks and load tests, where
//! stateless generated traffic must find handed-off connections in place.

use std::time::Instant;

use crate::packet::{MacAddr, Translation};

use super::flow::{FlowKey, Handoff, OriginFlow, OriginState, Role, TargetFlow, TargetState};
use super::{socket, Engine, ServiceKind};

impl Engine {
    /// Adds an origin connection already handed to peer `peer`, as a
    /// completed handoff leaves it: client packets go to that peer.
    pub fn preload_forwarding(
        &mut self,
        key: FlowKey,
        peer: usize,
        client_mac: MacAddr,
        now: Instant,
    ) {
        let id = self.next_id();
        let flow = OriginFlow {
            state: OriginState::Forwarding,
            handoff: Some(Handoff { peer, id }),
            kind: ServiceKind::Http,
            client_mac,
            isn_client: 0,
            client_syn_options: Vec::new(),
            isn_origin: Some(0),
            origin_synack_options: Vec::new(),
            origin_tsval: None,
            client_window: 0,
            client_tsval: None,
            client_ack: 0,
            held: Vec::new(),
            held_frames: Vec::new(),
            queued: Vec::new(),
            requested_at: None,
        };
        self.by_id.insert(id, key);
        let deadline = now + self.cfg.idle_timeout;
        self.insert(key, deadline, Role::Origin(Box::new(flow)));
    }

    /// Adds a connection handed to this node by peer `origin` (its handoff
    /// `id`), established with `translation`. `key` is the connection as
    /// the client sees it.
    pub fn preload_handed_in(
        &mut self,
        key: FlowKey,
        origin: usize,
        id: u64,
        translation: Translation,
        client_mac: MacAddr,
        now: Instant,
    ) {
        let kernel_key = FlowKey {
            client: key.client,
            server: socket(self.cfg.own_addr, key.server.port()),
        };
        let flow = TargetFlow {
            state: TargetState::Established,
            origin,
            id,
            kernel_key,
            client_mac,
            translation: Some(translation),
            request: None,
            client_next_seq: 0,
        };
        self.by_origin.insert((origin, id), key);
        self.insert_kernel_side(kernel_key, key);
        let deadline = now + self.cfg.idle_timeout;
        self.insert(key, deadline, Role::Target(flow));
    }
}
