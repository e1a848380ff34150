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
// Cannot truncate: 50 ms in nanoseconds.
#[allow(clippy::cast_possible_truncation)]
const TICK_NANOS: u64 = TICK.as_nanos() as u64;
/// Slots: 4096 × 50 ms ≈ 3.4 minutes. A later deadline is armed in the
/// last slot and re-armed when that slot comes up.
const SLOTS: usize = 4096;

/// A point in time, in ticks since the wheel started: four bytes in a flow
/// entry instead of an `Instant`'s sixteen. It wraps after 2^32 ticks
/// (6.8 years); comparisons are wrapping, and every span they compare is
/// far shorter than half of that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tick(u32);

impl Tick {
    /// Whether `self` comes after `other`.
    #[inline]
    pub(super) fn is_after(self, other: Tick) -> bool {
        (self.0.wrapping_sub(other.0) as i32) > 0
    }
}

pub(super) struct TimerWheel {
    start: Instant,
    slots: Vec<Vec<(FlowKey, Tick)>>,
    /// The first tick not yet run.
    next: u64,
    /// The last `now` asked about, and its nanoseconds since `start`: a
    /// poll pass asks with one `now` for each of its packets.
    last: (Instant, u64),
}

impl TimerWheel {
    pub(super) fn new(start: Instant) -> TimerWheel {
        TimerWheel {
            start,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            next: 0,
            last: (start, 0),
        }
    }

    #[inline]
    fn nanos(&mut self, now: Instant) -> u64 {
        if now != self.last.0 {
            let since = now.saturating_duration_since(self.start);
            self.last = (
                now,
                since.as_secs() * 1_000_000_000 + u64::from(since.subsec_nanos()),
            );
        }
        self.last.1
    }

    /// The tick whose run is the first at or after `now + after`.
    // Truncation intended: a Tick is the tick count mod 2^32 (see Tick).
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn deadline(&mut self, now: Instant, after: Duration) -> Tick {
        let after = after.as_secs() * 1_000_000_000 + u64::from(after.subsec_nanos());
        Tick(self.nanos(now).saturating_add(after).div_ceil(TICK_NANOS) as u32)
    }

    /// The last tick that has passed by `now`.
    // Truncation intended: a Tick is the tick count mod 2^32 (see Tick).
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn passed(&mut self, now: Instant) -> Tick {
        Tick((self.nanos(now) / TICK_NANOS) as u32)
    }

    /// The wheel's own (unwrapped) tick for `at`, kept within one lap.
    // Truncation intended: a Tick is the tick count mod 2^32 (see Tick).
    #[allow(clippy::cast_possible_truncation)]
    fn absolute(&self, at: Tick) -> u64 {
        let ahead = at.0.wrapping_sub(self.next as u32) as i32;
        self.next + u64::from(ahead.max(0) as u32).min(SLOTS as u64 - 1)
    }

    /// Arms `key` to come up at `at` (within a tick); returns the tick to
    /// keep in `Flow::armed`.
    // Truncation intended: a Tick is the tick count mod 2^32 (see Tick);
    // and tick % SLOTS is below SLOTS.
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn arm(&mut self, key: FlowKey, at: Tick) -> Tick {
        let tick = self.absolute(at);
        let armed = Tick(tick as u32);
        self.slots[(tick % SLOTS as u64) as usize].push((key, armed));
        armed
    }

    /// Collects the entries of every tick that has passed by `now`, as
    /// (flow, tick armed) pairs.
    pub(super) fn expire(&mut self, now: Instant, due: &mut Vec<(FlowKey, Tick)>) {
        let until = self.nanos(now) / TICK_NANOS;
        // After a long pause, one lap covers every slot.
        let from = self.next.max(until.saturating_sub(SLOTS as u64 - 1));
        for tick in from..=until {
            // Cannot truncate: tick % SLOTS is below SLOTS.
            #[allow(clippy::cast_possible_truncation)]
            let slot = &mut self.slots[(tick % SLOTS as u64) as usize];
            // Truncation intended: a Tick is the tick count mod 2^32 (see Tick).
            #[allow(clippy::cast_possible_truncation)]
            slot.retain(|&(key, armed)| {
                if !armed.is_after(Tick(until as u32)) {
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

    #[test]
    fn ticks_compare_across_the_wrap() {
        assert!(Tick(5).is_after(Tick(u32::MAX - 5)));
        assert!(!Tick(u32::MAX - 5).is_after(Tick(5)));
        assert!(!Tick(7).is_after(Tick(7)));
    }

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
        let at = wheel.deadline(t0, Duration::from_millis(120));
        let a = wheel.arm(key(1), at);
        let at = wheel.deadline(t0, Duration::from_secs(10));
        let b = wheel.arm(key(2), at);
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
        let at = wheel.deadline(t0, Duration::from_secs(3600));
        let far = wheel.arm(key(1), at);
        let last = u32::try_from(SLOTS - 1).unwrap();
        assert_eq!(far, Tick(last), "clamped to the horizon");
        let at = wheel.deadline(t0, Duration::from_secs(1));
        let near = wheel.arm(key(2), at);
        let mut due = Vec::new();
        // A worker that stalled for longer than a lap still sees both.
        wheel.expire(t0 + Duration::from_secs(1000), &mut due);
        due.sort_by_key(|&(_, t)| t.0);
        assert_eq!(due, vec![(key(2), near), (key(1), far)]);
    }
}
