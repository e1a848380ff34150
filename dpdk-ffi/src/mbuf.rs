use std::ptr::NonNull;

use crate::port::Queue;
use crate::sys;

/// The most packets one rx/tx call moves (the configured burst, usually 32,
/// is at most this).
pub const MAX_BURST: usize = 64;
// What lets a burst's counts go to DPDK as u16 and u32 without a check.
const _: () = assert!(MAX_BURST <= u16::MAX as usize);

/// An owned packet buffer. Freed back to its pool on drop.
///
/// Only the first segment's bytes are exposed: Baton's ports run with
/// 2 KiB buffers and a 1500-byte MTU, so received frames are one segment.
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an mbuf is plain memory owned by exactly one Mbuf value; handing it
// to another thread moves that ownership. It is not Sync: two threads must
// not touch one packet.
unsafe impl Send for Mbuf {}

impl Mbuf {
    pub(crate) fn from_raw(ptr: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(ptr)
    }

    fn into_raw(self) -> *mut sys::rte_mbuf {
        let ptr = self.0.as_ptr();
        std::mem::forget(self);
        ptr
    }

    /// The frame's bytes (first segment).
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the mbuf is valid and owned (see `frame_of`).
        unsafe {
            let (p, len) = frame_of(self.0.as_ptr());
            std::slice::from_raw_parts(p, len)
        }
    }

    /// The frame's bytes, writable (first segment).
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; `&mut self` makes the access exclusive.
        unsafe {
            let (p, len) = frame_of(self.0.as_ptr());
            std::slice::from_raw_parts_mut(p, len)
        }
    }

    /// Whether the NIC checked the frame's IPv4 header or TCP checksum and
    /// found it bad. False when it did not check (most virtual devices).
    #[inline]
    pub fn checksum_bad(&self) -> bool {
        const L4_MASK: u64 = (1 << 3) | (1 << 8);
        const L4_BAD: u64 = 1 << 3;
        const IP_MASK: u64 = (1 << 4) | (1 << 7);
        const IP_BAD: u64 = 1 << 4;
        // SAFETY: the mbuf is valid and owned; ol_flags is the u64 at
        // offset 24 (asserted, with the flag values, in csrc/shim.c).
        let flags = unsafe { self.0.as_ptr().cast::<u8>().add(24).cast::<u64>().read() };
        flags & L4_MASK == L4_BAD || flags & IP_MASK == IP_BAD
    }

    /// Length of the whole packet, all segments.
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: reads a field of a valid mbuf.
        unsafe { sys::baton_mbuf_pkt_len(self.0.as_ptr()) }
    }

    /// Number of chained segments.
    pub fn segments(&self) -> u16 {
        // SAFETY: reads a field of a valid mbuf.
        unsafe { sys::baton_mbuf_nb_segs(self.0.as_ptr()) }
    }

    /// Sets the length of a single-segment packet, growing into tailroom.
    /// Returns false (and changes nothing) if it does not fit.
    pub fn set_len(&mut self, len: u16) -> bool {
        // SAFETY: the shim checks segment count and tailroom before writing.
        unsafe { sys::baton_mbuf_set_len(self.0.as_ptr(), len) == 0 }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: the mbuf is owned by self and freed exactly once.
        unsafe { sys::baton_pktmbuf_free(self.0.as_ptr()) };
    }
}

/// Up to [`MAX_BURST`] owned packets, received or to be sent together.
/// Packets left in it are freed on drop.
pub struct Burst {
    pkts: [*mut sys::rte_mbuf; MAX_BURST],
    len: usize,
}

// SAFETY: the burst owns its mbufs exclusively, as `Mbuf` does.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    pub fn new() -> Burst {
        Burst {
            pkts: [std::ptr::null_mut(); MAX_BURST],
            len: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }

    /// Receives up to `max` more packets from `queue`; returns how many.
    #[inline]
    pub fn rx(&mut self, queue: &mut Queue, max: usize) -> usize {
        // Cannot truncate: at most MAX_BURST, which fits a u16.
        #[allow(clippy::cast_possible_truncation)]
        let room = (MAX_BURST - self.len).min(max) as u16;
        // SAFETY: the queue is configured and owned by this thread (`&mut`);
        // DPDK writes at most `room` pointers into the free tail of `pkts`.
        let n = unsafe {
            sys::baton_rx_burst(
                queue.port_id(),
                queue.queue_id(),
                self.pkts.as_mut_ptr().add(self.len),
                room,
            )
        } as usize;
        self.len += n;
        n
    }

    /// Transmits every packet on `queue`; returns how many the NIC took.
    /// Packets it did not take stay in the burst, in order.
    #[inline]
    pub fn tx(&mut self, queue: &mut Queue) -> usize {
        if self.len == 0 {
            return 0;
        }
        // Cannot truncate: len is at most MAX_BURST, which fits a u16.
        #[allow(clippy::cast_possible_truncation)]
        let len = self.len as u16;
        // SAFETY: the first `len` pointers are owned mbufs; the queue is owned
        // by this thread; DPDK takes ownership of the first `sent` of them.
        let sent = unsafe {
            sys::baton_tx_burst(
                queue.port_id(),
                queue.queue_id(),
                self.pkts.as_mut_ptr(),
                len,
            )
        } as usize;
        self.pkts.copy_within(sent..self.len, 0);
        self.len -= sent;
        sent
    }

    /// Lets `f` take packets from the front: it gets the owned pointers and
    /// returns how many it took ownership of; the rest move to the front.
    #[inline]
    pub(crate) fn give(&mut self, f: impl FnOnce(&mut [*mut sys::rte_mbuf]) -> usize) -> usize {
        let taken = f(&mut self.pkts[..self.len]).min(self.len);
        self.pkts.copy_within(taken..self.len, 0);
        self.len -= taken;
        taken
    }

    /// Lets `f` fill up to `max` free slots at the end with owned packets;
    /// it returns how many it wrote.
    #[inline]
    pub(crate) fn take(
        &mut self,
        max: usize,
        f: impl FnOnce(&mut [*mut sys::rte_mbuf]) -> usize,
    ) -> usize {
        let room = (MAX_BURST - self.len).min(max);
        let n = f(&mut self.pkts[self.len..self.len + room]).min(room);
        self.len += n;
        n
    }

    /// Frees every packet left; returns how many there were.
    #[inline]
    pub fn free_all(&mut self) -> usize {
        let n = self.len;
        if n > 0 {
            // Cannot truncate: n is at most MAX_BURST, which fits a u16.
            #[allow(clippy::cast_possible_truncation)]
            let count = n as u32;
            // SAFETY: the first `n` pointers are owned mbufs, freed once.
            unsafe { sys::baton_pktmbuf_free_bulk(self.pkts.as_mut_ptr(), count) };
            self.len = 0;
        }
        n
    }

    /// Adds a packet; gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.is_full() {
            return Err(m);
        }
        self.pkts[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Takes every packet out, first to last. Packets the caller does not
    /// take are freed when the iterator is dropped.
    pub fn drain(&mut self) -> Drain<'_> {
        let end = std::mem::take(&mut self.len);
        Drain {
            pkts: &self.pkts[..end],
            next: 0,
        }
    }

    /// The bytes of packet `i`, writable.
    #[inline]
    pub fn data_mut(&mut self, i: usize) -> &mut [u8] {
        assert!(i < self.len, "packet index out of range");
        // SAFETY: pkts[i] is an owned mbuf (checked above); `&mut self`
        // makes the access exclusive.
        unsafe {
            let (p, len) = frame_of(self.pkts[i]);
            std::slice::from_raw_parts_mut(p, len)
        }
    }
}

/// The iterator of [`Burst::drain`].
pub struct Drain<'a> {
    pkts: &'a [*mut sys::rte_mbuf],
    next: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        let p = *self.pkts.get(self.next)?;
        self.next += 1;
        // SAFETY: every pointer in `pkts` is an owned, non-null mbuf whose
        // ownership left the burst (its len was reset); each is yielded once.
        Some(Mbuf::from_raw(unsafe { NonNull::new_unchecked(p) }))
    }
}

impl Drain<'_> {
    /// The frame `k` packets after the one `next` yields next (0: that
    /// one), read-only, for prefetching ahead of processing.
    #[inline]
    pub fn ahead(&self, k: usize) -> Option<&[u8]> {
        let p = *self.pkts.get(self.next + k)?;
        // SAFETY: `p` is an owned mbuf not yet yielded, so nothing else
        // writes it while the shared borrow of the drain lasts.
        unsafe {
            let (data, len) = frame_of(p);
            Some(std::slice::from_raw_parts(data, len))
        }
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// The first segment's data pointer and length, read inline: what
/// `rte_pktmbuf_mtod` and `data_len` give, without a call into C per
/// packet. The offsets are those of DPDK 22.11's `struct rte_mbuf`, which
/// the C shim asserts at build time.
///
/// # Safety
/// `m` must point to a valid mbuf.
#[inline(always)]
unsafe fn frame_of(m: *mut sys::rte_mbuf) -> (*mut u8, usize) {
    const BUF_ADDR: usize = 0;
    const DATA_OFF: usize = 16;
    const DATA_LEN: usize = 40;
    let base = m.cast::<u8>();
    // SAFETY: the caller guarantees a valid mbuf; the offsets are asserted
    // in csrc/shim.c, and the fields are naturally aligned there.
    unsafe {
        let buf = base.add(BUF_ADDR).cast::<*mut u8>().read();
        let off = base.add(DATA_OFF).cast::<u16>().read();
        let len = base.add(DATA_LEN).cast::<u16>().read();
        (buf.add(usize::from(off)), usize::from(len))
    }
}
