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

use baton_handoff::state::{TargetAction, TargetState, TargetTimer};

use super::api::EngineConfig;
use super::drive::{Carried, Executor, Input};
use super::flow::{FlowKey, Role, TargetFlow};
use super::parts::Parts;

pub(super) use events::{from_client, from_kernel};
pub(super) use exec::{translate_to_client, translate_to_kernel};
pub(super) use signals::{on_deadline, on_origin_closed, on_request};

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

    fn duration(cfg: &EngineConfig, timer: TargetTimer) -> Duration {
        match timer {
            TargetTimer::Replay => cfg.handoff_timeout,
            TargetTimer::Idle => cfg.idle_timeout,
            TargetTimer::Linger => cfg.linger,
        }
    }

    fn carry_out(
        &mut self,
        parts: &mut Parts<'_>,
        key: FlowKey,
        action: TargetAction,
        input: &mut Input<'_>,
        _now: Instant,
    ) -> Carried {
        exec::carry_out(self, parts, key, action, input)
    }
}
