//! The file's sections as serde types, with their defaults and the few questions
//! the rest of dsrlb asks of them.

use crate::Mac;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::path::PathBuf;

/// The largest Maglev table (a prime), the dataplane's limit too.
pub const MAGLEV_MAX_TABLE_SIZE: u32 = 4_194_301;
pub const MAX_WEIGHT: u32 = 65535;
pub const MAX_QUEUES: u16 = 16;
pub const MAX_TARGETS: usize = 65534;
/// Services have counter slots in every worker (dataplane::snapshot::MAX_SERVICE_SLOTS).
pub const MAX_SERVICES: usize = 4096;
/// Frames a worker takes from its rx queue at once (the dataplane's burst).
pub const BURST_SIZE: usize = 32;
/// Mbufs the workers may have punted to the control thread and it has not taken yet.
pub const PUNT_QUEUE: usize = 1024;
/// Mbufs of the control thread's frames waiting for a port's first worker to send
/// them, where the port has no tx queue to spare for the control thread.
pub const INJECT_QUEUE: usize = 256;
/// DPDK's headroom before a frame in every mbuf (RTE_PKTMBUF_HEADROOM).
pub const MBUF_HEADROOM: u16 = 128;
/// What a frame adds to the MTU: the Ethernet header and one 802.1Q tag.
pub const FRAME_OVERHEAD: u16 = 14 + 4;

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
    /// Scale-out: BIRD announces the VIPs by BGP while dsrlb is ready to serve them.
    #[serde(default)]
    pub bgp: Option<Bgp>,
    /// An active/standby pair: keepalived elects, dsrlb follows.
    #[serde(default)]
    pub ha: Option<Ha>,
    #[serde(default)]
    pub services: Vec<Service>,
}

/// An active/standby pair on one segment: keepalived (VRRP version 3, unicast, on the
/// management interface) elects the active appliance; dsrlb follows its state through
/// keepalived's notify FIFO. The active answers ARP for the VIPs and the shared real
/// address and announces them by gratuitous ARP; the standby stays silent for them but
/// keeps its target MACs and health current. dsrlb writes keepalived's configuration
/// (`dsrlb keepalived-config`) and tells it, through a track file, when it cannot
/// serve; keepalived tracks a tap dsrlb holds, so a dead dsrlb yields at once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ha {
    /// The management interface VRRP runs on (never a data port).
    pub interface: String,
    /// This appliance's address on it: VRRP's unicast source.
    pub local_address: Ipv4Addr,
    /// The peer's address on it.
    pub peer_address: Ipv4Addr,
    /// A management address that follows the active appliance (VRRP version 3 needs
    /// one address to advertise; keepalived puts it on `interface` while active).
    pub address: Ipv4Addr,
    /// VRRP's virtual router id, the same on both and unique on the network.
    pub virtual_router_id: u8,
    /// The higher is active when both are healthy.
    pub priority: u8,
    #[serde(default = "default_advert_interval")]
    pub advert_interval_ms: u32,
    /// true: the higher priority takes the VIPs back when it is healthy again; false:
    /// the active stays active until it fails (fewer moves, no fail-back).
    #[serde(default = "yes")]
    pub preempt: bool,
    /// Lowered by this while some VIP (not all) has no usable target, so that a peer
    /// that can serve them takes over (with `preempt`). Serving none yields at once.
    #[serde(default = "default_degraded_penalty")]
    pub degraded_penalty: u8,
    /// Gratuitous ARPs for each address when this appliance becomes active, 100 ms
    /// apart (then every `arp.garp_interval_secs`).
    #[serde(default = "default_garp_burst")]
    pub garp_burst: u8,
    /// keepalived's `vrrp_notify_fifo`: dsrlb reads the elected state from it.
    #[serde(default = "default_notify_fifo")]
    pub notify_fifo: PathBuf,
    /// The file dsrlb writes its health to, which keepalived tracks (`track_file`).
    #[serde(default = "default_track_file")]
    pub track_file: PathBuf,
    /// The tap dsrlb holds while it runs, which keepalived tracks (`track_interface`).
    #[serde(default = "default_ha_tap")]
    pub tap: String,
}

fn default_advert_interval() -> u32 {
    100
}
fn default_degraded_penalty() -> u8 {
    50
}
fn default_garp_burst() -> u8 {
    3
}
fn default_notify_fifo() -> PathBuf {
    PathBuf::from("/run/dsrlb/keepalived.fifo")
}
fn default_track_file() -> PathBuf {
    PathBuf::from("/run/dsrlb/ha-health")
}
fn default_ha_tap() -> String {
    "dsrlb-ha".to_owned()
}

/// Scale-out behind an ECMP router: BIRD 2, in the management namespace, announces
/// each VIP/32 with `next_hop` (the real address) while dsrlb is ready to serve it.
/// dsrlb writes BIRD's configuration (`dsrlb bird-config`) and drives it through its
/// control socket; in this mode dsrlb answers no ARP for the VIPs (the router routes
/// them to the real address).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bgp {
    pub local_as: u32,
    pub peer_as: u32,
    /// The router's address on the management network.
    pub peer_address: Ipv4Addr,
    /// This appliance's address on the management network: the session's source.
    pub local_address: Ipv4Addr,
    /// BGP router id; default: `local_address`.
    #[serde(default)]
    pub router_id: Option<Ipv4Addr>,
    /// Next hop announced with every VIP; default: `appliance.address`.
    #[serde(default)]
    pub next_hop: Option<Ipv4Addr>,
    #[serde(default = "default_hold_time")]
    pub hold_time_secs: u16,
    /// BFD on the session, so a silent box death withdraws in about
    /// interval x multiplier rather than the hold time.
    #[serde(default = "yes")]
    pub bfd: bool,
    #[serde(default = "default_bfd_interval")]
    pub bfd_interval_ms: u32,
    #[serde(default = "default_bfd_multiplier")]
    pub bfd_multiplier: u32,
    /// BIRD's control socket.
    #[serde(default = "default_bird_socket")]
    pub bird_socket: PathBuf,
    /// The tap device dsrlb holds open while it runs; the VIPs' routes point at it, so
    /// they go when dsrlb goes, however it ends.
    #[serde(default = "default_tap")]
    pub tap: String,
    /// Start drained: nothing announced until `dsrlb ha undrain`.
    #[serde(default)]
    pub drain: bool,
}

fn yes() -> bool {
    true
}
fn default_hold_time() -> u16 {
    3
}
fn default_bfd_interval() -> u32 {
    100
}
fn default_bfd_multiplier() -> u32 {
    3
}
fn default_bird_socket() -> PathBuf {
    PathBuf::from("/run/dsrlb/bird.ctl")
}
fn default_tap() -> String {
    "dsrlb-vips".to_owned()
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
    /// Its IPv6 real address on the data segment, which IPv6 services need: dsrlb
    /// answers neighbour solicitations and ping for it and resolves target MACs from it.
    #[serde(default)]
    pub address6: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dataplane {
    /// lcore of the control thread.
    pub main_lcore: u32,
    /// One lcore per worker; there is one worker per rx queue of every port, in port
    /// order, so this list is as long as the sum of `ports[*].queues`.
    pub worker_lcores: Vec<u32>,
    /// The CPU each worker lcore runs on, in the order of `worker_lcores`; empty:
    /// lcore N on CPU N (the main lcore always runs on the CPU of its number).
    /// Workers may share a CPU (a lab on two CPUs), relying on the idle back-off.
    pub worker_cpus: Vec<u32>,
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
            worker_cpus: Vec::new(),
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
    /// Set on the device at start: the largest IP packet taken and sent. Its frame
    /// (plus 18 bytes: Ethernet and a VLAN tag) must fit an mbuf
    /// (`dataplane.mbuf_data_room` less the 128-byte headroom).
    #[serde(default = "mtu")]
    pub mtu: u16,
    /// The MAC dsrlb uses as this port's own, instead of the device's (a vdev's is
    /// made up; two appliances may share one). Where the driver cannot take it, the
    /// port is put in promiscuous mode.
    #[serde(default)]
    pub mac: Option<Mac>,
    /// The 802.1Q VLAN of the port's segment (a tagged trunk port): dsrlb's own
    /// frames on it (gratuitous ARP, ARP and neighbour questions, unsolicited
    /// advertisements, the doctor's probes) carry this tag unless their service names
    /// another. Frames forwarded or answered in place keep the tag they came with.
    #[serde(default)]
    pub vlan: Option<u16>,
}

fn one() -> u16 {
    1
}

fn ring_size() -> u16 {
    1024
}

fn mtu() -> u16 {
    1500
}

impl PortConfig {
    /// Whether `device` names a PCI device rather than a vdev.
    pub fn is_pci(&self) -> bool {
        is_pci_address(&self.device)
    }

    /// Rx queues, and tx queues: one a worker and one for the control thread (at
    /// most: where the device has room for it).
    pub fn queue_pairs(&self) -> (u64, u64) {
        (u64::from(self.queues), u64::from(self.queues) + 1)
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
    /// IPv4 entries per worker, allocated at start.
    pub capacity: u32,
    /// IPv6 entries per worker, allocated at start (in a table of their own: an
    /// IPv6 entry takes 32 bytes, an IPv4 one 20).
    pub ipv6_capacity: u32,
    pub tcp_established_timeout_secs: u32,
    /// TCP flows of which only SYNs were seen.
    pub tcp_syn_timeout_secs: u32,
    pub udp_timeout_secs: u32,
    /// New flows per second per worker above which flows are forwarded by Maglev
    /// alone without being remembered (0 = no limit).
    pub new_flow_rate: u32,
    /// Datagrams per worker whose first fragment's target is kept for their later
    /// fragments (0 = none: later fragments wait for nothing and time out).
    pub fragment_capacity: u32,
    /// How long a datagram's target is kept after its last fragment seen, and how
    /// long a later fragment waits for its first.
    pub fragment_timeout_ms: u32,
    /// Later fragments per worker held until their first fragment comes (0 = drop
    /// them at once).
    pub fragments_held: u32,
}

impl Default for Flows {
    fn default() -> Self {
        Flows {
            capacity: 1 << 20,
            ipv6_capacity: 1 << 18,
            tcp_established_timeout_secs: 300,
            tcp_syn_timeout_secs: 5,
            udp_timeout_secs: 60,
            new_flow_rate: 0,
            fragment_capacity: 4096,
            fragment_timeout_ms: 2000,
            fragments_held: 64,
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
    /// The most memory every service's table may take together, in MiB, counting
    /// twice while a new snapshot is built beside the running one.
    pub max_table_memory_mb: u32,
}

impl Default for Maglev {
    fn default() -> Self {
        Maglev {
            table_size: 65537,
            seed: 0,
            max_table_memory_mb: 1024,
        }
    }
}

impl Maglev {
    /// Bytes the tables of `services` take while a reload builds new ones beside
    /// them, twice what they take: two bytes a slot for Maglev's table, and four more
    /// for the steering of a service that tracks changes.
    pub fn table_memory(&self, services: &[Service]) -> u64 {
        let bytes_a_slot: u64 = services
            .iter()
            .map(|s| {
                if s.tracking() == Tracking::Changes {
                    6
                } else {
                    2
                }
            })
            .sum();
        2 * bytes_a_slot * u64::from(self.table_size)
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
    /// IPv4 or IPv6; the service's targets are of the same family.
    pub vip: IpAddr,
    /// 0 = every port of the protocol.
    pub port: u16,
    pub protocol: Protocol,
    /// How targets are probed; none = every target counts as healthy.
    #[serde(default)]
    pub health: Option<Probe>,
    /// The DSR doctor's in-path probe (to the VIP through the target's MAC, as a
    /// client's frame goes) as a health check too: a target that fails it leaves
    /// the table. Without it the doctor still probes and shows what it finds.
    #[serde(default)]
    pub dsr_check: Option<DsrCheck>,
    /// ICMP destination unreachable about the service's flows ("fragmentation
    /// needed" from a router on the clients' path): to the target that owns the flow,
    /// which path MTU discovery needs, or dropped.
    #[serde(default)]
    pub icmp_errors: IcmpErrors,
    /// How flows keep their target when the table changes; default: `changes` for
    /// TCP, `full` for UDP (see `Service::tracking`).
    #[serde(default)]
    pub tracking: Option<Tracking>,
    /// The 802.1Q VLAN of the service's VIP and targets, if not the port's: the VIP's
    /// announcements, its targets' resolution and the doctor's probes go tagged so.
    #[serde(default)]
    pub vlan: Option<u16>,
    #[serde(default)]
    pub targets: Vec<Target>,
}

/// How a service keeps each flow on its target when its table changes (a target
/// added, drained, reweighted, failed or recovered). The dataplane reads this type
/// as it is (`dataplane::snapshot::Tracking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tracking {
    /// Every frame looks its flow up in the connection table, and every flow is
    /// recorded (UDP's default: without a SYN, a flow's first frame is not known as
    /// such). The default of a dataplane spec that names none.
    #[default]
    Full,
    /// Maglev first: the connection table only on slots a change marked, and flows
    /// recorded at their SYN (TCP's default; see dataplane's `steering`). TCP only.
    Changes,
    /// Maglev alone, nothing recorded: a change moves the flows on the slots it
    /// changes (a target that fails or leaves loses its flows either way).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IcmpErrors {
    #[default]
    Forward,
    Drop,
}

/// The in-path probe as a health check. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DsrCheck {
    /// The port probed; default: the service's (needed for an every-port service).
    #[serde(default)]
    pub port: Option<u16>,
    /// What a UDP probe carries, at most DSR_PAYLOAD_MAX bytes: something the
    /// service answers.
    #[serde(default = "default_dsr_payload")]
    pub payload: String,
    #[serde(default = "default_dsr_interval_ms")]
    pub interval_ms: u32,
    #[serde(default = "default_dsr_timeout_ms")]
    pub timeout_ms: u32,
    #[serde(default = "default_rise")]
    pub rise: u32,
    #[serde(default = "default_rise")]
    pub fall: u32,
}

/// The most a UDP in-path probe carries: it is sent in a minimum-size frame.
pub const DSR_PAYLOAD_MAX: usize = 18;

impl Default for DsrCheck {
    fn default() -> Self {
        DsrCheck {
            port: None,
            payload: default_dsr_payload(),
            interval_ms: default_dsr_interval_ms(),
            timeout_ms: default_dsr_timeout_ms(),
            rise: default_rise(),
            fall: default_rise(),
        }
    }
}

fn default_dsr_payload() -> String {
    "dsrlb-doctor".to_owned()
}
fn default_dsr_interval_ms() -> u32 {
    1000
}
fn default_dsr_timeout_ms() -> u32 {
    500
}

impl Service {
    /// The `tracking` set, or the protocol's default: `changes` needs TCP's SYN to
    /// tell a new flow from an old one, UDP has none.
    pub fn tracking(&self) -> Tracking {
        self.tracking.unwrap_or(match self.protocol {
            Protocol::Tcp => Tracking::Changes,
            Protocol::Udp => Tracking::Full,
        })
    }

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
    /// Of the service's address family.
    pub address: IpAddr,
    /// Static MAC; without it dsrlb resolves the MAC by ARP (IPv6: neighbour
    /// solicitation).
    #[serde(default)]
    pub mac: Option<Mac>,
    /// Share of new flows (0 = drain: keeps its flows, gets no new ones).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Where probes go (the target's management address, of either family);
    /// default: `address`.
    #[serde(default)]
    pub probe_address: Option<IpAddr>,
    /// Changes to the service's probe for this target.
    #[serde(default)]
    pub health: Option<ProbeOverride>,
}

impl Target {
    pub fn probe_address(&self) -> IpAddr {
        self.probe_address.unwrap_or(self.address)
    }
}

fn default_weight() -> u32 {
    100
}

impl Config {
    /// The VIPs of the services, once each, sorted.
    pub fn vips(&self) -> Vec<IpAddr> {
        let mut vips: Vec<IpAddr> = self.services.iter().map(|s| s.vip).collect();
        vips.sort();
        vips.dedup();
        vips
    }

    /// The IPv4 VIPs, once each, sorted: ARP announces them, BGP routes them.
    pub fn vips_v4(&self) -> Vec<Ipv4Addr> {
        let v4 = |vip| match vip {
            IpAddr::V4(vip) => Some(vip),
            IpAddr::V6(_) => None,
        };
        self.vips().into_iter().filter_map(v4).collect()
    }

    /// The IPv6 VIPs, once each, sorted: neighbour discovery announces them.
    pub fn vips_v6(&self) -> Vec<Ipv6Addr> {
        let v6 = |vip| match vip {
            IpAddr::V6(vip) => Some(vip),
            IpAddr::V4(_) => None,
        };
        self.vips().into_iter().filter_map(v6).collect()
    }

    /// Total rx queues, i.e. workers.
    pub fn worker_count(&self) -> usize {
        self.ports.iter().map(|p| usize::from(p.queues)).sum()
    }

    /// The mbufs that can be out of the pool at once.
    pub fn mbuf_budget(&self) -> MbufBudget {
        let d = &self.dataplane;
        let (mut rx, mut tx) = (0, 0);
        for port in &self.ports {
            let (rx_queues, tx_queues) = port.queue_pairs();
            rx += rx_queues * u64::from(port.rx_ring_size);
            tx += tx_queues * u64::from(port.tx_ring_size);
        }
        let workers = self.worker_count() as u64;
        MbufBudget {
            rx,
            tx,
            // DPDK lets a cache grow to 1.5 times its size before it flushes.
            caches: (workers + 1) * (u64::from(d.mbuf_cache) * 3).div_ceil(2),
            // A burst being decided and one waiting to be sent.
            bursts: workers * 2 * BURST_SIZE as u64,
            control: (PUNT_QUEUE + self.ports.len() * INJECT_QUEUE) as u64,
        }
    }
}

/// What the mbuf pool must cover so that nothing starves: every rx and tx ring full,
/// every lcore's cache full, the workers' bursts in flight and the control thread's
/// queues full. Fewer, and a full punt queue or a slow tx ring leaves an rx ring
/// without mbufs to refill it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbufBudget {
    pub rx: u64,
    pub tx: u64,
    pub caches: u64,
    pub bursts: u64,
    pub control: u64,
}

impl MbufBudget {
    pub fn total(&self) -> u64 {
        self.rx + self.tx + self.caches + self.bursts + self.control
    }
}

impl fmt::Display for MbufBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx rings {} + tx rings {} + lcore caches {} + bursts {} + control queues {}",
            self.rx, self.tx, self.caches, self.bursts, self.control
        )
    }
}
