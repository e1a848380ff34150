//! State shared between the API and the background threads: configuration,
//! the shutdown flag, per-peer status and counters, and the registry of open
//! sockets that lets shutdown interrupt any blocked read or write.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{SendTimeoutError, Sender};

use super::counters::{PeerCells, PeerCounter};
use super::reading::Reading;
use super::slot::Slot;
use super::writer::Writer;
use super::{PeerEvent, PeerStatus};

/// How often a blocked background thread looks at the shutdown flag.
pub const TICK: Duration = Duration::from_millis(100);

/// Everything every background thread needs.
pub struct Shared {
    pub node: String,
    pub psk: [u8; 32],
    pub heartbeat_interval: Duration,
    pub suspect_after: Duration,
    pub dead_after: Duration,
    pub shutdown: AtomicBool,
    /// Set by [`super::PeerChannels::close`]: every connection is being
    /// closed in good order; no new one is made or accepted.
    pub closing: AtomicBool,
    pub events: Sender<PeerEvent>,
    /// Offered every frame before it becomes an event.
    pub sink: Option<Arc<dyn super::FrameSink>>,
    pub sockets: Arc<SocketRegistry>,
    /// What could not be tied to a configured peer: failed inbound
    /// handshakes (wrong PSK, garbage, unknown name).
    pub unattributed: PeerCells,
    /// The control port's refusals and failures, logged at a bounded rate.
    pub port_log: super::listener::PortLog,
}

impl Shared {
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Whether the channels are closing (or already shutting down): no
    /// connection is to be made, accepted or written to any more.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed) || self.is_shutting_down()
    }

    /// Hands an event to the API. Waits while the queue is full (that is
    /// the back-pressure that slows a fast peer down), but gives up at
    /// shutdown. Returns false if the event was not delivered.
    pub fn emit(&self, event: PeerEvent) -> bool {
        self.will_emit(&event);
        self.send_counted(event)
    }

    /// Tells the sink, if there is one, that `event` is on its way to the
    /// application: what it takes afterwards may have to wait behind it.
    /// Once for every event, before it is queued anywhere.
    pub fn will_emit(&self, event: &PeerEvent) {
        if let Some(sink) = &self.sink {
            sink.queued(event.peer());
        }
    }

    /// [`Shared::emit`] for an event [`Shared::will_emit`] has seen.
    pub fn send_counted(&self, mut event: PeerEvent) -> bool {
        loop {
            match self.events.send_timeout(event, TICK) {
                Ok(()) => return true,
                Err(SendTimeoutError::Disconnected(_)) => return false,
                Err(SendTimeoutError::Timeout(e)) => {
                    if self.is_shutting_down() {
                        return false;
                    }
                    event = e;
                }
            }
        }
    }
}

/// One configured peer as the background threads see it.
pub struct PeerState {
    pub name: String,
    pub addr: SocketAddr,
    /// True when this node dials the peer; false when the peer dials us.
    pub we_dial: bool,
    up: AtomicBool,
    /// Connections made so far: the current one's number while up.
    connections: AtomicU64,
    suspect: AtomicBool,
    /// Removed from the peers (a reload): its link stops for good.
    removed: AtomicBool,
    since: Mutex<SystemTime>,
    pub counters: PeerCells,
    /// The live connection's writing half, shared with the API.
    pub writer: Slot<Writer>,
    /// Its reading half, shared with threads that read now.
    pub reading: Slot<Reading>,
}

impl PeerState {
    pub fn new(name: String, addr: SocketAddr, we_dial: bool) -> PeerState {
        let state = PeerState {
            name,
            addr,
            we_dial,
            up: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            suspect: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            since: Mutex::new(SystemTime::now()),
            counters: PeerCells::default(),
            writer: Default::default(),
            reading: Default::default(),
        };
        state.counters.set(PeerCounter::Peers, 1);
        state
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn set_up(&self, up: bool) {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) = SystemTime::now();
        // A new connection, or none: suspicion was about the old one (and
        // is not a recovery).
        self.suspect.store(false, Ordering::Release);
        self.counters.set(PeerCounter::PeersSuspect, 0);
        if up {
            self.connections.fetch_add(1, Ordering::AcqRel);
        }
        self.up.store(up, Ordering::Release);
        self.counters.set(PeerCounter::PeersUp, u64::from(up));
    }

    /// The number of the connection up now, if one is: it changes with
    /// every reconnection.
    pub fn connection(&self) -> Option<u64> {
        self.is_up()
            .then(|| self.connections.load(Ordering::Acquire))
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    pub fn set_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }

    pub fn is_suspect(&self) -> bool {
        self.suspect.load(Ordering::Acquire)
    }

    /// Marks the peer suspect (or not); counts each change.
    pub fn set_suspect(&self, suspect: bool) {
        if self.suspect.swap(suspect, Ordering::AcqRel) != suspect {
            let change = if suspect {
                PeerCounter::Suspected
            } else {
                PeerCounter::Recovered
            };
            self.counters.add(change, 1);
        }
        self.counters
            .set(PeerCounter::PeersSuspect, u64::from(suspect));
    }

    pub fn status(&self) -> PeerStatus {
        PeerStatus {
            name: self.name.clone(),
            addr: self.addr,
            dials: self.we_dial,
            up: self.is_up(),
            suspect: self.is_suspect(),
            since: *self.since.lock().unwrap_or_else(PoisonError::into_inner),
            counters: self.counters.read(),
        }
    }
}

/// Every socket a background thread may be blocked on. At shutdown they
/// are all shut down, which wakes any thread blocked in read or write.
#[derive(Default)]
pub struct SocketRegistry {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    closed: bool,
    next_id: u64,
    sockets: HashMap<u64, TcpStream>,
}

impl SocketRegistry {
    /// Registers `stream` until the guard is dropped. Fails once shutdown
    /// has begun, so no socket can slip in after [`Self::close_all`].
    pub fn register(self: &Arc<Self>, stream: &TcpStream) -> io::Result<SocketGuard> {
        let clone = stream.try_clone()?;
        let mut reg = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if reg.closed {
            return Err(io::Error::other("peer channels are shutting down"));
        }
        let id = reg.next_id;
        reg.next_id += 1;
        reg.sockets.insert(id, clone);
        Ok(SocketGuard {
            registry: Arc::clone(self),
            id,
        })
    }

    /// Sends a FIN on every socket, leaving them open for reading: each
    /// peer sees the connection closed and closes its side in turn.
    pub fn finish_all(&self) {
        let reg = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for s in reg.sockets.values() {
            let _ = s.shutdown(Shutdown::Write);
        }
    }

    pub fn close_all(&self) {
        let mut reg = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        reg.closed = true;
        for (_, s) in reg.sockets.drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Keeps a socket registered; unregisters it on drop.
pub struct SocketGuard {
    registry: Arc<SocketRegistry>,
    id: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let mut reg = self
            .registry
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        reg.sockets.remove(&self.id);
    }
}
