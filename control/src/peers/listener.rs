//! The listener thread: accepts connections on the control address and runs
//! each handshake on a short-lived thread of its own, so that a slow or
//! hostile client cannot hold up real peers. Who gets a handshake is
//! [`admission`](super::admission)'s call. An authenticated session is
//! handed to its peer's link thread.
//!
//! Every refusal and failure on the control port is counted, and logged at
//! most once per source address a [`LOG_INTERVAL`], with the number of
//! others since: a flood costs a line a second, not a line an attempt.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use baton_counters::RateLimit;
use crossbeam_channel::{Sender, TrySendError};
use tracing::{debug, warn};

use super::admission::{Admission, Slot};
use super::counters::PeerCounter;
use super::link::{describe, LinkCtl};
use super::noise;
use super::session::Session;
use super::state::{PeerState, Shared};

/// The shortest time between two log lines about one source address.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);
/// How often the non-blocking accept loop looks for new connections and
/// for shutdown: a peer's connection waits at most this long to be
/// accepted (once per peer restart), and each look costs an idle node a
/// wake-up (0.2 % of a core at 20 ms, 0.05 % at 100 ms).
const ACCEPT_POLL: Duration = Duration::from_millis(100);

/// A peer as the listener and [`super::PeerIo`] need it: its state,
/// its link's mailbox and its send queue.
#[derive(Clone)]
pub struct Route {
    pub peer: Arc<PeerState>,
    pub link: Sender<LinkCtl>,
    pub outbox: Sender<Vec<u8>>,
    /// Rings the link thread to write what a write at once left over.
    pub left: Sender<()>,
}

/// The control port's log lines, one per source address an interval
/// (`None`: what has no source, such as a failed accept).
pub struct PortLog(Mutex<RateLimit<Option<IpAddr>>>);

impl Default for PortLog {
    fn default() -> Self {
        PortLog(Mutex::new(RateLimit::new(LOG_INTERVAL)))
    }
}

impl PortLog {
    /// Logs `what()` about `source` unless a line about it was logged less
    /// than [`LOG_INTERVAL`] ago; then it is only counted, for the next.
    pub fn warn(&self, source: Option<IpAddr>, what: impl FnOnce() -> String) {
        let allowed = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow(source, Instant::now());
        let Some(more) = allowed else { return };
        let from = source.map_or_else(|| "-".to_string(), |ip| ip.to_string());
        if more == 0 {
            warn!(peer_addr = %from, "control port: {}", what());
        } else {
            warn!(
                peer_addr = %from,
                "control port: {} ({more} more refused or failed from this address since the last line)",
                what()
            );
        }
    }
}

/// The configured peers by name, as the listener routes their sessions:
/// changed by a reload.
pub type Routes = Arc<RwLock<HashMap<String, Route>>>;

pub fn run(shared: Arc<Shared>, listener: TcpListener, routes: Routes, admission: Arc<Admission>) {
    let mut pending: Vec<JoinHandle<()>> = Vec::new();
    while !shared.is_closing() {
        match listener.accept() {
            Ok((stream, from)) => {
                pending.retain(|h| !h.is_finished());
                let slot = match admission.admit(from.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        // Dropping the stream closes it.
                        shared.unattributed.add(refusal.counter(), 1);
                        shared.port_log.warn(Some(from.ip()), || {
                            format!("connection refused: {}", refusal.describe())
                        });
                        continue;
                    }
                };
                let shared_ = Arc::clone(&shared);
                let routes = Arc::clone(&routes);
                let spawned = thread::Builder::new()
                    .name("peer-handshake".into())
                    .spawn(move || accept_one(&shared_, &routes, stream, from, slot));
                match spawned {
                    Ok(h) => pending.push(h),
                    Err(e) => {
                        shared.unattributed.add(PeerCounter::RefusedNoThread, 1);
                        shared.port_log.warn(Some(from.ip()), || {
                            format!("connection refused: cannot start a handshake thread: {e}")
                        });
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Typically EMFILE: wait rather than spin.
                shared.unattributed.add(PeerCounter::AcceptFailures, 1);
                shared
                    .port_log
                    .warn(None, || format!("accepting a connection failed: {e}"));
                thread::sleep(ACCEPT_POLL * 5);
            }
        }
    }
    // Their sockets were shut down with every other, so they end promptly.
    for h in pending {
        let _ = h.join();
    }
    debug!("listener stopped");
}

fn accept_one(
    shared: &Shared,
    routes: &RwLock<HashMap<String, Route>>,
    mut stream: TcpStream,
    from: SocketAddr,
    slot: Slot,
) {
    let Ok(guard) = shared.sockets.register(&stream) else {
        return; // shutting down
    };
    if let Err(e) = stream.set_nonblocking(false) {
        shared.unattributed.add(PeerCounter::HandshakeFailures, 1);
        shared.port_log.warn(Some(from.ip()), || {
            format!("cannot use control connection: {e}")
        });
        return;
    }
    let _ = stream.set_nodelay(true);
    let route = |name: &str| {
        let routes = routes.read().unwrap_or_else(PoisonError::into_inner);
        routes.get(name).cloned()
    };
    let expects = |name: &str| route(name).is_some_and(|r| !r.peer.we_dial);
    let deadline = Instant::now() + slot.timeout();
    let accepted = noise::accept(&mut stream, &shared.psk, &shared.node, expects, deadline);
    // The handshake is over: its place is free for the next.
    drop(slot);
    match accepted {
        Ok((name, sealer, opener)) => {
            let Some(route) = route(&name) else {
                return; // removed meanwhile (a reload)
            };
            let session = Session {
                stream,
                sealer,
                opener,
                guard,
            };
            match route.link.try_send(LinkCtl::Inbound(session)) {
                Ok(()) => debug!(peer = %name, peer_addr = %from, "inbound session accepted"),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    // The link is already swamped with new sessions; the
                    // peer will dial again.
                    route.peer.counters.add(PeerCounter::HandshakeFailures, 1);
                    shared.port_log.warn(Some(from.ip()), || {
                        format!("inbound session of {name} dropped: link busy")
                    });
                }
            }
        }
        Err(failure) => {
            if shared.is_shutting_down() {
                return;
            }
            // Count against the peer only once it has proved the PSK and
            // named a configured node; anything else is anonymous.
            match failure.claimed.as_deref().and_then(route) {
                Some(route) => route.peer.counters.add(PeerCounter::HandshakeFailures, 1),
                None => shared.unattributed.add(PeerCounter::HandshakeFailures, 1),
            }
            shared.port_log.warn(Some(from.ip()), || {
                format!(
                    "handshake rejected (claimed node {}): {}",
                    failure.claimed.as_deref().unwrap_or("-"),
                    describe(&failure.error)
                )
            });
        }
    }
}
