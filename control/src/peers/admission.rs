//! Who may hold a handshake on the control port, so that strangers cannot
//! keep the configured peers out.
//!
//! A connection is a *peer's* when it comes from the address of a
//! configured peer, and a *stranger's* otherwise (the source address is
//! all the listener knows before the handshake, and TCP's own handshake
//! means it was not spoofed from off the path).
//!
//! - Each configured peer address has [`PEER_SLOTS`] handshakes of its
//!   own, which no stranger can take, and keeps [`PEER_HANDSHAKE_TIMEOUT`].
//! - Strangers get [`STRANGER_SLOTS_PER_SOURCE`] handshakes per source
//!   address, [`STRANGER_SLOTS`] in all, and [`STRANGER_HANDSHAKE_TIMEOUT`]
//!   each: a silent connection is closed soon.
//! - A connection beyond these is closed at once and counted by reason.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::counters::PeerCounter;

/// Handshakes in progress at once from one configured peer's address.
pub const PEER_SLOTS: usize = 2;
/// Handshakes in progress at once from one stranger's address.
pub const STRANGER_SLOTS_PER_SOURCE: usize = 4;
/// Handshakes in progress at once from all strangers together.
pub const STRANGER_SLOTS: usize = 32;
/// How long a peer's handshake may take.
pub const PEER_HANDSHAKE_TIMEOUT: Duration = super::link::HANDSHAKE_TIMEOUT;
/// How long a stranger's handshake may take: a real peer answers in one
/// round trip.
pub const STRANGER_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a connection was not given a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A configured peer's address has all its slots busy.
    PeerSlots,
    /// This stranger's address has all its slots busy.
    PerSource,
    /// Strangers hold every stranger slot.
    Strangers,
}

impl Refusal {
    pub fn counter(self) -> PeerCounter {
        match self {
            Refusal::PeerSlots => PeerCounter::RefusedPeerSlots,
            Refusal::PerSource => PeerCounter::RefusedPerSource,
            Refusal::Strangers => PeerCounter::RefusedStrangers,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Refusal::PeerSlots => {
                format!("{PEER_SLOTS} handshakes from this peer's address in progress")
            }
            Refusal::PerSource => format!(
                "{STRANGER_SLOTS_PER_SOURCE} handshakes from this address in progress (not a configured peer's)"
            ),
            Refusal::Strangers => format!(
                "{STRANGER_SLOTS} handshakes from addresses of no configured peer in progress"
            ),
        }
    }
}

/// The handshakes in progress, by source.
pub struct Admission {
    inner: Mutex<Busy>,
}

struct Busy {
    peers: HashSet<IpAddr>,
    by_source: HashMap<IpAddr, usize>,
    strangers: usize,
}

/// A handshake's place; given back when dropped.
pub struct Slot {
    admission: Arc<Admission>,
    source: IpAddr,
    /// Whether the source is a configured peer's address.
    pub peer: bool,
}

impl Slot {
    /// How long this handshake may take.
    pub fn timeout(&self) -> Duration {
        if self.peer {
            PEER_HANDSHAKE_TIMEOUT
        } else {
            STRANGER_HANDSHAKE_TIMEOUT
        }
    }
}

impl Admission {
    pub fn new(peers: impl IntoIterator<Item = IpAddr>) -> Arc<Admission> {
        Arc::new(Admission {
            inner: Mutex::new(Busy {
                peers: peers.into_iter().collect(),
                by_source: HashMap::new(),
                strangers: 0,
            }),
        })
    }

    /// The configured peers' addresses are now `peers` (a reload).
    pub fn set_peers(&self, peers: impl IntoIterator<Item = IpAddr>) {
        let mut busy = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        busy.peers = peers.into_iter().collect();
    }

    /// A slot for a handshake with `source`, or why there is none.
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> Result<Slot, Refusal> {
        let mut busy = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let peer = busy.peers.contains(&source);
        let here = busy.by_source.get(&source).copied().unwrap_or(0);
        if peer && here >= PEER_SLOTS {
            return Err(Refusal::PeerSlots);
        }
        if !peer {
            if here >= STRANGER_SLOTS_PER_SOURCE {
                return Err(Refusal::PerSource);
            }
            if busy.strangers >= STRANGER_SLOTS {
                return Err(Refusal::Strangers);
            }
            busy.strangers += 1;
        }
        *busy.by_source.entry(source).or_default() += 1;
        Ok(Slot {
            admission: Arc::clone(self),
            source,
            peer,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut busy = self
            .admission
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !self.peer {
            busy.strangers -= 1;
        }
        if let Some(n) = busy.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                busy.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: usize) -> IpAddr {
        IpAddr::from([198, 18, 0, u8::try_from(last).expect("a test address")])
    }

    #[test]
    fn strangers_cannot_take_a_peers_slots() {
        let a = Admission::new([ip(11)]);
        // Strangers from many addresses fill their share...
        let strangers: Vec<Slot> = (0..STRANGER_SLOTS)
            .map(|i| a.admit(ip(100 + i / STRANGER_SLOTS_PER_SOURCE)).unwrap())
            .collect();
        assert_eq!(a.admit(ip(200)).err(), Some(Refusal::Strangers));
        // ...and the peer still gets its own, with the longer deadline.
        let p1 = a.admit(ip(11)).unwrap();
        let p2 = a.admit(ip(11)).unwrap();
        assert!(p1.peer && p2.peer);
        assert_eq!(p1.timeout(), PEER_HANDSHAKE_TIMEOUT);
        assert_eq!(a.admit(ip(11)).err(), Some(Refusal::PeerSlots));
        drop(p1);
        assert!(a.admit(ip(11)).is_ok(), "a slot given back is free again");
        drop(strangers);
        let s = a.admit(ip(200)).unwrap();
        assert!(!s.peer);
        assert_eq!(s.timeout(), STRANGER_HANDSHAKE_TIMEOUT);
    }

    #[test]
    fn one_stranger_gets_a_few_slots_only() {
        let a = Admission::new([ip(11)]);
        let held: Vec<Slot> = (0..STRANGER_SLOTS_PER_SOURCE)
            .map(|_| a.admit(ip(100)).unwrap())
            .collect();
        assert_eq!(a.admit(ip(100)).err(), Some(Refusal::PerSource));
        assert!(a.admit(ip(101)).is_ok(), "another address has its own");
        drop(held);
        assert!(a.admit(ip(100)).is_ok());
        let busy = a.inner.lock().unwrap();
        assert_eq!(busy.strangers, 0, "every slot was given back");
        assert!(busy.by_source.is_empty());
    }
}
