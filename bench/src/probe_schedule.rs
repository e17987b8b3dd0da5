//! `dsrlb-probe-schedule`: how closely one prober thread keeps N targets' probes to
//! their schedule. Targets are simulated by TCP listeners on loopback (many targets
//! share a listener; every probe is a real connect). Prints figures; asserts nothing.

use clap::Parser;
use config::{Probe, ProbeKind};
use control::health::{Health, ProbeSource, ProbeTarget, Prober};
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Measure the health prober's schedule keeping with many targets")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    targets: usize,
    #[arg(long, default_value_t = 1000)]
    interval_ms: u32,
    #[arg(long, default_value_t = 500)]
    timeout_ms: u32,
    /// How long to run, seconds.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Loopback listeners the targets are spread over.
    #[arg(long, default_value_t = 20)]
    listeners: usize,
}

fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn main() {
    let args = Args::parse();
    let mut ports = Vec::new();
    for _ in 0..args.listeners {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("listen on loopback");
        ports.push(listener.local_addr().expect("local address").port());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                drop(conn);
            }
        });
    }
    let probe = Probe {
        kind: ProbeKind::Tcp,
        port: None,
        path: "/".into(),
        expect_status: 200,
        expect_body: None,
        command: Vec::new(),
        interval_ms: args.interval_ms,
        timeout_ms: args.timeout_ms,
        rise: 2,
        fall: 3,
    };
    let targets = (0..args.targets)
        .map(|i| ProbeTarget {
            id: i,
            label: format!("simulated {i}"),
            address: Ipv4Addr::LOCALHOST.into(),
            port: ports[i % ports.len()],
            probe: probe.clone(),
        })
        .collect();
    let mut prober = Prober::new(targets, ProbeSource::default()).expect("prober");
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    let until = start + Duration::from_secs(args.secs);
    let mut changes = 0usize;
    while Instant::now() < until {
        changes += prober.poll(Duration::from_millis(10)).len();
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    let stats = prober.schedule_stats();
    let up = (0..prober.len())
        .filter(|&i| prober.health(i) == Health::Up)
        .count();
    let expected = (args.targets as f64 * wall * 1000.0 / f64::from(args.interval_ms)).floor();
    let on_time =
        100.0 * (stats.started - stats.late_over_10pct) as f64 / stats.started.max(1) as f64;
    println!("targets                      {}", args.targets);
    println!(
        "interval / timeout           {} ms / {} ms",
        args.interval_ms, args.timeout_ms
    );
    println!("run                          {wall:.1} s on one thread");
    println!(
        "probes started               {} (schedule: {expected:.0})",
        stats.started
    );
    println!(
        "max lateness                 {:.1} ms ({:.1}% of the interval)",
        stats.max_lateness.as_secs_f64() * 1e3,
        stats.max_lateness.as_secs_f64() * 1e5 / f64::from(args.interval_ms)
    );
    println!(
        "started within 10% of due    {on_time:.2}% ({} late)",
        stats.late_over_10pct
    );
    println!("targets up at the end        {up} ({changes} state changes)");
    println!(
        "prober thread CPU            {cpu:.2} s ({:.1}% of one core)",
        100.0 * cpu / wall
    );
    println!(
        "json {{\"targets\":{},\"interval_ms\":{},\"started\":{},\"expected\":{expected:.0},\"max_lateness_ms\":{:.2},\"late_over_10pct\":{},\"cpu_pct\":{:.1}}}",
        args.targets,
        args.interval_ms,
        stats.started,
        stats.max_lateness.as_secs_f64() * 1e3,
        stats.late_over_10pct,
        100.0 * cpu / wall
    );
}
