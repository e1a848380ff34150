//! Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
//! Software Network Load Balancer", NSDI 2016, §3.4).
//!
//! Each member gets a pseudo-random permutation of the table's slots, from
//! two hashes of its name (`offset`, `skip`; the table size is prime, so
//! every `skip` generates a full permutation). Members take turns claiming
//! their next free preferred slot until the table is full. The result:
//! members own almost exactly equal shares of the table, and when a member
//! leaves or returns, few keys owned by the other members move.
//!
//! The table is built over the members that are up, sorted by name, so that
//! every node builds the same table whatever order its configuration lists
//! them in.

use super::hash::{hash, seed};

/// A lookup table over the names of the members that are up.
#[derive(Debug, Clone)]
pub(super) struct Maglev {
    size: usize,
    /// Slot → index into the pool's member list.
    table: Vec<u16>,
    /// Which members the table was built over.
    built_for: Vec<bool>,
}

impl Maglev {
    /// An empty table of `size` slots; `size` must be prime (checked by
    /// policy validation).
    pub(super) fn new(size: usize) -> Maglev {
        Maglev {
            size,
            table: Vec::new(),
            built_for: Vec::new(),
        }
    }

    /// The member for `key`, rebuilding the table first if the set of up
    /// members changed. `None` when no member is up.
    pub(super) fn lookup(&mut self, key: u64, members: &[String], up: &[bool]) -> Option<usize> {
        if self.built_for != up {
            self.table = populate(members, up, self.size);
            self.built_for = up.to_vec();
        }
        // Cannot truncate: below self.size, a usize.
        #[allow(clippy::cast_possible_truncation)]
        let slot = (key % self.size as u64) as usize;
        self.table.get(slot).map(|&m| usize::from(m))
    }
}

/// Maglev's population algorithm (the paper's Pseudocode 1). Empty if no
/// member is up.
pub(super) fn populate(members: &[String], up: &[bool], size: usize) -> Vec<u16> {
    let mut backends: Vec<usize> = (0..members.len()).filter(|&i| up[i]).collect();
    if backends.is_empty() {
        return Vec::new();
    }
    backends.sort_by(|&a, &b| members[a].cmp(&members[b]));
    let m = size as u64;
    let offsets: Vec<u64> = backends
        .iter()
        .map(|&i| hash(seed::MAGLEV_OFFSET, &[members[i].as_bytes()]) % m)
        .collect();
    let skips: Vec<u64> = backends
        .iter()
        .map(|&i| hash(seed::MAGLEV_SKIP, &[members[i].as_bytes()]) % (m - 1) + 1)
        .collect();
    let mut next = vec![0u64; backends.len()];
    let mut table = vec![u16::MAX; size];
    let mut filled = 0;
    loop {
        for (b, &member) in backends.iter().enumerate() {
            let slot = loop {
                // Cannot truncate: below m, the table's size (a usize).
                #[allow(clippy::cast_possible_truncation)]
                let slot = ((offsets[b] + next[b] * skips[b]) % m) as usize;
                next[b] += 1;
                if table[slot] == u16::MAX {
                    break slot;
                }
            };
            // Cannot truncate: pool sizes are validated to fit in a u16.
            #[allow(clippy::cast_possible_truncation)]
            let member = member as u16;
            table[slot] = member;
            filled += 1;
            if filled == size {
                return table;
            }
        }
    }
}

/// Whether `n` is prime (trial division; table sizes are small).
pub(super) fn is_prime(n: usize) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node{i}")).collect()
    }

    fn shares(table: &[u16], members: usize) -> Vec<usize> {
        let mut counts = vec![0; members];
        for &m in table {
            counts[usize::from(m)] += 1;
        }
        counts
    }

    #[test]
    fn primes() {
        let primes: Vec<usize> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65537));
        assert!(!is_prime(65535));
    }

    #[test]
    fn shares_are_nearly_equal() {
        for n in [1, 2, 3, 5, 8] {
            let table = populate(&names(n), &vec![true; n], 65537);
            let counts = shares(&table, n);
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            // The paper: each member gets ⌊M/N⌋ or ⌈M/N⌉ slots.
            assert!(max - min <= 1, "{n} members: {counts:?}");
        }
    }

    #[test]
    fn down_members_own_no_slot() {
        let up = [true, false, true, false];
        let table = populate(&names(4), &up, 1009);
        let counts = shares(&table, 4);
        assert_eq!((counts[1], counts[3]), (0, 0));
        assert_eq!(counts[0] + counts[2], 1009);
        assert!(populate(&names(4), &[false; 4], 1009).is_empty());
    }

    #[test]
    fn member_order_does_not_matter() {
        let forward = names(5);
        let mut backward = forward.clone();
        backward.reverse();
        let a = populate(&forward, &[true; 5], 4099);
        let b = populate(&backward, &[true; 5], 4099);
        let by_name = |t: &[u16], names: &[String]| -> Vec<String> {
            t.iter().map(|&m| names[usize::from(m)].clone()).collect()
        };
        assert_eq!(by_name(&a, &forward), by_name(&b, &backward));
    }

    /// When one member of N leaves, the keys it did not own mostly stay put.
    /// (Maglev trades a little of this for balance; the paper measures a few
    /// percent at M = 65537.)
    #[test]
    fn minimal_disruption() {
        for n in [3, 5, 10] {
            let members = names(n);
            let all = populate(&members, &vec![true; n], 65537);
            for gone in 0..n {
                let mut up = vec![true; n];
                up[gone] = false;
                let fewer = populate(&members, &up, 65537);
                let kept: Vec<usize> = (0..all.len())
                    .filter(|&s| usize::from(all[s]) != gone)
                    .collect();
                let moved = kept.iter().filter(|&&s| all[s] != fewer[s]).count();
                let fraction = moved as f64 / kept.len() as f64;
                assert!(fraction < 0.03, "{n} members, {gone} gone: {fraction}");
                // Every slot of the member that left went to someone up.
                assert!(fewer.iter().all(|&m| usize::from(m) != gone));
            }
        }
    }

    #[test]
    fn lookup_rebuilds_when_membership_changes() {
        let members = names(3);
        let mut maglev = Maglev::new(101);
        let keys: Vec<u64> = (0..1000).collect();
        let before: Vec<_> = keys
            .iter()
            .map(|&k| maglev.lookup(k, &members, &[true; 3]))
            .collect();
        assert!(before.iter().all(Option::is_some));
        let after: Vec<_> = keys
            .iter()
            .map(|&k| maglev.lookup(k, &members, &[true, false, true]))
            .collect();
        assert!(after.iter().all(|&m| m == Some(0) || m == Some(2)));
        assert_eq!(maglev.lookup(1, &members, &[false; 3]), None);
    }
}
