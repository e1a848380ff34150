//! The origin side: this node accepted the connection.
//!
//! The transitions are [`OriginState`]'s, driven by `drive`. Here are what
//! each origin event comes from (`events`: the client's and the kernel's
//! segments; `signals`: the peers' answers, the channel and the timers;
//! `place`: the policy's decisions; `moves`: a routed connection changing
//! owner), and what each action does (`exec`). `route` follows an HTTP
//! connection's requests.

mod events;
mod exec;
mod moves;
mod owning;
mod place;
mod route;
mod signals;

use std::time::{Duration, Instant};

use baton_handoff::state::{OriginAction, OriginEvent, OriginState, OriginTimer};

use super::api::EngineConfig;
use super::drive::{Carried, Executor, Input};
use super::flow::{FlowKey, OriginFlow, Role};
use super::parts::Parts;
use super::replay;

pub(super) use events::{from_client, from_kernel, on_handshake_done, on_syn};
pub(super) use exec::{redirect, target_mac};
pub(super) use moves::{on_release_refused, on_released};
pub(in crate::engine) use route::{Replay, Route};
pub(super) use signals::{on_accept, on_closed, on_deadline, on_peer_down, on_reject};

/// How much longer than the target's budget the origin waits for its
/// answer: a control message's trip across both nodes' control lcores and
/// host paths, with room for a loaded node.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// A refusal's first retransmission timeout: Linux's least (the client is
/// on this node's network, and has acknowledged nothing yet).
const REFUSAL_RTO: Duration = Duration::from_millis(200);
/// Refusals sent before the client is reset instead: the first and three
/// retransmissions, over about 3 s.
const REFUSALS: u8 = 4;

impl OriginFlow {
    /// SYNs a replay here has sent.
    fn syns_sent(&self) -> u8 {
        self.setup.replay.as_ref().map_or(0, |r| r.syns_sent)
    }
}

impl Executor for OriginFlow {
    type M = OriginState;

    fn of(role: &mut Role) -> Option<&mut OriginFlow> {
        match role {
            Role::Origin(o) => Some(o),
            Role::Target(_) => None,
        }
    }

    fn state(&self) -> OriginState {
        self.state
    }

    fn set_state(&mut self, state: OriginState) {
        self.state = state;
    }

    fn duration(&self, cfg: &EngineConfig, timer: OriginTimer) -> Duration {
        match timer {
            // A request that never comes is an idle connection.
            OriginTimer::Handshake | OriginTimer::Idle => cfg.idle_timeout,
            OriginTimer::Hold => cfg.hold_timeout,
            // The target answers within the handoff timeout, a Reject when
            // its replay found no taker; the origin waits a little longer,
            // so that it never gives up on an answer still on its way.
            OriginTimer::Handoff => cfg.handoff_timeout + ANSWER_MARGIN,
            // Doubling, as TCP's own retransmissions do.
            OriginTimer::Refusal => {
                REFUSAL_RTO
                    * (1u32
                        << self
                            .setup
                            .refusals_sent
                            .clamp(1, REFUSALS)
                            .saturating_sub(1))
            }
            // As a target's replay (the budget is the same handoff's).
            OriginTimer::Replay => replay::schedule(cfg.handoff_timeout, self.syns_sent()).0,
            OriginTimer::Linger => cfg.linger,
        }
    }

    fn expiry(&self, cfg: &EngineConfig) -> OriginEvent {
        match self.state {
            // The client acknowledged what only the target can have sent.
            OriginState::HandoffPending
                if self
                    .setup
                    .isn_origin
                    .is_some_and(|isn| self.client_ack.is_after(isn + 1)) =>
            {
                OriginEvent::TargetAnswered
            }
            OriginState::Refusing if self.setup.refusals_sent < REFUSALS => OriginEvent::Retransmit,
            OriginState::Replaying if replay::schedule(cfg.handoff_timeout, self.syns_sent()).1 => {
                OriginEvent::Retransmit
            }
            _ => OriginEvent::Timeout,
        }
    }

    fn carry_out(
        &mut self,
        parts: &mut Parts<'_>,
        key: FlowKey,
        action: OriginAction,
        input: &mut Input<'_>,
        now: Instant,
    ) -> Carried {
        exec::carry_out(self, parts, key, action, input, now)
    }
}
