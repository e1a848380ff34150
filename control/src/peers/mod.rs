//! Peer channels: one persistent, authenticated, encrypted TCP connection
//! from this node to each peer node, carrying opaque application frames
//! (handoff and load messages).
//!
//! - **Crypto**: Noise `NNpsk0` with the cluster's pre-shared key, via
//!   `snow`; see [`noise`] for why this pattern.
//! - **Who dials**: of two nodes, the one whose name sorts lower (byte-wise)
//!   dials, the other accepts. There is never more than one connection per
//!   pair, with no tie-breaking. If the dialer connects again while the
//!   acceptor still holds an old connection, the new one replaces it.
//! - **Framing**: see [`wire`]. Frames up to [`MAX_FRAME_LEN`] bytes;
//!   larger than one Noise message means several messages.
//! - **Liveness**: a heartbeat goes out whenever nothing else has been sent
//!   for `heartbeat_interval`. A peer from which no valid message arrived
//!   for `suspect_after` is Suspect (it stays Up, and is Recovered when it
//!   is heard from again); for `dead_after`, Down, and its connection is
//!   closed. A connection the peer closes or resets is Down at once.
//! - **Failure**: a handshake failure or a garbage frame closes that
//!   connection and is counted; the dialer then reconnects with exponential
//!   back-off (100 ms doubling to 5 s, with jitter).
//!
//! Threads: one listener, one link thread per peer (dialing, writing,
//! heartbeats, Up/Down), one reader per live connection and a short-lived
//! thread per inbound handshake. A frame offered while the link thread has
//! nothing queued is written at once by the thread offering it, any thread
//! may read what a connection holds ([`PeerIo`]), and a frame read may be
//! handed to a [`FrameSink`] on the thread that read it: each saves thread
//! wake-ups on a handoff's path (see `writer.rs` and `reading.rs`). The API only touches bounded channels and
//! atomics, so it never blocks for long.

mod admission;
mod backoff;
mod counters;
mod link;
mod listener;
mod noise;
mod reading;
mod session;
mod slot;
mod state;
mod writer;
// Public, though not part of the API, only so that the fuzz targets in
// control/fuzz can feed the frame reader's parts arbitrary bytes.
#[doc(hidden)]
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{bounded, Receiver, TrySendError};

pub use counters::{PeerCounter, PeerValues};
pub use noise::NOISE_PARAMS;
pub use wire::MAX_FRAME_LEN;

use admission::Admission;
use link::{Link, LinkCtl};
use listener::{Route, Routes};
use state::{PeerState, Shared, SocketRegistry};
use writer::WroteNow;

/// Frames waiting to be written to one peer. `send` fails when it is full.
pub const OUTBOX_FRAMES: usize = 1024;
/// Events waiting for the application. When it is full, readers stop
/// reading, and TCP pushes back on the peers.
pub const EVENT_QUEUE: usize = 4096;
/// The longest node name (it travels in the handshake with a 1-byte length).
pub const MAX_NAME_LEN: usize = 255;

/// A peer node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Its node name, as it calls itself in its own [`ChannelConfig::node`].
    pub name: String,
    /// Its control address. Used only when this node dials it.
    pub addr: SocketAddr,
}

/// Everything the peer channels need.
#[derive(Clone)]
pub struct ChannelConfig {
    /// This node's name.
    pub node: String,
    /// The control address to listen on.
    pub listen: SocketAddr,
    /// The cluster's pre-shared key.
    pub psk: [u8; 32],
    pub peers: Vec<PeerConfig>,
    /// Send a heartbeat when nothing else was sent for this long.
    pub heartbeat_interval: Duration,
    /// A peer heard nothing from for this long is Suspect.
    pub suspect_after: Duration,
    /// A peer heard nothing from for this long is Down.
    pub dead_after: Duration,
}

impl std::fmt::Debug for ChannelConfig {
    // By hand, to keep the key out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("node", &self.node)
            .field("listen", &self.listen)
            .field("psk", &"<redacted>")
            .field("peers", &self.peers)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("suspect_after", &self.suspect_after)
            .field("dead_after", &self.dead_after)
            .finish()
    }
}

/// What the background threads report to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A connection to the peer is established and authenticated.
    Up { peer: String },
    /// Nothing heard from the peer for `suspect_after`, though its
    /// connection is up. Only between an `Up` and its `Down`, and followed
    /// by a `Recovered` or the `Down`.
    Suspect { peer: String },
    /// A suspect peer was heard from again.
    Recovered { peer: String },
    /// The connection is gone. Always follows an `Up` for the same peer.
    Down { peer: String },
    /// An application frame from the peer.
    Frame { peer: String, frame: Vec<u8> },
}

impl PeerEvent {
    /// The peer it is about.
    pub fn peer(&self) -> &str {
        match self {
            PeerEvent::Up { peer }
            | PeerEvent::Suspect { peer }
            | PeerEvent::Recovered { peer }
            | PeerEvent::Down { peer }
            | PeerEvent::Frame { peer, .. } => peer,
        }
    }
}

/// Takes a peer's frames on its reader thread, before they would become
/// [`PeerEvent::Frame`]s: an application that can act on a frame there
/// saves the wake-up of the thread that waits for events. Frames it gives
/// back go out as events, in order with the rest; the sink sees every frame
/// in order, and keeps what it takes in order with what it gave back (a
/// frame it gave back may still wait to be queued when it is offered the
/// next).
pub trait FrameSink: Send + Sync {
    /// Delivers `frame` from `peer`, or gives it back.
    fn deliver(&self, peer: &str, frame: Vec<u8>) -> Result<(), Vec<u8>>;
    /// An event about `peer` (a frame given back, Up, Down, Suspect,
    /// Recovered) is about to be queued for the application, ahead of
    /// whatever the sink is offered next.
    fn queued(&self, peer: &str);
}

/// Why the channels could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot listen for peers on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("peer channel configuration: {0}")]
    Config(String),
    #[error("cannot start peer channel thread: {0}")]
    Thread(io::Error),
}

/// Why a frame was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no peer named {0:?}")]
    UnknownPeer(String),
    #[error("peer {0:?} is down")]
    PeerDown(String),
    #[error("send queue to peer {0:?} is full")]
    QueueFull(String),
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
}

/// One peer's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: String,
    pub addr: SocketAddr,
    /// True if this node dials the peer, false if the peer dials this node.
    pub dials: bool,
    pub up: bool,
    /// Up, but not heard from for `suspect_after`.
    pub suspect: bool,
    /// When `up` last changed (or the channels started).
    pub since: SystemTime,
    /// This peer's own counts (its `Peers` is 1, its `PeersUp` is `up`).
    pub counters: PeerValues,
}

/// The running peer channels. Dropping it closes every connection and joins
/// every background thread (within about a second even when a dial is in
/// progress).
pub struct PeerChannels {
    shared: Arc<Shared>,
    peers: HashMap<String, Route>,
    /// In config order, for `status`.
    order: Vec<String>,
    /// What the listener needs of the peers.
    routes: Routes,
    admission: Arc<Admission>,
    /// An `Option` so that `Drop` can close it first: background threads
    /// blocked on a full queue then give up at once.
    events: Option<Receiver<PeerEvent>>,
    local_addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl PeerChannels {
    /// Validates the configuration, binds the listener and starts the
    /// background threads. Peers come Up asynchronously; watch the events.
    pub fn start(cfg: ChannelConfig) -> Result<PeerChannels, PeerError> {
        Self::start_with_sink(cfg, None)
    }

    /// [`PeerChannels::start`], with the frames offered to `sink` first.
    pub fn start_with_sink(
        cfg: ChannelConfig,
        sink: Option<Arc<dyn FrameSink>>,
    ) -> Result<PeerChannels, PeerError> {
        validate(&cfg)?;
        let listener = TcpListener::bind(cfg.listen).map_err(|source| PeerError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| PeerError::Bind {
            addr: cfg.listen,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| PeerError::Bind {
                addr: cfg.listen,
                source,
            })?;

        let (events_tx, events_rx) = bounded(EVENT_QUEUE);
        let shared = Arc::new(Shared {
            node: cfg.node.clone(),
            psk: cfg.psk,
            heartbeat_interval: cfg.heartbeat_interval,
            suspect_after: cfg.suspect_after,
            dead_after: cfg.dead_after,
            shutdown: Default::default(),
            closing: Default::default(),
            events: events_tx,
            sink,
            sockets: Arc::new(SocketRegistry::default()),
            unattributed: Default::default(),
            port_log: Default::default(),
        });

        let mut channels = PeerChannels {
            shared: Arc::clone(&shared),
            peers: HashMap::new(),
            order: Vec::new(),
            routes: Default::default(),
            admission: Admission::new([]),
            events: Some(events_rx),
            local_addr,
            threads: Vec::new(),
        };
        for p in &cfg.peers {
            // On error, `channels` is dropped, which stops what was started.
            channels.add(p.clone())?;
        }
        let (routes, admission) = (
            Arc::clone(&channels.routes),
            Arc::clone(&channels.admission),
        );
        channels.spawn("peer-listener".into(), move || {
            listener::run(shared, listener, routes, admission)
        })?;
        Ok(channels)
    }

    /// Starts the channel to one more peer (at start, or a reload): it
    /// comes Up asynchronously, as the others did.
    pub fn add(&mut self, p: PeerConfig) -> Result<(), PeerError> {
        if p.name == self.shared.node || self.peers.contains_key(&p.name) {
            return Err(PeerError::Config(format!(
                "peer {:?} is listed twice, or is this node",
                p.name
            )));
        }
        let state = Arc::new(PeerState::new(
            p.name.clone(),
            p.addr,
            self.shared.node.as_str() < p.name.as_str(),
        ));
        let (outbox_tx, outbox_rx) = bounded(OUTBOX_FRAMES);
        let (link_tx, link_rx) = bounded(4);
        let (done_tx, done_rx) = bounded(4);
        let (left_tx, left_rx) = bounded(1);
        let link = Link {
            shared: Arc::clone(&self.shared),
            peer: Arc::clone(&state),
            outbox: outbox_rx,
            left: left_rx,
            ctl: link_rx,
            reader_done_tx: done_tx,
            reader_done: done_rx,
        };
        self.spawn(format!("peer-link-{}", p.name), move || link.run())?;
        let route = Route {
            peer: state,
            link: link_tx,
            outbox: outbox_tx,
            left: left_tx,
        };
        self.routes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(p.name.clone(), route.clone());
        self.order.push(p.name.clone());
        self.peers.insert(p.name, route);
        self.admit_peers();
        Ok(())
    }

    /// Closes the channel to `peer` for good (a reload removed it): it
    /// goes Down, if it was Up, and is no longer dialed or accepted. What
    /// it counted stays in the totals.
    pub fn remove(&mut self, peer: &str) {
        let Some(handle) = self.peers.remove(peer) else {
            return;
        };
        self.routes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(peer);
        self.order.retain(|p| p != peer);
        self.admit_peers();
        handle.peer.set_removed();
        let _ = handle.link.try_send(LinkCtl::Shutdown);
        let counted = handle.peer.counters.read();
        for &counter in PeerCounter::ALL {
            if counter.kind() != baton_counters::Kind::Gauge {
                self.shared.unattributed.add(counter, counted.get(counter));
            }
        }
        self.threads.retain(|t| !t.is_finished());
    }

    fn admit_peers(&self) {
        self.admission
            .set_peers(self.peers.values().map(|h| h.peer.addr.ip()));
    }

    fn spawn(&mut self, name: String, f: impl FnOnce() + Send + 'static) -> Result<(), PeerError> {
        let handle = thread::Builder::new()
            .name(name)
            .spawn(f)
            .map_err(PeerError::Thread)?;
        self.threads.push(handle);
        Ok(())
    }

    /// The address actually listened on (useful when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues `frame` for `peer` without blocking. Fails if the peer is
    /// unknown or Down (frames are never kept for a later connection), if
    /// its queue is full, or if the frame is larger than [`MAX_FRAME_LEN`].
    pub fn send(&self, peer: &str, frame: Vec<u8>) -> Result<(), SendError> {
        self.offer(peer, frame).map_err(|(e, _)| e)
    }

    /// [`PeerChannels::send`], giving the frame back when it fails, so that
    /// it may be offered again once the queue has room.
    pub fn offer(&self, peer: &str, frame: Vec<u8>) -> Result<(), (SendError, Vec<u8>)> {
        let Some(handle) = self.peers.get(peer) else {
            return Err((SendError::UnknownPeer(peer.to_owned()), frame));
        };
        if frame.len() > MAX_FRAME_LEN {
            let len = frame.len();
            return Err((
                SendError::TooLarge {
                    len,
                    max: MAX_FRAME_LEN,
                },
                frame,
            ));
        }
        if !handle.peer.is_up() {
            return Err((SendError::PeerDown(peer.to_owned()), frame));
        }
        if write_now(&self.shared, handle, &[&frame]) {
            return Ok(());
        }
        handle.outbox.try_send(frame).map_err(|e| match e {
            TrySendError::Full(f) => (SendError::QueueFull(peer.to_owned()), f),
            TrySendError::Disconnected(f) => (SendError::PeerDown(peer.to_owned()), f),
        })
    }

    /// A handle that writes frames to the peers from any thread when the
    /// link threads have nothing queued, and reads what the peers sent
    /// ([`PeerIo`]).
    pub fn io(&self) -> PeerIo {
        PeerIo {
            shared: Arc::downgrade(&self.shared),
            routes: Arc::downgrade(&self.routes),
        }
    }

    /// The number of `peer`'s connection, while it is up: it changes
    /// with every reconnection, so that what was meant for one connection
    /// is not sent on the next.
    pub fn connection(&self, peer: &str) -> Option<u64> {
        self.peers.get(peer)?.peer.connection()
    }

    /// Closes the connection to `peer` because of `why` (a message that
    /// decrypted but made no sense). The peer goes Down, and the channel is
    /// re-established as after any other failure.
    pub fn reset(&self, peer: &str, why: impl Into<String>) {
        if let Some(handle) = self.peers.get(peer) {
            let _ = handle.link.try_send(LinkCtl::Reset(why.into()));
        }
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<PeerEvent> {
        self.events.as_ref()?.try_recv().ok()
    }

    /// The event queue itself, for callers that wait on several channels at
    /// once (`crossbeam_channel::select!`).
    pub fn events(&self) -> Option<&Receiver<PeerEvent>> {
        self.events.as_ref()
    }

    /// The next event, waiting at most `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<PeerEvent> {
        self.events.as_ref()?.recv_timeout(timeout).ok()
    }

    /// Every configured peer, in configuration order.
    pub fn status(&self) -> Vec<PeerStatus> {
        self.order
            .iter()
            .map(|name| self.peers[name].peer.status())
            .collect()
    }

    /// Totals over all peers, and what no one peer is blamed for.
    pub fn counters(&self) -> PeerValues {
        let mut total = self.shared.unattributed.read();
        for handle in self.peers.values() {
            total += handle.peer.counters.read();
        }
        total
    }
}

impl PeerChannels {
    /// Closes every connection in good order and stops: each peer is sent
    /// a FIN and sees this node Down at once (rather than after
    /// `dead_after`), and this waits up to `linger` for every peer to close
    /// its side in turn, which says the FIN arrived. The packets of these
    /// connections must still be able to leave the node meanwhile.
    pub fn close(self, linger: Duration) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.sockets.finish_all();
        let deadline = std::time::Instant::now() + linger;
        while std::time::Instant::now() < deadline && self.peers.values().any(|p| p.peer.is_up()) {
            thread::sleep(Duration::from_millis(2));
        }
        // Drop does the rest.
    }
}

/// Writes frames to the peers, and reads theirs, from any thread; see
/// [`PeerChannels::io`].
///
/// It holds the channels weakly: a [`FrameSink`] the channels hold may hold
/// it, and once the channels are gone it does nothing.
#[derive(Clone)]
pub struct PeerIo {
    shared: Weak<Shared>,
    routes: Weak<RwLock<HashMap<String, Route>>>,
}

impl PeerIo {
    /// Reads what every peer's connection holds now, and delivers it, on
    /// the calling thread, without waiting for anything: what the
    /// application's event queue does not take at once waits for the
    /// reader thread. A connection another thread is reading is skipped.
    /// For a thread that has just handed the kernel a segment of a peer's
    /// channel (see `reading`).
    pub fn read_now(&self) {
        let (Some(shared), Some(routes)) = (self.shared.upgrade(), self.routes.upgrade()) else {
            return;
        };
        let routes = routes.read().unwrap_or_else(PoisonError::into_inner);
        for r in routes.values() {
            r.peer
                .reading
                .try_with(|reading| reading.read_now(&shared, &r.peer));
        }
    }

    /// Seals `frames` and writes them to `peer` at once, in one write,
    /// without blocking, if the peer is up and its link thread has nothing
    /// queued and is not writing: whether it did. If not, they are still
    /// the caller's, for [`PeerChannels::offer`]. What the socket does not
    /// take at once the link thread writes.
    pub fn write_now(&self, peer: &str, frames: &[&[u8]]) -> bool {
        let (Some(shared), Some(routes)) = (self.shared.upgrade(), self.routes.upgrade()) else {
            return false;
        };
        let routes = routes.read().unwrap_or_else(PoisonError::into_inner);
        match routes.get(peer) {
            Some(r) if r.peer.is_up() && frames.iter().all(|f| f.len() <= MAX_FRAME_LEN) => {
                write_now(&shared, r, frames)
            }
            _ => false,
        }
    }
}

/// [`PeerIo::write_now`], for a peer that is up.
fn write_now(shared: &Shared, to: &Route, frames: &[&[u8]]) -> bool {
    if shared.is_closing() {
        return false;
    }
    let queue_empty = || to.outbox.is_empty();
    let counters = &to.peer.counters;
    match to
        .peer
        .writer
        .try_with(|w| w.write_now(frames, queue_empty, counters))
        .flatten()
    {
        None => return false,
        Some(WroteNow::All) => {}
        // Full, it has been rung already: it writes what is left over
        // whenever it wakes.
        Some(WroteNow::Partly) => _ = to.left.try_send(()),
    }
    true
}

impl Drop for PeerChannels {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Closed first: a reader blocked on a full event queue returns.
        self.events = None;
        // Wakes every thread blocked in a socket read or write.
        self.shared.sockets.close_all();
        for p in self.peers.values() {
            let _ = p.link.try_send(LinkCtl::Shutdown);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn validate(cfg: &ChannelConfig) -> Result<(), PeerError> {
    let bad = |msg: String| Err(PeerError::Config(msg));
    let check_name = |what: &str, name: &str| {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return bad(format!(
                "{what} name {name:?} must be 1 to {MAX_NAME_LEN} bytes long"
            ));
        }
        Ok(())
    };
    check_name("node", &cfg.node)?;
    let mut seen = std::collections::HashSet::new();
    for p in &cfg.peers {
        check_name("peer", &p.name)?;
        if p.name == cfg.node {
            return bad(format!("peer {:?} has this node's own name", p.name));
        }
        if !seen.insert(p.name.as_str()) {
            return bad(format!("peer {:?} is listed twice", p.name));
        }
    }
    if cfg.heartbeat_interval.is_zero() {
        return bad("heartbeat_interval must be more than zero".into());
    }
    if cfg.suspect_after <= cfg.heartbeat_interval {
        return bad(format!(
            "suspect_after ({:?}) must be longer than heartbeat_interval ({:?})",
            cfg.suspect_after, cfg.heartbeat_interval
        ));
    }
    if cfg.dead_after <= cfg.suspect_after {
        return bad(format!(
            "dead_after ({:?}) must be longer than suspect_after ({:?})",
            cfg.dead_after, cfg.suspect_after
        ));
    }
    Ok(())
}
