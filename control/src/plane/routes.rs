//! Which worker handles each handoff's messages.
//!
//! A handoff this node started belongs to the worker that sent its request;
//! one handed to this node belongs to the worker that owns the client's
//! flow. A handoff is named by its peer and the id its origin chose.

use std::collections::HashMap;

use baton_handoff::workers::owner_of;
use baton_handoff::Message;

/// The worker that gets a message no route names: it counts the message
/// as unknown and drops it.
const NO_ROUTE: usize = 0;

#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// (peer, id) of handoffs this node started → worker.
    started: HashMap<(usize, u64), usize>,
    /// (peer, id) of handoffs handed to this node → worker.
    taken: HashMap<(usize, u64), usize>,
}

impl Routes {
    /// Notes a worker's message to `peer`.
    pub(crate) fn outgoing(&mut self, worker: usize, peer: usize, msg: &Message) {
        match msg {
            Message::HandoffRequest(r) => {
                self.started.insert((peer, r.id), worker);
            }
            // A target is done with a handoff, or refused it.
            Message::HandoffReject(r) => {
                self.taken.remove(&(peer, r.id));
            }
            Message::HandoffClosed(c) => {
                if self.taken.remove(&(peer, c.id)).is_none() {
                    self.started.remove(&(peer, c.id));
                }
            }
            Message::HandoffAccept(_) | Message::Load(_) => {}
        }
    }

    /// The worker, among `workers`, for a message from `peer` (never Load,
    /// which goes to all).
    pub(crate) fn incoming(&mut self, peer: usize, msg: &Message, workers: usize) -> usize {
        match msg {
            Message::HandoffRequest(r) => {
                let client = r.key.client;
                let worker = owner_of(u32::from(*client.ip()), client.port(), workers);
                self.taken.insert((peer, r.id), worker);
                worker
            }
            Message::HandoffAccept(a) => {
                self.started.get(&(peer, a.id)).copied().unwrap_or(NO_ROUTE)
            }
            Message::HandoffReject(r) => self.started.remove(&(peer, r.id)).unwrap_or(NO_ROUTE),
            Message::HandoffClosed(c) => self
                .started
                .remove(&(peer, c.id))
                .or_else(|| self.taken.remove(&(peer, c.id)))
                .unwrap_or(NO_ROUTE),
            Message::Load(_) => NO_ROUTE,
        }
    }

    /// A peer went down: every worker hears of it and cleans up its flows.
    pub(crate) fn forget_peer(&mut self, peer: usize) {
        self.started.retain(|(p, _), _| *p != peer);
        self.taken.retain(|(p, _), _| *p != peer);
    }

    /// Handoffs with a route.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.started.len() + self.taken.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use baton_handoff::{
        FlowKey, HandoffAccept, HandoffClosed, HandoffReject, HandoffRequest, Load, RejectReason,
    };

    use super::*;
    use baton_handoff::msg::SeqNum;

    const WORKERS: usize = 4;
    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

    fn request(id: u64, client_port: u16) -> Message {
        Message::HandoffRequest(HandoffRequest {
            id,
            key: FlowKey {
                client: SocketAddrV4::new(CLIENT, client_port),
                server: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 11), 80),
            },
            client_mac: [2, 0, 0, 0, 0, 0x64],
            isn_client: SeqNum::new(1),
            isn_origin: SeqNum::new(2),
            client_syn_options: Vec::new(),
            origin_synack_options: Vec::new(),
            client_window: 1024,
            client_tsval: None,
            origin_tsval: None,
            held: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        })
    }

    fn accept(id: u64) -> Message {
        Message::HandoffAccept(HandoffAccept {
            id,
            isn_target: SeqNum::new(3),
        })
    }

    fn reject(id: u64) -> Message {
        Message::HandoffReject(HandoffReject {
            id,
            reason: RejectReason::Overloaded,
        })
    }

    fn closed(id: u64) -> Message {
        Message::HandoffClosed(HandoffClosed { id })
    }

    /// A client port whose flows a worker other than `NO_ROUTE` owns, so
    /// that a route and the lack of one can be told apart.
    fn port_owned_elsewhere() -> (u16, usize) {
        (40000..)
            .map(|port| (port, owner_of(u32::from(CLIENT), port, WORKERS)))
            .find(|&(_, w)| w != NO_ROUTE)
            .unwrap()
    }

    #[test]
    fn answers_to_a_handoff_this_node_started_go_to_the_worker_that_asked() {
        let mut r = Routes::default();
        r.outgoing(3, 1, &request(7, 40000));
        assert_eq!(r.incoming(1, &accept(7), WORKERS), 3);
        assert_eq!(
            r.incoming(1, &closed(7), WORKERS),
            3,
            "the target closes it"
        );
        assert_eq!(r.len(), 0);
        assert_eq!(r.incoming(1, &closed(7), WORKERS), NO_ROUTE, "forgotten");

        r.outgoing(2, 1, &request(8, 40000));
        assert_eq!(r.incoming(1, &reject(8), WORKERS), 2);
        assert_eq!(r.len(), 0, "a reject ends it");

        r.outgoing(2, 1, &request(9, 40000));
        r.outgoing(2, 1, &closed(9));
        assert_eq!(r.len(), 0, "the origin gave up on it");
    }

    #[test]
    fn a_handoff_to_this_node_goes_to_the_owner_of_the_clients_flow() {
        let (port, owner) = port_owned_elsewhere();
        let mut r = Routes::default();
        assert_eq!(r.incoming(0, &request(5, port), WORKERS), owner);
        assert_eq!(
            r.incoming(0, &closed(5), WORKERS),
            owner,
            "the origin gives up"
        );
        assert_eq!(r.len(), 0);

        r.incoming(0, &request(6, port), WORKERS);
        r.outgoing(owner, 0, &accept(6));
        assert_eq!(r.len(), 1, "an accept keeps the route");
        r.outgoing(owner, 0, &closed(6));
        assert_eq!(r.len(), 0, "this node closed it");

        r.incoming(0, &request(7, port), WORKERS);
        r.outgoing(owner, 0, &reject(7));
        assert_eq!(r.len(), 0, "this node refused it");
        assert_eq!(r.incoming(0, &closed(7), WORKERS), NO_ROUTE);
    }

    #[test]
    fn handoffs_are_named_by_peer_and_id() {
        let mut r = Routes::default();
        r.outgoing(1, 0, &request(7, 40000));
        r.outgoing(2, 1, &request(7, 40000));
        assert_eq!(r.incoming(0, &accept(7), WORKERS), 1);
        assert_eq!(r.incoming(1, &accept(7), WORKERS), 2);
        assert_eq!(
            r.incoming(2, &accept(7), WORKERS),
            NO_ROUTE,
            "no such peer's"
        );
    }

    #[test]
    fn messages_no_route_names_go_to_the_default_worker() {
        let mut r = Routes::default();
        for msg in [
            accept(1),
            reject(1),
            closed(1),
            Message::Load(Load::default()),
        ] {
            assert_eq!(r.incoming(0, &msg, WORKERS), NO_ROUTE, "{msg:?}");
        }
        r.outgoing(1, 0, &Message::Load(Load::default()));
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn forgetting_a_peer_drops_its_routes_only() {
        let (port, _) = port_owned_elsewhere();
        let mut r = Routes::default();
        r.outgoing(3, 0, &request(1, 40000));
        r.incoming(0, &request(2, port), WORKERS);
        r.outgoing(3, 1, &request(1, 40000));
        r.incoming(1, &request(2, port), WORKERS);
        r.forget_peer(0);
        assert_eq!(r.len(), 2);
        assert_eq!(r.incoming(0, &accept(1), WORKERS), NO_ROUTE);
        assert_eq!(r.incoming(1, &accept(1), WORKERS), 3);
        r.forget_peer(1);
        assert_eq!(r.len(), 0);
    }
}
