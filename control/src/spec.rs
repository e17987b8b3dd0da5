//! From the config (and what the control thread knows of each target) to the
//! snapshot the workers read.

use crate::api::AdminAction;
use crate::neighbors::Neighbors;
use std::collections::HashMap;
use std::net::IpAddr;

/// Targets an operator drained or disabled (`dsrlb target ADDR ...`), by address: the
/// action applies in every service listing that address. Enabled targets are absent.
pub type AdminStates = HashMap<IpAddr, AdminAction>;
use config::{Config, Protocol};
use dataplane::flow::FlowTableConfig;
use dataplane::snapshot::{ArpAnswers, ServiceSpec, SnapshotSpec, TargetSpec};
use dataplane::wire::{IpProtocol, MacAddr};

/// Which of its addresses dsrlb answers ARP for: behind a BGP router only the real
/// address (the router routes the VIPs to it); in a pair, all while active and none
/// while standby (the peer holds the VIPs and the shared real address); alone, all.
pub fn arp_answers(config: &Config, active: bool) -> ArpAnswers {
    match (&config.bgp, &config.ha) {
        (Some(_), _) => ArpAnswers::RealAddress,
        (None, Some(_)) if !active => ArpAnswers::Nothing,
        _ => ArpAnswers::Every,
    }
}

/// The snapshot spec for `config`, with each target's MAC as `neighbors` knows it
/// (static or resolved; a target without one gets no traffic) and its health as
/// `healthy(service index, target address)` says; a drained target has weight 0 and a
/// disabled one counts as down.
pub fn snapshot_spec(
    config: &Config,
    neighbors: &Neighbors,
    healthy: impl Fn(usize, IpAddr) -> bool,
    admin: &AdminStates,
    arp_answers: ArpAnswers,
) -> SnapshotSpec {
    SnapshotSpec {
        real_addr: config.appliance.address,
        real_addr6: config.appliance.address6,
        arp_answers,
        seed: config.maglev.seed,
        table_size: config.maglev.table_size,
        services: config
            .services
            .iter()
            .enumerate()
            .map(|(si, s)| ServiceSpec {
                forwards_icmp_errors: s.icmp_errors == config::IcmpErrors::Forward,
                tracking: s.tracking(),
                vip: s.vip,
                proto: match s.protocol {
                    Protocol::Tcp => IpProtocol::Tcp,
                    Protocol::Udp => IpProtocol::Udp,
                },
                port: s.port,
                targets: s
                    .targets
                    .iter()
                    .map(|t| {
                        let admin = admin.get(&t.address);
                        TargetSpec {
                            addr: t.address,
                            mac: neighbors.mac(t.address),
                            weight: if admin == Some(&AdminAction::Drain) {
                                0
                            } else {
                                t.weight
                            },
                            healthy: healthy(si, t.address) && admin != Some(&AdminAction::Disable),
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Every target address with its static MAC, if any, for `Neighbors::track`.
pub fn tracked_targets(config: &Config) -> Vec<(IpAddr, Option<MacAddr>)> {
    config
        .services
        .iter()
        .flat_map(|s| {
            s.targets
                .iter()
                .map(|t| (t.address, t.mac.map(|m| MacAddr(m.0))))
        })
        .collect()
}

pub fn flow_table_config(config: &Config) -> FlowTableConfig {
    let f = &config.flows;
    FlowTableConfig {
        capacity: f.capacity as usize,
        ipv6_capacity: f.ipv6_capacity as usize,
        tcp_established_timeout_ms: u64::from(f.tcp_established_timeout_secs) * 1000,
        tcp_syn_timeout_ms: u64::from(f.tcp_syn_timeout_secs) * 1000,
        udp_timeout_ms: u64::from(f.udp_timeout_secs) * 1000,
        new_flow_rate: u64::from(f.new_flow_rate),
        fragment_capacity: f.fragment_capacity as usize,
        fragment_timeout_ms: u64::from(f.fragment_timeout_ms),
        fragments_held: f.fragments_held as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::snapshot::Snapshot;
    use std::net::Ipv4Addr;

    #[test]
    fn arp_is_answered_for_what_the_appliance_holds() {
        let base = "[appliance]\naddress = \"10.99.0.2\"\n[[ports]]\nname = \"p\"\ndevice = \"net_ring0\"\n";
        let bgp = "[bgp]\nlocal_as = 65001\npeer_as = 65000\npeer_address = \"10.99.1.254\"\nlocal_address = \"10.99.1.2\"\n";
        let ha = "[ha]\ninterface = \"m0\"\nlocal_address = \"10.99.1.2\"\npeer_address = \"10.99.1.3\"\naddress = \"10.99.1.10\"\nvirtual_router_id = 51\npriority = 150\n";
        let load = |extra: &str| Config::from_toml(&format!("{base}{extra}"), "t").unwrap();
        for (what, config, active, want) in [
            ("alone", load(""), false, ArpAnswers::Every),
            ("behind BGP", load(bgp), true, ArpAnswers::RealAddress),
            ("a pair's active", load(ha), true, ArpAnswers::Every),
            ("a pair's standby", load(ha), false, ArpAnswers::Nothing),
        ] {
            assert_eq!(arp_answers(&config, active), want, "{what}");
        }
    }

    #[test]
    fn config_becomes_a_snapshot() {
        let text = r#"
[appliance]
address = "10.99.0.2"
[[ports]]
name = "p"
device = "net_ring0"
[flows]
tcp_syn_timeout_secs = 3
[[services]]
vip = "10.99.0.100"
port = 0
protocol = "udp"
targets = [{ address = "10.99.0.11", mac = "02:00:00:00:00:0b", weight = 7 }, { address = "10.99.0.12" }]
"#;
        let config = Config::from_toml(text, "t").unwrap();
        let mut neighbors = Neighbors::new((&config.arp).into());
        neighbors.track(tracked_targets(&config), std::time::Instant::now());
        let spec = snapshot_spec(
            &config,
            &neighbors,
            |_, _| true,
            &AdminStates::new(),
            ArpAnswers::Every,
        );
        assert_eq!(spec.real_addr, Ipv4Addr::new(10, 99, 0, 2));
        assert_eq!(spec.services[0].proto, IpProtocol::Udp);
        assert_eq!(
            spec.services[0].targets[0].mac,
            Some(MacAddr([2, 0, 0, 0, 0, 0x0b]))
        );
        assert_eq!(spec.services[0].targets[0].weight, 7);
        let snap = Snapshot::build(&spec, None).unwrap();
        let service = snap
            .service(u32::from(Ipv4Addr::new(10, 99, 0, 100)), 17, 9999)
            .unwrap();
        let only = service.target_slots[0];
        assert!(
            service.table().slots().iter().all(|&s| s == only),
            "the target without a MAC gets nothing"
        );
        assert_eq!(flow_table_config(&config).tcp_syn_timeout_ms, 3000);

        let t11 = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11));
        let t12 = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 12));
        let admin: AdminStates = [(t11, AdminAction::Drain), (t12, AdminAction::Disable)]
            .into_iter()
            .collect();
        let spec = snapshot_spec(&config, &neighbors, |_, _| true, &admin, ArpAnswers::Every);
        let targets = &spec.services[0].targets;
        assert_eq!(
            (targets[0].weight, targets[0].healthy),
            (0, true),
            "drained"
        );
        assert_eq!(
            (targets[1].weight, targets[1].healthy),
            (100, false),
            "disabled"
        );
    }
}
