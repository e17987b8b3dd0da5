//! Large tables on huge pages. A flow table of a million entries on 4 KiB pages
//! spreads its buckets over thousands of pages, and every lookup pays a TLB miss;
//! on 2 MiB pages (transparent huge pages, asked for with madvise) it does not.

use std::alloc::{alloc, dealloc, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

const HUGE_PAGE: usize = 2 << 20;

/// Starts loading the cache line at `at` into L1. Only a hint: it never faults, so any
/// address will do, though only a live one is worth the load.
#[inline(always)]
pub fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and cannot fault.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// A fixed-length slice, 2 MiB-aligned and advised as huge-page memory when it is at
/// least that large; every element written (so every page faulted in) at creation.
pub struct HugeSlice<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    layout: Layout,
}

// SAFETY: owns its elements like a Box<[T]>.
unsafe impl<T: Copy + Send> Send for HugeSlice<T> {}
// SAFETY: shared access is read-only, like &[T].
unsafe impl<T: Copy + Sync> Sync for HugeSlice<T> {}

impl<T: Copy> HugeSlice<T> {
    /// `len` copies of `value`. Panics only if the allocation fails (at start-up).
    pub fn new(len: usize, value: T) -> Self {
        let bytes = (len.max(1))
            .checked_mul(std::mem::size_of::<T>().max(1))
            .expect("table size overflows");
        let huge = bytes >= HUGE_PAGE;
        let align = if huge {
            HUGE_PAGE
        } else {
            std::mem::align_of::<T>().max(64)
        };
        let size = if huge {
            bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE
        } else {
            bytes
        };
        let layout = Layout::from_size_align(size, align).expect("valid table layout");
        // SAFETY: non-zero size.
        let raw = unsafe { alloc(layout) } as *mut T;
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        if huge {
            // SAFETY: the range is our own fresh allocation. A refusal (THP off) only
            // costs speed.
            unsafe { libc::madvise(raw.cast(), size, libc::MADV_HUGEPAGE) };
        }
        for i in 0..len {
            // SAFETY: i < len, inside the allocation; T: Copy needs no drop.
            unsafe { raw.add(i).write(value) };
        }
        HugeSlice { ptr, len, layout }
    }
}

impl<T: Copy> Deref for HugeSlice<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: len initialised elements.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for HugeSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: len initialised elements, exclusively borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with this layout.
        unsafe { dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_huge_slices_hold_their_values() {
        let mut small = HugeSlice::new(10, 7u64);
        small[3] = 9;
        assert_eq!(small.iter().sum::<u64>(), 7 * 9 + 9);
        let big = HugeSlice::new(1 << 19, 1u64); // 4 MiB
        assert_eq!(big.as_ptr() as usize % HUGE_PAGE, 0, "2 MiB aligned");
        assert_eq!(big.len(), 1 << 19);
        assert!(big.iter().all(|&v| v == 1));
    }
}
