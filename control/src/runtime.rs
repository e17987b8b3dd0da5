//! The dataplane adapter: EAL, the mbuf pool, the started ports, the worker lcores and
//! the RCU cell they read their snapshot from. The control state (`appliance`) reaches
//! them only through the `Dataplane` trait, so it holds no DPDK handle and is tested
//! against a stand-in. Of the control crate it uses only the leaves `eal_args`,
//! `kernel_port` and `ring_drops`.

use crate::eal_args::eal_args;
use crate::kernel_port::kernel_interface;
use crate::ring_drops::{self, RingDrops};
use config::Config;
use crossbeam::queue::ArrayQueue;
use dataplane::control_tx::ControlTx;
use dataplane::dpdk::{
    launch, Eal, LcoreJoin, Mbuf, Mempool, Port, PortConfig, PortStats, RssOffer,
};
use dataplane::flow::{FlowKey, FlowTable, FlowTableConfig, FlowTarget};
use dataplane::flow_query::{FlowAsk, FlowQueries};
use dataplane::rcu;
use dataplane::snapshot::Snapshot;
use dataplane::wire::MacAddr;
use dataplane::worker::{IdleBackoff, Worker, WorkerQueues, WorkerStats};
use std::cell::RefCell;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

// The punt and inject queues' sizes are config's (PUNT_QUEUE, INJECT_QUEUE): the
// mbuf budget that `dsrlb check` enforces counts them.
use config::{INJECT_QUEUE, PUNT_QUEUE};
/// How long publishing a snapshot may wait for the workers to let go of the old one.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(1);

/// A frame the control thread sends (ARP, neighbour discovery, the doctor's probes),
/// at least the Ethernet minimum long.
pub type Frame = Vec<u8>;

/// What the control state asks of the dataplane.
pub trait Dataplane {
    /// The snapshot the workers forward with.
    fn snapshot(&self) -> Arc<Snapshot>;
    /// Swaps in `next`; false if a worker did not let go of the old one in time.
    fn publish(&mut self, next: Arc<Snapshot>) -> bool;
    /// The workers and their counters.
    fn workers(&self) -> &[RunningWorker];
    /// Sends the frame `build` makes for each port's MAC on every port, tagged with
    /// `vlan`, else with the port's own VLAN if it has one (`ports[].vlan`); false
    /// where one could not be sent.
    fn send_on_every_port(
        &self,
        vlan: Option<u16>,
        build: &dyn Fn(MacAddr) -> Frame,
    ) -> Vec<(String, bool)>;
    /// Hands every frame the workers punted to `each`, then frees it; how many.
    fn take_punts(&mut self, each: &mut dyn FnMut(&[u8])) -> u64;
    /// Each port's counters.
    fn port_stats(&self) -> Vec<PortReading>;
    /// Mbufs out of the pool.
    fn mbufs_in_use(&self) -> u32;
    /// The ports' MACs.
    fn port_macs(&self) -> Vec<MacAddr>;
    /// Whether every port's link is up.
    fn links_up(&self) -> bool;
    /// Whether every worker still runs its loop.
    fn workers_running(&self) -> bool;
    /// The worker (its lcore) whose flow table holds the flow, and the target it is
    /// pinned to; None if no table holds it.
    fn pinned(&self, key: FlowKey, hash: u64) -> Result<Option<(u32, FlowTarget)>, String>;
}

/// `frame` as it goes out on `vlan`: tagged, or as it is without one.
pub fn on_vlan(frame: Frame, vlan: Option<u16>) -> Frame {
    match vlan {
        Some(vlan) => dataplane::wire::vlan::tagged(&frame, vlan),
        None => frame,
    }
}

/// How long the workers may take to answer a question about their flow tables.
const QUERY_PATIENCE: Duration = Duration::from_millis(500);

/// Asks every worker of `workers` whether its table holds the flow.
pub fn ask_workers(
    workers: &[RunningWorker],
    key: FlowKey,
    hash: u64,
) -> Result<Option<(u32, FlowTarget)>, String> {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    for w in workers {
        while w.queries.answer().is_some() {}
        if !w.queries.ask(FlowAsk { id, key, hash }) {
            return Err(format!(
                "the worker on lcore {} has too many questions waiting",
                w.lcore
            ));
        }
    }
    let deadline = std::time::Instant::now() + QUERY_PATIENCE;
    let mut waiting: Vec<&RunningWorker> = workers.iter().collect();
    let mut found = None;
    while !waiting.is_empty() {
        waiting.retain(|w| match w.queries.answer() {
            Some(a) if a.id == id => {
                found = found.or(a.pinned.map(|t| (w.lcore, t)));
                false
            }
            _ => true,
        });
        if std::time::Instant::now() > deadline {
            let lcores: Vec<String> = waiting.iter().map(|w| w.lcore.to_string()).collect();
            return Err(format!(
                "no answer from the worker(s) on lcore {} within {QUERY_PATIENCE:?}",
                lcores.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(found)
}

/// The queue through which a port's first worker sends the control thread's frames,
/// where the port has no tx queue to spare for them.
type Injection = Option<Arc<ArrayQueue<Mbuf>>>;

/// One port's counters, as the control thread reads them.
#[derive(Debug, Clone)]
pub struct PortReading {
    pub name: String,
    pub mac: MacAddr,
    /// The driver's counters (None if it has none).
    pub stats: Option<PortStats>,
    /// Frames the kernel dropped because the port's af_packet ring was full (None for
    /// a port without packet sockets).
    pub ring_drops: Option<u64>,
}

/// A started port.
pub struct RunningPort {
    pub name: String,
    pub port: Port,
    pub mac: MacAddr,
    /// The VLAN of its segment (`ports[].vlan`), which its own frames carry.
    pub vlan: Option<u16>,
    pub control_tx: ControlTx,
    /// Its af_packet sockets, if any; read (and so reset in the kernel) on each look.
    ring_drops: RefCell<RingDrops>,
    /// The kernel interface under an af_packet or af_xdp port: its drivers report
    /// the link as up whatever the interface does, so the kernel is asked.
    kernel_iface: Option<String>,
}

impl RunningPort {
    /// Whether the link is up: the kernel interface's operational state for a port
    /// over one, else the driver's link status.
    fn link_up(&self) -> bool {
        match &self.kernel_iface {
            Some(iface) => std::fs::read_to_string(format!("/sys/class/net/{iface}/operstate"))
                .is_ok_and(|state| matches!(state.trim(), "up" | "unknown")),
            None => self.port.link_up(),
        }
    }
}

/// A launched worker, as the control thread sees it.
pub struct RunningWorker {
    pub lcore: u32,
    pub port_name: String,
    pub queue: u16,
    pub stats: Arc<WorkerStats>,
    /// Questions about its flow table (`Dataplane::pinned`).
    pub queries: Arc<FlowQueries>,
}

/// Starts DPDK's EAL for `config` (once a process); the Runtime lives inside it.
pub fn start_eal(config: &Config) -> Result<Eal, String> {
    let args = eal_args(config);
    log::info!("starting EAL: {}", args.join(" "));
    Eal::init(&args).map_err(|e| e.to_string())
}

pub struct Runtime {
    // Field order is drop order: workers' handles first, then ports, then the pool.
    handles: Vec<LcoreJoin<()>>,
    workers: Vec<RunningWorker>,
    publisher: rcu::Publisher<Snapshot>,
    punt: Arc<ArrayQueue<Mbuf>>,
    worker_stop: Arc<AtomicBool>,
    ports: Vec<RunningPort>,
    pool: Mempool,
    /// Mbufs out of the pool once every port had started (see `mbufs_at_exit`).
    mbufs_held_by_drivers: u32,
}

impl Runtime {
    /// Creates the pool, starts every port and launches a worker per rx queue, each
    /// with a flow table of `flows`, all forwarding with `snapshot`. `stop` (Ctrl-C)
    /// aborts between workers.
    pub fn start(
        config: &Config,
        flows: FlowTableConfig,
        snapshot: Snapshot,
        stop: &AtomicBool,
    ) -> Result<Runtime, String> {
        let d = &config.dataplane;
        let pool = Mempool::new("dsrlb_mbufs", d.mbufs, d.mbuf_cache, d.mbuf_data_room, -1)
            .map_err(|e| e.to_string())?;
        let mut ports = Vec::new();
        let mut injects = Vec::new();
        for p in &config.ports {
            let (port, inject) = start_port(p, &pool)?;
            ports.push(port);
            injects.push(inject);
        }
        // Nothing has been received or sent yet: what is out of the pool now, the
        // drivers took to fill their receive rings.
        let mbufs_held_by_drivers = pool.in_use();
        let (publisher, readers) = rcu::cell(Arc::new(snapshot), config.worker_count());
        let mut runtime = Runtime {
            handles: Vec::new(),
            workers: Vec::new(),
            publisher,
            punt: Arc::new(ArrayQueue::new(PUNT_QUEUE)),
            worker_stop: Arc::new(AtomicBool::new(false)),
            ports,
            pool,
            mbufs_held_by_drivers,
        };
        runtime.launch_workers(config, flows, readers, injects, stop)?;
        Ok(runtime)
    }

    /// One worker per rx queue of every port, on the configured lcores in order; a
    /// port's first worker also sends the control thread's frames if the port had no
    /// tx queue to spare for it.
    fn launch_workers(
        &mut self,
        config: &Config,
        flow_table: FlowTableConfig,
        readers: Vec<rcu::Reader<Snapshot>>,
        injects: Vec<Injection>,
        stop: &AtomicBool,
    ) -> Result<(), String> {
        let mut lcores = config.dataplane.worker_lcores.iter();
        let mut readers = readers.into_iter();
        let idle = IdleBackoff::new(
            1024,
            Duration::from_micros(u64::from(config.dataplane.idle_sleep_max_us)),
        );
        for ((p, port), mut inject) in config.ports.iter().zip(&self.ports).zip(injects) {
            for queue in 0..p.queues {
                let (Some(&lcore), Some(reader)) = (lcores.next(), readers.next()) else {
                    return Err("internal: fewer lcores or readers than queues".to_owned());
                };
                if stop.load(Ordering::SeqCst) {
                    return Err("stopped during start-up".to_owned());
                }
                let stats = Arc::new(WorkerStats::default());
                let queues = WorkerQueues {
                    port: port.port.id(),
                    rx_queue: queue,
                    tx_queue: queue,
                    port_mac: port.mac,
                };
                let flows = FlowTable::new(flow_table);
                let punt = Arc::clone(&self.punt);
                let queries = Arc::new(FlowQueries::default());
                let mut worker = Worker::new(
                    queues,
                    flows,
                    reader,
                    Arc::clone(&stats),
                    punt,
                    idle.clone(),
                )
                .with_queries(Arc::clone(&queries));
                if let Some(queue) = inject.take() {
                    worker = worker.with_injection(queue);
                }
                let flag = Arc::clone(&self.worker_stop);
                let handle = launch(lcore, move || {
                    worker.run(&flag);
                })
                .map_err(|e| e.to_string())?;
                log::info!("worker on lcore {lcore}: port {} queue {queue}", p.name);
                self.handles.push(handle);
                self.workers.push(RunningWorker {
                    lcore,
                    port_name: p.name.clone(),
                    queue,
                    stats,
                    queries,
                });
            }
        }
        Ok(())
    }

    /// Tells the workers to stop after their burst and waits for them; exit code 2 if
    /// one had panicked. Punts left behind are freed.
    pub fn stop_workers(&mut self) -> ExitCode {
        log::info!("stopping: waiting for workers to finish their burst");
        self.worker_stop.store(true, Ordering::SeqCst);
        let mut code = ExitCode::SUCCESS;
        for (handle, w) in self.handles.drain(..).zip(&self.workers) {
            if let Err(e) = handle.join() {
                log::error!("worker on lcore {}: {e}", w.lcore);
                code = ExitCode::from(2);
            }
        }
        while self.punt.pop().is_some() {}
        code
    }

    /// Stops every port and says what became of the mbufs.
    pub fn close(mut self) {
        for p in self.ports.iter_mut() {
            if let Err(e) = p.port.stop() {
                log::warn!("{e}");
            }
        }
        self.ports.clear();
        match mbufs_at_exit(self.pool.in_use(), self.mbufs_held_by_drivers) {
            Some(MbufsAtExit::KeptByDrivers(message)) => log::info!("{message}"),
            Some(MbufsAtExit::Unaccounted(message)) => log::error!("{message}"),
            None => {}
        }
    }
}

impl Dataplane for Runtime {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.publisher.current()
    }

    fn publish(&mut self, next: Arc<Snapshot>) -> bool {
        self.publisher.publish(next, PUBLISH_PATIENCE)
    }

    fn workers(&self) -> &[RunningWorker] {
        &self.workers
    }

    fn send_on_every_port(
        &self,
        vlan: Option<u16>,
        build: &dyn Fn(MacAddr) -> Frame,
    ) -> Vec<(String, bool)> {
        self.ports
            .iter()
            .map(|p| {
                let sent = self
                    .pool
                    .alloc_with(&on_vlan(build(p.mac), vlan.or(p.vlan)))
                    .map(|m| p.control_tx.send(m))
                    .unwrap_or(false);
                (p.name.clone(), sent)
            })
            .collect()
    }

    fn take_punts(&mut self, each: &mut dyn FnMut(&[u8])) -> u64 {
        let mut taken = 0;
        while let Some(frame) = self.punt.pop() {
            taken += 1;
            each(frame.data());
        }
        taken
    }

    fn port_stats(&self) -> Vec<PortReading> {
        self.ports
            .iter()
            .map(|p| PortReading {
                name: p.name.clone(),
                mac: p.mac,
                stats: p.port.stats().ok(),
                ring_drops: p.ring_drops.borrow_mut().read(),
            })
            .collect()
    }

    fn mbufs_in_use(&self) -> u32 {
        self.pool.in_use()
    }

    fn port_macs(&self) -> Vec<MacAddr> {
        self.ports.iter().map(|p| p.mac).collect()
    }

    fn links_up(&self) -> bool {
        self.ports.iter().all(RunningPort::link_up)
    }

    fn workers_running(&self) -> bool {
        self.handles.iter().all(LcoreJoin::is_running)
    }

    fn pinned(&self, key: FlowKey, hash: u64) -> Result<Option<(u32, FlowTarget)>, String> {
        ask_workers(&self.workers, key, hash)
    }
}

/// Configures and starts one port, with its MAC, and the queue through which its
/// first worker sends the control thread's frames if the port has no tx queue to
/// spare for them.
fn start_port(p: &config::PortConfig, pool: &Mempool) -> Result<(RunningPort, Injection), String> {
    let mut port = Port::by_name(p.dpdk_name()).map_err(|e| e.to_string())?;
    let (_, max_tx) = port.max_queues().map_err(|e| e.to_string())?;
    // One tx queue per worker, and one for the control thread if there is room.
    let own_queue = (max_tx > p.queues).then_some(p.queues);
    let port_config = PortConfig {
        rx_queues: p.queues,
        tx_queues: p.queues + u16::from(own_queue.is_some()),
        rx_ring_size: p.rx_ring_size,
        tx_ring_size: p.tx_ring_size,
        promiscuous: p.promiscuous,
        mtu: p.mtu,
    };
    // The af_xdp driver opens its XDP sockets as the port starts.
    let xdp_before = ring_drops::xdp_sockets();
    let rss = port
        .configure_and_start(&port_config, pool)
        .map_err(|e| format!("{e} (ports[].queues, ports[].mtu of port {})", p.name))?;
    log_rss(&p.name, p.queues, &rss);
    if !port.enable_all_multicast().map_err(|e| e.to_string())? {
        log::info!(
            "port {}: the driver has no all-multicast mode; IPv6 neighbour solicitations reach dsrlb only if it passes multicast anyway",
            p.name
        );
    }
    let mac = match p.mac {
        Some(m) => {
            let mac = MacAddr(m.0);
            if !port.set_mac_addr(mac).map_err(|e| e.to_string())? {
                log::warn!(
                    "port {}: the driver cannot take MAC {mac}; promiscuous mode instead",
                    p.name
                );
                port.enable_promiscuous().map_err(|e| e.to_string())?;
            }
            mac
        }
        None => port.mac_addr().map_err(|e| e.to_string())?,
    };
    let (control_tx, inject) = match own_queue {
        Some(queue) => (
            ControlTx::OwnQueue {
                port: port.id(),
                queue,
            },
            None,
        ),
        None => {
            let inject = Arc::new(ArrayQueue::new(INJECT_QUEUE));
            (ControlTx::ViaWorker(Arc::clone(&inject)), Some(inject))
        }
    };
    log::info!(
        "port {} ({}) up: MAC {mac}, {} rx queue(s); control sends on {}",
        p.name,
        p.device,
        p.queues,
        control_tx.describe()
    );
    // The driver has its packet or XDP sockets open once the port is up.
    let ring_drops = match kernel_interface(&p.device) {
        Some(iface) => {
            let drops = RingDrops::find(iface, &xdp_before);
            let (packet, xdp) = drops.sockets();
            log::info!(
                "port {}: {packet} packet and {xdp} XDP socket(s) on {iface}, their ring drops counted",
                p.name
            );
            drops
        }
        None => RingDrops::default(),
    };
    let running = RunningPort {
        name: p.name.clone(),
        port,
        mac,
        vlan: p.vlan,
        control_tx,
        ring_drops: RefCell::new(ring_drops),
        kernel_iface: kernel_interface(&p.device).map(str::to_owned),
    };
    Ok((running, inject))
}

/// What the device offers for spreading flows over its rx queues, and what dsrlb
/// took: a worker sees every frame of a flow only if the hash covers its ports.
fn log_rss(port: &str, queues: u16, rss: &RssOffer) {
    if rss.offered == 0 {
        log::info!(
            "port {port}: {queues} rx queue(s); the device has no RSS to configure: its driver spreads frames itself (net_af_packet's qpairs: the kernel's fanout hash) or keeps one queue"
        );
        return;
    }
    let (offered, _) = RssOffer::names(rss.offered);
    log::info!(
        "port {port}: device offers RSS on [{}] ({} hash types in all), a {}-entry redirection table, a {}-byte key, {} rx queues",
        offered.join(" "),
        rss.offered.count_ones(),
        rss.reta_size,
        rss.hash_key_size,
        rss.max_rx_queues
    );
    if queues < 2 {
        return;
    }
    let (used, missing) = RssOffer::names(rss.granted);
    log::info!(
        "port {port}: {queues} rx queues, RSS on [{}]",
        used.join(" ")
    );
    if !missing.is_empty() {
        log::warn!(
            "port {port}: the device cannot hash on [{}]: such flows are spread by addresses only, or stay on one queue",
            missing.join(" ")
        );
    }
}

#[derive(Debug, PartialEq, Eq)]
enum MbufsAtExit {
    KeptByDrivers(String),
    Unaccounted(String),
}

/// What to say about the mbufs still out of the pool once the ports are closed,
/// given how many the drivers had taken when every port had started. Some drivers
/// do not give their receive rings' buffers back on close (net_af_xdp in DPDK
/// 22.11 keeps its fill ring's): exactly that many left out is theirs. Any other
/// count is not accounted for.
fn mbufs_at_exit(in_use: u32, held_by_drivers: u32) -> Option<MbufsAtExit> {
    if in_use == 0 {
        None
    } else if in_use == held_by_drivers {
        Some(MbufsAtExit::KeptByDrivers(format!(
            "{in_use} mbufs stay with the port drivers at exit: as many as they took \
             to fill their receive rings at start, and did not give back on close"
        )))
    } else {
        Some(MbufsAtExit::Unaccounted(format!(
            "{in_use} mbufs still in use at exit (the port drivers had taken \
             {held_by_drivers} at start)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbufs_left_at_exit_are_the_drivers_only_when_the_count_matches() {
        let kept = |n| matches!(mbufs_at_exit(n, 2048), Some(MbufsAtExit::KeptByDrivers(_)));
        let unaccounted = |n, held| matches!(mbufs_at_exit(n, held), Some(MbufsAtExit::Unaccounted(m)) if m.starts_with(&format!("{n} mbufs still in use")));
        assert_eq!(mbufs_at_exit(0, 0), None, "all returned");
        assert_eq!(mbufs_at_exit(0, 2048), None, "rings given back on close");
        assert!(kept(2048), "net_af_xdp's fill ring, kept after close");
        assert!(unaccounted(2050, 2048), "two more than the drivers took");
        assert!(unaccounted(2047, 2048), "fewer: not the drivers' count");
        assert!(unaccounted(5, 0), "a driver that took none at start");
    }
}
