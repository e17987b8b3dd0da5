//! The dataplane as the control state sees it, without DPDK: what it published and
//! sent, and the frames it is given to hand over as punts. The control state's tests
//! and the fuzz targets (fuzz/) drive `Appliance` against it.

use crate::runtime::{on_vlan, Dataplane, Frame, PortReading, RunningWorker};
use dataplane::flow::{FlowKey, FlowTarget};
use dataplane::forward::{arp_sender, l2_header};
use dataplane::snapshot::Snapshot;
use dataplane::wire::{ArpOperation, ArpPacket, MacAddr};
use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

/// The stand-in's one port.
pub const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

pub struct StandIn {
    pub snapshot: Arc<Snapshot>,
    /// Snapshots published so far.
    pub published: usize,
    /// Every frame sent, in order.
    pub sent: RefCell<Vec<Vec<u8>>>,
    /// Frames the next `take_punts` hands over.
    pub punts: Vec<Vec<u8>>,
    /// When each `take_punts` was called: once a pass of the control loop.
    pub passes: Vec<Instant>,
    /// The VLAN of its one port (`ports[].vlan`).
    pub port_vlan: Option<u16>,
    /// What `links_up` and `workers_running` say.
    pub links_up: bool,
    pub workers_running: bool,
    workers: Vec<RunningWorker>,
}

impl StandIn {
    pub fn new(snapshot: Snapshot) -> StandIn {
        StandIn {
            snapshot: Arc::new(snapshot),
            published: 0,
            sent: RefCell::new(Vec::new()),
            punts: Vec::new(),
            passes: Vec::new(),
            port_vlan: None,
            links_up: true,
            workers_running: true,
            workers: Vec::new(),
        }
    }

    /// (operation, sender address, target address) of each ARP frame sent.
    pub fn arp_sent(&self) -> Vec<(ArpOperation, Ipv4Addr, Ipv4Addr)> {
        self.sent
            .borrow()
            .iter()
            .filter_map(|f| {
                let (op, sender, _) = arp_sender(f)?;
                let (_, l3, _) = l2_header(f).ok()?;
                let arp = ArpPacket::new_checked(f.get(l3..)?).ok()?;
                Some((op, sender, arp.target_protocol_addr()))
            })
            .collect()
    }

    /// The MAC the published snapshot forwards to `addr` with, if it may.
    pub fn target_mac(&self, addr: Ipv4Addr) -> Option<MacAddr> {
        let slot = (0..self.snapshot.targets().len() as u16)
            .find(|&slot| self.snapshot.target_addr(slot) == Some(IpAddr::V4(addr)))?;
        let t = self.snapshot.target(slot)?;
        t.usable.then_some(t.mac)
    }
}

impl Dataplane for StandIn {
    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot)
    }
    fn publish(&mut self, next: Arc<Snapshot>) -> bool {
        self.snapshot = next;
        self.published += 1;
        true
    }
    fn workers(&self) -> &[RunningWorker] {
        &self.workers
    }
    fn send_on_every_port(
        &self,
        vlan: Option<u16>,
        build: &dyn Fn(MacAddr) -> Frame,
    ) -> Vec<(String, bool)> {
        let frame = on_vlan(build(PORT_MAC), vlan.or(self.port_vlan));
        self.sent.borrow_mut().push(frame);
        vec![("data".to_owned(), true)]
    }
    fn take_punts(&mut self, each: &mut dyn FnMut(&[u8])) -> u64 {
        self.passes.push(Instant::now());
        let punts = std::mem::take(&mut self.punts);
        punts.iter().for_each(|f| each(f));
        punts.len() as u64
    }
    fn port_stats(&self) -> Vec<PortReading> {
        vec![PortReading {
            name: "data".to_owned(),
            mac: PORT_MAC,
            stats: None,
            ring_drops: None,
        }]
    }
    fn mbufs_in_use(&self) -> u32 {
        0
    }
    fn port_macs(&self) -> Vec<MacAddr> {
        vec![PORT_MAC]
    }
    fn links_up(&self) -> bool {
        self.links_up
    }
    fn workers_running(&self) -> bool {
        self.workers_running
    }
    fn pinned(&self, key: FlowKey, hash: u64) -> Result<Option<(u32, FlowTarget)>, String> {
        crate::runtime::ask_workers(&self.workers, key, hash)
    }
}

/// A snapshot spec of one TCP service, 10.0.0.100:80, over targets 10.0.0.T (MAC
/// 02:00:00:00:00:T, weight 1, healthy) for each T of `targets`.
pub fn one_service_spec(
    targets: &[u8],
    tracking: dataplane::snapshot::Tracking,
) -> dataplane::snapshot::SnapshotSpec {
    use dataplane::snapshot::{ArpAnswers, ServiceSpec, SnapshotSpec, TargetSpec};
    use dataplane::wire::{IpProtocol, MacAddr};
    use std::net::Ipv4Addr;
    SnapshotSpec {
        real_addr: Ipv4Addr::new(10, 0, 0, 2),
        real_addr6: None,
        arp_answers: ArpAnswers::Every,
        seed: 0,
        table_size: 251,
        services: vec![ServiceSpec {
            forwards_icmp_errors: true,
            tracking,
            vip: Ipv4Addr::new(10, 0, 0, 100).into(),
            proto: IpProtocol::Tcp,
            port: 80,
            targets: targets
                .iter()
                .map(|&t| TargetSpec {
                    addr: Ipv4Addr::new(10, 0, 0, t).into(),
                    mac: Some(MacAddr([2, 0, 0, 0, 0, t])),
                    weight: 1,
                    healthy: true,
                })
                .collect(),
        }],
    }
}
