use super::*;
use std::net::Ipv4Addr;
use std::path::Path;

const MINIMAL: &str = r#"
[appliance]
address = "10.99.0.2"

[dataplane]
worker_lcores = [1]

[[ports]]
name = "data"
device = "net_ring0"

[[services]]
vip = "10.99.0.100"
port = 80
protocol = "tcp"
targets = [{ address = "10.99.0.11" }, { address = "10.99.0.12", weight = 0, mac = "02:00:00:00:00:0c" }]
"#;

/// Each case (what, text to replace, replacement, key, words) applied to `base` must be
/// refused with an error at that key whose message holds those words.
fn assert_each_edit_fails_at_its_key(base: &str, cases: &[(&str, &str, &str, &str, &str)]) {
    for (what, from, to, key, words) in cases {
        assert!(base.contains(from), "{what}: fixture lacks {from:?}");
        let err = Config::from_toml(&base.replacen(from, to, 1), "case").expect_err(what);
        let hit = err.errors.iter().find(|e| e.key == *key);
        let hit = hit.unwrap_or_else(|| panic!("{what}: no error at `{key}`: {err}"));
        assert!(
            hit.message.contains(words),
            "{what}: `{}` lacks `{words}`",
            hit.message
        );
    }
}

#[test]
fn minimal_file_gets_defaults() {
    let c = Config::from_toml(MINIMAL, "minimal").unwrap();
    assert_eq!(c.flows, Flows::default());
    assert_eq!(c.maglev.table_size, 65537);
    assert_eq!(c.ports[0].queues, 1);
    assert_eq!(c.services[0].targets[0].weight, 100);
    assert_eq!(
        c.services[0].targets[1].mac,
        Some(Mac([2, 0, 0, 0, 0, 0x0c]))
    );
    assert_eq!(c.worker_count(), 1);
}

#[test]
fn every_example_file_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
    }
    assert!(seen >= 2, "examples found: {seen}");
}

#[test]
fn resolved_config_round_trips() {
    let c = Config::from_toml(MINIMAL, "minimal").unwrap();
    let again = Config::from_toml(&c.to_toml(), "resolved").unwrap();
    assert_eq!(c, again);
}

/// (what, edit of MINIMAL, key the error must name, words the message must contain)
#[test]
fn errors_name_the_key_and_the_reason() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "unknown key",
            "[dataplane]\n",
            "[dataplane]\nbogus = 1\n",
            "dataplane.bogus",
            "unknown field `bogus`",
        ),
        (
            "bad address",
            "\"10.99.0.11\" }",
            "\"10.99.0.311\" }",
            "services[0].targets[0].address",
            "invalid",
        ),
        (
            "bad mac",
            "02:00:00:00:00:0c",
            "02:00:00:00:0c",
            "services[0].targets[1].mac",
            "not a MAC",
        ),
        (
            "weight out of range",
            "weight = 0",
            "weight = 70000",
            "services[0].targets[1].weight",
            "outside 0..=65535",
        ),
        (
            "negative weight",
            "weight = 0",
            "weight = -1",
            "services[0].targets[1].weight",
            "invalid value",
        ),
        (
            "bad protocol",
            "protocol = \"tcp\"",
            "protocol = \"sctp\"",
            "services[0].protocol",
            "unknown variant",
        ),
        (
            "port out of range",
            "port = 80",
            "port = 70000",
            "services[0].port",
            "invalid value",
        ),
        (
            "missing appliance",
            "[appliance]\naddress = \"10.99.0.2\"\n",
            "",
            "",
            "missing field `appliance`",
        ),
        (
            "wrong type",
            "worker_lcores = [1]",
            "worker_lcores = 1",
            "dataplane.worker_lcores",
            "invalid type",
        ),
        (
            "not a vdev or PCI",
            "\"net_ring0\"",
            "\"eth0\"",
            "ports[0].device",
            "neither a PCI address",
        ),
        (
            "queues and lcores disagree",
            "worker_lcores = [1]",
            "worker_lcores = [1, 2]",
            "dataplane.worker_lcores",
            "2 lcores for 1 rx queues",
        ),
        (
            "main lcore as worker",
            "worker_lcores = [1]",
            "worker_lcores = [0]",
            "dataplane.worker_lcores[0]",
            "main lcore",
        ),
        (
            "vip is the appliance",
            "vip = \"10.99.0.100\"",
            "vip = \"10.99.0.2\"",
            "services[0].vip",
            "appliance address",
        ),
        (
            "duplicate target",
            "\"10.99.0.12\", weight",
            "\"10.99.0.11\", weight",
            "services[0].targets[1].address",
            "also targets[0]",
        ),
        (
            "multicast mac",
            "02:00:00:00:00:0c",
            "03:00:00:00:00:0c",
            "services[0].targets[1].mac",
            "not a unicast MAC",
        ),
        (
            "VLAN 0 on a port",
            "device = \"net_ring0\"\n",
            "device = \"net_ring0\"\nvlan = 0\n",
            "ports[0].vlan",
            "outside 1..=4094",
        ),
        (
            "VLAN 4095 on a service",
            "port = 80\n",
            "port = 80\nvlan = 4095\n",
            "services[0].vlan",
            "outside 1..=4094",
        ),
        (
            "fragment timeout of zero",
            "[dataplane]\n",
            "[flows]\nfragment_timeout_ms = 0\n\n[dataplane]\n",
            "flows.fragment_timeout_ms",
            "outside 1..=60000",
        ),
        (
            "too many fragments held",
            "[dataplane]\n",
            "[flows]\nfragments_held = 5000\n\n[dataplane]\n",
            "flows.fragments_held",
            "outside 0..=4096",
        ),
        (
            "too many datagrams kept",
            "[dataplane]\n",
            "[flows]\nfragment_capacity = 2000000\n\n[dataplane]\n",
            "flows.fragment_capacity",
            "outside 0..=1048576",
        ),
    ];
    assert_each_edit_fails_at_its_key(MINIMAL, cases);
}

#[test]
fn duplicate_service_and_non_prime_table_are_both_reported() {
    let text = format!("{MINIMAL}\n[maglev]\ntable_size = 65536\n\n[[services]]\nvip = \"10.99.0.100\"\nport = 80\nprotocol = \"tcp\"\n");
    let err = Config::from_toml(&text, "case").unwrap_err();
    let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.contains(&"maglev.table_size"), "{err}");
    assert!(keys.contains(&"services[1].vip"), "{err}");
    assert!(
        err.to_string()
            .contains("10.99.0.100:80/tcp is also services[0]"),
        "{err}"
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let err = Config::from_toml("[appliance\naddress = 1", "broken").unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn unreadable_file_is_an_error_not_a_panic() {
    let err = Config::load(Path::new("/nonexistent/dsrlb.toml")).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn pci_addresses() {
    assert!(is_pci_address("0000:01:00.0"));
    assert!(is_pci_address("01:00.1"));
    assert!(!is_pci_address("net_ring0"));
    assert!(!is_pci_address("0000:01:00.8"));
    assert!(!is_pci_address("0000:01:0.0"));
}

const WITH_HEALTH: &str = r#"
[appliance]
address = "10.99.0.2"
[health]
source_address = "10.99.1.2"
interface = "mgmt0"
[[ports]]
name = "data"
device = "net_ring0"
[[services]]
vip = "10.99.0.100"
port = 80
protocol = "tcp"
health = { kind = "http", path = "/health", expect_body = "ok", interval_ms = 1000, timeout_ms = 500, fall = 2 }
targets = [
  { address = "10.99.0.11", probe_address = "10.99.1.11" },
  { address = "10.99.0.12", health = { port = 8080, rise = 5 } },
]
"#;

#[test]
fn probes_merge_service_defaults_and_target_overrides() {
    let c = Config::from_toml(WITH_HEALTH, "health").unwrap();
    let s = &c.services[0];
    let p0 = s.probe_for(&s.targets[0]).unwrap();
    assert_eq!(
        (p0.kind, p0.port, p0.path.as_str(), p0.expect_status),
        (ProbeKind::Http, None, "/health", 200)
    );
    assert_eq!(
        (p0.interval_ms, p0.timeout_ms, p0.rise, p0.fall),
        (1000, 500, 2, 2)
    );
    assert_eq!(s.targets[0].probe_address(), Ipv4Addr::new(10, 99, 1, 11));
    let p1 = s.probe_for(&s.targets[1]).unwrap();
    assert_eq!(
        (p1.port, p1.rise, p1.fall, p1.expect_body.as_deref()),
        (Some(8080), 5, 2, Some("ok"))
    );
    assert_eq!(s.targets[1].probe_address(), Ipv4Addr::new(10, 99, 0, 12));
    assert_eq!(c.health.interface.as_deref(), Some("mgmt0"));
}

#[test]
fn probe_errors_name_the_key() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "timeout not below interval",
            "timeout_ms = 500",
            "timeout_ms = 1000",
            "services[0].health.timeout_ms",
            "below interval_ms",
        ),
        (
            "exec without command",
            "kind = \"http\"",
            "kind = \"exec\"",
            "services[0].health.command",
            "needs a command",
        ),
        (
            "bad kind",
            "kind = \"http\"",
            "kind = \"icmp\"",
            "services[0].health.kind",
            "unknown variant",
        ),
        (
            "fall 0",
            "fall = 2",
            "fall = 0",
            "services[0].health.fall",
            "outside 1..=100",
        ),
        (
            "override out of range",
            "rise = 5",
            "rise = 500",
            "services[0].targets[1].health.rise",
            "outside 1..=100",
        ),
        (
            "unknown override key",
            "rise = 5",
            "rise = 5, kind = \"tcp\"",
            "services[0].targets[1].health.kind",
            "unknown field",
        ),
        (
            "bad interface",
            "\"mgmt0\"",
            "\"a/b\"",
            "health.interface",
            "not an interface name",
        ),
        (
            "bad path",
            "\"/health\"",
            "\"health\"",
            "services[0].health.path",
            "must start with /",
        ),
    ];
    assert_each_edit_fails_at_its_key(WITH_HEALTH, cases);
}

#[test]
fn override_without_a_service_probe_and_any_port_without_probe_port_are_refused() {
    let no_probe = MINIMAL.replace(
        "{ address = \"10.99.0.11\" }",
        "{ address = \"10.99.0.11\", health = { port = 81 } }",
    );
    let err = Config::from_toml(&no_probe, "case").unwrap_err();
    assert!(
        err.errors
            .iter()
            .any(|e| e.key == "services[0].targets[0].health"),
        "{err}"
    );
    let any_port = WITH_HEALTH
        .replacen("port = 80", "port = 0", 1)
        .replace("kind = \"http\"", "kind = \"tcp\"");
    let err = Config::from_toml(&any_port, "case").unwrap_err();
    assert!(
        err.errors
            .iter()
            .any(|e| e.key == "services[0].health.port"),
        "{err}"
    );
}

#[test]
fn control_socket_and_metrics_have_defaults_and_are_checked() {
    let c = Config::from_toml(MINIMAL, "minimal").unwrap();
    assert_eq!(c.control.socket, Path::new(DEFAULT_CONTROL_SOCKET));
    assert_eq!(c.metrics.listen, None, "metrics are off unless configured");
    let with = MINIMAL.replace(
        "[[ports]]",
        "[control]\nsocket = \"/tmp/x.sock\"\n[metrics]\nlisten = \"10.99.1.2:9100\"\n[[ports]]",
    );
    let c = Config::from_toml(&with, "with").unwrap();
    assert_eq!(c.metrics.listen, Some("10.99.1.2:9100".parse().unwrap()));
    assert_each_edit_fails_at_its_key(
        &with,
        &[
            (
                "relative socket",
                "/tmp/x.sock",
                "x.sock",
                "control.socket",
                "absolute",
            ),
            ("port 0", ":9100", ":0", "metrics.listen", "port"),
            (
                "not an address",
                "10.99.1.2:9100",
                "mgmt:9100",
                "metrics.listen",
                "invalid",
            ),
        ],
    );
}

#[test]
fn reload_may_change_services_but_not_what_is_fixed_at_start() {
    let running = Config::from_toml(MINIMAL, "running").unwrap();
    let mut next = running.clone();
    next.services[0].targets[0].weight = 5;
    next.services.push(next.services[0].clone());
    next.services[1].port = 81;
    next.health.interface = Some("mgmt0".into());
    next.arp.garp_interval_secs = 3;
    next.maglev.seed = 9;
    assert!(running.needs_restart_for(&next).is_empty());

    next.dataplane.worker_lcores = vec![1, 2];
    next.ports[0].device = "net_ring1".into();
    next.flows.capacity = 1024;
    next.control.socket = "/tmp/other.sock".into();
    next.metrics.listen = Some("10.99.1.2:9100".parse().unwrap());
    let keys: Vec<String> = running
        .needs_restart_for(&next)
        .into_iter()
        .map(|e| {
            assert!(e.message.contains("restart"), "{e}");
            e.key
        })
        .collect();
    assert_eq!(
        keys,
        [
            "dataplane.worker_lcores",
            "ports[0].device",
            "flows.capacity",
            "control.socket",
            "metrics.listen"
        ]
    );
}

#[test]
fn load_reads_only_a_regular_file_of_a_config_size() {
    for (path, wanted) in [
        ("/dev/zero", "not a regular file"),
        ("/", "not a regular file"),
        ("/nonexistent/dsrlb.toml", "cannot read"),
    ] {
        let err = Config::load(Path::new(path)).unwrap_err();
        assert!(err.errors[0].message.contains(wanted), "{path}: {err}");
    }
    let dir = std::env::temp_dir().join(format!("dsrlb-config-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.toml");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(crate::load::MAX_FILE_BYTES + 1).unwrap();
    let err = Config::load(&big).unwrap_err();
    assert!(
        err.errors[0]
            .message
            .contains("more than a config file may be"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn table_memory_is_bounded_naming_the_key() {
    let service = |i: u32| {
        format!(
            "[[services]]\nvip = \"10.99.2.{i}\"\nport = 80\nprotocol = \"tcp\"\ntargets = [{{ address = \"10.99.0.11\" }}]\n"
        )
    };
    let big = |n: u32, extra: &str| {
        let mut text = MINIMAL.replace(
            "[[services]]",
            &format!("[maglev]\ntable_size = 4194301\n{extra}\n[[services]]"),
        );
        for i in 1..n {
            text.push_str(&service(i));
        }
        text
    };
    // 100 TCP services of 4194301 slots (6 bytes a slot, twice): 4800 MiB, over the
    // default 1024.
    let err = Config::from_toml(&big(100, ""), "big").unwrap_err();
    let e = err
        .errors
        .iter()
        .find(|e| e.key == "maglev.table_size")
        .unwrap();
    assert!(
        e.message
            .contains("100 services of 4194301 slots need 4800 MiB"),
        "{e}"
    );
    // 21 fit (1008 MiB), and a larger bound admits 100.
    assert!(Config::from_toml(&big(21, ""), "fits").is_ok());
    assert!(Config::from_toml(&big(100, "max_table_memory_mb = 4800"), "raised").is_ok());
}

#[test]
fn the_pool_covers_rings_caches_and_queues_and_frames_fit_an_mbuf() {
    let c = Config::from_toml(MINIMAL, "t").unwrap();
    // One queue of 1024 rx, two tx queues (the worker's and the control thread's),
    // caches of 256 x 1.5 for the worker and the main lcore, two bursts, the punt
    // queue and one port's inject queue.
    let budget = c.mbuf_budget();
    assert_eq!(
        (
            budget.rx,
            budget.tx,
            budget.caches,
            budget.bursts,
            budget.control
        ),
        (1024, 2048, 768, 64, 1024 + 256)
    );
    assert!(u64::from(c.dataplane.mbufs) >= budget.total());
    let four_queues = "device = \"net_ring0\"\nqueues = 4\nrx_ring_size = 4096";
    let lcores = "worker_lcores = [1, 2, 3, 4]\nmbufs = 16383";
    let text = MINIMAL
        .replace("device = \"net_ring0\"", four_queues)
        .replace("worker_lcores = [1]", lcores);
    let err = Config::from_toml(&text, "t").expect_err("4 x 4096 rx alone is 16384");
    let hit = err.errors.iter().find(|e| e.key == "dataplane.mbufs");
    let hit = hit.unwrap_or_else(|| panic!("{err}"));
    assert!(
        hit.message.contains("rx rings 16384 + tx rings 5120"),
        "{hit}"
    );
    assert_each_edit_fails_at_its_key(
        MINIMAL,
        &[
            (
                "jumbo frames in 2 KiB mbufs",
                "device = \"net_ring0\"",
                "device = \"net_ring0\"\nmtu = 9000",
                "ports[0].mtu",
                "raise dataplane.mbuf_data_room to at least 9146",
            ),
            (
                "an MTU no device has",
                "device = \"net_ring0\"",
                "device = \"net_ring0\"\nmtu = 60",
                "ports[0].mtu",
                "outside 68..=9600",
            ),
            (
                "a CPU list of the wrong length",
                "worker_lcores = [1]",
                "worker_lcores = [1]\nworker_cpus = [1, 1]",
                "dataplane.worker_cpus",
                "2 CPUs for 1 worker lcores",
            ),
        ],
    );
    let jumbo = MINIMAL.replace(
        "worker_lcores = [1]",
        "worker_lcores = [1]\nmbuf_data_room = 9146",
    );
    let jumbo = jumbo.replace(
        "device = \"net_ring0\"",
        "device = \"net_ring0\"\nmtu = 9000",
    );
    Config::from_toml(&jumbo, "t").expect("9000 + 18 + 128 fits");
}

#[test]
fn dsr_check_has_defaults_and_its_errors_name_the_key() {
    let with = MINIMAL.replace("protocol = \"tcp\"", "protocol = \"tcp\"\ndsr_check = {}");
    let c = Config::from_toml(&with, "t").unwrap();
    assert_eq!(c.services[0].dsr_check, Some(DsrCheck::default()));
    assert_each_edit_fails_at_its_key(
        &with,
        &[
            (
                "a payload that does not fit a minimum frame",
                "dsr_check = {}",
                "dsr_check = { payload = \"0123456789abcdefghij\" }",
                "services[0].dsr_check.payload",
                "20 bytes, at most 18",
            ),
            (
                "a timeout as long as the interval",
                "dsr_check = {}",
                "dsr_check = { interval_ms = 500, timeout_ms = 500 }",
                "services[0].dsr_check.timeout_ms",
                "below interval_ms (500)",
            ),
            (
                "an every-port service without a port to probe",
                "port = 80",
                "port = 0",
                "services[0].dsr_check.port",
                "needed: the service listens on every port",
            ),
            (
                "fall 0",
                "dsr_check = {}",
                "dsr_check = { fall = 0 }",
                "services[0].dsr_check.fall",
                "outside 1..=100",
            ),
        ],
    );
}

#[test]
fn bgp_is_checked_naming_the_key_and_fixed_at_start() {
    let bgp = "[bgp]\nlocal_as = 65001\npeer_as = 65000\npeer_address = \"10.99.1.254\"\nlocal_address = \"10.99.1.2\"\n\n[[services]]";
    let with = MINIMAL.replacen("[[services]]", bgp, 1);
    let c = Config::from_toml(&with, "t").unwrap();
    let b = c.bgp.as_ref().unwrap();
    assert_eq!(
        (b.hold_time_secs, b.bfd, b.tap.as_str()),
        (3, true, "dsrlb-vips")
    );
    assert_each_edit_fails_at_its_key(
        &with,
        &[
            (
                "AS 0",
                "local_as = 65001",
                "local_as = 0",
                "bgp.local_as",
                "not an AS number",
            ),
            (
                "the session on the data segment",
                "local_address = \"10.99.1.2\"",
                "local_address = \"10.99.0.2\"",
                "bgp.local_address",
                "is the appliance's real address",
            ),
            (
                "a hold time below BGP's",
                "peer_as = 65000",
                "peer_as = 65000\nhold_time_secs = 2",
                "bgp.hold_time_secs",
                "outside 3..=65535",
            ),
            (
                "a tap name too long",
                "peer_as = 65000",
                "peer_as = 65000\ntap = \"a-name-much-too-long\"",
                "bgp.tap",
                "not an interface name",
            ),
            (
                "a relative socket",
                "peer_as = 65000",
                "peer_as = 65000\nbird_socket = \"bird.ctl\"",
                "bgp.bird_socket",
                "absolute path",
            ),
        ],
    );
    let mut next = c.clone();
    next.bgp.as_mut().unwrap().peer_as = 65002;
    assert!(c
        .needs_restart_for(&next)
        .iter()
        .any(|e| e.key == "bgp.peer_as"));
}

#[test]
fn ha_is_checked_naming_the_key_and_fixed_at_start() {
    let ha = "[ha]\ninterface = \"mgmt0\"\nlocal_address = \"10.99.1.2\"\npeer_address = \"10.99.1.3\"\naddress = \"10.99.1.10\"\nvirtual_router_id = 51\npriority = 150\n\n[[services]]";
    let with = MINIMAL.replacen("[[services]]", ha, 1);
    let c = Config::from_toml(&with, "t").unwrap();
    let h = c.ha.as_ref().unwrap();
    assert_eq!(
        (
            h.advert_interval_ms,
            h.preempt,
            h.garp_burst,
            h.tap.as_str()
        ),
        (100, true, 3, "dsrlb-ha")
    );
    assert_each_edit_fails_at_its_key(
        &with,
        &[
            (
                "VRRP on the data segment",
                "local_address = \"10.99.1.2\"",
                "local_address = \"10.99.0.2\"",
                "ha.local_address",
                "is the appliance's real address",
            ),
            (
                "the peer is this appliance",
                "peer_address = \"10.99.1.3\"",
                "peer_address = \"10.99.1.2\"",
                "ha.peer_address",
                "is ha.local_address",
            ),
            (
                "the floating address is the peer's",
                "address = \"10.99.1.10\"",
                "address = \"10.99.1.3\"",
                "ha.address",
                "must differ",
            ),
            (
                "VRID 0",
                "virtual_router_id = 51",
                "virtual_router_id = 0",
                "ha.virtual_router_id",
                "outside 1..=255",
            ),
            (
                "the address owner's priority",
                "priority = 150",
                "priority = 255",
                "ha.priority",
                "outside 1..=254",
            ),
            (
                "an interval VRRP cannot carry",
                "priority = 150",
                "priority = 150\nadvert_interval_ms = 105",
                "ha.advert_interval_ms",
                "multiple of 10",
            ),
            (
                "a relative FIFO",
                "priority = 150",
                "priority = 150\nnotify_fifo = \"ka.fifo\"",
                "ha.notify_fifo",
                "absolute path",
            ),
            (
                "no interface",
                "interface = \"mgmt0\"",
                "interface = \"\"",
                "ha.interface",
                "not an interface name",
            ),
            (
                "both a pair and BGP",
                "[ha]",
                "[bgp]\nlocal_as = 65001\npeer_as = 65000\npeer_address = \"10.99.1.254\"\nlocal_address = \"10.99.1.2\"\n\n[ha]",
                "ha",
                "not both",
            ),
        ],
    );
    let mut next = c.clone();
    next.ha.as_mut().unwrap().priority = 100;
    assert!(c
        .needs_restart_for(&next)
        .iter()
        .any(|e| e.key == "ha.priority"));
}

#[test]
fn tracking_defaults_by_protocol_and_changes_needs_tcp() {
    let with = |protocol: &str, tracking: &str| {
        MINIMAL.replace(
            "protocol = \"tcp\"",
            &format!("protocol = \"{protocol}\"\n{tracking}"),
        )
    };
    let tcp = Config::from_toml(&with("tcp", ""), "t").unwrap();
    assert_eq!(tcp.services[0].tracking(), Tracking::Changes);
    let udp = Config::from_toml(&with("udp", ""), "t").unwrap();
    assert_eq!(udp.services[0].tracking(), Tracking::Full);
    let none = Config::from_toml(&with("udp", "tracking = \"none\""), "t").unwrap();
    assert_eq!(none.services[0].tracking(), Tracking::None);
    let err = Config::from_toml(&with("udp", "tracking = \"changes\""), "t").unwrap_err();
    assert!(
        err.errors
            .iter()
            .any(|e| e.key == "services[0].tracking" && e.message.contains("needs TCP")),
        "{err}"
    );
}

/// MINIMAL with its service on IPv6: the appliance's IPv6 real address, an IPv6
/// VIP, IPv6 targets (one probed over IPv4 management).
fn ipv6_config() -> String {
    MINIMAL
        .replace(
            "address = \"10.99.0.2\"\n",
            "address = \"10.99.0.2\"\naddress6 = \"fd00:99::2\"\n",
        )
        .replace("vip = \"10.99.0.100\"", "vip = \"fd00:99::100\"")
        .replace(
            "targets = [{ address = \"10.99.0.11\" }, { address = \"10.99.0.12\", weight = 0, mac = \"02:00:00:00:00:0c\" }]",
            "targets = [{ address = \"fd00:99::11\", probe_address = \"10.99.1.11\" }, { address = \"fd00:99::12\" }]",
        )
}

#[test]
fn ipv6_services_are_checked_naming_the_key() {
    let text = ipv6_config();
    let config = Config::from_toml(&text, "case").unwrap();
    assert_eq!(
        config.vips_v6(),
        ["fd00:99::100".parse::<std::net::Ipv6Addr>().unwrap()]
    );
    assert!(config.vips_v4().is_empty());
    assert_eq!(
        config.services[0].targets[0].probe_address(),
        "10.99.1.11".parse::<std::net::IpAddr>().unwrap(),
        "management over IPv4 for an IPv6 target"
    );
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "no IPv6 real address",
            "address6 = \"fd00:99::2\"\n",
            "",
            "services[0].vip",
            "needs appliance.address6",
        ),
        (
            "an IPv4 target in an IPv6 service",
            "\"fd00:99::12\" }",
            "\"10.99.0.12\" }",
            "services[0].targets[1].address",
            "not of the VIP's address family",
        ),
        (
            "a link-local VIP",
            "vip = \"fd00:99::100\"",
            "vip = \"fe80::100\"",
            "services[0].vip",
            "not a unicast address",
        ),
        (
            "a multicast target",
            "\"fd00:99::12\" }",
            "\"ff02::1\" }",
            "services[0].targets[1].address",
            "not a unicast address",
        ),
        (
            "the VIP is the IPv6 real address",
            "vip = \"fd00:99::100\"",
            "vip = \"fd00:99::2\"",
            "services[0].vip",
            "appliance address",
        ),
        (
            "an IPv4-mapped real address",
            "address6 = \"fd00:99::2\"",
            "address6 = \"::ffff:10.99.0.2\"",
            "appliance.address6",
            "not a unicast address",
        ),
        (
            "the doctor on an IPv6 service",
            "protocol = \"tcp\"",
            "protocol = \"tcp\"\ndsr_check = {}",
            "services[0].dsr_check",
            "IPv4 services only",
        ),
        (
            "an IPv6 flow table of no entries",
            "[dataplane]",
            "[flows]\nipv6_capacity = 0\n\n[dataplane]",
            "flows.ipv6_capacity",
            "outside 1..=",
        ),
        (
            "an IPv6 VIP behind BGP",
            "[dataplane]",
            "[bgp]\nlocal_as = 65001\npeer_as = 65000\npeer_address = \"10.99.2.1\"\nlocal_address = \"10.99.2.2\"\n\n[dataplane]",
            "services[0].vip",
            "BGP announces IPv4 VIPs only",
        ),
        (
            "an IPv6 VIP in an active/standby pair",
            "[dataplane]",
            "[ha]\ninterface = \"mgmt0\"\nlocal_address = \"10.99.1.2\"\npeer_address = \"10.99.1.3\"\naddress = \"10.99.1.10\"\nvirtual_router_id = 51\npriority = 150\n\n[dataplane]",
            "services[0].vip",
            "pair serves IPv4 VIPs only",
        ),
    ];
    assert_each_edit_fails_at_its_key(&text, cases);
}
