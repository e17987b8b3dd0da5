//! The thin safe layer over `dpdk-sys`: EAL, mempools, mbuf ownership, ports and
//! queues, rings, and running Rust closures on lcores.
//!
//! Ownership rule for mbufs: an `Mbuf` or a slot in an `MbufBurst` owns exactly one
//! reference; it is freed exactly once, by drop, by bulk free, or by handing it to the
//! driver in `tx` (after which it is the driver's, and only what was not sent comes
//! back).

mod eal;
mod lcore;
mod mbuf;
mod mempool;
mod port;
mod ring;

pub use eal::Eal;
pub use lcore::{launch, LcoreJoin};
pub use mbuf::{Mbuf, MbufBurst, NoRoom, BURST_SIZE};
pub use mempool::Mempool;
pub use port::{Port, PortConfig, PortStats, RssOffer};
pub use ring::MbufRing;

use std::fmt;

/// A failed DPDK call: what was attempted and the errno it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub what: String,
    pub errno: i32,
}

impl Error {
    pub(crate) fn new(what: impl Into<String>, code: i32) -> Self {
        Error {
            what: what.into(),
            errno: code.abs(),
        }
    }

    /// For calls that return NULL and set `rte_errno`: read it now, on this thread.
    pub(crate) fn from_rte_errno(what: impl Into<String>) -> Self {
        // SAFETY: reads this thread's rte_errno.
        let code = unsafe { dpdk_sys::dsrlb_rte_errno() };
        Error::new(what, code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if self.errno == 0 {
            "unknown error".to_owned()
        } else {
            // SAFETY: rte_strerror returns a pointer to a static or thread-local string.
            unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_strerror(self.errno)) }
                .to_string_lossy()
                .into_owned()
        };
        write!(f, "{}: {} (errno {})", self.what, text, self.errno)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Converts a negative-errno return into a Result.
pub(crate) fn check(what: impl FnOnce() -> String, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(Error::new(what(), ret))
    } else {
        Ok(ret)
    }
}

/// A C string for DPDK; interior NULs are refused rather than truncated.
pub(crate) fn c_string(what: &str, s: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s)
        .map_err(|_| Error::new(format!("{what}: `{s}` contains a NUL byte"), libc_einval()))
}

const fn libc_einval() -> i32 {
    22
}

/// Milliseconds from the TSC: cheap enough to read once per burst.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    ticks_per_ms: u64,
}

impl Clock {
    pub fn new() -> Self {
        // SAFETY: plain query, valid after EAL init (returns 0 before, handled below).
        let hz = unsafe { dpdk_sys::rte_get_tsc_hz() };
        Clock {
            ticks_per_ms: (hz / 1000).max(1),
        }
    }

    #[inline(always)]
    pub fn now_ms(&self) -> u64 {
        // SAFETY: reads the TSC.
        let tsc = unsafe { dpdk_sys::rte_rdtsc() };
        tsc / self.ticks_per_ms
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
