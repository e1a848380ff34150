//! The flow table: one cache line per flow, found from either side.
//!
//! Each entry is a flow's key and hot state in one aligned 64-byte line, so
//! a packet of a large table costs two cache misses at most (the control
//! bytes and the entry), and the burst-wide warming overlaps them.
//!
//! A handed-in flow has two keys: the one the client's packets carry (the
//! address it connected to) and the one the local kernel's packets carry
//! (this node's own address). They differ only in the server address,
//! which the table does not hash: both keys lead to the same bucket, and
//! one probe finds the flow from either side, with no second index.

use std::hash::BuildHasher;
use std::net::Ipv4Addr;

use hashbrown::hash_table::Entry as Slot;
use hashbrown::{DefaultHashBuilder, HashTable};

use super::flow::{Flow, FlowKey, Role};

#[repr(C, align(64))]
pub(super) struct Entry {
    pub key: FlowKey,
    pub flow: Flow,
}

const _: () = assert!(core::mem::size_of::<Entry>() == 64);

pub(super) struct FlowTable {
    entries: HashTable<Entry>,
    hasher: DefaultHashBuilder,
}

impl FlowTable {
    pub fn new() -> FlowTable {
        FlowTable {
            entries: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    #[inline]
    fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key.bucket_bits())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The flow whose client-side key is `key`.
    #[inline]
    pub fn get(&self, key: &FlowKey) -> Option<&Flow> {
        self.entries
            .find(self.hash(key), |e| e.key == *key)
            .map(|e| &e.flow)
    }

    #[inline]
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow> {
        let hash = self.hash(key);
        self.entries
            .find_mut(hash, |e| e.key == *key)
            .map(|e| &mut e.flow)
    }

    pub fn contains_key(&self, key: &FlowKey) -> bool {
        self.get(key).is_some()
    }

    /// The flow a packet of the local kernel belongs to, by the key it
    /// carries (the client as destination), and that flow's client-side
    /// key: an origin flow with that very key, or a handed-in flow whose
    /// kernel sees it addressed to `own_addr`. The two never coexist (see
    /// `Engine::kernel_key_taken`).
    #[inline]
    pub fn find_kernel_side(&self, key: &FlowKey, own_addr: Ipv4Addr) -> Option<(FlowKey, &Flow)> {
        let by_kernel = key.server_addr() == own_addr;
        self.entries
            .find(self.hash(key), |e| kernel_side_of(e, key, by_kernel))
            .map(|e| (e.key, &e.flow))
    }

    /// [`FlowTable::find_kernel_side`], for a change.
    #[inline]
    pub fn find_kernel_side_mut(
        &mut self,
        key: &FlowKey,
        own_addr: Ipv4Addr,
    ) -> Option<(FlowKey, &mut Flow)> {
        let by_kernel = key.server_addr() == own_addr;
        let hash = self.hash(key);
        self.entries
            .find_mut(hash, |e| kernel_side_of(e, key, by_kernel))
            .map(|e| (e.key, &mut e.flow))
    }

    /// Adds a flow, or replaces the one with the same key.
    pub fn insert(&mut self, key: FlowKey, flow: Flow) {
        let hash = self.hash(&key);
        let hasher = &self.hasher;
        match self.entries.entry(
            hash,
            |e| e.key == key,
            |e| hasher.hash_one(e.key.bucket_bits()),
        ) {
            Slot::Occupied(mut o) => o.get_mut().flow = flow,
            Slot::Vacant(v) => {
                v.insert(Entry { key, flow });
            }
        }
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<Flow> {
        let hash = self.hash(key);
        let found = self.entries.find_entry(hash, |e| e.key == *key).ok()?;
        Some(found.remove().0.flow)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Flow)> {
        self.entries.iter().map(|e| (&e.key, &e.flow))
    }

    /// Brings a key's control bytes and entry into cache, ahead of use.
    #[inline]
    pub fn touch(&self, key: &FlowKey) {
        if let Some(e) = self
            .entries
            .find(self.hash(key), |e| e.key.bucket_bits() == key.bucket_bits())
        {
            std::hint::black_box(e.flow.armed);
        }
    }
}

/// Whether the kernel's packets with `key` belong to entry `e`; `by_kernel`
/// says whether `key` carries this node's own address.
#[inline]
fn kernel_side_of(e: &Entry, key: &FlowKey, by_kernel: bool) -> bool {
    e.key.bucket_bits() == key.bucket_bits()
        && match e.flow.role {
            Role::Origin(_) => e.key.server_addr() == key.server_addr(),
            Role::Target(_) => by_kernel,
        }
}
