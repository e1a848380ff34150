//! At most one log line per source an interval: a flood of the same
//! complaint from one source costs one line, and the next line says how
//! many were left out.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Sources remembered at once by default; beyond, the sources not heard
/// of for an interval are forgotten, and if none is, the newcomers share
/// one line.
pub const MAX_SOURCES: usize = 1024;

/// Decides, per source, whether an event may be logged now.
///
/// ```
/// use std::time::{Duration, Instant};
/// use baton_counters::RateLimit;
///
/// let mut log = RateLimit::new(Duration::from_secs(1));
/// let t = Instant::now();
/// assert_eq!(log.allow("10.0.0.1", t), Some(0));
/// assert_eq!(log.allow("10.0.0.1", t), None);
/// assert_eq!(log.allow("10.0.0.2", t), Some(0), "each source has its own");
/// assert_eq!(log.allow("10.0.0.1", t + Duration::from_secs(1)), Some(1));
/// ```
#[derive(Debug)]
pub struct RateLimit<K> {
    interval: Duration,
    max_sources: usize,
    sources: HashMap<K, Source>,
    /// The sources that found no room, as one.
    overflow: Source,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    last: Option<Instant>,
    suppressed: u64,
}

impl Source {
    const NEW: Source = Source {
        last: None,
        suppressed: 0,
    };

    fn allow(&mut self, interval: Duration, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl<K: Hash + Eq> RateLimit<K> {
    /// One line per source per `interval`, for up to [`MAX_SOURCES`]
    /// sources.
    pub fn new(interval: Duration) -> Self {
        Self::with_sources(interval, MAX_SOURCES)
    }

    pub fn with_sources(interval: Duration, max_sources: usize) -> Self {
        RateLimit {
            interval,
            max_sources,
            sources: HashMap::new(),
            overflow: Source::NEW,
        }
    }

    /// Whether an event of `source` may be logged now: `Some(n)`, with the
    /// `n` events of that source left out since its last line, or `None`
    /// (it is counted for the next line).
    pub fn allow(&mut self, source: K, now: Instant) -> Option<u64> {
        if !self.sources.contains_key(&source) && self.sources.len() >= self.max_sources {
            let interval = self.interval;
            // Forget the quiet ones, whose next line would say nothing left
            // out anyway.
            self.sources.retain(|_, s| {
                s.suppressed > 0
                    || s.last
                        .is_some_and(|t| now.saturating_duration_since(t) < interval)
            });
            if self.sources.len() >= self.max_sources {
                return self.overflow.allow(interval, now);
            }
        }
        self.sources
            .entry(source)
            .or_insert(Source::NEW)
            .allow(self.interval, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn one_line_per_source_per_interval_with_the_count_left_out() {
        let mut log = RateLimit::new(SEC);
        let t = Instant::now();
        let allowed: Vec<Option<u64>> = (0..5)
            .map(|i| log.allow(1, t + Duration::from_millis(300 * i)))
            .collect();
        // 0 ms, then 300, 600, 900 left out, 1200 allowed with 3 left out.
        assert_eq!(allowed, [Some(0), None, None, None, Some(3)]);
        assert_eq!(log.allow(1, t + 3 * SEC), Some(0));
    }

    #[test]
    fn sources_beyond_the_bound_share_one_line_and_quiet_ones_are_forgotten() {
        let mut log = RateLimit::with_sources(SEC, 2);
        let t = Instant::now();
        assert_eq!(log.allow(1, t), Some(0));
        assert_eq!(log.allow(2, t), Some(0));
        assert_eq!(log.allow(3, t), Some(0), "the overflow's first line");
        assert_eq!(log.allow(4, t), None, "shares the overflow's line");
        assert_eq!(log.sources.len(), 2);
        // A second on, 1 and 2 are quiet: forgotten, so 5 finds room.
        assert_eq!(log.allow(5, t + SEC), Some(0));
        assert!(log.sources.len() <= 2);
    }
}
