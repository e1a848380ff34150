//! A worker's inbox: the queue from the control lcore, and a doorbell that
//! wakes the worker when something arrives while it sleeps.
//!
//! An idle worker sleeps between polls (`poll.idle = "sleep"`), and a
//! handoff request must not wait for the sleep to end. Sleeping on the
//! queue itself (a channel's `recv_timeout`) would do, but a channel spins
//! and yields the CPU several times before it blocks, on every sleep: most
//! of an idle worker's CPU time. Here the worker parks (one futex wait)
//! and every message sent unparks it; or, when the worker sleeps in a wait
//! of its own (one that frames on its ports also end), every message rings
//! the bell the worker gave ([`ToWorkerRx::ring_with`]).

use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

pub use crossbeam_channel::TryRecvError;
use crossbeam_channel::TrySendError;
use crossbeam_channel::{Receiver, Sender};

use super::{Offered, ToWorker};

/// A worker's inbox of `capacity` messages: the control lcore's end and the
/// worker's.
pub fn inbox(capacity: usize) -> (ToWorkerTx, ToWorkerRx) {
    let (queue, rx) = crossbeam_channel::bounded(capacity);
    let bell = Arc::new(Doorbell::default());
    (
        ToWorkerTx {
            queue,
            bell: Arc::clone(&bell),
        },
        ToWorkerRx { queue: rx, bell },
    )
}

/// How a sender wakes the worker: another thread's bell.
pub type Ring = Box<dyn Fn() + Send + Sync>;

/// The thread that sleeps on an inbox, once it has slept there; or the bell
/// it sleeps on.
#[derive(Default)]
struct Doorbell {
    sleeper: OnceLock<Thread>,
    ring: OnceLock<Ring>,
}

impl std::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell")
            .field("sleeper", &self.sleeper)
            .field("ring", &self.ring.get().is_some())
            .finish()
    }
}

/// The control lcore's end of a worker's inbox.
#[derive(Debug, Clone)]
pub struct ToWorkerTx {
    queue: Sender<ToWorker>,
    bell: Arc<Doorbell>,
}

/// Why a message was not queued; it is dropped (the control lcore counts
/// it), not handed back: a message is too large to travel in every
/// `Result` of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// The worker's inbox is full.
    Full,
    /// The worker has stopped.
    Gone,
}

impl ToWorkerTx {
    /// Queues `event` and wakes the worker if it sleeps.
    pub fn try_send(&self, event: ToWorker) -> Result<(), NotQueued> {
        match self.offer(event) {
            Offered::Taken => Ok(()),
            Offered::Full(_) => Err(NotQueued::Full),
            Offered::Closed => Err(NotQueued::Gone),
        }
    }

    /// [`ToWorkerTx::try_send`], giving the event back when the inbox is
    /// full (for a [`Backlog`](super::Backlog)).
    pub fn offer(&self, event: ToWorker) -> Offered<ToWorker> {
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => return Offered::Full(event),
            Err(TrySendError::Disconnected(_)) => return Offered::Closed,
        }
        if let Some(ring) = self.bell.ring.get() {
            ring();
            return Offered::Taken;
        }
        // A token for the worker's next park if it is not parked now:
        // that park then returns at once and the worker finds the message.
        if let Some(worker) = self.bell.sleeper.get() {
            worker.unpark();
        }
        Offered::Taken
    }
}

/// A worker's end of its inbox.
#[derive(Debug)]
pub struct ToWorkerRx {
    queue: Receiver<ToWorker>,
    bell: Arc<Doorbell>,
}

impl ToWorkerRx {
    pub fn try_recv(&self) -> Result<ToWorker, TryRecvError> {
        self.queue.try_recv()
    }

    /// Whether a message waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// From now on every message sent calls `ring` (the worker's own wait
    /// wakes on it) instead of unparking the worker. Call it before the
    /// worker first sleeps; a second call is ignored.
    pub fn ring_with(&self, ring: Ring) {
        let _ = self.bell.ring.set(ring);
    }

    /// The next message, waiting up to `timeout` for one. Call it from one
    /// thread only: the first call makes it the one a message wakes.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<ToWorker> {
        // Known to senders before the queue is looked at: a message sent
        // after the look finds the sleeper and leaves a token.
        self.bell.sleeper.get_or_init(thread::current);
        if let Ok(event) = self.queue.try_recv() {
            return Some(event);
        }
        thread::park_timeout(timeout);
        self.queue.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_message_wakes_a_sleeping_worker_at_once() {
        let (tx, rx) = inbox(4);
        let worker = thread::spawn(move || {
            // Registers, then sleeps at most 10 s waiting.
            assert!(rx.recv_timeout(Duration::from_millis(1)).is_none());
            let start = Instant::now();
            let got = rx.recv_timeout(Duration::from_secs(10));
            (got, start.elapsed())
        });
        // Until the worker has registered, a message would only be found
        // at its next poll; send a few until one wakes it.
        let (got, waited) = loop {
            thread::sleep(Duration::from_millis(20));
            tx.try_send(ToWorker::PeerUp(7)).ok();
            if worker.is_finished() {
                break worker.join().unwrap();
            }
        };
        assert!(matches!(got, Some(ToWorker::PeerUp(7))), "{got:?}");
        assert!(waited < Duration::from_secs(10), "woken, not timed out");
    }

    #[test]
    fn a_message_sent_before_the_sleep_is_found_without_sleeping() {
        let (tx, rx) = inbox(4);
        tx.try_send(ToWorker::Drain(true)).unwrap();
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)),
            Some(ToWorker::Drain(true))
        ));
        assert!(rx.recv_timeout(Duration::from_millis(1)).is_none());
    }

    #[test]
    fn a_message_rings_the_bell_the_worker_gave() {
        let (tx, rx) = inbox(4);
        let rung = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&rung);
        rx.ring_with(Box::new(move || {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }));
        assert!(rx.is_empty());
        tx.try_send(ToWorker::PeerUp(1)).unwrap();
        assert_eq!(rung.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(!rx.is_empty());
    }

    #[test]
    fn a_full_inbox_refuses() {
        let (tx, _rx) = inbox(1);
        tx.try_send(ToWorker::PeerDown(1)).unwrap();
        assert!(matches!(
            tx.try_send(ToWorker::PeerDown(2)),
            Err(NotQueued::Full)
        ));
    }
}
