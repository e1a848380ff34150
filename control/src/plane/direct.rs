//! Handoff messages skip the control lcore in both directions: a worker
//! writes its message to the peer's channel itself, and the peer's
//! messages are handed to their worker by whoever reads them from the
//! channel: the worker that has just passed their segment to the host
//! kernel (`PeerIo::read_now`), or the channel's reader thread.
//!
//! Every handoff's request and its answer cross here; carried by the
//! control lcore, each crossing cost a thread wake-up more in sequence
//! (with the peer's link and reader threads, and the worker that then
//! finds the channel's segment on its host port), 50-150 µs each of a new
//! connection's first byte on a virtual machine (docs/handoff.md §12).
//!
//! The control lcore still carries the rest: a Load (for every worker, and
//! it watches the peer's draining), FlowsHeld from a peer (split over the
//! workers), what does not decode (it resets the peer), a message whose
//! worker's inbox is full, and a message for a peer whose channel has
//! something queued or is being written (it keeps them in backlogs).
//!
//! Order is kept, as when the control lcore carried everything: a message
//! goes direct only when everything handed to the control lcore before it,
//! in its direction, has reached the next queue (the control lcore has
//! handled as many as were handed to it, and no message waits in one of its
//! backlogs); the peer channel's writer, and the workers' inboxes, keep
//! what reaches them in order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, PoisonError, RwLock};

use std::sync::OnceLock;

use baton_handoff::workers::{route, DirectIo, Offered, ToWorker, ToWorkerTx};
use baton_handoff::{encode, Message};

use super::decode_one;
use crate::peers::{FrameSink, PeerIo};

/// What the control plane, the workers and the peers' readers share.
pub(super) struct Direct {
    /// By the workers' peer index.
    peers: RwLock<Vec<Arc<PeerSlot>>>,
    to_workers: Vec<ToWorkerTx>,
    /// Some worker backlog holds a message (the control lcore sets it).
    workers_backlogged: AtomicBool,
    /// Messages handed to their worker here.
    delivered: AtomicU64,
    /// The peers' channels, once they run.
    io: OnceLock<PeerIo>,
    /// The workers' messages given to the control lcore, and handled by it.
    out: Handed,
    /// Some peer backlog holds a message (the control lcore sets it).
    peers_backlogged: AtomicBool,
    /// Workers' messages written to their peer here.
    written: AtomicU64,
}

/// Messages given to the control lcore in one direction, and how many of
/// them it has handled: while they differ, one is on its way.
#[derive(Default)]
struct Handed {
    given: AtomicU64,
    handled: AtomicU64,
}

impl Handed {
    fn none_on_the_way(&self) -> bool {
        self.given.load(SeqCst) == self.handled.load(SeqCst)
    }
}

struct PeerSlot {
    name: String,
    /// The events about the peer on their way to the control lcore: its
    /// frames given back, its Up and Down, and so on. A frame of a new
    /// connection must not reach a worker before the old one's Down.
    from: Handed,
}

impl Direct {
    pub fn new(peers: &[String], to_workers: Vec<ToWorkerTx>) -> Arc<Direct> {
        let direct = Arc::new(Direct {
            peers: RwLock::default(),
            to_workers,
            workers_backlogged: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            io: OnceLock::new(),
            out: Handed::default(),
            peers_backlogged: AtomicBool::new(false),
            written: AtomicU64::new(0),
        });
        direct.set_peers(peers);
        direct
    }

    /// Peers gain indices (a reload) but never lose or change theirs.
    pub fn set_peers(&self, peers: &[String]) {
        let mut slots = self.peers.write().unwrap_or_else(PoisonError::into_inner);
        for name in &peers[slots.len().min(peers.len())..] {
            slots.push(Arc::new(PeerSlot {
                name: name.clone(),
                from: Handed::default(),
            }));
        }
    }

    /// The peers' channels run: workers may write to them, and read them.
    pub fn set_io(&self, io: PeerIo) {
        let _ = self.io.set(io);
    }

    /// The control lcore has handled one of the events about `peer` (after
    /// it set [`Direct::set_backlogged`] for what that did).
    pub fn handled_from(&self, peer: &str) {
        if let Some((_, slot)) = self.slot(peer) {
            slot.from.handled.fetch_add(1, SeqCst);
        }
    }

    /// The control lcore has handled a worker's message for a peer (after
    /// it set [`Direct::set_backlogged`] for what that did).
    pub fn handled_out(&self) {
        self.out.handled.fetch_add(1, SeqCst);
    }

    /// Whether messages wait in the control lcore's backlogs, for workers
    /// and for peers.
    pub fn set_backlogged(&self, workers: bool, peers: bool) {
        self.workers_backlogged.store(workers, SeqCst);
        self.peers_backlogged.store(peers, SeqCst);
    }

    /// Messages from peers handed to their worker by a reader.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(SeqCst)
    }

    /// Workers' messages written to their peer by the worker.
    pub fn written(&self) -> u64 {
        self.written.load(SeqCst)
    }

    fn slot(&self, peer: &str) -> Option<(usize, Arc<PeerSlot>)> {
        let slots = self.peers.read().unwrap_or_else(PoisonError::into_inner);
        let i = slots.iter().position(|s| s.name == peer)?;
        Some((i, Arc::clone(&slots[i])))
    }

    /// The message `frame` holds and its worker, if it may go there now.
    fn direct(&self, slot: &PeerSlot, frame: &[u8]) -> Option<(usize, Message)> {
        if !slot.from.none_on_the_way() || self.workers_backlogged.load(SeqCst) {
            return None;
        }
        let msg = decode_one(frame).ok()?;
        let worker = route(&msg, self.to_workers.len())?;
        Some((worker, msg))
    }
}

impl FrameSink for Direct {
    fn deliver(&self, peer: &str, frame: Vec<u8>) -> Result<(), Vec<u8>> {
        // An unknown peer's frames are the control lcore's to judge.
        let Some((index, slot)) = self.slot(peer) else {
            return Err(frame);
        };
        if let Some((worker, msg)) = self.direct(&slot, &frame) {
            let event = ToWorker::Message { peer: index, msg };
            if let Offered::Taken = self.to_workers[worker].offer(event) {
                self.delivered.fetch_add(1, SeqCst);
                return Ok(());
            }
        }
        // Counted in `queued`, as the event it becomes.
        Err(frame)
    }

    fn queued(&self, peer: &str) {
        if let Some((_, slot)) = self.slot(peer) {
            slot.from.given.fetch_add(1, SeqCst);
        }
    }
}

impl DirectIo for Direct {
    fn send_now(&self, peer: usize, msgs: &[Message]) -> bool {
        if let Some(io) = self.io.get() {
            if self.out.none_on_the_way() && !self.peers_backlogged.load(SeqCst) {
                let name = self
                    .peers
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(peer)
                    .map(|s| s.name.clone());
                if let Some(name) = name {
                    let frames: Vec<Vec<u8>> = msgs.iter().map(encode).collect();
                    let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                    if io.write_now(&name, &frames) {
                        self.written.fetch_add(msgs.len() as u64, SeqCst);
                        return true;
                    }
                }
            }
        }
        // Counted before the control lcore can see them.
        self.out.given.fetch_add(msgs.len() as u64, SeqCst);
        false
    }

    fn lost(&self) {
        // Given, and never to be handled.
        self.out.given.fetch_sub(1, SeqCst);
    }

    fn read_now(&self) {
        if let Some(io) = self.io.get() {
            io.read_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV4;

    use baton_handoff::workers::{inbox, DirectIo, ToWorker};
    use baton_handoff::{encode, HandoffCancel, Load, Message};

    use super::Direct;
    use crate::peers::FrameSink;

    fn cancel(id: u64) -> Message {
        Message::HandoffCancel(HandoffCancel {
            id,
            client: SocketAddrV4::new([198, 18, 0, 100].into(), 40000),
        })
    }

    #[test]
    fn a_message_waits_behind_what_the_control_lcore_has_not_handled() {
        let (tx, rx) = inbox(1);
        let direct = Direct::new(&["b".to_string()], vec![tx]);
        // What the sink gives back is queued as an event, as the peers'
        // reader does.
        let deliver = |frame: Vec<u8>| {
            let r = direct.deliver("b", frame);
            if r.is_err() {
                direct.queued("b");
            }
            r.is_ok()
        };
        // A handoff message goes straight to its worker.
        assert!(deliver(encode(&cancel(1))));
        assert!(
            matches!(rx.try_recv(), Ok(ToWorker::Message { peer: 0, msg }) if msg == cancel(1))
        );
        // A Load is the control lcore's; until it has handled it, the
        // messages behind it go that way too.
        assert!(!deliver(encode(&Message::Load(Load::default()))));
        assert!(!deliver(encode(&cancel(2))));
        direct.handled_from("b");
        assert!(!deliver(encode(&cancel(3))));
        direct.handled_from("b");
        direct.handled_from("b");
        assert!(deliver(encode(&cancel(4))));
        let _ = rx.try_recv();
        // So does anything behind an event about the peer (its Down, say).
        direct.queued("b");
        assert!(!deliver(encode(&cancel(5))));
        direct.handled_from("b");
        direct.handled_from("b");
        // A full inbox, or a worker backlog, sends it by the control lcore.
        assert!(deliver(encode(&cancel(6))));
        assert!(!deliver(encode(&cancel(7))));
        direct.handled_from("b");
        let _ = rx.try_recv();
        direct.set_backlogged(true, false);
        assert!(!deliver(encode(&cancel(8))));
        direct.handled_from("b");
        direct.set_backlogged(false, false);
        assert!(deliver(encode(&cancel(9))));
        // An unknown peer's frames, and garbage, are the control lcore's.
        assert!(direct.deliver("c", encode(&cancel(10))).is_err());
        assert!(!deliver(vec![1, 2, 3]));
        assert_eq!(direct.delivered(), 4);
    }

    #[test]
    fn a_workers_message_waits_behind_those_the_control_lcore_has_not_handled() {
        let direct = Direct::new(&["b".to_string()], Vec::new());
        // No channels yet: declined, and given to the control lcore.
        assert!(!direct.send_now(0, &[cancel(1), cancel(2)]));
        assert!(!direct.out.none_on_the_way());
        // Lost before the control lcore got them: nothing on the way.
        direct.lost();
        direct.lost();
        assert!(direct.out.none_on_the_way());
        assert!(!direct.send_now(0, &[cancel(3)]));
        direct.handled_out();
        assert!(direct.out.none_on_the_way());
    }
}
