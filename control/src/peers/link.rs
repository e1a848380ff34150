//! The link thread: one per configured peer. It owns the peer's connection
//! for its whole life: it dials (or waits for the peer to dial), runs the
//! session's writing half and heartbeats, and is the only place that
//! reports the peer Up or Down, so those events always alternate.
//!
//! ```text
//!            dial ok / inbound session
//!   Down ─────────────────────────────────▶ Up
//!    ▲  ◀─────────────────────────────────  │
//!    │    reader ended (closed, silent,     │ inbound session from the
//!    │    bad frame) or write failed        │ same peer: Down, then Up
//!    └── back-off (dialer) / wait (acceptor)┘ on the new connection
//! ```

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::counters::PeerCounter;
use super::noise::{self, HandshakeError};
use super::session::{self, EndReason, ReaderEnded, Session};
use super::state::{PeerState, Shared, TICK};
use super::writer::Writer;
use super::PeerEvent;

/// How long a dial waits for TCP to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a handshake may take, on either side.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// The shortest time a write may block before the connection is given up.
const WRITE_TIMEOUT_FLOOR: Duration = Duration::from_secs(10);
/// The most queued frames sealed into one write.
const BATCH_FRAMES: usize = 64;

/// Messages to a link thread from the listener and from the API.
pub enum LinkCtl {
    /// The peer dialed us and passed the handshake.
    Inbound(Session),
    /// Wake up: shutdown has begun, or the peer was removed.
    Shutdown,
    /// Close the current connection (the application rejected what came
    /// over it); the link then reconnects as after any other failure.
    Reset(String),
}

pub struct Link {
    pub shared: Arc<Shared>,
    pub peer: Arc<PeerState>,
    pub outbox: Receiver<Vec<u8>>,
    /// Rung when frames written at once did not all fit in the socket:
    /// the link thread writes what is left of them.
    pub left: Receiver<()>,
    pub ctl: Receiver<LinkCtl>,
    pub reader_done_tx: Sender<ReaderEnded>,
    pub reader_done: Receiver<ReaderEnded>,
}

impl Link {
    pub fn run(self) {
        let mut generation = 0u64;
        let mut backoff = Backoff::default();
        let mut next: Option<Session> = None;
        while !self.shared.is_closing() && !self.peer.is_removed() {
            let session = match next.take() {
                Some(s) => s,
                None => match self.establish(&mut backoff) {
                    Some(s) => s,
                    None => break,
                },
            };
            generation += 1;
            next = self.run_session(session, generation);
        }
        debug!(peer = %self.peer.name, "link stopped");
    }

    /// Waits for a new session: dials with back-off if this node dials the
    /// peer, or waits for the listener to hand one over. None at shutdown.
    fn establish(&self, backoff: &mut Backoff) -> Option<Session> {
        loop {
            if self.shared.is_closing() || self.peer.is_removed() {
                return None;
            }
            let wait = if self.peer.we_dial {
                match self.dial() {
                    Ok(s) => {
                        backoff.reset();
                        return Some(s);
                    }
                    Err(()) => backoff.next_delay(),
                }
            } else {
                TICK
            };
            let deadline = Instant::now() + wait;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match self.ctl.recv_timeout(left.min(TICK)) {
                    Ok(LinkCtl::Inbound(s)) if !self.peer.we_dial => return Some(s),
                    Ok(LinkCtl::Inbound(_)) => {} // never handed to a dialer
                    Ok(LinkCtl::Reset(_)) => {}   // nothing to reset
                    Ok(LinkCtl::Shutdown) => return None,
                    Err(_) if self.shared.is_shutting_down() => return None,
                    Err(_) => {}
                }
            }
        }
    }

    /// One dial attempt. Failures are counted and logged here.
    fn dial(&self) -> Result<Session, ()> {
        let peer = &self.peer;
        let mut stream = match TcpStream::connect_timeout(&peer.addr, CONNECT_TIMEOUT) {
            Ok(s) => s,
            Err(e) => {
                peer.counters.add(PeerCounter::ConnectFailures, 1);
                debug!(peer = %peer.name, addr = %peer.addr, "cannot connect: {e}");
                return Err(());
            }
        };
        let guard = self.shared.sockets.register(&stream).map_err(|_| ())?;
        let _ = stream.set_nodelay(true);
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        match noise::dial(
            &mut stream,
            &self.shared.psk,
            &self.shared.node,
            &peer.name,
            deadline,
        ) {
            Ok((sealer, opener)) => Ok(Session {
                stream,
                sealer,
                opener,
                guard,
            }),
            Err(e) => {
                if !self.shared.is_shutting_down() {
                    peer.counters.add(PeerCounter::HandshakeFailures, 1);
                    warn!(peer = %peer.name, addr = %peer.addr, "handshake failed: {}", describe(&e));
                }
                Err(())
            }
        }
    }

    /// Runs one session until it ends. Returns the session that replaced
    /// it, if the peer dialed again while it was up.
    fn run_session(&self, session: Session, generation: u64) -> Option<Session> {
        let Session {
            stream,
            sealer,
            opener,
            guard,
        } = session;
        let peer = &self.peer;
        // Anything still queued was meant for the previous connection.
        self.drop_queued();

        // Every read (on the reader thread or any other) returns at once,
        // and the writer waits for room itself.
        if let Err(e) = stream.set_nonblocking(true) {
            warn!(peer = %peer.name, "cannot make the connection non-blocking: {e}");
            let _ = stream.shutdown(Shutdown::Both);
            return None;
        }
        let reader = match stream.try_clone() {
            Ok(read_half) => {
                let shared = Arc::clone(&self.shared);
                let peer = Arc::clone(&self.peer);
                let done = self.reader_done_tx.clone();
                thread::Builder::new()
                    .name(format!("peer-rx-{}", self.peer.name))
                    .spawn(move || {
                        session::read_loop(shared, peer, read_half, opener, generation, done)
                    })
            }
            Err(e) => Err(e),
        };
        let reader = match reader {
            Ok(r) => r,
            Err(e) => {
                warn!(peer = %peer.name, "cannot start the session reader: {e}");
                let _ = stream.shutdown(Shutdown::Both);
                return None;
            }
        };
        // A peer that stops reading while it still sends heartbeats is slow
        // (its application is not polling), not dead: give it time, but not
        // forever. A peer that is really gone falls silent, and the reader
        // then shuts the socket, which ends a waiting write at once.
        let write_timeout = self.shared.dead_after.max(WRITE_TIMEOUT_FLOOR);
        match stream
            .try_clone()
            .and_then(|write_half| Writer::new(write_half, sealer, write_timeout))
        {
            Ok(writer) => peer.writer.set(Some(writer)),
            Err(e) => {
                warn!(peer = %peer.name, "cannot start the session writer: {e}");
                let _ = stream.shutdown(Shutdown::Both);
                let _ = reader.join();
                return None;
            }
        }

        peer.set_up(true);
        if generation > 1 {
            peer.counters.add(PeerCounter::Reconnects, 1);
        }
        info!(peer = %peer.name, addr = %peer.addr, "peer up");
        self.shared.emit(PeerEvent::Up {
            peer: peer.name.clone(),
        });

        let (replacement, reason) = self.write_loop(generation);

        // Tear down: wake the reader, wait for it so that every frame it
        // delivered comes before the Down event, then report.
        let _ = stream.shutdown(Shutdown::Both);
        peer.writer.set(None);
        let _ = reader.join();
        drop(guard);
        // Always collect the reader's report, so none is left queued.
        let reader_reason = self.take_reader_reason(generation);
        let mut reason = reason.unwrap_or(reader_reason);
        if self.shared.is_closing() || peer.is_removed() {
            // This node closed it; the peer closing its side is the answer.
            reason = EndReason::Shutdown;
        }
        peer.set_up(false);
        self.drop_queued();
        match &reason {
            EndReason::Shutdown => debug!(peer = %peer.name, "peer link closed: {reason}"),
            EndReason::Replaced => info!(peer = %peer.name, "peer reconnected"),
            _ => warn!(peer = %peer.name, addr = %peer.addr, "peer down: {reason}"),
        }
        self.shared.emit(PeerEvent::Down {
            peer: peer.name.clone(),
        });
        replacement
    }

    /// Sends queued frames and heartbeats until the session ends. Returns a
    /// replacement session if one arrived, and the reason when it is known
    /// here (otherwise the reader has it).
    fn write_loop(&self, generation: u64) -> (Option<Session>, Option<EndReason>) {
        let peer = &self.peer;
        let interval = self.shared.heartbeat_interval;
        let mut batch = Vec::with_capacity(BATCH_FRAMES);
        loop {
            if self.shared.is_shutting_down() {
                return (None, Some(EndReason::Shutdown));
            }
            let last_sent = peer
                .writer
                .with(|w| w.last_sent)
                .unwrap_or_else(Instant::now);
            let wait = (last_sent + interval)
                .saturating_duration_since(Instant::now())
                .min(TICK);
            // Frames are only looked at here, not taken: they are taken
            // with the writer's lock held, which keeps them in order with
            // those the API writes itself (see `writer`).
            let mut ready = Select::new();
            let outbox = ready.recv(&self.outbox);
            let ctl = ready.recv(&self.ctl);
            let reader_done = ready.recv(&self.reader_done);
            let left = ready.recv(&self.left);
            let written: io::Result<()> = match ready.ready_timeout(wait) {
                Ok(i) if i == outbox => self.write_queued(&mut batch),
                Ok(i) if i == ctl => match self.ctl.try_recv() {
                    Ok(LinkCtl::Inbound(s)) => return (Some(s), Some(EndReason::Replaced)),
                    Ok(LinkCtl::Reset(why)) => return (None, Some(EndReason::Rejected(why))),
                    Ok(LinkCtl::Shutdown) | Err(TryRecvError::Disconnected) => {
                        return (None, Some(EndReason::Shutdown))
                    }
                    Err(TryRecvError::Empty) => continue,
                },
                Ok(i) if i == left => {
                    let _ = self.left.try_recv();
                    self.with_writer(|w| w.write_left())
                }
                Ok(i) if i == reader_done => match self.reader_done.try_recv() {
                    Ok(ended) if ended.generation == generation => {
                        return (None, Some(ended.reason))
                    }
                    _ => continue, // from an earlier session
                },
                Ok(_) => continue,
                Err(_) => {
                    // Closing: the FIN is sent; wait for the peer's.
                    if self.shared.is_closing() {
                        continue;
                    }
                    self.with_writer(|w| match w.last_sent.elapsed() < interval {
                        true => w.write_left(),
                        false => w.write_heartbeat(),
                    })
                }
            };
            if let Err(e) = written {
                return (None, Some(EndReason::Io(e)));
            }
        }
    }

    /// Writes what is queued, as many frames in one write as fit.
    fn write_queued(&self, batch: &mut Vec<Vec<u8>>) -> io::Result<()> {
        let peer = &self.peer;
        self.with_writer(|w| {
            // What is queued behind the first goes in the same write;
            // nothing waits for frames still to come.
            batch.clear();
            batch.extend(self.outbox.try_iter().take(BATCH_FRAMES));
            if batch.is_empty() {
                return w.write_left();
            }
            let r = w.write_frames(batch.iter().map(Vec::as_slice));
            if r.is_ok() {
                let bytes: usize = batch.iter().map(Vec::len).sum();
                peer.counters
                    .add(PeerCounter::FramesOut, batch.len() as u64);
                peer.counters.add(PeerCounter::BytesOut, bytes as u64);
            }
            r
        })
    }

    /// `f` on this session's writer (there is one while the session runs).
    fn with_writer(&self, f: impl FnOnce(&mut Writer) -> io::Result<()>) -> io::Result<()> {
        self.peer.writer.with(f).unwrap_or(Ok(()))
    }

    /// The reader's reason for this generation, if it reported one.
    fn take_reader_reason(&self, generation: u64) -> EndReason {
        while let Ok(ended) = self.reader_done.try_recv() {
            if ended.generation == generation {
                return ended.reason;
            }
        }
        EndReason::Closed
    }

    /// Discards frames queued for a connection that is gone, counting them.
    fn drop_queued(&self) {
        let dropped = self.outbox.try_iter().count();
        if dropped > 0 {
            self.peer
                .counters
                .add(PeerCounter::FramesDropped, dropped as u64);
        }
    }
}

/// A short, operator-oriented account of a handshake failure.
pub fn describe(e: &HandshakeError) -> String {
    match e {
        HandshakeError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "the other side closed the connection during the handshake (does it have the same pre-shared key?)".into()
        }
        HandshakeError::Io(io)
            if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
        {
            "the handshake did not complete in time".into()
        }
        other => other.to_string(),
    }
}
