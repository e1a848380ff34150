//! The per-worker handoff engine: what happens to each managed TCP packet.
//!
//! It sees every IPv4/TCP frame a worker receives, from the wire and from
//! the host, and says where it goes ([`Verdict`]). It also builds the
//! frames Baton injects (the replayed SYN, the held request, RSTs)
//! and the control messages to peers ([`Output`]). It has no DPDK and no
//! I/O: the worker feeds it, and tests drive it with byte arrays.
//!
//! Each flow follows its role's state machine from
//! [`baton_handoff::state`]: [`OriginState`](baton_handoff::state::OriginState)
//! when this node accepted the connection, and
//! [`TargetState`](baton_handoff::state::TargetState) when a peer handed it
//! here. The machines decide every transition, and note what it means for
//! the counters; the engine executes them:
//!
//! - `dispatch`: a frame's stage (a flow of either role, one it opens, or
//!   none) and the event it is for its flow;
//! - `drive`: the one driver of both machines: feed an event, carry out the
//!   actions, commit or roll back, re-arm the timer, keep the gauges, count
//!   the note;
//! - `origin` and `target`: each role's executor (what an action does) and
//!   the events its frames, messages and timers are;
//! - `fast`: the per-packet path of established flows, the machines'
//!   transitions carried out directly;
//! - `table`, `flow`, `timers`, `evict`, `warm`: where flows live, what
//!   they hold, when their timers fire, who makes room, and prefetching.
//!
//! A connection kept local leaves the flow table at the decision: its later
//! packets miss the table and pass through, with no work but the lookup.

mod api;
mod dispatch;
#[cfg(test)]
mod doc_tables;
mod drive;
mod evict;
mod fast;
mod flow;
mod frames;
mod half_open;
mod origin;
mod outcomes;
mod owner;
mod parts;
mod preload;
mod reload;
mod replay;
mod resync;
mod table;
mod target;
mod timers;
mod warm;

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Instant;

use baton_handoff::msg::Message;
use hashbrown::HashMap;

use crate::counters::{Counter, WorkerCounters};
use crate::packet::TcpFrame;

pub use api::{EngineConfig, HandoffNet, KernelAddrs, Output, PeerInfo, Verdict};
pub use baton_handoff::msg::Load;
pub use baton_handoff::placement::{Placement, Placer};
pub use baton_handoff::ServiceKind;
pub use dispatch::managed;
pub use flow::FlowKey;
pub use half_open::ENTRY_BYTES as HALF_OPEN_ENTRY_BYTES;

use flow::{PeerIndex, Role};
use parts::Gauges;
use timers::Tick;

pub struct Engine {
    cfg: EngineConfig,
    placer: Box<dyn Placer>,
    counters: Arc<WorkerCounters>,
    flows: table::FlowTable,
    /// Connections whose handshake is not done yet: bounded, short-lived,
    /// and apart from the flow table (see `half_open`).
    half_open: half_open::HalfOpenTable,
    /// Kept from the states flows enter and leave (see `drive`).
    gauges: Gauges,
    /// Outcomes an operator should hear of, logged at a bounded rate.
    outcomes: outcomes::OutcomeLog,
    /// Where handed-in connections live in the local kernel.
    kernel_addrs: KernelAddrs,
    /// What this engine learns from its peers, and waits for them for.
    recovery: resync::Recovery,
    /// Origin flows with a handoff under way or done, by handoff id.
    by_id: HashMap<u64, FlowKey>,
    /// Handed-in flows, by origin peer and the origin's handoff id.
    by_origin: HashMap<(PeerIndex, u64), FlowKey>,
    /// Per peer, whether it can take new handoffs now: what the placer is
    /// told. Kept from `peer_health`.
    peers_up: Vec<bool>,
    peer_health: Vec<PeerHealth>,
    /// The control port, while some peer's MAC is to be learned from the
    /// frames of its channel: every wire frame is tested against it before
    /// any peer is looked at (a walk of the peers per frame cost a third
    /// of a local flow's forwarding).
    learn_port: Option<u16>,
    /// This node is draining (`baton drain`): it refuses new handoffs.
    draining: bool,
    /// Peers removed by a reload that connections are still left with.
    releasing: Vec<usize>,
    next_id: u64,
    out: Output,
    timers: timers::TimerWheel,
    /// Scratch for expired timers.
    due: Vec<(FlowKey, Tick)>,
    /// Origin flows in the order they were opened, for eviction: entries of
    /// flows that moved on are dropped lazily.
    embryonic: std::collections::VecDeque<FlowKey>,
    next_sweep: Option<Instant>,
    /// The last timer run found nothing for a timer to act on, and
    /// published the gauges of that.
    swept_empty: bool,
}

impl Engine {
    /// # Panics
    ///
    /// With more than 65536 peers: a flow names its peer in 16 bits.
    pub fn new(
        cfg: EngineConfig,
        placer: Box<dyn Placer>,
        counters: Arc<WorkerCounters>,
    ) -> Engine {
        assert!(
            cfg.peers.len() <= usize::from(PeerIndex::MAX) + 1,
            "{} peers: at most 65536",
            cfg.peers.len()
        );
        let peers_up = vec![false; cfg.peers.len()];
        let peer_health = vec![PeerHealth::default(); cfg.peers.len()];
        let start = Instant::now();
        let learn_port = cfg.peers.iter().find_map(|p| p.mac.learns_on());
        Engine {
            recovery: resync::Recovery::new(cfg.peers.len(), start, cfg.recovery_wait),
            kernel_addrs: KernelAddrs::new(&cfg),
            half_open: half_open::HalfOpenTable::new(cfg.half_open, cfg.half_open_timeout),
            cfg,
            placer,
            counters,
            flows: table::FlowTable::new(),
            gauges: Gauges::default(),
            outcomes: outcomes::OutcomeLog::default(),

            by_id: HashMap::new(),
            by_origin: HashMap::new(),
            peers_up,
            peer_health,
            learn_port,
            draining: false,
            releasing: Vec::new(),
            // Serials start at the clock (see `handoff_id`): a restarted
            // node never reuses a live id.
            next_id: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(1)),
            out: Output::default(),
            timers: timers::TimerWheel::new(start),
            due: Vec::new(),
            embryonic: std::collections::VecDeque::new(),
            next_sweep: None,
            swept_empty: false,
        }
    }

    /// The frames and messages produced since the last call.
    pub fn take_output(&mut self) -> Output {
        std::mem::take(&mut self.out)
    }

    pub fn peer_index(&self, name: &str) -> Option<usize> {
        self.cfg.peers.iter().position(|p| p.name == name)
    }

    /// A frame received on the wire port.
    pub fn from_wire(&mut self, frame: &mut [u8], now: Instant) -> Verdict {
        let parsed = TcpFrame::parse(frame);
        match managed(&parsed, &self.counters) {
            Some(tcp) => dispatch::from_wire(self, frame, tcp, now),
            None => Verdict::ToHost,
        }
    }

    /// A frame the host kernel sent.
    pub fn from_host(&mut self, frame: &mut [u8], now: Instant) -> Verdict {
        let parsed = TcpFrame::parse(frame);
        match managed(&parsed, &self.counters) {
            Some(tcp) => dispatch::from_host(self, frame, tcp, now),
            None => Verdict::ToWire,
        }
    }

    /// [`Engine::from_wire`] for an IPv4/TCP frame the caller parsed
    /// ([`TcpFrame::parse`], [`managed`]): each frame is parsed once.
    /// Inlined into the poll loop: a call per packet cost more than a
    /// twentieth of a handed-in connection's packet.
    #[inline(always)]
    pub fn from_wire_parsed(&mut self, frame: &mut [u8], tcp: &TcpFrame, now: Instant) -> Verdict {
        dispatch::from_wire(self, frame, tcp, now)
    }

    /// Learns a peer's MAC from a frame of its control channel on the wire,
    /// where the config gave none ([`crate::peer_mac`]).
    #[inline]
    pub fn learn_peer_mac(&self, tcp: &TcpFrame) {
        let Some(port) = self.learn_port else {
            return;
        };
        if tcp.src_port != port && tcp.dst_port != port {
            return;
        }
        for p in &self.cfg.peers {
            if p.mac.learn_from(tcp) {
                tracing::info!(
                    "learned peer {}'s MAC {} from the wire",
                    p.name,
                    tcp.src_mac
                );
            }
        }
    }

    /// [`Engine::from_host`] for an IPv4/TCP frame the caller parsed
    /// (inlined as [`Engine::from_wire_parsed`] is).
    #[inline(always)]
    pub fn from_host_parsed(&mut self, frame: &mut [u8], tcp: &TcpFrame, now: Instant) -> Verdict {
        dispatch::from_host(self, frame, tcp, now)
    }

    /// A message from peer `peer`.
    pub fn on_message(&mut self, peer: usize, msg: Message, now: Instant) {
        if baton_handoff::workers::route(&msg, self.cfg.workers)
            .is_some_and(|owner| owner != self.cfg.worker)
        {
            self.count(Counter::DropMisrouted, 1);
            return;
        }
        match msg {
            Message::HandoffRequest(req) => target::on_request(self, peer, req, now),
            Message::HandoffAccept(a) => origin::on_accept(self, peer, a, now),
            Message::HandoffReject(r) => origin::on_reject(self, peer, r, now),
            Message::HandoffClosed(c) => {
                if !origin::on_closed(self, peer, c, now) {
                    self.count(Counter::DropUnknownHandoff, 1);
                }
            }
            Message::HandoffCancel(c) => target::on_cancel(self, peer, c, now),
            Message::Release(r) => target::on_release(self, peer, r, now),
            Message::Released(r) => origin::on_released(self, peer, r, now),
            Message::ReleaseRefused(r) => origin::on_release_refused(self, peer, r, now),
            Message::FlowsHeld(held) => self.on_flows_held(peer, held, now),
            Message::Load(load) => {
                self.placer.peer_load(peer, load);
                self.set_health(peer, |h| h.draining = load.draining);
            }
        }
    }

    /// This node drains (`true`): it refuses new handoffs, and serves
    /// what it has until it is over; or it takes them again (`false`).
    /// Its peers hear of it from its Load, and stop choosing it.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
        self.counters.set(Counter::Draining, u64::from(draining));
    }

    /// Whether this node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Changes what is known of `peer`'s health, and so whether it can
    /// take new handoffs.
    fn set_health(&mut self, peer: usize, change: impl FnOnce(&mut PeerHealth)) {
        if let (Some(health), Some(up)) =
            (self.peer_health.get_mut(peer), self.peers_up.get_mut(peer))
        {
            change(health);
            *up = health.can_take();
        }
    }

    /// `peer`'s channel is up: it can take handoffs, and it hears of the
    /// connections it handed here (see `resync`).
    pub fn on_peer_up(&mut self, peer: usize) {
        self.set_health(peer, |h| {
            h.up = true;
            h.suspect = false;
        });
        self.resync_to(peer);
    }

    /// `peer` has not been heard from for a while (`suspect`), or has been
    /// again: a suspect peer takes no new handoffs (the policy passes it
    /// over, as it does a down or a draining one), and everything already
    /// handed to it carries on; only its death resets those connections.
    pub fn on_peer_suspect(&mut self, peer: usize, suspect: bool) {
        self.set_health(peer, |h| h.suspect = suspect);
    }

    /// Handoffs pending to `peer` are decided again; connections handed
    /// to it are reset toward their clients; the connections it handed
    /// here are reset if it stays away.
    pub fn on_peer_down(&mut self, peer: usize, now: Instant) {
        // Whether it drains is kept: a channel that comes back up before
        // the peer's next Load should not bring it new handoffs meanwhile.
        self.set_health(peer, |h| h.up = false);
        origin::on_peer_down(self, peer, now);
        self.peer_away(peer, now);
    }

    /// Runs timers: hold limits, handoff timeouts, lingering and idle flows.
    /// Costs nothing between ticks, and then only the flows whose timers
    /// came up.
    pub fn poll_timers(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        self.next_sweep = Some(now + timers::TICK);
        let mut due = std::mem::take(&mut self.due);
        self.timers.expire(now, &mut due);
        for (key, tick) in due.drain(..) {
            let Some(flow) = self.flows.get_mut(&key) else {
                continue; // gone since it was armed
            };
            if flow.armed != tick {
                continue; // re-armed since: a stale entry
            }
            if flow.deadline.is_after(self.timers.passed(now)) {
                // Traffic moved the deadline on.
                flow.armed = self.timers.arm(key, flow.deadline);
                continue;
            }
            match &flow.role {
                Role::Origin(_) => origin::on_deadline(self, key, now),
                Role::Target(_) => target::on_deadline(self, key, now),
            }
        }
        self.due = due;
        let expired = self.half_open.expire(&mut self.timers, now);
        self.count(Counter::HalfOpenExpired, expired as u64);
        self.poll_recovery(now);
        self.poll_released();
        self.publish_gauges();
        self.swept_empty = self.holds_nothing_timed();
    }

    /// When [`Self::poll_timers`] next has work to do, or None while the
    /// engine holds nothing a timer could act on (no flow, no half-open
    /// connection, no recovery or release under way) and its gauges say
    /// so: an idle worker then sleeps until a frame or a message comes.
    pub fn next_timer_run(&self, now: Instant) -> Option<Instant> {
        if self.swept_empty && self.holds_nothing_timed() {
            return None;
        }
        Some(self.next_sweep.unwrap_or(now))
    }

    fn holds_nothing_timed(&self) -> bool {
        self.flows.len() == 0
            && self.half_open.is_empty()
            && !self.recovery.waiting()
            && self.releasing.is_empty()
    }

    /// The load this node reports to its peers.
    pub fn load(&self) -> Load {
        Load {
            active_connections: u32::try_from(self.flows.len()).unwrap_or(u32::MAX),
            pending_handoffs: u32::try_from(self.gauges.handoffs_pending).unwrap_or(u32::MAX),
            handed_in: u32::try_from(self.gauges.handed_in).unwrap_or(u32::MAX),
            draining: self.draining,
        }
    }

    fn publish_gauges(&self) {
        let g = &self.gauges;
        for (counter, n) in [
            (Counter::FlowsActive, self.flows.len()),
            (Counter::HalfOpenActive, self.half_open.len()),
            (Counter::HandoffsPending, g.handoffs_pending),
            (Counter::HandedOffActive, g.forwarding),
            (Counter::HandedInActive, g.handed_in),
        ] {
            self.counters.set(counter, n as u64);
        }
    }

    fn count(&self, counter: Counter, n: u64) {
        self.counters.add(counter, n);
    }

    /// A new handoff id: this worker's, and never one it used before.
    fn next_id(&mut self) -> NonZeroU64 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = baton_handoff::workers::handoff_id(self.cfg.worker, self.next_id);
        NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN)
    }

    fn send(&mut self, peer: usize, msg: Message) {
        self.out.messages.push((peer, msg));
    }
}

/// What an engine knows of a peer's health.
#[derive(Debug, Clone, Copy, Default)]
struct PeerHealth {
    /// Its channel is up.
    up: bool,
    /// Not heard from for a while.
    suspect: bool,
    /// It said, in its Load, that it drains.
    draining: bool,
    /// A reload removed it from the config.
    removed: bool,
}

impl PeerHealth {
    /// Whether new handoffs may go to it: its channel is up, it is heard
    /// from, it does not drain, and it is still configured.
    fn can_take(self) -> bool {
        self.up && !self.suspect && !self.draining && !self.removed
    }
}
