//! dsrlb's configuration file. `Config::from_toml` parses, fills defaults and
//! validates; every error names the key path it is about (`services[1].targets[0].weight`)
//! and all semantic errors are reported at once. Nothing here touches DPDK.
#![cfg_attr(test, allow(clippy::unwrap_used))]

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

mod mac;
pub use mac::Mac;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub appliance: Appliance,
    #[serde(default)]
    pub dataplane: Dataplane,
    pub ports: Vec<PortConfig>,
    #[serde(default)]
    pub flows: Flows,
    #[serde(default)]
    pub maglev: Maglev,
    #[serde(default)]
    pub arp: Arp,
    #[serde(default)]
    pub health: Health,
    #[serde(default)]
    pub control: Control,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default)]
    pub services: Vec<Service>,
}

/// Where `dsrlb show`, `dsrlb target` and `dsrlb reload` reach the running appliance.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    /// Unix socket, created mode 0600 (owner only); its directory is created if
    /// missing.
    pub socket: PathBuf,
}

pub const DEFAULT_CONTROL_SOCKET: &str = "/run/dsrlb/dsrlb.sock";

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
        }
    }
}

/// Prometheus metrics over HTTP (GET /metrics); off unless `listen` is set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Address and port to serve on, e.g. the management address "10.0.1.2:9100".
    pub listen: Option<SocketAddrV4>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Appliance {
    /// The appliance's own ("real") address on the data segment: dsrlb answers ARP and
    /// ping for it and resolves target MACs from it.
    pub address: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dataplane {
    /// lcore of the control thread.
    pub main_lcore: u32,
    /// One lcore per worker; there is one worker per rx queue of every port, in port
    /// order, so this list is as long as the sum of `ports[*].queues`.
    pub worker_lcores: Vec<u32>,
    /// false runs EAL with --no-huge (tests, demos on vdevs); production wants true.
    pub hugepages: bool,
    /// Memory for EAL in MiB when `hugepages = false`.
    pub memory_mb: u32,
    /// Mbufs in the pool shared by all ports.
    pub mbufs: u32,
    /// Per-lcore mbuf cache.
    pub mbuf_cache: u32,
    /// Bytes of each mbuf's buffer, headroom (128) included: the largest frame taken
    /// is this less 128. 2176 for a 1500-byte MTU; at least 16512 for 9000-byte frames
    /// on af_packet; 256 is enough for benchmarks of 64-byte frames.
    pub mbuf_data_room: u16,
    /// EAL --file-prefix: distinct per dsrlb process on one host.
    pub file_prefix: String,
    /// Longest sleep of an idle worker, in microseconds (0 = never sleep, spin).
    pub idle_sleep_max_us: u32,
    /// Extra EAL arguments, appended verbatim.
    pub eal_args: Vec<String>,
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            main_lcore: 0,
            worker_lcores: vec![1],
            hugepages: true,
            memory_mb: 512,
            mbufs: 16383,
            mbuf_cache: 256,
            mbuf_data_room: 2176,
            file_prefix: "dsrlb".to_owned(),
            idle_sleep_max_us: 100,
            eal_args: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// A label for logs and counters.
    pub name: String,
    /// A PCI address (`0000:01:00.0`, bound to a DPDK driver) or a vdev string
    /// (`net_af_packet0,iface=eth1`).
    pub device: String,
    /// Rx queues, one worker each (RSS spreads flows when more than one).
    #[serde(default = "one")]
    pub queues: u16,
    #[serde(default = "ring_size")]
    pub rx_ring_size: u16,
    #[serde(default = "ring_size")]
    pub tx_ring_size: u16,
    #[serde(default)]
    pub promiscuous: bool,
    /// The MAC dsrlb uses as this port's own, instead of the device's (a vdev's is
    /// made up; two appliances may share one). Where the driver cannot take it, the
    /// port is put in promiscuous mode.
    #[serde(default)]
    pub mac: Option<Mac>,
}

fn one() -> u16 {
    1
}

fn ring_size() -> u16 {
    1024
}

impl PortConfig {
    /// Whether `device` names a PCI device rather than a vdev.
    pub fn is_pci(&self) -> bool {
        is_pci_address(&self.device)
    }

    /// The name DPDK gives the device's port: the PCI address, or the vdev's name
    /// (before the first comma).
    pub fn dpdk_name(&self) -> &str {
        self.device.split(',').next().unwrap_or(&self.device)
    }
}

/// `DDDD:BB:DD.F` or `BB:DD.F`, hex digits.
pub fn is_pci_address(s: &str) -> bool {
    let (bus_part, function) = match s.rsplit_once('.') {
        Some(x) => x,
        None => return false,
    };
    let groups: Vec<&str> = bus_part.split(':').collect();
    let widths: &[usize] = match groups.len() {
        3 => &[4, 2, 2],
        2 => &[2, 2],
        _ => return false,
    };
    groups
        .iter()
        .zip(widths)
        .all(|(g, &w)| g.len() == w && g.chars().all(|c| c.is_ascii_hexdigit()))
        && function.len() == 1
        && function.chars().all(|c| ('0'..='7').contains(&c))
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flows {
    /// Entries per worker, allocated at start.
    pub capacity: u32,
    pub tcp_established_timeout_secs: u32,
    /// TCP flows of which only SYNs were seen.
    pub tcp_syn_timeout_secs: u32,
    pub udp_timeout_secs: u32,
    /// New flows per second per worker above which flows are forwarded by Maglev
    /// alone without being remembered (0 = no limit).
    pub new_flow_rate: u32,
}

impl Default for Flows {
    fn default() -> Self {
        Flows {
            capacity: 1 << 20,
            tcp_established_timeout_secs: 300,
            tcp_syn_timeout_secs: 5,
            udp_timeout_secs: 60,
            new_flow_rate: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Maglev {
    /// Slots per service table: a prime, at least 100 × the largest target count.
    pub table_size: u32,
    /// Appliances with the same seed and targets pick the same target for a flow.
    pub seed: u64,
}

impl Default for Maglev {
    fn default() -> Self {
        Maglev {
            table_size: 65537,
            seed: 0,
        }
    }
}

/// The control thread's ARP: announcing the appliance's addresses and resolving
/// target MACs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Arp {
    /// Gratuitous ARP for the real address and every VIP: at start, after each config
    /// change, and every this many seconds.
    pub garp_interval_secs: u32,
    /// A resolved target is asked again this often.
    pub refresh_secs: u32,
    /// An unresolved (or silent) target is asked this often, in milliseconds.
    pub retry_ms: u32,
    /// Unanswered requests after which a target's MAC is forgotten (it then gets no
    /// new traffic until it answers again).
    pub max_unanswered: u32,
}

impl Default for Arp {
    fn default() -> Self {
        Arp {
            garp_interval_secs: 10,
            refresh_secs: 30,
            retry_ms: 1000,
            max_unanswered: 3,
        }
    }
}

/// Where health probes leave from: the management side, through the kernel, never
/// the DPDK data port.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    /// Source address of TCP and HTTP probes (the management port's address).
    pub source_address: Option<Ipv4Addr>,
    /// Interface the probes are bound to (SO_BINDTODEVICE), e.g. "mgmt0".
    pub interface: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// TCP connect to `port` (BalanceNG's `tcpopen PORT,FALL,INTERVAL`).
    Tcp,
    /// HTTP GET `path` on `port`, expecting `expect_status` (and `expect_body`).
    Http,
    /// Run `command`; exit 0 = up. The target is in the environment.
    Exec,
}

/// A service's probe. Every field but `kind` has a default.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub kind: ProbeKind,
    /// Port for tcp and http probes; default: the service's port.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// A substring the HTTP body must contain.
    #[serde(default)]
    pub expect_body: Option<String>,
    /// Program and arguments for exec probes (not run through a shell).
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u32,
    /// Consecutive successes that bring a down target up.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures that take an up target down.
    #[serde(default = "default_fall")]
    pub fall: u32,
}

fn default_path() -> String {
    "/".to_owned()
}
fn default_status() -> u16 {
    200
}
fn default_interval_ms() -> u32 {
    2000
}
fn default_timeout_ms() -> u32 {
    1000
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

/// Per-target changes to the service's probe: only the fields given.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeOverride {
    pub port: Option<u16>,
    pub path: Option<String>,
    pub expect_status: Option<u16>,
    pub expect_body: Option<String>,
    pub command: Option<Vec<String>>,
    pub interval_ms: Option<u32>,
    pub timeout_ms: Option<u32>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
}

impl Probe {
    /// This probe with a target's overrides applied.
    pub fn with(&self, o: &ProbeOverride) -> Probe {
        Probe {
            kind: self.kind,
            port: o.port.or(self.port),
            path: o.path.clone().unwrap_or_else(|| self.path.clone()),
            expect_status: o.expect_status.unwrap_or(self.expect_status),
            expect_body: o.expect_body.clone().or_else(|| self.expect_body.clone()),
            command: o.command.clone().unwrap_or_else(|| self.command.clone()),
            interval_ms: o.interval_ms.unwrap_or(self.interval_ms),
            timeout_ms: o.timeout_ms.unwrap_or(self.timeout_ms),
            rise: o.rise.unwrap_or(self.rise),
            fall: o.fall.unwrap_or(self.fall),
        }
    }

    fn problems(&self, mut err: impl FnMut(&str, String)) {
        if !(100..=3_600_000).contains(&self.interval_ms) {
            err(
                "interval_ms",
                format!("{} is outside 100..=3600000", self.interval_ms),
            );
        }
        if self.timeout_ms == 0 || self.timeout_ms >= self.interval_ms {
            err(
                "timeout_ms",
                format!(
                    "{} must be above 0 and below interval_ms ({})",
                    self.timeout_ms, self.interval_ms
                ),
            );
        }
        for (field, value) in [("rise", self.rise), ("fall", self.fall)] {
            if !(1..=100).contains(&value) {
                err(field, format!("{value} is outside 1..=100"));
            }
        }
        match self.kind {
            ProbeKind::Exec if self.command.is_empty() => {
                err("command", "an exec probe needs a command".into())
            }
            ProbeKind::Http
                if !self.path.starts_with('/') || self.path.contains(char::is_whitespace) =>
            {
                err(
                    "path",
                    format!("`{}` must start with / and hold no spaces", self.path),
                )
            }
            ProbeKind::Http if !(100..=599).contains(&self.expect_status) => err(
                "expect_status",
                format!("{} is not an HTTP status", self.expect_status),
            ),
            _ => {}
        }
        if self.port == Some(0) {
            err("port", "0 is not a port".into());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    #[serde(default)]
    pub name: Option<String>,
    pub vip: Ipv4Addr,
    /// 0 = every port of the protocol.
    pub port: u16,
    pub protocol: Protocol,
    /// How targets are probed; none = every target counts as healthy.
    #[serde(default)]
    pub health: Option<Probe>,
    #[serde(default)]
    pub targets: Vec<Target>,
}

impl Service {
    /// Label for logs: the name if given, else VIP:port/protocol.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({}:{}/{})", self.vip, self.port, self.protocol),
            None => format!("{}:{}/{}", self.vip, self.port, self.protocol),
        }
    }

    /// The probe for one target (service probe with the target's overrides), if any.
    pub fn probe_for(&self, target: &Target) -> Option<Probe> {
        self.health.as_ref().map(|p| match &target.health {
            Some(o) => p.with(o),
            None => p.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub address: Ipv4Addr,
    /// Static MAC; without it dsrlb resolves the MAC by ARP.
    #[serde(default)]
    pub mac: Option<Mac>,
    /// Share of new flows (0 = drain: keeps its flows, gets no new ones).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Where probes go (the target's management address); default: `address`.
    #[serde(default)]
    pub probe_address: Option<Ipv4Addr>,
    /// Changes to the service's probe for this target.
    #[serde(default)]
    pub health: Option<ProbeOverride>,
}

impl Target {
    pub fn probe_address(&self) -> Ipv4Addr {
        self.probe_address.unwrap_or(self.address)
    }
}

fn default_weight() -> u32 {
    100
}

pub const MAX_WEIGHT: u32 = 65535;
pub const MAX_QUEUES: u16 = 16;
pub const MAX_TARGETS: usize = 65534;
/// Services have counter slots in every worker (dataplane::snapshot::MAX_SERVICE_SLOTS).
pub const MAX_SERVICES: usize = 4096;

/// Sections whose every key is fixed at start (EAL, ports, workers, their flow
/// tables, the sockets dsrlb listens on): a reload that changes one is refused.
const RESTART_KEYS: [&str; 5] = ["dataplane", "ports", "flows", "control", "metrics"];

/// One problem, at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Everything wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source: String,
    pub errors: Vec<KeyError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: {} error{}",
            self.source,
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source: source.clone(),
            errors: vec![KeyError {
                key: String::new(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        Self::from_toml(&text, &source)
    }

    /// Parses and validates; `source` names the file in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Config, ConfigError> {
        let fail = |errors| ConfigError {
            source: source.to_owned(),
            errors,
        };
        let deserializer = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            let message = e.inner().message().to_owned();
            let at = e.inner().span().map(|span| line_col(text, span.start));
            let message = match at {
                Some((line, col)) => format!("{message} (line {line}, column {col})"),
                None => message,
            };
            fail(vec![KeyError { key, message }])
        })?;
        let errors = config.validate();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(fail(errors))
        }
    }

    /// Total rx queues, i.e. workers.
    pub fn worker_count(&self) -> usize {
        self.ports.iter().map(|p| usize::from(p.queues)).sum()
    }

    /// Every semantic problem, each at its key.
    pub fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        let mut err = |key: String, message: String| errors.push(KeyError { key, message });

        let d = &self.dataplane;
        if d.worker_lcores.is_empty() {
            err(
                "dataplane.worker_lcores".into(),
                "needs at least one lcore".into(),
            );
        }
        let mut seen_lcores = HashSet::new();
        for (i, &lcore) in d.worker_lcores.iter().enumerate() {
            if lcore == d.main_lcore {
                err(
                    format!("dataplane.worker_lcores[{i}]"),
                    format!("lcore {lcore} is the main lcore"),
                );
            }
            if !seen_lcores.insert(lcore) {
                err(
                    format!("dataplane.worker_lcores[{i}]"),
                    format!("lcore {lcore} listed twice"),
                );
            }
            if lcore >= 128 {
                err(
                    format!("dataplane.worker_lcores[{i}]"),
                    format!("lcore {lcore} is beyond DPDK's 128"),
                );
            }
        }
        if d.main_lcore >= 128 {
            err(
                "dataplane.main_lcore".into(),
                format!("lcore {} is beyond DPDK's 128", d.main_lcore),
            );
        }
        if d.mbufs < 1024 {
            err(
                "dataplane.mbufs".into(),
                format!("{} is too few (at least 1024)", d.mbufs),
            );
        }
        if d.mbuf_cache > 512 || d.mbuf_cache > d.mbufs / 4 {
            err(
                "dataplane.mbuf_cache".into(),
                format!("{} is above min(512, mbufs / 4)", d.mbuf_cache),
            );
        }
        if d.mbuf_data_room < 128 + 128 {
            err(
                "dataplane.mbuf_data_room".into(),
                format!(
                    "{} leaves under 128 bytes for a frame after the 128-byte headroom",
                    d.mbuf_data_room
                ),
            );
        }
        if !d.hugepages && d.memory_mb < 64 {
            err(
                "dataplane.memory_mb".into(),
                format!("{} MiB is too little for EAL (at least 64)", d.memory_mb),
            );
        }
        if d.file_prefix.is_empty()
            || !d
                .file_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            err(
                "dataplane.file_prefix".into(),
                format!("`{}` must be letters, digits, - or _", d.file_prefix),
            );
        }

        if self.ports.is_empty() {
            err("ports".into(), "at least one port is needed".into());
        }
        let mut names = HashMap::new();
        let mut devices = HashMap::new();
        for (i, p) in self.ports.iter().enumerate() {
            let key = |field: &str| format!("ports[{i}].{field}");
            if let Some(j) = names.insert(p.name.clone(), i) {
                err(
                    key("name"),
                    format!("`{}` is also the name of ports[{j}]", p.name),
                );
            }
            if let Some(j) = devices.insert(p.dpdk_name().to_owned(), i) {
                err(
                    key("device"),
                    format!("`{}` is also the device of ports[{j}]", p.dpdk_name()),
                );
            }
            if p.device.trim().is_empty() {
                err(key("device"), "is empty".into());
            } else if !p.is_pci() && !p.dpdk_name().starts_with("net_") {
                err(
                    key("device"),
                    format!(
                        "`{}` is neither a PCI address (0000:01:00.0) nor a net_* vdev",
                        p.device
                    ),
                );
            }
            if let Some(mac) = p.mac {
                if !mac.is_unicast() {
                    err(key("mac"), format!("{mac} is not a unicast MAC"));
                }
            }
            if p.queues == 0 || p.queues > MAX_QUEUES {
                err(
                    key("queues"),
                    format!("{} is outside 1..={MAX_QUEUES}", p.queues),
                );
            }
            for (field, size) in [
                ("rx_ring_size", p.rx_ring_size),
                ("tx_ring_size", p.tx_ring_size),
            ] {
                if !size.is_power_of_two() || !(64..=16384).contains(&size) {
                    err(
                        key(field),
                        format!("{size} is not a power of two in 64..=16384"),
                    );
                }
            }
        }
        if !self.ports.is_empty() && self.worker_count() != d.worker_lcores.len() {
            err(
                "dataplane.worker_lcores".into(),
                format!(
                    "{} lcores for {} rx queues: give one lcore per queue of every port",
                    d.worker_lcores.len(),
                    self.worker_count()
                ),
            );
        }

        let f = &self.flows;
        if f.capacity == 0 || f.capacity > 1 << 26 {
            err(
                "flows.capacity".into(),
                format!("{} is outside 1..={}", f.capacity, 1u32 << 26),
            );
        }
        for (field, secs) in [
            (
                "tcp_established_timeout_secs",
                f.tcp_established_timeout_secs,
            ),
            ("tcp_syn_timeout_secs", f.tcp_syn_timeout_secs),
            ("udp_timeout_secs", f.udp_timeout_secs),
        ] {
            if secs == 0 || secs > 86_400 {
                err(
                    format!("flows.{field}"),
                    format!("{secs} is outside 1..=86400 seconds"),
                );
            }
        }

        let m = self.maglev.table_size;
        if !(3..=4_194_301).contains(&m) {
            err(
                "maglev.table_size".into(),
                format!("{m} is outside 3..=4194301"),
            );
        } else if !is_prime(m) {
            err(
                "maglev.table_size".into(),
                format!("{m} is not prime (Maglev needs a prime; 65537 is one)"),
            );
        }

        let a = &self.arp;
        for (field, value, range) in [
            ("garp_interval_secs", a.garp_interval_secs, 1..=3600),
            ("refresh_secs", a.refresh_secs, 1..=3600),
            ("retry_ms", a.retry_ms, 100..=60_000),
            ("max_unanswered", a.max_unanswered, 1..=100),
        ] {
            if !range.contains(&value) {
                err(
                    format!("arp.{field}"),
                    format!("{value} is outside {}..={}", range.start(), range.end()),
                );
            }
        }

        let mut services = HashMap::new();
        let mut total_targets = 0usize;
        for (i, s) in self.services.iter().enumerate() {
            let key = |field: &str| format!("services[{i}].{field}");
            if let Some(j) = services.insert((s.vip, s.protocol, s.port), i) {
                err(
                    key("vip"),
                    format!("{}:{}/{} is also services[{j}]", s.vip, s.port, s.protocol),
                );
            }
            if s.vip == self.appliance.address {
                err(key("vip"), format!("{} is the appliance address", s.vip));
            }
            if !is_unicast(s.vip) {
                err(key("vip"), format!("{} is not a unicast address", s.vip));
            }
            if let Some(probe) = &s.health {
                probe.problems(|field, message| {
                    err(format!("services[{i}].health.{field}"), message)
                });
                if matches!(probe.kind, ProbeKind::Tcp | ProbeKind::Http)
                    && probe.port.is_none()
                    && s.port == 0
                {
                    err(
                        format!("services[{i}].health.port"),
                        "needed: the service listens on every port".into(),
                    );
                }
            }
            let mut addrs = HashMap::new();
            for (t, target) in s.targets.iter().enumerate() {
                match (&s.health, &target.health) {
                    (None, Some(_)) => err(
                        format!("services[{i}].targets[{t}].health"),
                        format!("overrides a probe the service does not have (add services[{i}].health)"),
                    ),
                    (Some(_), Some(_)) => {
                        if let Some(probe) = s.probe_for(target) {
                            probe.problems(|field, message| err(format!("services[{i}].targets[{t}].health.{field}"), message));
                        }
                    }
                    _ => {}
                }
                let key = |field: &str| format!("services[{i}].targets[{t}].{field}");
                if let Some(u) = addrs.insert(target.address, t) {
                    err(
                        key("address"),
                        format!("{} is also targets[{u}]", target.address),
                    );
                }
                if target.address == s.vip || target.address == self.appliance.address {
                    err(
                        key("address"),
                        format!("{} is the VIP or the appliance address", target.address),
                    );
                }
                if !is_unicast(target.address) {
                    err(
                        key("address"),
                        format!("{} is not a unicast address", target.address),
                    );
                }
                if target.weight > MAX_WEIGHT {
                    err(
                        key("weight"),
                        format!("{} is outside 0..={MAX_WEIGHT}", target.weight),
                    );
                }
                if let Some(mac) = target.mac {
                    if !mac.is_unicast() {
                        err(key("mac"), format!("{mac} is not a unicast MAC"));
                    }
                }
            }
            total_targets += s.targets.len();
        }
        if self.services.len() > MAX_SERVICES {
            err(
                "services".into(),
                format!("{} services, at most {MAX_SERVICES}", self.services.len()),
            );
        }
        if self.control.socket.as_os_str().is_empty() || self.control.socket.is_relative() {
            err(
                "control.socket".into(),
                format!(
                    "`{}` is not an absolute path",
                    self.control.socket.display()
                ),
            );
        }
        if let Some(listen) = self.metrics.listen {
            if listen.port() == 0 {
                err("metrics.listen".into(), "needs a port other than 0".into());
            }
        }
        if total_targets > MAX_TARGETS {
            err(
                "services".into(),
                format!("{total_targets} targets in all, at most {MAX_TARGETS}"),
            );
        }
        if let Some(iface) = &self.health.interface {
            if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ' ']) {
                err(
                    "health.interface".into(),
                    format!("`{iface}` is not an interface name"),
                );
            }
        }
        if !is_unicast(self.appliance.address) {
            err(
                "appliance.address".into(),
                format!("{} is not a unicast address", self.appliance.address),
            );
        }
        errors
    }

    /// What a reload from `self` to `next` would change that only a restart can: one
    /// entry per changed key, e.g. `dataplane.worker_lcores`. Empty: `next` can be
    /// applied live.
    pub fn needs_restart_for(&self, next: &Config) -> Vec<KeyError> {
        let (Ok(before), Ok(after)) = (toml::Value::try_from(self), toml::Value::try_from(next))
        else {
            return vec![KeyError {
                key: String::new(),
                message: "cannot compare the two configs".into(),
            }];
        };
        let mut changed = Vec::new();
        for section in RESTART_KEYS {
            diff_keys(
                section.to_owned(),
                before.get(section),
                after.get(section),
                &mut changed,
            );
        }
        changed
            .into_iter()
            .map(|key| KeyError {
                key,
                message: "changed: this needs a restart (fixed at start-up), not a reload".into(),
            })
            .collect()
    }

    /// The resolved config (defaults filled in) as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print the config: {e}\n"))
    }
}

/// Keys under `key` whose values differ, as dotted paths (arrays by index).
fn diff_keys(key: String, a: Option<&toml::Value>, b: Option<&toml::Value>, out: &mut Vec<String>) {
    match (a, b) {
        (Some(toml::Value::Table(ta)), Some(toml::Value::Table(tb))) => {
            let mut names: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                diff_keys(format!("{key}.{name}"), ta.get(name), tb.get(name), out);
            }
        }
        (Some(toml::Value::Array(aa)), Some(toml::Value::Array(ab))) if aa.len() == ab.len() => {
            for (i, (x, y)) in aa.iter().zip(ab).enumerate() {
                if x.is_table() || y.is_table() {
                    diff_keys(format!("{key}[{i}]"), Some(x), Some(y), out);
                } else if x != y {
                    out.push(key.clone());
                    return;
                }
            }
        }
        (x, y) if x != y => out.push(key),
        _ => {}
    }
}

fn is_unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

fn is_prime(n: u32) -> bool {
    n >= 2
        && (2..)
            .take_while(|d: &u64| d * d <= u64::from(n))
            .all(|d| u64::from(n) % d != 0)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests;
