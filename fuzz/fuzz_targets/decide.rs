//! The per-packet decision over arbitrary frames: a sequence of frames (see
//! `dsrlb_fuzz::records`) through one flow table with the clock moving, the
//! snapshot changing once as a health change would, and the fast path (same-flow
//! runs, hash hints) as the worker uses it. Besides never panicking, every verdict
//! must leave the frame as it says: forwarded frames changed in their MACs only and
//! sent to a target that may take them; dropped and punted frames untouched.
#![no_main]

use dataplane::flow::{FlowTable, FlowTableConfig};
use dataplane::forward::{decide, flow_hash_hint, Context, SameFlowRun, Verdict};
use dataplane::snapshot::Snapshot;
use dsrlb_fuzz::{records, snapshot, PORT_MAC};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A record with this step swaps in the second snapshot (a target down).
const SWAP: u8 = 0xff;

fn snapshots() -> &'static (Snapshot, Snapshot) {
    static BOTH: OnceLock<(Snapshot, Snapshot)> = OnceLock::new();
    BOTH.get_or_init(|| {
        let first = snapshot(0, None);
        let second = snapshot(1, Some(&first));
        (first, second)
    })
}

fuzz_target!(|input: &[u8]| {
    let (first, second) = snapshots();
    let mut snap = first;
    // Small, so buckets fill; a new-flow guard, so it trips.
    let mut flows = FlowTable::new(FlowTableConfig {
        capacity: 64,
        new_flow_rate: 20,
        ..FlowTableConfig::default()
    });
    let mut run = SameFlowRun::default();
    let mut now_ms = 1_000;
    for record in records(input) {
        if record.step_ms == u64::from(SWAP) * 50 {
            snap = second;
        }
        now_ms += record.step_ms;
        let mut ctx = Context::new(snap, PORT_MAC, &mut flows, now_ms).carrying(run);
        let mut frame = record.frame.to_vec();
        let hint = flow_hash_hint(&frame, snap.seed);
        let verdict = decide(&mut ctx, &mut frame, hint);
        run = ctx.run;
        check(verdict, record.frame, &frame, snap);
    }
});

fn check(verdict: Verdict, before: &[u8], after: &[u8], snap: &Snapshot) {
    assert_eq!(
        before.len(),
        after.len(),
        "{verdict:?} changed the frame's length"
    );
    match verdict {
        Verdict::Forward { slot } | Verdict::IcmpError { slot, .. } => {
            let target = snap
                .target(slot)
                .expect("forwarded to a slot with no target");
            assert!(
                target.usable,
                "forwarded to {target:?}, which may not take flows"
            );
            assert_eq!(&after[..6], target.mac.as_bytes(), "destination MAC");
            assert_eq!(&after[6..12], PORT_MAC.as_bytes(), "source MAC");
            assert_eq!(
                &after[12..],
                &before[12..],
                "forwarding changed more than MACs"
            );
        }
        Verdict::Reply(_) => {}
        Verdict::Punt(_) | Verdict::Drop(_) | Verdict::Unserved { .. } | Verdict::Hold => {
            assert_eq!(after, before, "{verdict:?} changed the frame");
        }
    }
}
