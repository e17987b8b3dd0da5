//! DPDK in-process: one EAL per test binary (`--no-huge`, no PCI), ports built from
//! rings the tests feed and drain, and `net_pcap` vdevs. Real mbufs through the real
//! worker loop; every test ends by checking the mempool is back to its starting
//! in-use count (no mbuf leaked or double-freed).
#![allow(clippy::unwrap_used)]

use crossbeam::queue::ArrayQueue;
use dataplane::craft::*;
use dataplane::dpdk::{
    launch, Eal, Mbuf, MbufBurst, MbufRing, Mempool, NoRoom, Port, PortConfig, BURST_SIZE,
};
use dataplane::flow::{FlowTable, FlowTableConfig};
use dataplane::forward::DropReason;
use dataplane::rcu::{self, Publisher};
use dataplane::snapshot::{ArpAnswers, ServiceSpec, Snapshot, SnapshotSpec, TargetSpec};
use dataplane::wire::tcp::{FLAG_ACK, FLAG_SYN};
use dataplane::wire::{ArpOperation, EtherType, IcmpMessage, IpProtocol, MacAddr};
use dataplane::worker::{IdleBackoff, Worker, WorkerQueues, WorkerStats};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// A well-formed IPv6 packet with 20 bytes of TCP, to an address no service of this
/// test's snapshot has.
fn ipv6_tcp() -> Vec<u8> {
    let (client, vip) = (
        "fd00:99::1".parse().unwrap(),
        "fd00:99::100".parse().unwrap(),
    );
    ipv6(client, vip, IpProtocol::Tcp, &[0; 20])
}

const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xcc, 0, 0, 0, 0x01]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const REAL: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 1);
const REAL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 2);
/// Not fd00:99::100, which `ipv6_tcp` sends to as an address no service has.
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x200);

static EAL: OnceLock<Eal> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Starts EAL once, and serialises the tests: they share lcore 1 and DPDK's port list.
fn dpdk() -> MutexGuard<'static, ()> {
    EAL.get_or_init(|| {
        let prefix = format!("--file-prefix=dsrlb-test-{}", std::process::id());
        Eal::init(&[
            "-l",
            "0,1",
            "--no-huge",
            "-m",
            "256",
            "--no-shconf",
            "--no-pci",
            &prefix,
            "--log-level=*:warning",
        ])
        .expect("EAL init")
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn unique(what: &str) -> String {
    format!("{what}{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

fn target_mac(last: u8) -> MacAddr {
    MacAddr([0x02, 0x11, 0, 0, 0, last])
}

fn spec(targets: &[u8], down: &[u8]) -> SnapshotSpec {
    let targets = targets
        .iter()
        .map(|&t| TargetSpec {
            addr: Ipv4Addr::new(10, 99, 0, t).into(),
            mac: Some(target_mac(t)),
            weight: 1,
            healthy: !down.contains(&t),
        })
        .collect::<Vec<_>>();
    let targets6 = (targets.iter())
        .map(|t| TargetSpec {
            addr: match t.addr {
                std::net::IpAddr::V4(a) => {
                    Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, u16::from(a.octets()[3])).into()
                }
                v6 => v6,
            },
            ..t.clone()
        })
        .collect();
    SnapshotSpec {
        real_addr: REAL,
        real_addr6: Some(REAL6),
        arp_answers: ArpAnswers::Every,
        seed: 1,
        table_size: 65537,
        services: vec![
            ServiceSpec {
                forwards_icmp_errors: true,
                tracking: Default::default(),
                vip: VIP.into(),
                proto: IpProtocol::Tcp,
                port: 80,
                targets: targets.clone(),
            },
            ServiceSpec {
                forwards_icmp_errors: true,
                tracking: Default::default(),
                vip: VIP.into(),
                proto: IpProtocol::Udp,
                port: 5353,
                targets,
            },
            ServiceSpec {
                forwards_icmp_errors: true,
                tracking: Default::default(),
                vip: VIP6.into(),
                proto: IpProtocol::Tcp,
                port: 80,
                targets: targets6,
            },
        ],
    }
}

/// A port made of two rings: the test enqueues on `input`, the port transmits to `output`.
struct Rig {
    worker: Worker,
    publisher: Publisher<Snapshot>,
    stats: Arc<WorkerStats>,
    punt: Arc<ArrayQueue<Mbuf>>,
    port: Port,
    input: MbufRing,
    output: MbufRing,
    pool: Mempool,
    port_mac: MacAddr,
}

impl Rig {
    fn new(tx_ring_size: u32, punt_capacity: usize) -> Rig {
        let pool = Mempool::new(&unique("pool"), 2047, 0, 2176, -1).unwrap();
        let input = MbufRing::new(&unique("in"), 1024).unwrap();
        let output = MbufRing::new(&unique("out"), tx_ring_size).unwrap();
        let mut port = Port::from_rings(&unique("net_rig"), &[&input], &[&output]).unwrap();
        port.configure_and_start(&PortConfig::default(), &pool)
            .unwrap();
        let port_mac = port.mac_addr().unwrap();
        let punt = Arc::new(ArrayQueue::new(punt_capacity));
        let (worker, stats, publisher) =
            worker_on(port.id(), port_mac, &[11, 12, 13, 14], Arc::clone(&punt));
        Rig {
            worker,
            publisher,
            stats,
            punt,
            port,
            input,
            output,
            pool,
            port_mac,
        }
    }

    fn feed(&self, frames: &[Vec<u8>]) {
        for f in frames {
            let m = self.pool.alloc_with(f).expect("mbuf");
            self.input.enqueue(m).expect("input ring has room");
        }
    }

    /// Polls until the input is empty and nothing is held for lookahead.
    fn poll_all(&mut self) {
        while self.input.count() > 0 {
            self.worker.poll_once();
        }
        while self.worker.poll_once() != 0 {}
    }

    /// The same rig, its worker deciding every burst one poll late (the path taken
    /// from `LOOKAHEAD_FROM_LIVE_FLOWS` live flows).
    fn looking_ahead(self) -> Rig {
        Rig {
            worker: self.worker.with_lookahead_from(0),
            ..self
        }
    }

    /// The same rig with a fresh worker whose flow table holds `capacity` entries.
    fn with_flow_capacity(self, capacity: usize) -> Rig {
        self.with_flows(FlowTableConfig {
            capacity,
            ..FlowTableConfig::default()
        })
    }

    /// The same rig with a fresh worker whose flow table is made as `config` says.
    fn with_flows(self, config: FlowTableConfig) -> Rig {
        let (worker, stats, publisher) = worker_with_flows(
            self.port.id(),
            self.port_mac,
            &[11, 12, 13, 14],
            Arc::clone(&self.punt),
            config,
        );
        Rig {
            worker,
            stats,
            publisher,
            ..self
        }
    }

    fn take_output(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.output.dequeue())
            .map(|m| m.data().to_vec())
            .collect()
    }

    /// Everything allocated is back in the pool.
    fn assert_no_leak(self) {
        let Rig {
            worker,
            punt,
            port,
            input,
            output,
            pool,
            ..
        } = self;
        drop(worker);
        while punt.pop().is_some() {}
        drop(port);
        drop(input);
        drop(output);
        assert_eq!(pool.in_use(), 0, "mbufs leaked");
    }
}

/// A worker on queue 0 of `port`, answering as `mac`, with a snapshot of `targets`
/// (10.99.0.N for each N) and a flow table of 16k entries.
fn worker_on(
    port: u16,
    mac: MacAddr,
    targets: &[u8],
    punt: Arc<ArrayQueue<Mbuf>>,
) -> (Worker, Arc<WorkerStats>, Publisher<Snapshot>) {
    let flows = FlowTableConfig {
        capacity: 1 << 14,
        ..FlowTableConfig::default()
    };
    worker_with_flows(port, mac, targets, punt, flows)
}

fn worker_with_flows(
    port: u16,
    mac: MacAddr,
    targets: &[u8],
    punt: Arc<ArrayQueue<Mbuf>>,
    flows: FlowTableConfig,
) -> (Worker, Arc<WorkerStats>, Publisher<Snapshot>) {
    let snapshot = Arc::new(Snapshot::build(&spec(targets, &[]), None).unwrap());
    let (publisher, mut readers) = rcu::cell(snapshot, 1);
    let stats = Arc::new(WorkerStats::default());
    let worker = Worker::new(
        WorkerQueues {
            port,
            rx_queue: 0,
            tx_queue: 0,
            port_mac: mac,
        },
        FlowTable::new(flows),
        readers.remove(0),
        Arc::clone(&stats),
        punt,
        IdleBackoff::new(16, Duration::from_micros(50)),
    );
    (worker, stats, publisher)
}

fn syn(src_port: u16, mac: MacAddr) -> Vec<u8> {
    tcp_frame(mac, CLIENT_MAC, (CLIENT, src_port), (VIP, 80), FLAG_SYN)
}

#[test]
fn worker_forwards_replies_punts_and_drops_real_mbufs() {
    forwards_replies_punts_and_drops(false);
}

#[test]
fn worker_looking_ahead_forwards_replies_punts_and_drops_real_mbufs() {
    forwards_replies_punts_and_drops(true);
}

fn forwards_replies_punts_and_drops(lookahead: bool) {
    let _dpdk = dpdk();
    let mut rig = Rig::new(1024, 64);
    if lookahead {
        rig = rig.looking_ahead();
    }
    let mac = rig.port_mac;
    let echo = ethernet(
        mac,
        CLIENT_MAC,
        EtherType::Ipv4,
        &ipv4(
            CLIENT,
            VIP,
            IpProtocol::Icmp,
            &icmp_echo(IcmpMessage::EchoRequest, 1, 1, b"x"),
        ),
    );
    let arp_req = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::Request,
        (CLIENT_MAC, CLIENT),
        (MacAddr::ZERO, VIP),
    );
    let arp_reply = arp_frame(
        mac,
        ArpOperation::Reply,
        (target_mac(11), Ipv4Addr::new(10, 99, 0, 11)),
        (mac, REAL),
    );
    let inputs = vec![
        syn(40000, mac),
        udp_frame(mac, CLIENT_MAC, (CLIENT, 40001), (VIP, 5353), b"q"),
        echo,
        arp_req,
        arp_reply.clone(),
        ethernet(mac, CLIENT_MAC, EtherType::Ipv6, &ipv6_tcp()),
        syn(40002, mac)[..20].to_vec(),
        tcp_frame(mac, CLIENT_MAC, (CLIENT, 40003), (VIP, 443), FLAG_SYN),
    ];
    rig.feed(&inputs);
    rig.poll_all();
    let out = rig.take_output();
    assert_eq!(out.len(), 4, "2 forwarded + echo reply + ARP reply");

    for (sent, got) in inputs[..2].iter().zip(&out[..2]) {
        let dst = MacAddr::from_bytes(&got[0..6]);
        assert!(
            [11, 12, 13, 14].iter().any(|&t| target_mac(t) == dst),
            "dst MAC {dst} is a target's"
        );
        assert_eq!(&got[6..12], &mac.0, "src MAC is the port's");
        assert_eq!(&got[12..], &sent[12..], "nothing else changed");
    }
    let echo_reply = ethernet(
        CLIENT_MAC,
        mac,
        EtherType::Ipv4,
        &ipv4(
            VIP,
            CLIENT,
            IpProtocol::Icmp,
            &icmp_echo(IcmpMessage::EchoReply, 1, 1, b"x"),
        ),
    );
    assert_eq!(out[2], echo_reply);
    assert_eq!(
        out[3],
        arp_frame(
            CLIENT_MAC,
            ArpOperation::Reply,
            (mac, VIP),
            (CLIENT_MAC, CLIENT)
        )
    );

    let punted = rig.punt.pop().expect("ARP reply punted");
    assert_eq!(punted.data(), &arp_reply[..]);
    drop(punted);

    let c = rig.stats.read();
    assert_eq!(c.counts.rx_packets, 8);
    assert_eq!(c.counts.bursts, 1, "8 frames, one burst");
    assert_eq!(
        (
            c.counts.forwarded,
            c.counts.replied,
            c.counts.punted,
            c.counts.tx_packets
        ),
        (2, 2, 1, 4)
    );
    assert_eq!(
        c.drop_count(DropReason::NotOurAddress),
        1,
        "IPv6 to no VIP of its"
    );
    assert_eq!(c.drop_count(DropReason::Truncated), 1);
    assert_eq!(c.drop_count(DropReason::NoService), 1);
    assert_eq!(c.dropped(), 3);
    assert_eq!(c.counts.flows_live, 2);
    rig.assert_no_leak();
}

/// A table of one bucket, five new flows in one burst: the first three are
/// remembered, the other two find only active flows there and go by Maglev alone;
/// all five are forwarded, and the worker's counters say so.
#[test]
fn new_flows_a_full_bucket_cannot_take_are_forwarded_and_counted() {
    let _dpdk = dpdk();
    let mut rig = Rig::new(1024, 64).with_flow_capacity(3);
    let mac = rig.port_mac;
    let frames: Vec<Vec<u8>> = (0..5).map(|i| syn(20_000 + i, mac)).collect();
    rig.feed(&frames);
    rig.poll_all();
    assert_eq!(rig.take_output().len(), 5, "every flow forwarded");
    let c = rig.stats.read();
    assert_eq!(c.counts.forwarded, 5);
    assert_eq!(
        (
            c.counts.flows_live,
            c.counts.flows_inserted,
            c.counts.flow_bucket_full,
            c.counts.flows_evicted
        ),
        (3, 3, 2, 0)
    );
    rig.assert_no_leak();
}

#[test]
fn flows_spread_over_targets_and_stick_to_them() {
    spread_and_stick(false);
}

#[test]
fn flows_spread_over_targets_and_stick_to_them_looking_ahead() {
    spread_and_stick(true);
}

fn spread_and_stick(lookahead: bool) {
    let _dpdk = dpdk();
    let mut rig = Rig::new(1024, 64);
    if lookahead {
        rig = rig.looking_ahead();
    }
    let mac = rig.port_mac;
    let mut first = Vec::new();
    let mut counts = std::collections::HashMap::<MacAddr, u32>::new();
    for batch in 0..4u16 {
        let frames: Vec<Vec<u8>> = (0..500)
            .map(|i| syn(10_000 + batch * 500 + i, mac))
            .collect();
        rig.feed(&frames);
        rig.poll_all();
        for f in rig.take_output() {
            let dst = MacAddr::from_bytes(&f[0..6]);
            *counts.entry(dst).or_default() += 1;
            first.push(dst);
        }
    }
    assert_eq!(first.len(), 2000);
    for t in [11, 12, 13, 14] {
        let n = counts.get(&target_mac(t)).copied().unwrap_or(0);
        assert!((300..=700).contains(&n), "target {t} got {n} of 2000");
    }
    // The same flows again, as ACKs: each goes where its SYN went.
    let acks: Vec<Vec<u8>> = (0..2000u16)
        .map(|i| tcp_frame(mac, CLIENT_MAC, (CLIENT, 10_000 + i), (VIP, 80), FLAG_ACK))
        .collect();
    let mut again = Vec::new();
    for chunk in acks.chunks(500) {
        rig.feed(chunk);
        rig.poll_all();
        again.extend(
            rig.take_output()
                .iter()
                .map(|f| MacAddr::from_bytes(&f[0..6])),
        );
    }
    assert_eq!(again, first);
    rig.assert_no_leak();
}

#[test]
fn per_target_packets_bytes_and_active_flows_and_per_service_drops() {
    let _dpdk = dpdk();
    let mut rig = Rig::new(1024, 64);
    let mac = rig.port_mac;
    let frames: Vec<Vec<u8>> = (0..400).map(|i| syn(20_000 + i, mac)).collect();
    let frame_len = frames[0].len() as u64;
    rig.feed(&frames);
    rig.poll_all();
    let mut by_mac = std::collections::HashMap::<MacAddr, u64>::new();
    for f in rig.take_output() {
        *by_mac.entry(MacAddr::from_bytes(&f[0..6])).or_default() += 1;
    }
    // Empty polls walk the flow table, one whole walk a second at most: two more
    // walks hold at least one whole walk begun after the last change.
    walk_twice(&mut rig.worker, &rig.stats);
    let snap = rig.publisher.current();
    let service = snap.service(u32::from(VIP), 6, 80).unwrap();
    let slots = &rig.stats.slots;
    let mut total = 0;
    for &slot in &service.target_slots {
        let t = snap.target(slot).unwrap();
        let sent = by_mac.get(&t.mac).copied().unwrap_or(0);
        assert!(sent > 0, "every target got flows");
        assert_eq!(slots.target_packets(slot), sent, "packets of slot {slot}");
        assert_eq!(slots.target_bytes(slot), sent * frame_len);
        assert_eq!(slots.target_flows(slot), sent, "one live flow per SYN");
        total += slots.target_flows(slot);
    }
    assert_eq!(total, 400);
    assert!(slots.flow_walks.load(Ordering::Relaxed) >= 1);
    let service_slot = service.slot;
    let next = Snapshot::build(&spec(&[11, 12, 13, 14], &[11, 12, 13, 14]), Some(&snap)).unwrap();
    drop(snap);

    // Every target down: new SYNs are dropped against the service. The publisher
    // waits for the worker's quiescent state, so it runs beside the polling.
    let Rig {
        worker, publisher, ..
    } = &mut rig;
    std::thread::scope(|scope| {
        let publishing = scope.spawn(|| publisher.publish(Arc::new(next), Duration::from_secs(5)));
        while !publishing.is_finished() {
            worker.poll_once();
        }
        assert!(publishing.join().unwrap());
    });
    rig.feed(&(0..10).map(|i| syn(40_000 + i, mac)).collect::<Vec<_>>());
    rig.poll_all();
    assert!(rig.take_output().is_empty());
    assert_eq!(rig.stats.slots.service_drops(service_slot), 10);
    assert_eq!(rig.stats.read().drop_count(DropReason::NoUsableTarget), 10);
    walk_twice(&mut rig.worker, &rig.stats);
    let snap = rig.publisher.current();
    for &slot in &snap.service(u32::from(VIP), 6, 80).unwrap().target_slots {
        assert_eq!(
            rig.stats.slots.target_flows(slot),
            0,
            "flows pinned to a down target are not active: they move at their next packet"
        );
    }
    drop(snap);
    rig.assert_no_leak();
}

/// Polls an idle worker until it has finished two more walks of its flow table.
fn walk_twice(worker: &mut Worker, stats: &WorkerStats) {
    let walks = || stats.slots.flow_walks.load(Ordering::Relaxed);
    let (before, deadline) = (walks(), Instant::now() + Duration::from_secs(5));
    while walks() < before + 2 {
        assert_eq!(worker.poll_once(), 0);
        assert!(
            Instant::now() < deadline,
            "no two walks of the flow table in 5 s"
        );
    }
}

#[test]
fn frames_the_driver_does_not_take_are_freed_and_counted() {
    let _dpdk = dpdk();
    let mut rig = Rig::new(8, 64); // the tx ring holds 7
    let mac = rig.port_mac;
    rig.feed(&(0..20).map(|i| syn(20_000 + i, mac)).collect::<Vec<_>>());
    rig.worker.poll_once();
    let c = rig.stats.read();
    assert_eq!(
        (
            c.counts.rx_packets,
            c.counts.forwarded,
            c.counts.tx_packets,
            c.counts.tx_dropped
        ),
        (20, 20, 7, 13)
    );
    assert_eq!(rig.take_output().len(), 7);
    rig.assert_no_leak();
}

/// `MbufBurst::tx` on a port whose tx ring takes fewer than the burst holds: the
/// sent leave the burst, the rest stay in order for the next call, and a call that
/// sends everything leaves the burst empty.
#[test]
fn a_burst_keeps_in_order_what_the_driver_does_not_take() {
    let _dpdk = dpdk();
    let rig = Rig::new(8, 1); // the tx ring holds 7
    let mut burst = MbufBurst::new();
    for i in 0..10u8 {
        burst.push(rig.pool.alloc_with(&[i; 60]).unwrap()).unwrap();
    }
    assert_eq!(burst.tx(rig.port.id(), 0), 7);
    let firsts = |burst: &MbufBurst| {
        (0..burst.len())
            .map(|i| burst.frame(i).unwrap()[0])
            .collect::<Vec<_>>()
    };
    assert_eq!(firsts(&burst), [7, 8, 9]);
    let sent: Vec<u8> = rig.take_output().iter().map(|f| f[0]).collect();
    assert_eq!(sent, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(burst.tx(rig.port.id(), 0), 3);
    assert!(burst.is_empty());
    assert_eq!(burst.tx(rig.port.id(), 0), 0);
    let sent: Vec<u8> = rig.take_output().iter().map(|f| f[0]).collect();
    assert_eq!(sent, [7, 8, 9]);
    rig.assert_no_leak();
}

#[test]
fn punts_past_the_queue_capacity_are_freed_and_counted() {
    let _dpdk = dpdk();
    let mut rig = Rig::new(1024, 1);
    let mac = rig.port_mac;
    let reply = arp_frame(
        mac,
        ArpOperation::Reply,
        (target_mac(11), Ipv4Addr::new(10, 99, 0, 11)),
        (mac, REAL),
    );
    rig.feed(&[reply.clone(), reply.clone(), reply]);
    rig.poll_all();
    let c = rig.stats.read();
    assert_eq!((c.counts.punted, c.counts.punt_overflow), (1, 2));
    rig.assert_no_leak();
}

#[test]
fn worker_on_an_lcore_follows_published_snapshots_and_stops() {
    let _dpdk = dpdk();
    let Rig {
        mut worker,
        mut publisher,
        stats,
        punt,
        port,
        input,
        output,
        pool,
        port_mac,
    } = Rig::new(1024, 64);
    let stop = Arc::new(AtomicBool::new(false));
    let stop_worker = Arc::clone(&stop);
    let handle = launch(1, move || {
        worker.run(&stop_worker);
        worker
    })
    .unwrap();

    let send_and_collect = |frames: Vec<Vec<u8>>| -> Vec<MacAddr> {
        let n = frames.len();
        for f in &frames {
            input.enqueue(pool.alloc_with(f).unwrap()).unwrap();
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < n && Instant::now() < deadline {
            match output.dequeue() {
                Some(m) => got.push(MacAddr::from_bytes(&m.data()[0..6])),
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        assert_eq!(got.len(), n, "worker forwarded everything in time");
        got
    };
    let before = send_and_collect((0..400).map(|i| syn(30_000 + i, port_mac)).collect());
    assert!(before.contains(&target_mac(11)));

    // t11 fails: the control thread publishes a snapshot without it.
    let current = publisher.current();
    let next = Snapshot::build(&spec(&[11, 12, 13, 14], &[11]), Some(&current)).unwrap();
    drop(current);
    assert!(publisher.publish(Arc::new(next), Duration::from_secs(5)));
    let after = send_and_collect(
        (0..400)
            .map(|i| {
                tcp_frame(
                    port_mac,
                    CLIENT_MAC,
                    (CLIENT, 30_000 + i),
                    (VIP, 80),
                    FLAG_ACK,
                )
            })
            .collect(),
    );
    for (b, a) in before.iter().zip(&after) {
        assert_ne!(*a, target_mac(11), "no flow goes to the failed target");
        if *b != target_mac(11) {
            assert_eq!(a, b, "flows on healthy targets did not move");
        }
    }

    stop.store(true, Ordering::Relaxed);
    let worker = handle.join().expect("worker returned");
    assert_eq!(stats.read().counts.forwarded, 800);
    drop(worker);
    while punt.pop().is_some() {}
    drop(port);
    drop(input);
    drop(output);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn a_panic_on_an_lcore_is_caught_and_reported() {
    let _dpdk = dpdk();
    // The panic is the point: keep its message out of the test output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let handle = launch(1, || -> u32 { panic!("worker exploded") }).unwrap();
    let err = handle.join().unwrap_err();
    std::panic::set_hook(default_hook);
    assert!(err.to_string().contains("worker exploded"), "{err}");
    // The lcore is usable again.
    assert_eq!(launch(1, || 7u32).unwrap().join().unwrap(), 7);
}

#[test]
fn runs_of_one_flow_in_a_burst_go_where_the_flow_goes() {
    runs_of_one_flow(false);
}

#[test]
fn runs_of_one_flow_in_a_burst_go_where_the_flow_goes_looking_ahead() {
    runs_of_one_flow(true);
}

/// Bursts made of runs of one flow's frames (the worker decides each run's frames
/// after the first without a table lookup), broken by other flows, a flow's SYN
/// after its ACKs, a truncated frame and a frame for another MAC: every frame of a
/// flow goes to that flow's one target, untouched beyond the MACs and in order, and
/// the per-target counters count every one.
fn runs_of_one_flow(lookahead: bool) {
    let _dpdk = dpdk();
    let mut rig = Rig::new(1024, 64);
    if lookahead {
        rig = rig.looking_ahead();
    }
    let mac = rig.port_mac;
    let tcp = |port: u16, flags: u8| tcp_frame(mac, CLIENT_MAC, (CLIENT, port), (VIP, 80), flags);
    let mut frames = Vec::new();
    let mut expect_forwarded = Vec::new();
    let mut push = |frame: Vec<u8>, count: usize, forwarded: bool| {
        for _ in 0..count {
            if forwarded {
                expect_forwarded.push(frame.clone());
            }
            frames.push(frame.clone());
        }
    };
    for round in 0..3u16 {
        let port = |k: u16| 30_000 + 10 * round + k;
        push(tcp(port(0), FLAG_SYN), 1, true);
        push(tcp(port(0), FLAG_ACK), 9, true);
        push(tcp(port(1), FLAG_SYN), 3, true);
        push(tcp(port(1), FLAG_ACK), 6, true);
        push(tcp(port(0), FLAG_ACK), 5, true);
        push(tcp(port(0), FLAG_ACK)[..40].to_vec(), 1, false);
        push(tcp(port(0), FLAG_ACK), 4, true);
        push(syn(port(0), MacAddr([2, 9, 9, 9, 9, 9])), 1, false);
        push(tcp(port(0), FLAG_SYN), 2, true);
        push(tcp(port(2), FLAG_ACK), 8, true);
        push(tcp(port(3), FLAG_SYN), 1, true);
        push(tcp(port(2), FLAG_ACK), 8, true);
    }
    let frame_len = expect_forwarded[0].len() as u64;
    rig.feed(&frames);
    rig.poll_all();
    let out = rig.take_output();
    assert_eq!(out.len(), expect_forwarded.len());
    let mut target_of_port = std::collections::HashMap::<u16, MacAddr>::new();
    let mut by_mac = std::collections::HashMap::<MacAddr, u64>::new();
    for (got, sent) in out.iter().zip(&expect_forwarded) {
        assert_eq!(&got[12..], &sent[12..], "in order, untouched past the MACs");
        assert_eq!(&got[6..12], &mac.0);
        let dst = MacAddr::from_bytes(&got[0..6]);
        let port = u16::from_be_bytes([got[34], got[35]]);
        assert_eq!(
            *target_of_port.entry(port).or_insert(dst),
            dst,
            "flow {port} stays on one target"
        );
        *by_mac.entry(dst).or_default() += 1;
    }
    assert_eq!(target_of_port.len(), 12);
    let c = rig.stats.read();
    assert_eq!(c.counts.forwarded, expect_forwarded.len() as u64);
    assert_eq!(
        c.counts.forwarded_bytes,
        expect_forwarded.len() as u64 * frame_len
    );
    assert_eq!(
        (c.counts.rx_packets, c.counts.rx_bytes),
        (
            frames.len() as u64,
            frames.iter().map(|f| f.len() as u64).sum()
        )
    );
    assert_eq!(c.drop_count(DropReason::Truncated), 3);
    assert_eq!(c.drop_count(DropReason::NotOurMac), 3);
    let snap = rig.publisher.current();
    for &slot in &snap.service(u32::from(VIP), 6, 80).unwrap().target_slots {
        let sent = by_mac
            .get(&snap.target(slot).unwrap().mac)
            .copied()
            .unwrap_or(0);
        assert_eq!(rig.stats.slots.target_packets(slot), sent);
        assert_eq!(rig.stats.slots.target_bytes(slot), sent * frame_len);
    }
    drop(snap);
    rig.assert_no_leak();
}

/// A flow's run goes on from one burst to the next, and ends as soon as a snapshot
/// in which its target is down is published between them, in whatever millisecond:
/// the flow's next frames go to one other target, and stay there when the first
/// comes back. Five rounds, so that some fall within one millisecond (where only the
/// snapshot tells the run to end).
#[test]
fn a_run_carried_across_polls_ends_when_its_target_goes_down() {
    let _dpdk = dpdk();
    let mut rig = Rig::new(1024, 64);
    let mac = rig.port_mac;
    for round in 0..5u16 {
        let ack = tcp_frame(
            mac,
            CLIENT_MAC,
            (CLIENT, 40_000 + round),
            (VIP, 80),
            FLAG_ACK,
        );
        let dsts = |rig: &mut Rig| -> Vec<MacAddr> {
            rig.feed(&vec![ack.clone(); 4]);
            rig.poll_all();
            rig.take_output()
                .iter()
                .map(|f| MacAddr::from_bytes(&f[0..6]))
                .collect()
        };
        let first = dsts(&mut rig);
        assert_eq!(first.len(), 4);
        let target = first[0];
        assert!(first.iter().all(|&m| m == target));
        let down = Snapshot::build(
            &spec(&[11, 12, 13, 14], &[target.0[5]]),
            Some(&rig.publisher.current()),
        )
        .unwrap();
        assert_eq!(dsts(&mut rig), vec![target; 4], "carried on");
        // No patience: the worker is between polls; the old snapshot is leaked.
        let _ = rig.publisher.publish(Arc::new(down), Duration::ZERO);
        let moved = dsts(&mut rig);
        assert_eq!(moved.len(), 4);
        assert!(
            moved.iter().all(|&m| m == moved[0] && m != target),
            "round {round}: {moved:?}"
        );
        let up = Snapshot::build(
            &spec(&[11, 12, 13, 14], &[]),
            Some(&rig.publisher.current()),
        )
        .unwrap();
        let _ = rig.publisher.publish(Arc::new(up), Duration::ZERO);
        assert_eq!(
            dsts(&mut rig),
            vec![moved[0]; 4],
            "stays where it was moved"
        );
    }
    rig.assert_no_leak();
}

#[test]
fn pcap_vdev_replays_and_records_through_the_worker() {
    let _dpdk = dpdk();
    let dir = std::env::temp_dir().join(unique("dsrlb-pcap-"));
    std::fs::create_dir_all(&dir).unwrap();
    let (rx_path, tx_path) = (dir.join("in.pcap"), dir.join("out.pcap"));
    // The pcap PMD opens rx_pcap when probed, so the frames are written first; the
    // worker is given the MAC they are addressed to (a pcap port's own is made up).
    let mac = MacAddr([0x02, 0xdd, 0, 0, 0, 0x02]);
    let name = unique("net_pcap");
    let pool = Mempool::new(&unique("pool"), 2047, 0, 2176, -1).unwrap();
    let frames: Vec<Vec<u8>> = (0..100)
        .map(|i| syn(50_000 + i, mac))
        .chain([syn(1, MacAddr([2, 9, 9, 9, 9, 9]))])
        .collect();
    dataplane::pcap::write(std::fs::File::create(&rx_path).unwrap(), &frames).unwrap();
    let devargs = format!(
        "{name},rx_pcap={},tx_pcap={}",
        rx_path.display(),
        tx_path.display()
    );
    let mut port = Port::probe_vdev(&devargs).unwrap();
    port.configure_and_start(&PortConfig::default(), &pool)
        .unwrap();

    let (mut worker, stats, _publisher) =
        worker_on(port.id(), mac, &[11, 12], Arc::new(ArrayQueue::new(8)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.read().counts.rx_packets < 101 && Instant::now() < deadline {
        worker.poll_once();
    }
    drop(worker);
    drop(port); // stop + close flush the tx pcap
    let c = stats.read();
    assert_eq!(
        (
            c.counts.rx_packets,
            c.counts.forwarded,
            c.drop_count(DropReason::NotOurMac)
        ),
        (101, 100, 1)
    );
    let recorded = dataplane::pcap::read(std::fs::File::open(&tx_path).unwrap()).unwrap();
    assert_eq!(recorded.len(), 100);
    for (sent, got) in frames.iter().zip(&recorded) {
        assert!(got[0..6] == target_mac(11).0 || got[0..6] == target_mac(12).0);
        assert_eq!(&got[6..12], &mac.0);
        assert_eq!(&got[12..], &sent[12..]);
    }
    assert_eq!(pool.in_use(), 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_partly_consumed_burst_frees_the_rest() {
    let _dpdk = dpdk();
    let pool = Mempool::new(&unique("pool"), 255, 0, 2176, -1).unwrap();
    let mut burst = MbufBurst::new();
    for _ in 0..10 {
        burst.push(pool.alloc().unwrap()).unwrap();
    }
    assert_eq!(pool.in_use(), 10);
    {
        let mut drain = burst.drain();
        let first = drain.next().unwrap();
        drop(first);
        assert_eq!(pool.in_use(), 9);
    }
    assert_eq!(pool.in_use(), 0, "the drain freed what it did not yield");
    assert!(burst.is_empty());
    for _ in 0..3 {
        burst.push(pool.alloc().unwrap()).unwrap();
    }
    drop(burst);
    assert_eq!(pool.in_use(), 0, "a dropped burst frees what it holds");
}

/// `Mbuf::append` takes all of its bytes or none: past the room left, and past
/// what a 16-bit length holds (which DPDK would have taken modulo 2^16).
#[test]
fn an_append_takes_all_of_its_bytes_or_none() {
    let _dpdk = dpdk();
    let pool = Mempool::new(&unique("pool"), 255, 0, 2176, -1).unwrap();
    let mut mbuf = pool.alloc().unwrap();
    let room = 2176 - 128; // data room less DPDK's default headroom
    assert_eq!(mbuf.append(&[7; 60]), Ok(()));
    assert_eq!(mbuf.append(&vec![8; room - 60 + 1]), Err(NoRoom));
    assert_eq!(mbuf.append(&vec![9; (1 << 16) + 10]), Err(NoRoom));
    assert_eq!(mbuf.data(), &[7; 60][..], "nothing of the refused appends");
    assert_eq!(mbuf.append(&vec![8; room - 60]), Ok(()));
    assert_eq!(mbuf.data().len(), room);
    assert_eq!(mbuf.pkt_len() as usize, room);
    assert_eq!(
        pool.alloc_with(&vec![1; room + 1]).map(|m| m.pkt_len()),
        None
    );
    drop(mbuf);
    assert_eq!(pool.in_use(), 0);
}

/// `Drain::move_while` on real mbufs: it moves frames out while they are taken,
/// stops at the first refused (which stays for `next`), stops where the target
/// burst is full, rewrites only what it takes, and counts their bytes.
#[test]
fn a_drain_moves_frames_out_while_they_are_taken() {
    let _dpdk = dpdk();
    let pool = Mempool::new(&unique("pool"), 255, 0, 2176, -1).unwrap();
    let mut burst = MbufBurst::new();
    for i in 0..6u8 {
        let mut mbuf = pool.alloc().unwrap();
        mbuf.append(&vec![i; 60 + usize::from(i)]).unwrap();
        burst.push(mbuf).unwrap();
    }
    let mut out = MbufBurst::new();
    {
        let mut drain = burst.drain();
        assert_eq!(drain.move_while(&mut out, |frame| frame[0] == 1), (0, 0));
        assert!(out.is_empty(), "nothing moved yet");
        assert_eq!(
            drain.move_while(&mut out, |frame| {
                if frame[0] >= 3 {
                    return false;
                }
                frame[1] = 9;
                true
            }),
            (3, 60 + 61 + 62)
        );
        assert_eq!(drain.position(), 3);
        assert_eq!(out.len(), 3);
        assert_eq!(
            drain.next().unwrap().data()[..2],
            [3, 3],
            "refused, untouched"
        );
        assert_eq!(drain.move_while(&mut out, |_| true), (2, 64 + 65));
        assert_eq!(drain.position(), 6);
        assert_eq!(drain.move_while(&mut out, |_| true), (0, 0), "past the end");
        assert!(drain.next().is_none());
        assert_eq!(pool.in_use(), 5);
    }
    assert_eq!(out.len(), 5);
    let firsts: Vec<[u8; 2]> = (0..5)
        .map(|i| out.frame(i).unwrap()[..2].try_into().unwrap())
        .collect();
    assert_eq!(
        firsts,
        [[0, 9], [1, 9], [2, 9], [4, 4], [5, 5]],
        "in order, rewritten when taken"
    );

    // A target burst with room for two takes two; the rest stays.
    for _ in 0..4 {
        burst.push(pool.alloc().unwrap()).unwrap();
    }
    let mut nearly_full = MbufBurst::new();
    for _ in 0..BURST_SIZE - 2 {
        nearly_full.push(pool.alloc().unwrap()).unwrap();
    }
    {
        let mut drain = burst.drain();
        assert_eq!(drain.move_while(&mut nearly_full, |_| true).0, 2);
        assert!(nearly_full.is_full());
        assert!(drain.next().is_some(), "the third stayed");
    }
    drop((out, nearly_full));
    assert_eq!(
        pool.in_use(),
        0,
        "what was not moved is freed with the drain"
    );
}

#[test]
fn control_frames_go_out_on_the_controls_own_queue_or_through_the_worker() {
    use dataplane::control_tx::ControlTx;
    let _dpdk = dpdk();
    let pool = Mempool::new(&unique("pool"), 1023, 0, 2176, -1).unwrap();
    let input = MbufRing::new(&unique("in"), 64).unwrap();
    let worker_out = MbufRing::new(&unique("out"), 64).unwrap();
    let control_out = MbufRing::new(&unique("ctl"), 64).unwrap();
    let mut port =
        Port::from_rings(&unique("net_ctl"), &[&input], &[&worker_out, &control_out]).unwrap();
    assert_eq!(port.max_queues().unwrap(), (1, 2));
    port.configure_and_start(
        &PortConfig {
            tx_queues: 2,
            ..PortConfig::default()
        },
        &pool,
    )
    .unwrap();
    let garp = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::Request,
        (CLIENT_MAC, REAL),
        (MacAddr::ZERO, REAL),
    );

    let own = ControlTx::OwnQueue {
        port: port.id(),
        queue: 1,
    };
    assert!(own.send(pool.alloc_with(&garp).unwrap()));
    assert_eq!(control_out.dequeue().unwrap().data(), &garp[..]);
    assert_eq!(worker_out.count(), 0);

    let inject = Arc::new(ArrayQueue::new(4));
    let via = ControlTx::ViaWorker(Arc::clone(&inject));
    let (worker, stats, _publisher) =
        worker_on(port.id(), CLIENT_MAC, &[11], Arc::new(ArrayQueue::new(4)));
    let mut worker = worker.with_injection(inject);
    for _ in 0..4 {
        assert!(via.send(pool.alloc_with(&garp).unwrap()));
    }
    assert!(
        !via.send(pool.alloc_with(&garp).unwrap()),
        "a full queue refuses (and frees) the frame"
    );
    assert_eq!(
        worker.poll_once(),
        0,
        "nothing received, but the idle poll sends the control frames"
    );
    assert_eq!(worker_out.count(), 4);
    assert_eq!(stats.read().counts.injected, 4);
    drop(worker);
    drop(port);
    drop(input);
    drop(worker_out);
    drop(control_out);
    assert_eq!(pool.in_use(), 0);
}

/// With lookahead a burst is decided on the poll after the one that received it,
/// and exactly as it would have been at once, also when a snapshot with another
/// hash seed is published in between (the hashes computed on arrival are then
/// recomputed, or flows would go to the buckets and targets of the old seed).
#[test]
fn lookahead_decides_one_poll_late_and_as_a_direct_worker_would() {
    let _dpdk = dpdk();
    let mut direct = Rig::new(1024, 64);
    let mut ahead = Rig::new(1024, 64).looking_ahead();
    let (mac_d, mac_a) = (direct.port_mac, ahead.port_mac);
    let frames = |mac: MacAddr, ports: std::ops::Range<u16>, flags: u8| -> Vec<Vec<u8>> {
        ports
            .map(|p| tcp_frame(mac, CLIENT_MAC, (CLIENT, p), (VIP, 80), flags))
            .collect()
    };
    let with_mac = |out: Vec<Vec<u8>>| -> Vec<Vec<u8>> {
        // The two rigs' ports have different MACs: compare from the EtherType on,
        // and the chosen target's MAC.
        out.into_iter()
            .map(|f| [&f[0..6], &f[12..]].concat())
            .collect()
    };

    ahead.feed(&frames(mac_a, 1000..1032, FLAG_SYN));
    assert_eq!(ahead.worker.poll_once(), 32);
    assert!(ahead.take_output().is_empty(), "held for one poll");
    assert_eq!(ahead.stats.read().counts.rx_packets, 0);
    assert_eq!(
        ahead.worker.poll_once(),
        32,
        "decided with nothing new received"
    );
    assert_eq!(ahead.take_output().len(), 32);
    assert_eq!(ahead.worker.poll_once(), 0);

    direct.feed(&frames(mac_d, 1000..1032, FLAG_SYN));
    direct.poll_all();
    let _ = direct.take_output();
    for (range, flags) in [(1000..1300, FLAG_ACK), (2000..2300, FLAG_SYN)] {
        direct.feed(&frames(mac_d, range.clone(), flags));
        ahead.feed(&frames(mac_a, range, flags));
        direct.poll_all();
        ahead.poll_all();
        assert_eq!(
            with_mac(ahead.take_output()),
            with_mac(direct.take_output())
        );
    }

    // A burst hashed under seed 1, decided under seed 2.
    let mut reseeded = spec(&[11, 12, 13, 14], &[]);
    reseeded.seed = 2;
    let publish = |rig: &mut Rig| {
        let next = Snapshot::build(&reseeded, Some(&rig.publisher.current())).unwrap();
        // No patience: the worker is between polls; the old snapshot is leaked.
        let _ = rig.publisher.publish(Arc::new(next), Duration::ZERO);
    };
    ahead.feed(&frames(mac_a, 3000..3032, FLAG_SYN));
    assert_eq!(ahead.worker.poll_once(), 32);
    publish(&mut ahead);
    ahead.poll_all();
    publish(&mut direct);
    direct.feed(&frames(mac_d, 3000..3032, FLAG_SYN));
    direct.poll_all();
    let (a, d) = (
        with_mac(ahead.take_output()),
        with_mac(direct.take_output()),
    );
    assert_eq!(a.len(), 32);
    assert_eq!(a, d);

    let (ca, cd) = (ahead.stats.read(), direct.stats.read());
    // Every counter alike (the flow table's included), drops too.
    assert_eq!(ca, cd);
    // 32, twice 300 (nine full bursts and one of 12), 32.
    assert_eq!(
        (ca.counts.bursts, cd.counts.bursts),
        (22, 22),
        "bursts decided"
    );
    direct.assert_no_leak();
    ahead.assert_no_leak();
}

/// A 4000-byte UDP datagram from the client's `port` to VIP:5353 in three IPv4
/// fragments (identification `ident`), in frames to `mac`.
fn fragments(port: u16, ident: u16, mac: MacAddr) -> Vec<Vec<u8>> {
    let datagram = udp(CLIENT, VIP, port, 5353, &[0x5a; 4000]);
    let ip = ipv4_fragments((CLIENT, VIP), IpProtocol::Udp, ident, &datagram, 1480);
    ip.iter()
        .map(|p| ethernet(mac, CLIENT_MAC, EtherType::Ipv4, p))
        .collect()
}

/// Later fragments that come before their first are held in real mbufs: sent, with
/// their datagram's other fragments to one target, once the first comes; dropped
/// and counted once they have waited the timeout in vain, or when the hold is full;
/// freed if the worker stops while holding them.
#[test]
fn later_fragments_are_held_for_their_first_then_sent_timed_out_or_refused() {
    let _dpdk = dpdk();
    let timeout_ms = 30;
    let mut rig = Rig::new(1024, 64).with_flows(FlowTableConfig {
        fragments_held: 4,
        fragment_timeout_ms: timeout_ms,
        ..FlowTableConfig::default()
    });
    let mac = rig.port_mac;
    let datagram = fragments(40_000, 1, mac);
    rig.feed(&datagram[2..]);
    rig.poll_all();
    assert!(rig.take_output().is_empty(), "the last fragment waits");
    assert_eq!(rig.stats.read().counts.fragments_held, 1);
    rig.feed(&datagram[..2]);
    rig.poll_all();
    let out = rig.take_output();
    assert_eq!(out.len(), 3, "the first, the middle, then the one held");
    let target = &out[0][..6];
    for (i, (sent, input)) in out.iter().zip(&datagram).enumerate() {
        assert_eq!(&sent[..6], target, "fragment {i} to the first's target");
        assert_eq!(
            sent[12..],
            input[12..],
            "fragment {i}: only the MACs change"
        );
    }
    let c = rig.stats.read();
    assert_eq!((c.counts.forwarded, c.counts.fragments_recorded), (3, 1));

    // Five later fragments of datagrams whose first never comes: four held, one
    // refused; the four dropped once they have waited the timeout.
    let orphans: Vec<Vec<u8>> = (0..5)
        .map(|i| fragments(41_000 + i, 100 + i, mac)[1].clone())
        .collect();
    rig.feed(&orphans);
    rig.poll_all();
    let c = rig.stats.read();
    assert_eq!(c.counts.fragments_held, 5);
    assert_eq!(c.drop_count(DropReason::FragmentHoldFull), 1);
    assert_eq!(rig.pool.in_use(), 4, "the four held");
    std::thread::sleep(Duration::from_millis(timeout_ms + 10));
    rig.worker.poll_once();
    assert_eq!(rig.stats.read().drop_count(DropReason::FragmentTimeout), 4);
    assert_eq!(rig.pool.in_use(), 0);
    assert!(rig.take_output().is_empty());

    // A worker that stops holding one frees it.
    rig.feed(&orphans[..1]);
    rig.poll_all();
    assert_eq!(rig.pool.in_use(), 1);
    rig.assert_no_leak();
}

/// An IPv6 flow's frames in bursts, through the worker's same-flow run (IPv6's,
/// which compares 68 bytes): every frame to the flow's one target, only the MACs
/// changed, in order, and counted.
#[test]
fn an_ipv6_flows_frames_go_through_its_run_to_its_one_target() {
    let _dpdk = dpdk();
    let mut rig = Rig::new(1024, 64);
    let mac = rig.port_mac;
    let frame = |sport: u16| tcp6_frame(mac, CLIENT_MAC, (CLIENT6, sport), (VIP6, 80), FLAG_ACK);
    // Two flows, so that one flow's run is broken and begun again.
    let frames: Vec<Vec<u8>> = (0..60)
        .map(|i| frame(if i % 20 == 19 { 41_001 } else { 41_000 }))
        .collect();
    rig.feed(&frames);
    rig.poll_all();
    let out = rig.take_output();
    assert_eq!(out.len(), frames.len());
    let to = |sport: u16| -> Vec<&[u8]> {
        (out.iter().zip(&frames))
            .filter(|(_, f)| f == &&frame(sport))
            .map(|(o, _)| &o[..6])
            .collect()
    };
    for sport in [41_000, 41_001] {
        let macs = to(sport);
        assert!(
            macs.windows(2).all(|w| w[0] == w[1]),
            "flow {sport} split: {macs:02x?}"
        );
    }
    for (sent, input) in out.iter().zip(&frames) {
        assert_eq!(sent[6..12], mac.0, "the port's MAC as the source");
        assert_eq!(sent[12..], input[12..], "only the MACs change");
    }
    assert_eq!(rig.stats.read().counts.forwarded, 60);
    rig.assert_no_leak();
}
