use super::{c_string, Error, Result};
use std::ffi::CString;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

static STARTED: AtomicBool = AtomicBool::new(false);

/// The initialised Environment Abstraction Layer. One per process, ever: DPDK cannot
/// be initialised twice, even after cleanup. Dropping it runs `rte_eal_cleanup`;
/// everything that uses DPDK (ports, pools, lcores) must be gone by then.
#[derive(Debug)]
pub struct Eal {
    runtime_dir: Option<std::path::PathBuf>,
}

impl Eal {
    /// `args` as on a DPDK command line, without the program name.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(Error::new(
                "rte_eal_init: EAL already initialised in this process",
                114,
            ));
        }
        let mut owned: Vec<CString> = vec![c_string("EAL argument", "dsrlb")?];
        for a in args {
            owned.push(c_string("EAL argument", a.as_ref())?);
        }
        // rte_eal_init may permute argv: give it pointers it can reorder freely; the
        // strings stay owned here and outlive the call.
        let mut argv: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr() as *mut c_char).collect();
        let joined = args
            .iter()
            .map(|a| a.as_ref())
            .collect::<Vec<_>>()
            .join(" ");
        // SAFETY: argv points at valid NUL-terminated strings for the whole call.
        let ret = unsafe { dpdk_sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(Error::from_rte_errno(format!("rte_eal_init({joined})")));
        }
        // SAFETY: valid after init; returns a pointer to a static string.
        let dir = unsafe { dpdk_sys::rte_eal_get_runtime_dir() };
        let runtime_dir = (!dir.is_null()).then(|| {
            std::path::PathBuf::from(
                unsafe { std::ffi::CStr::from_ptr(dir) }
                    .to_string_lossy()
                    .into_owned(),
            )
        });
        Ok(Eal { runtime_dir })
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by this value; callers drop DPDK objects first.
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        if ret < 0 {
            log::warn!(
                "rte_eal_cleanup failed: {}",
                Error::new("rte_eal_cleanup", ret)
            );
        }
        // EAL leaves its runtime directory behind, and unlinks its telemetry socket
        // only at process exit. Both are ours; remove_dir refuses a non-empty dir.
        if let Some(dir) = &self.runtime_dir {
            let _ = std::fs::remove_file(dir.join("dpdk_telemetry.v2"));
            let _ = std::fs::remove_dir(dir);
        }
    }
}
