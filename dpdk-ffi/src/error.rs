use std::ffi::CStr;

/// A DPDK call that failed, with what Baton was doing and DPDK's reason.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// `reason` is DPDK's own last error line when it logged one.
    #[error("DPDK EAL initialisation failed: {reason}")]
    EalInit { reason: String, errno: i32 },
    #[error("the DPDK EAL is already initialised in this process")]
    EalAlreadyInitialised,
    #[error("{what}: {reason}")]
    Call { what: String, reason: String },
    #[error("no DPDK port named {name:?} (ports present: {present})")]
    NoSuchPort { name: String, present: String },
}

impl DpdkError {
    /// A failed call: `what` says what Baton tried, `rc` is DPDK's negative
    /// errno-style return (or -1 with the reason in `rte_errno`).
    pub(crate) fn call(what: impl Into<String>, rc: i32) -> Self {
        let code = if rc < -1 { -rc } else { last_errno() };
        DpdkError::Call {
            what: what.into(),
            reason: errno_string(code),
        }
    }
}

/// DPDK's per-lcore `rte_errno`.
pub(crate) fn last_errno() -> i32 {
    // SAFETY: reads a thread-local integer; valid on any thread.
    unsafe { crate::sys::baton_errno() }
}

/// DPDK's text for an errno value (it knows its own codes beyond libc's).
pub fn errno_string(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string that stays valid until the next call on this
    // thread; it is copied out at once.
    let text = unsafe { CStr::from_ptr(crate::sys::rte_strerror(code)) };
    text.to_string_lossy().into_owned()
}
