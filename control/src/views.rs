//! What `dsrlb show` and the metrics report, built from the control state and the
//! dataplane's counters.

use crate::accounting::Totals;
use crate::api::{
    AdminAction, ArpView, Choice, DigestView, DoctorTarget, DoctorView, FlowsAsked, FluxView,
    PortView, ProbeView, ServerView, ServiceDigest, StatsView, TargetView, WorkerView,
    WHICH_RANDOM_MAX,
};
use crate::appliance::Appliance;
use crate::doctor::PathFinding;
use crate::health::Health;
use crate::neighbors::MacSource;
use crate::runtime::Dataplane;
use dataplane::counters::COUNTERS;
use dataplane::flow::FlowKey;
use dataplane::forward::DropReason;
use dataplane::hash::{flow_hash, Fnv1a};
use dataplane::snapshot::{Service, Snapshot};
use dataplane::wire::IpProtocol;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

/// The snapshot's service for each config service, by config index.
fn services_by_index<'a>(app: &Appliance, snapshot: &'a Snapshot) -> Vec<Option<&'a Service>> {
    let mut by_index = vec![None; app.config.services.len()];
    for s in snapshot.services() {
        if let Some(slot) = by_index.get_mut(s.index) {
            *slot = Some(s);
        }
    }
    by_index
}

pub(crate) fn targets(app: &Appliance, dp: &dyn Dataplane) -> Vec<TargetView> {
    let snapshot = dp.snapshot();
    targets_by_service(app, dp, &services_by_index(app, &snapshot))
        .into_iter()
        .flatten()
        .collect()
}

/// One list of target views per config service.
fn targets_by_service(
    app: &Appliance,
    dp: &dyn Dataplane,
    services: &[Option<&Service>],
) -> Vec<Vec<TargetView>> {
    let totals = Totals(dp.workers());
    app.config
        .services
        .iter()
        .enumerate()
        .map(|(si, service)| {
            let slots = services.get(si).copied().flatten().map(|s| &s.target_slots);
            let slot = |ti: usize| slots.and_then(|s| s.get(ti).copied());
            service
                .targets
                .iter()
                .enumerate()
                .map(|(ti, target)| target_view(app, &totals, si, target, slot(ti)))
                .collect()
        })
        .collect()
}

/// Target `target` of config service `si`, counted in snapshot slot `slot` if it has one.
fn target_view(
    app: &Appliance,
    totals: &Totals,
    si: usize,
    target: &config::Target,
    slot: Option<u16>,
) -> TargetView {
    let service = &app.config.services[si];
    let addr = target.address;
    let health = app.health_of(si, addr);
    let probed = service.health.is_some();
    let mac = app.neighbors.mac(addr);
    let state = match (app.admin.get(&addr).copied(), mac, health) {
        (Some(AdminAction::Disable), _, _) => "disabled",
        (_, None, _) => "no-mac",
        (_, _, Health::Down) => "down",
        _ if !app.doctor.passes(si, addr) => "dsr-down",
        (Some(AdminAction::Drain), _, _) => "drain",
        (_, _, Health::Unknown) if probed => "unknown",
        _ => "up",
    };
    let traffic = slot
        .map(|slot| app.accounting.target(slot, totals))
        .unwrap_or_default();
    TargetView {
        service: service.label(),
        address: addr,
        mac: mac.map(|m| m.to_string()),
        mac_source: match app.neighbors.source(addr) {
            Some(MacSource::Static) => "static",
            Some(MacSource::Arp) if addr.is_ipv6() => "ndp",
            Some(MacSource::Arp) => "arp",
            None => "unresolved",
        }
        .to_owned(),
        state: state.to_owned(),
        health: if probed {
            health.to_string()
        } else {
            "unprobed".to_owned()
        },
        weight: target.weight,
        last_probe: last_probe(app, si, addr),
        active_flows: slot.map_or(0, |slot| totals.target_flows(slot)),
        packets: traffic.packets,
        bytes: traffic.bytes,
        mac_conflict: app
            .neighbors
            .conflict(addr)
            .map(|(_, other)| other.to_string()),
    }
}

fn last_probe(app: &Appliance, si: usize, addr: IpAddr) -> Option<ProbeView> {
    let i = app.probed.iter().position(|&key| key == (si, addr))?;
    let last = app.prober.last(i)?;
    let seconds = |d: Result<std::time::Duration, _>| d.map_or(0, |d| d.as_secs());
    Some(ProbeView {
        result: match &last.outcome {
            Ok(()) => "ok".to_owned(),
            Err(failure) => failure.to_string(),
        },
        at_unix: seconds(last.at.duration_since(UNIX_EPOCH)),
        ago_secs: seconds(SystemTime::now().duration_since(last.at)),
    })
}

pub(crate) fn servers(app: &Appliance, dp: &dyn Dataplane) -> Vec<ServerView> {
    servers_and_targets(app, dp).0
}

/// Both views from one reading of the snapshot and the counters.
pub(crate) fn servers_and_targets(
    app: &Appliance,
    dp: &dyn Dataplane,
) -> (Vec<ServerView>, Vec<TargetView>) {
    let totals = Totals(dp.workers());
    let snapshot = dp.snapshot();
    let services = services_by_index(app, &snapshot);
    let targets = targets_by_service(app, dp, &services);
    let servers = app
        .config
        .services
        .iter()
        .zip(&services)
        .zip(&targets)
        .map(|((s, in_snapshot), mine)| {
            let (traffic, counts) = match in_snapshot {
                Some(service) => (
                    app.accounting
                        .service(service.key, &service.target_slots, &totals),
                    app.accounting
                        .service_counts(service.key, service.slot, &totals),
                ),
                None => Default::default(),
            };
            ServerView {
                service: s.label(),
                name: s.name.clone(),
                vip: s.vip,
                port: s.port,
                protocol: s.protocol.to_string(),
                targets_up: mine
                    .iter()
                    .filter(|t| matches!(t.state.as_str(), "up" | "unknown") && t.weight > 0)
                    .count(),
                targets_total: mine.len(),
                packets: traffic.packets,
                bytes: traffic.bytes,
                drops: counts.drops,
                icmp_errors: counts.icmp_errors,
                active_flows: mine.iter().map(|t| t.active_flows).sum(),
            }
        })
        .collect();
    (servers, targets.into_iter().flatten().collect())
}

/// A row a worker: every counter by name, every drop reason.
pub(crate) fn workers(dp: &dyn Dataplane) -> Vec<WorkerView> {
    dp.workers()
        .iter()
        .map(|w| {
            let c = w.stats.read();
            WorkerView {
                lcore: w.lcore,
                port: w.port_name.clone(),
                queue: w.queue,
                counters: COUNTERS
                    .iter()
                    .zip(c.counts.values())
                    .map(|(spec, value)| (spec.name.to_owned(), value))
                    .collect(),
                drops: DropReason::ALL
                    .iter()
                    .map(|r| (r.name().to_owned(), c.drop_count(*r)))
                    .collect(),
            }
        })
        .collect()
}

pub(crate) fn stats(app: &Appliance, dp: &dyn Dataplane) -> StatsView {
    let workers = workers(dp);
    let ports = dp
        .port_stats()
        .into_iter()
        .map(|reading| {
            let s = reading.stats.unwrap_or_default();
            PortView {
                name: reading.name,
                mac: reading.mac.to_string(),
                rx_packets: s.rx_packets,
                tx_packets: s.tx_packets,
                rx_missed: s.rx_missed,
                rx_errors: s.rx_errors,
                tx_errors: s.tx_errors,
                rx_no_mbuf: s.rx_no_mbuf,
                ring_drops: reading.ring_drops,
            }
        })
        .collect();
    StatsView {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_secs: app.started.elapsed().as_secs(),
        config: app.config_path.display().to_string(),
        snapshot_generation: dp.snapshot().generation,
        reloads: app.reloads,
        reloads_failed: app.reloads_refused,
        workers,
        ports,
        mempool_in_use: u64::from(dp.mbufs_in_use()),
        mempool_size: u64::from(app.config.dataplane.mbufs),
        arp: ArpView {
            ignored: (app.arp.ignored.iter())
                .map(|(why, n)| (why.name().to_owned(), *n))
                .collect(),
            conflicts: app.arp.conflicts,
            address_claims: app.arp.address_claims,
        },
    }
}

/// `dsrlb doctor`: each target's in-path finding, whether it answers ARP for its
/// VIP, its MAC and management probe, and what to do about what is wrong.
pub(crate) fn doctor(app: &Appliance) -> DoctorView {
    let now = std::time::Instant::now();
    let doctor = &app.doctor;
    let real = app.config.appliance.address;
    let targets = doctor
        .paths(now)
        .into_iter()
        .map(|p| {
            let service = app.config.services.iter().position(|s| s.label() == p.service);
            let probed = service
                .and_then(|si| app.config.services.get(si).map(|s| (si, s.health.is_some())));
            let management_probe = match probed {
                Some((si, true)) => app.health_of(si, p.target.into()).to_string(),
                _ => "none".to_owned(),
            };
            let mac = app.neighbors.mac(p.target.into());
            let answers_arp_for_vip = mac
                .is_some_and(|m| doctor.flux_for(p.vip, now).iter().any(|(f, _)| *f == m));
            let (vip_on_loopback, listening_on_vip) = match p.finding {
                PathFinding::Answers => (Some(true), Some(true)),
                PathFinding::Refused => (Some(true), Some(false)),
                PathFinding::Silent => (Some(false), None),
                PathFinding::Unknown => (None, None),
            };
            let mut advice = Vec::new();
            if matches!(p.finding, PathFinding::Refused | PathFinding::Silent) {
                advice.push(p.finding.explain(p.vip, p.port, real));
            }
            if answers_arp_for_vip {
                advice.push(format!(
                    "answers ARP for {}: set net.ipv4.conf.all.arp_ignore=1 and arp_announce=2 on it (scripts/target-setup.sh {})",
                    p.vip, p.vip
                ));
            }
            DoctorTarget {
                service: p.service,
                target: p.target,
                mac: mac.map_or_else(|| "-".to_owned(), |m| m.to_string()),
                vip: p.vip,
                port: p.port,
                path: p.finding,
                path_for_secs: p.for_secs,
                vip_on_loopback,
                listening_on_vip,
                answers_arp_for_vip,
                management_probe,
                dsr_check: p.check_passes,
                advice,
            }
        })
        .collect();
    let arp_flux = (app.config.vips_v4().into_iter())
        .flat_map(|vip| {
            doctor
                .flux_for(vip, now)
                .into_iter()
                .map(move |(mac, answers)| FluxView {
                    vip,
                    mac: mac.to_string(),
                    target: app.neighbors.holder_of(mac, vip.into()),
                    answers,
                })
        })
        .collect();
    DoctorView {
        targets,
        arp_flux,
        probes_sent: doctor.probes_sent,
        answers: doctor.answers,
    }
}

/// `dsrlb show digest`: each service's table digest (`Snapshot::digest`) and what
/// it was built from, and one digest of them all.
pub(crate) fn digest(app: &Appliance, dp: &dyn Dataplane) -> DigestView {
    let snapshot = dp.snapshot();
    let services = services_by_index(app, &snapshot);
    let mut all = Fnv1a::default();
    let services = (app.config.services.iter().zip(services))
        .filter_map(|(config, service)| {
            let service = service?;
            let digest = snapshot.digest(service);
            all.eat(&digest.to_be_bytes());
            let mut targets: Vec<_> = (service.table().slots().iter())
                .filter_map(|&slot| snapshot.target_addr(slot))
                .collect();
            targets.sort();
            targets.dedup();
            Some(ServiceDigest {
                service: config.label(),
                seed: snapshot.seed,
                table_size: service.table().len(),
                targets,
                digest: format!("{digest:016x}"),
            })
        })
        .collect();
    DigestView {
        digest: format!("{:016x}", all.finish()),
        services,
    }
}

/// `dsrlb which-target`: the target each flow would get as a new flow, and why.
pub(crate) fn choices(
    dp: &dyn Dataplane,
    vip: Ipv4Addr,
    port: u16,
    protocol: config::Protocol,
    flows: &FlowsAsked,
) -> Result<Vec<Choice>, String> {
    let snapshot = dp.snapshot();
    let proto = match protocol {
        config::Protocol::Tcp => IpProtocol::Tcp,
        config::Protocol::Udp => IpProtocol::Udp,
    };
    let asked: Vec<(Ipv4Addr, u16)> = match *flows {
        FlowsAsked::One { src, sport } => vec![(src, sport)],
        FlowsAsked::Random { count, .. } if count > WHICH_RANDOM_MAX => {
            return Err(format!(
                "at most {WHICH_RANDOM_MAX} random flows, not {count}"
            ));
        }
        FlowsAsked::Random { count, seed } => random_flows(count, seed),
    };
    let service = snapshot.service(u32::from(vip), u8::from(proto), port);
    // A random flow is a new one: no table is asked about it.
    let ask_tables = matches!(flows, FlowsAsked::One { .. });
    asked
        .into_iter()
        .map(|(src, sport)| {
            let Some(service) = service else {
                return Ok(Choice {
                    src,
                    sport,
                    target: None,
                    why: "no service".to_owned(),
                });
            };
            let hash = flow_hash(
                u32::from(src),
                u32::from(vip),
                sport,
                port,
                proto.into(),
                snapshot.seed,
            );
            let key = FlowKey::new(u32::from(src), sport, port, service.slot);
            let pinned = if ask_tables {
                dp.pinned(key, hash)?
            } else {
                None
            };
            let kept = pinned.filter(|&(_, t)| snapshot.usable_target(t).is_some());
            let (target, why) = match kept {
                Some((lcore, t)) => (
                    snapshot.target_addr(t.slot),
                    format!("flow table of the worker on lcore {lcore}"),
                ),
                None => {
                    let picked = service.pick(hash, snapshot.targets());
                    match picked.filter(|&p| snapshot.usable_target(p).is_some()) {
                        Some(t) => (
                            snapshot.target_addr(t.slot),
                            format!("maglev slot {}", service.table().slot_of(hash)),
                        ),
                        None => (None, "no usable target".to_owned()),
                    }
                }
            };
            Ok(Choice {
                src,
                sport,
                target,
                why,
            })
        })
        .collect()
}

/// `count` flows from addresses and ports drawn from `seed` (xorshift): the same
/// flows on every appliance.
fn random_flows(count: u32, seed: u64) -> Vec<(Ipv4Addr, u16)> {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (Ipv4Addr::from((x >> 32) as u32), (x as u16).max(1))
        })
        .collect()
}
