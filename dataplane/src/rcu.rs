//! Publishing a value from one writer to poll-mode readers without locks,
//! allocation or syscalls on the reading side (quiescent-state-based reclamation,
//! as DPDK's rte_rcu_qsbr).
//!
//! A reader loads the current pointer at the start of a burst and reports a
//! quiescent state at the end of it (one Release store to its own cache line). The
//! writer swaps the pointer, then waits until every online reader has reported a
//! quiescent state since the swap before it frees the old value: freeing happens on
//! the writer's thread, never on a worker.

use std::ops::Deref;
use std::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// High bit of a reader's counter: the reader is gone and holds nothing.
const OFFLINE: u64 = 1 << 63;

#[repr(align(64))]
struct ReaderState(AtomicU64);

struct Shared<T> {
    current: AtomicPtr<T>,
    readers: Box<[ReaderState]>,
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // SAFETY: current always holds one Arc reference, released here once.
        drop(unsafe { Arc::from_raw(self.current.load(Ordering::Acquire)) });
    }
}

/// The writer's side. One per cell.
pub struct Publisher<T> {
    shared: Arc<Shared<T>>,
}

/// One reader's side; each reader has its own slot. Give one to each worker.
pub struct Reader<T> {
    shared: Arc<Shared<T>>,
    index: usize,
}

// SAFETY: the reader only reads T through shared references and writes its own atomic.
unsafe impl<T: Send + Sync> Send for Reader<T> {}
// SAFETY: the publisher's operations are atomic swaps and loads.
unsafe impl<T: Send + Sync> Send for Publisher<T> {}

/// A new cell holding `initial`, with `readers` reader slots.
pub fn cell<T>(initial: Arc<T>, readers: usize) -> (Publisher<T>, Vec<Reader<T>>) {
    let shared = Arc::new(Shared {
        current: AtomicPtr::new(Arc::into_raw(initial) as *mut T),
        readers: (0..readers)
            .map(|_| ReaderState(AtomicU64::new(0)))
            .collect(),
    });
    let handles = (0..readers)
        .map(|index| Reader {
            shared: Arc::clone(&shared),
            index,
        })
        .collect();
    (Publisher { shared }, handles)
}

impl<T> Publisher<T> {
    /// The value readers see now.
    pub fn current(&self) -> Arc<T> {
        let ptr = self.shared.current.load(Ordering::Acquire);
        // SAFETY: ptr came from Arc::into_raw and the cell keeps that reference
        // alive; only this publisher (&self, not shared across threads) swaps it.
        unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        }
    }

    /// Publishes `next` and returns once no reader can still see the old value (the
    /// old value is dropped here, on this thread, if nobody else holds it). Returns
    /// false if some reader did not pass a quiescent state within `patience`; the old
    /// value is then leaked rather than freed under a reader.
    pub fn publish(&mut self, next: Arc<T>, patience: Duration) -> bool {
        let old = self
            .shared
            .current
            .swap(Arc::into_raw(next) as *mut T, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let seen: Vec<u64> = self
            .shared
            .readers
            .iter()
            .map(|r| r.0.load(Ordering::Acquire))
            .collect();
        let deadline = Instant::now() + patience;
        let mut spins = 0u32;
        loop {
            let all_passed = self.shared.readers.iter().zip(&seen).all(|(r, &before)| {
                let now = r.0.load(Ordering::Acquire);
                now & OFFLINE != 0 || now != before
            });
            if all_passed {
                break;
            }
            if Instant::now() >= deadline {
                log::error!("a worker did not pass a quiescent state in {patience:?}: old snapshot leaked, not freed");
                return false;
            }
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
        // SAFETY: every reader has passed a quiescent state since the swap: none holds
        // a reference obtained from the old pointer.
        drop(unsafe { Arc::from_raw(old) });
        true
    }
}

/// A reader's view of the value for one burst. Dropping it is the quiescent state.
pub struct ReadGuard<'a, T> {
    value: &'a T,
    state: &'a AtomicU64,
}

impl<T> Reader<T> {
    /// Loads the current value. Hold the guard for one burst at most.
    #[inline(always)]
    pub fn read(&mut self) -> ReadGuard<'_, T> {
        let state = &self.shared.readers[self.index].0;
        let ptr = self.shared.current.load(Ordering::Acquire);
        // SAFETY: the publisher frees this value only after our next quiescent
        // report, which the guard's drop makes after the last use.
        ReadGuard {
            value: unsafe { &*ptr },
            state,
        }
    }
}

/// A dropped reader (a worker that stopped) is offline: the writer stops waiting for it.
impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        self.shared.readers[self.index]
            .0
            .fetch_or(OFFLINE, Ordering::Release);
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // Single writer per slot: a load and a store, no read-modify-write.
        let next = self.state.load(Ordering::Relaxed).wrapping_add(1) & !OFFLINE;
        self.state.store(next, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A value that poisons itself when dropped, so a reader that could still see a
    /// freed value would (very likely) read the poison.
    struct Canary {
        alive: AtomicU64,
        payload: Vec<u64>,
    }

    impl Drop for Canary {
        fn drop(&mut self) {
            self.alive.store(0xdead, Ordering::SeqCst);
            for p in self.payload.iter_mut() {
                *p = 0xdead;
            }
        }
    }

    fn canary(n: u64) -> Arc<Canary> {
        Arc::new(Canary {
            alive: AtomicU64::new(1),
            payload: vec![n; 16],
        })
    }

    #[test]
    fn readers_see_the_latest_and_never_a_freed_value() {
        let (mut publisher, readers) = cell(canary(0), 2);
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = readers
            .into_iter()
            .map(|mut reader| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    let mut last = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let v = reader.read();
                        assert_eq!(v.alive.load(Ordering::SeqCst), 1, "read a freed value");
                        let first = v.payload[0];
                        assert!(
                            v.payload.iter().all(|&p| p == first),
                            "torn or poisoned payload"
                        );
                        assert!(first >= last, "went back in time");
                        last = first;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for n in 1..=2_000u64 {
            assert!(publisher.publish(canary(n), Duration::from_secs(5)));
        }
        assert_eq!(publisher.current().payload[0], 2_000);
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            assert!(t.join().unwrap() > 0);
        }
    }

    #[test]
    fn old_value_is_dropped_by_the_publisher_once_readers_pass() {
        let first = canary(1);
        let (mut publisher, mut readers) = cell(Arc::clone(&first), 1);
        drop(readers[0].read());
        assert_eq!(Arc::strong_count(&first), 2);
        // The reader will pass a quiescent state from another thread.
        let mut reader = readers.pop().unwrap();
        let t = std::thread::spawn(move || {
            for _ in 0..1_000 {
                drop(reader.read());
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        assert!(publisher.publish(canary(2), Duration::from_secs(5)));
        assert_eq!(
            Arc::strong_count(&first),
            1,
            "the cell released the old value"
        );
        t.join().unwrap();
    }

    #[test]
    fn a_stuck_reader_makes_publish_give_up_without_freeing() {
        let first = canary(1);
        let (mut publisher, mut readers) = cell(Arc::clone(&first), 1);
        let guard = readers[0].read();
        assert!(!publisher.publish(canary(2), Duration::from_millis(20)));
        assert_eq!(
            guard.alive.load(Ordering::SeqCst),
            1,
            "not freed under the reader"
        );
        drop(guard);
    }

    #[test]
    fn offline_readers_are_not_waited_for() {
        let (mut publisher, readers) = cell(canary(1), 3);
        drop(readers);
        assert!(publisher.publish(canary(2), Duration::from_millis(1)));
    }
}
