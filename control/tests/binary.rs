//! The `dsrlb` binary as an operator runs it: `check` on good and bad files, and
//! `run` on a net_pcap vdev that replays client traffic, stopped by SIGINT/SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use dataplane::craft::{arp_frame, tcp_data_frame, tcp_frame, udp_frame};
use dataplane::dpdk::BURST_SIZE;
use dataplane::wire::tcp::{FLAG_ACK, FLAG_SYN};
use dataplane::wire::{ArpOperation, MacAddr};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    ctl, follow_log, service, show_json as json, stop_timed, wait_for_logs, Started, DSRLB,
};

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
mbufs = 8191
file_prefix = "{prefix}"
[control]
socket = "{dir}/dsrlb.sock"
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

/// `dsrlb COMMAND --config FILE`, run to its end.
fn dsrlb_on(command: &str, config: &Path) -> std::process::Output {
    Command::new(DSRLB)
        .args([command, "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

#[test]
fn check_accepts_a_good_file_and_names_the_key_of_a_bad_one() {
    let dir = workdir("check");
    let good = dir.join("good.toml");
    std::fs::write(&good, config(&dir, "chk")).unwrap();
    let out = dsrlb_on("check", &good);
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
    let out = dsrlb_on("check", &bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("services[0].weight") && err.contains("unknown field"),
        "{err}"
    );

    // Files the config names are looked at, never read whole or waited on, and
    // nothing but a socket at control.socket.
    let zero = dir.join("zero.toml");
    let in_pcap = format!("rx_pcap={}/in.pcap", dir.display());
    std::fs::write(
        &zero,
        config(&dir, "chk").replace(&in_pcap, "rx_pcap=/dev/zero,infinite_rx=1"),
    )
    .unwrap();
    std::fs::write(dir.join("dsrlb.sock"), "not a socket").unwrap();
    let out = dsrlb_on("check", &zero);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ports[0].device: rx_pcap /dev/zero: a device"),
        "{err}"
    );
    assert!(err.contains("control.socket: `"), "{err}");
    // Table memory is bounded, all services' tables together, named at
    // maglev.table_size: 2 services of 4194301 slots (TCP tracking changes: 6 bytes a
    // slot; UDP: 2), twice, need 64 MiB, over a 16 MiB bound.
    let huge = dir.join("huge.toml");
    let maglev = "[maglev]\ntable_size = 4194301\nmax_table_memory_mb = 16\n[[services]]";
    std::fs::write(
        &huge,
        config(&dir, "chk").replacen("[[services]]", maglev, 1),
    )
    .unwrap();
    let out = dsrlb_on("check", &huge);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("maglev.table_size: 2 services of 4194301 slots need 64 MiB"),
        "{err}"
    );

    let out = dsrlb_on("check", Path::new("/dev/zero"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    assert_eq!(
        std::fs::read_to_string(dir.join("dsrlb.sock")).unwrap(),
        "not a socket"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A dsrlb started on `dir`'s config that has received its whole replay.
struct Running {
    child: Started,
    /// Kept so the reader thread's sends keep succeeding.
    _lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<String>,
}

fn start_and_replay(dir: &Path, prefix: &str, frames: usize) -> Running {
    start_and_replay_config(dir, &config(dir, prefix), frames)
}

/// `start_and_replay` with the config `text`.
fn start_and_replay_config(dir: &Path, text: &str, frames: usize) -> Running {
    let conf = dir.join("dsrlb.toml");
    std::fs::write(&conf, text).unwrap();
    let mut child = Command::new(DSRLB)
        .args(["run", "--stats-interval", "1", "--config"])
        .arg(&conf)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The replay is over once the once-a-second summary line shows every frame.
    let (lines, reader) = follow_log(child.stderr.take().unwrap());
    let want = format!("rx {frames} ");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains(&want) => break,
            _ if Instant::now() >= deadline => {
                let _ = child.kill();
                panic!("dsrlb did not receive all {frames} frames in 10 s")
            }
            _ => {}
        }
    }
    Running {
        child: Started(child),
        _lines: lines,
        reader,
    }
}

fn stop(mut running: Running, signal: &str) -> (std::process::ExitStatus, String, Duration) {
    let child = &mut running.child.0;
    let (status, stopped_in) = stop_timed(child, signal);
    let stdout = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let stderr = running.reader.join().unwrap();
    (status, format!("{stdout}\n{stderr}"), stopped_in)
}

fn run_until_signal(
    dir: &Path,
    prefix: &str,
    signal: &str,
    frames: usize,
) -> (std::process::ExitStatus, String, Duration) {
    stop(start_and_replay(dir, prefix, frames), signal)
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

/// An IPv4 frame dsrlb sent from its real address (the doctor's probes).
fn from_real_address(frame: &[u8]) -> bool {
    frame[12..14] == [0x08, 0x00] && frame[26..30] == [10, 99, 0, 2]
}
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);

/// 200 SYNs then 200 ACKs of the same flows to VIP:80, one UDP datagram to VIP:5353,
/// one SYN to a port no service has, one ARP request for the VIP.
fn client_frames() -> Vec<Vec<u8>> {
    let (client, vip) = (CLIENT, VIP);
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
    frames
}

#[test]
fn run_forwards_on_a_pcap_vdev_and_stops_cleanly_on_sigint_and_sigterm() {
    for (signal, prefix) in [("-INT", "binint"), ("-TERM", "binterm")] {
        let dir = workdir(prefix);
        let vip = VIP;
        let frames = client_frames();
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
        // And the doctor's in-path probes, from the real address to the targets.
        let (probes, sent): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            sent.into_iter().partition(|f| from_real_address(f));
        assert!(
            probes.iter().all(|f| f[30..34] == vip.octets()),
            "probes go to the VIP"
        );
        // Gratuitous ARP (target address = sender address) for each address, and
        // "who has the VIP?" from the real address (the doctor's ARP flux question).
        let (gratuitous, questions): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) =
            announcements.iter().partition(|f| f[28..32] == f[38..42]);
        let mut announced: Vec<Ipv4Addr> = gratuitous
            .iter()
            .map(|f| {
                let (op, addr, mac) = dataplane::forward::arp_sender(f).unwrap();
                assert_eq!((op, mac), (ArpOperation::Request, PORT_MAC));
                addr
            })
            .collect();
        assert!(!questions.is_empty());
        for q in &questions {
            assert_eq!(
                (&q[28..32], &q[38..42]),
                (&[10, 99, 0, 2][..], &vip.octets()[..])
            );
        }
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

#[test]
fn jumbo_frames_are_forwarded_whole_on_a_9000_byte_mtu() {
    let prefix = "binjumbo";
    let dir = workdir(prefix);
    let payload = vec![0x5a; 9000 - 40];
    let frames: Vec<Vec<u8>> = (0..20u16)
        .map(|p| {
            let client = (CLIENT, 30_000 + p);
            tcp_data_frame(PORT_MAC, CLIENT_MAC, client, (VIP, 80), FLAG_ACK, &payload)
        })
        .collect();
    assert_eq!(frames[0].len(), 14 + 9000);
    dataplane::pcap::write(std::fs::File::create(dir.join("in.pcap")).unwrap(), &frames).unwrap();
    // 9000 + 18 + 128 headroom fit 9216-byte mbufs; 8191 of them need more EAL memory.
    let conf = config(&dir, prefix)
        .replace("memory_mb = 128", "memory_mb = 256\nmbuf_data_room = 9216")
        .replace(
            "mac = \"02:00:00:00:00:02\"",
            "mac = \"02:00:00:00:00:02\"\nmtu = 9000",
        );
    let (status, output, _) = stop(start_and_replay_config(&dir, &conf, frames.len()), "-INT");
    assert!(status.success(), "{output}");
    assert!(output.contains("forwarded 20 "), "{output}");
    let recorded =
        dataplane::pcap::read(std::fs::File::open(dir.join("out.pcap")).unwrap()).unwrap();
    let sent: Vec<&Vec<u8>> = (recorded.iter())
        .filter(|f| f[12..14] != [0x08, 0x06] && !from_real_address(f))
        .collect();
    assert_eq!(sent.len(), 20);
    for (out, sent_in) in sent.iter().zip(&frames) {
        let dst = MacAddr::from_bytes(&out[0..6]);
        assert!(dst == T11 || dst == T12, "to {dst}");
        assert_eq!(out[12..], sent_in[12..], "whole, only the MACs changed");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn more_queues_than_the_device_has_are_refused_naming_the_key() {
    let prefix = "binqueues";
    let dir = workdir(prefix);
    dataplane::pcap::write(
        std::fs::File::create(dir.join("in.pcap")).unwrap(),
        &client_frames(),
    )
    .unwrap();
    // net_pcap has one rx queue per rx_pcap file: one here.
    let conf = config(&dir, prefix)
        .replace(
            "worker_lcores = [1]",
            "worker_lcores = [1, 2]\nworker_cpus = [1, 1]",
        )
        .replace(
            "mac = \"02:00:00:00:00:02\"",
            "mac = \"02:00:00:00:00:02\"\nqueues = 2",
        );
    std::fs::write(dir.join("dsrlb.toml"), conf).unwrap();
    let out = dsrlb_on("run", &dir.join("dsrlb.toml"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("supports 1 rx / 1 tx queues, 2 rx / 2 tx asked")
            && err.contains("ports[].queues"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn show_target_and_reload_through_the_control_socket() {
    let prefix = "binops";
    let dir = workdir(prefix);
    let frames = client_frames();
    dataplane::pcap::write(std::fs::File::create(dir.join("in.pcap")).unwrap(), &frames).unwrap();
    let conf = dir.join("dsrlb.toml");
    let socket = dir.join("dsrlb.sock");
    let running = start_and_replay(&dir, prefix, frames.len());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "control socket is owner-only");

    // show servers: what the replay sent, per service.
    let servers = json(&socket, "servers");
    let web = service(&servers, "10.99.0.100:80/tcp");
    let web_bytes: usize = frames[..400].iter().map(Vec::len).sum();
    assert_eq!(web["packets"], 400);
    assert_eq!(web["bytes"], web_bytes as u64);
    assert_eq!(
        (web["targets_up"].as_u64(), web["targets_total"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(web["drops"], 0);
    assert_eq!(service(&servers, "10.99.0.100:0/udp")["packets"], 1);
    let (code, table, _) = ctl(&socket, &["show", "servers"]);
    assert_eq!(code, 0);
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("10.99.0.100:80/tcp") && l.contains("2/2") && l.contains("400")),
        "{table}"
    );

    // show targets: per-target packets add up; active flows appear once the workers
    // have walked their flow tables.
    let deadline = Instant::now() + Duration::from_secs(5);
    let targets = loop {
        let targets = json(&socket, "targets");
        let web: Vec<&serde_json::Value> = targets
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["service"] == "10.99.0.100:80/tcp")
            .collect();
        let flows: u64 = web
            .iter()
            .map(|t| t["active_flows"].as_u64().unwrap())
            .sum();
        if flows == 200 || Instant::now() > deadline {
            assert_eq!(flows, 200, "one active flow per client port: {targets}");
            break targets;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows = targets.as_array().unwrap();
    let web_packets: u64 = rows[..2]
        .iter()
        .map(|t| t["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(web_packets, 400);
    for t in rows {
        assert_eq!(t["mac_source"], "static");
        assert_eq!(t["state"], "up");
        assert_eq!(t["health"], "unprobed");
    }
    assert_eq!(rows[0]["mac"], "02:00:00:00:00:0b");

    // show stats: per worker, drops by reason, flow table, mempool.
    let stats = json(&socket, "stats");
    let worker = &stats["workers"][0];
    assert_eq!(worker["rx_packets"], frames.len() as u64);
    assert_eq!(worker["drops"]["no_service"], 1);
    assert_eq!(worker["flows_live"], 201, "200 TCP flows and one UDP flow");
    let bursts = worker["bursts"].as_u64().unwrap_or(0);
    assert!(
        bursts >= (frames.len() as u64).div_ceil(BURST_SIZE as u64)
            && bursts <= frames.len() as u64,
        "{bursts} bursts of at most {BURST_SIZE} for {} frames",
        frames.len()
    );
    assert!(stats["mempool_in_use"].as_u64().is_some());
    let (_, table, _) = ctl(&socket, &["show", "stats"]);
    assert!(table.contains("PER_BURST"), "{table}");
    assert!(
        table.contains("lcore 1 drops by reason: no_service=1"),
        "{table}"
    );
    assert!(table.contains("mempool:"), "{table}");

    // target drain / enable, and an address that is not a target.
    let (code, out, _) = ctl(&socket, &["target", "10.99.0.11", "drain"]);
    assert_eq!(code, 0);
    assert!(out.contains("drained"), "{out}");
    assert_eq!(json(&socket, "targets")[0]["state"], "drain");
    assert_eq!(
        service(&json(&socket, "servers"), "10.99.0.100:80/tcp")["targets_up"],
        1
    );
    let (code, _, err) = ctl(&socket, &["target", "10.99.0.99", "disable"]);
    assert_eq!(code, 1);
    assert!(err.contains("no target 10.99.0.99"), "{err}");
    assert_eq!(ctl(&socket, &["target", "10.99.0.11", "enable"]).0, 0);
    assert_eq!(json(&socket, "targets")[0]["state"], "up");

    // reload: an invalid file and a restart-only change are refused, naming the key;
    // the running config stays.
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        good.replace(
            "mac = \"02:00:00:00:00:0b\" }",
            "mac = \"02:00:00:00:00:0b\", weight = 70000 }",
        ),
    )
    .unwrap();
    let (code, _, err) = ctl(&socket, &["reload"]);
    assert_eq!(code, 1);
    assert!(err.contains("services[0].targets[0].weight"), "{err}");
    assert!(err.contains("running config stays"), "{err}");
    std::fs::write(&conf, good.replace("memory_mb = 128", "memory_mb = 256")).unwrap();
    let (code, _, err) = ctl(&socket, &["reload"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("dataplane.memory_mb") && err.contains("restart"),
        "{err}"
    );
    assert_eq!(json(&socket, "servers").as_array().unwrap().len(), 2);

    // A good file: a new VIP by `dsrlb reload`, then a service removed by SIGHUP.
    let added = format!(
        "{good}\n[[services]]\nname = \"new\"\nvip = \"10.99.0.101\"\nport = 80\nprotocol = \"tcp\"\ntargets = [{{ address = \"10.99.0.11\", mac = \"02:00:00:00:00:0b\" }}]\n"
    );
    std::fs::write(&conf, &added).unwrap();
    let (code, out, err) = ctl(&socket, &["reload"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("services +1 -0") && out.contains("10.99.0.101:80/tcp"),
        "{out}"
    );
    let servers = json(&socket, "servers");
    assert_eq!(servers.as_array().unwrap().len(), 3);
    assert_eq!(
        service(&servers, "new (10.99.0.101:80/tcp)")["targets_up"],
        1
    );
    let udp_at = added
        .find("[[services]]\nvip = \"10.99.0.100\"\nport = 0")
        .unwrap();
    let udp_end = added[udp_at..]
        .find("\n\n")
        .map_or(added.len(), |e| udp_at + e);
    let without_udp = format!("{}{}", &added[..udp_at], &added[udp_end..]);
    std::fs::write(&conf, &without_udp).unwrap();
    Command::new("kill")
        .args(["-HUP", &running.child.0.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let servers = json(&socket, "servers");
        if servers.as_array().unwrap().len() == 2 {
            assert_eq!(
                service(&servers, "10.99.0.100:80/tcp")["packets"],
                400,
                "counters survive a reload"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload: {servers}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = json(&socket, "stats");
    assert_eq!(
        (stats["reloads"].as_u64(), stats["reloads_failed"].as_u64()),
        (Some(2), Some(2))
    );

    let (status, output, stopped_in) = stop(running, "-TERM");
    assert!(status.success(), "{output}");
    assert!(
        stopped_in < Duration::from_secs(2),
        "stopped in {stopped_in:?}"
    );
    assert!(
        output.contains("reload refused, the running config stays"),
        "{output}"
    );
    assert!(output.contains("SIGHUP: reloading"), "{output}");
    assert!(!socket.exists(), "control socket removed at exit");
    let (code, _, err) = ctl(&socket, &["show", "servers"]);
    assert_eq!(code, 3);
    assert!(err.contains("dsrlb is not running"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The systemd unit as installed by scripts/install.sh: `systemd-analyze verify`
/// finds nothing to say, and its commands, run the way systemd runs them (no shell,
/// $MAINPID filled in), start dsrlb, reload it and stop it.
#[test]
fn systemd_unit_verifies_and_its_commands_start_reload_and_stop_dsrlb() {
    let prefix = "binunit";
    let dir = workdir(prefix);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let root = dir.join("root");
    let installed = Command::new(repo.join("scripts/install.sh"))
        .env("DESTDIR", &root)
        .env("DSRLB_BIN", DSRLB)
        .output()
        .unwrap();
    assert!(installed.status.success(), "{installed:?}");
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(root.join(p)).unwrap().permissions(),
        ) & 0o777
    };
    assert_eq!(mode("usr/local/bin/dsrlb"), 0o755);
    assert_eq!(mode("etc/systemd/system/dsrlb.service"), 0o644);
    assert_eq!(mode("etc/dsrlb/dsrlb.toml"), 0o600, "the config is private");

    let unit = std::fs::read_to_string(root.join("etc/systemd/system/dsrlb.service"))
        .unwrap()
        .replace("/usr/local/", &format!("{}/usr/local/", root.display()))
        .replace("/etc/dsrlb/", &format!("{}/etc/dsrlb/", root.display()));
    let unit_file = dir.join("dsrlb.service");
    std::fs::write(&unit_file, &unit).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_file)
        .output()
        .expect("systemd-analyze (package systemd; scripts/setup.sh installs it)");
    assert!(
        verify.status.success() && verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let directive = |key: &str| -> Vec<Vec<String>> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    assert!(
        unit.contains("StandardError=journal"),
        "logs go to the journal"
    );
    assert_eq!(directive("KillSignal"), [["SIGTERM"]]);

    // The installed config, replaced by one this machine can run (a pcap vdev).
    let frames = client_frames();
    dataplane::pcap::write(std::fs::File::create(dir.join("in.pcap")).unwrap(), &frames).unwrap();
    std::fs::write(root.join("etc/dsrlb/dsrlb.toml"), config(&dir, prefix)).unwrap();
    for pre in directive("ExecStartPre") {
        let out = Command::new(&pre[0]).args(&pre[1..]).output().unwrap();
        assert!(out.status.success(), "ExecStartPre {pre:?}: {out:?}");
    }
    let start = &directive("ExecStart")[0];
    let mut started = Started(
        Command::new(&start[0])
            .args(&start[1..])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut started.0;
    let (lines, reader) = follow_log(child.stderr.take().unwrap());
    let wait_for = |text: &str| wait_for_logs(&lines, &[(text, 1)], Duration::from_secs(10));
    wait_for("dsrlb running");
    let reload: Vec<String> = directive("ExecReload")[0]
        .iter()
        .map(|a| a.replace("$MAINPID", &child.id().to_string()))
        .collect();
    assert!(Command::new(&reload[0])
        .args(&reload[1..])
        .status()
        .unwrap()
        .success());
    wait_for("SIGHUP: reloading");
    wait_for("reloaded (services +0 -0, targets +0 -0)");
    let sent_at = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(sent_at.elapsed() < Duration::from_secs(2));
    reader.join().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

/// net_pcap with `infinite_rx` loads the whole file into mbufs at rx queue setup;
/// when the pool is smaller, DPDK 22.11's PMD frees its replay ring twice and dsrlb
/// died of SIGSEGV closing the port (seen with a 1M-frame file on hugepages). Both
/// `check` and `run` now refuse such a config first, naming the key.
#[test]
fn a_pcap_replay_larger_than_the_mbuf_pool_is_refused_naming_the_key() {
    let dir = workdir("replay-size");
    let frame = tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 1000), (VIP, 80), FLAG_ACK);
    dataplane::pcap::write(
        std::fs::File::create(dir.join("big.pcap")).unwrap(),
        &vec![frame; 5000],
    )
    .unwrap();
    let conf = config(&dir, "dsrlb-bin-replay").replace(
        &format!(
            "rx_pcap={dir}/in.pcap,tx_pcap={dir}/out.pcap",
            dir = dir.display()
        ),
        &format!("rx_pcap={}/big.pcap,infinite_rx=1", dir.display()),
    );
    assert!(conf.contains("infinite_rx=1") && conf.contains("mbufs = 8191"));
    std::fs::write(dir.join("dsrlb.toml"), &conf).unwrap();
    for command in ["check", "run"] {
        let out = dsrlb_on(command, &dir.join("dsrlb.toml"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("dataplane.mbufs: 8191 mbufs cannot hold the 5000 frames"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("starting EAL"), "{command}: {stderr}");
    }
    std::fs::write(
        dir.join("dsrlb.toml"),
        conf.replace("mbufs = 8191", "mbufs = 16383"),
    )
    .unwrap();
    let out = dsrlb_on("check", &dir.join("dsrlb.toml"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// README's translations of Pen's, BalanceNG's and LVS's DSR examples are files
/// `dsrlb check` accepts; those with a pair give keepalived its configuration.
#[test]
fn the_translated_peer_configs_pass_check() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples");
    for (name, vrid) in [
        ("from-pen", None),
        ("from-balanceng", Some("virtual_router_id 1")),
        ("from-lvs", Some("virtual_router_id 51")),
        ("ha-lb1", Some("virtual_router_id 99")),
    ] {
        let path = examples.join(format!("{name}.toml"));
        let out = dsrlb_on("check", &path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        assert!(err.contains("valid"), "{name}: {err}");
        let out = dsrlb_on("keepalived-config", &path);
        let text = String::from_utf8_lossy(&out.stdout);
        match vrid {
            Some(vrid) => {
                assert!(out.status.success(), "{name}");
                assert!(text.lines().any(|l| l.trim() == vrid), "{name}: {text}");
            }
            None => {
                assert_eq!(
                    out.status.code(),
                    Some(1),
                    "{name}: no [ha], no keepalived config"
                );
                assert!(String::from_utf8_lossy(&out.stderr).contains("no [ha] section"));
            }
        }
    }
}
