use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// Frames per rx/tx burst: declared with the mbuf budget it enters (config).
pub use config::BURST_SIZE;

/// One owned packet buffer (single segment). Dropping it frees it.
#[derive(Debug)]
pub struct Mbuf {
    raw: NonNull<dpdk_sys::rte_mbuf>,
}

/// An mbuf's one segment has no room for the bytes to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

// SAFETY: an mbuf is owned by one holder at a time; it may move between threads.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// # Safety
    /// `raw` must be a valid mbuf whose one reference the caller hands over.
    #[inline(always)]
    pub unsafe fn from_raw(raw: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    /// Gives up ownership without freeing.
    #[inline(always)]
    pub fn into_raw(self) -> NonNull<dpdk_sys::rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    #[inline(always)]
    fn header(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.raw.as_ref() }
    }

    /// Bytes of the first segment (the whole frame: dsrlb does not enable scatter).
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        // SAFETY: we own a valid single-segment mbuf; the slice borrows self.
        unsafe { mbuf_data(self.raw.as_ptr()) }
    }

    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in data(); exclusively borrowed through &mut self.
        unsafe { mbuf_data(self.raw.as_ptr()) }
    }

    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        self.header().pkt_len
    }

    /// Appends `bytes` to the data (one segment only). With no room for all of
    /// them, appends nothing.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), NoRoom> {
        // Checked before DPDK sees it: cast, a longer slice would append its length
        // modulo 2^16.
        let len = u16::try_from(bytes.len()).map_err(|_| NoRoom)?;
        // SAFETY: valid mbuf; rte_pktmbuf_append returns NULL, appending nothing, if
        // there is no room.
        let dst = unsafe { dpdk_sys::rte_pktmbuf_append(self.raw.as_ptr(), len) } as *mut u8;
        if dst.is_null() {
            return Err(NoRoom);
        }
        // SAFETY: DPDK reserved bytes.len() bytes at dst.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
        Ok(())
    }

    #[inline(always)]
    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mbuf {
        self.raw.as_ptr()
    }
}

/// # Safety
/// `m` must point at a valid single-segment mbuf that outlives the returned slice,
/// with no other reference to its data.
#[inline(always)]
unsafe fn mbuf_data<'a>(m: *mut dpdk_sys::rte_mbuf) -> &'a mut [u8] {
    // SAFETY: per the contract above.
    unsafe {
        let h = &*m;
        std::slice::from_raw_parts_mut(
            (h.buf_addr as *mut u8).add(usize::from(h.data_off)),
            usize::from(h.data_len),
        )
    }
}

/// # Safety
/// `m` must point at a valid mbuf.
#[inline(always)]
unsafe fn prefetch_data(m: *mut dpdk_sys::rte_mbuf) {
    // SAFETY: reads the header of a valid mbuf; its data starts inside its buffer.
    let data = unsafe {
        let m = &*m;
        (m.buf_addr as *const u8).add(usize::from(m.data_off))
    };
    crate::memory::prefetch(data);
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own one reference; it is released exactly once, here.
        unsafe { dpdk_sys::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

/// Up to `BURST_SIZE` owned mbufs in a fixed array (no allocation). Whatever it still
/// holds when dropped is freed in bulk.
pub struct MbufBurst {
    /// The first `len` hold owned mbufs; the rest are never read, and left
    /// uninitialised so that making a burst writes nothing (a worker makes three a
    /// poll; zeroing them took about 120 instructions).
    slots: [MaybeUninit<*mut dpdk_sys::rte_mbuf>; BURST_SIZE],
    len: usize,
}

impl std::fmt::Debug for MbufBurst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MbufBurst({} mbufs)", self.len)
    }
}

// SAFETY: holds owned mbufs only.
unsafe impl Send for MbufBurst {}

impl Default for MbufBurst {
    fn default() -> Self {
        Self::new()
    }
}

impl MbufBurst {
    pub const fn new() -> Self {
        MbufBurst {
            slots: [const { MaybeUninit::uninit() }; BURST_SIZE],
            len: 0,
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The mbufs held.
    #[inline(always)]
    fn held(&self) -> &[*mut dpdk_sys::rte_mbuf] {
        // SAFETY: the first len slots are initialised (len <= BURST_SIZE).
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast(), self.len) }
    }

    #[inline(always)]
    fn slots_ptr(&mut self) -> *mut *mut dpdk_sys::rte_mbuf {
        self.slots.as_mut_ptr().cast()
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// Adds an mbuf; gives it back if the burst is full.
    #[inline(always)]
    pub fn push(&mut self, mbuf: Mbuf) -> Result<(), Mbuf> {
        // >=, not ==: lets the compiler drop the index check below.
        if self.len >= BURST_SIZE {
            return Err(mbuf);
        }
        self.slots[self.len] = MaybeUninit::new(mbuf.into_raw().as_ptr());
        self.len += 1;
        Ok(())
    }

    /// Receives up to the free room from (port, queue).
    #[inline(always)]
    pub fn rx(&mut self, port: u16, queue: u16) -> usize {
        let room = (BURST_SIZE - self.len) as u16;
        // SAFETY: the array has `room` free slots; received mbufs become ours.
        let got = unsafe {
            dpdk_sys::rte_eth_rx_burst(port, queue, self.slots_ptr().add(self.len), room)
        };
        self.len += usize::from(got);
        usize::from(got)
    }

    /// Transmits on (port, queue). The sent mbufs belong to the driver now; those it
    /// did not take stay in this burst, in order. Returns how many were sent.
    #[inline(always)]
    pub fn tx(&mut self, port: u16, queue: u16) -> usize {
        if self.len == 0 {
            return 0;
        }
        // SAFETY: the first len slots are owned mbufs; the driver takes the first `sent`.
        let sent = usize::from(unsafe {
            dpdk_sys::rte_eth_tx_burst(port, queue, self.slots_ptr(), self.len as u16)
        });
        // Most often the driver takes all: no call to move nothing.
        if sent < self.len {
            self.slots.copy_within(sent..self.len, 0);
        }
        self.len -= sent;
        sent
    }

    /// The data of the `i`th mbuf (None past the end).
    #[inline(always)]
    pub fn frame(&self, i: usize) -> Option<&[u8]> {
        let m = *self.held().get(i)?;
        // SAFETY: an owned, live mbuf; its data lies inside its buffer.
        Some(unsafe { mbuf_data(m) })
    }

    /// Starts loading every frame's first cache line.
    #[inline(always)]
    pub fn prefetch_frames(&self) {
        for &m in self.held() {
            // SAFETY: owned, live mbufs.
            unsafe { prefetch_data(m) }
        }
    }

    /// Frees every mbuf held, in one call.
    #[inline(always)]
    pub fn free_all(&mut self) {
        if self.len > 0 {
            // SAFETY: the first len slots are owned mbufs; each is freed once.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.slots_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// Takes every mbuf out, in order. Those the iterator does not yield are freed
    /// when it is dropped, never leaked.
    #[inline(always)]
    pub fn drain(&mut self) -> Drain<'_> {
        Drain {
            burst: self,
            next: 0,
        }
    }
}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        self.free_all();
    }
}

pub struct Drain<'a> {
    burst: &'a mut MbufBurst,
    next: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline(always)]
    fn next(&mut self) -> Option<Mbuf> {
        let raw = *self.burst.held().get(self.next)?;
        self.next += 1;
        // SAFETY: slot next was an owned, non-null mbuf; ownership moves out.
        NonNull::new(raw).map(|raw| unsafe { Mbuf::from_raw(raw) })
    }
}

impl Drain<'_> {
    /// How many mbufs have left the burst so far: the index of the next one.
    #[inline(always)]
    pub fn position(&self) -> usize {
        self.next
    }

    /// Moves the mbufs from the next on into `to`, in order, for as long as `take`
    /// says yes to their frames (which it may rewrite only then) and `to` has room;
    /// the first it says no to stays for `next`. The pointers move as one copy, not
    /// one push a frame. Returns how many moved and their bytes (`pkt_len`).
    #[inline(always)]
    pub fn move_while(
        &mut self,
        to: &mut MbufBurst,
        mut take: impl FnMut(&mut [u8]) -> bool,
    ) -> (usize, u64) {
        let start = self.next;
        let end = self.burst.len.min(start + (BURST_SIZE - to.len));
        let mut bytes = 0u64;
        let mut at = start;
        while at < end {
            // SAFETY: at < len <= BURST_SIZE (rx and push never go past the array),
            // and the first len slots hold owned, live mbufs: no index check in the
            // hot loop. The frame's borrow ends within this iteration.
            let (frame, pkt_len) = unsafe {
                let m = *self.burst.held().get_unchecked(at);
                (mbuf_data(m), (*m).pkt_len)
            };
            if !take(frame) {
                break;
            }
            bytes += u64::from(pkt_len);
            at += 1;
        }
        let moved = at - start;
        if moved == 0 {
            // Many flows: most runs are of one frame, and this is the common exit.
            return (0, 0);
        }
        // SAFETY: slots start..at are owned and not yet yielded; they fit in `to`
        // (end is bounded by its room) and leave this burst as `next` passes them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.burst.slots.as_ptr().add(start),
                to.slots.as_mut_ptr().add(to.len),
                moved,
            )
        };
        to.len += moved;
        self.next = at;
        (moved, bytes)
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        let (start, end) = (self.next, self.burst.len);
        if start < end {
            // SAFETY: slots start..end are still owned and not yet yielded.
            unsafe {
                dpdk_sys::rte_pktmbuf_free_bulk(
                    self.burst.slots_ptr().add(start),
                    (end - start) as u32,
                )
            };
        }
        self.burst.len = 0;
    }
}
