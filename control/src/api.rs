//! The control socket's language: what `dsrlb show`, `dsrlb target` and `dsrlb
//! reload` ask the running appliance, and what it answers. One JSON object per line
//! each way. The same views feed the tables, `--json` and the Prometheus metrics.

use crate::doctor::PathFinding;
use dataplane::counters::{CounterSpec, COUNTERS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    ShowServers,
    ShowTargets,
    ShowStats,
    Target {
        address: IpAddr,
        action: AdminAction,
    },
    Reload,
    /// Prometheus text (the metrics listener asks this way too).
    Metrics,
    /// What the DSR doctor found for every target.
    Doctor,
    /// The appliance's part in a group: status, or drain / undrain.
    Ha {
        action: HaAction,
    },
    /// A digest of every service's Maglev table and what it was built from.
    ShowDigest,
    /// The target the appliance would choose for flows, and why: one flow, or
    /// `random` flows (from `seed`) from anywhere to the service.
    WhichTarget {
        vip: Ipv4Addr,
        port: u16,
        protocol: config::Protocol,
        flows: FlowsAsked,
    },
}

/// The flows `which-target` asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowsAsked {
    One {
        src: Ipv4Addr,
        sport: u16,
    },
    /// At most WHICH_RANDOM_MAX.
    Random {
        count: u32,
        seed: u64,
    },
}

/// The most random flows one `which-target` answers.
pub const WHICH_RANDOM_MAX: u32 = 100_000;

/// `dsrlb show digest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestView {
    /// Of every service's digest, in config order.
    pub digest: String,
    pub services: Vec<ServiceDigest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDigest {
    pub service: String,
    pub seed: u64,
    pub table_size: usize,
    /// The targets that may take new flows (in the table).
    pub targets: Vec<IpAddr>,
    pub digest: String,
}

/// One flow's choice, as `which-target` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub src: Ipv4Addr,
    pub sport: u16,
    /// None: dropped (no such service, or no usable target).
    pub target: Option<IpAddr>,
    /// "maglev slot N", "no service", "no usable target".
    pub why: String,
}

pub fn digest_table(view: &DigestView) -> String {
    let mut out = format!("digest {}\n", view.digest);
    for s in &view.services {
        let targets: Vec<String> = s.targets.iter().map(IpAddr::to_string).collect();
        out += &format!(
            "  {} {}  seed {} table {} targets [{}]\n",
            s.digest,
            s.service,
            s.seed,
            s.table_size,
            targets.join(" ")
        );
    }
    out
}

pub fn choices_table(choices: &[Choice]) -> String {
    choices
        .iter()
        .map(|c| {
            let to = c
                .target
                .map_or_else(|| "drop".to_owned(), |t| t.to_string());
            format!("{}:{} -> {to} ({})\n", c.src, c.sport, c.why)
        })
        .collect()
}

/// `dsrlb ha ACTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum HaAction {
    /// Mode, drain, and each VIP: announced or withdrawn, since when, why.
    Status,
    /// Withdraw every VIP (flows already here keep flowing while the router still
    /// sends them); lasts until undrain or a restart (then bgp.drain decides).
    Drain,
    /// Announce again every VIP that is ready.
    Undrain,
}

/// `dsrlb ha status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaView {
    /// "bgp", "pair", or "single" (no group: dsrlb answers ARP for its VIPs itself).
    pub mode: String,
    pub drained: bool,
    pub tap: Option<String>,
    pub bird_error: Option<String>,
    pub vips: Vec<crate::announcer::VipAnnouncement>,
    /// The pair's side of it (mode "pair").
    #[serde(default)]
    pub pair: Option<crate::pair::PairView>,
}

/// `dsrlb ha status` as text.
pub fn ha_table(view: &HaView) -> String {
    let mut out = format!(
        "mode {}{}{}\n",
        view.mode,
        if view.drained { ", drained" } else { "" },
        match (&view.tap, view.pair.is_some()) {
            (Some(t), false) => format!(", routes via tap {t}"),
            (Some(t), true) => format!(", keepalived tracks tap {t}"),
            (None, _) => String::new(),
        }
    );
    if let Some(e) = &view.bird_error {
        out += &format!("BIRD: {e}\n");
    }
    if let Some(pair) = &view.pair {
        out += &pair.text();
    }
    if !view.vips.is_empty() {
        out += &format!(
            "{:<16} {:<10} {:<10} {:<8} {}\n",
            "VIP", "STATE", "BIRD", "FOR", "WHY"
        );
    }
    for v in &view.vips {
        out += &format!(
            "{:<16} {:<10} {:<10} {:<8} {}\n",
            v.vip.to_string(),
            if v.announced {
                "announced"
            } else {
                "withdrawn"
            },
            if v.confirmed { "told" } else { "not yet" },
            format!("{}s", v.for_secs),
            v.why
        );
    }
    out
}

/// What an operator can do to a target, in every service that lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AdminAction {
    /// Weight 0: keeps its flows, gets no new ones.
    Drain,
    /// Back to its configured weight and its health.
    Enable,
    /// Out of service: its flows move to other targets at their next packet.
    Disable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Servers(Vec<ServerView>),
    Targets(Vec<TargetView>),
    Stats(StatsView),
    /// Done; what was done.
    Done(String),
    Metrics(String),
    Doctor(DoctorView),
    Ha(HaView),
    Digest(DigestView),
    Choices(Vec<Choice>),
    Error(String),
}

/// `dsrlb doctor`: per service and target, what the in-path probe, ARP and the
/// management probe say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorView {
    pub targets: Vec<DoctorTarget>,
    /// Hosts other than dsrlb that answered ARP for a VIP lately.
    pub arp_flux: Vec<FluxView>,
    pub probes_sent: u64,
    pub answers: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorTarget {
    pub service: String,
    pub target: Ipv4Addr,
    /// The MAC dsrlb forwards to ("-" unresolved).
    pub mac: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub path: PathFinding,
    pub path_for_secs: u64,
    /// From the in-path probe: None until it has an answer or a timeout.
    pub vip_on_loopback: Option<bool>,
    pub listening_on_vip: Option<bool>,
    pub answers_arp_for_vip: bool,
    /// The management probe's verdict (up, down, unknown, not probed).
    pub management_probe: String,
    /// With `dsr_check`: whether the target passes it.
    pub dsr_check: Option<bool>,
    /// What to do, in words; empty when all is well.
    pub advice: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FluxView {
    pub vip: Ipv4Addr,
    pub mac: String,
    /// The target at that MAC, if it is one.
    pub target: Option<IpAddr>,
    pub answers: u64,
}

/// `dsrlb doctor` as a table and advice lines.
pub fn doctor_table(view: &DoctorView) -> String {
    let yes_no = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    let mut out = format!(
        "{:<15} {:<34} {:<18} {:<10} {:<8} {:<12} {:<8} {}\n",
        "TARGET", "SERVICE", "MAC", "VIP ON LO", "LISTENS", "ARP FOR VIP", "MGMT", "DSR_CHECK"
    );
    for t in &view.targets {
        out += &format!(
            "{:<15} {:<34} {:<18} {:<10} {:<8} {:<12} {:<8} {}\n",
            t.target.to_string(),
            t.service,
            t.mac,
            yes_no(t.vip_on_loopback),
            yes_no(t.listening_on_vip),
            if t.answers_arp_for_vip {
                "ANSWERS"
            } else {
                "no"
            },
            t.management_probe,
            t.dsr_check
                .map_or("-", |up| if up { "pass" } else { "FAIL" })
        );
    }
    let advice: Vec<String> = (view.targets.iter())
        .flat_map(|t| {
            t.advice
                .iter()
                .map(move |a| format!("  {} in {}: {a}", t.target, t.service))
        })
        .collect();
    if advice.is_empty() {
        out += "every target is set up for DSR\n";
    } else {
        out += &advice.join("\n");
        out += "\n";
    }
    for f in &view.arp_flux {
        let host = f
            .target
            .map_or_else(|| f.mac.clone(), |t| format!("{t} ({})", f.mac));
        out += &format!(
            "  ARP flux: {host} answered ARP for {} ({} times)\n",
            f.vip, f.answers
        );
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerView {
    /// As in logs: "name (vip:port/protocol)", or "vip:port/protocol" unnamed.
    pub service: String,
    pub name: Option<String>,
    pub vip: IpAddr,
    /// 0 = every port.
    pub port: u16,
    pub protocol: String,
    pub targets_up: usize,
    pub targets_total: usize,
    pub packets: u64,
    pub bytes: u64,
    /// Packets dropped because no target could take them.
    pub drops: u64,
    /// ICMP errors about its flows (fragmentation needed...) forwarded to their
    /// targets.
    #[serde(default)]
    pub icmp_errors: u64,
    pub active_flows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    pub service: String,
    pub address: IpAddr,
    pub mac: Option<String>,
    /// "static", "arp" (learned; "ndp" for an IPv6 target) or "unresolved".
    pub mac_source: String,
    /// What the dataplane does with it: "up", "down", "unknown" (not probed yet; takes
    /// traffic), "drain", "disabled", "no-mac", "dsr-down" (failed its dsr_check).
    pub state: String,
    /// The health checks' verdict alone: "up", "down", "unknown", "unprobed".
    pub health: String,
    /// Configured weight (drain makes the effective weight 0).
    pub weight: u32,
    pub last_probe: Option<ProbeView>,
    pub active_flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// While two MACs answer ARP for the target: the other one (the MAC in use stays).
    #[serde(default)]
    pub mac_conflict: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeView {
    /// "ok" or why it failed.
    pub result: String,
    /// Seconds since the Unix epoch.
    pub at_unix: u64,
    pub ago_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    pub lcore: u32,
    pub port: String,
    pub queue: u16,
    /// Every worker counter by its name (`dataplane::counters::COUNTERS`), as keys of
    /// this object: `rx_packets`, `forwarded`, `flows_live`, ...
    #[serde(flatten)]
    pub counters: BTreeMap<String, u64>,
    /// Every drop reason, zeros included (names as in `DropReason::name`).
    pub drops: BTreeMap<String, u64>,
}

impl WorkerView {
    /// The counter of that name (`CounterSpec::name`); 0 from an older dsrlb without it.
    pub fn count(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    pub fn dropped(&self) -> u64 {
        self.drops.values().sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortView {
    pub name: String,
    pub mac: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_no_mbuf: u64,
    /// Frames the kernel dropped because the rx ring of the port's af_packet or
    /// af_xdp sockets was full (none for a port without such sockets).
    #[serde(default)]
    pub ring_drops: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsView {
    pub version: String,
    pub uptime_secs: u64,
    pub config: String,
    pub snapshot_generation: u64,
    pub reloads: u64,
    pub reloads_failed: u64,
    pub workers: Vec<WorkerView>,
    pub ports: Vec<PortView>,
    pub mempool_in_use: u64,
    pub mempool_size: u64,
    #[serde(default)]
    pub arp: ArpView,
}

/// ARP from the data segment that dsrlb did not simply believe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArpView {
    /// Replies ignored, by why (`neighbors::Ignored::name`).
    pub ignored: BTreeMap<String, u64>,
    /// Episodes of two MACs answering ARP for one target.
    pub conflicts: u64,
    /// ARP frames from other MACs for dsrlb's own addresses (VIPs, real address).
    pub address_claims: u64,
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let text: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

pub fn servers_table(servers: &[ServerView]) -> String {
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|s| {
            vec![
                s.service.clone(),
                format!("{}/{}", s.targets_up, s.targets_total),
                s.packets.to_string(),
                s.bytes.to_string(),
                s.drops.to_string(),
                s.active_flows.to_string(),
            ]
        })
        .collect();
    table(
        &["SERVICE", "UP", "PACKETS", "BYTES", "DROPS", "FLOWS"],
        &rows,
    )
}

pub fn targets_table(targets: &[TargetView]) -> String {
    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|t| {
            let probe = t.last_probe.as_ref().map_or_else(
                || "-".to_owned(),
                |p| format!("{} ({}s ago)", p.result, p.ago_secs),
            );
            vec![
                t.service.clone(),
                t.address.to_string(),
                format!(
                    "{} ({}{})",
                    t.mac.as_deref().unwrap_or("-"),
                    t.mac_source,
                    t.mac_conflict
                        .as_ref()
                        .map_or_else(String::new, |other| format!(
                            ", CONFLICT: {other} answers too"
                        ))
                ),
                t.state.clone(),
                t.weight.to_string(),
                probe,
                t.active_flows.to_string(),
                t.packets.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "SERVICE",
            "TARGET",
            "MAC",
            "STATE",
            "WEIGHT",
            "LAST PROBE",
            "FLOWS",
            "PACKETS",
        ],
        &rows,
    )
}

/// Frames a burst on average, one decimal ("-" before the first burst).
fn per_burst(w: &WorkerView) -> String {
    match w.count("bursts") {
        0 => "-".to_owned(),
        bursts => format!("{:.1}", w.count("rx_packets") as f64 / bursts as f64),
    }
}

/// One line of totals over every worker: each counter the summary shows, by its
/// summary word, then the drops (the periodic log line; the exit report ends on it).
pub fn summary_line(workers: &[WorkerView]) -> String {
    let mut words: Vec<String> = COUNTERS
        .iter()
        .filter_map(|c| {
            let total: u64 = workers.iter().map(|w| w.count(c.name)).sum();
            c.summary.map(|word| format!("{word} {total}"))
        })
        .collect();
    let dropped: u64 = workers.iter().map(WorkerView::dropped).sum();
    words.push(format!("dropped {dropped}"));
    words.join(" ")
}

/// `dsrlb show stats`, and the body of the exit report: a row a worker with each
/// counter that has a column, its drops by reason, the ports and the mempool.
pub fn stats_table(stats: &StatsView) -> String {
    let mut out = format!(
        "dsrlb {} up {}s, config {} (snapshot {}, reloads {} ok {} failed)\n\n",
        stats.version,
        stats.uptime_secs,
        stats.config,
        stats.snapshot_generation,
        stats.reloads,
        stats.reloads_failed
    );
    let columns: Vec<&CounterSpec> = COUNTERS.iter().filter(|c| c.column.is_some()).collect();
    let mut header = vec!["LCORE", "PORT/Q"];
    header.extend(columns.iter().filter_map(|c| c.column));
    header.extend(["DROPPED", "PER_BURST"]);
    let rows: Vec<Vec<String>> = stats
        .workers
        .iter()
        .map(|w| {
            let mut row = vec![w.lcore.to_string(), format!("{}/{}", w.port, w.queue)];
            row.extend(columns.iter().map(|c| w.count(c.name).to_string()));
            row.extend([w.dropped().to_string(), per_burst(w)]);
            row
        })
        .collect();
    out.push_str(&table(&header, &rows));
    out.push_str(&stats_footer(stats));
    out
}

/// "name=count" for every count above zero, or "none".
fn counts(by_name: &BTreeMap<String, u64>) -> String {
    let listed: Vec<String> = by_name
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(name, n)| format!("{name}={n}"))
        .collect();
    if listed.is_empty() {
        "none".to_owned()
    } else {
        listed.join(" ")
    }
}

/// Under the table: each worker's drops by reason, the ports' counters, the mempool.
fn stats_footer(stats: &StatsView) -> String {
    let mut out = String::new();
    for w in &stats.workers {
        let _ = writeln!(
            out,
            "lcore {} drops by reason: {}",
            w.lcore,
            counts(&w.drops)
        );
    }
    for p in &stats.ports {
        let _ = writeln!(
            out,
            "port {} ({}): rx {} tx {} missed {} rx_errors {} tx_errors {} no_mbuf {}{}",
            p.name,
            p.mac,
            p.rx_packets,
            p.tx_packets,
            p.rx_missed,
            p.rx_errors,
            p.tx_errors,
            p.rx_no_mbuf,
            p.ring_drops
                .map_or_else(String::new, |n| format!(" ring_drops {n}"))
        );
    }
    let _ = writeln!(
        out,
        "mempool: {} of {} mbufs in use",
        stats.mempool_in_use, stats.mempool_size
    );
    let arp = &stats.arp;
    let _ = writeln!(
        out,
        "ARP from the segment: ignored {}, conflicts {}, claims on our addresses {}",
        counts(&arp.ignored),
        arp.conflicts,
        arp.address_claims
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_one_json_object_each() {
        let req = Request::Target {
            address: Ipv4Addr::new(10, 99, 0, 11).into(),
            action: AdminAction::Drain,
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(
            text,
            r#"{"command":"target","address":"10.99.0.11","action":"drain"}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), req);
        assert_eq!(
            serde_json::to_string(&Request::ShowServers).unwrap(),
            r#"{"command":"show_servers"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"command":"rm -rf"}"#).is_err());
        let reply = Reply::Error("no such target".into());
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"error":"no such target"}"#
        );
    }

    #[test]
    fn tables_align_their_columns() {
        let s = ServerView {
            service: "web (10.99.0.100:80/tcp)".into(),
            name: Some("web".into()),
            vip: Ipv4Addr::new(10, 99, 0, 100).into(),
            port: 80,
            protocol: "tcp".into(),
            targets_up: 1,
            targets_total: 2,
            packets: 1234,
            bytes: 99999,
            drops: 0,
            icmp_errors: 0,
            active_flows: 3,
        };
        let any = ServerView {
            service: "10.99.0.100:0/udp".into(),
            name: None,
            port: 0,
            ..s.clone()
        };
        let text = servers_table(&[s, any]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("web (10.99.0.100:80/tcp)  1/2  1234"));
        assert!(lines[2].starts_with("10.99.0.100:0/udp         1/2"));
        let col = |l: &str| l.find("1/2").unwrap();
        assert_eq!(col(lines[1]), col(lines[2]));
        assert_eq!(lines[0].find("UP").unwrap(), col(lines[1]));
    }
}
