//! What `dsrlb show` and the metrics report, built from the control loop's state.

use crate::accounting::Totals;
use crate::api::{AdminAction, PortView, ProbeView, ServerView, StatsView, TargetView, WorkerView};
use crate::health::Health;
use crate::neighbors::MacSource;
use crate::run::Appliance;
use dataplane::counters::COUNTERS;
use dataplane::forward::DropReason;
use dataplane::snapshot::{Service, Snapshot};
use std::time::{SystemTime, UNIX_EPOCH};

impl Appliance {
    /// The snapshot's service for each config service, by config index.
    fn services_by_index<'a>(&self, snapshot: &'a Snapshot) -> Vec<Option<&'a Service>> {
        let mut by_index = vec![None; self.config.services.len()];
        for s in snapshot.services() {
            if let Some(slot) = by_index.get_mut(s.index) {
                *slot = Some(s);
            }
        }
        by_index
    }

    pub(crate) fn targets_view(&self) -> Vec<TargetView> {
        let snapshot = self.publisher.current();
        self.targets_by_service(&self.services_by_index(&snapshot))
            .into_iter()
            .flatten()
            .collect()
    }

    /// One list of target views per config service.
    fn targets_by_service(&self, services: &[Option<&Service>]) -> Vec<Vec<TargetView>> {
        let totals = Totals(&self.workers);
        let now = SystemTime::now();
        let mut views = Vec::new();
        for (si, service) in self.config.services.iter().enumerate() {
            let slots = services.get(si).copied().flatten().map(|s| &s.target_slots);
            let mut rows = Vec::new();
            let probed = service.health.is_some();
            for (ti, target) in service.targets.iter().enumerate() {
                let addr = target.address;
                let health = self.health_of(si, addr);
                let admin = self.admin.get(&addr).copied();
                let mac = self.neighbors.mac(addr);
                let state = match (admin, mac, health) {
                    (Some(AdminAction::Disable), _, _) => "disabled",
                    (_, None, _) => "no-mac",
                    (_, _, Health::Down) => "down",
                    (Some(AdminAction::Drain), _, _) => "drain",
                    (_, _, Health::Unknown) if probed => "unknown",
                    _ => "up",
                };
                let last_probe = self
                    .probed
                    .iter()
                    .position(|&key| key == (si, addr))
                    .and_then(|i| self.prober.last(i))
                    .map(|last| ProbeView {
                        result: match &last.outcome {
                            Ok(()) => "ok".to_owned(),
                            Err(failure) => failure.to_string(),
                        },
                        at_unix: last
                            .at
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs()),
                        ago_secs: now.duration_since(last.at).map_or(0, |d| d.as_secs()),
                    });
                let slot = slots.and_then(|s| s.get(ti).copied());
                let traffic = slot
                    .map(|slot| self.accounting.target(slot, &totals))
                    .unwrap_or_default();
                rows.push(TargetView {
                    service: service.label(),
                    address: addr,
                    mac: mac.map(|m| m.to_string()),
                    mac_source: match self.neighbors.source(addr) {
                        Some(MacSource::Static) => "static",
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
                    last_probe,
                    active_flows: slot.map_or(0, |slot| totals.target_flows(slot)),
                    packets: traffic.packets,
                    bytes: traffic.bytes,
                });
            }
            views.push(rows);
        }
        views
    }

    pub(crate) fn servers_view(&self) -> Vec<ServerView> {
        self.servers_and_targets().0
    }

    /// Both views from one reading of the snapshot and the counters.
    pub(crate) fn servers_and_targets(&self) -> (Vec<ServerView>, Vec<TargetView>) {
        let totals = Totals(&self.workers);
        let snapshot = self.publisher.current();
        let services = self.services_by_index(&snapshot);
        let targets = self.targets_by_service(&services);
        let servers = self
            .config
            .services
            .iter()
            .zip(&services)
            .zip(&targets)
            .map(|((s, in_snapshot), mine)| {
                let (traffic, drops) = match in_snapshot {
                    Some(service) => (
                        self.accounting
                            .service(service.key, &service.target_slots, &totals),
                        self.accounting
                            .service_drops(service.key, service.slot, &totals),
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
                    drops,
                    active_flows: mine.iter().map(|t| t.active_flows).sum(),
                }
            })
            .collect();
        (servers, targets.into_iter().flatten().collect())
    }

    /// A row a worker: every counter by name, every drop reason.
    pub(crate) fn workers_view(&self) -> Vec<WorkerView> {
        self.workers
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

    pub(crate) fn stats_view(&self) -> StatsView {
        let workers = self.workers_view();
        let ports = self
            .ports
            .iter()
            .map(|p| {
                let s = p.port.stats().unwrap_or_default();
                PortView {
                    name: p.name.clone(),
                    mac: p.mac.to_string(),
                    rx_packets: s.rx_packets,
                    tx_packets: s.tx_packets,
                    rx_missed: s.rx_missed,
                    rx_errors: s.rx_errors,
                    tx_errors: s.tx_errors,
                    rx_no_mbuf: s.rx_no_mbuf,
                }
            })
            .collect();
        StatsView {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: self.started.elapsed().as_secs(),
            config: self.config_path.display().to_string(),
            snapshot_generation: self.publisher.current().generation,
            reloads: self.reloads,
            reloads_failed: self.reloads_refused,
            workers,
            ports,
            mempool_in_use: u64::from(self.pool.in_use()),
            mempool_size: u64::from(self.config.dataplane.mbufs),
        }
    }
}
