//! Running closures on worker lcores (`rte_eal_remote_launch`).

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A closure running on a worker lcore; `join` waits for its result. Dropping
/// the handle without joining waits too, so no lcore outlives its owner.
pub struct LcoreJob<R> {
    lcore: u32,
    result: Arc<Mutex<Option<R>>>,
    joined: bool,
}

unsafe extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `launch`, consumed exactly once.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    // A panic must not unwind into C.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

/// Runs `f` on worker lcore `lcore` (which must be idle).
pub fn launch<F, R>(lcore: u32, f: F) -> Result<LcoreJob<R>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let result = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&result);
    let job: Box<Job> = Box::new(Box::new(move || {
        let r = f();
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    }));
    let arg = Box::into_raw(job) as *mut libc::c_void;
    // SAFETY: trampoline matches lcore_function_t and takes ownership of arg.
    let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if rc != 0 {
        // SAFETY: the launch failed, so the job was not handed over; reclaim it.
        drop(unsafe { Box::from_raw(arg as *mut Job) });
        return Err(Error::call(
            "rte_eal_remote_launch",
            rc,
            format!("lcore {lcore} is not an idle worker"),
        ));
    }
    Ok(LcoreJob {
        lcore,
        result,
        joined: false,
    })
}

impl<R> LcoreJob<R> {
    /// The lcore running the job.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the job and returns its result (`None` if it panicked).
    pub fn join(mut self) -> Option<R> {
        self.wait();
        self.result.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn wait(&mut self) {
        if !self.joined {
            // SAFETY: waits for a job we launched on this lcore.
            unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) };
            self.joined = true;
        }
    }
}

impl<R> Drop for LcoreJob<R> {
    fn drop(&mut self) {
        self.wait();
    }
}

/// The lcore id of the calling thread (`u32::MAX` for non-EAL threads).
pub fn current() -> u32 {
    // SAFETY: reads a thread-local.
    unsafe { dpdk_sys::shim_rte_lcore_id() }
}
