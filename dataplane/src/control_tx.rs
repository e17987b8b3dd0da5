//! How the control thread transmits (ARP requests and announcements).
//!
//! On a device with a tx queue to spare (NICs, ring ports) the control thread owns
//! one and sends on it directly. On af_packet and pcap vdevs every tx queue comes
//! with an rx socket of its own (af_packet puts all of them in one fanout group), so
//! an extra queue would take a share of the client traffic that nobody reads; there
//! the control thread hands frames to the port's first worker, which sends them
//! before its next burst.

use crate::dpdk::{Mbuf, MbufBurst};
use crossbeam::queue::ArrayQueue;
use std::sync::Arc;

pub enum ControlTx {
    OwnQueue { port: u16, queue: u16 },
    ViaWorker(Arc<ArrayQueue<Mbuf>>),
}

impl ControlTx {
    /// Sends (or queues) one frame; false if it had to be dropped (freed).
    pub fn send(&self, mbuf: Mbuf) -> bool {
        match self {
            ControlTx::OwnQueue { port, queue } => {
                let mut burst = MbufBurst::new();
                let _ = burst.push(mbuf);
                // Unsent frames are freed when the burst drops.
                burst.tx(*port, *queue) == 1
            }
            ControlTx::ViaWorker(queue) => queue.push(mbuf).is_ok(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ControlTx::OwnQueue { queue, .. } => format!("its own tx queue {queue}"),
            ControlTx::ViaWorker(_) => {
                "the first worker's tx queue (the device has no spare one)".to_owned()
            }
        }
    }
}
