//! What two nodes tell each other when their channel comes up, and what
//! each does while the other is away.
//!
//! - **A target names what it holds.** On a peer's Up, every connection
//!   that peer handed here goes back to it in `FlowsHeld` batches (the
//!   control plane sends the last marker once every worker is done).
//! - **An origin that forgot learns again.** A restarted origin (or one
//!   that lost a flow) installs a forwarding flow for every connection a
//!   peer names that it does not have. Until every peer has named its own,
//!   or `recovery_wait` has passed, a segment of no flow to a managed
//!   service is dropped rather than given to the kernel: the kernel would
//!   reset a connection it never had, where it belongs to a target. The
//!   client sends it again, and by then its flow is back.
//! - **A target whose origin stays away resets what it holds for it.** An
//!   origin's channel down longer than `orphan_timeout` means nobody
//!   forwards those clients' packets any more: each connection is reset at
//!   both ends (see `TargetState::Orphaned`), instead of holding the
//!   kernel's buffers until the idle timeout.

use std::num::NonZeroU64;
use std::time::Instant;

use baton_handoff::msg::{limits, FlowKey as MsgFlowKey, FlowsHeld, HeldFlow, Message};
use baton_handoff::state::TargetEvent;

use super::drive::Input;
use super::flow::TargetFlow;
use super::flow::{peer_index, FlowKey, Handoff, OriginFlow, OriginSetup, OriginState, Role};
use super::{Engine, ServiceKind};
use crate::counters::Counter;
use crate::packet::{MacAddr, SeqNum};

/// Where an engine stands in learning, after it started, which of its
/// connections its peers hold.
#[derive(Debug)]
pub(super) struct Recovery {
    /// Until then, unknown segments of managed services are dropped;
    /// None once recovered.
    until: Option<Instant>,
    /// Peers that named what they hold for this node.
    resynced: Vec<bool>,
    /// When each peer whose channel is down is deemed gone.
    gone_at: Vec<Option<Instant>>,
}

impl Recovery {
    /// For an engine with `peers` that starts at `start` and waits `wait`
    /// for them at most (none: it does not wait).
    pub fn new(peers: usize, start: Instant, wait: std::time::Duration) -> Recovery {
        Recovery {
            until: (peers > 0 && !wait.is_zero()).then_some(start + wait),
            resynced: vec![false; peers],
            gone_at: vec![None; peers],
        }
    }

    /// One more peer, added by a reload: it handed nothing here.
    pub fn add_peer(&mut self) {
        self.resynced.push(true);
        self.gone_at.push(None);
    }

    /// Whether segments of no flow are still held back from the kernel.
    #[inline]
    pub fn recovering(&self) -> bool {
        self.until.is_some()
    }

    /// Whether a deadline of recovery is still to come: the end of the
    /// wait for the peers, or a peer to be deemed gone.
    pub fn waiting(&self) -> bool {
        self.until.is_some() || self.gone_at.iter().any(Option::is_some)
    }
}

impl Engine {
    /// A peer's channel is up: it hears of every connection it handed
    /// here, and is no longer gone.
    pub(super) fn resync_to(&mut self, peer: usize) {
        if let Some(gone) = self.recovery.gone_at.get_mut(peer) {
            *gone = None;
        }
        let origin = peer_index(peer);
        let mut held: Vec<HeldFlow> = self
            .by_origin
            .iter()
            .filter(|((p, _), _)| *p == origin)
            .filter_map(|(&(_, id), key)| {
                let Some(super::flow::Flow {
                    role: Role::Target(t),
                    ..
                }) = self.flows.get(key)
                else {
                    return None;
                };
                Some(HeldFlow {
                    id,
                    key: MsgFlowKey {
                        client: key.client(),
                        server: key.server(),
                    },
                    client_mac: t.client_mac.0,
                })
            })
            .collect();
        while !held.is_empty() {
            let rest = held.split_off(held.len().min(limits::FLOWS_HELD));
            let flows = std::mem::replace(&mut held, rest);
            self.send(peer, Message::FlowsHeld(FlowsHeld { flows, last: false }));
        }
        self.out.resync_done.push(peer);
    }

    /// A peer names connections it holds that this node handed it.
    pub(super) fn on_flows_held(&mut self, peer: usize, held: FlowsHeld, now: Instant) {
        for flow in held.flows {
            let key = FlowKey::new(
                *flow.key.client.ip(),
                flow.key.client.port(),
                *flow.key.server.ip(),
                flow.key.server.port(),
            );
            let Some(id) = NonZeroU64::new(flow.id) else {
                continue;
            };
            if self.flows.contains_key(&key) || self.by_id.contains_key(&flow.id) {
                continue; // still known here
            }
            self.install_forwarding(key, peer, id, MacAddr(flow.client_mac), None, now);
            self.count(Counter::FlowsRecovered, 1);
        }
        if held.last {
            if let Some(done) = self.recovery.resynced.get_mut(peer) {
                *done = true;
            }
            if self.recovery.resynced.iter().all(|&d| d) && self.recovery.until.take().is_some() {
                tracing::info!("worker {}: every peer named what it holds", self.cfg.worker);
            }
        }
    }

    /// Adds an origin connection handed to peer `peer` under `id`, as a
    /// completed handoff leaves it: client packets go to that peer.
    pub(super) fn install_forwarding(
        &mut self,
        key: FlowKey,
        peer: usize,
        id: NonZeroU64,
        client_mac: MacAddr,
        client_next: Option<SeqNum>,
        now: Instant,
    ) {
        // Its requests are not routed any more: where they stand in the
        // client's stream is lost with the state that knew it. Where the
        // client's stream stands is not known either: its first segment
        // takes the general path, which moves the watch past it.
        let mut flow = OriginFlow {
            state: OriginState::Forwarding,
            peer: None,
            client_ack: SeqNum::default(),
            watch: client_next.map_or(SeqNum::default(), OriginFlow::unrouted_watch),
            setup: Box::new(OriginSetup {
                isn_origin: Some(SeqNum::default()),
                ..OriginSetup::new(ServiceKind::Http, client_mac)
            }),
        };
        flow.set_handoff(Some(Handoff {
            peer: peer_index(peer),
            id,
        }));
        self.by_id.insert(id.get(), key);
        let deadline = self.timers.deadline(now, self.cfg.idle_timeout);
        self.insert(key, deadline, Role::Origin(flow));
    }

    /// A peer's channel went down: the connections it handed here are its
    /// orphans once it has stayed away `orphan_timeout`.
    pub(super) fn peer_away(&mut self, peer: usize, now: Instant) {
        if let Some(gone) = self.recovery.gone_at.get_mut(peer) {
            gone.get_or_insert(now + self.cfg.orphan_timeout);
        }
    }

    /// Runs what the passage of time decides: the end of the recovery, and
    /// the orphans of peers gone too long.
    pub(super) fn poll_recovery(&mut self, now: Instant) {
        if self.recovery.until.is_some_and(|t| now >= t) {
            self.recovery.until = None;
            let missing = self.recovery.resynced.iter().filter(|&&d| !d).count();
            tracing::info!(
                "worker {}: done waiting for {missing} peer(s) to name what they hold",
                self.cfg.worker
            );
        }
        for peer in 0..self.recovery.gone_at.len() {
            if self.recovery.gone_at[peer].is_none_or(|t| now < t) {
                continue;
            }
            self.recovery.gone_at[peer] = None;
            let origin = peer_index(peer);
            let orphans: Vec<FlowKey> = self
                .by_origin
                .iter()
                .filter(|((p, _), _)| *p == origin)
                .map(|(_, &key)| key)
                .collect();
            if !orphans.is_empty() {
                tracing::warn!(
                    "peer {} stayed away: resetting {} connection(s) it handed here",
                    self.cfg.peers[peer].name,
                    orphans.len()
                );
            }
            for key in orphans {
                self.step::<TargetFlow>(key, TargetEvent::OriginGone, Input::Nothing, now);
            }
        }
    }
}
