//! The flow table: one cache line per flow, found from either side, whose
//! line a burst can prefetch before it is processed.
//!
//! Each slot is a flow's key and hot state in one aligned 64-byte line.
//! The table is open-addressed with linear probing and at most half full,
//! so a lookup reads the slot its hash names and, rarely, the next ones:
//! no separate index or control bytes. A packet's slot is known from its
//! addresses alone, which lets the worker prefetch a whole burst's slots
//! before processing any of them (see `warm`); at a million flows that is
//! the difference between one memory latency per packet and one per burst.
//! Removal shifts later entries of the probe run back (no tombstones), so
//! lookups never slow down as flows come and go.
//!
//! A handed-in flow has two keys: the one the client's packets carry (the
//! address it connected to) and the one the local kernel's packets carry
//! (this node's own address). They differ only in the server address,
//! which the table does not hash: both keys lead to the same slot, and
//! one probe finds the flow from either side, with no second index.

use std::hash::BuildHasher;
use std::net::Ipv4Addr;

use hashbrown::DefaultHashBuilder;

use super::api::KernelAddrs;
use super::flow::{Flow, FlowKey, Role};

#[repr(C, align(64))]
struct Slot {
    key: FlowKey,
    /// None: the slot is free.
    flow: Option<Flow>,
}

const _: () = assert!(core::mem::size_of::<Slot>() == 64);

/// Slots of a new table; it doubles when more than half full. Small, so
/// that a node with few connections in its table probes memory the CPU
/// keeps in L1.
const INITIAL_SLOTS: usize = 16;

pub(super) struct FlowTable {
    slots: Vec<Slot>,
    len: usize,
    hasher: DefaultHashBuilder,
}

impl FlowTable {
    pub fn new() -> FlowTable {
        FlowTable {
            slots: empty_slots(INITIAL_SLOTS),
            len: 0,
            hasher: DefaultHashBuilder::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The slot where the probe for `key` starts.
    #[inline]
    fn home(&self, key: &FlowKey) -> usize {
        home(&self.hasher, key, self.slots.len() - 1)
    }

    /// The slot of the first entry from `key`'s home on that `matches`.
    /// Inlined into every lookup, with `matches`: a call per packet cost a
    /// tenth of a translated packet's instructions (register saves and
    /// reloads around a loop of a few).
    #[inline(always)]
    fn position(&self, key: &FlowKey, matches: impl Fn(&FlowKey, &Flow) -> bool) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let slot = &self.slots[i];
            match &slot.flow {
                None => return None,
                Some(flow) if matches(&slot.key, flow) => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// The flow whose client-side key is `key`.
    #[inline]
    pub fn get(&self, key: &FlowKey) -> Option<&Flow> {
        let i = self.position(key, |k, _| k == key)?;
        self.slots[i].flow.as_ref()
    }

    #[inline(always)]
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow> {
        let i = self.position(key, |k, _| k == key)?;
        self.slots[i].flow.as_mut()
    }

    pub fn contains_key(&self, key: &FlowKey) -> bool {
        self.position(key, |k, _| k == key).is_some()
    }

    /// The flow a packet of the local kernel belongs to, by the key it
    /// carries (the client as destination), and that flow's client-side
    /// key: an origin flow with that very key, or a handed-in flow whose
    /// kernel sees it at the key's address. The two never coexist (see
    /// `Engine::kernel_key_taken`).
    #[inline]
    pub fn find_kernel_side(&self, key: &FlowKey, addrs: &KernelAddrs) -> Option<(FlowKey, &Flow)> {
        let i = self.position(key, |k, f| kernel_side_of(k, f, key, addrs))?;
        let slot = &self.slots[i];
        Some((slot.key, slot.flow.as_ref()?))
    }

    /// [`FlowTable::find_kernel_side`], for a change.
    #[inline(always)]
    pub fn find_kernel_side_mut(
        &mut self,
        key: &FlowKey,
        addrs: &KernelAddrs,
    ) -> Option<(FlowKey, &mut Flow)> {
        let i = self.position(key, |k, f| kernel_side_of(k, f, key, addrs))?;
        let slot = &mut self.slots[i];
        Some((slot.key, slot.flow.as_mut()?))
    }

    /// Adds a flow, or replaces the one with the same key.
    pub fn insert(&mut self, key: FlowKey, flow: Flow) {
        if let Some(i) = self.position(&key, |k, _| *k == key) {
            self.slots[i].flow = Some(flow);
            return;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(key, flow);
        self.len += 1;
    }

    /// Puts an entry in the first free slot of its probe run.
    fn place(&mut self, key: FlowKey, flow: Flow) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(&key);
        while self.slots[i].flow.is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot {
            key,
            flow: Some(flow),
        };
    }

    fn grow(&mut self) {
        let doubled = empty_slots(self.slots.len() * 2);
        let old = std::mem::replace(&mut self.slots, doubled);
        for slot in old {
            if let Some(flow) = slot.flow {
                self.place(slot.key, flow);
            }
        }
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<Flow> {
        let mut hole = self.position(key, |k, _| k == key)?;
        let flow = self.slots[hole].flow.take();
        self.len -= 1;
        // Later entries of the run move back into the hole when their home
        // is not between the hole and where they are, so every entry stays
        // reachable from its home without a gap.
        let mask = self.slots.len() - 1;
        let mut i = (hole + 1) & mask;
        while self.slots[i].flow.is_some() {
            let home = self.home(&self.slots[i].key);
            if i.wrapping_sub(home) & mask >= i.wrapping_sub(hole) & mask {
                self.slots.swap(hole, i);
                hole = i;
            }
            i = (i + 1) & mask;
        }
        flow
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Flow)> {
        self.slots
            .iter()
            .filter_map(|s| s.flow.as_ref().map(|f| (&s.key, f)))
    }

    /// Starts bringing in the slot where `key`'s lookup begins (for either
    /// side's key), without waiting for it.
    #[inline]
    pub fn prefetch(&self, key: &FlowKey) {
        prefetch(&self.slots[self.home(key)]);
    }
}

// Truncation intended: any bits of the hash will do, and the mask keeps fewer.
#[inline]
#[allow(clippy::cast_possible_truncation)]
fn home(hasher: &DefaultHashBuilder, key: &FlowKey, mask: usize) -> usize {
    hasher.hash_one(key.bucket_bits()) as usize & mask
}

/// `n` free slots, on huge pages where the kernel allows (asked before the
/// memory is first touched, which is when the kernel decides).
fn empty_slots(n: usize) -> Vec<Slot> {
    debug_assert!(n.is_power_of_two());
    let free = FlowKey::new(Ipv4Addr::UNSPECIFIED, 0, Ipv4Addr::UNSPECIFIED, 0);
    let mut slots = Vec::with_capacity(n);
    advise_huge_pages(slots.spare_capacity_mut());
    slots.extend((0..n).map(|_| Slot {
        key: free,
        flow: None,
    }));
    slots
}

/// Whether the kernel's packets with `key` belong to the entry with
/// `entry_key`: the same key for an origin flow, the kernel's address for
/// the connection for a handed-in one. One comparison of whole keys: cheaper
/// than comparing the hashed part and the address apart.
#[inline(always)]
fn kernel_side_of(entry_key: &FlowKey, flow: &Flow, key: &FlowKey, addrs: &KernelAddrs) -> bool {
    let server = match flow.role {
        Role::Origin(_) => entry_key.server_addr(),
        Role::Target(_) => addrs.kernel_of(entry_key.server_addr()),
    };
    entry_key.with_server_addr(server) == *key
}

#[cfg(feature = "dpdk")]
use dpdk_ffi::{advise_huge_pages, prefetch};

/// Without DPDK (fuzzing, benches of the engine alone): a plain read.
#[cfg(not(feature = "dpdk"))]
#[inline]
fn prefetch(slot: &Slot) {
    std::hint::black_box(slot.flow.is_some());
}

#[cfg(not(feature = "dpdk"))]
fn advise_huge_pages(_: &mut [std::mem::MaybeUninit<Slot>]) {}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::engine::flow::{OriginFlow, OriginSetup, OriginState};
    use crate::engine::timers::TimerWheel;
    use crate::packet::MacAddr;

    fn flow(client_ack: u32) -> Flow {
        let mut wheel = TimerWheel::new(std::time::Instant::now());
        let tick = wheel.passed(std::time::Instant::now());
        Flow {
            deadline: tick,
            armed: tick,
            role: Role::Origin(OriginFlow {
                state: OriginState::Handshake,
                peer: None,
                client_ack: crate::packet::SeqNum::new(client_ack),
                watch: crate::packet::SeqNum::default(),
                setup: Box::new(OriginSetup::new(
                    crate::engine::ServiceKind::Http,
                    MacAddr([2, 0, 0, 0, 0, 1]),
                )),
            }),
        }
    }

    fn ack_of(f: &Flow) -> u32 {
        match &f.role {
            Role::Origin(o) => o.client_ack.raw(),
            Role::Target(_) => unreachable!(),
        }
    }

    /// Keys four of which share a home: same client address and ports
    /// (the hashed part), other server addresses.
    fn key(i: u32) -> FlowKey {
        FlowKey::new(
            Ipv4Addr::from(0xc612_0000 + i / 4),
            (i / 4 % 50) as u16,
            Ipv4Addr::from(0xc612_1000 + i % 4),
            80,
        )
    }

    /// Inserts and removals in a scrambled order, checked against a
    /// HashMap after every step, through several doublings.
    #[test]
    fn agrees_with_a_hash_map_through_inserts_removals_and_growth() {
        let mut table = FlowTable::new();
        let mut model = HashMap::new();
        let mut x: u32 = 1;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let k = key(x % 3000);
            if x % 3 == 0 {
                assert_eq!(table.remove(&k).map(|f| ack_of(&f)), model.remove(&k));
            } else {
                table.insert(k, flow(step));
                model.insert(k, step);
            }
            assert_eq!(table.len(), model.len());
            if step % 997 == 0 {
                for (k, ack) in &model {
                    assert_eq!(table.get(k).map(ack_of), Some(*ack), "{k:?}");
                }
                assert_eq!(table.iter().count(), model.len());
            }
        }
        for (k, ack) in &model {
            assert_eq!(table.get(k).map(ack_of), Some(*ack));
        }
        for i in 0..3000 {
            let k = key(i);
            assert_eq!(table.contains_key(&k), model.contains_key(&k));
        }
    }
}
