//! A flow and the rest of the engine, borrowed apart: carrying out a
//! flow's actions reads the configuration, counts, queues output, arms
//! timers and keeps the indexes, all while the flow itself is borrowed
//! from the table. And the one place flows enter and leave the table.

use baton_handoff::msg::Message;
use baton_handoff::state::{Gauge, Machine, Note};
use hashbrown::HashMap;

use super::api::{EngineConfig, KernelAddrs, Output};
use super::flow::{Flow, FlowKey, Role};
use super::outcomes::OutcomeLog;
use super::timers::{Tick, TimerWheel};
use super::{table, Engine};
use crate::counters::{Counter, WorkerCounters};

/// What carrying out a flow's actions needs of the engine besides the flow.
pub(super) struct Parts<'e> {
    pub cfg: &'e EngineConfig,
    pub counters: &'e WorkerCounters,
    pub out: &'e mut Output,
    pub by_id: &'e mut HashMap<u64, FlowKey>,
    pub timers: &'e mut TimerWheel,
    pub gauges: &'e mut Gauges,
    pub outcomes: &'e mut OutcomeLog,
    pub kernel_addrs: &'e KernelAddrs,
}

impl Parts<'_> {
    pub fn count(&self, counter: Counter, n: u64) {
        self.counters.add(counter, n);
    }

    pub fn send(&mut self, peer: usize, msg: Message) {
        self.out.messages.push((peer, msg));
    }

    /// Counts what a committed transition noted.
    pub fn note(&self, note: Note) {
        for &counter in note_counters(note) {
            self.count(counter, 1);
        }
    }
}

/// The counters a note moves: the one place each outcome of a connection
/// becomes a counter.
pub(super) fn note_counters(note: Note) -> &'static [Counter] {
    match note {
        Note::ServedLocal => &[Counter::ServedLocal],
        Note::BadRequest => &[Counter::BadRequest],
        Note::HoldUndecided => &[Counter::HoldUndecided],
        Note::NoRequest => &[Counter::NoRequest],
        Note::HandedOff => &[Counter::HandedOff],
        Note::HandoffRejected => &[Counter::HandoffRejected],
        Note::HandoffTimedOut => &[Counter::HandoffTimedOut],
        Note::HandoffRetried => &[Counter::HandoffsRetried],
        Note::FellBack => &[Counter::FellBack],
        Note::Refused => &[Counter::RefusedUnavailable],
        Note::ClientResetMidHandoff => &[Counter::ClientResetMidHandoff],
        Note::PeerDownReset => &[Counter::PeerDownResets],
        Note::Expired => &[Counter::FlowsExpired],
        Note::HandedIn => &[Counter::HandedIn],
        Note::KernelRefused => &[Counter::KernelRefused],
        Note::ReplayTimedOut => &[Counter::ReplayTimedOut],
        Note::ReplayRetransmitted => &[Counter::ReplaysRetransmitted],
        Note::OrphanReset => &[Counter::OrphansReset],
        Note::MoveStarted => &[Counter::MovesStarted],
        Note::MoveCompleted => &[Counter::MovesCompleted],
        // The client got a 503, as for a first request nobody can take.
        Note::MoveRefused => &[Counter::MovesRefused, Counter::RefusedUnavailable],
        Note::MoveStayed => &[Counter::MovesStayed],
        Note::Released => &[Counter::ConnectionsReleased],
        Note::ReleaseRefused => &[Counter::ReleasesRefused],
    }
}

/// The gauges kept from flow states ([`Machine::gauge`]).
#[derive(Debug, Default)]
pub(super) struct Gauges {
    pub handoffs_pending: usize,
    pub handed_in: usize,
    pub forwarding: usize,
}

impl Gauges {
    fn of(&mut self, gauge: Gauge) -> &mut usize {
        match gauge {
            Gauge::HandoffsPending => &mut self.handoffs_pending,
            Gauge::HandedIn => &mut self.handed_in,
            Gauge::Forwarding => &mut self.forwarding,
        }
    }

    /// A flow moved from a state counting toward `from` to one counting
    /// toward `to`.
    pub fn moved(&mut self, from: Option<Gauge>, to: Option<Gauge>) {
        if from == to {
            return;
        }
        if let Some(g) = from {
            *self.of(g) -= 1;
        }
        if let Some(g) = to {
            *self.of(g) += 1;
        }
    }
}

/// The gauge a flow's state counts toward.
fn gauge_of(role: &Role) -> Option<Gauge> {
    match role {
        Role::Origin(o) => o.state.gauge(),
        Role::Target(t) => t.state.gauge(),
    }
}

impl Engine {
    /// The flow table, and the parts of the engine a flow's transitions
    /// work with, borrowed apart so that a flow and the parts can be used
    /// at once.
    #[inline(always)]
    pub(super) fn table_and_parts(&mut self) -> (&mut table::FlowTable, Parts<'_>) {
        let Engine {
            flows,
            cfg,
            counters,
            out,
            by_id,
            timers,
            gauges,
            outcomes,
            kernel_addrs,
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
                gauges,
                outcomes,
                kernel_addrs,
            },
        )
    }

    /// A flow, and the parts of the engine its transitions work with.
    #[inline(always)]
    pub(super) fn flow_and_parts(&mut self, key: &FlowKey) -> Option<(&mut Flow, Parts<'_>)> {
        let (flows, parts) = self.table_and_parts();
        Some((flows.get_mut(key)?, parts))
    }

    /// [`Engine::flow_and_parts`] for a packet of the local kernel, whose
    /// `key` finds the flow (see `FlowTable::find_kernel_side`); with the
    /// flow's client-side key.
    #[inline(always)]
    pub(super) fn kernel_flow_and_parts(
        &mut self,
        key: &FlowKey,
    ) -> Option<(FlowKey, &mut Flow, Parts<'_>)> {
        let addrs = self.kernel_addrs;
        let (flows, parts) = self.table_and_parts();
        let (wire_key, flow) = flows.find_kernel_side_mut(key, &addrs)?;
        Some((wire_key, flow, parts))
    }

    /// Adds a flow, its timer armed at its deadline.
    pub(super) fn insert(&mut self, key: FlowKey, deadline: Tick, role: Role) {
        let armed = self.timers.arm(key, deadline);
        self.gauges.moved(None, gauge_of(&role));
        self.flows.insert(
            key,
            Flow {
                deadline,
                armed,
                role,
            },
        );
    }

    /// Forgets a flow and every index that points at it.
    pub(super) fn remove(&mut self, key: &FlowKey) -> Option<Flow> {
        let flow = self.flows.remove(key)?;
        self.gauges.moved(gauge_of(&flow.role), None);
        match &flow.role {
            Role::Origin(o) => {
                if let Some(id) = o.handoff_id() {
                    self.by_id.remove(&id);
                }
            }
            Role::Target(t) => {
                self.by_origin.remove(&(t.setup.origin, t.setup.id));
            }
        }
        Some(flow)
    }
}
