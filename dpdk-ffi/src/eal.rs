use std::ffi::{c_char, c_int, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::error::{last_errno, DpdkError};
use crate::sys;

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The error-level lines DPDK logs during `rte_eal_init`. A failed init
/// quotes them in its error, because `rte_errno` alone rarely says what went
/// wrong; a successful one logs them as warnings (they were not fatal).
static ERROR_LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static IN_INIT: AtomicBool = AtomicBool::new(false);

/// The initialised EAL. There is one per process; dropping it runs
/// `rte_eal_cleanup`, so drop it last, after every port and pool.
pub struct Eal {
    // EAL init and cleanup belong to the thread that started it.
    _not_send: PhantomData<*const ()>,
}

impl Eal {
    /// Runs `rte_eal_init` with `args` (without the program name). DPDK's own
    /// log lines go to `tracing` under the target `dpdk`.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyInitialised);
        }
        // SAFETY: `dpdk_log_line` is a plain function that lives for the whole
        // program; DPDK calls it with a valid (buf, len) pair.
        unsafe { sys::baton_redirect_log(Some(dpdk_log_line)) };

        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("baton").expect("no NUL"));
        for arg in args {
            let arg = CString::new(arg.as_str()).map_err(|_| DpdkError::EalInit {
                reason: format!("EAL argument {arg:?} contains a NUL byte"),
                errno: 0,
            })?;
            owned.push(arg);
        }
        // rte_eal_init may permute argv, so it gets its own pointer array;
        // the strings stay owned by `owned` for the whole program (DPDK keeps
        // some of them), so they are leaked on success.
        let mut argv: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        let argc = c_int::try_from(argv.len()).map_err(|_| DpdkError::EalInit {
            reason: format!("{} EAL arguments are too many for argc", args.len()),
            errno: 0,
        })?;
        IN_INIT.store(true, Ordering::SeqCst);
        // SAFETY: argv holds argc pointers to valid NUL-terminated strings,
        // owned by `owned`, which outlives the call (and is leaked on success:
        // DPDK keeps some); EAL is initialised at most once (guarded above).
        let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        IN_INIT.store(false, Ordering::SeqCst);
        if rc < 0 {
            let errno = last_errno();
            let lines = ERROR_LINES.lock().map(|l| l.join("; ")).unwrap_or_default();
            let reason = if lines.is_empty() {
                crate::errno_string(errno)
            } else {
                lines
            };
            return Err(DpdkError::EalInit { reason, errno });
        }
        if let Ok(mut lines) = ERROR_LINES.lock() {
            for line in lines.drain(..) {
                tracing::warn!(target: "dpdk", "{line}");
            }
        }
        std::mem::forget(owned);
        std::mem::forget(argv);
        Ok(Eal {
            _not_send: PhantomData,
        })
    }

    /// The lcore running the caller, or `None` on a thread EAL did not start.
    pub fn current_lcore() -> Option<u32> {
        // SAFETY: reads a thread-local; valid on any thread.
        let id = unsafe { sys::baton_lcore_id() };
        (id != u32::MAX).then_some(id)
    }

    /// Whether `lcore` was enabled by the EAL `-l` list.
    pub fn lcore_enabled(&self, lcore: u32) -> bool {
        // SAFETY: EAL is initialised (self exists); any id is accepted.
        unsafe { sys::rte_lcore_is_enabled(lcore) != 0 }
    }

    /// DPDK's version string, e.g. "DPDK 22.11.11".
    pub fn version() -> String {
        // SAFETY: rte_version returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(sys::rte_version()) };
        v.to_string_lossy().into_owned()
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: called once, by the thread that initialised EAL, after the
        // owner has released ports and pools.
        unsafe { sys::rte_eal_cleanup() };
    }
}

/// The TSC, DPDK's cheap clock.
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the time-stamp counter; no memory is touched.
    unsafe { sys::baton_tsc() }
}

/// TSC ticks per second (valid after EAL init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL measured at init; harmless before it (0).
    unsafe { sys::rte_get_tsc_hz() }
}

extern "C" fn dpdk_log_line(level: c_int, buf: *const c_char, len: usize) {
    if buf.is_null() {
        return;
    }
    // SAFETY: DPDK's log stream passes `len` readable bytes at `buf`.
    let bytes = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
    let text = String::from_utf8_lossy(bytes);
    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        match level as u32 {
            sys::RTE_LOG_EMERG..=sys::RTE_LOG_ERR if IN_INIT.load(Ordering::SeqCst) => {
                if let Ok(mut lines) = ERROR_LINES.lock() {
                    if lines.len() < 8 {
                        lines.push(line.trim_start_matches("EAL: ").to_owned());
                    }
                }
                tracing::debug!(target: "dpdk", "{line}");
            }
            sys::RTE_LOG_EMERG..=sys::RTE_LOG_ERR => tracing::error!(target: "dpdk", "{line}"),
            sys::RTE_LOG_WARNING => tracing::warn!(target: "dpdk", "{line}"),
            sys::RTE_LOG_NOTICE | sys::RTE_LOG_INFO => tracing::info!(target: "dpdk", "{line}"),
            _ => tracing::debug!(target: "dpdk", "{line}"),
        }
    }
}
