//! The cluster side of `baton run`: the handoff engine's configuration, the
//! placement policy, and the control plane that carries handoff messages
//! between workers and peer nodes.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use baton_config::{ClusterConfig, Config, HandoffConfig};
use baton_control::peers::{ChannelConfig, PeerChannels, PeerConfig, PeerEvent};
use baton_fastpath::engine::{EngineConfig, PeerInfo};
use baton_fastpath::packet::MacAddr;
use baton_fastpath::worker::{FromWorker, ToWorker};
use baton_handoff::{Decoder, Load, Message};
use crossbeam_channel::{Receiver, Sender};

/// Reads the cluster key: 64 hex digits, surrounding white space ignored.
pub fn read_psk(path: &Path) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the cluster key `cluster.psk_file` = {}",
            path.display()
        )
    })?;
    let hex = text.trim();
    let bad = || {
        anyhow::anyhow!(
            "{}: the cluster key must be 64 hex digits (32 bytes); make one with `openssl rand -hex 32`",
            path.display()
        )
    };
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(key)
}

pub fn engine_config(
    cfg: &Config,
    cluster: &ClusterConfig,
    handoff: &HandoffConfig,
    own_mac: [u8; 6],
) -> Result<EngineConfig> {
    let Some(own) = cfg.host.address else {
        bail!("a cluster node needs `host.address`");
    };
    let ms = |v: u32| Duration::from_millis(v.into());
    Ok(EngineConfig {
        own_addr: own.addr(),
        own_mac: MacAddr(own_mac),
        vip: cluster.vip,
        services: handoff
            .services
            .iter()
            .map(|s| (s.port, service_kind(s.kind)))
            .collect(),
        peers: cluster
            .peers
            .iter()
            .map(|p| PeerInfo {
                name: p.name.clone(),
                mac: MacAddr(p.mac.octets()),
            })
            .collect(),
        hold_bytes: handoff.hold_bytes as usize,
        hold_segments: handoff.hold_segments as usize,
        hold_timeout: ms(handoff.hold_timeout_ms),
        handoff_timeout: ms(handoff.handoff_timeout_ms),
        linger: ms(handoff.linger_ms),
        idle_timeout: Duration::from_secs(handoff.idle_timeout_s.into()),
        max_flows: handoff.max_flows as usize,
    })
}

pub fn service_kind(kind: baton_config::ServiceKind) -> baton_handoff::ServiceKind {
    match kind {
        baton_config::ServiceKind::Http => baton_handoff::ServiceKind::Http,
        baton_config::ServiceKind::Tls => baton_handoff::ServiceKind::Tls,
    }
}

/// Counters of the control plane's own work, beside the channel's.
#[derive(Debug, Default)]
struct ControlCounters {
    messages_in: u64,
    messages_out: u64,
    /// Frames from a peer that decrypted but are not a valid message.
    bad_messages: u64,
    /// Messages for a peer that could not be queued (down, or its queue full).
    send_failures: u64,
    /// Messages for a worker whose queue was full.
    worker_queue_full: u64,
}

/// The control lcore's part in handoffs: it carries messages between the
/// workers and the peers, and announces this node's load.
pub struct ControlPlane {
    channels: PeerChannels,
    peers: Vec<String>,
    to_workers: Vec<Sender<ToWorker>>,
    from_worker: Receiver<FromWorker>,
    routes: Routes,
    /// Each worker's last load report; the node's load is their sum.
    loads: Vec<Load>,
    heartbeat: Duration,
    next_load: Instant,
    counters: ControlCounters,
}

impl ControlPlane {
    pub fn start(
        cfg: &Config,
        cluster: &ClusterConfig,
        to_workers: Vec<Sender<ToWorker>>,
        from_worker: Receiver<FromWorker>,
    ) -> Result<ControlPlane> {
        let own = cfg
            .host
            .address
            .map(|a| a.addr())
            .context("a cluster node needs `host.address`")?;
        let psk = read_psk(&cluster.psk_file)?;
        let peers: Vec<PeerConfig> = cluster
            .peers
            .iter()
            .map(|p| PeerConfig {
                name: p.name.clone(),
                addr: SocketAddr::V4(SocketAddrV4::new(p.address, cluster.control_port)),
            })
            .collect();
        let heartbeat = Duration::from_millis(cluster.heartbeat_ms.into());
        let channels = PeerChannels::start(ChannelConfig {
            node: cfg.node.name.clone(),
            listen: SocketAddr::V4(SocketAddrV4::new(own, cluster.control_port)),
            psk,
            peers,
            heartbeat_interval: heartbeat,
            dead_after: Duration::from_millis(cluster.dead_after_ms.into()),
        })?;
        tracing::info!(
            "control channel on {own}:{} to {} peer(s): {}",
            cluster.control_port,
            cluster.peers.len(),
            cluster
                .peers
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(ControlPlane {
            channels,
            peers: cluster.peers.iter().map(|p| p.name.clone()).collect(),
            loads: vec![Load::default(); to_workers.len()],
            to_workers,
            from_worker,
            routes: Routes::default(),
            heartbeat,
            next_load: Instant::now(),
            counters: ControlCounters::default(),
        })
    }

    /// One round: worker messages out, peer events in, load announced.
    /// Waits at most `wait` for the first message from either side, and
    /// wakes at once when one comes: every handoff crosses this loop twice
    /// on each node, so it must not sleep through one.
    pub fn tick(&mut self, wait: Duration) {
        if let Some(events) = self.channels.events().cloned() {
            crossbeam_channel::select! {
                recv(self.from_worker) -> event => {
                    if let Ok(event) = event {
                        self.on_worker(event);
                    }
                }
                recv(events) -> event => {
                    if let Ok(event) = event {
                        self.on_event(event);
                    }
                }
                default(wait) => {}
            }
        }
        while let Ok(event) = self.from_worker.try_recv() {
            self.on_worker(event);
        }
        while let Some(event) = self.channels.try_recv() {
            self.on_event(event);
        }
        let now = Instant::now();
        if now >= self.next_load {
            self.next_load = now + self.heartbeat;
            for peer in 0..self.peers.len() {
                self.send(peer, &Message::Load(self.node_load()));
            }
        }
    }

    fn on_worker(&mut self, event: FromWorker) {
        match event {
            FromWorker::Message { worker, peer, msg } => {
                self.routes.outgoing(worker, peer, &msg);
                self.send(peer, &msg);
            }
            FromWorker::Load { worker, load } => {
                if let Some(slot) = self.loads.get_mut(worker) {
                    *slot = load;
                }
            }
        }
    }

    fn node_load(&self) -> Load {
        self.loads.iter().fold(Load::default(), |sum, l| Load {
            active_connections: sum.active_connections + l.active_connections,
            pending_handoffs: sum.pending_handoffs + l.pending_handoffs,
            handed_in: sum.handed_in + l.handed_in,
        })
    }

    fn send(&mut self, peer: usize, msg: &Message) {
        let Some(name) = self.peers.get(peer) else {
            return;
        };
        match self.channels.send(name, baton_handoff::encode(msg)) {
            Ok(()) => self.counters.messages_out += 1,
            Err(e) => {
                self.counters.send_failures += 1;
                if !matches!(msg, Message::Load(_)) {
                    tracing::debug!("message to {name} not sent: {e}");
                }
            }
        }
    }

    fn on_event(&mut self, event: PeerEvent) {
        let index = |name: &str| self.peers.iter().position(|p| p == name);
        match event {
            PeerEvent::Up { peer } => {
                tracing::info!("peer {peer} up");
                if let Some(i) = index(&peer) {
                    self.tell_all(|| ToWorker::PeerUp(i));
                }
            }
            PeerEvent::Down { peer } => {
                tracing::warn!("peer {peer} down");
                if let Some(i) = index(&peer) {
                    self.routes.forget_peer(i);
                    self.tell_all(|| ToWorker::PeerDown(i));
                }
            }
            PeerEvent::Frame { peer, frame } => {
                let Some(i) = index(&peer) else { return };
                match decode_one(&frame) {
                    Ok(Message::Load(load)) => {
                        self.counters.messages_in += 1;
                        self.tell_all(|| ToWorker::Message {
                            peer: i,
                            msg: Message::Load(load),
                        });
                    }
                    Ok(msg) => {
                        self.counters.messages_in += 1;
                        let worker = self.routes.incoming(i, &msg, self.to_workers.len());
                        self.tell_worker(worker, ToWorker::Message { peer: i, msg });
                    }
                    Err(reason) => {
                        // The channel's encryption held, so the peer itself
                        // is confused: start over with a fresh connection.
                        self.counters.bad_messages += 1;
                        tracing::warn!("bad message from peer {peer}: {reason}; reconnecting");
                        self.channels.reset(&peer, reason);
                    }
                }
            }
        }
    }

    fn tell_worker(&mut self, worker: usize, event: ToWorker) {
        let sent = self
            .to_workers
            .get(worker)
            .is_some_and(|w| w.try_send(event).is_ok());
        if !sent {
            self.counters.worker_queue_full += 1;
        }
    }

    fn tell_all(&mut self, event: impl Fn() -> ToWorker) {
        for w in 0..self.to_workers.len() {
            self.tell_worker(w, event());
        }
    }

    /// The control plane's counters and the peer channel's, by name.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let mut all = self.channels.counters().to_map();
        let c = &self.counters;
        for (name, value) in [
            ("control_messages_in", c.messages_in),
            ("control_messages_out", c.messages_out),
            ("control_bad_messages", c.bad_messages),
            ("control_send_failures", c.send_failures),
            ("control_worker_queue_full", c.worker_queue_full),
        ] {
            all.insert(name.to_string(), value);
        }
        all
    }

    /// Each peer's name and whether it is up.
    pub fn peers_up(&self) -> Vec<(String, bool)> {
        self.channels
            .status()
            .into_iter()
            .map(|s| (s.name, s.up))
            .collect()
    }
}

/// Which worker handles each handoff's messages. A handoff this node
/// started belongs to the worker that sent its request; one handed to this
/// node belongs to the worker that owns the client's flow.
#[derive(Debug, Default)]
struct Routes {
    /// (peer, id) of handoffs this node started → worker.
    started: HashMap<(usize, u64), usize>,
    /// (peer, id) of handoffs handed to this node → worker.
    taken: HashMap<(usize, u64), usize>,
}

impl Routes {
    /// Notes a worker's message to `peer`.
    fn outgoing(&mut self, worker: usize, peer: usize, msg: &Message) {
        match msg {
            Message::HandoffRequest(r) => {
                self.started.insert((peer, r.id), worker);
            }
            // A target is done with a handoff, or refused it.
            Message::HandoffReject(r) => {
                self.taken.remove(&(peer, r.id));
            }
            Message::HandoffClosed(c) => {
                if self.taken.remove(&(peer, c.id)).is_none() {
                    self.started.remove(&(peer, c.id));
                }
            }
            Message::HandoffAccept(_) | Message::Load(_) => {}
        }
    }

    /// The worker for a message from `peer` (never Load, which goes to all).
    fn incoming(&mut self, peer: usize, msg: &Message, workers: usize) -> usize {
        match msg {
            Message::HandoffRequest(r) => {
                let client = r.key.client;
                let worker = baton_fastpath::steer::owner_of(
                    u32::from(*client.ip()),
                    client.port(),
                    workers,
                );
                self.taken.insert((peer, r.id), worker);
                worker
            }
            Message::HandoffAccept(a) => self.started.get(&(peer, a.id)).copied().unwrap_or(0),
            Message::HandoffReject(r) => self.started.remove(&(peer, r.id)).unwrap_or(0),
            Message::HandoffClosed(c) => self
                .started
                .remove(&(peer, c.id))
                .or_else(|| self.taken.remove(&(peer, c.id)))
                .unwrap_or(0),
            Message::Load(_) => 0,
        }
    }

    /// A peer went down: every worker hears of it and cleans up its flows.
    fn forget_peer(&mut self, peer: usize) {
        self.started.retain(|(p, _), _| *p != peer);
        self.taken.retain(|(p, _), _| *p != peer);
    }
}

/// One frame is exactly one message.
fn decode_one(frame: &[u8]) -> Result<Message, String> {
    let mut decoder = Decoder::new();
    decoder.push(frame);
    match decoder.next() {
        Ok(Some(msg)) if decoder.buffered() == 0 => Ok(msg),
        Ok(Some(_)) => Err("trailing bytes after the message".into()),
        Ok(None) => Err("truncated message".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sets up the `[preload]` flows this worker owns (load tests only).
pub fn preload(
    engine: &mut baton_fastpath::engine::Engine,
    cfg: &Config,
    me: usize,
    workers: usize,
) {
    use baton_fastpath::engine::FlowKey;
    use baton_fastpath::packet::Translation;
    let (Some(preload), Some(cluster), Some(own)) = (&cfg.preload, &cfg.cluster, cfg.host.address)
    else {
        return;
    };
    let peer = |name: &str| {
        cluster
            .peers
            .iter()
            .position(|p| p.name == name)
            .unwrap_or(0)
    };
    let now = Instant::now();
    let mine = |addr: std::net::Ipv4Addr, port: u16| {
        baton_fastpath::steer::owner_of(u32::from(addr), port, workers) == me
    };
    let mut count = 0u64;
    if let Some(p) = &preload.handed_in {
        let origin = peer(&p.peer);
        let translation = Translation {
            seq_delta: baton_fastpath::packet::SeqDelta::new(p.seq_delta),
            ts_offset: baton_fastpath::packet::TsOffset::new(p.ts_offset),
            client_visible_addr: p.server,
            target_kernel_addr: own.addr(),
            wscale_kernel: p.wscale,
            wscale_origin: p.wscale,
        };
        let mac = baton_fastpath::packet::MacAddr(p.client_mac.octets());
        for i in 0..p.flows {
            let (addr, port) = p.client(i);
            if mine(addr, port) {
                let key = FlowKey::new(addr, port, p.server, p.port);
                engine.preload_handed_in(key, origin, u64::from(i), translation, mac, now);
                count += 1;
            }
        }
    }
    if let Some(p) = &preload.forwarding {
        let target = peer(&p.peer);
        let mac = baton_fastpath::packet::MacAddr(p.client_mac.octets());
        for i in 0..p.flows {
            let (addr, port) = p.client(i);
            if mine(addr, port) {
                engine.preload_forwarding(
                    FlowKey::new(addr, port, p.server, p.port),
                    target,
                    mac,
                    now,
                );
                count += 1;
            }
        }
    }
    tracing::info!("worker {me}: {count} synthetic flows preloaded (load test mode)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_must_be_exactly_one_valid_message() {
        let msg = Message::Load(Load {
            active_connections: 3,
            ..Load::default()
        });
        let bytes = baton_handoff::encode(&msg);
        assert_eq!(decode_one(&bytes), Ok(msg));
        assert!(decode_one(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        assert!(decode_one(&two).unwrap_err().contains("trailing"));
        assert!(decode_one(b"garbage garbage garbage").is_err());
    }

    #[test]
    fn the_cluster_key_is_64_hex_digits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(read_psk(&path).unwrap(), [0xab; 32]);
        for bad in ["ab".repeat(31), "zz".repeat(32), String::new()] {
            std::fs::write(&path, bad).unwrap();
            let err = read_psk(&path).unwrap_err().to_string();
            assert!(err.contains("64 hex digits"), "{err}");
        }
        let err = read_psk(&dir.path().join("missing")).unwrap_err();
        assert!(format!("{err:#}").contains("cluster.psk_file"), "{err:#}");
    }
}
