//! Idle back-off for the poll loop.
//!
//! On dedicated metal a worker busy-polls: the lowest latency, one core
//! spent. On a shared machine (CI, a laptop, three nodes on two cores) a
//! worker that finds its queues empty sleeps for a while, doubling the sleep
//! up to a ceiling, and goes back to full speed on the first packet. A
//! worker with a handoff engine sleeps on its control inbox, so that a
//! message from the control lcore (a handoff to replay) ends the sleep at
//! once; with `poll.wake = "packets"` a frame arriving on an af_packet
//! port ends it too (`dpdk_ffi::PacketWake`), and the worker then sleeps
//! past the ceiling until its own next duty (`Worker::until_due`); else
//! packets wait out the sleep.

use std::time::Duration;

/// Empty polls in a row before the first sleep: a short gap between bursts
/// under load costs no latency.
const SPINS_BEFORE_SLEEP: u32 = 64;
const FIRST_SLEEP: Duration = Duration::from_micros(1);

/// How a worker waits when its queues are empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Poll without pause.
    Busy,
    /// Sleep when idle, at most `max` at a time.
    Sleep { max: Duration },
}

impl IdlePolicy {
    /// The longest sleep between empty polls: zero when busy.
    pub fn ceiling(self) -> Duration {
        match self {
            IdlePolicy::Busy => Duration::ZERO,
            IdlePolicy::Sleep { max } => max,
        }
    }
}

/// The back-off state of one worker.
#[derive(Debug)]
pub struct Backoff {
    policy: IdlePolicy,
    empty_polls: u32,
    sleep: Duration,
}

impl Backoff {
    pub fn new(policy: IdlePolicy) -> Backoff {
        Backoff {
            policy,
            empty_polls: 0,
            sleep: FIRST_SLEEP,
        }
    }

    /// Records one poll that moved `packets`; returns how long to sleep
    /// before the next (zero: poll again at once).
    #[inline]
    pub fn after_poll(&mut self, packets: usize) -> Duration {
        let IdlePolicy::Sleep { max } = self.policy else {
            return Duration::ZERO;
        };
        if packets > 0 {
            self.empty_polls = 0;
            self.sleep = FIRST_SLEEP;
            return Duration::ZERO;
        }
        self.empty_polls = self.empty_polls.saturating_add(1);
        if self.empty_polls < SPINS_BEFORE_SLEEP {
            return Duration::ZERO;
        }
        let now = self.sleep.min(max);
        self.sleep = (self.sleep * 2).min(max);
        now
    }

    /// Waits as `after_poll` says. `sleep` sleeps at most the pause it is
    /// given and says whether work woke it early (a message to handle),
    /// which counts as traffic: the next polls come at full speed.
    #[inline]
    pub fn wait(&mut self, packets: usize, sleep: impl FnOnce(Duration) -> bool) {
        let pause = self.after_poll(packets);
        if pause.is_zero() {
            std::hint::spin_loop();
        } else if sleep(pause) {
            self.after_poll(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_never_sleeps() {
        let mut b = Backoff::new(IdlePolicy::Busy);
        assert!((0..10_000).all(|_| b.after_poll(0).is_zero()));
    }

    #[test]
    fn sleep_backs_off_to_the_ceiling_and_resets_on_traffic() {
        let max = Duration::from_micros(200);
        let mut b = Backoff::new(IdlePolicy::Sleep { max });
        for _ in 0..SPINS_BEFORE_SLEEP - 1 {
            assert!(b.after_poll(0).is_zero());
        }
        let sleeps: Vec<_> = (0..12).map(|_| b.after_poll(0)).collect();
        assert_eq!(sleeps[0], FIRST_SLEEP);
        assert!(sleeps.windows(2).all(|w| w[1] >= w[0]), "{sleeps:?}");
        assert_eq!(*sleeps.last().unwrap(), max);
        assert!(b.after_poll(5).is_zero());
        assert!(b.after_poll(0).is_zero(), "traffic restarts the spin phase");
    }

    #[test]
    fn a_sleep_ended_by_work_restarts_the_spin_phase() {
        let max = Duration::from_micros(200);
        let mut b = Backoff::new(IdlePolicy::Sleep { max });
        for _ in 0..SPINS_BEFORE_SLEEP - 1 {
            b.wait(0, |_| unreachable!("no sleep while spinning"));
        }
        let mut slept = None;
        b.wait(0, |pause| {
            slept = Some(pause);
            true
        });
        assert_eq!(slept, Some(FIRST_SLEEP));
        assert!(b.after_poll(0).is_zero(), "woken by work: spinning again");
    }
}
