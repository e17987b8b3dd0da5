//! The dsrlb dataplane. `wire`, `maglev`, `flow`, `snapshot` and `forward` are plain
//! Rust over byte buffers, testable without DPDK; `dpdk` is the thin safe layer over
//! `dpdk-sys`, and `worker` is the poll loop that joins the two. `counters` declares
//! what a worker counts, `rcu` how it gets the control thread's tables.
//!
//! # One frame, rx to tx
//!
//! 1. `worker::Worker::run` polls its (port, queue) until told to stop; each
//!    `poll_once` receives a burst of up to 32 mbufs (`dpdk::MbufBurst::rx`) and reads
//!    the current `snapshot::Snapshot` once (`rcu::Reader::read`; dropping the guard
//!    is the worker's quiescent state).
//! 2. Lookahead: once `LOOKAHEAD_FROM_LIVE_FLOWS` flows are live, the new burst is not
//!    decided yet. Its flows are hashed (`forward::flow_hash_hint`) and their flow-table
//!    buckets prefetched, and the burst held until the next poll decides it, so the
//!    buckets' loads from memory overlap the work of the burst before.
//! 3. `decide_burst` takes the frames in order. A frame that continues the same-flow
//!    run of the frame before it (`forward::SameFlowRun`: same flow and header shape,
//!    one masked compare) goes to that frame's target without any lookup. Any other
//!    goes to `forward::decide` (the one entry point, over a `forward::Context`: the
//!    snapshot, the port's MAC, the flow table, the time and the run), which decides
//!    it and starts or ends the run.
//! 4. The decision (`forward`): the fast path reads the common frame (untagged IPv4
//!    without options, TCP or UDP to a service) at fixed offsets behind one bounds
//!    check; anything else, or anything it doubts, takes the general path, which walks
//!    the headers through `wire`'s checked views and names a `DropReason` for each
//!    drop. Both find the service (`Snapshot::service`) and its target as the service's
//!    `Tracking` says (`forward`'s `steer`). TCP by default: Maglev first. The service's
//!    `steering::Steering` gives, in one load, the Maglev slot's target and whether a
//!    change of the tables marked the slot; an unmarked slot's frames go to its target
//!    without the flow table (bare SYNs are recorded); a marked slot's frames ask the
//!    worker's `flow::FlowTable`, and a flow it does not know, begun before the change,
//!    goes to the slot's previous target. UDP by default asks the table for every
//!    frame. The destination MAC is rewritten to the target's and the source MAC to
//!    the port's: nothing else in the frame changes. ARP and echo requests for the VIPs
//!    and the real address are answered in place (`wire::ArpRepr`,
//!    `wire::IcmpEchoRepr`); ARP replies go to the control thread (a punt).
//! 5. Slot indirection: a service's Maglev table, its marks and a flow's entry hold target slots
//!    (an index into `Snapshot::targets`) with a generation, not addresses. A target
//!    keeps its slot across snapshots while it stays configured, so a pinned flow keeps
//!    its target through rebuilds; a reused slot gets a new generation, so no flow
//!    follows a slot to another server.
//! 6. Forwarded frames go to the burst's `out` list, replies too; punts to the control
//!    thread's queue; drops to `discard`. `out` is sent with one `tx_burst`, what the
//!    driver did not take is freed and counted, `discard` is freed: every mbuf to
//!    exactly one place. The poll's counts are kept in registers (`Tally`) and
//!    published once, and the flow table is walked a few buckets a poll to count live
//!    flows per target.
//!
//! No locks, allocation or syscalls in the loop; the idle back-off's sleep comes only
//! after many empty polls.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod control_tx;
pub mod counters;
#[cfg(any(test, feature = "fixtures"))]
pub mod craft;
pub mod dpdk;
pub mod flow;
pub mod flow_query;
pub mod forward;
pub mod fragment;
pub mod hash;
pub mod maglev;
pub mod memory;
pub mod pcap;
pub mod rcu;
pub mod snapshot;
pub mod steering;
pub mod wire;
pub mod worker;
