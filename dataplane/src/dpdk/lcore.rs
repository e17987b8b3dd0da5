use super::{check, Error, Result};
use std::any::Any;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

struct Task<F, R> {
    f: Option<F>,
    result: Option<std::result::Result<R, String>>,
}

/// Runs on the lcore: takes the closure, runs it with panics caught, keeps the result.
unsafe extern "C" fn trampoline<F, R>(arg: *mut c_void) -> c_int
where
    F: FnOnce() -> R + Send + 'static,
{
    // SAFETY: arg is the Task that `launch` leaked for this call; only this lcore
    // touches it until `join` has waited for the lcore.
    let task = unsafe { &mut *(arg as *mut Task<F, R>) };
    let Some(f) = task.f.take() else { return -1 };
    let outcome = catch_unwind(AssertUnwindSafe(f)).map_err(panic_message);
    let code = if outcome.is_ok() { 0 } else { -1 };
    task.result = Some(outcome);
    code
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}

/// A closure running on a worker lcore. `join` waits for it; dropping the handle
/// waits too, so the closure's result is never leaked.
pub struct LcoreJoin<R> {
    lcore: u32,
    task: *mut c_void,
    take: fn(*mut c_void) -> Option<std::result::Result<R, String>>,
    joined: bool,
}

impl<R> std::fmt::Debug for LcoreJoin<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LcoreJoin(lcore {})", self.lcore)
    }
}

/// Runs `f` on worker lcore `lcore` (not the main one). A panic inside is caught and
/// returned by `join` as its message.
pub fn launch<F, R>(lcore: u32, f: F) -> Result<LcoreJoin<R>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let task = Box::into_raw(Box::new(Task::<F, R> {
        f: Some(f),
        result: None,
    })) as *mut c_void;
    // SAFETY: trampoline matches lcore_function_t and task stays alive until join.
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline::<F, R>), task, lcore) };
    if let Err(e) = check(|| format!("rte_eal_remote_launch(lcore {lcore})"), ret) {
        // SAFETY: not launched: we still own the task.
        drop(unsafe { Box::from_raw(task as *mut Task<F, R>) });
        return Err(e);
    }
    fn take<F, R>(task: *mut c_void) -> Option<std::result::Result<R, String>> {
        // SAFETY: called once, after the lcore finished, on the task `launch` leaked.
        let task = unsafe { Box::from_raw(task as *mut Task<F, R>) };
        task.result
    }
    Ok(LcoreJoin {
        lcore,
        task,
        take: take::<F, R>,
        joined: false,
    })
}

impl<R> LcoreJoin<R> {
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Whether the closure still runs (false once it returned or panicked).
    pub fn is_running(&self) -> bool {
        // SAFETY: reads the state of the lcore we launched on.
        let state = unsafe { dpdk_sys::rte_eal_get_lcore_state(self.lcore) };
        !self.joined && state == dpdk_sys::rte_lcore_state_t_RUNNING
    }

    /// Waits for the closure; Err carries a panic's message.
    pub fn join(mut self) -> std::result::Result<R, Error> {
        self.wait()
    }

    fn wait(&mut self) -> std::result::Result<R, Error> {
        self.joined = true;
        // SAFETY: waits for the lcore we launched on.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) };
        match (self.take)(self.task) {
            Some(Ok(r)) => Ok(r),
            Some(Err(msg)) => Err(Error::new(
                format!("lcore {} panicked: {msg}", self.lcore),
                0,
            )),
            None => Err(Error::new(
                format!("lcore {} returned without running its task", self.lcore),
                0,
            )),
        }
    }
}

impl<R> Drop for LcoreJoin<R> {
    fn drop(&mut self) {
        if !self.joined {
            let _ = self.wait();
        }
    }
}
