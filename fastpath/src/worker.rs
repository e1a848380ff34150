//! The worker poll loop: one per worker lcore, owning one queue pair on the
//! wire port and one on the host port.
//!
//! Today every frame passes between the two ports unchanged: Baton is a
//! transparent bump in the wire. Each step moves at most one burst per
//! direction, so both directions get a fair share under load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk_ffi::{Burst, Queue};

use crate::counters::{Counter, WorkerCounters};
use crate::idle::{Backoff, IdlePolicy};

/// Extra TX attempts before a burst's remainder is dropped: a ring that is
/// full for this long is not draining, and holding packets stalls RX.
const TX_RETRIES: u32 = 4;

/// What a worker is given to run.
pub struct Worker {
    pub id: usize,
    pub wire: Queue,
    pub host: Queue,
    pub burst: usize,
    pub idle: IdlePolicy,
    pub counters: Arc<WorkerCounters>,
    /// Set by the control lcore to stop every worker.
    pub stop: Arc<AtomicBool>,
}

impl Worker {
    /// Polls until `stop` is set.
    pub fn run(mut self) {
        let mut backoff = Backoff::new(self.idle);
        let mut burst = Burst::new();
        while !self.stop.load(Ordering::Relaxed) {
            let moved = self.poll_once(&mut burst);
            backoff.wait(moved);
        }
    }

    /// One pass over both directions; returns the frames received.
    #[inline]
    pub fn poll_once(&mut self, burst: &mut Burst) -> usize {
        let from_wire = pass(
            burst,
            &mut self.wire,
            &mut self.host,
            self.burst,
            &self.counters,
            [Counter::WireRx, Counter::HostTx, Counter::DropHostTxFull],
        );
        let from_host = pass(
            burst,
            &mut self.host,
            &mut self.wire,
            self.burst,
            &self.counters,
            [Counter::HostRx, Counter::WireTx, Counter::DropWireTxFull],
        );
        from_wire + from_host
    }
}

/// Moves one burst from `rx` to `tx`, counting as `[received, sent, dropped]`.
#[inline]
fn pass(
    burst: &mut Burst,
    rx: &mut Queue,
    tx: &mut Queue,
    max: usize,
    counters: &WorkerCounters,
    [received, sent, dropped]: [Counter; 3],
) -> usize {
    let n = burst.rx(rx, max);
    if n == 0 {
        return 0;
    }
    counters.add(received, n as u64);
    let mut out = burst.tx(tx);
    let mut retries = 0;
    while !burst.is_empty() && retries < TX_RETRIES {
        out += burst.tx(tx);
        retries += 1;
    }
    counters.add(sent, out as u64);
    let lost = burst.free_all();
    if lost > 0 {
        counters.add(dropped, lost as u64);
    }
    n
}
