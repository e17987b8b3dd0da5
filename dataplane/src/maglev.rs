//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted.
//!
//! Each target walks its own permutation of the M slots (offset and skip from a seeded
//! hash of its identity) and claims the next free slot on its turn. Weights are turns:
//! in every round a target earns `weight` credit and takes one turn per `max_weight`
//! of credit, so slot shares follow weights and equal weights give plain Maglev.
//! Targets are ordered by identity before building, so the table depends on the *set*
//! of targets and the seed, never on the order they were listed in.

use crate::hash::bytes_hash;
use config::is_prime;
use std::sync::Arc;

/// Table size used when the config does not set one (prime, as Maglev requires).
pub const DEFAULT_TABLE_SIZE: u32 = 65537;
/// Largest table accepted: slots are stored as u16 target indices, not sizes, but
/// a bigger table only costs memory and build time.
pub const MAX_TABLE_SIZE: u32 = config::MAGLEV_MAX_TABLE_SIZE;
/// Targets per table: slots hold u16 indices.
pub const MAX_TARGETS: usize = u16::MAX as usize;

/// One candidate for the table: a stable identity and a weight (0 = no new flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaglevTarget {
    /// Identity hashed into the permutation: must be the same on every appliance for
    /// the same target (dsrlb uses the target's address and port).
    pub identity: u64,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    TableSizeNotPrime(u32),
    TableSizeOutOfRange(u32),
    TooManyTargets(usize),
    /// More services than there are counter slots.
    TooManyServices(usize),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::TableSizeNotPrime(m) => write!(f, "table size {m} is not prime"),
            BuildError::TableSizeOutOfRange(m) => {
                write!(f, "table size {m} is outside 3..={MAX_TABLE_SIZE}")
            }
            BuildError::TooManyTargets(n) => write!(f, "{n} targets, at most {MAX_TARGETS}"),
            BuildError::TooManyServices(n) => write!(f, "more than {n} services"),
        }
    }
}

impl std::error::Error for BuildError {}

/// A built lookup table: slot -> index into the target slice it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaglevTable {
    /// Shared: a snapshot rebuilt without a change to a service's targets keeps the
    /// service's table (`Snapshot::build`) instead of building it again. Read the
    /// same way as a boxed slice.
    slots: Arc<[u16]>,
}

impl MaglevTable {
    /// A table with no targets: every lookup misses.
    pub fn empty() -> Self {
        MaglevTable {
            slots: Arc::from([]),
        }
    }

    /// Builds the table for `targets` (indices in the result refer to this slice).
    /// Targets of weight 0 get no slots; if all weigh 0 the table is empty.
    pub fn build(targets: &[MaglevTarget], table_size: u32, seed: u64) -> Result<Self, BuildError> {
        validate_table_size(table_size)?;
        if targets.len() > MAX_TARGETS {
            return Err(BuildError::TooManyTargets(targets.len()));
        }
        let m = table_size as usize;
        let mut order: Vec<usize> = (0..targets.len())
            .filter(|&i| targets[i].weight > 0)
            .collect();
        if order.is_empty() {
            return Ok(Self::empty());
        }
        order.sort_by_key(|&i| (targets[i].identity, i));

        let max_weight = order.iter().map(|&i| targets[i].weight).max().unwrap_or(1);
        struct Walk {
            index: u16,
            position: usize,
            skip: usize,
            weight: u32,
            credit: u32,
        }
        let mut walks: Vec<Walk> = order
            .iter()
            .map(|&i| {
                let id = targets[i].identity.to_le_bytes();
                let offset = (bytes_hash(&id, seed) % table_size as u64) as usize;
                let skip = (bytes_hash(&id, seed ^ 0x9e37_79b9_7f4a_7c15) % (table_size as u64 - 1))
                    as usize
                    + 1;
                Walk {
                    index: i as u16,
                    position: offset,
                    skip,
                    weight: targets[i].weight,
                    credit: 0,
                }
            })
            .collect();

        const EMPTY: u16 = u16::MAX;
        // u16::MAX is a valid index only with 65536 targets, which MAX_TARGETS excludes.
        let mut slots = vec![EMPTY; m];
        let mut filled = 0usize;
        'rounds: loop {
            for walk in walks.iter_mut() {
                walk.credit += walk.weight;
                if walk.credit < max_weight {
                    continue;
                }
                walk.credit -= max_weight;
                loop {
                    let slot = walk.position;
                    walk.position += walk.skip;
                    if walk.position >= m {
                        walk.position -= m;
                    }
                    if slots[slot] == EMPTY {
                        slots[slot] = walk.index;
                        filled += 1;
                        break;
                    }
                }
                if filled == m {
                    break 'rounds;
                }
            }
        }
        Ok(MaglevTable {
            slots: slots.into(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The target index for a flow hash, None if the table has no targets.
    /// Uses the hash's high bits (multiply-shift range reduction, no division).
    #[inline(always)]
    pub fn lookup(&self, hash: u64) -> Option<u16> {
        self.slots.get(self.slot_of(hash)).copied()
    }

    /// The table slot a flow hash falls in (the table has at least one slot).
    #[inline(always)]
    pub fn slot_of(&self, hash: u64) -> usize {
        slot_index(hash, self.slots.len())
    }

    /// The same table with every index `i` replaced by `map[i]` (indices into the
    /// build slice become the caller's own identifiers, e.g. snapshot slots).
    pub fn remap(&self, map: &[u16]) -> MaglevTable {
        MaglevTable {
            slots: self.slots.iter().map(|&i| map[usize::from(i)]).collect(),
        }
    }

    /// Slot -> target index, for tests and statistics.
    pub fn slots(&self) -> &[u16] {
        &self.slots
    }

    /// Whether `self` and `other` are one table (a clone), not just equal ones.
    pub fn shares(&self, other: &MaglevTable) -> bool {
        Arc::ptr_eq(&self.slots, &other.slots)
    }
}

/// The slot of a table of `len` slots a flow hash falls in: its high 32 bits scaled
/// to the table (multiply-shift, no division). Every table indexed by flow hash
/// (Maglev's, the steering's) uses this one.
#[inline(always)]
pub fn slot_index(hash: u64, len: usize) -> usize {
    ((u128::from(hash >> 32) * len as u128) >> 32) as usize
}

pub fn validate_table_size(table_size: u32) -> Result<(), BuildError> {
    if !(3..=MAX_TABLE_SIZE).contains(&table_size) {
        return Err(BuildError::TableSizeOutOfRange(table_size));
    }
    if !is_prime(table_size) {
        return Err(BuildError::TableSizeNotPrime(table_size));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn equal(n: usize) -> Vec<MaglevTarget> {
        (0..n)
            .map(|i| MaglevTarget {
                identity: 0x0a00_0000 + i as u64,
                weight: 1,
            })
            .collect()
    }

    fn shares(table: &MaglevTable, n: usize) -> Vec<usize> {
        let mut counts = vec![0usize; n];
        for &s in table.slots() {
            counts[usize::from(s)] += 1;
        }
        counts
    }

    /// Largest relative error of any target's slot count against its expected share.
    fn worst_relative_error(counts: &[usize], weights: &[u32], m: usize) -> f64 {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        counts
            .iter()
            .zip(weights)
            .filter(|(_, &w)| w > 0)
            .map(|(&c, &w)| {
                let expected = m as f64 * f64::from(w) / total as f64;
                (c as f64 - expected).abs() / expected
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn equal_weights_share_within_one_percent_up_to_1000_targets() {
        for n in [1, 2, 3, 7, 10, 100, 500, 1000] {
            let table = MaglevTable::build(&equal(n), DEFAULT_TABLE_SIZE, 7).unwrap();
            let counts = shares(&table, n);
            let err = worst_relative_error(&counts, &vec![1; n], table.len());
            assert!(err <= 0.01, "n={n}: worst share off by {:.3}%", err * 100.0);
        }
    }

    #[test]
    fn unequal_weights_are_honoured_within_one_percent() {
        let cases: Vec<Vec<u32>> = vec![
            vec![1, 2],
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            vec![100, 50, 25, 25],
            (0..100).map(|i| 1 + (i % 4)).collect(),
        ];
        for weights in cases {
            let targets: Vec<MaglevTarget> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| MaglevTarget {
                    identity: 1000 + i as u64,
                    weight: w,
                })
                .collect();
            let table = MaglevTable::build(&targets, DEFAULT_TABLE_SIZE, 1).unwrap();
            let counts = shares(&table, targets.len());
            let err = worst_relative_error(&counts, &weights, table.len());
            assert!(
                err <= 0.01,
                "weights {weights:?}: off by {:.3}%",
                err * 100.0
            );
        }
    }

    #[test]
    fn weight_zero_gets_no_slots_and_all_zero_is_empty() {
        let mut targets = equal(3);
        targets[1].weight = 0;
        let table = MaglevTable::build(&targets, 251, 0).unwrap();
        assert!(!table.slots().contains(&1));
        for t in targets.iter_mut() {
            t.weight = 0;
        }
        let table = MaglevTable::build(&targets, 251, 0).unwrap();
        assert!(table.is_empty());
        assert_eq!(table.lookup(12345), None);
    }

    #[test]
    fn removing_one_of_100_moves_at_most_3_percent_of_the_others_slots() {
        let before_targets = equal(100);
        let before = MaglevTable::build(&before_targets, DEFAULT_TABLE_SIZE, 3).unwrap();
        for removed in [0usize, 13, 50, 99] {
            let after_targets: Vec<MaglevTarget> = before_targets
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != removed)
                .map(|(_, t)| *t)
                .collect();
            let after = MaglevTable::build(&after_targets, DEFAULT_TABLE_SIZE, 3).unwrap();
            let mut kept = 0usize;
            let mut moved = 0usize;
            for (slot, &old) in before.slots().iter().enumerate() {
                if usize::from(old) == removed {
                    continue;
                }
                kept += 1;
                let new_identity = after_targets[usize::from(after.slots()[slot])].identity;
                if new_identity != before_targets[usize::from(old)].identity {
                    moved += 1;
                }
            }
            let fraction = moved as f64 / kept as f64;
            assert!(
                fraction <= 0.03,
                "removing {removed} moved {:.2}% of other slots",
                fraction * 100.0
            );
        }
    }

    #[test]
    fn same_input_same_table_whatever_the_order() {
        let targets = equal(50);
        let a = MaglevTable::build(&targets, DEFAULT_TABLE_SIZE, 11).unwrap();
        let b = MaglevTable::build(&targets, DEFAULT_TABLE_SIZE, 11).unwrap();
        assert_eq!(a, b);
        let mut reversed = targets.clone();
        reversed.reverse();
        let c = MaglevTable::build(&reversed, DEFAULT_TABLE_SIZE, 11).unwrap();
        for (slot, (&x, &y)) in a.slots().iter().zip(c.slots()).enumerate() {
            assert_eq!(
                targets[usize::from(x)].identity,
                reversed[usize::from(y)].identity,
                "slot {slot}"
            );
        }
    }

    #[test]
    fn seed_changes_the_table() {
        let targets = equal(10);
        let a = MaglevTable::build(&targets, DEFAULT_TABLE_SIZE, 1).unwrap();
        let b = MaglevTable::build(&targets, DEFAULT_TABLE_SIZE, 2).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn table_size_must_be_prime_and_in_range() {
        assert_eq!(
            MaglevTable::build(&equal(2), 65536, 0).unwrap_err(),
            BuildError::TableSizeNotPrime(65536)
        );
        assert_eq!(
            MaglevTable::build(&equal(2), 2, 0).unwrap_err(),
            BuildError::TableSizeOutOfRange(2)
        );
        assert!(MaglevTable::build(&equal(2), 251, 0).is_ok());
        assert!(is_prime(65537) && is_prime(251) && !is_prime(65535) && !is_prime(1));
    }

    #[test]
    fn lookup_reaches_every_slot_range() {
        let table = MaglevTable::build(&equal(4), 251, 0).unwrap();
        assert_eq!(table.lookup(0), Some(table.slots()[0]));
        assert_eq!(table.lookup(u64::MAX), Some(table.slots()[250]));
    }
}
