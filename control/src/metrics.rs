//! Prometheus text exposition (format 0.0.4) of the same views `dsrlb show` prints,
//! and the small HTTP listener that serves it on the management address.

use crate::api::{Request, ServerView, StatsView, TargetView};
use crate::ctl::{AcceptLoop, Asker};
use dataplane::counters::COUNTERS;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::time::Duration;

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes one metric family: HELP, TYPE and its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn start<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

fn family<T>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    items: &[T],
    labels: impl Fn(&T) -> Vec<(&'static str, String)>,
    value: impl Fn(&T) -> u64,
) {
    let mut f = Family::start(out, name, kind, help);
    for item in items {
        let owned = labels(item);
        let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.sample(name, &borrowed, value(item));
    }
}

pub fn render(servers: &[ServerView], targets: &[TargetView], stats: &StatsView) -> String {
    let mut out = String::new();
    Family::start(
        &mut out,
        "dsrlb_build_info",
        "gauge",
        "Version of the running dsrlb.",
    )
    .sample("dsrlb_build_info", &[("version", &stats.version)], 1);
    Family::start(
        &mut out,
        "dsrlb_uptime_seconds",
        "gauge",
        "Seconds since dsrlb started.",
    )
    .sample("dsrlb_uptime_seconds", &[], stats.uptime_secs);
    let mut reloads = Family::start(
        &mut out,
        "dsrlb_config_reloads_total",
        "counter",
        "Configuration reloads, by result.",
    );
    reloads.sample(
        "dsrlb_config_reloads_total",
        &[("result", "applied")],
        stats.reloads,
    );
    reloads.sample(
        "dsrlb_config_reloads_total",
        &[("result", "refused")],
        stats.reloads_failed,
    );

    let service = |s: &ServerView| {
        vec![
            ("service", s.service.clone()),
            ("vip", s.vip.to_string()),
            ("port", s.port.to_string()),
            ("protocol", s.protocol.clone()),
        ]
    };
    family(
        &mut out,
        "dsrlb_service_packets_total",
        "counter",
        "Packets forwarded to the service's targets.",
        servers,
        service,
        |s| s.packets,
    );
    family(
        &mut out,
        "dsrlb_service_bytes_total",
        "counter",
        "Bytes forwarded to the service's targets.",
        servers,
        service,
        |s| s.bytes,
    );
    family(
        &mut out,
        "dsrlb_service_dropped_packets_total",
        "counter",
        "Packets dropped because the service had no usable target.",
        servers,
        service,
        |s| s.drops,
    );
    family(
        &mut out,
        "dsrlb_service_targets",
        "gauge",
        "Targets configured for the service.",
        servers,
        service,
        |s| s.targets_total as u64,
    );
    family(
        &mut out,
        "dsrlb_service_targets_up",
        "gauge",
        "Targets that may take new flows.",
        servers,
        service,
        |s| s.targets_up as u64,
    );
    family(
        &mut out,
        "dsrlb_service_active_flows",
        "gauge",
        "Live flows pinned to the service's targets.",
        servers,
        service,
        |s| s.active_flows,
    );

    let target = |t: &TargetView| {
        vec![
            ("service", t.service.clone()),
            ("target", t.address.to_string()),
        ]
    };
    family(
        &mut out,
        "dsrlb_target_packets_total",
        "counter",
        "Packets forwarded to the target.",
        targets,
        target,
        |t| t.packets,
    );
    family(
        &mut out,
        "dsrlb_target_bytes_total",
        "counter",
        "Bytes forwarded to the target.",
        targets,
        target,
        |t| t.bytes,
    );
    family(
        &mut out,
        "dsrlb_target_active_flows",
        "gauge",
        "Live flows pinned to the target.",
        targets,
        target,
        |t| t.active_flows,
    );
    family(
        &mut out,
        "dsrlb_target_weight",
        "gauge",
        "Configured weight of the target.",
        targets,
        target,
        |t| u64::from(t.weight),
    );
    family(
        &mut out,
        "dsrlb_target_healthy",
        "gauge",
        "1 if the target's health checks pass (or it has none yet), 0 if they fail.",
        targets,
        target,
        |t| u64::from(t.health != "down"),
    );
    let mut states = Family::start(
        &mut out,
        "dsrlb_target_state",
        "gauge",
        "1 for the target's current state (up, down, unknown, drain, disabled, no-mac).",
    );
    for t in targets {
        for state in ["up", "down", "unknown", "drain", "disabled", "no-mac"] {
            let address = t.address.to_string();
            states.sample(
                "dsrlb_target_state",
                &[
                    ("service", t.service.as_str()),
                    ("target", address.as_str()),
                    ("state", state),
                ],
                u64::from(t.state == state),
            );
        }
    }

    let workers = &stats.workers;
    let worker = |w: &crate::api::WorkerView| {
        vec![
            ("lcore", w.lcore.to_string()),
            ("port", w.port.clone()),
            ("queue", w.queue.to_string()),
        ]
    };
    for counter in COUNTERS {
        family(
            &mut out,
            counter.metric,
            counter.kind.prometheus(),
            counter.help,
            workers,
            worker,
            |w| w.count(counter.name),
        );
    }
    let mut drops = Family::start(
        &mut out,
        "dsrlb_worker_dropped_packets_total",
        "counter",
        "Frames dropped, by reason.",
    );
    for w in workers {
        let (lcore, queue) = (w.lcore.to_string(), w.queue.to_string());
        for (reason, &n) in &w.drops {
            drops.sample(
                "dsrlb_worker_dropped_packets_total",
                &[
                    ("lcore", lcore.as_str()),
                    ("port", w.port.as_str()),
                    ("queue", queue.as_str()),
                    ("reason", reason.as_str()),
                ],
                n,
            );
        }
    }
    Family::start(
        &mut out,
        "dsrlb_mempool_mbufs_in_use",
        "gauge",
        "Packet buffers in use.",
    )
    .sample("dsrlb_mempool_mbufs_in_use", &[], stats.mempool_in_use);
    Family::start(
        &mut out,
        "dsrlb_mempool_mbufs",
        "gauge",
        "Packet buffers in the pool.",
    )
    .sample("dsrlb_mempool_mbufs", &[], stats.mempool_size);
    out
}

/// The metrics listener: GET /metrics answers the control loop's `Request::Metrics`.
pub struct MetricsServer {
    _thread: AcceptLoop,
}

impl MetricsServer {
    pub fn start(listen: SocketAddrV4, asker: Asker) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let thread = AcceptLoop::spawn(
            "dsrlb-metrics",
            move || listener.accept().map(|(stream, _)| stream),
            move |stream| answer_http(stream, &asker),
        )?;
        log::info!("metrics on http://{listen}/metrics");
        Ok(MetricsServer { _thread: thread })
    }
}

const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
const HEAD_LIMIT: usize = 8192;

fn answer_http(mut stream: TcpStream, asker: &Asker) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < HEAD_LIMIT {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let request_line = String::from_utf8_lossy(&head);
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => match asker.ask(Request::Metrics) {
            Ok(crate::api::Reply::Metrics(text)) => {
                ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text)
            }
            Ok(other) => (
                "500 Internal Server Error",
                "text/plain",
                format!("unexpected answer: {other:?}\n"),
            ),
            Err(e) => ("503 Service Unavailable", "text/plain", format!("{e}\n")),
        },
        ("GET", _) => ("404 Not Found", "text/plain", "try /metrics\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics\n".to_owned(),
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::WorkerView;
    use std::net::Ipv4Addr;

    fn stats() -> StatsView {
        StatsView {
            version: "0.1.0".into(),
            uptime_secs: 5,
            config: "x.toml".into(),
            snapshot_generation: 3,
            reloads: 1,
            reloads_failed: 2,
            workers: vec![WorkerView {
                lcore: 1,
                port: "data".into(),
                queue: 0,
                counters: [
                    ("rx_packets", 10),
                    ("rx_bytes", 600),
                    ("tx_packets", 9),
                    ("forwarded", 8),
                    ("replied", 1),
                    ("flows_live", 4),
                    ("flow_capacity", 1024),
                    ("flows_inserted", 4),
                    ("flow_bucket_full", 3),
                    ("bursts", 2),
                ]
                .into_iter()
                .map(|(name, n)| (name.to_owned(), n))
                .collect(),
                drops: [("no_service".to_owned(), 1)].into_iter().collect(),
            }],
            ports: vec![],
            mempool_in_use: 12,
            mempool_size: 8191,
        }
    }

    /// Every sample line: name{labels} value, with a TYPE declared before it.
    #[test]
    fn exposition_is_well_formed_and_names_follow_conventions() {
        let server = ServerView {
            service: "web \"x\" (10.99.0.100:80/tcp)".into(),
            name: Some("web \"x\"".into()),
            vip: Ipv4Addr::new(10, 99, 0, 100),
            port: 80,
            protocol: "tcp".into(),
            targets_up: 1,
            targets_total: 2,
            packets: 7,
            bytes: 420,
            drops: 0,
            active_flows: 1,
        };
        let text = render(&[server], &[], &stats());
        let mut typed = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(name.starts_with("dsrlb_"));
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}: counters end in _total");
                }
                typed.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(typed.contains_key(name), "{name} has no TYPE line");
            let value = line.rsplit(' ').next().unwrap();
            value.parse::<u64>().unwrap();
        }
        assert!(text.contains(
            "dsrlb_service_packets_total{service=\"web \\\"x\\\" (10.99.0.100:80/tcp)\",vip=\"10.99.0.100\",port=\"80\",protocol=\"tcp\"} 7\n"
        ));
        assert!(text.contains(
            "dsrlb_worker_dropped_packets_total{lcore=\"1\",port=\"data\",queue=\"0\",reason=\"no_service\"} 1\n"
        ));
        assert!(text.contains("dsrlb_config_reloads_total{result=\"refused\"} 2\n"));
        assert!(text
            .contains("dsrlb_flow_bucket_full_total{lcore=\"1\",port=\"data\",queue=\"0\"} 3\n"));
        assert!(
            text.contains("dsrlb_worker_bursts_total{lcore=\"1\",port=\"data\",queue=\"0\"} 2\n")
        );
        // Every counter of the table is a family, of its kind.
        for c in COUNTERS {
            assert_eq!(
                typed.get(c.metric).map(String::as_str),
                Some(c.kind.prometheus()),
                "{c:?}"
            );
        }
    }
}
