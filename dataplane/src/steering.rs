//! A service's steering table for the packet path v2 ("Maglev first"): for each
//! Maglev slot, the target new flows take and, once a snapshot changed the slot, a
//! *mark* naming the target it had before the change.
//!
//! A frame whose slot is unmarked goes to the slot's target without touching the flow
//! table: no flow can have begun on another target there. A marked slot sends its
//! frames through the flow table, and a frame of a flow the table does not know goes
//! to the marked previous target (see `forward::steer`). Marks are only ever made by
//! comparing a snapshot with the one before it, so two appliances with the same
//! config and the same history of changes hold the same marks.
//!
//! A mark names the *first* previous target: a slot changed twice (A to B to C)
//! keeps A, since the flows begun on B were recorded at their SYN and the flows
//! begun on A were not. Marks go only all together, per service, when the control
//! thread has seen that no flow can still depend on them (`Snapshot::build_settling`).

use crate::flow::FlowTarget;
use crate::maglev::{slot_index, MaglevTable};
use crate::snapshot::Target;
use std::collections::HashMap;
use std::sync::Arc;

/// A slot's current target slot when no target may take new flows.
pub const NO_TARGET: u16 = u16::MAX;

/// One Maglev slot: the current target slot in the low 16 bits (`NO_TARGET` if none)
/// and the mark in the high 16 (0: unchanged; k: `Steering::previous[k - 1]`). One
/// load gives a frame both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotEntry(u32);

impl SlotEntry {
    #[inline(always)]
    pub fn current(self) -> Option<u16> {
        let slot = self.0 as u16;
        (slot != NO_TARGET).then_some(slot)
    }

    /// The mark's index into `Steering::previous`, if the slot is marked.
    #[inline(always)]
    fn mark(self) -> Option<usize> {
        (self.0 >> 16).checked_sub(1).map(|k| k as usize)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steering {
    /// Empty when the service tracks no changes (`Tracking::Full` or `None`), or
    /// has neither targets nor marks.
    entries: Arc<[u32]>,
    /// The previous targets the marks name, each once.
    previous: Arc<[FlowTarget]>,
    marked: usize,
}

/// Where a slot sends a frame, as far as the slot alone tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    /// Unmarked: the slot's target (None: no target may take new flows).
    Unchanged(Option<u16>),
    /// Marked: ask the flow table; a flow it does not know predates the change.
    Changed {
        current: Option<u16>,
        previous: FlowTarget,
    },
}

impl Steering {
    pub fn empty() -> Self {
        Steering {
            entries: Arc::from([]),
            previous: Arc::from([]),
            marked: 0,
        }
    }

    /// The steering for `table` (indices already remapped to target slots).
    /// `before` is the same service's steering in the previous snapshot, built with
    /// the same table size and seed, and that snapshot's targets: a slot whose target
    /// changed since is marked with its target then, and a slot marked then keeps
    /// its mark, unless `settle` clears every mark.
    pub fn build(
        table: &MaglevTable,
        before: Option<(&Steering, &[Target])>,
        settle: bool,
    ) -> Self {
        let current = |i: usize| table.slots().get(i).copied().unwrap_or(NO_TARGET);
        let size = before.map_or(0, |(b, _)| b.entries.len()).max(table.len());
        let before = before.filter(|(b, _)| !settle && b.entries.len() == size);
        if let Some((b, _)) = before {
            // The same targets in the same slots and the same marks: share it.
            if (0..size).all(|i| b.entries[i] as u16 == current(i)) {
                return b.clone();
            }
        }
        let mut previous: Vec<FlowTarget> = Vec::new();
        let mut index: HashMap<FlowTarget, u32> = HashMap::new();
        let mut mark_of = |target: FlowTarget| -> u32 {
            *index.entry(target).or_insert_with(|| {
                previous.push(target);
                previous.len() as u32
            })
        };
        let mut marked = 0;
        let entries: Arc<[u32]> = (0..size)
            .map(|i| {
                let now = current(i);
                let mark = before.and_then(|(b, targets)| {
                    let then = SlotEntry(b.entries[i]);
                    match then.mark() {
                        Some(k) => b.previous.get(k).copied(),
                        None => then
                            .current()
                            .filter(|&slot| slot != now)
                            .map(|slot| FlowTarget {
                                slot,
                                generation: targets
                                    .get(usize::from(slot))
                                    .map_or(0, |t| t.generation),
                            }),
                    }
                });
                let mark = mark.map_or(0, &mut mark_of);
                marked += usize::from(mark != 0);
                u32::from(now) | (mark << 16)
            })
            .collect();
        if table.is_empty() && marked == 0 {
            return Steering::empty();
        }
        Steering {
            entries,
            previous: previous.into(),
            marked,
        }
    }

    /// Where the slot of `flow_hash` sends it (the slot as `MaglevTable::slot_of`
    /// picks it). None if the service has no steering at all.
    #[inline(always)]
    pub fn steer(&self, flow_hash: u64) -> Option<Steer> {
        let at = slot_index(flow_hash, self.entries.len());
        let entry = SlotEntry(*self.entries.get(at)?);
        Some(match entry.mark() {
            None => Steer::Unchanged(entry.current()),
            Some(k) => Steer::Changed {
                current: entry.current(),
                previous: self.previous.get(k).copied().unwrap_or_default(),
            },
        })
    }

    /// Starts loading the slot of `flow_hash`, ahead of `steer`.
    #[inline(always)]
    pub fn prefetch(&self, flow_hash: u64) {
        if let Some(entry) = self.entries.get(slot_index(flow_hash, self.entries.len())) {
            crate::memory::prefetch(entry);
        }
    }

    /// Slots that carry a mark.
    pub fn marked(&self) -> usize {
        self.marked
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `self` and `other` are one steering (a clone), not just equal ones.
    pub fn shares(&self, other: &Steering) -> bool {
        Arc::ptr_eq(&self.entries, &other.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maglev::MaglevTarget;

    fn table(ids: &[u64], size: u32) -> MaglevTable {
        let targets: Vec<MaglevTarget> = ids
            .iter()
            .map(|&identity| MaglevTarget {
                identity,
                weight: 1,
            })
            .collect();
        let slots: Vec<u16> = (0..ids.len() as u16).collect();
        MaglevTable::build(&targets, size, 1).unwrap().remap(&slots)
    }

    fn targets(n: u16) -> Vec<Target> {
        (0..n)
            .map(|i| Target {
                mac: crate::wire::MacAddr([2, 0, 0, 0, 0, i as u8]),
                generation: 100 + u32::from(i),
                usable: true,
            })
            .collect()
    }

    fn steers(s: &Steering) -> Vec<Steer> {
        (0..s.len())
            .map(|i| {
                // A hash whose high 32 bits land in slot i.
                let hash = (((i as u128) << 32).div_ceil(s.len() as u128) as u64) << 32;
                s.steer(hash).unwrap()
            })
            .collect()
    }

    #[test]
    fn marks_name_the_first_previous_target_and_go_only_when_settled() {
        let all = targets(3);
        let two = table(&[1, 2], 251);
        let first = Steering::build(&two, None, false);
        assert_eq!(first.marked(), 0, "nothing to compare with: no marks");
        // A third target takes about a third of the slots, each marked with its
        // target before.
        let three = table(&[1, 2, 3], 251);
        let second = Steering::build(&three, Some((&first, &all)), false);
        let moved: Vec<(usize, Steer)> = steers(&second).into_iter().enumerate().collect();
        for &(i, steer) in &moved {
            let then = two.slots()[i];
            let now = three.slots()[i];
            let want = if then == now {
                Steer::Unchanged(Some(now))
            } else {
                Steer::Changed {
                    current: Some(now),
                    previous: FlowTarget {
                        slot: then,
                        generation: all[usize::from(then)].generation,
                    },
                }
            };
            assert_eq!(steer, want, "slot {i}");
        }
        assert!((60..=110).contains(&second.marked()), "{}", second.marked());
        // Back to two: the marks stay, naming the first target still.
        let third = Steering::build(&two, Some((&second, &all)), false);
        assert_eq!(third.marked(), second.marked());
        for (i, steer) in steers(&third).into_iter().enumerate() {
            if let Steer::Changed { current, previous } = steer {
                assert_eq!(current, Some(two.slots()[i]));
                assert_eq!(previous.slot, two.slots()[i], "A to C to A: A stays");
            }
        }
        // A rebuild with no change shares the steering; settling clears every mark.
        assert!(Steering::build(&two, Some((&third, &all)), false).shares(&third));
        let settled = Steering::build(&two, Some((&third, &all)), true);
        assert_eq!(settled.marked(), 0);
        assert_eq!(steers(&settled), steers(&first));
    }

    #[test]
    fn a_service_that_lost_every_target_keeps_its_marks() {
        let all = targets(1);
        let one = table(&[1], 7);
        let before = Steering::build(&one, None, false);
        let none = Steering::build(&MaglevTable::empty(), Some((&before, &all)), false);
        assert_eq!(none.marked(), 7);
        assert!(steers(&none).iter().all(|s| matches!(
            s,
            Steer::Changed {
                current: None,
                previous: FlowTarget { slot: 0, .. }
            }
        )));
        assert!(Steering::build(&MaglevTable::empty(), Some((&none, &all)), true).is_empty());
    }
}
