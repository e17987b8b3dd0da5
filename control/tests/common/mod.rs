//! What the binary and lab tests both need: following dsrlb's log, and `dsrlb` as a
//! client of the running one.
#![allow(dead_code)] // each test crate uses its own part

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const DSRLB: &str = env!("CARGO_BIN_EXE_dsrlb");

/// Reads dsrlb's log as it comes: each line to the receiver, and the whole log
/// from the handle once dsrlb has exited.
pub fn follow_log(stderr: ChildStderr) -> (mpsc::Receiver<String>, JoinHandle<String>) {
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    (lines, reader)
}

/// Waits until, for each (text, count), `count` log lines contain `text`, in any order.
pub fn wait_for_logs(lines: &mpsc::Receiver<String>, wanted: &[(&str, usize)], within: Duration) {
    let deadline = Instant::now() + within;
    let mut seen = vec![0usize; wanted.len()];
    while wanted.iter().zip(&seen).any(|((_, want), got)| got < want) {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                for (i, (text, _)) in wanted.iter().enumerate() {
                    if line.contains(text) {
                        seen[i] += 1;
                    }
                }
            }
            Err(_) => assert!(
                Instant::now() < deadline,
                "log lines seen {seen:?} of {wanted:?} in {within:?}"
            ),
        }
    }
}

/// `dsrlb` as a client of the running one: (exit code, stdout, stderr).
pub fn ctl(socket: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(DSRLB)
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `dsrlb show WHAT --json`, parsed.
pub fn show_json(socket: &Path, what: &str) -> serde_json::Value {
    let (code, out, err) = ctl(socket, &["show", what, "--json"]);
    assert_eq!(code, 0, "show {what}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("show {what} --json: {e}\n{out}"))
}

/// The row of `show servers --json` for the service labelled `label`.
pub fn service<'a>(servers: &'a serde_json::Value, label: &str) -> &'a serde_json::Value {
    servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == label)
        .unwrap_or_else(|| panic!("no service {label} in {servers}"))
}

/// A dsrlb the test started: killed if the test ends (or fails) with it still running,
/// so a failed test never leaves it spinning on its lcore.
pub struct Started(pub Child);

impl Drop for Started {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends `signal` (e.g. "-TERM") to dsrlb and waits for it to exit: its status and
/// how long it took. Panics if it is still running 10 s later.
pub fn stop_timed(dsrlb: &mut Child, signal: &str) -> (std::process::ExitStatus, Duration) {
    let sent_at = Instant::now();
    Command::new("kill")
        .args([signal, &dsrlb.id().to_string()])
        .status()
        .unwrap();
    loop {
        if let Some(status) = dsrlb.try_wait().unwrap() {
            return (status, sent_at.elapsed());
        }
        assert!(
            sent_at.elapsed() < Duration::from_secs(10),
            "dsrlb did not stop within 10 s of {signal}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
