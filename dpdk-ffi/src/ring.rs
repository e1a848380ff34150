use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::DpdkError;
use crate::{sys, Burst, Eal};

/// A DPDK ring of packet buffers (`rte_ring`): lock-free, fixed size.
///
/// Baton uses rings to hand packets between lcores, and `baton bench`
/// builds its ports from them (the ring PMD). Freeing a ring does not free
/// the packets still in it; drain it first.
pub struct Ring {
    ptr: NonNull<sys::rte_ring>,
}

// SAFETY: rte_ring is a lock-free queue built for use across lcores; a ring
// created single-producer/single-consumer is still only touched through
// `&mut`-guarded bursts by its one producer and one consumer (the owner's
// responsibility, stated on `new`).
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// A ring of `size` slots (a power of two; it holds `size - 1`). With
    /// `single` set, exactly one lcore may enqueue and one may dequeue.
    pub fn new(_eal: &Eal, name: &str, size: u32, single: bool) -> Result<Ring, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::Call {
            what: format!("create ring {name:?}"),
            reason: "name contains a NUL byte".into(),
        })?;
        let flags = if single {
            sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ
        } else {
            0
        };
        // SAFETY: EAL is initialised; the name is a valid C string; null on failure.
        let ptr = unsafe { sys::rte_ring_create(cname.as_ptr(), size, sys::SOCKET_ID_ANY, flags) };
        NonNull::new(ptr)
            .map(|ptr| Ring { ptr })
            .ok_or_else(|| DpdkError::call(format!("create ring {name:?} of {size}"), -1))
    }

    /// Moves packets from the front of `burst` into the ring; returns how
    /// many fitted (the rest stay in `burst`).
    #[inline]
    pub fn enqueue(&self, burst: &mut Burst) -> usize {
        burst.give(|ptrs| {
            // Cannot truncate: a burst holds at most MAX_BURST packets.
            #[allow(clippy::cast_possible_truncation)]
            let n = ptrs.len() as u32;
            // SAFETY: `ptrs` are owned mbufs; the ring takes the first `n`.
            unsafe {
                sys::baton_ring_enqueue_burst(self.ptr.as_ptr(), ptrs.as_mut_ptr(), n) as usize
            }
        })
    }

    /// Moves up to `max` packets from the ring to the end of `burst`.
    #[inline]
    pub fn dequeue(&self, burst: &mut Burst, max: usize) -> usize {
        burst.take(max, |slots| {
            // Cannot truncate: a burst has at most MAX_BURST slots.
            #[allow(clippy::cast_possible_truncation)]
            let n = slots.len() as u32;
            // SAFETY: DPDK writes at most `slots.len()` mbuf pointers, each
            // owned by whoever dequeues it.
            unsafe {
                sys::baton_ring_dequeue_burst(self.ptr.as_ptr(), slots.as_mut_ptr(), n) as usize
            }
        })
    }

    /// Packets in the ring now.
    pub fn len(&self) -> usize {
        // SAFETY: reads the ring's indices.
        unsafe { sys::baton_ring_count(self.ptr.as_ptr()) as usize }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_ring {
        self.ptr.as_ptr()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut burst = Burst::new();
        while self.dequeue(&mut burst, crate::MAX_BURST) > 0 {
            burst.free_all();
        }
        // SAFETY: the ring is no longer used by any port or lcore (the
        // owner's responsibility) and is freed once.
        unsafe { sys::rte_ring_free(self.ptr.as_ptr()) };
    }
}
