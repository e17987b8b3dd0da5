//! From the workers' per-slot counters to counters per target and per service that
//! operators (and Prometheus) can trust: a target starts at zero even in a reused
//! slot, and a service keeps what its removed targets carried.

use crate::runtime::RunningWorker;
use dataplane::snapshot::{ServiceKey, Snapshot};
use std::collections::HashMap;

/// Sums over every worker, read on demand.
pub struct Totals<'a>(pub &'a [RunningWorker]);

impl Totals<'_> {
    pub fn target(&self, slot: u16) -> Traffic {
        let mut t = Traffic::default();
        for w in self.0 {
            t.packets += w.stats.slots.target_packets(slot);
            t.bytes += w.stats.slots.target_bytes(slot);
        }
        t
    }

    pub fn target_flows(&self, slot: u16) -> u64 {
        self.0
            .iter()
            .map(|w| w.stats.slots.target_flows(slot))
            .sum()
    }

    /// The service counters of the service in `slot`.
    pub fn service(&self, slot: u16) -> ServiceCounts {
        let mut c = ServiceCounts::default();
        for w in self.0 {
            c.drops += w.stats.slots.service_drops(slot);
            c.icmp_errors += w.stats.slots.service_icmp_errors(slot);
        }
        c
    }
}

/// What is counted per service besides its targets' traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceCounts {
    /// Packets dropped because no target could take them.
    pub drops: u64,
    /// ICMP errors about its flows, forwarded to their targets.
    pub icmp_errors: u64,
}

impl ServiceCounts {
    fn since(self, base: ServiceCounts) -> ServiceCounts {
        ServiceCounts {
            drops: self.drops.saturating_sub(base.drops),
            icmp_errors: self.icmp_errors.saturating_sub(base.icmp_errors),
        }
    }

    fn add(&mut self, other: ServiceCounts) {
        self.drops += other.drops;
        self.icmp_errors += other.icmp_errors;
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
}

impl Traffic {
    fn since(self, base: Traffic) -> Traffic {
        Traffic {
            packets: self.packets.saturating_sub(base.packets),
            bytes: self.bytes.saturating_sub(base.bytes),
        }
    }

    fn add(&mut self, other: Traffic) {
        self.packets += other.packets;
        self.bytes += other.bytes;
    }
}

#[derive(Debug, Clone, Copy)]
struct TargetBase {
    generation: u32,
    service: ServiceKey,
    at_start: Traffic,
}

#[derive(Debug, Default)]
pub struct Accounting {
    targets: HashMap<u16, TargetBase>,
    services: HashMap<u16, (ServiceKey, ServiceCounts)>,
    /// Traffic of targets no longer configured, by the service they were in.
    retired: HashMap<ServiceKey, Traffic>,
    /// Counts of services that left a slot, by service (one may come back).
    retired_counts: HashMap<ServiceKey, ServiceCounts>,
}

impl Accounting {
    /// Takes note of a newly published snapshot (after the workers have moved to it):
    /// targets and services new to their slot start from the slot's current count.
    pub fn observe(&mut self, snapshot: &Snapshot, totals: &Totals) {
        let mut targets = HashMap::new();
        let mut services = HashMap::new();
        for service in snapshot.services() {
            for &slot in &service.target_slots {
                let Some(target) = snapshot.target(slot) else {
                    continue;
                };
                let base = match self.targets.get(&slot) {
                    Some(b) if b.generation == target.generation => *b,
                    _ => TargetBase {
                        generation: target.generation,
                        service: service.key,
                        at_start: totals.target(slot),
                    },
                };
                targets.insert(slot, base);
            }
            let base = match self.services.get(&service.slot) {
                Some(&(key, base)) if key == service.key => base,
                _ => totals.service(service.slot),
            };
            services.insert(service.slot, (service.key, base));
        }
        for (slot, old) in &self.targets {
            if targets.get(slot).map(|b| b.generation) != Some(old.generation) {
                let carried = totals.target(*slot).since(old.at_start);
                self.retired.entry(old.service).or_default().add(carried);
            }
        }
        for (slot, &(key, base)) in &self.services {
            if services.get(slot).map(|&(k, _)| k) != Some(key) {
                let carried = totals.service(*slot).since(base);
                self.retired_counts.entry(key).or_default().add(carried);
            }
        }
        self.targets = targets;
        self.services = services;
    }

    /// What the target in `slot` carried since it was configured.
    pub fn target(&self, slot: u16, totals: &Totals) -> Traffic {
        let base = self
            .targets
            .get(&slot)
            .map_or_else(Traffic::default, |b| b.at_start);
        totals.target(slot).since(base)
    }

    /// What the service's targets carried, including targets since removed.
    pub fn service(&self, key: ServiceKey, current_slots: &[u16], totals: &Totals) -> Traffic {
        let mut t = self.retired.get(&key).copied().unwrap_or_default();
        for &slot in current_slots {
            t.add(self.target(slot, totals));
        }
        t
    }

    /// The service's counts since it was configured, including earlier stays in
    /// other slots.
    pub fn service_counts(&self, key: ServiceKey, slot: u16, totals: &Totals) -> ServiceCounts {
        let base = match self.services.get(&slot) {
            Some(&(k, base)) if k == key => base,
            _ => ServiceCounts::default(),
        };
        let mut counts = totals.service(slot).since(base);
        counts.add(self.retired_counts.get(&key).copied().unwrap_or_default());
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RunningWorker;
    use dataplane::snapshot::SnapshotSpec;
    use dataplane::worker::WorkerStats;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    fn spec(targets: &[u8]) -> SnapshotSpec {
        crate::stand_in::one_service_spec(targets, Default::default())
    }

    fn count(w: &RunningWorker, slot: u16, packets: u64) {
        let c = &w.stats.slots.targets[usize::from(slot)].packets;
        c.store(c.load(Ordering::Relaxed) + packets, Ordering::Relaxed);
    }

    #[test]
    fn a_reused_slot_starts_at_zero_and_the_service_keeps_what_removed_targets_carried() {
        let workers = vec![RunningWorker {
            lcore: 1,
            port_name: "p".into(),
            queue: 0,
            stats: Arc::new(WorkerStats::default()),
            queries: Arc::default(),
        }];
        let totals = Totals(&workers);
        let mut acc = Accounting::default();
        let first = Snapshot::build(&spec(&[11, 12]), None).unwrap();
        acc.observe(&first, &totals);
        let service = &first.services()[0];
        let (s11, s12) = (service.target_slots[0], service.target_slots[1]);
        count(&workers[0], s11, 5);
        count(&workers[0], s12, 7);
        assert_eq!(acc.target(s11, &totals).packets, 5);

        // 11 removed, 13 added (it may take 11's slot, but not its count).
        let second = Snapshot::build(&spec(&[12, 13]), Some(&first)).unwrap();
        acc.observe(&second, &totals);
        let slots = second.services()[0].target_slots.clone();
        assert_eq!(slots[0], s12);
        assert_eq!(
            acc.target(slots[0], &totals).packets,
            7,
            "12 keeps its count"
        );
        assert_eq!(
            acc.target(slots[1], &totals).packets,
            0,
            "13 starts at zero"
        );
        count(&workers[0], slots[1], 2);
        let key = second.services()[0].key;
        assert_eq!(
            acc.service(key, &slots, &totals).packets,
            5 + 7 + 2,
            "the service's count never goes back"
        );
    }
}
