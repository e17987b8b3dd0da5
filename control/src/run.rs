//! `dsrlb run`: start everything in order, run the control loop, stop in reverse.

use crate::api::{self, Reply, Request};
use crate::appliance::{Appliance, TICK};
use crate::ctl::{self, ControlSocket, Question};
use crate::kernel_port;
use crate::metrics::MetricsServer;
use crate::port_lock::{self, PortLocks};
use crate::report;
use crate::runtime::{self, Dataplane, Runtime};
use crate::spec::flow_table_config;
use crate::views;
use config::Config;
use crossbeam::channel::Receiver;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

    let (socket, metrics, questions) = match start_listeners(&config) {
        Ok(listeners) => listeners,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let _port_locks = match prepare_ports(&config) {
        Ok(locks) => locks,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let eal = match runtime::start_eal(&config) {
        Ok(eal) => eal,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let code = match start(config, config_path, &stop) {
        Ok((appliance, runtime)) => serve(appliance, runtime, &stop, &questions, stats_interval),
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

type Listeners = (ControlSocket, Option<MetricsServer>, Receiver<Question>);

/// The control socket first (a second dsrlb on the same socket stops here, before it
/// touches DPDK), then the metrics listener; and the questions both ask.
fn start_listeners(config: &Config) -> Result<Listeners, String> {
    let (asker, questions) = ctl::channel();
    let socket = ControlSocket::start(&config.control.socket, asker.clone())?;
    let metrics = match config.metrics.listen {
        Some(listen) => Some(
            MetricsServer::start(listen, asker)
                .map_err(|e| format!("metrics.listen {listen}: {e}"))?,
        ),
        None => None,
    };
    Ok((socket, metrics, questions))
}

/// Before EAL: the ports locked (a second dsrlb on a port this one drives stops
/// here), the kernel kept off the data ports, room for every probe's socket.
fn prepare_ports(config: &Config) -> Result<PortLocks, String> {
    let locks = PortLocks::take(config, Path::new(port_lock::LOCK_DIR))?;
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    kernel_port::quiet_kernel(config, Path::new("/proc/sys/net"), &routes);
    crate::health::raise_fd_limit();
    Ok(locks)
}

/// The control state for `config`, then the dataplane forwarding with its first tables.
fn start(
    config: Config,
    config_path: &Path,
    stop: &AtomicBool,
) -> Result<(Appliance, Runtime), String> {
    let flows = flow_table_config(&config);
    let (appliance, snapshot) = Appliance::new(config, config_path.to_owned())?;
    let runtime = Runtime::start(&appliance.config, flows, snapshot, stop)?;
    Ok((appliance, runtime))
}

/// A request from the control socket or the metrics listener.
pub fn answer(appliance: &mut Appliance, runtime: &mut dyn Dataplane, request: Request) -> Reply {
    match request {
        Request::ShowServers => Reply::Servers(views::servers(appliance, runtime)),
        Request::ShowTargets => Reply::Targets(views::targets(appliance, runtime)),
        Request::ShowStats => Reply::Stats(views::stats(appliance, runtime)),
        Request::Metrics => {
            let (servers, targets) = views::servers_and_targets(appliance, runtime);
            let stats = views::stats(appliance, runtime);
            let digest = views::digest(appliance, runtime);
            let pair = appliance.pair.as_ref().map(|p| p.view(Instant::now()));
            Reply::Metrics(crate::metrics::render(
                &servers,
                &targets,
                &stats,
                &digest,
                pair.as_ref(),
            ))
        }
        Request::Target { address, action } => appliance.set_admin(runtime, address, action),
        Request::Reload => appliance.reload_logged(runtime),
        Request::Doctor => Reply::Doctor(views::doctor(appliance)),
        Request::Ha { action } => appliance.ha(runtime, action),
        Request::ShowDigest => Reply::Digest(views::digest(appliance, runtime)),
        Request::WhichTarget {
            vip,
            port,
            protocol,
            flows,
        } => views::choices(runtime, vip, port, protocol, &flows)
            .map_or_else(Reply::Error, Reply::Choices),
    }
}

/// The control loop, until Ctrl-C / SIGTERM; then a clean stop and the exit report.
fn serve(
    mut appliance: Appliance,
    mut runtime: Runtime,
    stop: &AtomicBool,
    questions: &Receiver<Question>,
    stats_interval: Duration,
) -> ExitCode {
    log::info!(
        "dsrlb running: {} service(s), {} probed target(s); Ctrl-C or SIGTERM stops, SIGHUP reloads",
        appliance.config.services.len(),
        appliance.prober.len()
    );
    if let Err(e) = appliance.start_announcing() {
        log::error!("{e}");
        let _ = runtime.stop_workers();
        return ExitCode::from(1);
    }
    let mut last_report = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        // Waits here (for probe I/O or a tick), so that what is learned is published
        // in the same pass, never a tick later.
        appliance.tick(&mut runtime, TICK);
        while let Ok((request, reply)) = questions.try_recv() {
            let _ = reply.send(answer(&mut appliance, &mut runtime, request));
        }
        if RELOAD_REQUESTED.swap(false, Ordering::SeqCst) {
            log::info!("SIGHUP: reloading {}", appliance.config_path.display());
            appliance.reload_logged(&mut runtime);
        }
        if !stats_interval.is_zero() && last_report.elapsed() >= stats_interval {
            log::info!("{}", api::summary_line(&views::workers(&runtime)));
            last_report = Instant::now();
        }
    }
    appliance.hand_over(&mut runtime);
    while let Ok((_, reply)) = questions.try_recv() {
        let _ = reply.send(Reply::Error("dsrlb is stopping".into()));
    }
    let code = runtime.stop_workers();
    let stats = views::stats(&appliance, &runtime);
    print!("{}", report::final_report(&stats, appliance.punted));
    runtime.close();
    code
}
