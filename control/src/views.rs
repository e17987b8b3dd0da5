//! What `dsrlb show` and the metrics report, built from the control loop's state.

use crate::accounting::Totals;
use crate::api::{AdminAction, PortView, ProbeView, ServerView, StatsView, TargetView, WorkerView};
use crate::health::Health;
use crate::neighbors::MacSource;
use crate::run::Appliance;
use dataplane::forward::DropReason;
use dataplane::snapshot::ServiceKey;
use std::time::{SystemTime, UNIX_EPOCH};

impl Appliance {
    /// The service key of config service `index`, as the snapshot has it.
    fn service_key(&self, index: usize) -> Option<(ServiceKey, u16, Vec<u16>)> {
        let snapshot = self.publisher.current();
        snapshot
            .services()
            .iter()
            .find(|s| s.index == index)
            .map(|s| (s.key, s.slot, s.target_slots.clone()))
    }

    pub(crate) fn targets_view(&self) -> Vec<TargetView> {
        let totals = Totals(&self.workers);
        let now = SystemTime::now();
        let mut views = Vec::new();
        for (si, service) in self.config.services.iter().enumerate() {
            let slots = self.service_key(si).map(|(_, _, slots)| slots);
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
                let slot = slots.as_ref().and_then(|s| s.get(ti).copied());
                let traffic = slot
                    .map(|slot| self.accounting.target(slot, &totals))
                    .unwrap_or_default();
                views.push(TargetView {
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
        }
        views
    }

    pub(crate) fn servers_view(&self) -> Vec<ServerView> {
        let totals = Totals(&self.workers);
        let targets = self.targets_view();
        self.config
            .services
            .iter()
            .enumerate()
            .map(|(si, s)| {
                let label = s.label();
                let mine: Vec<&TargetView> =
                    targets.iter().filter(|t| t.service == label).collect();
                let (traffic, drops) = match self.service_key(si) {
                    Some((key, slot, slots)) => (
                        self.accounting.service(key, &slots, &totals),
                        self.accounting.service_drops(key, slot, &totals),
                    ),
                    None => Default::default(),
                };
                ServerView {
                    service: label.clone(),
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
            .collect()
    }

    pub(crate) fn stats_view(&self) -> StatsView {
        let workers = self
            .workers
            .iter()
            .map(|w| {
                let c = w.stats.read();
                WorkerView {
                    lcore: w.lcore,
                    port: w.port_name.clone(),
                    queue: w.queue,
                    rx_packets: c.rx_packets,
                    rx_bytes: c.rx_bytes,
                    tx_packets: c.tx_packets,
                    tx_dropped: c.tx_dropped,
                    forwarded: c.forwarded,
                    replied: c.replied,
                    punted: c.punted,
                    punt_overflow: c.punt_overflow,
                    drops: DropReason::ALL
                        .iter()
                        .map(|r| (r.name().to_owned(), c.drop_count(*r)))
                        .collect(),
                    flows_live: c.flows.live,
                    flow_capacity: c.flow_capacity,
                    flows_inserted: c.flows.inserted,
                    flows_expired: c.flows.expired,
                    flows_evicted: c.flows.evicted,
                    flow_guard_refused: c.flows.guard_refused,
                }
            })
            .collect();
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
