use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::DpdkError;
use crate::{sys, Eal, Mbuf};

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
///
/// Drop it only after every port that receives into it is stopped and every
/// `Mbuf` taken from it is freed.
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the pointer
// is only passed to DPDK's own thread-safe functions.
unsafe impl Send for Mempool {}
// SAFETY: as above; shared references only allocate and count.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// `count` buffers with a per-lcore cache of `cache`, each with DPDK's
    /// default 2 KiB data room plus headroom.
    pub fn new(_eal: &Eal, name: &str, count: u32, cache: u32) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::Call {
            what: format!("create mempool {name:?}"),
            reason: "name contains a NUL byte".into(),
        })?;
        // Cannot truncate: DPDK's default buffer size is 2048 + 128 bytes.
        #[allow(clippy::cast_possible_truncation)]
        let buf_size = sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;
        // SAFETY: EAL is initialised; the name is a valid C string; the
        // returned pointer is null on failure.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                count,
                cache,
                0,
                buf_size,
                sys::SOCKET_ID_ANY,
            )
        };
        NonNull::new(ptr)
            .map(|ptr| Mempool { ptr })
            .ok_or_else(|| DpdkError::call(format!("create mempool {name:?} of {count} mbufs"), -1))
    }

    /// One buffer, or `None` when the pool is empty.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid for self's lifetime.
        let m = unsafe { sys::baton_pktmbuf_alloc(self.ptr.as_ptr()) };
        NonNull::new(m).map(Mbuf::from_raw)
    }

    /// Buffers free in the pool (approximate while lcores cache some).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the owner guarantees no port or mbuf still uses the pool.
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}
