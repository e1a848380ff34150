//! A node's workers as the handoff sees them: which worker owns a
//! connection, and what the control lcore and the workers tell each other.
//!
//! Both sides need this: the workers steer packets to a flow's owner, and
//! the control lcore sends a handoff request to the worker that owns the
//! client's flow. It is plain data and a pure function, so it lives with
//! the protocol rather than with either side.

mod backlog;
mod inbox;

pub use backlog::{Backlog, Offered, Sent};
pub use inbox::{inbox, NotQueued, ToWorkerRx, ToWorkerTx, TryRecvError};

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::msg::{Load, Message};
use crate::placement::PolicyPlacer;

/// The most workers a node may run: a handoff id names its worker in one
/// byte.
pub const MAX_WORKERS: usize = 256;

/// The bits of a handoff id below the worker's byte.
const SERIAL_BITS: u32 = 56;

/// The id of a handoff worker `worker` starts, its `serial`-th: unique
/// per node whatever its number of workers (the top byte names the
/// worker). A worker starts its serials at the clock in
/// microseconds and takes one per handoff, far fewer than a microsecond
/// brings, so a restarted node never reuses the id of a connection it
/// handed off before (2^56 microseconds is over two thousand years).
pub fn handoff_id(worker: usize, serial: u64) -> u64 {
    debug_assert!(worker < MAX_WORKERS);
    ((worker as u64 & 0xff) << SERIAL_BITS) | (serial & ((1 << SERIAL_BITS) - 1))
}

/// The worker of this node that owns `client`'s flows.
pub fn owner_of_client(client: std::net::SocketAddrV4, workers: usize) -> usize {
    owner_of(u32::from(*client.ip()), client.port(), workers)
}

/// The worker of this node that a message from a peer about one handoff is
/// for: the one that owns its client's flow. On the origin that worker
/// started the handoff; on the target it holds (or will hold) the
/// connection. So routing needs no table, and a message can only reach the
/// worker that has its flow. None for a load report, which is for every
/// worker, and for FlowsHeld, which names many clients (the control plane
/// splits it).
pub fn route(msg: &Message, workers: usize) -> Option<usize> {
    let owner = |client| Some(owner_of_client(client, workers));
    match msg {
        Message::HandoffRequest(r) => owner(r.key.client),
        Message::HandoffCancel(c) => owner(c.client),
        Message::HandoffAccept(a) => owner(a.client),
        Message::HandoffReject(r) => owner(r.client),
        Message::HandoffClosed(c) => owner(c.client),
        Message::Release(r) => owner(r.client),
        Message::Released(r) => owner(r.client),
        Message::ReleaseRefused(r) => owner(r.client),
        Message::FlowsHeld(_) | Message::Load(_) => None,
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
    Message {
        peer: usize,
        msg: Message,
    },
    PeerUp(usize),
    /// The peer's channel is up but it has not been heard from for a while
    /// (`true`), or it has been again (`false`): a suspect peer gets no new
    /// handoffs, and what was handed to it carries on.
    PeerSuspect(usize, bool),
    PeerDown(usize),
    /// This node drains (`true`: it refuses new handoffs) or no longer
    /// does (`false`).
    Drain(bool),
    /// A new configuration (`baton reload`): policy, peers and limits.
    Reload(Box<Reload>),
}

/// What a reload changes in a worker. Connections already decided keep
/// their node; only new decisions follow the new policy.
#[derive(Debug)]
pub struct Reload {
    /// The new rules and pools, over `peers`.
    pub placer: PolicyPlacer,
    /// Every peer, by index: those the worker had, in their places, then
    /// those added. A removed peer keeps its place, marked `removed`: it
    /// gets no new handoffs, and what it was handed or handed here
    /// finishes (the worker says when nothing is left: `PeerReleased`).
    pub peers: Vec<ReloadPeer>,
    pub limits: Limits,
}

/// A peer, as a reload gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadPeer {
    pub name: String,
    pub address: Ipv4Addr,
    /// Its control port, whose frames teach its MAC when `mac` is None.
    pub control_port: u16,
    pub mac: Option<[u8; 6]>,
    pub removed: bool,
}

/// The `[handoff]` limits and timeouts a reload may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub hold_bytes: usize,
    pub hold_segments: usize,
    pub hold_timeout: Duration,
    pub handoff_timeout: Duration,
    pub linger: Duration,
    pub idle_timeout: Duration,
    pub orphan_timeout: Duration,
    pub max_flows: usize,
}

/// From a worker to the control lcore.
#[derive(Debug)]
pub enum FromWorker {
    /// A message for a peer. (Answers find their way back by what they
    /// name: see [`route`].)
    Message { peer: usize, msg: Message },
    /// The worker has named, in FlowsHeld messages, every connection it
    /// holds that `peer` handed it (told on the peer's Up).
    ResyncDone { peer: usize },
    /// A worker's load, reported now and then.
    Load { worker: usize, load: Load },
    /// The worker holds no connection with `peer`, removed by a reload:
    /// handed to it or by it (see [`Reload::peers`]).
    PeerReleased { peer: usize },
}

/// The peers' channels, from a worker's own thread, past the control
/// lcore: each saves thread wake-ups on a handoff's path
/// (control/src/plane/direct.rs).
pub trait DirectIo: Send + Sync {
    /// Puts `msgs` on `peer`'s channel at once, in one write. Declines
    /// (false) when it cannot keep them in order behind what the control
    /// lcore carries, and the worker then sends them that way.
    fn send_now(&self, peer: usize, msgs: &[Message]) -> bool;
    /// A message `send_now` declined never reached the control lcore (the
    /// worker's queue to it was full).
    fn lost(&self);
    /// Reads what the peers' channels hold now and delivers it to the
    /// workers' inboxes (or to the control lcore): for a worker that has
    /// just passed a segment of a channel to the host kernel.
    fn read_now(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoff_ids_are_unique_per_node_and_messages_reach_their_clients_owner() {
        use crate::msg::{
            FlowsHeld, HandoffAccept, HandoffCancel, HandoffClosed, HandoffReject, RejectReason,
        };
        use crate::seq::SeqNum;
        let serial = 1_764_620_000_000_000; // a clock in microseconds
                                            // Two workers never share an id, whatever their serials.
        assert_ne!(handoff_id(0, serial), handoff_id(1, serial));
        assert_eq!(handoff_id(7, serial) >> 56, 7);
        assert_eq!(handoff_id(7, serial) & ((1 << 56) - 1), serial);
        let id = handoff_id(3, serial);
        let client: std::net::SocketAddrV4 = "198.18.0.100:40000".parse().unwrap();
        let owner = owner_of_client(client, 4);
        let about_one = [
            Message::HandoffAccept(HandoffAccept {
                id,
                isn_target: SeqNum::new(1),
                client,
            }),
            Message::HandoffReject(HandoffReject {
                id,
                client,
                reason: RejectReason::Timeout,
            }),
            Message::HandoffClosed(HandoffClosed { id, client }),
            Message::HandoffCancel(HandoffCancel { id, client }),
        ];
        for msg in &about_one {
            assert_eq!(route(msg, 4), Some(owner), "{msg:?}");
        }
        let many = Message::FlowsHeld(FlowsHeld {
            flows: Vec::new(),
            last: true,
        });
        assert_eq!(route(&many, 4), None);
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
