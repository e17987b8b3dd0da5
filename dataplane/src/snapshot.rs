//! The immutable forwarding state a worker reads: services, their Maglev tables and
//! the targets with MAC and usability. Built off the fast path by the control thread
//! and published whole (see `rcu`).
//!
//! Targets live in slots. A target keeps its slot and generation from one snapshot to
//! the next as long as it stays configured, so a flow pinned to (slot, generation)
//! keeps its target across rebuilds; a slot reused for another target gets a new
//! generation, so no flow follows a slot to the wrong server.

use crate::flow::FlowTarget;
use crate::maglev::{BuildError, MaglevTable, MaglevTarget};
use crate::steering::Steering;
use crate::wire::{IpProtocol, MacAddr};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_EPOCH: AtomicU64 = AtomicU64::new(1);

/// Which of dsrlb's addresses it answers ARP for (frames to any of them are
/// forwarded or answered either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpAnswers {
    /// The real address and every VIP: a lone appliance, or a pair's active.
    Every,
    /// The real address only: a router routes the VIPs to it (BGP scale-out).
    RealAddress,
    /// None: a pair's standby, whose peer holds the VIPs and the shared real address.
    Nothing,
}

impl ArpAnswers {
    /// Whether an ARP question for one of dsrlb's addresses is answered.
    pub fn answers(self, is_real_address: bool) -> bool {
        match self {
            ArpAnswers::Every => true,
            ArpAnswers::RealAddress => is_real_address,
            ArpAnswers::Nothing => false,
        }
    }
}

/// What the control plane knows of one target when it builds a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// Of its service's address family.
    pub addr: IpAddr,
    /// None until resolved (or configured): such a target gets no traffic.
    pub mac: Option<MacAddr>,
    /// 0 = drain: keeps its flows, gets no new ones.
    pub weight: u32,
    pub healthy: bool,
}

/// How a service keeps each flow on its target across changes of the table: the
/// config's own type (`services[].tracking`), so that no mapping can drift.
pub use config::Tracking;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub vip: IpAddr,
    /// Tcp or Udp.
    pub proto: IpProtocol,
    /// 0 = every port of that protocol.
    pub port: u16,
    pub targets: Vec<TargetSpec>,
    /// ICMP destination unreachable about the service's flows (fragmentation
    /// needed: path MTU discovery) goes to the flow's target; else it is dropped.
    pub forwards_icmp_errors: bool,
    pub tracking: Tracking,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSpec {
    pub real_addr: Ipv4Addr,
    /// The real address on IPv6, needed where a service is IPv6 (NDP resolves its
    /// targets from it).
    pub real_addr6: Option<Ipv6Addr>,
    /// Which of dsrlb's addresses it answers ARP for.
    pub arp_answers: ArpAnswers,
    pub seed: u64,
    pub table_size: u32,
    pub services: Vec<ServiceSpec>,
}

/// A target as the fast path sees it (its address, which the fast path never reads,
/// is `Snapshot::target_addr`: this stays 16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub mac: MacAddr,
    pub generation: u32,
    /// Known MAC and healthy: may carry the flows it already has (even at weight 0).
    pub usable: bool,
}

/// The address of a vacant slot.
const VACANT_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Slot of a target no longer configured: never usable.
const VACANT: Target = Target {
    mac: MacAddr::ZERO,
    generation: 0,
    usable: false,
};

/// A service's identity: IPv4 services order before IPv6 ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub vip: IpAddr,
    pub proto: u8,
    pub port: u16,
}

/// An IPv4 service's key in one word that orders as the key does (vip, then proto,
/// then port).
#[inline(always)]
pub fn packed_v4(vip: u32, proto: u8, port: u16) -> u64 {
    (u64::from(vip) << 32) | (u64::from(proto) << 16) | u64::from(port)
}

/// An IPv6 service's key, ordered as the key is: the VIP, then protocol and port.
#[inline(always)]
fn packed_v6(vip: u128, proto: u8, port: u16) -> (u128, u32) {
    (vip, (u32::from(proto) << 16) | u32::from(port))
}

/// Target slots run from 0 to `MAX_TARGET_SLOTS - 1`: per-slot counters can be
/// fixed arrays.
pub const MAX_TARGET_SLOTS: usize = u16::MAX as usize;
/// Service counter slots run from 0 to `MAX_SERVICE_SLOTS - 1`; flow keys name
/// the service by its slot.
pub const MAX_SERVICE_SLOTS: usize = 4096;
const _: () = assert!(MAX_SERVICE_SLOTS <= crate::flow::SERVICE_SLOTS);

#[derive(Debug, Clone)]
pub struct Service {
    pub key: ServiceKey,
    /// Position in `SnapshotSpec::services` (config order).
    pub index: usize,
    /// Where this service's counters live; kept across snapshots while the service
    /// stays configured (like target slots).
    pub slot: u16,
    /// Maglev slot -> target slot.
    table: MaglevTable,
    /// What `table` was built from: the candidates (identity and weight, 0 for a
    /// target that may not take new flows) in the order of `target_slots`.
    candidates: Vec<MaglevTarget>,
    /// Target slots of this service, in config order.
    pub target_slots: Vec<u16>,
    /// `ServiceSpec::forwards_icmp_errors`.
    pub forwards_icmp_errors: bool,
    pub tracking: Tracking,
    /// `Tracking::Changes`: the table with its marks (else empty).
    pub steering: Steering,
}

impl Service {
    /// The target for a new flow, None if no target may take new flows.
    #[inline(always)]
    pub fn pick(&self, flow_hash: u64, targets: &[Target]) -> Option<FlowTarget> {
        let slot = self.table.lookup(flow_hash)?;
        let target = targets.get(usize::from(slot))?;
        Some(FlowTarget {
            slot,
            generation: target.generation,
        })
    }

    pub fn table(&self) -> &MaglevTable {
        &self.table
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub generation: u64,
    /// Unique to this build in this process (clones share it: same content), so a
    /// worker can tell the snapshot it decided a frame under from any later one
    /// without holding on to it (see `SameFlowRun::carry_over`).
    epoch: u64,
    pub real_addr: Ipv4Addr,
    pub arp_answers: ArpAnswers,
    pub seed: u64,
    table_size: u32,
    /// Sorted by key.
    services: Vec<Service>,
    /// The IPv4 services' keys packed (`packed_v4`), same order (they come first
    /// in `services`): the binary search compares one word per step over a dense
    /// array.
    service_keys: Vec<u64>,
    /// The IPv6 services' keys (`packed_v6`), same order; they follow the IPv4 ones
    /// in `services`.
    service_keys6: Vec<(u128, u32)>,
    /// Sorted IPv4 VIPs, for ARP and ICMP.
    vips: Vec<u32>,
    /// Sorted IPv6 VIPs, for NDP and ICMPv6.
    vips6: Vec<u128>,
    pub real_addr6: Option<Ipv6Addr>,
    targets: Vec<Target>,
    /// Each target slot's address (the unspecified IPv4 address where vacant).
    target_addrs: Vec<IpAddr>,
    next_target_generation: u32,
}

impl Snapshot {
    /// Builds the next snapshot. Targets present in `previous` (same service, same
    /// address) keep their slot and generation.
    pub fn build(spec: &SnapshotSpec, previous: Option<&Snapshot>) -> Result<Snapshot, BuildError> {
        Self::build_settling(spec, previous, &|_| false)
    }

    /// `build`, clearing the marks (see `steering`) of the services `settle` names:
    /// the control thread has seen that no flow can depend on them any more.
    pub fn build_settling(
        spec: &SnapshotSpec,
        previous: Option<&Snapshot>,
        settle: &dyn Fn(ServiceKey) -> bool,
    ) -> Result<Snapshot, BuildError> {
        let mut kept: HashMap<(ServiceKey, IpAddr), (u16, u32)> = HashMap::new();
        let mut kept_services: HashMap<ServiceKey, u16> = HashMap::new();
        if let Some(prev) = previous {
            for service in &prev.services {
                kept_services.insert(service.key, service.slot);
                for &slot in &service.target_slots {
                    let t = &prev.targets[usize::from(slot)];
                    let addr = prev.target_addrs[usize::from(slot)];
                    kept.insert((service.key, addr), (slot, t.generation));
                }
            }
        }
        let mut next_generation = previous.map_or(1, |p| p.next_target_generation);
        // Tables of the previous snapshot that a service may keep: built with the
        // same size and seed (a MAC that moved changes no table).
        let reusable: HashMap<ServiceKey, &Service> = previous
            .filter(|p| p.seed == spec.seed && p.table_size == spec.table_size)
            .map(|p| p.services.iter().map(|s| (s.key, s)).collect())
            .unwrap_or_default();

        // First pass: which retained slots are taken, so new targets avoid them.
        let mut assigned: Vec<Vec<Option<(u16, u32)>>> = Vec::with_capacity(spec.services.len());
        let mut taken = std::collections::HashSet::new();
        for s in &spec.services {
            let key = service_key(s);
            let row: Vec<Option<(u16, u32)>> = s
                .targets
                .iter()
                .map(|t| kept.get(&(key, t.addr)).copied())
                .collect();
            taken.extend(row.iter().flatten().map(|&(slot, _)| slot));
            assigned.push(row);
        }
        let mut free_slots = (0u16..=u16::MAX - 1).filter(|s| !taken.contains(s));
        let services_taken: std::collections::HashSet<u16> = spec
            .services
            .iter()
            .filter_map(|s| kept_services.get(&service_key(s)).copied())
            .collect();
        let mut free_service_slots =
            (0..MAX_SERVICE_SLOTS as u16).filter(|s| !services_taken.contains(s));

        let mut targets: Vec<Target> = Vec::new();
        let mut target_addrs: Vec<IpAddr> = Vec::new();
        let mut services = Vec::with_capacity(spec.services.len());
        for (service_index, (s, row)) in spec.services.iter().zip(assigned).enumerate() {
            let key = service_key(s);
            let mut target_slots = Vec::with_capacity(s.targets.len());
            let mut candidates = Vec::with_capacity(s.targets.len());
            for (t, slot_gen) in s.targets.iter().zip(row) {
                let (slot, generation) = match slot_gen {
                    Some(sg) => sg,
                    None => {
                        let slot = free_slots
                            .next()
                            .ok_or(BuildError::TooManyTargets(usize::from(u16::MAX)))?;
                        next_generation = next_generation.wrapping_add(1).max(1);
                        (slot, next_generation)
                    }
                };
                let index = usize::from(slot);
                if targets.len() <= index {
                    targets.resize(index + 1, VACANT);
                    target_addrs.resize(index + 1, VACANT_ADDR);
                }
                target_addrs[index] = t.addr;
                let usable = t.healthy && t.mac.is_some();
                targets[index] = Target {
                    mac: t.mac.unwrap_or(MacAddr::ZERO),
                    generation,
                    usable,
                };
                target_slots.push(slot);
                candidates.push(MaglevTarget {
                    identity: identity(t.addr),
                    weight: if usable { t.weight } else { 0 },
                });
            }
            let table = match reusable.get(&key) {
                // Same candidates in the same slots, same size and seed: the same table.
                Some(prev)
                    if prev.candidates == candidates && prev.target_slots == target_slots =>
                {
                    prev.table.clone()
                }
                _ => MaglevTable::build(&candidates, spec.table_size, spec.seed)?
                    .remap(&target_slots),
            };
            let steering = match s.tracking {
                Tracking::Changes => {
                    let before = reusable.get(&key).zip(previous).map(|(service, snapshot)| {
                        (&service.steering, snapshot.targets.as_slice())
                    });
                    Steering::build(&table, before, settle(key))
                }
                Tracking::Full | Tracking::None => Steering::empty(),
            };
            let slot = match kept_services.get(&key) {
                Some(&slot) => slot,
                None => free_service_slots
                    .next()
                    .ok_or(BuildError::TooManyServices(MAX_SERVICE_SLOTS))?,
            };
            services.push(Service {
                key,
                index: service_index,
                slot,
                table,
                candidates,
                target_slots,
                forwards_icmp_errors: s.forwards_icmp_errors,
                tracking: s.tracking,
                steering,
            });
        }
        services.sort_by_key(|s| s.key);
        let (mut service_keys, mut service_keys6) = (Vec::new(), Vec::new());
        let (mut vips, mut vips6) = (Vec::new(), Vec::new());
        for s in &services {
            match s.key.vip {
                IpAddr::V4(vip) => {
                    service_keys.push(packed_v4(vip.into(), s.key.proto, s.key.port));
                    vips.push(u32::from(vip));
                }
                IpAddr::V6(vip) => {
                    service_keys6.push(packed_v6(vip.into(), s.key.proto, s.key.port));
                    vips6.push(u128::from(vip));
                }
            }
        }
        vips.dedup();
        vips6.dedup();
        Ok(Snapshot {
            generation: previous.map_or(1, |p| p.generation + 1),
            epoch: NEXT_EPOCH.fetch_add(1, Ordering::Relaxed),
            real_addr: spec.real_addr,
            arp_answers: spec.arp_answers,
            seed: spec.seed,
            table_size: spec.table_size,
            services,
            service_keys,
            service_keys6,
            vips,
            vips6,
            real_addr6: spec.real_addr6,
            targets,
            target_addrs,
            next_target_generation: next_generation,
        })
    }

    /// The service for a packet: exact port first, then the VIP's any-port service.
    #[inline(always)]
    pub fn service(&self, vip: u32, proto: u8, port: u16) -> Option<&Service> {
        let key = |port| packed_v4(vip, proto, port);
        self.find_service(&self.service_keys, 0, key, port)
    }

    /// `service` for an IPv6 packet.
    pub fn service6(&self, vip: u128, proto: u8, port: u16) -> Option<&Service> {
        let key = |port| packed_v6(vip, proto, port);
        let first = self.service_keys.len();
        self.find_service(&self.service_keys6, first, key, port)
    }

    /// `port`'s key, else the any-port one, in `keys` (the packed keys of
    /// `services[first..]`).
    #[inline(always)]
    fn find_service<K: Ord>(
        &self,
        keys: &[K],
        first: usize,
        key: impl Fn(u16) -> K,
        port: u16,
    ) -> Option<&Service> {
        let find = |port| keys.binary_search(&key(port)).ok();
        find(port)
            .or_else(|| find(0))
            .and_then(|i| self.services.get(first + i))
    }

    #[inline(always)]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// What `service`'s choices depend on, in 64 bits: the seed, the table size,
    /// the candidates (identity, weight) and every Maglev slot's target address.
    /// Two appliances with the same config and the same view of their targets have
    /// the same digest, and choose the same target for every new flow.
    pub fn digest(&self, service: &Service) -> u64 {
        let mut h = crate::hash::Fnv1a::default();
        h.eat(&self.seed.to_be_bytes());
        h.eat(&self.table_size.to_be_bytes());
        for c in &service.candidates {
            h.eat(&c.identity.to_be_bytes());
            h.eat(&c.weight.to_be_bytes());
        }
        for &slot in service.table.slots() {
            match self.target_addr(slot) {
                Some(IpAddr::V4(addr)) => h.eat(&addr.octets()),
                Some(IpAddr::V6(addr)) => h.eat(&addr.octets()),
                None => h.eat(&[0; 4]),
            }
        }
        h.finish()
    }

    #[inline(always)]
    pub fn is_vip(&self, addr: u32) -> bool {
        self.vips.binary_search(&addr).is_ok()
    }

    pub fn is_vip6(&self, addr: u128) -> bool {
        self.vips6.binary_search(&addr).is_ok()
    }

    /// The target a flow is pinned to, if that is still the same target and usable.
    #[inline(always)]
    pub fn usable_target(&self, pinned: FlowTarget) -> Option<&Target> {
        self.targets
            .get(usize::from(pinned.slot))
            .filter(|t| t.usable && t.generation == pinned.generation)
    }

    #[inline(always)]
    pub fn target(&self, slot: u16) -> Option<&Target> {
        self.targets.get(usize::from(slot))
    }

    /// The address of the target in `slot`.
    pub fn target_addr(&self, slot: u16) -> Option<IpAddr> {
        self.target_addrs.get(usize::from(slot)).copied()
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }
}

/// A target's identity in its service's Maglev table: its address (an IPv4 one as
/// it always was, so that tables built before IPv6 stay the same).
fn identity(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(addr) => u64::from(u32::from(addr)),
        IpAddr::V6(addr) => {
            let mut h = crate::hash::Fnv1a::default();
            h.eat(&addr.octets());
            h.finish()
        }
    }
}

fn service_key(s: &ServiceSpec) -> ServiceKey {
    ServiceKey {
        vip: s.vip,
        proto: u8::from(s.proto),
        port: s.port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(last: u8, healthy: bool) -> TargetSpec {
        TargetSpec {
            addr: IpAddr::V4(Ipv4Addr::new(10, 99, 0, last)),
            mac: Some(MacAddr([2, 0, 0, 0, 0, last])),
            weight: 1,
            healthy,
        }
    }

    fn spec(targets: Vec<TargetSpec>) -> SnapshotSpec {
        SnapshotSpec {
            real_addr: Ipv4Addr::new(10, 99, 0, 2),
            real_addr6: None,
            arp_answers: ArpAnswers::Every,
            seed: 0,
            table_size: 251,
            services: vec![
                ServiceSpec {
                    forwards_icmp_errors: true,
                    tracking: Default::default(),
                    vip: IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)),
                    proto: IpProtocol::Tcp,
                    port: 80,
                    targets: targets.clone(),
                },
                ServiceSpec {
                    forwards_icmp_errors: true,
                    tracking: Default::default(),
                    vip: IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)),
                    proto: IpProtocol::Udp,
                    port: 0,
                    targets,
                },
            ],
        }
    }

    const VIP: u32 = 0x0a63_0064;

    #[test]
    fn the_digest_is_the_same_wherever_the_tables_are_the_same() {
        let digests = |snap: &Snapshot| -> Vec<u64> {
            snap.services().iter().map(|s| snap.digest(s)).collect()
        };
        let two = spec(vec![target(11, true), target(12, true)]);
        let here = Snapshot::build(&two, None).unwrap();
        let there = Snapshot::build(&two, None).unwrap();
        assert_eq!(
            digests(&here),
            digests(&there),
            "two appliances, one config"
        );
        // Built over a previous snapshot with other slots: the same choices.
        let one = Snapshot::build(&spec(vec![target(12, true)]), None).unwrap();
        let after = Snapshot::build(&two, Some(&one)).unwrap();
        assert_eq!(digests(&after), digests(&here));
        let down = Snapshot::build(&spec(vec![target(11, true), target(12, false)]), None).unwrap();
        assert_ne!(
            digests(&down),
            digests(&here),
            "a target down changes the choices"
        );
        let mut seeded = two.clone();
        seeded.seed = 7;
        assert_ne!(
            digests(&Snapshot::build(&seeded, None).unwrap()),
            digests(&here)
        );
    }

    #[test]
    fn a_rebuild_keeps_every_table_its_change_does_not_touch() {
        let shared = |a: &Snapshot, b: &Snapshot| -> Vec<bool> {
            a.services()
                .iter()
                .zip(b.services())
                .map(|(x, y)| x.table().shares(y.table()))
                .collect()
        };
        let first = Snapshot::build(&spec(vec![target(11, true), target(12, true)]), None).unwrap();
        // A target's MAC moved: no table is built again.
        let mut moved = spec(vec![target(11, true), target(12, true)]);
        moved.services[0].targets[0].mac = Some(MacAddr([2, 0, 0, 0, 0, 0x99]));
        let second = Snapshot::build(&moved, Some(&first)).unwrap();
        assert_eq!(shared(&first, &second), [true, true]);
        assert_eq!(second.targets()[0].mac, MacAddr([2, 0, 0, 0, 0, 0x99]));
        // A target of the TCP service only goes down: that table alone is rebuilt.
        let mut down = moved.clone();
        down.services[0].targets[1].healthy = false;
        let third = Snapshot::build(&down, Some(&second)).unwrap();
        let tcp_first = |s: &Snapshot| s.services().iter().position(|x| x.key.proto == 6).unwrap();
        let kept = shared(&second, &third);
        assert!(
            !kept[tcp_first(&third)] && kept[1 - tcp_first(&third)],
            "{kept:?}"
        );
        // Another seed: every table is new.
        let mut reseeded = down.clone();
        reseeded.seed = 7;
        let fourth = Snapshot::build(&reseeded, Some(&third)).unwrap();
        assert_eq!(shared(&third, &fourth), [false, false]);
    }

    #[test]
    fn packed_service_keys_order_as_the_keys_do() {
        let values = |n: u32| [0, 1, n / 2, n - 1, n];
        let mut keys = Vec::new();
        let vips4 = values(u32::MAX).map(|v| IpAddr::V4(v.into()));
        let vips6 = [0, 1, u128::MAX / 2, u128::MAX - 1, u128::MAX].map(|v| IpAddr::V6(v.into()));
        for vip in vips4.into_iter().chain(vips6) {
            for proto in values(u32::from(u8::MAX)) {
                for port in values(u32::from(u16::MAX)) {
                    keys.push(ServiceKey {
                        vip,
                        proto: proto as u8,
                        port: port as u16,
                    });
                }
            }
        }
        let packed = |k: &ServiceKey| match k.vip {
            IpAddr::V4(vip) => (0, u128::from(packed_v4(vip.into(), k.proto, k.port)), 0),
            IpAddr::V6(vip) => {
                let (vip, rest) = packed_v6(vip.into(), k.proto, k.port);
                (1, vip, rest)
            }
        };
        for a in &keys {
            for b in &keys {
                assert_eq!(a.cmp(b), packed(a).cmp(&packed(b)), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn service_lookup_exact_then_any_port() {
        let snap = Snapshot::build(&spec(vec![target(11, true)]), None).unwrap();
        assert_eq!(snap.service(VIP, 6, 80).unwrap().key.port, 80);
        assert!(snap.service(VIP, 6, 81).is_none());
        assert_eq!(snap.service(VIP, 17, 5353).unwrap().key.port, 0);
        assert!(snap.service(VIP + 1, 6, 80).is_none());
        assert!(snap.is_vip(VIP) && !snap.is_vip(VIP + 1));
    }

    #[test]
    fn unusable_targets_get_no_slots() {
        let mut no_mac = target(12, true);
        no_mac.mac = None;
        let snap = Snapshot::build(
            &spec(vec![target(11, true), no_mac, target(13, false)]),
            None,
        )
        .unwrap();
        let service = snap.service(VIP, 6, 80).unwrap();
        let only = service.target_slots[0];
        assert!(service.table().slots().iter().all(|&s| s == only));
        assert!(!snap.target(service.target_slots[1]).unwrap().usable);
        assert!(!snap.target(service.target_slots[2]).unwrap().usable);
    }

    #[test]
    fn retained_targets_keep_slot_and_generation() {
        let first = Snapshot::build(&spec(vec![target(11, true), target(12, true)]), None).unwrap();
        let s1 = first.service(VIP, 6, 80).unwrap().target_slots.clone();
        let second = Snapshot::build(
            &spec(vec![target(12, true), target(14, true)]),
            Some(&first),
        )
        .unwrap();
        let s2 = second.service(VIP, 6, 80).unwrap().target_slots.clone();
        assert_eq!(s2[0], s1[1], "10.99.0.12 keeps its slot");
        assert_eq!(
            second.target(s2[0]).unwrap().generation,
            first.target(s1[1]).unwrap().generation
        );
        // 10.99.0.14 may reuse 10.99.0.11's slot, but never its generation.
        let pinned_to_11 = FlowTarget {
            slot: s1[0],
            generation: first.target(s1[0]).unwrap().generation,
        };
        assert!(second.usable_target(pinned_to_11).is_none());
        assert_eq!(second.generation, first.generation + 1);
    }

    #[test]
    fn services_keep_their_counter_slot_and_new_ones_take_a_free_one() {
        let first = Snapshot::build(&spec(vec![target(11, true)]), None).unwrap();
        let tcp = first.service(VIP, 6, 80).unwrap().slot;
        let udp = first.service(VIP, 17, 0).unwrap().slot;
        assert_ne!(tcp, udp);
        let mut next = spec(vec![target(11, true)]);
        next.services.remove(1);
        next.services.insert(
            0,
            ServiceSpec {
                forwards_icmp_errors: true,
                tracking: Default::default(),
                vip: IpAddr::V4(Ipv4Addr::new(10, 99, 0, 101)),
                proto: IpProtocol::Tcp,
                port: 80,
                targets: vec![target(11, true)],
            },
        );
        let second = Snapshot::build(&next, Some(&first)).unwrap();
        assert_eq!(second.service(VIP, 6, 80).unwrap().slot, tcp, "kept");
        let added = second.service(VIP + 1, 6, 80).unwrap().slot;
        assert_ne!(added, tcp, "a new service never shares a live slot");
        assert!(usize::from(added) < MAX_SERVICE_SLOTS);
    }

    #[test]
    fn all_down_means_empty_table() {
        let snap = Snapshot::build(&spec(vec![target(11, false)]), None).unwrap();
        assert!(snap
            .service(VIP, 6, 80)
            .unwrap()
            .pick(42, snap.targets())
            .is_none());
    }
}
