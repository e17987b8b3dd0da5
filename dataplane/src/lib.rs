//! The dsrlb dataplane. `wire`, `maglev`, `flow` and `forward` are plain Rust over byte
//! buffers, testable without DPDK; `dpdk` is the thin safe layer over `dpdk-sys`, and
//! `worker` is the poll loop that joins the two.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod control_tx;
pub mod counters;
#[cfg(any(test, feature = "fixtures"))]
pub mod craft;
pub mod dpdk;
pub mod flow;
pub mod forward;
pub mod hash;
pub mod maglev;
pub mod memory;
pub mod pcap;
pub mod rcu;
pub mod snapshot;
pub mod wire;
pub mod worker;
