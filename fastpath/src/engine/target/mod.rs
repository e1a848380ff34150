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

/// The replayed SYN's first retransmission timeout, doubling after each.
/// A client's kernel starts at 1 s (`TCP_TIMEOUT_INIT`) because it knows
/// nothing of the path; the replay's path is this host's own port, where a
/// SYN is lost only to a full accept queue, which drains at the server's
/// pace (milliseconds). Starting at a quarter second gives a busy server
/// three more chances within the default 3 s budget instead of one, and a
/// waiting client its answer sooner.
const REPLAY_RTO: Duration = Duration::from_millis(250);

/// When a replay that has sent `syns_sent` SYNs acts next, and whether
/// that is another SYN: SYNs go at 0, 1, 3, 7 ... RTOs, while they fall
/// within the handoff timeout; then the timeout ends the replay.
fn replay_schedule(budget: Duration, syns_sent: u8) -> (Duration, bool) {
    let sent = u32::from(syns_sent.clamp(1, 16));
    // The n-th SYN goes at (2^(n-1) - 1) RTOs.
    let at = |n: u32| REPLAY_RTO * ((1u32 << (n - 1)) - 1);
    let (last, next) = (at(sent), at(sent + 1));
    if next < budget {
        (next - last, true)
    } else {
        (budget.saturating_sub(last), false)
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
            TargetTimer::Replay => replay_schedule(cfg.handoff_timeout, self.setup.syns_sent).0,
            TargetTimer::Idle => cfg.idle_timeout,
            TargetTimer::Linger => cfg.linger,
            TargetTimer::Probe => PROBE_WAIT,
        }
    }

    fn expiry(&self, cfg: &EngineConfig) -> TargetEvent {
        match (
            self.state,
            replay_schedule(cfg.handoff_timeout, self.setup.syns_sent),
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
        _now: Instant,
    ) -> Carried {
        exec::carry_out(self, parts, key, action, input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_syns_go_at_doubling_intervals_within_the_budget() {
        let ms = Duration::from_millis;
        let budget = ms(3000);
        // SYNs at 0, 250, 750 and 1750 ms; the next would be at 3750.
        assert_eq!(replay_schedule(budget, 1), (ms(250), true));
        assert_eq!(replay_schedule(budget, 2), (ms(500), true));
        assert_eq!(replay_schedule(budget, 3), (ms(1000), true));
        assert_eq!(replay_schedule(budget, 4), (ms(1250), false));
        // A budget shorter than one RTO is one SYN and the timeout.
        assert_eq!(replay_schedule(ms(200), 1), (ms(200), false));
    }
}
