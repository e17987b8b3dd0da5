//! `dsrlb-micro`: control-plane and per-packet figures on plain buffers (no DPDK):
//! Maglev build time, flow-table memory per million flows, and decide() per packet
//! for 1 to 1M flows (the last cache-hostile), and the control loop's longest pause
//! during a reload that builds large tables. Medians of repeated runs; prints
//! figures and a JSON line, asserts nothing.

use clap::Parser;
use control::api::Reply;
use control::appliance::{Appliance, TICK};
use control::stand_in::StandIn;
use dataplane::craft::{tcp6_frame, tcp_frame};
use dataplane::flow::{FlowTable, FlowTableConfig};
use dataplane::forward::{decide, Context, Verdict};
use dataplane::maglev::{MaglevTable, MaglevTarget};
use dataplane::snapshot::{ArpAnswers, ServiceSpec, Snapshot, SnapshotSpec, TargetSpec, Tracking};
use dataplane::wire::tcp::FLAG_ACK;
use dataplane::wire::{IpProtocol, MacAddr};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "dsrlb micro-benchmarks: Maglev build, flow-table memory, decide() per packet")]
struct Args {
    /// Fewer repetitions and packets (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Only the same-flow runs, IPv4 then IPv6 (small enough for callgrind, whose
    /// inclusive count of `run_ns_ipv4` / `run_ns_ipv6` over the packets is their
    /// instructions a frame).
    #[arg(long)]
    runs_only: bool,
}

const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn maglev_build_ms(n: usize, reps: usize) -> f64 {
    let targets: Vec<MaglevTarget> = (0..n)
        .map(|i| MaglevTarget {
            identity: 0x0a00_0000 + i as u64,
            weight: 100,
        })
        .collect();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                black_box(MaglevTable::build(black_box(&targets), 65537, 0).expect("build"));
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x100);

/// VIP:80/tcp and [VIP6]:80/tcp, each over `targets` targets of its family (the
/// same hosts' MACs).
fn snapshot(targets: usize) -> Snapshot {
    let service = |vip: IpAddr, addr: &dyn Fn(u8) -> IpAddr| ServiceSpec {
        forwards_icmp_errors: true,
        tracking: Tracking::Changes,
        vip,
        proto: IpProtocol::Tcp,
        port: 80,
        targets: (1..=targets as u8)
            .map(|i| TargetSpec {
                addr: addr(i),
                mac: Some(MacAddr([2, 0x11, 0, 0, 0, i])),
                weight: 1,
                healthy: true,
            })
            .collect(),
    };
    let v4 = |i| Ipv4Addr::new(10, 99, 1, i).into();
    let v6 = |i| Ipv6Addr::new(0xfd00, 0x99, 1, 0, 0, 0, 0, u16::from(i)).into();
    Snapshot::build(
        &SnapshotSpec {
            real_addr: Ipv4Addr::new(10, 99, 0, 2),
            real_addr6: Some(Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 2)),
            arp_answers: ArpAnswers::Every,
            seed: 0,
            table_size: 65537,
            services: vec![service(VIP.into(), &v4), service(VIP6.into(), &v6)],
        },
        None,
    )
    .expect("snapshot")
}

/// One TCP ACK of flow `f` of the decide figures, to VIP:80 or [VIP6]:80.
fn flow_frame(f: usize, ipv6: bool) -> Vec<u8> {
    let (client, port) = ((f / 60000) as u32, 1024 + (f % 60000) as u16);
    let client_mac = MacAddr([2, 0xcc, 0, 0, 0, 1]);
    if ipv6 {
        let client6 = Ipv6Addr::new(
            0xfd00,
            0x99,
            2,
            0,
            0,
            0,
            (client >> 16) as u16,
            client as u16,
        );
        tcp6_frame(PORT_MAC, client_mac, (client6, port), (VIP6, 80), FLAG_ACK)
    } else {
        let client4 = Ipv4Addr::from(0x0a63_0200 + client);
        tcp_frame(PORT_MAC, client_mac, (client4, port), (VIP, 80), FLAG_ACK)
    }
}

/// 100 services of 16 targets each, M = 65537, with `seed` and target 1's MAC.
fn hundred_services(seed: u64, mac_last: u8) -> SnapshotSpec {
    let services = (0..100u32)
        .map(|s| ServiceSpec {
            forwards_icmp_errors: true,
            tracking: Tracking::Changes,
            vip: Ipv4Addr::from(0x0a63_0064 + s).into(),
            proto: IpProtocol::Tcp,
            port: 80,
            targets: (1..=16u8)
                .map(|t| TargetSpec {
                    addr: Ipv4Addr::new(10, 99, 1, t).into(),
                    mac: Some(MacAddr([
                        2,
                        0x11,
                        0,
                        0,
                        0,
                        if t == 1 { mac_last } else { t },
                    ])),
                    weight: 1,
                    healthy: true,
                })
                .collect(),
        })
        .collect();
    SnapshotSpec {
        real_addr: Ipv4Addr::new(10, 99, 0, 2),
        real_addr6: None,
        arp_answers: ArpAnswers::Every,
        seed,
        table_size: 65537,
        services,
    }
}

/// ms to rebuild the 100-service snapshot after one target's MAC moved (every
/// Maglev table kept), and after a change that touches every table (a new seed).
fn rebuild_ms(reps: usize) -> (f64, f64) {
    let first = Snapshot::build(&hundred_services(0, 1), None).expect("snapshot");
    let time = |spec: &SnapshotSpec| {
        median(
            (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    black_box(Snapshot::build(black_box(spec), Some(&first)).expect("rebuild"));
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        )
    };
    (
        time(&hundred_services(0, 0x99)),
        time(&hundred_services(1, 1)),
    )
}

/// A reload that builds `services` new tables of `table_size` slots, by the control
/// state over the stand-in dataplane: how long it took, how many passes the control
/// loop (probes, ARP) made meanwhile and its longest pause between two. Before the
/// tables were built aside, the pause was the whole build.
fn reload_pause(services: usize, table_size: u32) -> (f64, usize, f64) {
    let dir = std::env::temp_dir().join(format!("dsrlb-micro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join("dsrlb.toml");
    let head = "[appliance]\naddress = \"10.99.0.2\"\n[dataplane]\nworker_lcores = [1]\n[[ports]]\nname = \"data\"\ndevice = \"net_ring0\"\n";
    let service = |i: usize| {
        format!(
            "[[services]]\nvip = \"10.99.{}.{}\"\nport = 80\nprotocol = \"tcp\"\ntargets = [{{ address = \"10.99.0.11\", mac = \"02:00:00:00:00:0b\" }}, {{ address = \"10.99.0.12\", mac = \"02:00:00:00:00:0c\" }}]\n",
            100 + i / 200,
            i % 200 + 1
        )
    };
    let all: String = (0..services).map(service).collect();
    std::fs::write(&path, format!("{head}{all}")).expect("config");
    let config = config::Config::load(&path).expect("config");
    let (mut app, snapshot) = Appliance::new(config, path.clone()).expect("appliance");
    let mut dp = StandIn::new(snapshot);
    app.tick(&mut dp, Duration::ZERO);
    // Room for every steering table twice (6 bytes a slot, see config::Maglev).
    let big =
        format!("[maglev]\ntable_size = {table_size}\nmax_table_memory_mb = 4096\n{head}{all}");
    std::fs::write(&path, big).expect("config");
    dp.passes.clear();
    let start = Instant::now();
    let reply = app.reload_logged(&mut dp);
    let took = start.elapsed();
    assert!(matches!(reply, Reply::Done(_)), "{reply:?}");
    let mut marks = vec![start];
    marks.extend(&dp.passes);
    marks.push(start + took);
    let longest = marks.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(took);
    let _ = std::fs::remove_dir_all(dir);
    (
        took.as_secs_f64() * 1e3,
        dp.passes.len(),
        longest.as_secs_f64() * 1e3,
    )
}

/// ns per decide() over `flows` distinct flows, cycled, table sized 2x the flows.
fn decide_ns(snap: &Snapshot, flows: usize, ipv6: bool, packets: usize, reps: usize) -> f64 {
    let frames: Vec<Vec<u8>> = (0..flows).map(|f| flow_frame(f, ipv6)).collect();
    let mut table = FlowTable::new(FlowTableConfig {
        capacity: (flows * 2).max(1024),
        ipv6_capacity: (flows * 2).max(1024),
        ..FlowTableConfig::default()
    });
    let mut work: Vec<Vec<u8>> = frames.clone();
    // Warm: every flow in the table.
    for f in work.iter_mut() {
        black_box(decide(
            &mut Context::new(snap, PORT_MAC, &mut table, 0),
            f,
            None,
        ));
    }
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                let mut forwarded = 0usize;
                let mut next = 0usize;
                for _ in 0..packets {
                    // A wrapping index, not i % flows: a division per packet would be
                    // measured along with decide().
                    let f = &mut work[next];
                    next += 1;
                    if next == flows {
                        next = 0;
                    }
                    f[0..6].copy_from_slice(&PORT_MAC.0); // undo the last rewrite
                    let mut ctx = Context::new(snap, PORT_MAC, &mut table, 1);
                    if let Verdict::Forward { .. } = decide(&mut ctx, f, None) {
                        forwarded += 1;
                    }
                }
                assert_eq!(forwarded, packets);
                t.elapsed().as_secs_f64() * 1e9 / packets as f64
            })
            .collect(),
    )
}

/// ns per frame of one flow's TCP ACKs decided in a row, the run carried from frame
/// to frame as a worker carries it through a burst: all but the first two continue
/// the same-flow run.
#[inline(always)]
fn run_ns<const IPV6: bool>(snap: &Snapshot, packets: usize, reps: usize) -> f64 {
    let mut table = FlowTable::new(FlowTableConfig {
        capacity: 1024,
        ipv6_capacity: 1024,
        ..FlowTableConfig::default()
    });
    let mut frame = flow_frame(0, IPV6);
    median(
        (0..reps)
            .map(|_| {
                let mut ctx = Context::new(snap, PORT_MAC, &mut table, 1);
                let mut forwarded = 0usize;
                let t = Instant::now();
                for _ in 0..packets {
                    frame[0..6].copy_from_slice(&PORT_MAC.0); // undo the last rewrite
                    if let Verdict::Forward { .. } = decide(&mut ctx, black_box(&mut frame), None) {
                        forwarded += 1;
                    }
                }
                assert_eq!(forwarded, packets);
                t.elapsed().as_secs_f64() * 1e9 / packets as f64
            })
            .collect(),
    )
}

/// `run_ns` of each family in a function of its own, so that callgrind tells them
/// apart by name.
#[inline(never)]
fn run_ns_ipv4(snap: &Snapshot, packets: usize, reps: usize) -> f64 {
    run_ns::<false>(snap, packets, reps)
}

#[inline(never)]
fn run_ns_ipv6(snap: &Snapshot, packets: usize, reps: usize) -> f64 {
    run_ns::<true>(snap, packets, reps)
}

/// The same-flow run of each family, side by side.
fn runs(snap: &Snapshot, packets: usize, reps: usize) -> (f64, f64) {
    let (ns, ns6) = (
        run_ns_ipv4(snap, packets, reps),
        run_ns_ipv6(snap, packets, reps),
    );
    println!(
        "decide() per packet in a same-flow run (1 flow, the run carried; median of {reps} x {packets}): IPv4 {ns:.1} ns ({:.1} Mpps), IPv6 {ns6:.1} ns ({:.1} Mpps), IPv6/IPv4 rate {:.2}",
        1e3 / ns,
        1e3 / ns6,
        ns / ns6
    );
    (ns, ns6)
}

fn main() {
    let args = Args::parse();
    let (reps, packets) = if args.quick {
        (3, 1_000_000)
    } else {
        (7, 10_000_000)
    };
    if args.runs_only {
        runs(&snapshot(16), packets, reps);
        return;
    }

    println!("Maglev table build, M = 65537 (median of {reps})");
    let mut maglev = Vec::new();
    for n in [10, 100, 1000] {
        let ms = maglev_build_ms(n, reps);
        println!("  N = {n:>4} targets   {ms:>7.3} ms");
        maglev.push(format!("\"{n}\":{ms:.4}"));
    }

    // Memory for a capacity of 2^20 flows of each family (rounded up to whole,
    // power-of-two buckets; the other family's table at its smallest, one bucket),
    // and per entry it actually holds.
    let bucket = 64;
    let memory = |capacity: usize, ipv6_capacity: usize, entries: fn(&FlowTable) -> usize| {
        let table = FlowTable::new(FlowTableConfig {
            capacity,
            ipv6_capacity,
            ..FlowTableConfig::default()
        });
        (table.memory_bytes() - bucket, entries(&table))
    };
    let (per_million, v4_entries) = memory(1 << 20, 1, FlowTable::capacity);
    let (per_million_v6, v6_entries) = memory(1, 1 << 20, FlowTable::capacity_v6);
    for (family, bytes, entries) in [
        ("IPv4", per_million, v4_entries),
        ("IPv6", per_million_v6, v6_entries),
    ] {
        println!(
            "Flow table memory, {family}: {:.1} MiB for a capacity of 2^20 flows ({entries} entries, {:.1} bytes per entry)",
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / entries as f64
        );
    }

    let (moved, touched) = rebuild_ms(reps);
    println!(
        "Snapshot rebuild, 100 services x 16 targets, M = 65537 (median of {reps}): a MAC moved {moved:.2} ms (no table rebuilt), every table touched {touched:.1} ms"
    );

    let (services, table_size) = if args.quick {
        (10, 65537)
    } else {
        (100, 1_048_573)
    };
    let (reload_ms, passes, pause_ms) = reload_pause(services, table_size);
    println!(
        "Reload building {services} new tables of M = {table_size}: {reload_ms:.0} ms, {passes} control-loop passes meanwhile, longest pause {pause_ms:.1} ms (a pass waits up to {} ms for probe I/O; built in the loop, the pause was the whole reload)",
        TICK.as_millis()
    );

    let snap = snapshot(16);
    println!("decide() per packet, TCP ACKs, 16 targets (median of {reps} x {packets} packets): IPv4 (64-byte frames), IPv6 (74), IPv4's rate / IPv6's");
    let (mut decide, mut decide6) = (Vec::new(), Vec::new());
    for flows in [1usize, 1_000, 100_000, 1_000_000] {
        // Side by side, one after the other: the ratio is what the noise spares.
        let ns = decide_ns(&snap, flows, false, packets, reps);
        let ns6 = decide_ns(&snap, flows, true, packets, reps);
        println!(
            "  {flows:>9} flows   IPv4 {ns:>6.1} ns ({:.1} Mpps)   IPv6 {ns6:>6.1} ns ({:.1} Mpps)   IPv6/IPv4 rate {:.2}",
            1e3 / ns,
            1e3 / ns6,
            ns / ns6
        );
        decide.push(format!("\"{flows}\":{ns:.2}"));
        decide6.push(format!("\"{flows}\":{ns6:.2}"));
    }
    let (run, run6) = runs(&snap, packets, reps);
    println!(
        "json {{\"run_ns\":{run:.2},\"run_v6_ns\":{run6:.2},\"maglev_build_ms\":{{{}}},\"flow_table_bytes_per_2e20\":{per_million},\"flow_table_v6_bytes_per_2e20\":{per_million_v6},\"rebuild_ms\":{{\"mac_moved\":{moved:.3},\"all_tables\":{touched:.2}}},\"reload_ms\":{reload_ms:.1},\"reload_longest_pause_ms\":{pause_ms:.2},\"decide_ns\":{{{}}},\"decide_v6_ns\":{{{}}}}}",
        maglev.join(","),
        decide.join(","),
        decide6.join(",")
    );
}
