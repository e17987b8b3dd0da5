//! The per-packet decision: a frame and its `Context` (the snapshot, the worker's
//! flow table, the time) in, a `Verdict` out, through one entry point, `decide`.
//! Frames are rewritten in place for `Forward` and `Reply`. Plain Rust over
//! `&mut [u8]`: no DPDK, so it is tested as tables of packets.
//!
//! A frame tries, in turn: the same-flow run of the frame before it (`run`), the
//! fast paths for the common IPv4 and IPv6 frames at fixed offsets (`fast`,
//! `fast6`), and the general path that walks every header and names every drop
//! (`general`, IPv6's in `ipv6`; fragments in `fragments`). Where a flow goes is
//! `steer`'s, as the service's tracking says (Maglev first, see `steering`).

mod fast;
mod fast6;
mod fragments;
mod general;
mod ipv6;
mod run;
mod steer;

use crate::flow::FlowTable;
use crate::snapshot::Snapshot;
use crate::wire::{EthernetFrame, MacAddr};

pub use crate::counters::DropReason;
pub use general::{arp_sender, flow_hash_hint, hint_and_prefetch, l2_header};
pub use ipv6::{dad_probe, ndp_sender};
pub use run::SameFlowRun;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Arp,
    /// A neighbour advertisement answering a solicitation.
    Ndp,
    IcmpEcho,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PuntKind {
    /// An ARP reply: the control thread learns target MACs from it.
    ArpReply,
    /// A gratuitous ARP (or a neighbour advertisement) from another MAC for one of
    /// dsrlb's addresses: the control thread warns that another host claims it.
    AddressClaim,
    /// A neighbour advertisement to the IPv6 real address: the control thread learns
    /// target MACs from it.
    NeighborAdvert,
    /// A duplicate address probe (a neighbour solicitation from `::`) for one of
    /// dsrlb's addresses: the control thread defends the address.
    DuplicateAddressProbe,
    /// TCP or UDP to the real address on a `PROBE_PORTS` port, or an ICMP destination
    /// unreachable to it: a target answering the DSR doctor's in-path probe.
    ProbeAnswer,
}

/// Source ports of the DSR doctor's in-path probes, sent from the real address
/// (control's doctor): answers to the real address on these ports are punted; nothing
/// else uses them, and nothing to the real address is forwarded.
pub const PROBE_PORTS: std::ops::RangeInclusive<u16> = 61000..=61999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten for the target in `slot`; send it out of the port it came in on.
    Forward {
        slot: u16,
    },
    /// Rewritten into a reply to the sender; send it out of the port it came in on.
    Reply(ReplyKind),
    /// Hand the frame, unchanged, to the control thread.
    Punt(PuntKind),
    Drop(DropReason),
    /// Dropped: the service (counter slot `service`) has no target that may take
    /// the flow. Counted as `DropReason::NoUsableTarget` and against the service.
    Unserved {
        service: u16,
    },
    /// A later fragment of a datagram whose first fragment has not come: the worker
    /// holds it (`fragment::Held`) and decides it again once a first fragment is
    /// recorded; it is dropped if its first does not come in time or the hold is full.
    Hold,
    /// An ICMP error about a flow of the service (counter slot `service`), such as
    /// "fragmentation needed", rewritten for the target that owns the flow (in
    /// `slot`); counted as forwarded to it and against the service's ICMP errors.
    IcmpError {
        slot: u16,
        service: u16,
    },
}

/// TTL of the replies dsrlb originates (echo replies).
const REPLY_TTL: u8 = 64;

/// What a worker decides a burst's frames with.
pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub port_mac: MacAddr,
    pub flows: &'a mut FlowTable,
    /// The worker's clock, read once a burst.
    pub now_ms: u64,
    /// The same-flow run, carried from frame to frame (and burst to burst, see
    /// `carrying`).
    pub run: SameFlowRun,
}

impl<'a> Context<'a> {
    pub fn new(
        snapshot: &'a Snapshot,
        port_mac: MacAddr,
        flows: &'a mut FlowTable,
        now_ms: u64,
    ) -> Self {
        Context {
            snapshot,
            port_mac,
            flows,
            now_ms,
            run: SameFlowRun::default(),
        }
    }

    /// Continues the run of an earlier burst if it may (`SameFlowRun::carry_over`).
    #[inline(always)]
    pub fn carrying(mut self, mut run: SameFlowRun) -> Self {
        run.carry_over(self.snapshot, self.now_ms);
        self.run = run;
        self
    }
}

/// Decides what to do with one frame, rewriting it in place for `Forward` and
/// `Reply`. `hash_hint` is the frame's flow hash if already known (the worker
/// computes it to prefetch: `flow_hash_hint` with this snapshot's seed).
#[inline(always)]
pub fn decide(ctx: &mut Context, frame: &mut [u8], hash_hint: Option<u64>) -> Verdict {
    if let Some(slot) = ctx.run.forward(frame) {
        return Verdict::Forward { slot };
    }
    if let Some(verdict) = fast::fast_path(ctx, frame, hash_hint) {
        return verdict;
    }
    ctx.run.end();
    if let Some(verdict) = fast6::fast_path6(ctx, frame, hash_hint) {
        return verdict;
    }
    general::decide_frame(ctx, frame, hash_hint).unwrap_or_else(Verdict::Drop)
}

/// The general path alone, for tests that compare it with `decide`.
#[cfg(feature = "fixtures")]
pub fn decide_general(ctx: &mut Context, frame: &mut [u8]) -> Verdict {
    general::decide_frame(ctx, frame, None).unwrap_or_else(Verdict::Drop)
}

/// To the target, from this port: the whole of a DSR forward's rewrite.
#[inline(always)]
fn rewrite_macs(frame: &mut [u8], target_mac: MacAddr, port_mac: MacAddr) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(target_mac);
    eth.set_src_addr(port_mac);
}
