//! Locality-aware request distribution (Pai et al., "Locality-Aware Request
//! Distribution in Cluster-based Network Servers", ASPLOS 1998, §2.2).
//!
//! Each target (host + path) sticks to one server, so that server's cache
//! holds it, until that server is overloaded:
//!
//! ```text
//! if server[target] is unassigned or down:
//!     server[target] = least loaded node
//! else if (load(server[target]) > T_high and some node has load < T_low)
//!         or load(server[target]) >= 2 * T_high:
//!     server[target] = least loaded node
//! send the request to server[target]
//! ```
//!
//! `T_low` is the load below which a node is considered to have spare
//! capacity; `T_high` the load above which a node's latency suffers. A
//! target moves only when the move pays for the cache misses it causes
//! (an idle node exists), or when its node is so loaded (≥ 2·T_high) that
//! latency matters more than locality.
//!
//! This is basic LARD: one server per target (no LARD/R replication).
//! Loads of peers are as fresh as their last `Load` message.
//!
//! The assignment map is bounded: targets are kept in two generations, and
//! when the current one is full the older one is dropped, so that targets
//! not requested for a while are forgotten first (an approximate LRU that
//! costs nothing per lookup). Targets are keyed by a 64-bit hash; two
//! targets sharing a hash merely share a server.

use std::collections::HashMap;

/// LARD's thresholds, in the units of [`crate::msg::Load::weight`] (active
/// connections plus pending handoffs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LardConfig {
    /// Below this a node has spare capacity. Pai et al. use 25.
    pub t_low: u32,
    /// Above this a node is busy; at twice this it sheds targets regardless.
    /// Pai et al. use 65.
    pub t_high: u32,
    /// How many target → server assignments to remember.
    pub max_targets: usize,
}

impl Default for LardConfig {
    fn default() -> LardConfig {
        LardConfig {
            t_low: 25,
            t_high: 65,
            max_targets: 65536,
        }
    }
}

/// A pool's target → server map.
#[derive(Debug, Clone)]
pub(super) struct Lard {
    config: LardConfig,
    current: HashMap<u64, usize>,
    previous: HashMap<u64, usize>,
}

/// What LARD needs to know about a pool member.
pub(super) struct Candidate {
    pub index: usize,
    pub load: u64,
}

impl Lard {
    pub(super) fn new(config: LardConfig) -> Lard {
        Lard {
            config,
            current: HashMap::new(),
            previous: HashMap::new(),
        }
    }

    /// The member for `target`. `least` is the least-loaded up member,
    /// `assigned_load(i)` the load of member `i` if it is up (`None` if down).
    pub(super) fn choose(
        &mut self,
        target: u64,
        least: Candidate,
        assigned_load: impl Fn(usize) -> Option<u64>,
    ) -> usize {
        let t_low = u64::from(self.config.t_low);
        let t_high = u64::from(self.config.t_high);
        let chosen = match self.get(target) {
            Some(server) => match assigned_load(server) {
                Some(load) if (load > t_high && least.load < t_low) || load >= 2 * t_high => {
                    least.index
                }
                Some(_) => server,
                None => least.index,
            },
            None => least.index,
        };
        self.insert(target, chosen);
        chosen
    }

    fn get(&mut self, target: u64) -> Option<usize> {
        if let Some(&server) = self.current.get(&target) {
            return Some(server);
        }
        self.previous.remove(&target)
    }

    fn insert(&mut self, target: u64, server: usize) {
        let generation = (self.config.max_targets / 2).max(1);
        if self.current.len() >= generation && !self.current.contains_key(&target) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(target, server);
    }

    /// Assignments remembered.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_bounded_and_recent_targets_survive() {
        let mut lard = Lard::new(LardConfig {
            max_targets: 100,
            ..LardConfig::default()
        });
        let least = |i| Candidate { index: i, load: 0 };
        for target in 0..10_000u64 {
            lard.choose(target, least((target % 3) as usize), |_| Some(0));
            assert!(lard.remembered() <= 100);
            // Refresh target 0 now and then: it stays assigned to node 0.
            if target % 40 == 0 {
                assert_eq!(lard.choose(0, least(2), |_| Some(0)), 0);
            }
        }
    }
}
