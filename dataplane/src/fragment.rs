//! Fragments of one datagram go to one target. Only the first fragment carries the
//! ports, so it is decided like any frame and records its target here, under what
//! identifies the datagram (addresses, protocol, identification); later fragments
//! find the target by the same. A later fragment that comes before its first (the
//! sender or the network reordered them) is held by the worker (`Held`) and decided
//! again once a first fragment has been recorded; one whose first never comes within
//! the timeout is dropped.
//!
//! Per worker, fixed in size at start: nothing is allocated while frames are decided.

use crate::flow::FlowTarget;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// What identifies a datagram's fragments (RFC 791 §2.3, RFC 8200 §4.5): its
/// addresses (an IPv4 one in the low 32 bits), protocol and identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DatagramKey {
    pub src: u128,
    pub dst: u128,
    pub ident: u32,
    pub proto: u8,
    pub ipv6: bool,
}

/// Datagrams a bucket holds side by side.
const WAYS: usize = 4;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    key: DatagramKey,
    target: FlowTarget,
    /// The service's counter slot, for a later fragment whose target is gone.
    service: u16,
    /// 0: empty.
    expires_ms: u64,
}

/// Counters of one worker's table; written by its worker only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragmentStats {
    /// First fragments whose target was recorded.
    pub recorded: u64,
    /// Datagrams forgotten before their timeout to make room for a new one.
    pub evicted: u64,
}

/// Each datagram's target, by its first fragment, for `timeout_ms` after its last
/// fragment seen.
pub struct FragmentTable {
    entries: Box<[Entry]>,
    bucket_mask: usize,
    timeout_ms: u64,
    /// Keyed at random per table: bucket collisions cannot be aimed from outside.
    hasher: RandomState,
    stats: FragmentStats,
}

impl FragmentTable {
    /// Room for at least `capacity` datagrams (0: none are recorded, so every later
    /// fragment waits for a first that never registers).
    pub fn new(capacity: usize, timeout_ms: u64) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        let size = if capacity == 0 { 0 } else { buckets * WAYS };
        FragmentTable {
            entries: vec![Entry::default(); size].into_boxed_slice(),
            bucket_mask: buckets - 1,
            timeout_ms: timeout_ms.max(1),
            hasher: RandomState::new(),
            stats: FragmentStats::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    pub fn stats(&self) -> FragmentStats {
        self.stats
    }

    /// The bytes its entries take.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries)
    }

    fn bucket(&mut self, key: &DatagramKey) -> &mut [Entry] {
        if self.entries.is_empty() {
            return &mut [];
        }
        let at = (self.hasher.hash_one(key) as usize & self.bucket_mask) * WAYS;
        &mut self.entries[at..at + WAYS]
    }

    /// Records that `key`'s datagram goes to `target` (of the service in counter slot
    /// `service`): in its own entry if it has one, else in a free one; a full bucket
    /// forgets the datagram nearest its timeout.
    pub fn record(&mut self, key: &DatagramKey, target: FlowTarget, service: u16, now_ms: u64) {
        let expires_ms = now_ms + self.timeout_ms;
        let bucket = self.bucket(key);
        let own = bucket
            .iter()
            .position(|e| e.expires_ms > now_ms && e.key == *key);
        let free = || bucket.iter().position(|e| e.expires_ms <= now_ms);
        let (way, evicted) = match own.or_else(free) {
            Some(way) => (way, false),
            None => {
                let oldest = (bucket.iter().enumerate()).min_by_key(|(_, e)| e.expires_ms);
                let Some((way, _)) = oldest else {
                    return; // no capacity
                };
                (way, true)
            }
        };
        bucket[way] = Entry {
            key: *key,
            target,
            service,
            expires_ms,
        };
        self.stats.recorded += 1;
        self.stats.evicted += u64::from(evicted);
    }

    /// The target and service slot recorded for `key`'s datagram, if its first
    /// fragment came within the timeout; finding it keeps it for another timeout.
    pub fn find(&mut self, key: &DatagramKey, now_ms: u64) -> Option<(FlowTarget, u16)> {
        let expires_ms = now_ms + self.timeout_ms;
        let entry =
            (self.bucket(key).iter_mut()).find(|e| e.expires_ms > now_ms && e.key == *key)?;
        entry.expires_ms = expires_ms;
        Some((entry.target, entry.service))
    }
}

/// What a worker holds: later fragments waiting for their first, each with when it
/// came. Fixed in size at start; full, it refuses.
pub struct Held<T> {
    slots: Box<[Option<(T, u64)>]>,
    len: usize,
    timeout_ms: u64,
    /// When the oldest held item's wait ends (`u64::MAX`: none held).
    due_ms: u64,
    /// `FragmentStats::recorded` when the held ones were last decided again: until
    /// a first fragment is recorded, deciding them again cannot free one.
    pub seen_recorded: u64,
}

impl<T> Held<T> {
    /// Room for `capacity` items, each waiting at most `timeout_ms`.
    pub fn new(capacity: usize, timeout_ms: u64) -> Self {
        Held {
            slots: (0..capacity).map(|_| None).collect(),
            len: 0,
            timeout_ms,
            due_ms: u64::MAX,
            seen_recorded: 0,
        }
    }

    /// The time (`now_ms`, read only if something is held) if the held items should
    /// be decided again: a first fragment has been recorded since (`recorded`, the
    /// table's count), or the oldest has waited its time. One compare when nothing
    /// is held.
    #[inline(always)]
    pub fn due(&self, recorded: u64, now_ms: impl FnOnce() -> u64) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let now_ms = now_ms();
        (recorded != self.seen_recorded || now_ms >= self.due_ms).then_some(now_ms)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Holds `item` from `now_ms`; gives it back if every slot is taken.
    pub fn hold(&mut self, item: T, now_ms: u64) -> Result<(), T> {
        match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some((item, now_ms));
                self.len += 1;
                self.due_ms = self.due_ms.min(now_ms.saturating_add(self.timeout_ms));
                Ok(())
            }
            None => Err(item),
        }
    }

    /// The earliest time a held item came, if any is held.
    pub fn oldest_ms(&self) -> Option<u64> {
        self.slots.iter().flatten().map(|(_, since)| *since).min()
    }

    /// When the oldest held item's wait ends, if any is held.
    pub fn due_ms(&self) -> Option<u64> {
        (self.len != 0).then_some(self.due_ms)
    }

    /// Offers each held item to `release` with when it came; an item it gives back
    /// stays held.
    pub fn release(&mut self, mut release: impl FnMut(T, u64) -> Option<T>) {
        for slot in self.slots.iter_mut() {
            let Some((item, since)) = slot.take() else {
                continue;
            };
            match release(item, since) {
                Some(kept) => *slot = Some((kept, since)),
                None => self.len -= 1,
            }
        }
        self.due_ms = self
            .oldest_ms()
            .map_or(u64::MAX, |since| since.saturating_add(self.timeout_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ident: u32) -> DatagramKey {
        DatagramKey {
            src: 0x0a63_0001,
            dst: 0x0a63_0064,
            ident,
            proto: 17,
            ipv6: false,
        }
    }

    fn target(slot: u16) -> FlowTarget {
        FlowTarget {
            slot,
            generation: 1,
        }
    }

    #[test]
    fn a_datagram_is_found_by_every_field_of_its_key_until_it_times_out() {
        let mut table = FragmentTable::new(64, 100);
        table.record(&key(7), target(3), 2, 1000);
        assert_eq!(table.find(&key(7), 1050), Some((target(3), 2)));
        // Found at 1050: kept to 1150.
        assert_eq!(table.find(&key(7), 1149), Some((target(3), 2)));
        assert_eq!(table.find(&key(7), 1249), None);
        table.record(&key(7), target(3), 2, 2000);
        let others = [
            DatagramKey { ident: 8, ..key(7) },
            DatagramKey {
                src: 0x0a63_0002,
                ..key(7)
            },
            DatagramKey {
                dst: 0x0a63_0065,
                ..key(7)
            },
            DatagramKey { proto: 6, ..key(7) },
            DatagramKey {
                ipv6: true,
                ..key(7)
            },
        ];
        for other in others {
            assert_eq!(table.find(&other, 2001), None, "{other:?}");
        }
        assert_eq!(table.stats().recorded, 2);
    }

    #[test]
    fn a_full_table_forgets_the_datagram_nearest_its_timeout_and_counts_it() {
        let mut table = FragmentTable::new(WAYS, 1000);
        assert_eq!(table.capacity(), WAYS);
        for i in 0..WAYS as u32 {
            table.record(&key(i), target(1), 0, 10 + u64::from(i));
        }
        table.record(&key(99), target(2), 0, 20);
        assert_eq!(table.stats().evicted, 1);
        assert_eq!(table.find(&key(0), 21), None, "the oldest went");
        assert_eq!(table.find(&key(99), 21), Some((target(2), 0)));
        for i in 1..WAYS as u32 {
            assert!(table.find(&key(i), 21).is_some(), "{i}");
        }
    }

    #[test]
    fn a_datagram_takes_80_bytes() {
        let table = FragmentTable::new(4096, 1000);
        assert_eq!(table.memory_bytes(), 4096 * 80, "README's figure");
    }

    #[test]
    fn a_table_of_no_capacity_records_nothing() {
        let mut table = FragmentTable::new(0, 1000);
        table.record(&key(1), target(1), 0, 10);
        assert_eq!(table.find(&key(1), 11), None);
    }

    #[test]
    fn held_items_stay_until_released_and_a_full_hold_refuses() {
        let mut held = Held::new(2, 100);
        assert_eq!(
            held.due(0, || panic!("no clock read")),
            None,
            "nothing held"
        );
        assert!(held.hold("a", 1).is_ok() && held.hold("b", 2).is_ok());
        assert_eq!(held.hold("c", 3), Err("c"));
        assert_eq!(
            (held.len(), held.oldest_ms(), held.due_ms()),
            (2, Some(1), Some(101))
        );
        assert_eq!(
            (held.due(0, || 100), held.due(0, || 101)),
            (None, Some(101))
        );
        assert_eq!(
            held.due(1, || 2),
            Some(2),
            "a first fragment recorded since"
        );
        let mut offered = Vec::new();
        held.release(|item, since| {
            offered.push((item, since));
            (item == "b").then_some(item)
        });
        assert_eq!(offered, [("a", 1), ("b", 2)]);
        assert_eq!(
            (held.len(), held.oldest_ms(), held.due_ms()),
            (1, Some(2), Some(102))
        );
        assert!(held.hold("c", 3).is_ok());
        assert_eq!(held.len(), 2);
    }
}
