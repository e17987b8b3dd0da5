//! The prober against real sockets and processes on loopback.
use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn probe(kind: ProbeKind) -> Probe {
    Probe {
        kind,
        port: None,
        path: "/health".to_owned(),
        expect_status: 200,
        expect_body: None,
        command: Vec::new(),
        interval_ms: 200,
        timeout_ms: 150,
        rise: 2,
        fall: 2,
    }
}

fn target(id: usize, port: u16, probe: Probe) -> ProbeTarget {
    ProbeTarget {
        id,
        label: format!("target {id}"),
        address: LO.into(),
        port,
        probe,
    }
}

/// Serves each connection with `reply` (None: accept and say nothing) until dropped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn new(reply: Option<&'static [u8]>) -> Server {
        let listener = TcpListener::bind((LO, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        if let Some(reply) = reply {
                            let mut request = [0u8; 1024];
                            conn.set_nonblocking(false).unwrap();
                            let _ = conn.read(&mut request);
                            let _ = conn.write_all(reply);
                        } else {
                            held.push(conn);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Server { port, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind((LO, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// Polls until every target has a result (or 5 s), returning the first outcomes.
fn first_outcomes(prober: &mut Prober) -> Vec<Outcome> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while (0..prober.len()).any(|i| prober.last(i).is_none()) && Instant::now() < deadline {
        prober.poll(Duration::from_millis(20));
    }
    (0..prober.len())
        .map(|i| {
            prober
                .last(i)
                .map(|l| l.outcome.clone())
                .expect("probed in 5 s")
        })
        .collect()
}

#[test]
fn tcp_probes_tell_listening_from_refused() {
    let server = Server::new(None);
    let mut prober = Prober::new(
        vec![
            target(0, server.port, probe(ProbeKind::Tcp)),
            target(1, closed_port(), probe(ProbeKind::Tcp)),
        ],
        ProbeSource::default(),
    )
    .unwrap();
    assert_eq!(
        first_outcomes(&mut prober),
        vec![Ok(()), Err(Failure::Refused)]
    );
    assert_eq!(
        (prober.health(0), prober.health(1)),
        (Health::Up, Health::Down)
    );
}

#[test]
fn http_probes_check_status_and_body_and_time_out() {
    let ok = Server::new(Some(
        b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nall ok\n",
    ));
    let error = Server::new(Some(
        b"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n",
    ));
    let garbage = Server::new(Some(b"SSH-2.0-OpenSSH\r\n"));
    let silent = Server::new(None);
    let mut with_body = probe(ProbeKind::Http);
    with_body.expect_body = Some("all ok".to_owned());
    let mut wrong_body = probe(ProbeKind::Http);
    wrong_body.expect_body = Some("ready".to_owned());
    let mut prober = Prober::new(
        vec![
            target(0, ok.port, probe(ProbeKind::Http)),
            target(1, ok.port, with_body),
            target(2, ok.port, wrong_body),
            target(3, error.port, probe(ProbeKind::Http)),
            target(4, garbage.port, probe(ProbeKind::Http)),
            target(5, silent.port, probe(ProbeKind::Http)),
            target(6, closed_port(), probe(ProbeKind::Http)),
        ],
        ProbeSource {
            address: Some(LO),
            interface: None,
        },
    )
    .unwrap();
    assert_eq!(
        first_outcomes(&mut prober),
        vec![
            Ok(()),
            Ok(()),
            Err(Failure::HttpBody),
            Err(Failure::HttpStatus(503)),
            Err(Failure::HttpMalformed),
            Err(Failure::Timeout),
            Err(Failure::Refused),
        ]
    );
}

#[test]
fn exec_probes_use_the_exit_code_and_are_killed_at_the_timeout() {
    let cmd = |args: &[&str]| {
        let mut p = probe(ProbeKind::Exec);
        p.command = args.iter().map(|s| s.to_string()).collect();
        p
    };
    let mut prober = Prober::new(
        vec![
            target(0, 80, cmd(&["true"])),
            target(1, 80, cmd(&["sh", "-c", "exit 3"])),
            target(2, 80, cmd(&["sleep", "30"])),
            target(3, 80, cmd(&["/nonexistent/check"])),
            target(
                4,
                80,
                cmd(&[
                    "sh",
                    "-c",
                    "test \"$DSRLB_PROBE_ADDRESS:$DSRLB_PROBE_PORT\" = 127.0.0.1:80",
                ]),
            ),
        ],
        ProbeSource::default(),
    )
    .unwrap();
    let started = Instant::now();
    let outcomes = first_outcomes(&mut prober);
    assert_eq!(outcomes[..2], [Ok(()), Err(Failure::Exit(3))]);
    assert_eq!(outcomes[2], Err(Failure::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the sleeping check was killed, not waited for"
    );
    assert!(
        matches!(outcomes[3], Err(Failure::Spawn(_))),
        "{:?}",
        outcomes[3]
    );
    assert_eq!(
        outcomes[4],
        Ok(()),
        "the target's address and port are in the environment"
    );
}

#[test]
fn fall_then_rise_are_reported_as_changes() {
    let listener = TcpListener::bind((LO, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut prober = Prober::new(
        vec![target(7, port, probe(ProbeKind::Tcp))],
        ProbeSource::default(),
    )
    .unwrap();
    let mut changes = Vec::new();
    // Until the next change is to `to`: waiting for the event rather than a fixed
    // number of intervals, which a loaded machine may not fit in.
    let run_until = |prober: &mut Prober, changes: &mut Vec<Change>, to: Health| {
        let (deadline, before) = (Instant::now() + Duration::from_secs(10), changes.len());
        while changes.len() == before {
            assert!(Instant::now() < deadline, "no change to {to:?} in 10 s");
            changes.extend(prober.poll(Duration::from_millis(20)));
        }
        assert_eq!(changes.last().map(|c| c.to), Some(to));
    };
    run_until(&mut prober, &mut changes, Health::Up);
    drop(listener);
    run_until(&mut prober, &mut changes, Health::Down);
    let listener = TcpListener::bind((LO, port)).unwrap();
    run_until(&mut prober, &mut changes, Health::Up);
    drop(listener);
    let moves: Vec<(usize, Health, Health)> =
        changes.iter().map(|c| (c.id, c.from, c.to)).collect();
    assert_eq!(
        moves,
        vec![
            (7, Health::Unknown, Health::Up),
            (7, Health::Up, Health::Down),
            (7, Health::Down, Health::Up)
        ]
    );
    assert_eq!(changes[1].outcome, Err(Failure::Refused));
    assert_eq!(changes[1].streak, (0, 2), "down after fall = 2 failures");
    assert_eq!(changes[2].streak, (2, 0), "up after rise = 2 successes");
}

#[test]
fn one_thread_probes_a_thousand_targets() {
    let servers: Vec<Server> = (0..10).map(|_| Server::new(None)).collect();
    let mut p = probe(ProbeKind::Tcp);
    p.interval_ms = 250;
    p.timeout_ms = 200;
    let targets = (0..1000)
        .map(|i| target(i, servers[i % 10].port, p.clone()))
        .collect();
    let mut prober = Prober::new(targets, ProbeSource::default()).unwrap();
    // Four rounds of every target, and every target seen up, however long a loaded
    // machine takes for them: with the test's servers starved of CPU their accept
    // queues fill, a connect waits for its SYN to be sent again and times out, and
    // the target is rightly down for a while. How late probes start and what a
    // round costs are figures of the bench (dsrlb-probe-schedule).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen_up = vec![false; 1000];
    while prober.schedule_stats().started < 4000 || seen_up.contains(&false) {
        assert!(
            Instant::now() < deadline,
            "{:?}, {} targets never up",
            prober.schedule_stats(),
            seen_up.iter().filter(|up| !**up).count()
        );
        prober.poll(Duration::from_millis(20));
        for (i, up) in seen_up.iter_mut().enumerate() {
            *up |= prober.health(i) == Health::Up;
        }
    }
}

#[test]
fn http_verdicts_on_partial_and_complete_responses() {
    let p = probe(ProbeKind::Http);
    assert_eq!(http_verdict(b"HTTP/1.1 20", false, &p), None);
    assert_eq!(
        http_verdict(b"HTTP/1.1 200 OK\r\n", false, &p),
        Some(Ok(()))
    );
    assert_eq!(
        http_verdict(b"HTTP/1.0 404 Not Found\r\n", false, &p),
        Some(Err(Failure::HttpStatus(404)))
    );
    assert_eq!(
        http_verdict(b"", true, &p),
        Some(Err(Failure::HttpMalformed))
    );
    let mut body = probe(ProbeKind::Http);
    body.expect_body = Some("ok".to_owned());
    assert_eq!(
        http_verdict(b"HTTP/1.1 200 OK\r\n\r\nn", false, &body),
        None
    );
    assert_eq!(
        http_verdict(b"HTTP/1.1 200 OK\r\n\r\nnot", true, &body),
        Some(Err(Failure::HttpBody))
    );
    assert_eq!(
        http_verdict(b"HTTP/1.1 200 OK\r\n\r\nok", false, &body),
        Some(Ok(()))
    );
}

#[test]
fn exec_checks_inherit_no_descriptors_and_die_with_the_prober() {
    // An inheritable descriptor, as DPDK's hugepage memfds are.
    let file = std::fs::File::open("/proc/self/status").unwrap();
    let fd = file.as_raw_fd();
    // SAFETY: clears FD_CLOEXEC on a descriptor we own.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }, 0);
    let mut p = probe(ProbeKind::Exec);
    p.command = vec![
        "sh".into(),
        "-c".into(),
        format!("test ! -e /proc/self/fd/{fd}"),
    ];
    let mut prober = Prober::new(vec![target(0, 80, p)], ProbeSource::default()).unwrap();
    assert_eq!(
        first_outcomes(&mut prober),
        [Ok(())],
        "fd {fd} leaked into the check"
    );

    let marker = std::env::temp_dir().join(format!("dsrlb-probe-{}", std::process::id()));
    let mut p = probe(ProbeKind::Exec);
    p.timeout_ms = 10_000;
    p.command = vec![
        "sh".into(),
        "-c".into(),
        format!("echo $$ > {}; exec sleep 30", marker.display()),
    ];
    let mut prober = Prober::new(vec![target(0, 80, p)], ProbeSource::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&marker).map_or(true, |s| s.trim().is_empty()) {
        assert!(Instant::now() < deadline, "the check never started");
        prober.poll(Duration::from_millis(20));
    }
    let pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    drop(prober);
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the running check outlived its prober");
    let _ = std::fs::remove_file(&marker);
    drop(file);
}
