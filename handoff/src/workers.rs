//! A node's workers as the handoff sees them: which worker owns a
//! connection, and what the control lcore and the workers tell each other.
//!
//! Both sides need this: the workers steer packets to a flow's owner, and
//! the control lcore sends a handoff request to the worker that owns the
//! client's flow. It is plain data and a pure function, so it lives with
//! the protocol rather than with either side.

use crate::msg::{Load, Message};

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
    /// A message for a peer, from worker `worker` (answers to it are
    /// routed back there).
    Message {
        worker: usize,
        peer: usize,
        msg: Message,
    },
    /// A worker's load, reported now and then.
    Load { worker: usize, load: Load },
}

#[cfg(test)]
mod tests {
    use super::*;

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
