//! The control lcore's part in handoffs: it carries messages between the
//! workers and the peers, and announces this node's load.
//!
//! Workers send their messages for peers and their load reports over one
//! shared queue; each worker has its own queue back. A message from a peer
//! goes to the worker that owns the flow of the client it names
//! (`baton_handoff::workers::route`): on an origin that worker started the
//! handoff, on a target it holds the connection. So routing keeps no
//! table; a Load goes to every worker, and so do a peer's Up and Down.
//! Most handoff messages do not even pass the control lcore: a worker
//! writes its own to the peer's channel, and the thread that reads a
//! peer's channel hands them to their worker itself ([`direct`]).

mod counters;
mod direct;
mod loads;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_handoff::workers::{
    owner_of_client, route, Backlog, DirectIo, FromWorker, Offered, Reload, Sent, ToWorker,
    ToWorkerTx,
};
use baton_handoff::{Decoder, FlowsHeld, HeldFlow, Load, Message};
use crossbeam_channel::Receiver;

use crate::peers::{
    ChannelConfig, FrameSink, PeerChannels, PeerConfig, PeerError, PeerEvent, SendError,
    MAX_FRAME_LEN,
};
use baton_counters::RateLimit;
pub use counters::ControlCounter;
use counters::ControlCounters;
use direct::Direct;
use loads::WorkerLoads;

/// The control plane of a cluster node.
pub struct ControlPlane {
    channels: PeerChannels,
    /// Peer names, by the workers' peer index.
    peers: Vec<String>,
    to_workers: Vec<ToWorkerTx>,
    from_worker: Receiver<FromWorker>,
    loads: WorkerLoads,
    /// Per peer, the workers yet to name, since its Up, the connections
    /// they hold that it handed them; when none is left, the peer is told
    /// that was all (the last FlowsHeld).
    resyncing: Vec<usize>,
    /// How often this node's load is announced.
    heartbeat: Duration,
    next_load: Instant,
    counters: ControlCounters,
    /// This node drains (`baton drain`): announced in its Load.
    draining: bool,
    /// Per peer, whether its last Load said it drains.
    peers_draining: Vec<bool>,
    /// Per peer removed by a reload, the workers yet to say they hold no
    /// connection with it; when none is left, its channel is closed.
    releasing: Vec<usize>,
    /// Per peer, the messages its full send queue did not take yet, and
    /// the connection they were for: they are never sent on a later one.
    backlogs: Vec<Backlog<Vec<u8>>>,
    kept_for: Vec<Option<u64>>,
    /// Per worker, the messages its full inbox did not take yet.
    worker_backlogs: Vec<Backlog<ToWorker>>,
    /// Messages lost, logged per peer at a bounded rate.
    lost_log: RateLimit<usize>,
    /// What the peers' readers hand to the workers themselves.
    direct: Arc<Direct>,
}

/// Messages that may wait for one peer whose send queue is full, or one
/// worker whose inbox is (see `Backlog`): about five seconds of a stalled
/// channel at 10,000 handoffs a second, and a few MiB at most.
const BACKLOG_MESSAGES: usize = 65_536;

/// While messages wait in a backlog, how often the loop offers them again.
const BACKLOG_RETRY: Duration = Duration::from_millis(1);

/// At most one line a peer this often about the messages lost for it.
const LOST_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl ControlPlane {
    /// Starts the peer channels of `channel` (whose peers, in order, are the
    /// workers' peer indices) and carries messages for the workers behind
    /// `to_workers` and `from_worker`. The load is announced every
    /// heartbeat.
    pub fn start(
        channel: ChannelConfig,
        to_workers: Vec<ToWorkerTx>,
        from_worker: Receiver<FromWorker>,
    ) -> Result<ControlPlane, PeerError> {
        let peers: Vec<String> = channel.peers.iter().map(|p| p.name.clone()).collect();
        let heartbeat = channel.heartbeat_interval;
        let listen = channel.listen;
        let direct = Direct::new(&peers, to_workers.clone());
        let sink: Arc<dyn FrameSink> = direct.clone();
        let channels = PeerChannels::start_with_sink(channel, Some(sink))?;
        direct.set_io(channels.io());
        tracing::info!(
            "control channel on {listen} to {} peer(s): {}",
            peers.len(),
            peers.join(", ")
        );
        Ok(ControlPlane {
            channels,
            resyncing: vec![0; peers.len()],
            peers_draining: vec![false; peers.len()],
            releasing: vec![0; peers.len()],
            backlogs: peers
                .iter()
                .map(|_| Backlog::new(BACKLOG_MESSAGES))
                .collect(),
            kept_for: vec![None; peers.len()],
            lost_log: RateLimit::new(LOST_LOG_INTERVAL),
            direct,
            worker_backlogs: to_workers
                .iter()
                .map(|_| Backlog::new(BACKLOG_MESSAGES))
                .collect(),
            draining: false,
            peers,
            loads: WorkerLoads::new(to_workers.len()),
            to_workers,
            from_worker,
            heartbeat,
            next_load: Instant::now(),
            counters: ControlCounters::default(),
        })
    }

    /// Closes every peer channel in good order (see
    /// [`PeerChannels::close`]): the workers must still be running, since
    /// the channels' packets cross them.
    pub fn close(self, linger: Duration) {
        self.channels.close(linger);
    }

    /// What lets the workers write their messages to the peers, and read
    /// the peers', themselves ([`direct`]).
    pub fn direct_io(&self) -> Arc<dyn DirectIo> {
        self.direct.clone()
    }

    /// The address the control channel listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.channels.local_addr()
    }

    /// One round: worker messages out, peer events in, load announced.
    /// Waits at most `wait` (and no later than the next announcement) for
    /// the first message from either side, and wakes at once when one
    /// comes: every handoff crosses this loop twice on each node, so it
    /// must not sleep through one, and an idle node need not wake for
    /// nothing.
    pub fn tick(&mut self, wait: Duration) {
        let mut wait = wait.min(self.next_load.saturating_duration_since(Instant::now()));
        if self.flush_backlogs() {
            wait = wait.min(BACKLOG_RETRY);
        }
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
            let load = Message::Load(Load {
                draining: self.draining,
                ..self.loads.node()
            });
            for peer in 0..self.peers.len() {
                self.send(peer, &load);
            }
        }
    }

    /// This node drains (`true`): the workers refuse new handoffs, and
    /// the peers hear of it at once, in a Load, and stop choosing it; or
    /// it takes them again (`false`). What it serves finishes either way.
    pub fn set_draining(&mut self, draining: bool) {
        if self.draining != draining {
            let (change, log) = if draining {
                (
                    ControlCounter::DrainsStarted,
                    "draining: new handoffs refused, peers told",
                )
            } else {
                (
                    ControlCounter::DrainsEnded,
                    "no longer draining: handoffs taken again",
                )
            };
            self.counters.add(change, 1);
            tracing::info!("{log}");
        }
        self.draining = draining;
        self.tell_all(|| ToWorker::Drain(draining));
        // The next tick announces it.
        self.next_load = Instant::now();
    }

    /// The workers' peer indices after a reload to `names`: each peer
    /// keeps the index it has for the life of the node (flows name their
    /// peer by it), and a new one comes after all the others. Removed
    /// peers keep theirs too.
    pub fn peer_slots<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut slots = self.peers.clone();
        for name in names {
            if !slots.iter().any(|p| p == name) {
                slots.push(name.to_string());
            }
        }
        slots
    }

    /// Applies a reload: `peers` are the peers now configured, and
    /// `workers` each worker's new policy, peers (as [`Self::peer_slots`]
    /// gives them) and limits. A new peer's channel starts; a removed
    /// peer gets no new handoffs, and its channel closes once the workers
    /// hold no connection with it (if it goes down first, its connections
    /// are handled as for any dead peer).
    pub fn reload(&mut self, peers: Vec<PeerConfig>, workers: Vec<Reload>) {
        let slots = self.peer_slots(peers.iter().map(|p| p.name.as_str()));
        for name in &slots[self.peers.len()..] {
            tracing::info!("peer {name} added");
        }
        self.resyncing.resize(slots.len(), 0);
        self.peers_draining.resize(slots.len(), false);
        self.releasing.resize(slots.len(), 0);
        self.backlogs
            .resize_with(slots.len(), || Backlog::new(BACKLOG_MESSAGES));
        self.kept_for.resize(slots.len(), None);
        self.peers = slots;
        self.direct.set_peers(&self.peers);
        // First: a new peer's Up must find its index known.
        for (worker, reload) in workers.into_iter().enumerate() {
            self.tell_worker(worker, ToWorker::Reload(Box::new(reload)));
        }
        let channels: Vec<_> = self.channels.status();
        for peer in &peers {
            let i = self.index(&peer.name).expect("a slot for every peer");
            self.releasing[i] = 0;
            match channels.iter().find(|s| s.name == peer.name) {
                Some(s) if s.addr == peer.addr => continue,
                Some(_) => {
                    tracing::info!("peer {} moved to {}", peer.name, peer.addr);
                    self.channels.remove(&peer.name);
                }
                None => {}
            }
            if let Err(e) = self.channels.add(peer.clone()) {
                tracing::error!("peer {}: {e}", peer.name);
            }
        }
        for s in channels {
            if !peers.iter().any(|p| p.name == s.name) {
                let i = self.index(&s.name).expect("a slot for every peer");
                if self.releasing[i] == 0 {
                    tracing::info!(
                        "peer {} removed: no new handoffs to it; its channel closes once no connection is left with it",
                        s.name
                    );
                    self.releasing[i] = self.to_workers.len();
                }
            }
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.peers.iter().position(|p| p == name)
    }

    /// Counts a reload applied (`true`) or refused.
    pub fn count_reload(&mut self, applied: bool) {
        let counter = if applied {
            ControlCounter::ReloadsApplied
        } else {
            ControlCounter::ReloadsRefused
        };
        self.counters.add(counter, 1);
    }

    /// Whether this node drains.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    fn on_worker(&mut self, event: FromWorker) {
        match event {
            FromWorker::Message { peer, msg } => {
                self.send(peer, &msg);
                // Only now may the workers go past this loop again.
                self.direct.handled_out();
            }
            FromWorker::Load { worker, load } => self.loads.report(worker, load),
            FromWorker::PeerReleased { peer } => {
                let Some(left) = self.releasing.get_mut(peer) else {
                    return;
                };
                if *left == 0 {
                    return; // added again meanwhile
                }
                *left -= 1;
                if *left == 0 {
                    tracing::info!(
                        "peer {} removed: no connection left with it, channel closed",
                        self.peers[peer]
                    );
                    self.channels.remove(&self.peers[peer]);
                }
            }
            FromWorker::ResyncDone { peer } => {
                let Some(left) = self.resyncing.get_mut(peer) else {
                    return;
                };
                if *left == 0 {
                    return; // the peer went down meanwhile
                }
                *left -= 1;
                if *left == 0 {
                    let last = FlowsHeld {
                        flows: Vec::new(),
                        last: true,
                    };
                    self.send(peer, &Message::FlowsHeld(last));
                }
            }
        }
    }

    /// Queues `msg` for `peer`, or keeps it in the peer's backlog while
    /// its queue is full. A load announcement is not kept: the next one
    /// says more.
    fn send(&mut self, peer: usize, msg: &Message) {
        if peer >= self.peers.len() {
            return;
        }
        let is_load = matches!(msg, Message::Load(_));
        let frame = baton_handoff::encode(msg);
        if frame.len() > MAX_FRAME_LEN {
            // Not for any queue, ever: it must not block what follows.
            self.lost(peer, 1, true);
            return;
        }
        let waiting = self.flush_backlog(peer);
        let sent = {
            let backlog = &mut self.backlogs[peer];
            let mut offer = offer(&self.channels, &self.peers[peer]);
            match is_load {
                false => backlog.send(frame, offer),
                true if !waiting && matches!(offer(frame), Offered::Taken) => Sent::Now,
                true => Sent::Dropped,
            }
        };
        match sent {
            Sent::Now => self.counters.add(ControlCounter::MessagesOut, 1),
            Sent::Later => {
                if self.kept_for[peer].is_none() {
                    self.kept_for[peer] = self.channels.connection(&self.peers[peer]);
                }
                self.counters.add(ControlCounter::SendsDeferred, 1);
            }
            Sent::Dropped => self.lost(peer, 1, !is_load),
        }
        self.set_backlog_gauge();
    }

    /// Offers every backlog's messages to its peer or worker again:
    /// whether any still wait.
    fn flush_backlogs(&mut self) -> bool {
        let mut waiting = false;
        for peer in 0..self.backlogs.len() {
            waiting |= self.flush_backlog(peer);
        }
        for worker in 0..self.worker_backlogs.len() {
            waiting |= self.flush_worker_backlog(worker);
        }
        self.set_backlog_gauge();
        waiting
    }

    /// Offers `worker`'s waiting messages to it again: whether any still
    /// wait.
    fn flush_worker_backlog(&mut self, worker: usize) -> bool {
        let backlog = &mut self.worker_backlogs[worker];
        if backlog.is_empty() {
            return false;
        }
        let inbox = &self.to_workers[worker];
        match backlog.flush(|e| inbox.offer(e)) {
            Ok(_) => {}
            // The worker stopped: the node is stopping.
            Err(lost) => self
                .counters
                .add(ControlCounter::WorkerQueueFull, lost as u64),
        }
        !self.worker_backlogs[worker].is_empty()
    }

    /// Offers `peer`'s waiting messages to it again: whether any still
    /// wait.
    fn flush_backlog(&mut self, peer: usize) -> bool {
        if self.backlogs[peer].is_empty() {
            return false;
        }
        let name = &self.peers[peer];
        if self.channels.connection(name) != self.kept_for[peer] {
            // The connection they were for is gone (even if the loop has
            // not heard yet, and another is up already).
            let lost = self.backlogs[peer].clear();
            self.kept_for[peer] = None;
            self.lost(peer, lost, true);
            return false;
        }
        match self.backlogs[peer].flush(offer(&self.channels, name)) {
            Ok(sent) => self.counters.add(ControlCounter::MessagesOut, sent as u64),
            Err(lost) => self.lost(peer, lost, true),
        }
        let waiting = !self.backlogs[peer].is_empty();
        if !waiting {
            self.kept_for[peer] = None;
        }
        waiting
    }

    /// `lost` messages for `peer` could not be queued: logged (at a
    /// bounded rate) when `tell`, since a handoff message lost leaves a
    /// connection known to one node only until a timeout.
    fn lost(&mut self, peer: usize, lost: usize, tell: bool) {
        self.counters.add(ControlCounter::SendFailures, lost as u64);
        if !tell {
            return;
        }
        if let Some(left_out) = self.lost_log.allow(peer, Instant::now()) {
            tracing::warn!(
                "{lost} message(s) to peer {} lost (its connection went down, or {BACKLOG_MESSAGES} waited for its send queue); {left_out} more such line(s) left out since the last",
                self.peers[peer]
            );
        }
    }

    fn set_backlog_gauge(&mut self) {
        let for_workers: usize = self.worker_backlogs.iter().map(Backlog::len).sum();
        let waiting = self.backlogs.iter().map(Backlog::len).sum::<usize>() + for_workers;
        self.counters.set(ControlCounter::Backlog, waiting as u64);
        self.direct
            .set_backlogged(for_workers > 0, waiting > for_workers);
    }

    fn on_event(&mut self, event: PeerEvent) {
        let peer = event.peer().to_string();
        self.on_peer_event(event);
        // Only now may what the peer's reader reads later go past this
        // loop: a new connection's messages come after the old one's Down.
        self.direct.handled_from(&peer);
    }

    fn on_peer_event(&mut self, event: PeerEvent) {
        let index = |name: &str| self.peers.iter().position(|p| p == name);
        match event {
            PeerEvent::Up { peer } => {
                tracing::info!("peer {peer} up");
                if let Some(i) = index(&peer) {
                    self.resyncing[i] = self.to_workers.len();
                    self.tell_all(|| ToWorker::PeerUp(i));
                }
            }
            PeerEvent::Suspect { peer } => {
                if let Some(i) = index(&peer) {
                    self.tell_all(|| ToWorker::PeerSuspect(i, true));
                }
            }
            PeerEvent::Recovered { peer } => {
                if let Some(i) = index(&peer) {
                    self.tell_all(|| ToWorker::PeerSuspect(i, false));
                }
            }
            PeerEvent::Down { peer } => {
                tracing::warn!("peer {peer} down");
                if let Some(i) = index(&peer) {
                    self.resyncing[i] = 0;
                    // Messages are never kept for a later connection: what
                    // waits for the one that went down is lost.
                    self.flush_backlog(i);
                    self.tell_all(|| ToWorker::PeerDown(i));
                }
            }
            PeerEvent::Frame { peer, frame } => self.on_frame(&peer, &frame),
        }
    }

    /// A frame from `peer` that its reader did not hand to a worker itself.
    fn on_frame(&mut self, peer: &str, frame: &[u8]) {
        let Some(i) = self.index(peer) else { return };
        match decode_one(frame) {
            Ok(Message::Load(load)) => {
                self.counters.add(ControlCounter::MessagesIn, 1);
                if self.peers_draining[i] != load.draining {
                    tracing::info!(
                        "peer {peer} {}",
                        if load.draining {
                            "drains: no new handoffs to it"
                        } else {
                            "no longer drains"
                        }
                    );
                    self.peers_draining[i] = load.draining;
                }
                self.tell_all(|| ToWorker::Message {
                    peer: i,
                    msg: Message::Load(load),
                });
            }
            Ok(Message::FlowsHeld(held)) => {
                self.counters.add(ControlCounter::MessagesIn, 1);
                self.split_flows_held(i, held);
            }
            Ok(msg) => {
                self.counters.add(ControlCounter::MessagesIn, 1);
                if let Some(worker) = route(&msg, self.to_workers.len()) {
                    self.tell_worker(worker, ToWorker::Message { peer: i, msg });
                }
            }
            Err(reason) => {
                // The channel's encryption held, so the peer itself
                // is confused: start over with a fresh connection.
                self.counters.add(ControlCounter::BadMessages, 1);
                tracing::warn!("bad message from peer {peer}: {reason}; reconnecting");
                self.channels.reset(peer, reason);
            }
        }
    }

    /// Gives each worker the held connections whose clients it owns, and,
    /// with the last batch, tells every worker the peer named them all.
    fn split_flows_held(&mut self, peer: usize, held: FlowsHeld) {
        let workers = self.to_workers.len();
        let mut per_worker: Vec<Vec<HeldFlow>> = vec![Vec::new(); workers];
        for flow in held.flows {
            per_worker[owner_of_client(flow.key.client, workers)].push(flow);
        }
        for (worker, flows) in per_worker.into_iter().enumerate() {
            if !flows.is_empty() {
                let msg = Message::FlowsHeld(FlowsHeld { flows, last: false });
                self.tell_worker(worker, ToWorker::Message { peer, msg });
            }
        }
        if held.last {
            self.tell_all(|| ToWorker::Message {
                peer,
                msg: Message::FlowsHeld(FlowsHeld {
                    flows: Vec::new(),
                    last: true,
                }),
            });
        }
    }

    /// Queues `event` for `worker`, or keeps it in the worker's backlog
    /// while its inbox is full. A peer's load is not kept: the next one
    /// says more.
    fn tell_worker(&mut self, worker: usize, event: ToWorker) {
        if worker >= self.to_workers.len() {
            self.counters.add(ControlCounter::WorkerQueueFull, 1);
            return;
        }
        let is_load = matches!(
            &event,
            ToWorker::Message {
                msg: Message::Load(_),
                ..
            }
        );
        let waiting = self.flush_worker_backlog(worker);
        let inbox = &self.to_workers[worker];
        let sent = match is_load {
            false => self.worker_backlogs[worker].send(event, |e| inbox.offer(e)),
            true if !waiting && matches!(inbox.offer(event), Offered::Taken) => Sent::Now,
            true => Sent::Dropped,
        };
        match sent {
            Sent::Now => {}
            Sent::Later => self.counters.add(ControlCounter::WorkerQueueDeferred, 1),
            Sent::Dropped => self.counters.add(ControlCounter::WorkerQueueFull, 1),
        }
        self.set_backlog_gauge();
    }

    fn tell_all(&mut self, event: impl Fn() -> ToWorker) {
        for w in 0..self.to_workers.len() {
            self.tell_worker(w, event());
        }
    }

    /// The control plane's counters and the peer channels', by name.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let channels = self.channels.counters();
        let mut own = self.counters.read();
        let (delivered, written) = (self.direct.delivered(), self.direct.written());
        own.add(ControlCounter::MessagesIn, delivered);
        own.add(ControlCounter::MessagesInDirect, delivered);
        own.add(ControlCounter::MessagesOut, written);
        own.add(ControlCounter::MessagesOutDirect, written);
        channels
            .named()
            .chain(own.named())
            .map(|(name, value)| (name.to_string(), value))
            .collect()
    }

    /// Each peer's name and state: `up`, `suspect`, `draining` (up, but
    /// it said it drains: no new handoffs go to it) or `down`.
    pub fn peer_states(&self) -> Vec<(String, String)> {
        self.channels
            .status()
            .into_iter()
            .map(|s| {
                let draining = self
                    .peers
                    .iter()
                    .position(|p| *p == s.name)
                    .is_some_and(|i| self.peers_draining[i]);
                let state = match (s.up, s.suspect, draining) {
                    (true, false, false) => "up",
                    (true, false, true) => "draining",
                    (true, true, _) => "suspect",
                    (false, _, _) => "down",
                };
                (s.name, state.to_string())
            })
            .collect()
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

/// Offers a frame to `peer`'s send queue.
fn offer<'a>(
    channels: &'a PeerChannels,
    peer: &'a str,
) -> impl FnMut(Vec<u8>) -> Offered<Vec<u8>> + 'a {
    move |frame| match channels.offer(peer, frame) {
        Ok(()) => Offered::Taken,
        Err((SendError::QueueFull(_), frame)) => Offered::Full(frame),
        Err(_) => Offered::Closed,
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
