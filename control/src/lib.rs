//! The control plane of dsrlb: start-up and shutdown, ARP (announcements and target
//! MAC resolution), health probes, and the forwarding snapshots built from them. The
//! `dsrlb` binary (main.rs) is its command line.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod accounting;
pub mod announcer;
pub mod api;
pub mod appliance;
pub mod bird;
pub mod ctl;
pub mod doctor;
pub mod eal_args;
pub mod episodes;
pub mod health;
pub mod keepalived;
pub mod kernel_port;
pub mod marks;
pub mod metrics;
pub mod neighbors;
pub mod pair;
pub mod poller;
pub mod port_lock;
pub mod preflight;
pub mod report;
pub mod ring_drops;
pub mod run;
pub mod runtime;
pub mod serve;
pub mod spec;
#[cfg(any(test, feature = "fixtures"))]
pub mod stand_in;
pub mod tap;
mod views;
