//! What the fuzz targets share: how an input becomes a sequence of frames, the
//! snapshot the decision runs with, and a control loop that answers the control
//! socket's and the metrics listener's questions from an `Appliance` over the
//! stand-in dataplane, as `dsrlb run` answers them from its own.
#![allow(clippy::unwrap_used)]

use control::appliance::Appliance;
use control::ctl::{self, Asker};
use control::stand_in::StandIn;
use dataplane::snapshot::{ArpAnswers, ServiceSpec, Snapshot, SnapshotSpec, TargetSpec, Tracking};
use dataplane::wire::{IpProtocol, MacAddr};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// One frame of a fuzz input: how far the clock moves before it, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub step_ms: u64,
    pub frame: &'a [u8],
}

/// Splits an input into records: [step: u8][length: u16 LE][frame], repeated; the
/// last record takes what is left when its length says more. The clock moves by
/// `step` times 50 ms, so flows may expire (the shortest timeout is 5 s).
pub fn records(mut input: &[u8]) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let (&step, rest) = input.split_first()?;
        let (len, rest) = match rest {
            [lo, hi, rest @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), rest),
            _ => (rest.len(), &rest[rest.len()..]),
        };
        let (frame, rest) = rest.split_at(len.min(rest.len()));
        input = rest;
        Some(Record {
            step_ms: u64::from(step) * 50,
            frame,
        })
    })
}

/// The record encoding of `frames`, each after a clock step of `step`: the seeds.
pub fn encode(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (step, frame) in frames {
        out.push(*step);
        out.extend_from_slice(&(frame.len() as u16).to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

pub const PORT_MAC: MacAddr = MacAddr([0x02, 0xdd, 0, 0, 0, 0x02]);
pub const REAL: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
pub const OTHER_VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 101);
pub const REAL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 2);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x100);

pub fn target_mac(last: u8) -> MacAddr {
    MacAddr([0x02, 0x11, 0, 0, 0, last])
}

fn target(last: u8, weight: u32, healthy: bool) -> TargetSpec {
    TargetSpec {
        addr: Ipv4Addr::new(10, 99, 0, last).into(),
        mac: Some(target_mac(last)),
        weight,
        healthy,
    }
}

/// A target at fd00:99::`last`, the same host as `target(last, ..)`.
fn target6(last: u8, weight: u32, healthy: bool) -> TargetSpec {
    TargetSpec {
        addr: Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, u16::from(last)).into(),
        ..target(last, weight, healthy)
    }
}

/// A snapshot as a running appliance has one: VIP:80/tcp over three targets (one
/// drained), VIP:any/udp over two, OTHER_VIP:443/tcp whose only target is down, and
/// a target whose MAC is not known yet, and VIP6:80/tcp over two IPv6 targets. `variant` 1 takes a target out, as a health
/// change would; built over `previous` as the control thread builds it.
pub fn snapshot(variant: u8, previous: Option<&Snapshot>) -> Snapshot {
    let unresolved = TargetSpec {
        mac: None,
        ..target(14, 1, true)
    };
    let web = vec![
        target(11, 1, true),
        target(12, 1, variant != 1),
        target(13, 0, true),
        unresolved,
    ];
    let spec = SnapshotSpec {
        real_addr: REAL,
        real_addr6: Some(REAL6),
        arp_answers: ArpAnswers::Every,
        seed: 42,
        table_size: 251,
        services: vec![
            ServiceSpec {
                forwards_icmp_errors: true,
                tracking: Tracking::Changes,
                vip: VIP.into(),
                proto: IpProtocol::Tcp,
                port: 80,
                targets: web,
            },
            ServiceSpec {
                forwards_icmp_errors: true,
                tracking: Tracking::Full,
                vip: VIP.into(),
                proto: IpProtocol::Udp,
                port: 0,
                targets: vec![target(11, 1, true), target(12, 2, true)],
            },
            ServiceSpec {
                forwards_icmp_errors: true,
                tracking: Tracking::None,
                vip: OTHER_VIP.into(),
                proto: IpProtocol::Tcp,
                port: 443,
                targets: vec![target(15, 1, false)],
            },
            ServiceSpec {
                forwards_icmp_errors: true,
                tracking: Tracking::Changes,
                vip: VIP6.into(),
                proto: IpProtocol::Tcp,
                port: 80,
                targets: vec![target6(11, 1, true), target6(12, 1, variant != 1)],
            },
        ],
    };
    Snapshot::build(&spec, previous).unwrap()
}

/// The configuration the control-loop targets run with: what config/examples
/// describes, on a ring device (nothing is started).
pub const APPLIANCE_CONFIG: &str = r#"
[appliance]
address = "10.99.0.2"
address6 = "fd00:99::2"
[dataplane]
worker_lcores = [1]
[[ports]]
name = "data"
device = "net_ring0"
[[services]]
name = "web"
vip = "10.99.0.100"
port = 80
protocol = "tcp"
targets = [{ address = "10.99.0.11" }, { address = "10.99.0.12", mac = "02:00:00:00:00:0c" }]
[[services]]
vip = "10.99.0.100"
port = 0
protocol = "udp"
targets = [{ address = "10.99.0.12", mac = "02:00:00:00:00:0c", weight = 3 }]
[[services]]
name = "web6"
vip = "fd00:99::100"
port = 80
protocol = "tcp"
targets = [{ address = "fd00:99::11" }, { address = "fd00:99::12", mac = "02:00:00:00:00:0c" }]
"#;

/// An asker answered by a control loop of its own thread: an `Appliance` for
/// APPLIANCE_CONFIG (in a temporary directory, so that reload reads it) over the
/// stand-in dataplane, answering with `control::run::answer` like `dsrlb run`.
pub fn asker() -> &'static Asker {
    static ASKER: OnceLock<Asker> = OnceLock::new();
    ASKER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dsrlb-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dsrlb.toml");
        std::fs::write(&path, APPLIANCE_CONFIG).unwrap();
        let (asker, questions) = ctl::channel();
        std::thread::spawn(move || {
            let config = config::Config::load(&path).unwrap();
            let (mut appliance, snapshot) = Appliance::new(config, path).unwrap();
            let mut dp = StandIn::new(snapshot);
            appliance.tick(&mut dp, std::time::Duration::ZERO);
            for (request, reply) in questions {
                let _ = reply.send(control::run::answer(&mut appliance, &mut dp, request));
            }
        });
        asker
    })
}
