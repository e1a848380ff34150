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

use super::{PeerEvent, PeerStatus};

/// How often a blocked background thread looks at the shutdown flag.
pub const TICK: Duration = Duration::from_millis(100);

/// Everything every background thread needs.
pub struct Shared {
    pub node: String,
    pub psk: [u8; 32],
    pub heartbeat_interval: Duration,
    pub dead_after: Duration,
    pub shutdown: AtomicBool,
    pub events: Sender<PeerEvent>,
    pub sockets: Arc<SocketRegistry>,
    /// Failed inbound handshakes that could not be tied to a configured
    /// peer (wrong PSK, garbage, unknown name).
    pub unattributed_handshake_failures: AtomicU64,
}

impl Shared {
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Hands an event to the API. Waits while the queue is full (that is
    /// the back-pressure that slows a fast peer down), but gives up at
    /// shutdown. Returns false if the event was not delivered.
    pub fn emit(&self, mut event: PeerEvent) -> bool {
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

/// Counters of one peer; see [`PeerStatus`] for their meaning.
#[derive(Debug, Default)]
pub struct PeerCounters {
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub connect_failures: AtomicU64,
    pub bad_frames: AtomicU64,
    pub dead_timeouts: AtomicU64,
    pub reconnects: AtomicU64,
}

pub fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// One configured peer as the background threads see it.
pub struct PeerState {
    pub name: String,
    pub addr: SocketAddr,
    /// True when this node dials the peer; false when the peer dials us.
    pub we_dial: bool,
    up: AtomicBool,
    since: Mutex<SystemTime>,
    pub counters: PeerCounters,
}

impl PeerState {
    pub fn new(name: String, addr: SocketAddr, we_dial: bool) -> PeerState {
        PeerState {
            name,
            addr,
            we_dial,
            up: AtomicBool::new(false),
            since: Mutex::new(SystemTime::now()),
            counters: PeerCounters::default(),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn set_up(&self, up: bool) {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) = SystemTime::now();
        self.up.store(up, Ordering::Release);
    }

    pub fn status(&self) -> PeerStatus {
        let c = &self.counters;
        PeerStatus {
            name: self.name.clone(),
            addr: self.addr,
            dials: self.we_dial,
            up: self.is_up(),
            since: *self.since.lock().unwrap_or_else(PoisonError::into_inner),
            frames_in: get(&c.frames_in),
            frames_out: get(&c.frames_out),
            bytes_in: get(&c.bytes_in),
            bytes_out: get(&c.bytes_out),
            frames_dropped: get(&c.frames_dropped),
            handshake_failures: get(&c.handshake_failures),
            connect_failures: get(&c.connect_failures),
            bad_frames: get(&c.bad_frames),
            dead_timeouts: get(&c.dead_timeouts),
            reconnects: get(&c.reconnects),
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
