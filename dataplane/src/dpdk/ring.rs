use super::{c_string, Error, Mbuf, Result};
use std::ptr::NonNull;

/// An rte_ring of owned mbufs. Whatever is still queued when it is dropped is freed.
#[derive(Debug)]
pub struct MbufRing {
    raw: NonNull<dpdk_sys::rte_ring>,
}

// SAFETY: a multi-producer/multi-consumer rte_ring is thread-safe.
unsafe impl Send for MbufRing {}
// SAFETY: as above.
unsafe impl Sync for MbufRing {}

impl MbufRing {
    /// `size` must be a power of two; it holds `size - 1` mbufs.
    pub fn new(name: &str, size: u32) -> Result<MbufRing> {
        let c_name = c_string("ring name", name)?;
        // SAFETY: valid name; flags 0 = multi-producer, multi-consumer.
        let raw = unsafe {
            dpdk_sys::rte_ring_create(c_name.as_ptr(), size, dpdk_sys::rte_socket_id() as i32, 0)
        };
        NonNull::new(raw)
            .map(|raw| MbufRing { raw })
            .ok_or_else(|| Error::from_rte_errno(format!("rte_ring_create({name})")))
    }

    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_ring {
        self.raw.as_ptr()
    }

    /// Queues an mbuf; gives it back if the ring is full.
    pub fn enqueue(&self, mbuf: Mbuf) -> std::result::Result<(), Mbuf> {
        let mut obj = [mbuf.as_ptr() as *mut std::os::raw::c_void];
        // SAFETY: valid ring; on success the ring owns the mbuf.
        let n = unsafe {
            dpdk_sys::rte_ring_enqueue_burst(
                self.raw.as_ptr(),
                obj.as_mut_ptr(),
                1,
                std::ptr::null_mut(),
            )
        };
        if n == 1 {
            let _ = mbuf.into_raw();
            Ok(())
        } else {
            Err(mbuf)
        }
    }

    pub fn dequeue(&self) -> Option<Mbuf> {
        let mut obj = [std::ptr::null_mut::<std::os::raw::c_void>()];
        // SAFETY: valid ring; a dequeued pointer is an mbuf whose ownership moves to us.
        let n = unsafe {
            dpdk_sys::rte_ring_dequeue_burst(
                self.raw.as_ptr(),
                obj.as_mut_ptr(),
                1,
                std::ptr::null_mut(),
            )
        };
        if n == 1 {
            NonNull::new(obj[0] as *mut dpdk_sys::rte_mbuf)
                .map(|raw| unsafe { Mbuf::from_raw(raw) })
        } else {
            None
        }
    }

    pub fn count(&self) -> u32 {
        // SAFETY: valid ring.
        unsafe { dpdk_sys::rte_ring_count(self.raw.as_ptr()) }
    }
}

impl Drop for MbufRing {
    fn drop(&mut self) {
        while self.dequeue().is_some() {}
        // SAFETY: the ring is empty and no port uses it any more (ports are dropped first).
        unsafe { dpdk_sys::rte_ring_free(self.raw.as_ptr()) }
    }
}
