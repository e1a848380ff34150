//! The per-worker handoff engine: what happens to each managed TCP packet.
//!
//! It sees every IPv4/TCP frame a worker receives, from the wire and from
//! the host, and says where it goes ([`Verdict`]). It also builds the
//! frames Baton injects (the replayed SYN, the ACK and held request, RSTs)
//! and the control messages to peers ([`Output`]). It has no DPDK and no
//! I/O: the worker feeds it, and tests drive it with byte arrays.
//!
//! Each flow follows its role's state machine from
//! [`baton_handoff::state`]: [`OriginState`]
//! when this node accepted the connection, and
//! [`TargetState`](baton_handoff::state::TargetState) when a peer handed it
//! here. Those machines hold the transitions, their diagrams and their
//! tests; the `origin` and `target` modules turn frames, messages and timer
//! expiries into their events and carry out the actions that come back.
//!
//! A connection kept local leaves the flow table at the decision: its later
//! packets miss the table and pass through, with no work but the lookup.

mod fast;
mod flow;
mod frames;
mod origin;
mod preload;
mod table;
mod target;
mod timers;
mod warm;

use std::net::Ipv4Addr;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_handoff::msg::Message;
use hashbrown::HashMap;

use crate::counters::{Counter, WorkerCounters};
use crate::packet::{MacAddr, TcpFrame};

use fast::Fast;
pub use flow::FlowKey;
use flow::{Flow, OriginState, PeerIndex, Role};
use timers::Tick;

/// What the worker does with a frame after the engine saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it to the host kernel.
    ToHost,
    /// Send it out of the wire port.
    ToWire,
    /// Free it; the engine has counted why.
    Drop,
    /// Free it; the engine kept what it needed (a held request).
    Consumed,
}

pub use baton_handoff::msg::Load;
pub use baton_handoff::ServiceKind;

pub use baton_handoff::placement::{Placement, Placer};

/// A peer node, as the data plane needs it.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub name: String,
    pub mac: MacAddr,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's host address, which its kernel owns.
    pub own_addr: Ipv4Addr,
    /// This node's wire (and host port) MAC.
    pub own_mac: MacAddr,
    /// The cluster VIP, when there is one.
    pub vip: Option<Ipv4Addr>,
    pub services: Vec<(u16, ServiceKind)>,
    pub peers: Vec<PeerInfo>,
    pub hold_bytes: usize,
    pub hold_segments: usize,
    pub hold_timeout: Duration,
    pub handoff_timeout: Duration,
    pub linger: Duration,
    pub idle_timeout: Duration,
    /// The most flows this engine tracks. Under pressure, connections not
    /// yet decided are evicted (oldest first); established and handed-off
    /// ones are never evicted.
    pub max_flows: usize,
}

/// What the engine wants done besides the verdicts.
#[derive(Debug, Default)]
pub struct Output {
    /// Frames to send to the host kernel.
    pub to_host: Vec<Vec<u8>>,
    /// Frames to send out of the wire port.
    pub to_wire: Vec<Vec<u8>>,
    /// Messages for peers, by index in [`EngineConfig::peers`].
    pub messages: Vec<(usize, Message)>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.to_host.is_empty() && self.to_wire.is_empty() && self.messages.is_empty()
    }
}

pub struct Engine {
    cfg: EngineConfig,
    placer: Box<dyn Placer>,
    counters: Arc<WorkerCounters>,
    flows: table::FlowTable,
    /// Handed-in flows in the table (part of the load this node reports).
    handed_in: usize,
    /// Origin flows with a handoff under way or done, by handoff id.
    by_id: HashMap<u64, FlowKey>,
    /// Handed-in flows, by origin peer and the origin's handoff id.
    by_origin: HashMap<(PeerIndex, u64), FlowKey>,
    peers_up: Vec<bool>,
    next_id: u64,
    out: Output,
    timers: timers::TimerWheel,
    /// Origin flows in HandoffPending, kept as states change (a gauge, and
    /// part of the load this node reports).
    pending: usize,
    /// Scratch for expired timers.
    due: Vec<(FlowKey, Tick)>,
    /// Origin flows in the order they were opened, for eviction: entries of
    /// flows that moved on are dropped lazily.
    embryonic: std::collections::VecDeque<FlowKey>,
    next_sweep: Option<Instant>,
}

impl Engine {
    pub fn new(
        cfg: EngineConfig,
        placer: Box<dyn Placer>,
        counters: Arc<WorkerCounters>,
    ) -> Engine {
        let peers_up = vec![false; cfg.peers.len()];
        Engine {
            cfg,
            placer,
            counters,
            flows: table::FlowTable::new(),
            handed_in: 0,
            by_id: HashMap::new(),
            by_origin: HashMap::new(),
            peers_up,
            // Ids need only be unique per origin; starting from the clock
            // keeps a restarted node from reusing a live id.
            next_id: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
            out: Output::default(),
            timers: timers::TimerWheel::new(Instant::now()),
            pending: 0,
            due: Vec::new(),
            embryonic: std::collections::VecDeque::new(),
            next_sweep: None,
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
        let Some(tcp) = managed(&parsed, &self.counters) else {
            return Verdict::ToHost;
        };
        let key = FlowKey::new(tcp.src_addr, tcp.src_port, tcp.dst_addr, tcp.dst_port);
        let fast = self.fast_from_client(&key, frame, tcp, now);
        if let Fast::Done(verdict) = fast {
            return verdict;
        }
        // A packet of no flow passes, unless it opens one.
        let opens = match fast {
            Fast::Unknown => {
                let Some(kind) = self.new_connection(tcp) else {
                    return Verdict::ToHost;
                };
                Some(kind)
            }
            _ => None,
        };
        // What follows may change a connection's state: a corrupted frame
        // must not (a RST that is not one, request bytes that differ).
        if !tcp.checksums_valid(frame) {
            self.count(Counter::DropBadChecksum, 1);
            return Verdict::Drop;
        }
        match (fast, opens) {
            (Fast::Origin, _) => origin::from_client(self, key, frame, tcp, now),
            (Fast::Target, _) => target::from_client(self, key, frame, tcp, now),
            (_, Some(_)) if self.kernel_key_taken(&key) => {
                // A handed-in connection's kernel side: the kernel answers.
                self.count(Counter::TupleInUseUntracked, 1);
                Verdict::ToHost
            }
            (_, Some(kind)) => origin::on_syn(self, key, kind, frame, tcp, now),
            (Fast::Done(verdict), None) => verdict,
            (Fast::Unknown, None) => Verdict::ToHost,
        }
    }

    /// A frame the host kernel sent.
    pub fn from_host(&mut self, frame: &mut [u8], now: Instant) -> Verdict {
        let parsed = TcpFrame::parse(frame);
        let Some(tcp) = managed(&parsed, &self.counters) else {
            return Verdict::ToWire;
        };
        // The kernel is the server: the client is the destination.
        let key = FlowKey::new(tcp.dst_addr, tcp.dst_port, tcp.src_addr, tcp.src_port);
        match self.fast_from_kernel(&key, frame, tcp, now) {
            (_, Fast::Done(verdict)) => verdict,
            (key, Fast::Origin) => origin::from_kernel(self, key, frame, tcp, now),
            (wire_key, Fast::Target) => target::from_kernel(self, wire_key, frame, tcp, now),
            (_, Fast::Unknown) => Verdict::ToWire,
        }
    }

    /// Whether `key`, as the local kernel sees a connection, is in use: by
    /// an origin flow, or as the kernel side of a handed-in one. A new flow
    /// never takes a kernel key in use, so that the kernel's packets
    /// always find one flow.
    fn kernel_key_taken(&self, key: &FlowKey) -> bool {
        self.flows
            .find_kernel_side(key, self.cfg.own_addr)
            .is_some()
    }

    /// A SYN (without ACK) to a managed service on this node or the VIP.
    fn new_connection(&self, tcp: &TcpFrame) -> Option<ServiceKind> {
        use crate::packet::TcpFlags;
        if !tcp.flags.contains(TcpFlags::SYN) || tcp.flags.contains(TcpFlags::ACK) {
            return None;
        }
        if tcp.dst_addr != self.cfg.own_addr && Some(tcp.dst_addr) != self.cfg.vip {
            return None;
        }
        self.cfg
            .services
            .iter()
            .find(|(port, _)| *port == tcp.dst_port)
            .map(|&(_, kind)| kind)
    }

    /// A message from peer `peer`.
    pub fn on_message(&mut self, peer: usize, msg: Message, now: Instant) {
        match msg {
            Message::HandoffRequest(req) => target::on_request(self, peer, req, now),
            Message::HandoffAccept(a) => origin::on_accept(self, peer, a, now),
            Message::HandoffReject(r) => origin::on_reject(self, peer, r, now),
            Message::HandoffClosed(c) => {
                // From a target: the flow it served is over. From an origin:
                // its client went away before or during the handoff.
                if !origin::on_closed(self, peer, c, now)
                    && !target::on_origin_closed(self, peer, c, now)
                {
                    self.count(Counter::DropUnknownHandoff, 1);
                }
            }
            Message::Load(load) => self.placer.peer_load(peer, load),
        }
    }

    pub fn on_peer_up(&mut self, peer: usize) {
        if let Some(up) = self.peers_up.get_mut(peer) {
            *up = true;
        }
    }

    /// Handoffs pending to `peer` fall back to local; connections handed
    /// to it are reset toward their clients.
    pub fn on_peer_down(&mut self, peer: usize, now: Instant) {
        if let Some(up) = self.peers_up.get_mut(peer) {
            *up = false;
        }
        origin::on_peer_down(self, peer, now);
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
        self.publish_gauges();
    }

    /// Whether a new flow fits, evicting the oldest undecided connection
    /// when the table is full. An evicted connection loses nothing: its
    /// held bytes go to the local kernel, which serves it.
    fn make_room(&mut self) -> bool {
        if self.flows.len() < self.cfg.max_flows {
            return true;
        }
        while let Some(key) = self.embryonic.pop_front() {
            if !self.is_embryonic(&key) {
                continue;
            }
            if let Some(Flow {
                role: Role::Origin(o),
                ..
            }) = self.remove(&key)
            {
                self.out.to_host.extend(o.setup.held_frames);
                self.count(Counter::FlowsEvicted, 1);
                return true;
            }
        }
        false
    }

    fn is_embryonic(&self, key: &FlowKey) -> bool {
        matches!(
            self.flows.get(key).map(|f| &f.role),
            Some(Role::Origin(o)) if matches!(o.state, OriginState::Handshake | OriginState::Held)
        )
    }

    /// Notes a new origin flow for eviction, dropping entries at the front
    /// that no longer need it (so the queue stays about as long as the
    /// number of undecided connections).
    fn note_embryonic(&mut self, key: FlowKey) {
        while let Some(front) = self.embryonic.front() {
            if self.is_embryonic(front) {
                break;
            }
            self.embryonic.pop_front();
        }
        self.embryonic.push_back(key);
    }

    /// Adds a flow, its timer armed at its deadline.
    fn insert(&mut self, key: FlowKey, deadline: Tick, role: Role) {
        let armed = self.timers.arm(key, deadline);
        if matches!(role, Role::Target(_)) {
            self.handed_in += 1;
        }
        self.flows.insert(
            key,
            Flow {
                deadline,
                armed,
                role,
            },
        );
    }

    /// The load this node reports to its peers.
    pub fn load(&self) -> Load {
        Load {
            active_connections: self.flows.len() as u32,
            pending_handoffs: self.pending as u32,
            handed_in: self.handed_in as u32,
        }
    }

    fn publish_gauges(&self) {
        self.counters
            .set(Counter::FlowsActive, self.flows.len() as u64);
        self.counters
            .set(Counter::HandoffsPending, self.pending as u64);
    }

    fn count(&self, counter: Counter, n: u64) {
        self.counters.add(counter, n);
    }

    fn next_id(&mut self) -> NonZeroU64 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        NonZeroU64::new(self.next_id).unwrap_or(NonZeroU64::MIN)
    }

    fn send(&mut self, peer: usize, msg: Message) {
        self.out.messages.push((peer, msg));
    }

    /// The flow table, and the parts of the engine a flow's transitions
    /// work with, borrowed apart so that a flow and the parts can be used
    /// at once.
    #[inline(always)]
    fn table_and_parts(&mut self) -> (&mut table::FlowTable, Parts<'_>) {
        let Engine {
            flows,
            cfg,
            counters,
            out,
            by_id,
            timers,
            pending,
            ..
        } = self;
        (
            flows,
            Parts {
                cfg,
                counters,
                out,
                by_id,
                timers,
                pending,
            },
        )
    }

    /// A flow, and the parts of the engine its transitions work with.
    #[inline(always)]
    fn flow_and_parts(&mut self, key: &FlowKey) -> Option<(&mut Flow, Parts<'_>)> {
        let (flows, parts) = self.table_and_parts();
        Some((flows.get_mut(key)?, parts))
    }

    /// [`Engine::flow_and_parts`] for a packet of the local kernel, whose
    /// `key` finds the flow (see `FlowTable::find_kernel_side`); with the
    /// flow's client-side key.
    #[inline(always)]
    fn kernel_flow_and_parts(
        &mut self,
        key: &FlowKey,
        own_addr: Ipv4Addr,
    ) -> Option<(FlowKey, &mut Flow, Parts<'_>)> {
        let (flows, parts) = self.table_and_parts();
        let (wire_key, flow) = flows.find_kernel_side_mut(key, own_addr)?;
        Some((wire_key, flow, parts))
    }

    /// Forgets a flow and every index that points at it.
    fn remove(&mut self, key: &FlowKey) -> Option<Flow> {
        let flow = self.flows.remove(key)?;
        match &flow.role {
            Role::Origin(o) => {
                if o.state == OriginState::HandoffPending {
                    self.pending -= 1;
                }
                if let Some(id) = o.handoff_id() {
                    self.by_id.remove(&id);
                }
            }
            Role::Target(t) => {
                self.handed_in -= 1;
                self.by_origin.remove(&(t.setup.origin, t.setup.id));
            }
        }
        Some(flow)
    }
}

/// What carrying out a flow's actions needs of the engine besides the flow.
struct Parts<'e> {
    cfg: &'e EngineConfig,
    counters: &'e WorkerCounters,
    out: &'e mut Output,
    by_id: &'e mut HashMap<u64, FlowKey>,
    timers: &'e mut timers::TimerWheel,
    pending: &'e mut usize,
}

impl Parts<'_> {
    fn count(&self, counter: Counter, n: u64) {
        self.counters.add(counter, n);
    }

    fn send(&mut self, peer: usize, msg: Message) {
        self.out.messages.push((peer, msg));
    }
}

/// Parses a frame built or kept by the engine (an injected or held one),
/// off the per-packet path.
fn view(frame: &[u8]) -> Option<TcpFrame> {
    TcpFrame::parse(frame).ok().flatten()
}

/// The parse of an IPv4/TCP frame, or None for anything else, which
/// passes through untouched. A frame whose headers do not parse (truncated,
/// bad lengths) is counted, then passed through too: the kernel or the
/// next hop decides what to do with it, as without Baton.
///
/// It lends the parse rather than moving it: a copy of the struct reads
/// it back in other widths than it was written in, which stalls the load
/// until the stores retire (about a third of a packet's time, measured).
#[inline(always)]
fn managed<'p>(
    parsed: &'p crate::packet::error::Result<Option<TcpFrame>>,
    counters: &WorkerCounters,
) -> Option<&'p TcpFrame> {
    match parsed {
        Ok(tcp) => tcp.as_ref(),
        Err(_) => {
            counters.add(Counter::MalformedPassed, 1);
            None
        }
    }
}
