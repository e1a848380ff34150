//! Flow timers on a hashed wheel: arming is O(1), and each run looks only
//! at the flows whose slot has come, whatever the size of the table.
//!
//! A flow keeps its own deadline (`Flow::deadline`), which traffic may push
//! later at no cost. The wheel holds one entry per flow, at or before that
//! deadline; `Flow::armed` names the slot of the live entry, so entries
//! left behind by a re-arm are recognised and skipped. When an entry comes
//! up early (the deadline moved on), the flow is armed again at its
//! deadline.

use std::time::{Duration, Instant};

use super::flow::FlowKey;

/// The wheel's resolution: timers fire up to this late.
pub(super) const TICK: Duration = Duration::from_millis(50);
/// Slots: 4096 × 50 ms ≈ 3.4 minutes. A later deadline is armed in the
/// last slot and re-armed when that slot comes up.
const SLOTS: usize = 4096;

pub(super) struct TimerWheel {
    start: Instant,
    slots: Vec<Vec<(FlowKey, u64)>>,
    /// The first tick not yet run.
    next: u64,
}

impl TimerWheel {
    pub(super) fn new(start: Instant) -> TimerWheel {
        TimerWheel {
            start,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            next: 0,
        }
    }

    /// The tick whose run is the first at or after `at`.
    fn tick_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.start);
        since.as_nanos().div_ceil(TICK.as_nanos()) as u64
    }

    /// Arms `key` to come up at `at` (within a tick); returns the tick to
    /// keep in `Flow::armed`.
    pub(super) fn arm(&mut self, key: FlowKey, at: Instant) -> u64 {
        let tick = self
            .tick_of(at)
            .clamp(self.next, self.next + SLOTS as u64 - 1);
        self.slots[(tick % SLOTS as u64) as usize].push((key, tick));
        tick
    }

    /// Collects the entries of every tick that has passed by `now`, as
    /// (flow, tick armed) pairs.
    pub(super) fn expire(&mut self, now: Instant, due: &mut Vec<(FlowKey, u64)>) {
        let until = now.saturating_duration_since(self.start).as_nanos() / TICK.as_nanos();
        let until = until as u64;
        // After a long pause, one lap covers every slot.
        let from = self.next.max(until.saturating_sub(SLOTS as u64 - 1));
        for tick in from..=until {
            let slot = &mut self.slots[(tick % SLOTS as u64) as usize];
            slot.retain(|&(key, armed)| {
                if armed <= until {
                    due.push((key, armed));
                    false
                } else {
                    true
                }
            });
        }
        self.next = self.next.max(until + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(port: u16) -> FlowKey {
        FlowKey::new(
            Ipv4Addr::new(198, 18, 0, 1),
            port,
            Ipv4Addr::new(198, 18, 0, 2),
            80,
        )
    }

    #[test]
    fn entries_come_up_once_their_tick_has_passed() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        let a = wheel.arm(key(1), t0 + Duration::from_millis(120));
        let b = wheel.arm(key(2), t0 + Duration::from_secs(10));
        let mut due = Vec::new();
        wheel.expire(t0 + Duration::from_millis(100), &mut due);
        assert!(due.is_empty());
        wheel.expire(t0 + Duration::from_millis(160), &mut due);
        assert_eq!(due, vec![(key(1), a)]);
        due.clear();
        wheel.expire(t0 + Duration::from_secs(11), &mut due);
        assert_eq!(due, vec![(key(2), b)]);
    }

    #[test]
    fn far_deadlines_wait_in_the_last_slot_and_nothing_is_lost_after_a_pause() {
        let t0 = Instant::now();
        let mut wheel = TimerWheel::new(t0);
        let far = wheel.arm(key(1), t0 + Duration::from_secs(3600));
        assert_eq!(far, SLOTS as u64 - 1, "clamped to the horizon");
        let near = wheel.arm(key(2), t0 + Duration::from_secs(1));
        let mut due = Vec::new();
        // A worker that stalled for longer than a lap still sees both.
        wheel.expire(t0 + Duration::from_secs(1000), &mut due);
        due.sort_by_key(|&(_, t)| t);
        assert_eq!(due, vec![(key(2), near), (key(1), far)]);
    }
}
