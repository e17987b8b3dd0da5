//! Prometheus text exposition (format 0.0.4) of the same views `dsrlb show` prints,
//! and the small HTTP listener that serves it on the management address.

use crate::api::{
    ArpView, DigestView, PortView, Request, ServerView, StatsView, TargetView, WorkerView,
};
use crate::ctl::Asker;
use crate::pair::{PairView, Role};
use crate::serve::{Limits, Protocol, Server, Turn};
use dataplane::counters::COUNTERS;
use std::fmt::Write as _;
use std::net::{SocketAddrV4, TcpListener};
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

/// One per-item family: its name, TYPE, help and the value it takes from an item.
type Metric<T> = (&'static str, &'static str, &'static str, fn(&T) -> u64);

/// Each family of `metrics`, a sample per item labelled by `labels`.
fn families<T>(
    out: &mut String,
    items: &[T],
    labels: impl Fn(&T) -> Vec<(&'static str, String)>,
    metrics: &[Metric<T>],
) {
    for (name, kind, help, value) in metrics {
        family(out, name, kind, help, items, &labels, value);
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

const SERVICE_METRICS: &[Metric<ServerView>] = &[
    (
        "dsrlb_service_packets_total",
        "counter",
        "Packets forwarded to the service's targets.",
        |s| s.packets,
    ),
    (
        "dsrlb_service_bytes_total",
        "counter",
        "Bytes forwarded to the service's targets.",
        |s| s.bytes,
    ),
    (
        "dsrlb_service_dropped_packets_total",
        "counter",
        "Packets dropped because the service had no usable target.",
        |s| s.drops,
    ),
    (
        "dsrlb_service_icmp_errors_total",
        "counter",
        "ICMP errors about the service's flows (fragmentation needed...) forwarded to their targets.",
        |s| s.icmp_errors,
    ),
    (
        "dsrlb_service_targets",
        "gauge",
        "Targets configured for the service.",
        |s| s.targets_total as u64,
    ),
    (
        "dsrlb_service_targets_up",
        "gauge",
        "Targets that may take new flows.",
        |s| s.targets_up as u64,
    ),
    (
        "dsrlb_service_active_flows",
        "gauge",
        "Live flows pinned to the service's targets.",
        |s| s.active_flows,
    ),
];

const TARGET_METRICS: &[Metric<TargetView>] = &[
    (
        "dsrlb_target_packets_total",
        "counter",
        "Packets forwarded to the target.",
        |t| t.packets,
    ),
    (
        "dsrlb_target_bytes_total",
        "counter",
        "Bytes forwarded to the target.",
        |t| t.bytes,
    ),
    (
        "dsrlb_target_active_flows",
        "gauge",
        "Live flows pinned to the target.",
        |t| t.active_flows,
    ),
    (
        "dsrlb_target_weight",
        "gauge",
        "Configured weight of the target.",
        |t| u64::from(t.weight),
    ),
    (
        "dsrlb_target_healthy",
        "gauge",
        "1 if the target's health checks pass (or it has none yet), 0 if they fail.",
        |t| u64::from(t.health != "down"),
    ),
    (
        "dsrlb_target_mac_conflict",
        "gauge",
        "1 while two MACs answer ARP for the target (its traffic stays on the MAC in use).",
        |t| u64::from(t.mac_conflict.is_some()),
    ),
];

const PORT_METRICS: &[Metric<PortView>] = &[
    ("dsrlb_port_rx_packets_total", "counter", "Frames the port's driver received.", |p| p.rx_packets),
    ("dsrlb_port_tx_packets_total", "counter", "Frames the port's driver sent.", |p| p.tx_packets),
    (
        "dsrlb_port_rx_missed_packets_total",
        "counter",
        "Frames the driver dropped for lack of room in its rx ring (af_packet's driver never counts them, af_xdp's not when the socket's ring is full: see ring_drops).",
        |p| p.rx_missed,
    ),
    ("dsrlb_port_rx_errors_total", "counter", "Receive errors the driver counted.", |p| p.rx_errors),
    ("dsrlb_port_tx_errors_total", "counter", "Transmit errors the driver counted.", |p| p.tx_errors),
    ("dsrlb_port_rx_no_mbuf_total", "counter", "Frames the driver dropped for want of an mbuf.", |p| p.rx_no_mbuf),
    (
        "dsrlb_port_ring_drops_total",
        "counter",
        "Frames the kernel dropped because the rx ring of the port's af_packet or af_xdp sockets was full (0 for a port without such sockets).",
        |p| p.ring_drops.unwrap_or(0),
    ),
];

fn port_labels(p: &PortView) -> Vec<(&'static str, String)> {
    vec![("port", p.name.clone()), ("mac", p.mac.clone())]
}

/// The states `dsrlb_target_state` has a sample for, one of them 1.
const TARGET_STATES: [&str; 7] = [
    "up", "down", "unknown", "drain", "disabled", "no-mac", "dsr-down",
];

/// The whole exposition: the appliance, then per service, per target and per worker
/// (every counter of `dataplane::counters`), then the mempool.
pub fn render(
    servers: &[ServerView],
    targets: &[TargetView],
    stats: &StatsView,
    digest: &DigestView,
    pair: Option<&PairView>,
) -> String {
    let mut out = String::new();
    appliance(&mut out, stats);
    digests(&mut out, digest);
    if let Some(pair) = pair {
        pair_role(&mut out, pair);
    }
    families(&mut out, servers, service_labels, SERVICE_METRICS);
    families(&mut out, targets, target_labels, TARGET_METRICS);
    target_states(&mut out, targets);
    workers(&mut out, &stats.workers);
    families(&mut out, &stats.ports, port_labels, PORT_METRICS);
    arp(&mut out, &stats.arp);
    let single = [
        (
            "dsrlb_mempool_mbufs_in_use",
            "Packet buffers in use.",
            stats.mempool_in_use,
        ),
        (
            "dsrlb_mempool_mbufs",
            "Packet buffers in the pool.",
            stats.mempool_size,
        ),
    ];
    for (name, help, value) in single {
        Family::start(&mut out, name, "gauge", help).sample(name, &[], value);
    }
    out
}

fn appliance(out: &mut String, stats: &StatsView) {
    Family::start(
        out,
        "dsrlb_build_info",
        "gauge",
        "Version of the running dsrlb.",
    )
    .sample("dsrlb_build_info", &[("version", &stats.version)], 1);
    Family::start(
        out,
        "dsrlb_uptime_seconds",
        "gauge",
        "Seconds since dsrlb started.",
    )
    .sample("dsrlb_uptime_seconds", &[], stats.uptime_secs);
    let name = "dsrlb_config_reloads_total";
    let mut reloads = Family::start(out, name, "counter", "Configuration reloads, by result.");
    reloads.sample(name, &[("result", "applied")], stats.reloads);
    reloads.sample(name, &[("result", "refused")], stats.reloads_failed);
}

/// Each service's table digest (`dsrlb show digest`), its low 53 bits (exact as a
/// float): equal on appliances that choose alike.
fn digests(out: &mut String, view: &DigestView) {
    let name = "dsrlb_maglev_digest";
    let help = "Low 53 bits of the service's Maglev table digest (dsrlb show digest); equal on appliances that choose alike.";
    let mut family = Family::start(out, name, "gauge", help);
    for s in &view.services {
        let value = u64::from_str_radix(&s.digest, 16).unwrap_or(0) & ((1 << 53) - 1);
        family.sample(name, &[("service", s.service.as_str())], value);
    }
}

/// A pair's role (`dsrlb show ha`): 1 while active, and the changes so far.
fn pair_role(out: &mut String, pair: &PairView) {
    let name = "dsrlb_ha_active";
    let help =
        "1 while this appliance is its pair's active (keepalived says MASTER), 0 while standby.";
    Family::start(out, name, "gauge", help).sample(name, &[], u64::from(pair.role == Role::Active));
    let name = "dsrlb_ha_transitions_total";
    let help = "Changes between active and standby since start.";
    Family::start(out, name, "counter", help).sample(name, &[], pair.transitions);
}

/// ARP from the data segment that dsrlb did not simply believe.
fn arp(out: &mut String, arp: &ArpView) {
    let name = "dsrlb_arp_ignored_total";
    let help = "ARP replies ignored, by why (unsolicited, not_unicast, our_mac, another_targets_mac, not_learned).";
    let mut ignored = Family::start(out, name, "counter", help);
    for (why, &n) in &arp.ignored {
        ignored.sample(name, &[("reason", why.as_str())], n);
    }
    let single = [
        (
            "dsrlb_arp_conflicts_total",
            "Episodes of two MACs answering ARP for one target.",
            arp.conflicts,
        ),
        (
            "dsrlb_arp_address_claims_total",
            "ARP frames from other hosts for dsrlb's own addresses (VIPs, real address).",
            arp.address_claims,
        ),
    ];
    for (name, help, value) in single {
        Family::start(out, name, "counter", help).sample(name, &[], value);
    }
}

fn service_labels(s: &ServerView) -> Vec<(&'static str, String)> {
    vec![
        ("service", s.service.clone()),
        ("vip", s.vip.to_string()),
        ("port", s.port.to_string()),
        ("protocol", s.protocol.clone()),
    ]
}

fn target_labels(t: &TargetView) -> Vec<(&'static str, String)> {
    vec![
        ("service", t.service.clone()),
        ("target", t.address.to_string()),
    ]
}

fn target_states(out: &mut String, targets: &[TargetView]) {
    let name = "dsrlb_target_state";
    let help = "1 for the target's current state (up, down, unknown, drain, disabled, no-mac).";
    let mut states = Family::start(out, name, "gauge", help);
    for t in targets {
        let address = t.address.to_string();
        for state in TARGET_STATES {
            let labels = [
                ("service", t.service.as_str()),
                ("target", address.as_str()),
                ("state", state),
            ];
            states.sample(name, &labels, u64::from(t.state == state));
        }
    }
}

fn worker_labels(w: &WorkerView) -> Vec<(&'static str, String)> {
    vec![
        ("lcore", w.lcore.to_string()),
        ("port", w.port.clone()),
        ("queue", w.queue.to_string()),
    ]
}

/// Every worker counter, then the drops by reason.
fn workers(out: &mut String, workers: &[WorkerView]) {
    for c in COUNTERS {
        let kind = c.kind.prometheus();
        family(out, c.metric, kind, c.help, workers, worker_labels, |w| {
            w.count(c.name)
        });
    }
    let name = "dsrlb_worker_dropped_packets_total";
    let mut drops = Family::start(out, name, "counter", "Frames dropped, by reason.");
    for w in workers {
        let mut labels = worker_labels(w);
        labels.push(("reason", String::new()));
        for (reason, &n) in &w.drops {
            labels[3].1.clone_from(reason);
            let borrowed: Vec<(&str, &str)> =
                labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            drops.sample(name, &borrowed, n);
        }
    }
}

/// The metrics listener: GET /metrics answers the control loop's `Request::Metrics`.
pub struct MetricsServer {
    _server: Server,
}

/// A whole exchange, from accept to the last byte of the response; connections past
/// the bound close the one idle the longest, so a scrape always gets through.
const METRICS_LIMITS: Limits = Limits {
    deadline: Duration::from_secs(2),
    connections: 64,
};

impl MetricsServer {
    pub fn start(listen: SocketAddrV4, asker: Asker) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let protocol = MetricsHttp { asker };
        let server = Server::spawn("dsrlb-metrics", listener, protocol, METRICS_LIMITS)?;
        log::info!("metrics on http://{listen}/metrics");
        Ok(MetricsServer { _server: server })
    }
}

/// HTTP/1.x, parsed by httparse: GET /metrics (any query) gets the exposition.
pub struct MetricsHttp {
    asker: Asker,
}

impl Protocol for MetricsHttp {
    /// The request head's limit; past it, 431.
    const LIMIT: usize = 8192;

    fn turn(&mut self, request: &[u8], ended: bool) -> Turn {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        let (status, content_type, body) = match parsed.parse(request) {
            Ok(httparse::Status::Complete(_)) => {
                let path = parsed.path.unwrap_or("");
                let path = path.split_once('?').map_or(path, |(path, _query)| path);
                self.respond(parsed.method.unwrap_or(""), path)
            }
            Ok(httparse::Status::Partial) if request.len() >= Self::LIMIT => too_large(),
            Ok(httparse::Status::Partial) if !ended => return Turn::More,
            Err(httparse::Error::TooManyHeaders) => too_large(),
            Ok(httparse::Status::Partial) | Err(_) => {
                ("400 Bad Request", "text/plain", "GET /metrics\n".to_owned())
            }
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        Turn::Respond([head.into_bytes(), body.into_bytes()].concat())
    }
}

type Response = (&'static str, &'static str, String);

fn too_large() -> Response {
    let body = format!("the request head is over {} bytes\n", MetricsHttp::LIMIT);
    ("431 Request Header Fields Too Large", "text/plain", body)
}

impl MetricsHttp {
    pub fn new(asker: Asker) -> MetricsHttp {
        MetricsHttp { asker }
    }

    fn respond(&self, method: &str, path: &str) -> Response {
        match (method, path) {
            ("GET", "/metrics") => match self.asker.ask(Request::Metrics) {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            arp: crate::api::ArpView {
                ignored: [("unsolicited".to_owned(), 5)].into_iter().collect(),
                conflicts: 1,
                address_claims: 2,
            },
        }
    }

    /// The metrics listener on a loopback port, its control loop answering every
    /// request with a one-line exposition until the questions stop.
    fn listening() -> (Server, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (asker, questions) = crate::ctl::channel();
        std::thread::spawn(move || {
            while let Ok((_, reply)) = questions.recv() {
                let _ = reply.send(crate::api::Reply::Metrics("dsrlb_up 1\n".into()));
            }
        });
        let server = Server::spawn(
            "test-metrics",
            listener,
            MetricsHttp { asker },
            METRICS_LIMITS,
        );
        (server.unwrap(), addr)
    }

    /// Sends `request` and reads the response to its end: (status line, whole text).
    fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> (String, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        let status = text.lines().next().unwrap_or("").to_owned();
        (status, text)
    }

    const SCRAPE: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn requests_get_the_status_they_deserve() {
        let (_server, addr) = listening();
        let (status, text) = exchange(addr, SCRAPE);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(text.ends_with("\r\n\r\ndsrlb_up 1\n"), "{text}");
        let query = exchange(addr, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!(
            query.0, "HTTP/1.1 200 OK",
            "a query string is not another path"
        );
        assert_eq!(
            exchange(addr, b"GET / HTTP/1.1\r\n\r\n").0,
            "HTTP/1.1 404 Not Found"
        );
        let post = exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n").0;
        assert_eq!(post, "HTTP/1.1 405 Method Not Allowed");
        let garbage = exchange(addr, b"\x00\x01 nonsense\r\n\r\n").0;
        assert_eq!(garbage, "HTTP/1.1 400 Bad Request");
        let mut big = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 9000));
        big.extend_from_slice(b"\r\n\r\n");
        let (status, _) = exchange(addr, &big);
        assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    }

    /// Whether the server still holds `stream` open (a read would wait).
    fn still_open(stream: &std::net::TcpStream) -> bool {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let open = matches!(
            std::io::Read::read(&mut &*stream, &mut byte),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        stream.set_nonblocking(false).unwrap();
        open
    }

    #[test]
    fn half_open_and_slow_clients_do_not_hold_up_a_scrape() {
        use std::io::Write;
        let (_server, addr) = listening();
        // 100 requests that never end, and five that trickle a byte at a time.
        let half_open: Vec<_> = (0..100)
            .map(|_| {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
                s
            })
            .collect();
        let mut slow: Vec<_> = (0..5)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        for _ in 0..3 {
            for s in &mut slow {
                let _ = s.write_all(b"G");
            }
            let (status, _) = exchange(addr, SCRAPE);
            assert_eq!(status, "HTTP/1.1 200 OK");
            // Served while the slow ones wait: not after their deadline.
            assert!(slow.iter().all(still_open));
        }
        assert!(
            still_open(&half_open[99]),
            "the latest half-open one is still held"
        );
        // Past its deadline a half-open client is closed, not kept.
        std::thread::sleep(METRICS_LIMITS.deadline + Duration::from_millis(500));
        assert!(!still_open(&half_open[99]));
    }

    /// Every sample line: name{labels} value, with a TYPE declared before it.
    #[test]
    fn exposition_is_well_formed_and_names_follow_conventions() {
        let server = ServerView {
            service: "web \"x\" (10.99.0.100:80/tcp)".into(),
            name: Some("web \"x\"".into()),
            vip: Ipv4Addr::new(10, 99, 0, 100).into(),
            port: 80,
            protocol: "tcp".into(),
            targets_up: 1,
            targets_total: 2,
            packets: 7,
            bytes: 420,
            drops: 0,
            icmp_errors: 0,
            active_flows: 1,
        };
        let digest = DigestView {
            digest: "0".to_owned(),
            services: Vec::new(),
        };
        let pair = PairView {
            role: Role::Active,
            for_secs: 3,
            transitions: 1,
            reason: String::new(),
            keepalived: Some("MASTER".to_owned()),
            priority: Some(150),
            health_value: 0,
            health_why: String::new(),
            tap: "dsrlb-ha".to_owned(),
        };
        let text = render(&[server], &[], &stats(), &digest, Some(&pair));
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
        assert!(text.contains("dsrlb_ha_active 1\n"));
        assert!(text.contains("dsrlb_ha_transitions_total 1\n"));
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
