//! Running closures on EAL worker lcores.

use std::ffi::{c_int, c_void};

use crate::error::DpdkError;
use crate::{sys, Eal};

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// Runs `job` on worker `lcore`. The lcore must be enabled and idle.
pub fn launch(
    _eal: &Eal,
    lcore: u32,
    job: impl FnOnce() -> i32 + Send + 'static,
) -> Result<(), DpdkError> {
    let boxed: Box<Job> = Box::new(Box::new(job));
    let arg = Box::into_raw(boxed) as *mut c_void;
    // SAFETY: `trampoline` takes back ownership of `arg` exactly once when
    // the lcore runs it; on failure the lcore never runs it and it is
    // reclaimed below.
    let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if rc != 0 {
        // SAFETY: the launch failed, so `arg` was not handed to any lcore.
        drop(unsafe { Box::from_raw(arg as *mut Job) });
        return Err(DpdkError::call(format!("launch on lcore {lcore}"), rc));
    }
    Ok(())
}

/// Waits for the job on `lcore` and returns its result.
pub fn wait(_eal: &Eal, lcore: u32) -> i32 {
    // SAFETY: EAL is initialised; waiting on an idle lcore returns at once.
    unsafe { sys::rte_eal_wait_lcore(lcore) }
}

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` came from Box::into_raw in `launch` and is used once.
    let job = unsafe { Box::from_raw(arg as *mut Job) };
    // A panic must not unwind into C: report it and return an error code.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}
