//! Packet path v2 ("Maglev first", `Tracking::Changes`) over bytes: flows through
//! changes of the table. Each case is a table of steps (traffic, or a change of the
//! targets) over a few thousand TCP flows, and the properties every case must keep:
//! no established flow changes target while its target is usable, new flows take
//! the table's current choice, and the fast path decides as the general path does.
#![allow(clippy::unwrap_used)]

use dataplane::craft::tcp_frame;
use dataplane::flow::{FlowTable, FlowTableConfig};
use dataplane::forward::{decide, decide_general, Context, Verdict};
use dataplane::snapshot::{ArpAnswers, ServiceSpec, Snapshot, SnapshotSpec, TargetSpec, Tracking};
use dataplane::wire::tcp::{FLAG_ACK, FLAG_SYN};
use dataplane::wire::{IpProtocol, MacAddr};
use std::collections::HashMap;
use std::net::Ipv4Addr;

const PORT_MAC: MacAddr = MacAddr([0x02, 0xdd, 0, 0, 0, 0x02]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xcc, 0, 0, 0, 0x01]);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
/// Flows a case starts at a time: over a table of 251 slots, every slot has many.
const FLOWS: u32 = 1500;

/// The targets as an operator would change them: by last address byte, weight
/// (0: drained), healthy.
type Targets = Vec<(u8, u32, bool)>;

fn spec(targets: &Targets) -> SnapshotSpec {
    SnapshotSpec {
        real_addr: Ipv4Addr::new(10, 99, 0, 2),
        real_addr6: None,
        arp_answers: ArpAnswers::Every,
        seed: 7,
        table_size: 251,
        services: vec![ServiceSpec {
            forwards_icmp_errors: true,
            tracking: Tracking::Changes,
            vip: VIP.into(),
            proto: IpProtocol::Tcp,
            port: 80,
            targets: targets
                .iter()
                .map(|&(last, weight, healthy)| TargetSpec {
                    addr: Ipv4Addr::new(10, 99, 0, last).into(),
                    mac: Some(MacAddr([0x02, 0x11, 0, 0, 0, last])),
                    weight,
                    healthy,
                })
                .collect(),
        }],
    }
}

/// One appliance: its snapshot (built over the one before, as the control thread
/// builds them) and its worker's flow table.
struct Appliance {
    snapshot: Snapshot,
    flows: FlowTable,
    /// Decide with the general path only (the differential twin).
    general: bool,
}

impl Appliance {
    fn new(targets: &Targets, flows: FlowTableConfig) -> Self {
        Appliance {
            snapshot: Snapshot::build(&spec(targets), None).unwrap(),
            flows: FlowTable::new(flows),
            general: false,
        }
    }

    fn change(&mut self, targets: &Targets) {
        self.snapshot = Snapshot::build(&spec(targets), Some(&self.snapshot)).unwrap();
    }

    /// Decides one frame of `flow`: its target's last address byte, or None if
    /// dropped for want of a target.
    fn send(&mut self, flow: u32, flags: u8, now_ms: u64) -> Option<u8> {
        let mut frame = tcp_frame(
            PORT_MAC,
            CLIENT_MAC,
            (
                Ipv4Addr::from(0x0a63_0200 + flow / 50),
                20_000 + (flow % 50) as u16,
            ),
            (VIP, 80),
            flags,
        );
        let before = frame.clone();
        let mut ctx = Context::new(&self.snapshot, PORT_MAC, &mut self.flows, now_ms);
        let verdict = if self.general {
            decide_general(&mut ctx, &mut frame)
        } else {
            decide(&mut ctx, &mut frame, None)
        };
        match verdict {
            Verdict::Forward { slot } => {
                let target = self.snapshot.target(slot).unwrap();
                assert!(target.usable, "flow {flow} sent to {target:?}");
                assert_eq!(&frame[..6], target.mac.as_bytes());
                assert_eq!(&frame[12..], &before[12..], "only the MACs change");
                Some(last_byte(self.snapshot.target_addr(slot).unwrap()))
            }
            Verdict::Unserved { .. } => None,
            other => panic!("flow {flow}: {other:?}"),
        }
    }
}

/// What a case's traffic found.
#[derive(Debug, Default)]
struct Tally {
    /// Established flows that went to another target than their first frame's
    /// while that target was still usable.
    split: Vec<(u32, u8, u8)>,
    /// Flows recorded as started, by their target.
    started: HashMap<u32, u8>,
}

/// Starts `flows` (a SYN each, then a data frame), checking that each new flow
/// takes the current table's choice unless the table could not record it.
fn start(lb: &mut Appliance, flows: std::ops::Range<u32>, now_ms: u64, tally: &mut Tally) {
    for flow in flows {
        let Some(to) = lb.send(flow, FLAG_SYN, now_ms) else {
            continue;
        };
        assert_eq!(
            lb.send(flow, FLAG_ACK, now_ms),
            Some(to),
            "flow {flow}'s first frames"
        );
        tally.started.insert(flow, to);
    }
}

/// A data frame of every started flow: each must reach its first target while that
/// target is usable (`usable`), and may go anywhere once it is not.
fn exchange(lb: &mut Appliance, now_ms: u64, usable: &[u8], tally: &mut Tally) {
    let started: Vec<(u32, u8)> = tally.started.iter().map(|(&f, &t)| (f, t)).collect();
    for (flow, first) in started {
        let now = lb.send(flow, FLAG_ACK, now_ms);
        match now {
            Some(to) if to != first && usable.contains(&first) => {
                tally.split.push((flow, first, to))
            }
            Some(to) => {
                tally.started.insert(flow, to);
            }
            None => {}
        }
    }
}

/// New flows after a change: each takes the current table's choice.
fn new_flows_follow_the_table(lb: &mut Appliance, flows: std::ops::Range<u32>, now_ms: u64) -> u32 {
    let mut off = 0;
    for flow in flows.clone() {
        let service = &lb.snapshot.services()[0];
        let client = 0x0a63_0200 + flow / 50;
        let port = 20_000 + (flow % 50) as u16;
        let hash =
            dataplane::hash::flow_hash(client, u32::from(VIP), port, 80, 6, lb.snapshot.seed);
        let want = service
            .pick(hash, lb.snapshot.targets())
            .filter(|&t| lb.snapshot.usable_target(t).is_some())
            .map(|t| last_byte(lb.snapshot.target_addr(t.slot).unwrap()));
        if lb.send(flow, FLAG_SYN, now_ms) != want {
            off += 1;
        }
    }
    off
}

fn t(last: u8) -> (u8, u32, bool) {
    (last, 1, true)
}

fn roomy() -> FlowTableConfig {
    FlowTableConfig {
        capacity: 1 << 16,
        ..FlowTableConfig::default()
    }
}

/// One change of the targets: flows started before it keep their targets (all
/// of them usable after it, as listed), flows after it follow the new table.
struct ChangeCase {
    what: &'static str,
    before: Targets,
    after: Targets,
    /// Targets that stay usable: their flows must not move.
    kept: &'static [u8],
}

#[test]
fn one_change_moves_new_flows_and_no_established_one() {
    let cases = [
        ChangeCase {
            what: "a target added",
            before: vec![t(11), t(12), t(13)],
            after: vec![t(11), t(12), t(13), t(14)],
            kept: &[11, 12, 13],
        },
        ChangeCase {
            what: "a target removed",
            before: vec![t(11), t(12), t(13), t(14)],
            after: vec![t(11), t(12), t(13)],
            kept: &[11, 12, 13],
        },
        ChangeCase {
            what: "a target drained",
            before: vec![t(11), t(12), t(13)],
            after: vec![t(11), (12, 0, true), t(13)],
            kept: &[11, 12, 13],
        },
        ChangeCase {
            what: "weights changed",
            before: vec![t(11), t(12), t(13)],
            after: vec![(11, 5, true), t(12), (13, 3, true)],
            kept: &[11, 12, 13],
        },
        ChangeCase {
            what: "a target failed",
            before: vec![t(11), t(12), t(13)],
            after: vec![t(11), (12, 1, false), t(13)],
            kept: &[11, 13],
        },
    ];
    for case in cases {
        for general in [false, true] {
            let mut lb = Appliance::new(&case.before, roomy());
            lb.general = general;
            let mut tally = Tally::default();
            start(&mut lb, 0..FLOWS, 1_000, &mut tally);
            lb.change(&case.after);
            let marked = lb.snapshot.services()[0].steering.marked();
            assert!(marked > 0, "{}: the change marks slots", case.what);
            exchange(&mut lb, 10_000, case.kept, &mut tally);
            exchange(&mut lb, 20_000, case.kept, &mut tally);
            assert_eq!(tally.split, [], "{} (general path: {general})", case.what);
            let off = new_flows_follow_the_table(&mut lb, FLOWS..2 * FLOWS, 30_000);
            assert_eq!(off, 0, "{}: new flows off the table", case.what);
            println!(
                "{}: {marked} of 251 slots marked, {} flows kept",
                case.what,
                tally.started.len()
            );
        }
    }
}

#[test]
fn a_failed_target_that_recovers_keeps_every_flow_where_it_went() {
    let mut lb = Appliance::new(&vec![t(11), t(12), t(13)], roomy());
    let mut tally = Tally::default();
    start(&mut lb, 0..FLOWS, 1_000, &mut tally);
    lb.change(&vec![t(11), (12, 1, false), t(13)]);
    // t12's flows move (their target is gone); the others stay.
    exchange(&mut lb, 10_000, &[11, 13], &mut tally);
    assert_eq!(tally.split, []);
    assert!(tally.started.values().all(|&to| to != 12));
    // t12 back: every flow, moved or not, stays where it is now.
    lb.change(&vec![t(11), t(12), t(13)]);
    exchange(&mut lb, 20_000, &[11, 12, 13], &mut tally);
    assert_eq!(tally.split, []);
    assert_eq!(
        new_flows_follow_the_table(&mut lb, FLOWS..2 * FLOWS, 30_000),
        0
    );
}

#[test]
fn a_slot_changed_twice_keeps_the_flows_of_both_targets_before() {
    let mut lb = Appliance::new(&vec![t(11), t(12)], roomy());
    let mut tally = Tally::default();
    start(&mut lb, 0..FLOWS, 1_000, &mut tally);
    lb.change(&vec![t(11), t(12), t(13)]);
    // Flows begun between the two changes, some on the new target.
    start(&mut lb, FLOWS..2 * FLOWS, 10_000, &mut tally);
    assert!(tally.started.values().any(|&to| to == 13));
    lb.change(&vec![t(11), t(12), t(13), t(14)]);
    exchange(&mut lb, 20_000, &[11, 12, 13, 14], &mut tally);
    // And back to two: t13 and t14 removed, their flows move, no other.
    lb.change(&vec![t(11), t(12)]);
    exchange(&mut lb, 30_000, &[11, 12], &mut tally);
    assert_eq!(tally.split, []);
    assert_eq!(
        new_flows_follow_the_table(&mut lb, 2 * FLOWS..3 * FLOWS, 40_000),
        0
    );
}

#[test]
fn a_table_that_cannot_record_sends_new_flows_where_their_later_frames_go() {
    // Three entries in all, then a guard of one new flow a second: after the change
    // almost no SYN is recorded, yet no flow is split between two targets.
    for (what, config) in [
        (
            "table full",
            FlowTableConfig {
                capacity: 3,
                ..FlowTableConfig::default()
            },
        ),
        (
            "guard tripped",
            FlowTableConfig {
                capacity: 1 << 16,
                new_flow_rate: 1,
                ..FlowTableConfig::default()
            },
        ),
    ] {
        let mut lb = Appliance::new(&vec![t(11), t(12), t(13)], config);
        let mut tally = Tally::default();
        start(&mut lb, 0..FLOWS, 1_000, &mut tally);
        lb.change(&vec![t(11), t(12), t(13), t(14)]);
        start(&mut lb, FLOWS..2 * FLOWS, 10_000, &mut tally);
        exchange(&mut lb, 10_000, &[11, 12, 13, 14], &mut tally);
        exchange(&mut lb, 10_000, &[11, 12, 13, 14], &mut tally);
        assert_eq!(tally.split, [], "{what}");
        // The new flows that could not be recorded stayed on the old targets.
        let on_new = (FLOWS..2 * FLOWS)
            .filter(|f| tally.started.get(f) == Some(&14))
            .count();
        assert!(
            on_new <= 3,
            "{what}: {on_new} unrecorded flows on the new target"
        );
    }
}

#[test]
fn after_a_restart_flows_whose_slot_did_not_change_keep_their_target() {
    let targets = vec![t(11), t(12), t(13)];
    let mut lb = Appliance::new(&targets, roomy());
    let mut tally = Tally::default();
    start(&mut lb, 0..FLOWS, 1_000, &mut tally);
    // The same config, a new process: no table, no marks.
    let mut restarted = Appliance::new(&targets, roomy());
    exchange(&mut restarted, 10_000, &[11, 12, 13], &mut tally);
    assert_eq!(tally.split, []);
    assert_eq!(
        restarted.flows.stats().live,
        0,
        "mid-stream frames on unmarked slots record nothing"
    );
}

#[test]
fn two_appliances_with_the_same_history_choose_the_same_target_for_a_flow_mid_stream() {
    let before = vec![t(11), t(12), t(13)];
    let after = vec![t(11), t(12), t(13), t(14)];
    // `here` saw every SYN; `there` never saw these flows before the change (ECMP
    // moved them, or it is a standby taking over).
    let mut here = Appliance::new(&before, roomy());
    let mut there = Appliance::new(&before, roomy());
    let mut tally = Tally::default();
    start(&mut here, 0..FLOWS, 1_000, &mut tally);
    here.change(&after);
    there.change(&after);
    let mut moved = Tally {
        started: tally.started.clone(),
        ..Tally::default()
    };
    exchange(&mut there, 10_000, &[11, 12, 13, 14], &mut moved);
    exchange(&mut here, 10_000, &[11, 12, 13, 14], &mut tally);
    assert_eq!(moved.split, [], "the appliance that never saw the SYNs");
    assert_eq!(tally.split, []);
    assert_eq!(moved.started, tally.started);
}

#[test]
fn the_fast_path_and_the_general_path_leave_the_same_tables() {
    // The same frames through both, through every change above: the same targets
    // and the same flow-table counts at every step.
    let steps: [Targets; 5] = [
        vec![t(11), t(12), t(13)],
        vec![t(11), t(12), t(13), t(14)],
        vec![t(11), (12, 0, true), t(13), t(14)],
        vec![t(11), (12, 0, true), (13, 1, false), (14, 3, true)],
        vec![t(11), t(12), t(13)],
    ];
    let mut fast = Appliance::new(&steps[0], roomy());
    let mut general = Appliance::new(&steps[0], roomy());
    general.general = true;
    for (i, targets) in steps.iter().enumerate() {
        fast.change(targets);
        general.change(targets);
        let now = 10_000 * (i as u64 + 1);
        for flow in 0..(i as u32 + 1) * 500 {
            for flags in [FLAG_SYN, FLAG_ACK] {
                assert_eq!(
                    fast.send(flow, flags, now),
                    general.send(flow, flags, now),
                    "step {i}, flow {flow}"
                );
            }
        }
        assert_eq!(fast.flows.stats(), general.flows.stats(), "step {i}");
        assert_eq!(
            fast.flows.kept()[..8],
            general.flows.kept()[..8],
            "step {i}"
        );
    }
}

/// The last byte of a target's address: what names it in these tests.
fn last_byte(addr: std::net::IpAddr) -> u8 {
    match addr {
        std::net::IpAddr::V4(a) => a.octets()[3],
        std::net::IpAddr::V6(a) => a.octets()[15],
    }
}
