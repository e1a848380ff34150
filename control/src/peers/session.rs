//! One established, authenticated connection to a peer: its reader
//! thread, and the writing helpers the link thread uses.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::counters::PeerCounter;
use super::noise::{Opener, Sealer};
use super::reading::Reading;
use super::state::{PeerState, Shared, SocketGuard};
use super::wire::{self, Message};
use super::PeerEvent;

/// A connection that has passed the handshake.
pub struct Session {
    pub stream: TcpStream,
    pub sealer: Sealer,
    pub opener: Opener,
    /// Keeps the socket in the shutdown registry for the session's life.
    pub guard: SocketGuard,
}

/// Why a session ended.
#[derive(Debug)]
pub enum EndReason {
    /// The peer closed the connection.
    Closed,
    Io(io::Error),
    /// No valid message for longer than `dead_after`.
    Silent(Duration),
    /// Bytes that were not a valid encrypted frame.
    BadFrame(String),
    /// The peer dialed again; the new connection takes over.
    Replaced,
    /// This node is shutting down.
    Shutdown,
    /// The application rejected a message and asked for a fresh connection.
    Rejected(String),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Closed => write!(f, "connection closed by the peer"),
            EndReason::Io(e) => write!(f, "i/o error: {e}"),
            EndReason::Silent(d) => write!(f, "nothing received for {d:?}"),
            EndReason::BadFrame(why) => write!(f, "bad frame: {why}"),
            EndReason::Rejected(why) => write!(f, "message rejected: {why}"),
            EndReason::Replaced => write!(f, "replaced by a new connection"),
            EndReason::Shutdown => write!(f, "shutting down"),
        }
    }
}

/// What the reader tells the link thread when it stops.
pub struct ReaderEnded {
    pub generation: u64,
    pub reason: EndReason,
}

/// The reader thread: reads and delivers what no other thread has (see
/// [`super::reading`]), watches liveness. Returns (and reports on `done`)
/// when the session is over.
pub fn read_loop(
    shared: Arc<Shared>,
    peer: Arc<PeerState>,
    stream: TcpStream,
    opener: Opener,
    generation: u64,
    done: Sender<ReaderEnded>,
) {
    let reason = read_until_end(&shared, &peer, &stream, opener);
    // What a worker's read left waiting goes before the Down: it is on the
    // way already (and counted so by the sink).
    if let Some(mut reading) = peer.reading.take() {
        reading.flush_pending(&shared);
    }
    // Ends a write the link thread may be blocked in, so that the session
    // is torn down now rather than when that write times out.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    if let EndReason::BadFrame(_) = reason {
        peer.counters.add(PeerCounter::BadFrames, 1);
    }
    if let EndReason::Silent(_) = reason {
        peer.counters.add(PeerCounter::DeadTimeouts, 1);
    }
    // Wake the link thread at once so it reports Down without waiting for
    // its next heartbeat. The channel outlives the session, and the link
    // ignores reports from older generations.
    let _ = done.send(ReaderEnded { generation, reason });
}

fn read_until_end(
    shared: &Shared,
    peer: &PeerState,
    stream: &TcpStream,
    opener: Opener,
) -> EndReason {
    const SOCKET: Token = Token(0);
    const WOKEN: Token = Token(1);
    // Wake up regularly to check liveness and shutdown even when idle.
    let tick = (shared.suspect_after / 4).clamp(Duration::from_millis(10), super::state::TICK);
    let start = || -> io::Result<(Poll, Reading)> {
        let poll = Poll::new()?;
        let fd = stream.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), SOCKET, Interest::READABLE)?;
        let woken = Arc::new(Waker::new(poll.registry(), WOKEN)?);
        // The link thread made the socket non-blocking: every read, on any
        // thread, returns at once.
        Ok((poll, Reading::new(stream.try_clone()?, opener, woken)))
    };
    let mut poll = match start() {
        Ok((poll, reading)) => {
            peer.reading.set(Some(reading));
            poll
        }
        Err(e) => return EndReason::Io(e),
    };
    let mut events = Events::with_capacity(4);
    loop {
        if shared.is_shutting_down() {
            return EndReason::Shutdown;
        }
        // With the lock held throughout: a worker's read that hears the
        // peer (and says it recovered) comes before or after, not between.
        let turn = peer.reading.with(|r| {
            r.read(shared, peer)?;
            let silent = r.last_heard.elapsed();
            if silent > shared.dead_after {
                return Err(EndReason::Silent(silent));
            }
            if silent > shared.suspect_after && !peer.is_suspect() {
                // Late, not dead: an overloaded path delays heartbeats.
                // Only new handoffs avoid it; `dead_after` or a closed
                // connection decide its death.
                peer.set_suspect(true);
                tracing::warn!(
                    peer = %peer.name,
                    addr = %peer.addr,
                    "peer suspect: nothing received for {} ms; no new handoffs to it",
                    silent.as_millis()
                );
                let event = PeerEvent::Suspect {
                    peer: peer.name.clone(),
                };
                if !shared.emit(event) {
                    return Err(EndReason::Shutdown);
                }
            }
            Ok(())
        });
        match turn {
            Some(Ok(())) => {}
            Some(Err(reason)) => return reason,
            None => return EndReason::Shutdown,
        }
        // Readable, woken by another thread's read, or the tick.
        if let Err(e) = poll.poll(&mut events, Some(tick)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return EndReason::Io(e);
            }
        }
    }
}

/// Sealed bytes written at once: a batch of small frames goes out in one
/// write, a large frame in pieces of about this size, so that bytes keep
/// flowing (and the peer's liveness clock fed) while it is encrypted.
const WRITE_AT: usize = 16 * 1024;

/// Encrypts and writes application frames, each in as many chunks as it
/// needs, in as few writes as `WRITE_AT` allows: frames queued together
/// (the answers to one burst of packets, say) leave in one TCP segment
/// rather than one each, which the channel sends without delay
/// (`TCP_NODELAY`).
pub fn write_frames<'a>(
    stream: &mut impl Write,
    sealer: &mut Sealer,
    frames: impl IntoIterator<Item = &'a [u8]>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    for frame in frames {
        for chunk in wire::chunks(frame) {
            sealer.seal_into(chunk, out).map_err(io::Error::other)?;
            if out.len() >= WRITE_AT {
                stream.write_all(out)?;
                out.clear();
            }
        }
    }
    if !out.is_empty() {
        stream.write_all(out)?;
    }
    Ok(())
}

/// Encrypts and writes one heartbeat.
pub fn write_heartbeat(
    stream: &mut impl Write,
    sealer: &mut Sealer,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    sealer
        .seal_into(Message::Heartbeat, out)
        .map_err(io::Error::other)?;
    stream.write_all(out)
}
