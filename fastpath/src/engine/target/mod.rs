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

pub(super) use events::{from_client, from_kernel};
pub(super) use exec::{translate_to_client, translate_to_kernel};
pub(super) use signals::{on_cancel, on_deadline, on_request};

/// How long a kernel has to answer a probe (it answers at once, but
/// rate-limits such answers to one per half second per connection).
const PROBE_WAIT: Duration = Duration::from_millis(600);

/// The replayed SYN's first retransmission timeout: the kernel's own
/// (Linux's `TCP_TIMEOUT_INIT`), doubling after each, as a client's would.
const REPLAY_RTO: Duration = Duration::from_secs(1);

/// When a replay that has sent `syns_sent` SYNs acts next, and whether
/// that is another SYN: SYNs go at 0, 1, 3, 7 ... seconds, while they fall
/// within the handoff timeout; then the timeout ends the replay.
fn replay_schedule(cfg: &EngineConfig, syns_sent: u8) -> (Duration, bool) {
    let sent = u32::from(syns_sent.clamp(1, 16));
    // The n-th SYN goes at (2^(n-1) - 1) RTOs.
    let at = |n: u32| REPLAY_RTO * ((1u32 << (n - 1)) - 1);
    let (last, next) = (at(sent), at(sent + 1));
    if next < cfg.handoff_timeout {
        (next - last, true)
    } else {
        (cfg.handoff_timeout.saturating_sub(last), false)
    }
}

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
            TargetTimer::Replay => replay_schedule(cfg, self.setup.syns_sent).0,
            TargetTimer::Idle => cfg.idle_timeout,
            TargetTimer::Linger => cfg.linger,
            TargetTimer::Probe => PROBE_WAIT,
        }
    }

    fn expiry(&self, cfg: &EngineConfig) -> TargetEvent {
        match (self.state, replay_schedule(cfg, self.setup.syns_sent)) {
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
        _now: Instant,
    ) -> Carried {
        exec::carry_out(self, parts, key, action, input)
    }
}
