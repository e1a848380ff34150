//! The listener thread: accepts connections on the control address and runs
//! each handshake on a short-lived thread of its own, so that a slow or
//! hostile client cannot hold up real peers. An authenticated session is
//! handed to its peer's link thread.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use tracing::{debug, warn};

use super::counters::PeerCounter;
use super::link::{describe, LinkCtl, HANDSHAKE_TIMEOUT};
use super::noise;
use super::session::Session;
use super::state::{PeerState, Shared};

/// Handshakes in progress at once; connections beyond are closed at once.
pub const MAX_PENDING_HANDSHAKES: usize = 32;
/// How often the non-blocking accept loop looks for new connections and
/// for shutdown.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// A peer as the listener needs it: its state and its link's mailbox.
#[derive(Clone)]
pub struct Route {
    pub peer: Arc<PeerState>,
    pub link: Sender<LinkCtl>,
}

pub fn run(shared: Arc<Shared>, listener: TcpListener, routes: Arc<HashMap<String, Route>>) {
    let mut pending: Vec<JoinHandle<()>> = Vec::new();
    while !shared.is_shutting_down() {
        match listener.accept() {
            Ok((stream, from)) => {
                pending.retain(|h| !h.is_finished());
                if pending.len() >= MAX_PENDING_HANDSHAKES {
                    shared.unattributed.add(PeerCounter::HandshakeFailures, 1);
                    warn!(peer_addr = %from, "too many handshakes in progress; connection refused");
                    continue;
                }
                let shared = Arc::clone(&shared);
                let routes = Arc::clone(&routes);
                let spawned = thread::Builder::new()
                    .name("peer-handshake".into())
                    .spawn(move || accept_one(&shared, &routes, stream, from));
                match spawned {
                    Ok(h) => pending.push(h),
                    Err(e) => warn!(peer_addr = %from, "cannot start a handshake thread: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Typically EMFILE: wait rather than spin.
                warn!("accepting a control connection failed: {e}");
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
    routes: &HashMap<String, Route>,
    mut stream: TcpStream,
    from: SocketAddr,
) {
    let Ok(guard) = shared.sockets.register(&stream) else {
        return; // shutting down
    };
    if let Err(e) = stream.set_nonblocking(false) {
        warn!(peer_addr = %from, "cannot use control connection: {e}");
        return;
    }
    let _ = stream.set_nodelay(true);
    let expects = |name: &str| routes.get(name).is_some_and(|r| !r.peer.we_dial);
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    match noise::accept(&mut stream, &shared.psk, &shared.node, expects, deadline) {
        Ok((name, sealer, opener)) => {
            let route = &routes[&name];
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
                    warn!(peer = %name, peer_addr = %from, "inbound session dropped: link busy")
                }
            }
        }
        Err(failure) => {
            if shared.is_shutting_down() {
                return;
            }
            // Count against the peer only once it has proved the PSK and
            // named a configured node; anything else is anonymous.
            match failure.claimed.as_deref().and_then(|n| routes.get(n)) {
                Some(route) => route.peer.counters.add(PeerCounter::HandshakeFailures, 1),
                None => shared.unattributed.add(PeerCounter::HandshakeFailures, 1),
            }
            warn!(
                peer_addr = %from,
                claimed = failure.claimed.as_deref().unwrap_or("-"),
                "control handshake rejected: {}",
                describe(&failure.error)
            );
        }
    }
}
