//! `dsrlb run`: start everything in order, run the control loop, stop in reverse.

use crate::accounting::{Accounting, Totals};
use crate::api::{self, AdminAction, Reply, Request};
use crate::ctl::{self, ControlSocket, Question};
use crate::eal_args::eal_args;
use crate::health::{Change, Health, ProbeSource, ProbeTarget, Prober};
use crate::metrics::MetricsServer;
use crate::neighbors::{ArpTiming, Neighbors};
use crate::report;
use crate::spec::{flow_table_config, snapshot_spec, tracked_targets, AdminStates};
use config::Config;
use crossbeam::channel::Receiver;
use crossbeam::queue::ArrayQueue;
use dataplane::control_tx::ControlTx;
use dataplane::craft;
use dataplane::dpdk::{launch, Eal, LcoreJoin, Mbuf, Mempool, Port, PortConfig};
use dataplane::flow::FlowTable;
use dataplane::forward::arp_sender;
use dataplane::rcu;
use dataplane::snapshot::Snapshot;
use dataplane::wire::{ArpOperation, MacAddr};
use dataplane::worker::{IdleBackoff, Worker, WorkerQueues, WorkerStats};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames the workers may queue for the control thread before punts are dropped.
const PUNT_QUEUE: usize = 4096;
/// Frames the control thread may queue for a worker to send.
const INJECT_QUEUE: usize = 1024;
/// How long publishing a snapshot may wait for the workers to let go of the old one.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(1);
/// The control loop's tick.
const TICK: Duration = Duration::from_millis(10);

/// A started port.
pub struct RunningPort {
    pub name: String,
    pub port: Port,
    pub mac: MacAddr,
    pub control_tx: ControlTx,
}

pub struct RunningWorker {
    pub lcore: u32,
    pub port_name: String,
    pub queue: u16,
    pub stats: Arc<WorkerStats>,
}

/// Set by SIGHUP; the control loop reloads at its next tick.
static RELOAD_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sighup(_: libc::c_int) {
    RELOAD_REQUESTED.store(true, Ordering::SeqCst);
}

/// SIGHUP reloads (ctrlc's `termination` feature would make it stop dsrlb).
fn install_sighup() -> std::io::Result<()> {
    // SAFETY: the handler only stores to an atomic (async-signal-safe); the struct is
    // fully initialised before the call.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sighup as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn run(config_path: &Path, config: Config, stats_interval: Duration) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = Arc::clone(&stop);
    if let Err(e) = ctrlc::set_handler(move || on_signal.store(true, Ordering::SeqCst)) {
        log::error!("cannot install the Ctrl-C / SIGTERM handler: {e}");
        return ExitCode::from(1);
    }
    if let Err(e) = install_sighup() {
        log::error!("cannot install the SIGHUP (reload) handler: {e}");
        return ExitCode::from(1);
    }

    // The control socket first: a second dsrlb on the same socket stops here,
    // before it touches DPDK.
    let (asker, questions) = ctl::channel();
    let socket = match ControlSocket::start(&config.control.socket, asker.clone()) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let metrics = match config.metrics.listen {
        Some(listen) => match MetricsServer::start(listen, asker) {
            Ok(m) => Some(m),
            Err(e) => {
                log::error!("metrics.listen {listen}: {e}");
                return ExitCode::from(1);
            }
        },
        None => None,
    };

    raise_fd_limit();
    let args = eal_args(&config);
    log::info!("starting EAL: {}", args.join(" "));
    let eal = match Eal::init(&args) {
        Ok(eal) => eal,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let code = match Appliance::start(config, config_path, &stop) {
        Ok(appliance) => appliance.serve(&stop, &questions, stats_interval),
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    };
    // Whoever still waits for an answer gets one now, not at its timeout.
    drop(questions);
    drop(metrics);
    drop(socket);
    drop(eal);
    log::info!("EAL cleaned up; exiting");
    code
}

pub(crate) struct Appliance {
    // Field order is drop order: workers' handles first, then ports, then the pool.
    pub(crate) handles: Vec<LcoreJoin<()>>,
    pub(crate) workers: Vec<RunningWorker>,
    pub(crate) publisher: rcu::Publisher<Snapshot>,
    pub(crate) punt: Arc<ArrayQueue<Mbuf>>,
    pub(crate) worker_stop: Arc<AtomicBool>,
    pub(crate) neighbors: Neighbors,
    pub(crate) prober: Prober,
    /// (service index, target address) of each prober slot.
    pub(crate) probed: Vec<(usize, Ipv4Addr)>,
    /// Whether each service had a target for new flows at the last publication.
    pub(crate) serving: Vec<bool>,
    /// Targets an operator drained or disabled, by address.
    pub(crate) admin: AdminStates,
    pub(crate) accounting: Accounting,
    pub(crate) config: Config,
    pub(crate) config_path: PathBuf,
    pub(crate) started: Instant,
    pub(crate) reloads: u64,
    pub(crate) reloads_refused: u64,
    pub(crate) ports: Vec<RunningPort>,
    pub(crate) pool: Mempool,
    /// Mbufs out of the pool once every port had started (see `mbufs_at_exit`).
    pub(crate) mbufs_held_by_drivers: u32,
}

impl Appliance {
    fn start(config: Config, config_path: &Path, stop: &AtomicBool) -> Result<Appliance, String> {
        let d = &config.dataplane;
        let pool = Mempool::new("dsrlb_mbufs", d.mbufs, d.mbuf_cache, d.mbuf_data_room, -1)
            .map_err(|e| e.to_string())?;
        let mut ports = Vec::new();
        let mut injects = Vec::new();
        for p in &config.ports {
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
            };
            port.configure_and_start(&port_config, &pool)
                .map_err(|e| e.to_string())?;
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
            injects.push(inject);
            ports.push(RunningPort {
                name: p.name.clone(),
                port,
                mac,
                control_tx,
            });
        }
        // Nothing has been received or sent yet: what is out of the pool now, the
        // drivers took to fill their receive rings.
        let mbufs_held_by_drivers = pool.in_use();

        let mut neighbors = Neighbors::new(ArpTiming::from(&config.arp));
        neighbors.track(tracked_targets(&config), Instant::now());
        let (prober, probed) =
            build_prober(&config).map_err(|e| format!("starting the health prober: {e}"))?;
        let admin = AdminStates::new();
        let snapshot = Snapshot::build(
            &snapshot_spec(&config, &neighbors, |_, _| true, &admin),
            None,
        )
        .map_err(|e| format!("building the forwarding tables: {e}"))?;
        let serving = serving(&snapshot);
        // Before any worker counts: every target starts at zero.
        let mut accounting = Accounting::default();
        accounting.observe(&snapshot, &Totals(&[]));
        let (publisher, readers) = rcu::cell(Arc::new(snapshot), config.worker_count());

        let punt = Arc::new(ArrayQueue::new(PUNT_QUEUE));
        let worker_stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        let mut handles = Vec::new();
        let mut lcores = config.dataplane.worker_lcores.iter();
        let mut readers = readers.into_iter();
        let idle = IdleBackoff::new(
            1024,
            Duration::from_micros(u64::from(config.dataplane.idle_sleep_max_us)),
        );
        for ((p, running), inject) in config.ports.iter().zip(&ports).zip(injects) {
            let mut inject = inject;
            for queue in 0..p.queues {
                let (Some(&lcore), Some(reader)) = (lcores.next(), readers.next()) else {
                    return Err("internal: fewer lcores or readers than queues".to_owned());
                };
                if stop.load(Ordering::SeqCst) {
                    return Err("stopped during start-up".to_owned());
                }
                let stats = Arc::new(WorkerStats::default());
                let mut worker = Worker::new(
                    WorkerQueues {
                        port: running.port.id(),
                        rx_queue: queue,
                        tx_queue: queue,
                        port_mac: running.mac,
                    },
                    FlowTable::new(flow_table_config(&config)),
                    reader,
                    Arc::clone(&stats),
                    Arc::clone(&punt),
                    idle.clone(),
                );
                // The port's first worker sends the control thread's frames if it has
                // no queue of its own.
                if let Some(queue) = inject.take() {
                    worker = worker.with_injection(queue);
                }
                let flag = Arc::clone(&worker_stop);
                let handle = launch(lcore, move || {
                    worker.run(&flag);
                })
                .map_err(|e| e.to_string())?;
                log::info!("worker on lcore {lcore}: port {} queue {queue}", p.name);
                handles.push(handle);
                workers.push(RunningWorker {
                    lcore,
                    port_name: p.name.clone(),
                    queue,
                    stats,
                });
            }
        }
        Ok(Appliance {
            handles,
            workers,
            publisher,
            punt,
            worker_stop,
            neighbors,
            prober,
            probed,
            serving,
            admin,
            accounting,
            config,
            config_path: config_path.to_owned(),
            started: Instant::now(),
            reloads: 0,
            reloads_refused: 0,
            ports,
            pool,
            mbufs_held_by_drivers,
        })
    }

    /// Builds an ARP frame and sends it on every port.
    fn send_arp(&self, what: &str, build: impl Fn(MacAddr) -> Vec<u8>) {
        for p in &self.ports {
            let sent = self
                .pool
                .alloc_with(&craft::padded(build(p.mac)))
                .map(|m| p.control_tx.send(m))
                .unwrap_or(false);
            if !sent {
                log::warn!("port {}: could not send {what}", p.name);
            }
        }
    }

    /// Gratuitous ARP (announcements) for the real address and every VIP.
    fn announce(&self) {
        let mut addrs = vec![self.config.appliance.address];
        addrs.extend(self.config.services.iter().map(|s| s.vip));
        addrs.sort();
        addrs.dedup();
        for addr in addrs {
            self.send_arp("a gratuitous ARP", |mac| {
                craft::arp_frame(
                    MacAddr::BROADCAST,
                    ArpOperation::Request,
                    (mac, addr),
                    (MacAddr::ZERO, addr),
                )
            });
        }
    }

    fn resolve(&self, target: Ipv4Addr) {
        let real = self.config.appliance.address;
        self.send_arp("an ARP request", |mac| {
            craft::arp_frame(
                MacAddr::BROADCAST,
                ArpOperation::Request,
                (mac, real),
                (MacAddr::ZERO, target),
            )
        });
    }

    pub(crate) fn health_of(&self, service: usize, addr: Ipv4Addr) -> Health {
        health_in(&self.prober, &self.probed, service, addr)
    }

    fn log_health_change(&self, change: &Change) {
        let label = self
            .prober
            .target(change.id)
            .map_or_else(String::new, |t| t.label.clone());
        let (successes, failures) = change.streak;
        let why = match (&change.outcome, change.from) {
            (Ok(()), Health::Unknown) => "first probe succeeded".to_owned(),
            (Err(failure), Health::Unknown) => format!("first probe failed: {failure}"),
            (Ok(()), _) => format!("{successes} successes in a row"),
            (Err(failure), _) => format!("{failures} failures in a row, last: {failure}"),
        };
        let line = format!("target {label}: {} -> {} ({why})", change.from, change.to);
        if change.to == Health::Down {
            log::warn!("{line}");
        } else {
            log::info!("{line}");
        }
    }

    /// Rebuilds the forwarding tables from the config and what is known now.
    fn republish(&mut self) {
        let current = self.publisher.current();
        let spec = snapshot_spec(
            &self.config,
            &self.neighbors,
            |service, addr| self.health_of(service, addr).is_usable(),
            &self.admin,
        );
        match Snapshot::build(&spec, Some(&current)) {
            Ok(next) => {
                drop(current);
                self.publish(next);
            }
            Err(e) => {
                log::error!("cannot rebuild the forwarding tables, keeping the current ones: {e}")
            }
        }
    }

    /// Swaps in `next`, then accounts for it and logs services that lost or regained
    /// their last usable target.
    fn publish(&mut self, next: Snapshot) {
        let now_serving = serving(&next);
        let next = Arc::new(next);
        if self.publisher.publish(Arc::clone(&next), PUBLISH_PATIENCE) {
            log::debug!("forwarding tables republished");
        }
        self.accounting.observe(&next, &Totals(&self.workers));
        for (si, is) in serving_changes(&self.serving, &now_serving) {
            let label = self
                .config
                .services
                .get(si)
                .map_or_else(String::new, |s| s.label());
            if is {
                log::info!("service {label} has a usable target again");
            } else {
                log::error!("service {label} has no usable target: its packets are dropped (no_usable_target)");
            }
        }
        self.serving = now_serving;
    }

    /// Applies the config file again, whole or not at all. Refused (and the running
    /// config kept) if the file is invalid or changes what needs a restart.
    fn reload(&mut self) -> Result<String, String> {
        let path = self.config_path.display().to_string();
        let next = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        let restart: Vec<String> = self
            .config
            .needs_restart_for(&next)
            .iter()
            .map(|e| format!("  {e}\n"))
            .collect();
        if !restart.is_empty() {
            return Err(format!(
                "{path}: {} change(s) need a restart:\n{}",
                restart.len(),
                restart.concat()
            ));
        }
        let (mut prober, probed) =
            build_prober(&next).map_err(|e| format!("starting the health prober: {e}"))?;
        prober.carry_over(&self.prober);
        let mut neighbors = self.neighbors.clone();
        neighbors.set_timing(ArpTiming::from(&next.arp));
        neighbors.track(tracked_targets(&next), Instant::now());
        let mut admin = self.admin.clone();
        admin.retain(|addr, _| {
            next.services
                .iter()
                .any(|s| s.targets.iter().any(|t| t.address == *addr))
        });
        let spec = snapshot_spec(
            &next,
            &neighbors,
            |service, addr| health_in(&prober, &probed, service, addr).is_usable(),
            &admin,
        );
        let current = self.publisher.current();
        let snapshot = Snapshot::build(&spec, Some(&current))
            .map_err(|e| format!("{path}: cannot build the forwarding tables: {e}"))?;
        drop(current);
        let summary = describe_changes(&self.config, &next);
        self.config = next;
        self.prober = prober;
        self.probed = probed;
        self.neighbors = neighbors;
        self.admin = admin;
        // Indices follow the new config: report every service without a target anew.
        self.serving = vec![true; self.config.services.len()];
        self.publish(snapshot);
        // New VIPs are announced now, not at the next interval.
        self.announce();
        Ok(format!("{path}: reloaded ({summary})"))
    }

    /// `dsrlb reload` and SIGHUP: logs the outcome either way.
    fn reload_logged(&mut self) -> Reply {
        match self.reload() {
            Ok(done) => {
                self.reloads += 1;
                log::info!("{done}");
                Reply::Done(done)
            }
            Err(e) => {
                self.reloads_refused += 1;
                log::error!("reload refused, the running config stays: {}", e.trim_end());
                Reply::Error(format!("reload refused, the running config stays: {e}"))
            }
        }
    }

    fn set_admin(&mut self, address: Ipv4Addr, action: AdminAction) -> Reply {
        let services: Vec<String> = self
            .config
            .services
            .iter()
            .filter(|s| s.targets.iter().any(|t| t.address == address))
            .map(|s| s.label())
            .collect();
        if services.is_empty() {
            return Reply::Error(format!("no target {address} in the running config"));
        }
        match action {
            AdminAction::Enable => self.admin.remove(&address),
            other => self.admin.insert(address, other),
        };
        self.republish();
        let what = match action {
            AdminAction::Drain => "drained (keeps its flows, takes no new ones)",
            AdminAction::Enable => "enabled",
            AdminAction::Disable => "disabled (its flows move to other targets)",
        };
        let done = format!("target {address} {what} in {}", services.join(", "));
        log::info!("{done}");
        Reply::Done(done)
    }

    fn answer(&mut self, request: Request) -> Reply {
        match request {
            Request::ShowServers => Reply::Servers(self.servers_view()),
            Request::ShowTargets => Reply::Targets(self.targets_view()),
            Request::ShowStats => Reply::Stats(self.stats_view()),
            Request::Metrics => {
                let (servers, targets) = self.servers_and_targets();
                Reply::Metrics(crate::metrics::render(
                    &servers,
                    &targets,
                    &self.stats_view(),
                ))
            }
            Request::Target { address, action } => self.set_admin(address, action),
            Request::Reload => self.reload_logged(),
        }
    }

    /// The control loop, until Ctrl-C / SIGTERM; then a clean stop.
    fn serve(
        mut self,
        stop: &AtomicBool,
        questions: &Receiver<Question>,
        stats_interval: Duration,
    ) -> ExitCode {
        log::info!(
            "dsrlb running: {} service(s), {} probed target(s); Ctrl-C or SIGTERM stops, SIGHUP reloads",
            self.config.services.len(),
            self.prober.len()
        );
        let mut next_garp = Instant::now();
        let mut last_report = Instant::now();
        let mut punted = 0u64;
        while !stop.load(Ordering::SeqCst) {
            // Wait here (for probe I/O or a tick), so that what is learned below is
            // published in the same pass, never a tick later.
            let mut changed = false;
            for change in &self.prober.poll(TICK) {
                self.log_health_change(change);
                changed = true;
            }
            let now = Instant::now();
            while let Some(frame) = self.punt.pop() {
                punted += 1;
                if let Some((ArpOperation::Reply, addr, mac)) = arp_sender(frame.data()) {
                    if self.neighbors.heard(addr, mac, now) {
                        log::info!("target {addr} is at {mac} (learned by ARP)");
                        changed = true;
                    }
                }
            }
            let (due, forgot) = self.neighbors.due_requests(now);
            changed |= forgot;
            for target in due {
                self.resolve(target);
            }
            if changed {
                self.republish();
            }
            while let Ok((request, reply)) = questions.try_recv() {
                let _ = reply.send(self.answer(request));
            }
            if RELOAD_REQUESTED.swap(false, Ordering::SeqCst) {
                log::info!("SIGHUP: reloading {}", self.config_path.display());
                self.reload_logged();
            }
            if now >= next_garp {
                self.announce();
                let garp_interval = u64::from(self.config.arp.garp_interval_secs);
                next_garp = now + Duration::from_secs(garp_interval);
            }
            if !stats_interval.is_zero() && last_report.elapsed() >= stats_interval {
                log::info!("{}", api::summary_line(&self.workers_view()));
                last_report = Instant::now();
            }
        }
        while let Ok((_, reply)) = questions.try_recv() {
            let _ = reply.send(Reply::Error("dsrlb is stopping".into()));
        }
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
        print!("{}", report::final_report(&self.stats_view(), punted));
        for p in self.ports.iter_mut() {
            if let Err(e) = p.port.stop() {
                log::warn!("{e}");
            }
        }
        drop(self.ports);
        match mbufs_at_exit(self.pool.in_use(), self.mbufs_held_by_drivers) {
            Some(MbufsAtExit::KeptByDrivers(message)) => log::info!("{message}"),
            Some(MbufsAtExit::Unaccounted(message)) => log::error!("{message}"),
            None => {}
        }
        code
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

/// Every probe in flight holds a socket: lift the soft file limit to the hard one.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out pointer, then the same struct back.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                log::warn!(
                    "cannot raise the open-file limit: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

/// One prober slot per (service, target) whose service has a probe.
fn build_prober(config: &Config) -> std::io::Result<(Prober, Vec<(usize, Ipv4Addr)>)> {
    let mut targets = Vec::new();
    let mut keys = Vec::new();
    for (si, service) in config.services.iter().enumerate() {
        for target in &service.targets {
            let Some(probe) = service.probe_for(target) else {
                continue;
            };
            targets.push(ProbeTarget {
                id: keys.len(),
                label: format!("{} of {}", target.address, service.label()),
                address: target.probe_address(),
                port: probe.port.unwrap_or(service.port),
                probe,
            });
            keys.push((si, target.address));
        }
    }
    let source = ProbeSource {
        address: config.health.source_address,
        interface: config.health.interface.clone(),
    };
    Ok((Prober::new(targets, source)?, keys))
}

/// The health of (service index, target address) as `prober` sees it; targets without
/// a probe are up.
fn health_in(
    prober: &Prober,
    probed: &[(usize, Ipv4Addr)],
    service: usize,
    addr: Ipv4Addr,
) -> Health {
    probed
        .iter()
        .position(|&key| key == (service, addr))
        .map_or(Health::Up, |i| prober.health(i))
}

/// "services +1 -0, targets +2 -1", for the reload's log line and reply.
fn describe_changes(before: &Config, after: &Config) -> String {
    let keys = |c: &Config| -> std::collections::BTreeSet<String> {
        c.services
            .iter()
            .map(|s| format!("{}:{}/{}", s.vip, s.port, s.protocol))
            .collect()
    };
    let targets = |c: &Config| -> std::collections::BTreeSet<String> {
        c.services
            .iter()
            .flat_map(|s| {
                s.targets
                    .iter()
                    .map(move |t| format!("{}:{}/{} {}", s.vip, s.port, s.protocol, t.address))
            })
            .collect()
    };
    let (sb, sa) = (keys(before), keys(after));
    let (tb, ta) = (targets(before), targets(after));
    let mut text = format!(
        "services +{} -{}, targets +{} -{}",
        sa.difference(&sb).count(),
        sb.difference(&sa).count(),
        ta.difference(&tb).count(),
        tb.difference(&ta).count()
    );
    let added: Vec<&String> = sa.difference(&sb).collect();
    if !added.is_empty() {
        text.push_str(&format!(
            "; new: {}",
            added
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    text
}

/// Per service (in config order): whether any target may take new flows.
fn serving(snapshot: &Snapshot) -> Vec<bool> {
    let mut serving = vec![false; snapshot.services().len()];
    for s in snapshot.services() {
        if let Some(slot) = serving.get_mut(s.index) {
            *slot = !s.table().is_empty();
        }
    }
    serving
}

/// Services whose "has a usable target" changed: (index, now serving). Logged once per
/// change, never per packet.
fn serving_changes(before: &[bool], after: &[bool]) -> Vec<(usize, bool)> {
    after
        .iter()
        .enumerate()
        .filter(|(i, is)| before.get(*i) != Some(is))
        .map(|(i, &is)| (i, is))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::snapshot::{ServiceSpec, SnapshotSpec, TargetSpec};
    use dataplane::wire::IpProtocol;

    fn snapshot(healthy: [bool; 2]) -> Snapshot {
        let target = |last: u8, healthy: bool| TargetSpec {
            addr: Ipv4Addr::new(10, 0, 0, last),
            mac: Some(MacAddr([2, 0, 0, 0, 0, last])),
            weight: 1,
            healthy,
        };
        Snapshot::build(
            &SnapshotSpec {
                real_addr: Ipv4Addr::new(10, 0, 0, 2),
                seed: 0,
                table_size: 251,
                services: vec![
                    ServiceSpec {
                        vip: Ipv4Addr::new(10, 0, 0, 200),
                        proto: IpProtocol::Tcp,
                        port: 80,
                        targets: vec![target(11, healthy[0])],
                    },
                    ServiceSpec {
                        vip: Ipv4Addr::new(10, 0, 0, 100),
                        proto: IpProtocol::Tcp,
                        port: 80,
                        targets: vec![target(12, healthy[1])],
                    },
                ],
            },
            None,
        )
        .unwrap()
    }

    #[test]
    fn serving_is_in_config_order_and_changes_are_reported_once() {
        // Snapshot services are sorted by VIP; serving() must still follow config order.
        assert_eq!(serving(&snapshot([true, false])), vec![true, false]);
        let all_up = serving(&snapshot([true, true]));
        let first_down = serving(&snapshot([false, true]));
        assert_eq!(serving_changes(&all_up, &first_down), vec![(0, false)]);
        assert_eq!(
            serving_changes(&first_down, &first_down),
            vec![],
            "no change, nothing logged"
        );
        assert_eq!(serving_changes(&first_down, &all_up), vec![(0, true)]);
    }

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
