//! `dsrlb-rtt` over loopback, through the kernel's UDP: the echo answers, the client
//! measures every round trip, and against a port nothing listens on it reports them
//! lost and gives up instead of waiting out the whole count.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RTT: &str = env!("CARGO_BIN_EXE_dsrlb-rtt");

struct Echo(Child);

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An echo on a free loopback port, and that port.
fn start_echo() -> (Echo, u16) {
    let mut child = Command::new(RTT)
        .args(["echo", "--bind", "127.0.0.1:0", "--secs", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the echo");
    let stdout = child.stdout.take().expect("piped stdout");
    let echo = Echo(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the echo's address");
    let port = line
        .trim()
        .strip_prefix("echo on 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from the echo: {line:?}"));
    (echo, port)
}

/// One JSON field of the client's result line, as text.
fn field<'a>(json: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\": ");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        + key.len();
    let rest = &json[start..];
    rest[..rest.find([',', '}']).unwrap_or(rest.len())].trim()
}

fn ping(port: u16, count: u32) -> String {
    let out = Command::new(RTT)
        .args(["ping", "--to", &format!("127.0.0.1:{port}")])
        .args([
            "--count",
            &count.to_string(),
            "--gap-us",
            "100",
            "--timeout-ms",
            "50",
        ])
        .output()
        .expect("run the client");
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn every_round_trip_to_the_echo_is_measured() {
    let (_echo, port) = start_echo();
    let json = ping(port, 200);
    assert_eq!(field(&json, "answered"), "200", "{json}");
    assert_eq!(field(&json, "lost"), "0", "{json}");
    let p50: f64 = field(&json, "p50_us").parse().expect("p50 is a number");
    let p99: f64 = field(&json, "p99_us").parse().expect("p99 is a number");
    assert!(p50 > 0.0 && p99 >= p50, "{json}");
}

#[test]
fn round_trips_nothing_answers_are_lost_and_the_client_gives_up() {
    // A port just freed: nothing listens there.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let started = Instant::now();
    let json = ping(port, 1000);
    assert_eq!(field(&json, "answered"), "0", "{json}");
    assert_eq!(field(&json, "lost"), "20", "{json}");
    assert_eq!(field(&json, "p50_us"), "NaN", "{json}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not give up: {json}"
    );
}
