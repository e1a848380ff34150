//! The target side: a peer handed this node a live connection.
//!
//! The transitions are [`TargetState`]'s, driven by `drive`. Here are what
//! each target event comes from (`events`: the kernel's and the client's
//! segments; `signals`: the origin's request and messages, and timers),
//! and what each action does (`exec`).

mod events;
mod exec;
mod signals;

use std::time::{Duration, Instant};

use baton_handoff::state::{TargetAction, TargetEvent, TargetState, TargetTimer};

use super::api::EngineConfig;
use super::drive::{Carried, Executor, Input};
use super::flow::{FlowKey, Role, TargetFlow};
use super::parts::Parts;
use super::replay;

pub(super) use events::{from_client, from_kernel};
pub(super) use exec::{translate_to_client, translate_to_kernel};
pub(super) use signals::{on_cancel, on_deadline, on_release, on_request};

/// How long a kernel has to answer a probe (it answers at once, but
/// rate-limits such answers to one per half second per connection).
const PROBE_WAIT: Duration = Duration::from_millis(600);

impl Executor for TargetFlow {
    type M = TargetState;

    fn of(role: &mut Role) -> Option<&mut TargetFlow> {
        match role {
            Role::Target(t) => Some(t),
            Role::Origin(_) => None,
        }
    }

    fn state(&self) -> TargetState {
        self.state
    }

    fn set_state(&mut self, state: TargetState) {
        self.state = state;
    }

    fn duration(&self, cfg: &EngineConfig, timer: TargetTimer) -> Duration {
        match timer {
            TargetTimer::Replay => replay::schedule(cfg.handoff_timeout, self.setup.syns_sent).0,
            TargetTimer::Idle => cfg.idle_timeout,
            TargetTimer::Linger => cfg.linger,
            TargetTimer::Probe => PROBE_WAIT,
        }
    }

    fn expiry(&self, cfg: &EngineConfig) -> TargetEvent {
        match (
            self.state,
            replay::schedule(cfg.handoff_timeout, self.setup.syns_sent),
        ) {
            (TargetState::Replaying, (_, true)) => TargetEvent::Retransmit,
            _ => TargetEvent::Timeout,
        }
    }

    fn carry_out(
        &mut self,
        parts: &mut Parts<'_>,
        key: FlowKey,
        action: TargetAction,
        input: &mut Input<'_>,
        now: Instant,
    ) -> Carried {
        exec::carry_out(self, parts, key, action, input, now)
    }
}
