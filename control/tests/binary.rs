//! The `dsrlb` binary as an operator runs it: `check` on good and bad files, and
//! `run` on a net_pcap vdev that replays client traffic, stopped by SIGINT/SIGTERM.
#![allow(clippy::unwrap_used)]

use dataplane::craft::{arp_frame, tcp_frame, udp_frame};
use dataplane::wire::tcp::{FLAG_ACK, FLAG_SYN};
use dataplane::wire::{ArpOperation, MacAddr};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DSRLB: &str = env!("CARGO_BIN_EXE_dsrlb");
const PORT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xcc, 0, 0, 0, 1]);
const T11: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const T12: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dsrlb-bin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(dir: &Path, prefix: &str) -> String {
    format!(
        r#"
[appliance]
address = "10.99.0.2"
[dataplane]
worker_lcores = [1]
hugepages = false
memory_mb = 128
mbufs = 4095
file_prefix = "{prefix}"
[[ports]]
name = "data"
device = "net_pcap_{prefix},rx_pcap={dir}/in.pcap,tx_pcap={dir}/out.pcap"
mac = "02:00:00:00:00:02"
[[services]]
vip = "10.99.0.100"
port = 80
protocol = "tcp"
targets = [{{ address = "10.99.0.11", mac = "02:00:00:00:00:0b" }}, {{ address = "10.99.0.12", mac = "02:00:00:00:00:0c" }}]
[[services]]
vip = "10.99.0.100"
port = 0
protocol = "udp"
targets = [{{ address = "10.99.0.12", mac = "02:00:00:00:00:0c" }}]
"#,
        dir = dir.display()
    )
}

#[test]
fn check_accepts_a_good_file_and_names_the_key_of_a_bad_one() {
    let dir = workdir("check");
    let good = dir.join("good.toml");
    std::fs::write(&good, config(&dir, "chk")).unwrap();
    let out = Command::new(DSRLB)
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("table_size = 65537"),
        "prints the resolved config"
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        config(&dir, "chk")
            .replace("weight", "x")
            .replace("port = 80", "port = 80\nweight = 3"),
    )
    .unwrap();
    let out = Command::new(DSRLB)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("services[0].weight") && err.contains("unknown field"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn run_until_signal(
    dir: &Path,
    prefix: &str,
    signal: &str,
    frames: usize,
) -> (std::process::ExitStatus, String, Duration) {
    let conf = dir.join("dsrlb.toml");
    std::fs::write(&conf, config(dir, prefix)).unwrap();
    let mut child = Command::new(DSRLB)
        .args(["run", "--stats-interval", "1", "--config"])
        .arg(&conf)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The replay is over once the once-a-second summary line shows every frame.
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    let want = format!("rx {frames} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match lines_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains(&want) => break,
            _ if Instant::now() >= deadline => {
                panic!("dsrlb did not receive all {frames} frames in 10 s")
            }
            _ => {}
        }
    }
    let sent_at = Instant::now();
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent_at.elapsed() < Duration::from_secs(10),
            "dsrlb did not stop within 10 s of {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stopped_in = sent_at.elapsed();
    let stdout = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let stderr = reader.join().unwrap();
    (status, format!("{stdout}\n{stderr}"), stopped_in)
}

#[test]
fn run_forwards_on_a_pcap_vdev_and_stops_cleanly_on_sigint_and_sigterm() {
    for (signal, prefix) in [("-INT", "binint"), ("-TERM", "binterm")] {
        let dir = workdir(prefix);
        let client = Ipv4Addr::new(10, 99, 0, 1);
        let vip = Ipv4Addr::new(10, 99, 0, 100);
        let mut frames = Vec::new();
        for p in 0..200u16 {
            frames.push(tcp_frame(
                PORT_MAC,
                CLIENT_MAC,
                (client, 20_000 + p),
                (vip, 80),
                FLAG_SYN,
            ));
        }
        for p in 0..200u16 {
            frames.push(tcp_frame(
                PORT_MAC,
                CLIENT_MAC,
                (client, 20_000 + p),
                (vip, 80),
                FLAG_ACK,
            ));
        }
        frames.push(udp_frame(
            PORT_MAC,
            CLIENT_MAC,
            (client, 5000),
            (vip, 5353),
            b"q",
        ));
        frames.push(tcp_frame(
            PORT_MAC,
            CLIENT_MAC,
            (client, 1),
            (vip, 443),
            FLAG_SYN,
        ));
        frames.push(arp_frame(
            MacAddr::BROADCAST,
            ArpOperation::Request,
            (CLIENT_MAC, client),
            (MacAddr::ZERO, vip),
        ));
        dataplane::pcap::write(std::fs::File::create(dir.join("in.pcap")).unwrap(), &frames)
            .unwrap();

        let (status, output, stopped_in) = run_until_signal(&dir, prefix, signal, frames.len());
        assert!(status.success(), "exit {status:?} on {signal}\n{output}");
        assert!(
            stopped_in < Duration::from_secs(2),
            "stopped in {stopped_in:?}"
        );
        assert!(
            output.contains("rx 403 forwarded 401 replied 1"),
            "{output}"
        );
        assert!(output.contains("drops by reason: no_service=1"), "{output}");
        assert!(
            !Path::new(&format!("/var/run/dpdk/{prefix}")).exists(),
            "runtime dir left behind"
        );

        let recorded =
            dataplane::pcap::read(std::fs::File::open(dir.join("out.pcap")).unwrap()).unwrap();
        // dsrlb's own announcements (sent through the worker: a pcap port has no spare
        // tx queue) are interleaved with the forwarded frames; take them apart.
        let (announcements, sent): (Vec<Vec<u8>>, Vec<Vec<u8>>) = recorded
            .into_iter()
            .partition(|f| f[0..6] == MacAddr::BROADCAST.0 && f[12..14] == [0x08, 0x06]);
        let mut announced: Vec<Ipv4Addr> = announcements
            .iter()
            .map(|f| {
                let (op, addr, mac) = dataplane::forward::arp_sender(f).unwrap();
                assert_eq!((op, mac), (ArpOperation::Request, PORT_MAC));
                assert_eq!(
                    &f[38..42],
                    &addr.octets(),
                    "gratuitous: target address = sender address"
                );
                addr
            })
            .collect();
        announced.dedup();
        assert_eq!(
            announced,
            [Ipv4Addr::new(10, 99, 0, 2), vip],
            "announces the real address and the VIP at start"
        );
        assert_eq!(sent.len(), 402, "401 forwarded + 1 ARP reply");
        let mut per_target = [0usize; 2];
        for (i, f) in sent.iter().take(400).enumerate() {
            let dst = MacAddr::from_bytes(&f[0..6]);
            assert!(dst == T11 || dst == T12, "frame {i} to {dst}");
            per_target[usize::from(dst == T12)] += 1;
            assert_eq!(
                &f[12..],
                &frames[i][12..],
                "frame {i}: only the MACs change"
            );
            if i >= 200 {
                assert_eq!(
                    f[0..6],
                    sent[i - 200][0..6],
                    "flow {} stayed on its target",
                    i - 200
                );
            }
        }
        assert!(
            per_target.iter().all(|&n| n >= 100),
            "spread {per_target:?}"
        );
        assert_eq!(
            MacAddr::from_bytes(&sent[400][0..6]),
            T12,
            "UDP any-port service"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
