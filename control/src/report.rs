//! Human-readable counters.

use crate::run::RunningWorker;
use dataplane::dpdk::PortStats;
use dataplane::forward::DropReason;
use dataplane::wire::MacAddr;
use dataplane::worker::WorkerCounters;
use std::fmt::Write;

fn total(workers: &[RunningWorker]) -> WorkerCounters {
    let mut t = WorkerCounters::default();
    for w in workers {
        let c = w.stats.read();
        t.rx_packets += c.rx_packets;
        t.forwarded += c.forwarded;
        t.replied += c.replied;
        t.punted += c.punted;
        t.tx_packets += c.tx_packets;
        t.tx_dropped += c.tx_dropped;
        for (a, b) in t.drops.iter_mut().zip(c.drops) {
            *a += b;
        }
        t.flows.live += c.flows.live;
    }
    t
}

pub fn summary_line(workers: &[RunningWorker]) -> String {
    let t = total(workers);
    format!(
        "rx {} forwarded {} replied {} punted {} tx {} tx_dropped {} dropped {} flows {}",
        t.rx_packets,
        t.forwarded,
        t.replied,
        t.punted,
        t.tx_packets,
        t.tx_dropped,
        t.dropped(),
        t.flows.live
    )
}

pub fn final_report(
    workers: &[RunningWorker],
    ports: &[(String, MacAddr, Option<PortStats>)],
    punted_arp: u64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n== dsrlb counters ==");
    let _ = writeln!(
        out,
        "{:<7} {:<10} {:>5} {:>12} {:>12} {:>9} {:>8} {:>12} {:>10} {:>10} {:>10}",
        "lcore",
        "port",
        "queue",
        "rx",
        "forwarded",
        "replied",
        "punted",
        "tx",
        "tx_dropped",
        "dropped",
        "flows"
    );
    for w in workers {
        let c = w.stats.read();
        let _ = writeln!(
            out,
            "{:<7} {:<10} {:>5} {:>12} {:>12} {:>9} {:>8} {:>12} {:>10} {:>10} {:>10}",
            w.lcore,
            w.port_name,
            w.queue,
            c.rx_packets,
            c.forwarded,
            c.replied,
            c.punted,
            c.tx_packets,
            c.tx_dropped,
            c.dropped(),
            c.flows.live
        );
    }
    let _ = writeln!(out, "{}", summary_line(workers));
    let t = total(workers);
    let reasons: Vec<String> = DropReason::ALL
        .iter()
        .filter(|r| t.drop_count(**r) > 0)
        .map(|r| format!("{}={}", r.name(), t.drop_count(*r)))
        .collect();
    let _ = writeln!(
        out,
        "drops by reason: {}",
        if reasons.is_empty() {
            "none".to_owned()
        } else {
            reasons.join(" ")
        }
    );
    for w in workers {
        let c = w.stats.read();
        let _ = writeln!(
            out,
            "flow table lcore {}: {} live of {}, {} inserted, {} expired, {} evicted, {} refused by the new-flow guard, {} not remembered (bucket of active flows)",
            w.lcore, c.flows.live, c.flow_capacity, c.flows.inserted, c.flows.expired, c.flows.evicted, c.flows.guard_refused, c.flows.bucket_full
        );
    }
    let _ = writeln!(
        out,
        "punted to control: {punted_arp} (punt queue overflow: {})",
        workers
            .iter()
            .map(|w| w.stats.read().punt_overflow)
            .sum::<u64>()
    );
    for (name, mac, stats) in ports {
        match stats {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "port {name} ({mac}): rx {} tx {} missed {} rx_errors {} tx_errors {} no_mbuf {}",
                    s.rx_packets, s.tx_packets, s.rx_missed, s.rx_errors, s.tx_errors, s.rx_no_mbuf
                );
            }
            None => {
                let _ = writeln!(out, "port {name} ({mac}): statistics unavailable");
            }
        }
    }
    out
}
