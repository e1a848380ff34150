//! Reconnect delays: exponential with jitter, so that nodes restarted
//! together do not dial in lockstep.

use std::time::Duration;

use rand::Rng;

/// The first delay after a failure.
pub const INITIAL: Duration = Duration::from_millis(100);
/// The delay never grows past this.
pub const MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: INITIAL }
    }
}

impl Backoff {
    /// The delay to wait now: uniformly drawn from the upper half of the
    /// current step. The step then doubles, up to [`MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(MAX);
        let low = step / 2;
        low + rand::rng().random_range(Duration::ZERO..=step - low)
    }

    /// Called once a connection is established: the next failure starts
    /// again from [`INITIAL`].
    pub fn reset(&mut self) {
        self.next = INITIAL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_range() {
        let mut b = Backoff::default();
        let mut step = INITIAL;
        for _ in 0..12 {
            let d = b.next_delay();
            assert!(
                d >= step / 2 && d <= step,
                "{d:?} not in [{:?}, {step:?}]",
                step / 2
            );
            step = (step * 2).min(MAX);
        }
        assert!(b.next_delay() >= MAX / 2);
        b.reset();
        assert!(b.next_delay() <= INITIAL);
    }
}
