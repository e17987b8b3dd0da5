//! When a service's marks may go. A snapshot marks the Maglev slots a change moved
//! (dataplane `steering`): frames there are looked up in the workers' flow tables,
//! and flows begun before the change keep their previous target. A mark is needed
//! while a flow could still depend on it: one that predates the change and may still
//! send (for the established timeout after the change), or one the workers keep on a
//! target other than its slot's current one (they count those frames per service).
//! Once neither has happened for the established timeout, the service's marks are
//! settled: the next tables are built without them, and its frames skip the table.

use dataplane::snapshot::{Service, ServiceKey, Snapshot};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How often the workers' counts are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Marks {
    watched: HashMap<ServiceKey, Watch>,
    /// Services whose marks the next tables drop.
    due: HashSet<ServiceKey>,
    next_check: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Watch {
    /// When a change last moved slots of the service.
    changed: Instant,
    /// The workers' count of frames kept on a previous target, and when it last grew.
    kept: u64,
    kept_grew: Instant,
}

impl Marks {
    /// Follows `next`, published over `previous`: a service whose steering changed
    /// and carries marks is watched from now; one without marks no longer.
    pub fn published(&mut self, previous: &Snapshot, next: &Snapshot, now: Instant) {
        let before: HashMap<ServiceKey, _> = previous
            .services()
            .iter()
            .map(|s| (s.key, &s.steering))
            .collect();
        let mut watched = HashMap::new();
        for service in next.services() {
            if service.steering.marked() == 0 {
                continue;
            }
            let same = before
                .get(&service.key)
                .is_some_and(|b| b.shares(&service.steering));
            let watch = match self.watched.get(&service.key) {
                Some(&watch) if same => watch,
                Some(&watch) => Watch {
                    changed: now,
                    ..watch
                },
                None => Watch {
                    changed: now,
                    kept: 0,
                    kept_grew: now,
                },
            };
            watched.insert(service.key, watch);
        }
        self.due.retain(|key| watched.contains_key(key));
        self.watched = watched;
    }

    /// Looks at the workers' counts (`kept`, by service slot) once a second: the
    /// services whose marks became due to settle (the tables should be rebuilt).
    pub fn check<'s>(
        &mut self,
        snapshot: &'s Snapshot,
        kept: impl Fn(u16) -> u64,
        quiet: Duration,
        now: Instant,
    ) -> Vec<&'s Service> {
        let mut newly_due = Vec::new();
        if !self.watching() || self.next_check.is_some_and(|at| now < at) {
            return newly_due;
        }
        self.next_check = Some(now + CHECK_EVERY);
        for service in snapshot.services() {
            let Some(watch) = self.watched.get_mut(&service.key) else {
                continue;
            };
            let count = kept(service.slot);
            if count != watch.kept {
                watch.kept = count;
                watch.kept_grew = now;
            }
            let settled = now.duration_since(watch.changed) >= quiet
                && now.duration_since(watch.kept_grew) >= quiet;
            if settled && self.due.insert(service.key) {
                newly_due.push(service);
            }
        }
        newly_due
    }

    /// Whether any service's marks are watched: if not, `check` has nothing to do.
    pub fn watching(&self) -> bool {
        !self.watched.is_empty()
    }

    /// The services whose marks the next tables drop.
    pub fn due(&self) -> &HashSet<ServiceKey> {
        &self.due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::snapshot::{SnapshotSpec, Tracking};

    fn spec(targets: u8) -> SnapshotSpec {
        let all: Vec<u8> = (11..11 + targets).collect();
        crate::stand_in::one_service_spec(&all, Tracking::Changes)
    }

    #[test]
    fn marks_settle_once_nothing_was_kept_on_them_for_the_quiet_time() {
        let quiet = Duration::from_secs(300);
        let t0 = Instant::now();
        let first = Snapshot::build(&spec(2), None).unwrap();
        let second = Snapshot::build(&spec(3), Some(&first)).unwrap();
        assert!(second.services()[0].steering.marked() > 0);
        let mut marks = Marks::default();
        marks.published(&first, &second, t0);
        let at = |secs| t0 + Duration::from_secs(secs);
        // Frames kept on previous targets until 200 s after the change.
        assert!(marks.check(&second, |_| 5, quiet, at(1)).is_empty());
        assert!(marks.check(&second, |_| 9, quiet, at(200)).is_empty());
        assert!(
            marks.check(&second, |_| 9, quiet, at(301)).is_empty(),
            "kept 101 s ago"
        );
        assert_eq!(marks.check(&second, |_| 9, quiet, at(500)).len(), 1);
        assert_eq!(marks.due().len(), 1);
        // The next tables drop the marks; the service is no longer watched.
        let key = second.services()[0].key;
        let settled =
            Snapshot::build_settling(&spec(3), Some(&second), &|k| marks.due().contains(&k))
                .unwrap();
        assert_eq!(settled.services()[0].steering.marked(), 0);
        marks.published(&second, &settled, at(500));
        assert!(marks.due().is_empty() && !marks.watched.contains_key(&key));
        // A change before settling starts the wait again.
        let third = Snapshot::build(&spec(2), Some(&settled)).unwrap();
        marks.published(&settled, &third, at(600));
        assert!(marks.check(&third, |_| 0, quiet, at(800)).is_empty());
        assert_eq!(marks.check(&third, |_| 0, quiet, at(901)).len(), 1);
    }
}
