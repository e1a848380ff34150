//! The writing half of a peer's connection, shared (in a [`super::slot`])
//! by its link thread and the threads that offer frames.
//!
//! A frame offered while nothing is queued and nobody is writing is sealed
//! and written at once by the thread that offers it, without a wake-up of
//! the link thread: one thread wake-up less on every handoff's path, 50-100
//! µs of a new connection's first byte on a virtual machine
//! (docs/handoff.md §12). That write never blocks: what the socket does not
//! take at once is left to the link thread, which writes blocking, as it
//! writes whatever was queued.
//!
//! Order: frames are sealed, and their bytes written, in the order they
//! were offered, since the outbox is drained, and bytes left over written,
//! only under the lock, and a frame is written at once only when the outbox
//! is empty and no bytes are left over.
//!
//! The socket is non-blocking (for its readers, see [`super::reading`]):
//! the link thread's writes wait for room in it themselves.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::counters::{PeerCells, PeerCounter};
use super::noise::Sealer;
use super::session;

/// One live connection's writing half.
pub struct Writer {
    stream: Waiting,
    sealer: Sealer,
    out: Vec<u8>,
    /// Sealed bytes that a write that must not block left unwritten: they
    /// go before anything else.
    left: Vec<u8>,
    /// When bytes last went out, for heartbeats.
    pub last_sent: Instant,
}

/// What [`Writer::write_now`] did with its frames.
pub enum WroteNow {
    /// Written whole.
    All,
    /// Sealed, and partly or not at all written: the link thread must
    /// write the rest ([`Writer::write_left`]).
    Partly,
}

/// A non-blocking socket whose writes wait for room, up to a timeout.
struct Waiting {
    stream: TcpStream,
    room: Poll,
    events: Events,
    timeout: Duration,
}

impl Write for Waiting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match (&self.stream).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer took nothing for {:?}", self.timeout),
                ));
            };
            match self.room.poll(&mut self.events, Some(left)) {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
                _ => {}
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Writer {
    /// Writes that wait wait at most `timeout` for room in the socket.
    pub fn new(stream: TcpStream, sealer: Sealer, timeout: Duration) -> io::Result<Writer> {
        let room = Poll::new()?;
        let fd = stream.as_raw_fd();
        room.registry()
            .register(&mut SourceFd(&fd), Token(0), Interest::WRITABLE)?;
        Ok(Writer {
            stream: Waiting {
                stream,
                room,
                events: Events::with_capacity(2),
                timeout,
            },
            sealer,
            out: Vec::new(),
            left: Vec::new(),
            last_sent: Instant::now(),
        })
    }

    /// Writes, blocking, the bytes a write that must not block left over.
    pub fn write_left(&mut self) -> io::Result<()> {
        if self.left.is_empty() {
            return Ok(());
        }
        let r = self.stream.write_all(&self.left);
        self.left.clear();
        self.sent(r)
    }

    /// Seals and writes `frames`, blocking (after what was left over).
    pub fn write_frames<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a [u8]>,
    ) -> io::Result<()> {
        self.write_left()?;
        let r = session::write_frames(&mut self.stream, &mut self.sealer, frames, &mut self.out);
        self.sent(r)
    }

    /// Seals and writes one heartbeat, blocking.
    pub fn write_heartbeat(&mut self) -> io::Result<()> {
        self.write_left()?;
        let r = session::write_heartbeat(&mut self.stream, &mut self.sealer, &mut self.out);
        self.sent(r)
    }

    fn sent(&mut self, r: io::Result<()>) -> io::Result<()> {
        if r.is_ok() {
            self.last_sent = Instant::now();
        }
        r
    }

    /// Seals `frames` and writes, in one write, what the socket takes
    /// without blocking, if no bytes are left over and `queue_empty` (the
    /// lock is held) says nothing waits before them; otherwise declines
    /// (None) and they stay the caller's.
    pub fn write_now(
        &mut self,
        frames: &[&[u8]],
        queue_empty: impl FnOnce() -> bool,
        counters: &PeerCells,
    ) -> Option<WroteNow> {
        if !self.left.is_empty() || !queue_empty() {
            return None;
        }
        self.out.clear();
        let sealed = frames
            .iter()
            .flat_map(|f| super::wire::chunks(f))
            .all(|c| self.sealer.seal_into(c, &mut self.out).is_ok());
        if !sealed {
            // Sealing fails only past the nonce space: the link thread's
            // own attempt ends the connection.
            return None;
        }
        // Sealed: from here on the frames are this connection's, whatever
        // the socket takes.
        let bytes: usize = frames.iter().map(|f| f.len()).sum();
        counters.add(PeerCounter::FramesOut, frames.len() as u64);
        counters.add(PeerCounter::BytesOut, bytes as u64);
        let sock = socket2::SockRef::from(&self.stream.stream);
        // Would block, or failed: the link thread's blocking write finds
        // out which.
        let written: usize = sock
            .send_with_flags(&self.out, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            .unwrap_or_default();
        if written == self.out.len() {
            self.last_sent = Instant::now();
            return Some(WroteNow::All);
        }
        let Writer { out, left, .. } = self;
        left.extend_from_slice(&out[written..]);
        Some(WroteNow::Partly)
    }
}
