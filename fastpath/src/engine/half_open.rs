//! Half-open connections: a client's SYN was seen, its handshake is not
//! done. They live here, apart from the flow table, until the client's
//! handshake-completing ACK promotes them into a flow (the BSD and Linux
//! syncache idea).
//!
//! Why apart: a SYN costs its sender nothing, and a spoofed one never
//! completes. A flow made for every SYN pinned a 128-byte slot and a
//! boxed setup for the idle timeout (300 s), so a flood of spoofed SYNs
//! filled the table and the memory. Here a SYN costs one fixed-size entry
//! (no heap allocation of its own) in a table of bounded size, for a short
//! lifetime (`handoff.half_open_ms`); a full table drops its oldest entry.
//! Nothing is broken by a drop: the SYN went to the local kernel as it
//! always does, so a connection whose entry is gone is served by the
//! kernel here, untracked, as any connection kept local.
//!
//! An entry keeps what a handoff request needs from the handshake and
//! cannot learn later: the client's SYN (its ISN, options, window and
//! timestamp) and the kernel's SYN-ACK (its ISN, options and timestamp).
//! The promoting ACK must acknowledge that SYN-ACK (`ack = isn_origin +
//! 1`), as a syncache checks it: a blind ACK from an address that never
//! saw the SYN-ACK does not make a flow.
//!
//! Expiry: every entry lives equally long, so the order entries were
//! made in is the order they expire in. A FIFO of (key, stamp, deadline)
//! is then the exact timer, O(1) per entry, and the same queue names the
//! oldest entry to drop under pressure. The timer wheel (`timers`) is for
//! flows, whose deadlines differ and move with traffic; it would add an
//! entry per SYN to no gain. An entry promoted or replaced leaves its FIFO
//! item behind, recognised by its stamp and skipped; the FIFO is compacted
//! when it reaches twice the table's bound, so it stays bounded too.

use std::collections::VecDeque;
use std::time::Instant;

use hashbrown::HashMap;

use super::flow::{FlowKey, OriginSetup};
use super::timers::{Tick, TimerWheel};
use super::ServiceKind;
use crate::packet::{MacAddr, SeqNum, TcpFrame, TsVal};

/// TCP options as a SYN or SYN-ACK carried them, kept inline: a TCP
/// header has at most 40 bytes of options.
#[derive(Clone, Copy)]
pub(super) struct SynOptions {
    len: u8,
    bytes: [u8; 40],
}

impl SynOptions {
    fn new(options: &[u8]) -> SynOptions {
        let mut bytes = [0; 40];
        let len = options.len().min(40);
        bytes[..len].copy_from_slice(&options[..len]);
        SynOptions {
            // Cannot truncate: at most 40.
            #[allow(clippy::cast_possible_truncation)]
            len: len as u8,
            bytes,
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What the handshake of a half-open connection told.
pub(super) struct HalfOpen {
    pub kind: ServiceKind,
    pub client_mac: MacAddr,
    pub syn_isn: SeqNum,
    pub client_window: u16,
    pub client_tsval: Option<TsVal>,
    pub client_syn_options: SynOptions,
    /// Set once the kernel's SYN-ACK passed.
    pub isn_origin: Option<SeqNum>,
    pub origin_synack_options: SynOptions,
    pub origin_tsval: Option<TsVal>,
    /// Which FIFO item is this entry's (see the module notes).
    stamp: u32,
}

/// How many bytes one entry takes in the table (its key and value, and
/// hashbrown's control byte), and in the FIFO: what `limits` documents.
pub const ENTRY_BYTES: usize =
    core::mem::size_of::<(FlowKey, HalfOpen)>() + 1 + core::mem::size_of::<(FlowKey, u32, Tick)>();

impl HalfOpen {
    /// The flow setup a promoted connection starts with: what a flow
    /// opened at the SYN would have gathered by its handshake's end.
    pub fn setup(&self) -> OriginSetup {
        OriginSetup {
            syn_isn: self.syn_isn,
            isn_client: self.syn_isn,
            client_syn_options: self.client_syn_options.as_slice().to_vec(),
            client_window: self.client_window,
            client_tsval: self.client_tsval,
            isn_origin: self.isn_origin,
            origin_synack_options: self.origin_synack_options.as_slice().to_vec(),
            origin_tsval: self.origin_tsval,
            ..OriginSetup::new(self.kind, self.client_mac)
        }
    }
}

/// What a SYN did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Added {
    /// A new entry; `dropped` says whether the oldest went to make room.
    New { dropped: bool },
    /// The client sent its SYN again: the entry is kept as it is.
    Again,
}

pub(super) struct HalfOpenTable {
    entries: HashMap<FlowKey, HalfOpen>,
    /// Entries in the order they were made, with their deadlines.
    order: VecDeque<(FlowKey, u32, Tick)>,
    capacity: usize,
    lifetime: std::time::Duration,
    next_stamp: u32,
}

impl HalfOpenTable {
    /// A table of at most `capacity` entries, each living `lifetime`. The
    /// memory is taken up front: a flood then never makes it grow (or
    /// stall while it rehashes).
    pub fn new(capacity: usize, lifetime: std::time::Duration) -> HalfOpenTable {
        let capacity = capacity.max(1);
        HalfOpenTable {
            entries: HashMap::with_capacity(capacity),
            order: VecDeque::with_capacity(2 * capacity),
            capacity,
            lifetime,
            next_stamp: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline]
    pub fn contains(&self, key: &FlowKey) -> bool {
        !self.is_empty() && self.entries.contains_key(key)
    }

    /// A client's SYN (`seg`, in `frame`) for a service of `kind`.
    pub fn syn(
        &mut self,
        key: FlowKey,
        kind: ServiceKind,
        frame: &[u8],
        seg: &TcpFrame,
        timers: &mut TimerWheel,
        now: Instant,
    ) -> Added {
        if self.entries.get(&key).is_some_and(|h| h.syn_isn == seg.seq) {
            return Added::Again;
        }
        // A SYN with another ISN is a new attempt: it replaces the entry.
        let dropped = !self.entries.contains_key(&key)
            && self.entries.len() >= self.capacity
            && self.drop_oldest();
        self.next_stamp = self.next_stamp.wrapping_add(1);
        let stamp = self.next_stamp;
        self.entries.insert(
            key,
            HalfOpen {
                kind,
                client_mac: seg.src_mac,
                syn_isn: seg.seq,
                client_window: seg.window,
                client_tsval: seg.tsval(frame),
                client_syn_options: SynOptions::new(seg.options(frame)),
                isn_origin: None,
                origin_synack_options: SynOptions::new(&[]),
                origin_tsval: None,
                stamp,
            },
        );
        if self.order.len() >= 2 * self.capacity {
            // Items of entries promoted or replaced since: at most
            // `capacity` items stay, so this runs once per `capacity`
            // SYNs at most.
            let entries = &self.entries;
            self.order
                .retain(|(k, s, _)| entries.get(k).is_some_and(|h| h.stamp == *s));
        }
        let deadline = timers.deadline(now, self.lifetime);
        self.order.push_back((key, stamp, deadline));
        Added::New { dropped }
    }

    /// The kernel's SYN-ACK for `key`'s connection, if it is half-open.
    pub fn synack(&mut self, key: &FlowKey, frame: &[u8], seg: &TcpFrame) {
        if self.is_empty() {
            return;
        }
        if let Some(h) = self.entries.get_mut(key) {
            h.isn_origin = Some(seg.seq);
            h.origin_synack_options = SynOptions::new(seg.options(frame));
            if let Some(tsval) = seg.tsval(frame) {
                h.origin_tsval = Some(tsval);
            }
        }
    }

    /// The entry of a client segment that completes its handshake: one
    /// that acknowledges the kernel's SYN-ACK. It leaves the table.
    pub fn promote(&mut self, key: &FlowKey, seg: &TcpFrame) -> Option<HalfOpen> {
        let h = self.entries.get(key)?;
        if h.isn_origin.map(|isn| isn + 1) != Some(seg.ack) {
            return None;
        }
        self.entries.remove(key)
    }

    /// Forgets `key`'s entry (a RST from either side ended it).
    pub fn remove(&mut self, key: &FlowKey) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Drops the entries whose lifetime is over; how many.
    pub fn expire(&mut self, timers: &mut TimerWheel, now: Instant) -> usize {
        let passed = timers.passed(now);
        let mut expired = 0;
        while let Some(&(key, stamp, deadline)) = self.order.front() {
            if deadline.is_after(passed) {
                break;
            }
            self.order.pop_front();
            if self.take_if_live(&key, stamp) {
                expired += 1;
            }
        }
        expired
    }

    /// Drops the oldest live entry; false when there is none.
    fn drop_oldest(&mut self) -> bool {
        while let Some((key, stamp, _)) = self.order.pop_front() {
            if self.take_if_live(&key, stamp) {
                return true;
            }
        }
        false
    }

    fn take_if_live(&mut self, key: &FlowKey, stamp: u32) -> bool {
        if self.entries.get(key).is_some_and(|h| h.stamp == stamp) {
            self.entries.remove(key);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn key(i: u32) -> FlowKey {
        FlowKey::new(
            Ipv4Addr::from(0xc612_0000 + i),
            1000,
            Ipv4Addr::new(198, 18, 0, 11),
            80,
        )
    }

    /// A SYN frame from `key`'s client with ISN `isn`.
    fn syn(key: FlowKey, isn: u32) -> Vec<u8> {
        crate::packet::TcpFrameBuilder::default()
            .macs(MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]))
            .addrs(*key.client().ip(), *key.server().ip())
            .ports(key.client().port(), key.server().port())
            .seq(SeqNum::new(isn))
            .flags(crate::packet::TcpFlags::SYN)
            .build()
    }

    fn add(t: &mut HalfOpenTable, w: &mut TimerWheel, i: u32, now: Instant) -> Added {
        let frame = syn(key(i), 7);
        let seg = TcpFrame::parse(&frame).unwrap().unwrap();
        t.syn(key(i), ServiceKind::Http, &frame, &seg, w, now)
    }

    #[test]
    fn a_full_table_drops_its_oldest_entry_and_entries_expire_in_order() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        let mut t = HalfOpenTable::new(3, Duration::from_millis(500));
        for i in 0..3 {
            assert_eq!(add(&mut t, &mut w, i, t0), Added::New { dropped: false });
        }
        assert_eq!(add(&mut t, &mut w, 0, t0), Added::Again);
        let later = t0 + Duration::from_millis(200);
        assert_eq!(add(&mut t, &mut w, 3, later), Added::New { dropped: true });
        assert!(!t.contains(&key(0)), "the oldest went");
        assert_eq!(t.len(), 3);
        assert_eq!(t.expire(&mut w, t0 + Duration::from_millis(600)), 2);
        assert!(t.contains(&key(3)));
        assert_eq!(t.expire(&mut w, t0 + Duration::from_millis(800)), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn items_left_by_removed_entries_stay_bounded() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        let mut t = HalfOpenTable::new(4, Duration::from_secs(60));
        for i in 0..1000 {
            add(&mut t, &mut w, i, t0);
            assert!(t.remove(&key(i)));
            assert!(t.order.len() <= 8);
        }
        assert!(t.is_empty());
        assert_eq!(t.expire(&mut w, t0 + Duration::from_secs(61)), 0);
    }
}
