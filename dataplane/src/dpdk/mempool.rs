use super::{c_string, Error, Mbuf, Result};
use std::ptr::NonNull;

/// A pool of packet mbufs.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    name: String,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe.
unsafe impl Send for Mempool {}
// SAFETY: as above; every operation through &Mempool is thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// `count` mbufs of `data_room` bytes (headroom included), with a per-lcore cache.
    pub fn new(name: &str, count: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool> {
        let c_name = c_string("mempool name", name)?;
        // SAFETY: valid C string; DPDK copies the name.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(c_name.as_ptr(), count, cache, 0, data_room, socket)
        };
        NonNull::new(raw)
            .map(|raw| Mempool {
                raw,
                name: name.to_owned(),
            })
            .ok_or_else(|| {
                Error::from_rte_errno(format!("rte_pktmbuf_pool_create({name}, {count} mbufs)"))
            })
    }

    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Mbufs currently allocated from the pool (held by anyone, caches included).
    pub fn in_use(&self) -> u32 {
        // SAFETY: valid pool.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: valid pool; a non-null result is a fresh mbuf we own.
        let raw = unsafe { dpdk_sys::rte_pktmbuf_alloc(self.raw.as_ptr()) };
        NonNull::new(raw).map(|raw| unsafe { Mbuf::from_raw(raw) })
    }

    /// A new mbuf holding a copy of `bytes` (None if the pool is empty or the bytes
    /// do not fit one segment).
    pub fn alloc_with(&self, bytes: &[u8]) -> Option<Mbuf> {
        let mut mbuf = self.alloc()?;
        mbuf.append(bytes).ok()?;
        Some(mbuf)
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool is no longer referenced by a port or an mbuf we know of.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
