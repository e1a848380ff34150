//! Hints to the kernel and the CPU about memory Baton reads per packet.

use std::mem::MaybeUninit;

/// Asks the kernel to back `memory` with transparent huge pages where it
/// can (whole 2 MiB pages inside it), before it is first touched. A flow
/// table of a million entries spans 64 MiB: with 4 KiB pages nearly every
/// lookup also misses the TLB. Without THP (`never`) or on failure, the
/// memory stays as it was; nothing depends on it.
pub fn advise_huge_pages<T>(memory: &mut [MaybeUninit<T>]) {
    const HUGE: usize = 2 << 20;
    let start = memory.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(memory);
    let (from, to) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
    if from >= to {
        return;
    }
    // SAFETY: [from, to) lies inside `memory`, which this call borrows
    // mutably, and is page aligned. MADV_HUGEPAGE changes how the kernel
    // backs the pages, never their contents (and these are uninitialised).
    let rc = unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
    if rc != 0 {
        tracing::debug!(
            "madvise(MADV_HUGEPAGE) on {} MiB: {}",
            (to - from) >> 20,
            std::io::Error::last_os_error()
        );
    }
}

/// Asks the CPU to bring the cache line holding `value` into every cache
/// level, without waiting for it. Issued for a burst's flow entries before
/// the burst is processed, so that their memory accesses overlap.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint. It reads nothing the program observes
    // and never faults, whatever the address; here the address is that of
    // a live reference anyway. SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
