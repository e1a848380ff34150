//! A node's workers as the handoff sees them: which worker owns a
//! connection, and what the control lcore and the workers tell each other.
//!
//! Both sides need this: the workers steer packets to a flow's owner, and
//! the control lcore sends a handoff request to the worker that owns the
//! client's flow. It is plain data and a pure function, so it lives with
//! the protocol rather than with either side.

use crate::msg::{Load, Message};

/// The most workers a node may run: a handoff id names its worker in one
/// byte.
pub const MAX_WORKERS: usize = 256;

/// The bits of a handoff id below the worker's byte.
const SERIAL_BITS: u32 = 56;

/// The id of a handoff worker `worker` starts, its `serial`-th: unique
/// per node whatever its number of workers, and naming the worker every
/// answer must reach. A worker starts its serials at the clock in
/// microseconds and takes one per handoff, far fewer than a microsecond
/// brings, so a restarted node never reuses the id of a connection it
/// handed off before (2^56 microseconds is over two thousand years).
pub fn handoff_id(worker: usize, serial: u64) -> u64 {
    debug_assert!(worker < MAX_WORKERS);
    ((worker as u64 & 0xff) << SERIAL_BITS) | (serial & ((1 << SERIAL_BITS) - 1))
}

/// The worker that started handoff `id` (see [`handoff_id`]).
pub fn worker_of(id: u64) -> usize {
    (id >> SERIAL_BITS) as usize
}

/// The worker of this node that a message from a peer is for: the one
/// that started the handoff an answer is about, or the one that owns (or
/// will own) the client's flow of a handoff handed here. None for a load
/// report, which is for every worker, and for an answer naming a worker
/// this node does not have.
pub fn route(msg: &Message, workers: usize) -> Option<usize> {
    let owner =
        |client: std::net::SocketAddrV4| owner_of(u32::from(*client.ip()), client.port(), workers);
    let started_by = |id: u64| Some(worker_of(id)).filter(|&w| w < workers);
    match msg {
        Message::HandoffRequest(r) => Some(owner(r.key.client)),
        Message::HandoffCancel(c) => Some(owner(c.client)),
        Message::HandoffAccept(a) => started_by(a.id),
        Message::HandoffReject(r) => started_by(r.id),
        Message::HandoffClosed(c) => started_by(c.id),
        Message::Load(_) => None,
    }
}

/// The owner of a client's flows among `workers` (DESIGN §4): a flow
/// belongs to exactly one worker, `hash(client address, client port) mod
/// workers`, which both directions of the flow can compute.
#[inline]
pub fn owner_of(client_addr: u32, client_port: u16, workers: usize) -> usize {
    let key = (u64::from(client_addr) << 16) | u64::from(client_port);
    // Fibonacci hashing: the high bits of the product are well mixed.
    let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    (mixed % workers as u64) as usize
}

/// From the control lcore to a worker.
#[derive(Debug)]
pub enum ToWorker {
    Message { peer: usize, msg: Message },
    PeerUp(usize),
    PeerDown(usize),
}

/// From a worker to the control lcore.
#[derive(Debug)]
pub enum FromWorker {
    /// A message for a peer. (Answers find their way back by what they
    /// name: see [`route`].)
    Message { peer: usize, msg: Message },
    /// A worker's load, reported now and then.
    Load { worker: usize, load: Load },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoff_ids_name_their_worker_and_answers_reach_it() {
        use crate::msg::{
            HandoffAccept, HandoffCancel, HandoffClosed, HandoffReject, RejectReason,
        };
        use crate::seq::SeqNum;
        let serial = 1_764_620_000_000_000; // a clock in microseconds
        for worker in [0, 1, 7, 255] {
            let id = handoff_id(worker, serial);
            assert_eq!(worker_of(id), worker);
            assert_eq!(id & ((1 << 56) - 1), serial);
        }
        // Two workers never share an id, whatever their serials.
        assert_ne!(handoff_id(0, serial), handoff_id(1, serial));
        let id = handoff_id(3, serial);
        let answers = [
            Message::HandoffAccept(HandoffAccept {
                id,
                isn_target: SeqNum::new(1),
                client: "198.18.0.100:40000".parse().unwrap(),
            }),
            Message::HandoffReject(HandoffReject {
                id,
                reason: RejectReason::Timeout,
            }),
            Message::HandoffClosed(HandoffClosed { id }),
        ];
        for msg in &answers {
            assert_eq!(route(msg, 4), Some(3), "{msg:?}");
            // A worker this node does not have: no route, and it is counted.
            assert_eq!(route(msg, 2), None, "{msg:?}");
        }
        let client: std::net::SocketAddrV4 = "198.18.0.100:40000".parse().unwrap();
        let owner = owner_of(u32::from(*client.ip()), client.port(), 4);
        let cancel = Message::HandoffCancel(HandoffCancel { id, client });
        assert_eq!(route(&cancel, 4), Some(owner));
        assert_eq!(route(&Message::Load(Load::default()), 4), None);
    }

    #[test]
    fn clients_spread_over_workers() {
        let mut counts = [0usize; 4];
        for port in 0..4000u16 {
            counts[owner_of(0xc612_0064, 30000 + port, 4)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn one_worker_owns_everything() {
        for port in [0, 1, 80, 65535] {
            assert_eq!(owner_of(0xc612_0064, port, 1), 0);
        }
    }
}
