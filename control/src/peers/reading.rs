//! The reading half of a peer's connection, shared by its reader thread and
//! any thread that asks to read now (a worker).
//!
//! The segments of a peer's channel reach this node's kernel through a
//! worker, which passes them from the wire port to the host port; the
//! kernel's TCP takes them within that system call. A worker that has just
//! passed one reads the socket itself ([`super::PeerIo::read_now`]), and a
//! HandoffRequest in it reaches the worker's inbox without a wake-up of the
//! reader thread and then of the worker: two thread wake-ups in sequence,
//! 100-150 µs of a new connection's first byte on a virtual machine
//! (docs/handoff.md §12). The reader thread reads as before whatever nobody
//! else has, and keeps watch over the peer's liveness.
//!
//! The socket is non-blocking, and only read with the lock held, so its
//! bytes are decrypted and delivered in order whoever reads them. A read
//! for another thread never waits: events that the queue to the
//! application does not take at once wait here, and everything after them
//! too, until the reader thread, woken, queues them.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::TrySendError;

use super::counters::PeerCounter;
use super::noise::Opener;
use super::session::EndReason;
use super::state::{PeerState, Shared};
use super::wire::{Message, Reassembler, StreamDecoder};
use super::PeerEvent;

/// The bytes read from the socket at once.
const READ_AT: usize = 64 * 1024;

/// One live connection's reading half.
pub struct Reading {
    stream: TcpStream,
    opener: Opener,
    decoder: StreamDecoder,
    reassembler: Reassembler,
    buf: Vec<u8>,
    /// When a valid message last came.
    pub last_heard: Instant,
    /// Events a read that must not wait could not queue, and those after
    /// them.
    pending: VecDeque<PeerEvent>,
    /// How the connection ended, if a read that must not wait found it.
    ended: Option<EndReason>,
    /// Wakes the reader thread, for `pending` and `ended`.
    wake_reader: Arc<mio::Waker>,
}

impl Reading {
    /// `stream` must be non-blocking.
    pub fn new(stream: TcpStream, opener: Opener, wake_reader: Arc<mio::Waker>) -> Reading {
        Reading {
            stream,
            opener,
            decoder: StreamDecoder::default(),
            reassembler: Reassembler::default(),
            buf: vec![0; READ_AT],
            last_heard: Instant::now(),
            pending: VecDeque::new(),
            ended: None,
            wake_reader,
        }
    }

    /// The reader thread's turn: queues what waits (waiting for room), then
    /// reads and delivers what the socket holds. Err: the session is over.
    pub fn read(&mut self, shared: &Shared, peer: &PeerState) -> Result<(), EndReason> {
        if !self.flush_pending(shared) {
            return Err(EndReason::Shutdown);
        }
        if let Some(reason) = self.ended.take() {
            return Err(reason);
        }
        self.read_available(shared, peer, true)
    }

    /// Queues, waiting for room, the events a read that must not wait left
    /// here: false at shutdown.
    pub fn flush_pending(&mut self, shared: &Shared) -> bool {
        while let Some(event) = self.pending.pop_front() {
            if !shared.send_counted(event) {
                return false;
            }
            // Time spent waiting for the application to take the event
            // is not the peer's silence.
            self.last_heard = Instant::now();
        }
        true
    }

    /// Another thread's turn: reads and delivers what one read of the
    /// socket brings, without waiting for anything; the reader thread is
    /// woken for the rest, if there may be more.
    pub fn read_now(&mut self, shared: &Shared, peer: &PeerState) {
        if self.ended.is_some() || !self.pending.is_empty() {
            return; // the reader thread's to handle first
        }
        if let Err(reason) = self.read_available(shared, peer, false) {
            self.ended = Some(reason);
        }
        if self.ended.is_some() || !self.pending.is_empty() {
            let _ = self.wake_reader.wake();
        }
    }

    fn read_available(
        &mut self,
        shared: &Shared,
        peer: &PeerState,
        wait: bool,
    ) -> Result<(), EndReason> {
        // A read that must not wait stops once events wait, and after one
        // read: a worker does not drain a resync's megabytes.
        while wait || self.pending.is_empty() {
            let n = match (&self.stream).read(&mut self.buf) {
                Ok(0) => return Err(EndReason::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(EndReason::Io(e)),
            };
            self.decoder.extend(&self.buf[..n]);
            self.deliver(shared, peer, wait)?;
            if !wait {
                if n == self.buf.len() {
                    let _ = self.wake_reader.wake();
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Delivers every whole message decoded so far.
    fn deliver(&mut self, shared: &Shared, peer: &PeerState, wait: bool) -> Result<(), EndReason> {
        let Reading {
            opener,
            decoder,
            reassembler,
            last_heard,
            pending,
            ..
        } = self;
        let mut out = Out {
            shared,
            pending,
            wait,
        };
        loop {
            let ciphertext = match decoder.next_message() {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(()),
                Err(e) => return Err(EndReason::BadFrame(e.to_string())),
            };
            let plaintext = opener
                .open(ciphertext)
                .map_err(|e| EndReason::BadFrame(format!("decryption failed: {e}")))?;
            *last_heard = Instant::now();
            if peer.is_suspect() {
                peer.set_suspect(false);
                tracing::info!(peer = %peer.name, "peer heard from again: no longer suspect");
                out.emit(PeerEvent::Recovered {
                    peer: peer.name.clone(),
                })?;
            }
            let frame = match Message::parse(plaintext) {
                Ok(Message::Heartbeat) => continue,
                Ok(Message::Chunk { last, data }) => reassembler.push(last, data),
                Err(e) => Err(e),
            };
            match frame {
                Ok(Some(frame)) => {
                    peer.counters.add(PeerCounter::FramesIn, 1);
                    peer.counters.add(PeerCounter::BytesIn, frame.len() as u64);
                    // Offered to the sink even while events wait here: it
                    // keeps its frames in order with those it gives back
                    // (see `FrameSink`).
                    let frame = match &shared.sink {
                        Some(sink) => sink.deliver(&peer.name, frame),
                        None => Err(frame),
                    };
                    if let Err(frame) = frame {
                        out.emit(PeerEvent::Frame {
                            peer: peer.name.clone(),
                            frame,
                        })?;
                        if wait {
                            *last_heard = Instant::now();
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(EndReason::BadFrame(e.to_string())),
            }
        }
    }
}

/// Where a read's events go.
struct Out<'a> {
    shared: &'a Shared,
    pending: &'a mut VecDeque<PeerEvent>,
    /// Whether queueing an event may wait for room.
    wait: bool,
}

impl Out<'_> {
    fn emit(&mut self, event: PeerEvent) -> Result<(), EndReason> {
        self.shared.will_emit(&event);
        if self.wait {
            return match self.shared.send_counted(event) {
                true => Ok(()),
                false => Err(EndReason::Shutdown),
            };
        }
        if !self.pending.is_empty() {
            self.pending.push_back(event);
            return Ok(());
        }
        match self.shared.events.try_send(event) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(event)) => {
                self.pending.push_back(event);
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(EndReason::Shutdown),
        }
    }
}
