//! Every semantic problem of a parsed file, each at its key: one `problems` method a
//! section, called in the file's order; checks that span sections (one lcore a
//! queue, a VIP that is the appliance's address) sit with the later section.

use crate::types::*;
use crate::KeyError;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

/// The problems found so far.
#[derive(Default)]
pub(crate) struct Problems(Vec<KeyError>);

impl Problems {
    fn at(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(KeyError {
            key: key.into(),
            message: message.into(),
        });
    }
}

impl Config {
    /// Every semantic problem, each at its key.
    pub fn validate(&self) -> Vec<KeyError> {
        let mut p = Problems::default();
        self.dataplane.problems(&mut p);
        self.ports_problems(&mut p);
        self.flows.problems(&mut p);
        self.maglev.problems(&mut p);
        self.arp.problems(&mut p);
        self.services_problems(&mut p);
        self.control.problems(&mut p);
        self.metrics.problems(&mut p);
        self.targets_problems(&mut p);
        self.table_memory_problems(&mut p);
        self.health.problems(&mut p);
        self.appliance.problems(&mut p);
        if let Some(bgp) = &self.bgp {
            bgp.problems(self.appliance.address, &mut p);
        }
        if let Some(ha) = &self.ha {
            ha.problems(self.appliance.address, &mut p);
            if self.bgp.is_some() {
                p.at(
                    "ha",
                    "an appliance is in a pair ([ha]) or behind a router ([bgp]), not both",
                );
            }
        }
        p.0
    }

    fn ports_problems(&self, p: &mut Problems) {
        if self.ports.is_empty() {
            p.at("ports", "at least one port is needed");
        }
        let (mut names, mut devices) = (HashMap::new(), HashMap::new());
        for (i, port) in self.ports.iter().enumerate() {
            let key = |field: &str| format!("ports[{i}].{field}");
            if let Some(j) = names.insert(port.name.clone(), i) {
                p.at(
                    key("name"),
                    format!("`{}` is also the name of ports[{j}]", port.name),
                );
            }
            if let Some(j) = devices.insert(port.dpdk_name().to_owned(), i) {
                p.at(
                    key("device"),
                    format!("`{}` is also the device of ports[{j}]", port.dpdk_name()),
                );
            }
            port.problems(&key, p);
        }
        self.mbuf_problems(p);
        let lcores = self.dataplane.worker_lcores.len();
        if !self.ports.is_empty() && self.worker_count() != lcores {
            p.at(
                "dataplane.worker_lcores",
                format!(
                    "{lcores} lcores for {} rx queues: give one lcore per queue of every port",
                    self.worker_count()
                ),
            );
        }
    }

    /// The pool covers what the ports and queues can hold, and each port's frames fit
    /// an mbuf.
    fn mbuf_problems(&self, p: &mut Problems) {
        let d = &self.dataplane;
        let budget = self.mbuf_budget();
        if u64::from(d.mbufs) < budget.total() {
            p.at(
                "dataplane.mbufs",
                format!(
                    "{} mbufs are too few for the ports and queues configured: {} can be out at once ({budget}); raise it or lower ports[].queues, rx_ring_size, tx_ring_size or dataplane.mbuf_cache",
                    d.mbufs,
                    budget.total()
                ),
            );
        }
        let room = d.mbuf_data_room.saturating_sub(MBUF_HEADROOM);
        for (i, port) in self.ports.iter().enumerate() {
            let frame = u32::from(port.mtu) + u32::from(FRAME_OVERHEAD);
            if frame > u32::from(room) {
                p.at(
                    format!("ports[{i}].mtu"),
                    format!(
                        "{}-byte frames (MTU {} + {FRAME_OVERHEAD}) do not fit an mbuf's {room} bytes: lower it or raise dataplane.mbuf_data_room to at least {}",
                        frame,
                        port.mtu,
                        frame + u32::from(MBUF_HEADROOM)
                    ),
                );
            }
        }
    }

    fn services_problems(&self, p: &mut Problems) {
        let mut services = HashMap::new();
        for (i, s) in self.services.iter().enumerate() {
            if let Some(j) = services.insert((s.vip, s.protocol, s.port), i) {
                p.at(
                    format!("services[{i}].vip"),
                    format!("{}:{}/{} is also services[{j}]", s.vip, s.port, s.protocol),
                );
            }
            s.problems(i, &self.appliance, p);
            if s.vip.is_ipv6() && self.bgp.is_some() {
                p.at(
                    format!("services[{i}].vip"),
                    "BGP announces IPv4 VIPs only so far: serve this one without [bgp]",
                );
            }
            if s.vip.is_ipv6() && self.ha.is_some() {
                // A pair shares the real address: resolving IPv6 targets from it
                // would point their entries at whichever appliance asked last (IPv4
                // asks from 0.0.0.0 for that reason; IPv6 has no such question yet).
                p.at(
                    format!("services[{i}].vip"),
                    "an active/standby pair serves IPv4 VIPs only so far: serve this one without [ha]",
                );
            }
        }
        if self.services.len() > MAX_SERVICES {
            p.at(
                "services",
                format!("{} services, at most {MAX_SERVICES}", self.services.len()),
            );
        }
    }

    fn table_memory_problems(&self, p: &mut Problems) {
        let m = &self.maglev;
        let (needed, allowed) = (
            m.table_memory(&self.services),
            u64::from(m.max_table_memory_mb) << 20,
        );
        if needed > allowed {
            p.at(
                "maglev.table_size",
                format!(
                    "{} services of {} slots need {} MiB of tables (2 bytes a slot, 6 where tracking = \"changes\", twice while a reload builds new ones), more than maglev.max_table_memory_mb = {}",
                    self.services.len(),
                    m.table_size,
                    needed.div_ceil(1 << 20),
                    m.max_table_memory_mb
                ),
            );
        }
    }

    fn targets_problems(&self, p: &mut Problems) {
        let total: usize = self.services.iter().map(|s| s.targets.len()).sum();
        if total > MAX_TARGETS {
            p.at(
                "services",
                format!("{total} targets in all, at most {MAX_TARGETS}"),
            );
        }
    }
}

impl Dataplane {
    fn problems(&self, p: &mut Problems) {
        self.lcore_problems(p);
        if self.mbufs < 1024 {
            p.at(
                "dataplane.mbufs",
                format!("{} is too few (at least 1024)", self.mbufs),
            );
        }
        if self.mbuf_cache > 512 || self.mbuf_cache > self.mbufs / 4 {
            p.at(
                "dataplane.mbuf_cache",
                format!("{} is above min(512, mbufs / 4)", self.mbuf_cache),
            );
        }
        if self.mbuf_data_room < 128 + 128 {
            p.at(
                "dataplane.mbuf_data_room",
                format!(
                    "{} leaves under 128 bytes for a frame after the 128-byte headroom",
                    self.mbuf_data_room
                ),
            );
        }
        if !self.hugepages && self.memory_mb < 64 {
            p.at(
                "dataplane.memory_mb",
                format!("{} MiB is too little for EAL (at least 64)", self.memory_mb),
            );
        }
        let prefix = &self.file_prefix;
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            p.at(
                "dataplane.file_prefix",
                format!("`{prefix}` must be letters, digits, - or _"),
            );
        }
    }

    fn lcore_problems(&self, p: &mut Problems) {
        if self.worker_lcores.is_empty() {
            p.at("dataplane.worker_lcores", "needs at least one lcore");
        }
        let mut seen = HashSet::new();
        for (i, &lcore) in self.worker_lcores.iter().enumerate() {
            let key = format!("dataplane.worker_lcores[{i}]");
            if lcore == self.main_lcore {
                p.at(&key, format!("lcore {lcore} is the main lcore"));
            }
            if !seen.insert(lcore) {
                p.at(&key, format!("lcore {lcore} listed twice"));
            }
            if lcore >= 128 {
                p.at(&key, format!("lcore {lcore} is beyond DPDK's 128"));
            }
        }
        if !self.worker_cpus.is_empty() && self.worker_cpus.len() != self.worker_lcores.len() {
            p.at(
                "dataplane.worker_cpus",
                format!(
                    "{} CPUs for {} worker lcores: one each, or none (lcore N on CPU N)",
                    self.worker_cpus.len(),
                    self.worker_lcores.len()
                ),
            );
        }
        if self.main_lcore >= 128 {
            p.at(
                "dataplane.main_lcore",
                format!("lcore {} is beyond DPDK's 128", self.main_lcore),
            );
        }
    }
}

/// An 802.1Q VLAN id: 0 means "no VLAN" on the wire and 4095 is reserved.
fn vlan_problems(vlan: Option<u16>, key: &str, p: &mut Problems) {
    if let Some(vlan) = vlan.filter(|v| !(1..=4094).contains(v)) {
        p.at(key, format!("{vlan} is outside 1..=4094"));
    }
}

impl PortConfig {
    fn problems(&self, key: &dyn Fn(&str) -> String, p: &mut Problems) {
        if self.device.trim().is_empty() {
            p.at(key("device"), "is empty");
        } else if !self.is_pci() && !self.dpdk_name().starts_with("net_") {
            p.at(
                key("device"),
                format!(
                    "`{}` is neither a PCI address (0000:01:00.0) nor a net_* vdev",
                    self.device
                ),
            );
        }
        if let Some(mac) = self.mac.filter(|m| !m.is_unicast()) {
            p.at(key("mac"), format!("{mac} is not a unicast MAC"));
        }
        if !(68..=9600).contains(&self.mtu) {
            p.at(key("mtu"), format!("{} is outside 68..=9600", self.mtu));
        }
        vlan_problems(self.vlan, &key("vlan"), p);
        if self.queues == 0 || self.queues > MAX_QUEUES {
            p.at(
                key("queues"),
                format!("{} is outside 1..={MAX_QUEUES}", self.queues),
            );
        }
        for (field, size) in [
            ("rx_ring_size", self.rx_ring_size),
            ("tx_ring_size", self.tx_ring_size),
        ] {
            if !size.is_power_of_two() || !(64..=16384).contains(&size) {
                p.at(
                    key(field),
                    format!("{size} is not a power of two in 64..=16384"),
                );
            }
        }
    }
}

impl Flows {
    fn problems(&self, p: &mut Problems) {
        for (field, capacity) in [
            ("capacity", self.capacity),
            ("ipv6_capacity", self.ipv6_capacity),
        ] {
            if capacity == 0 || capacity > 1 << 26 {
                p.at(
                    format!("flows.{field}"),
                    format!("{capacity} is outside 1..={}", 1u32 << 26),
                );
            }
        }
        for (field, secs) in [
            (
                "tcp_established_timeout_secs",
                self.tcp_established_timeout_secs,
            ),
            ("tcp_syn_timeout_secs", self.tcp_syn_timeout_secs),
            ("udp_timeout_secs", self.udp_timeout_secs),
        ] {
            if secs == 0 || secs > 86_400 {
                p.at(
                    format!("flows.{field}"),
                    format!("{secs} is outside 1..=86400 seconds"),
                );
            }
        }
        for (field, value, most) in [
            ("fragment_capacity", self.fragment_capacity, 1 << 20),
            ("fragments_held", self.fragments_held, 4096),
        ] {
            if value > most {
                p.at(
                    format!("flows.{field}"),
                    format!("{value} is outside 0..={most}"),
                );
            }
        }
        if !(1..=60_000).contains(&self.fragment_timeout_ms) {
            p.at(
                "flows.fragment_timeout_ms",
                format!(
                    "{} is outside 1..=60000 milliseconds",
                    self.fragment_timeout_ms
                ),
            );
        }
    }
}

impl Maglev {
    fn problems(&self, p: &mut Problems) {
        let m = self.table_size;
        if !(3..=MAGLEV_MAX_TABLE_SIZE).contains(&m) {
            p.at(
                "maglev.table_size",
                format!("{m} is outside 3..={MAGLEV_MAX_TABLE_SIZE}"),
            );
        } else if !crate::is_prime(m) {
            p.at(
                "maglev.table_size",
                format!("{m} is not prime (Maglev needs a prime; 65537 is one)"),
            );
        }
    }
}

impl Arp {
    fn problems(&self, p: &mut Problems) {
        for (field, value, range) in [
            ("garp_interval_secs", self.garp_interval_secs, 1..=3600),
            ("refresh_secs", self.refresh_secs, 1..=3600),
            ("retry_ms", self.retry_ms, 100..=60_000),
            ("max_unanswered", self.max_unanswered, 1..=100),
        ] {
            if !range.contains(&value) {
                p.at(
                    format!("arp.{field}"),
                    format!("{value} is outside {}..={}", range.start(), range.end()),
                );
            }
        }
    }
}

impl Bgp {
    fn problems(&self, real: Ipv4Addr, p: &mut Problems) {
        for (key, asn) in [
            ("bgp.local_as", self.local_as),
            ("bgp.peer_as", self.peer_as),
        ] {
            if asn == 0 || asn == 23456 || asn == u32::MAX {
                p.at(key, format!("{asn} is not an AS number a session can use"));
            }
        }
        for (key, addr) in [
            ("bgp.peer_address", Some(self.peer_address)),
            ("bgp.local_address", Some(self.local_address)),
            ("bgp.router_id", self.router_id),
            ("bgp.next_hop", self.next_hop),
        ] {
            if addr.is_some_and(|a| !is_unicast(a)) {
                p.at(
                    key,
                    format!("{} is not a unicast address", addr.unwrap_or(real)),
                );
            }
        }
        if self.local_address == real {
            p.at(
                "bgp.local_address",
                "is the appliance's real address: the session runs on the management network",
            );
        }
        if self.peer_address == self.local_address {
            p.at("bgp.peer_address", "is bgp.local_address");
        }
        if !(3..=65535).contains(&self.hold_time_secs) {
            p.at(
                "bgp.hold_time_secs",
                format!(
                    "{} is outside 3..=65535 (BGP's minimum is 3)",
                    self.hold_time_secs
                ),
            );
        }
        if !(10..=10_000).contains(&self.bfd_interval_ms) {
            p.at(
                "bgp.bfd_interval_ms",
                format!("{} is outside 10..=10000", self.bfd_interval_ms),
            );
        }
        if !(1..=255).contains(&self.bfd_multiplier) {
            p.at(
                "bgp.bfd_multiplier",
                format!("{} is outside 1..=255", self.bfd_multiplier),
            );
        }
        interface_name_problems("bgp.tap", &self.tap, p);
        if !self.bird_socket.is_absolute() {
            p.at("bgp.bird_socket", "must be an absolute path");
        }
    }
}

fn interface_name_problems(key: &str, name: &str, p: &mut Problems) {
    let ok = !name.is_empty()
        && name.len() < 16
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        p.at(
            key,
            format!("`{name}` is not an interface name (1-15 of letters, digits, - _ .)"),
        );
    }
}

impl Ha {
    fn problems(&self, real: Ipv4Addr, p: &mut Problems) {
        interface_name_problems("ha.interface", &self.interface, p);
        interface_name_problems("ha.tap", &self.tap, p);
        for (key, addr) in [
            ("ha.local_address", self.local_address),
            ("ha.peer_address", self.peer_address),
            ("ha.address", self.address),
        ] {
            if !is_unicast(addr) {
                p.at(key, format!("{addr} is not a unicast address"));
            } else if addr == real {
                p.at(
                    key,
                    "is the appliance's real address: VRRP runs on the management network",
                );
            }
        }
        if self.peer_address == self.local_address {
            p.at("ha.peer_address", "is ha.local_address");
        }
        if self.address == self.local_address || self.address == self.peer_address {
            p.at(
                "ha.address",
                "must differ from both appliances' own addresses",
            );
        }
        if self.virtual_router_id == 0 {
            p.at("ha.virtual_router_id", "0 is outside 1..=255");
        }
        if !(1..=254).contains(&self.priority) {
            p.at(
                "ha.priority",
                format!(
                    "{} is outside 1..=254 (255 is VRRP's address owner)",
                    self.priority
                ),
            );
        }
        // VRRP version 3 counts the interval in centiseconds, 12 bits of them.
        if !(10..=40_950).contains(&self.advert_interval_ms)
            || !self.advert_interval_ms.is_multiple_of(10)
        {
            p.at(
                "ha.advert_interval_ms",
                format!(
                    "{} is not a multiple of 10 within 10..=40950 (VRRP counts centiseconds)",
                    self.advert_interval_ms
                ),
            );
        }
        if !(1..=253).contains(&self.degraded_penalty) {
            p.at(
                "ha.degraded_penalty",
                format!("{} is outside 1..=253", self.degraded_penalty),
            );
        }
        if !(1..=20).contains(&self.garp_burst) {
            p.at(
                "ha.garp_burst",
                format!("{} is outside 1..=20", self.garp_burst),
            );
        }
        for (key, path) in [
            ("ha.notify_fifo", &self.notify_fifo),
            ("ha.track_file", &self.track_file),
        ] {
            if !path.is_absolute() || path.file_name().is_none() {
                p.at(key, "must be an absolute path to a file");
            }
        }
        if self.notify_fifo == self.track_file {
            p.at("ha.track_file", "is ha.notify_fifo");
        }
    }
}

impl DsrCheck {
    fn problems(&self, key: &str, service_port: u16, p: &mut Problems) {
        if self.port.is_none() && service_port == 0 {
            p.at(
                format!("{key}.port"),
                "needed: the service listens on every port",
            );
        }
        if self.port == Some(0) {
            p.at(format!("{key}.port"), "0 is not a port to probe");
        }
        if self.payload.len() > DSR_PAYLOAD_MAX {
            p.at(
                format!("{key}.payload"),
                format!("{} bytes, at most {DSR_PAYLOAD_MAX}", self.payload.len()),
            );
        }
        if !(100..=60_000).contains(&self.interval_ms) {
            p.at(
                format!("{key}.interval_ms"),
                format!("{} is outside 100..=60000", self.interval_ms),
            );
        }
        if self.timeout_ms == 0 || self.timeout_ms >= self.interval_ms {
            p.at(
                format!("{key}.timeout_ms"),
                format!(
                    "{} must be above 0 and below interval_ms ({})",
                    self.timeout_ms, self.interval_ms
                ),
            );
        }
        for (field, n) in [("rise", self.rise), ("fall", self.fall)] {
            if !(1..=100).contains(&n) {
                p.at(format!("{key}.{field}"), format!("{n} is outside 1..=100"));
            }
        }
    }
}

impl Service {
    fn problems(&self, i: usize, appliance: &Appliance, p: &mut Problems) {
        let key = |field: &str| format!("services[{i}].{field}");
        vlan_problems(self.vlan, &key("vlan"), p);
        if appliance.is_own(self.vip) {
            p.at(key("vip"), format!("{} is the appliance address", self.vip));
        }
        if !is_unicast_ip(self.vip) {
            p.at(key("vip"), format!("{} is not a unicast address", self.vip));
        }
        if self.vip.is_ipv6() && appliance.address6.is_none() {
            p.at(
                key("vip"),
                "an IPv6 VIP needs appliance.address6: dsrlb resolves its targets' MACs from it",
            );
        }
        if self.vip.is_ipv6() && self.dsr_check.is_some() {
            p.at(
                key("dsr_check"),
                "the DSR doctor probes IPv4 services only so far",
            );
        }
        if let Some(probe) = &self.health {
            probe.problems(&key("health"), p);
            if matches!(probe.kind, ProbeKind::Tcp | ProbeKind::Http)
                && probe.port.is_none()
                && self.port == 0
            {
                p.at(
                    key("health.port"),
                    "needed: the service listens on every port",
                );
            }
        }
        if let Some(check) = &self.dsr_check {
            check.problems(&key("dsr_check"), self.port, p);
        }
        if self.tracking == Some(Tracking::Changes) && self.protocol == Protocol::Udp {
            p.at(
                key("tracking"),
                "\"changes\" needs TCP: it tells a new flow by its SYN, and UDP has none (use \"full\" or \"none\")",
            );
        }
        let mut addresses = HashMap::new();
        for (t, target) in self.targets.iter().enumerate() {
            let key = |field: &str| format!("services[{i}].targets[{t}].{field}");
            match (&self.health, &target.health) {
                (None, Some(_)) => p.at(
                    key("health"),
                    format!(
                        "overrides a probe the service does not have (add services[{i}].health)"
                    ),
                ),
                (Some(_), Some(_)) => {
                    if let Some(probe) = self.probe_for(target) {
                        probe.problems(&key("health"), p);
                    }
                }
                _ => {}
            }
            if let Some(u) = addresses.insert(target.address, t) {
                p.at(
                    key("address"),
                    format!("{} is also targets[{u}]", target.address),
                );
            }
            if target.address == self.vip || appliance.is_own(target.address) {
                p.at(
                    key("address"),
                    format!("{} is the VIP or the appliance address", target.address),
                );
            }
            if target.address.is_ipv6() != self.vip.is_ipv6() {
                p.at(
                    key("address"),
                    format!(
                        "{} is not of the VIP's address family ({}): a service is IPv4 or IPv6",
                        target.address, self.vip
                    ),
                );
            }
            target.problems(&key, p);
        }
    }
}

impl Target {
    fn problems(&self, key: &dyn Fn(&str) -> String, p: &mut Problems) {
        if !is_unicast_ip(self.address) {
            p.at(
                key("address"),
                format!("{} is not a unicast address", self.address),
            );
        }
        if let Some(probe) = self.probe_address.filter(|&a| !is_unicast_ip(a)) {
            p.at(
                key("probe_address"),
                format!("{probe} is not a unicast address"),
            );
        }
        if self.weight > MAX_WEIGHT {
            p.at(
                key("weight"),
                format!("{} is outside 0..={MAX_WEIGHT}", self.weight),
            );
        }
        if let Some(mac) = self.mac.filter(|m| !m.is_unicast()) {
            p.at(key("mac"), format!("{mac} is not a unicast MAC"));
        }
    }
}

impl Probe {
    /// Problems of this probe, at keys under `at` (`services[0].health`).
    fn problems(&self, at: &str, p: &mut Problems) {
        let key = |field: &str| format!("{at}.{field}");
        if !(100..=3_600_000).contains(&self.interval_ms) {
            p.at(
                key("interval_ms"),
                format!("{} is outside 100..=3600000", self.interval_ms),
            );
        }
        if self.timeout_ms == 0 || self.timeout_ms >= self.interval_ms {
            p.at(
                key("timeout_ms"),
                format!(
                    "{} must be above 0 and below interval_ms ({})",
                    self.timeout_ms, self.interval_ms
                ),
            );
        }
        for (field, value) in [("rise", self.rise), ("fall", self.fall)] {
            if !(1..=100).contains(&value) {
                p.at(key(field), format!("{value} is outside 1..=100"));
            }
        }
        match self.kind {
            ProbeKind::Exec if self.command.is_empty() => {
                p.at(key("command"), "an exec probe needs a command")
            }
            ProbeKind::Http
                if !self.path.starts_with('/') || self.path.contains(char::is_whitespace) =>
            {
                p.at(
                    key("path"),
                    format!("`{}` must start with / and hold no spaces", self.path),
                )
            }
            ProbeKind::Http if !(100..=599).contains(&self.expect_status) => p.at(
                key("expect_status"),
                format!("{} is not an HTTP status", self.expect_status),
            ),
            _ => {}
        }
        if self.port == Some(0) {
            p.at(key("port"), "0 is not a port");
        }
    }
}

impl Control {
    fn problems(&self, p: &mut Problems) {
        if self.socket.as_os_str().is_empty() || self.socket.is_relative() {
            p.at(
                "control.socket",
                format!("`{}` is not an absolute path", self.socket.display()),
            );
        }
    }
}

impl Metrics {
    fn problems(&self, p: &mut Problems) {
        if self.listen.is_some_and(|l| l.port() == 0) {
            p.at("metrics.listen", "needs a port other than 0");
        }
    }
}

impl Health {
    fn problems(&self, p: &mut Problems) {
        if let Some(iface) = &self.interface {
            if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ' ']) {
                p.at(
                    "health.interface",
                    format!("`{iface}` is not an interface name"),
                );
            }
        }
    }
}

impl Appliance {
    fn problems(&self, p: &mut Problems) {
        if !is_unicast(self.address) {
            p.at(
                "appliance.address",
                format!("{} is not a unicast address", self.address),
            );
        }
        if let Some(a) = self.address6.filter(|&a| !is_unicast_ip(a.into())) {
            p.at(
                "appliance.address6",
                format!("{a} is not a unicast address (nor link-local)"),
            );
        }
    }

    /// Whether `addr` is one of the appliance's real addresses.
    pub fn is_own(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => a == self.address,
            IpAddr::V6(a) => self.address6 == Some(a),
        }
    }
}

fn is_unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

/// A unicast address of either family. IPv6's link-local and IPv4-mapped ones are
/// refused too: a VIP, a target or a real address is reached by its global (or
/// unique local) address.
fn is_unicast_ip(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => is_unicast(a),
        IpAddr::V6(a) => {
            !(a.is_unspecified()
                || a.is_multicast()
                || a.is_loopback()
                || a.is_unicast_link_local()
                || a.to_ipv4_mapped().is_some())
        }
    }
}
