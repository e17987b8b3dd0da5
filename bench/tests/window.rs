//! bench/window.sh, the measuring window every harness rate is taken over, with a
//! stand-in for a forwarder: a shell loop that prints one `Tx-pps` line a second, as
//! testpmd does, after a start-up of its own length. A slow start (a fresh machine's
//! first EAL or af_xdp start) must not shorten the window, which is what left the lab
//! part with no steady figure (`nan`) on a fresh machine when windows were timed from
//! the launch. Plain processes, no root: runs in a plain `cargo test` too.

mod common;

use common::workspace_root;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `script` in bash with window.sh sourced, READY_LIMIT 10 s (unless the script
/// sets its own) and a scratch LOG; returns its stdout's lines and the log's.
fn with_window(script: &str) -> (Vec<String>, Vec<String>) {
    // One directory a call: the tests run in parallel.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dsrlb-window-{}-{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let log = dir.join("forwarder.log");
    let run = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail; . bench/window.sh; READY_LIMIT=10; LOG={}; {script}",
            log.display()
        ))
        .current_dir(workspace_root())
        .output()
        .expect("bash runs");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        run.status.success(),
        "{script}: {}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let lines = |s: &str| s.lines().map(str::to_owned).collect();
    (lines(&String::from_utf8_lossy(&run.stdout)), lines(&logged))
}

/// A forwarder that starts after `start` seconds, then prints its rate every second
/// until SIGINT (which a background command of a script ignores unless it sets its own
/// handler, as testpmd and dsrlb do).
fn forwarder(start: f64) -> String {
    format!(
        "python3 -c 'import signal, time\n\
         signal.signal(signal.SIGINT, signal.SIG_DFL)\n\
         time.sleep({start})\n\
         while True:\n    print(\"Tx-pps: 1000\", flush=True)\n    time.sleep(1)'"
    )
}

#[test]
fn a_slow_start_still_gets_the_whole_window() {
    // Start-up of 2.5 s, and a window of 3 s asked for: timed from the launch this
    // would leave half a second of sending and no steady per-second line.
    let (out, log) = with_window(&format!(
        "start_windowed \"$LOG\" Tx-pps {}; close_window 3; echo \"$WINDOW_SECONDS\"; \
         kill -0 \"$WINDOWED\" 2>/dev/null && echo still-running || echo stopped",
        forwarder(2.5)
    ));
    let window: f64 = out[0].parse().expect("WINDOW_SECONDS is a number");
    assert!(
        (3.0..4.0).contains(&window),
        "window {window} s, asked for 3"
    );
    assert_eq!(out[1], "stopped", "the forwarder is stopped at the close");
    // The first line opened the window; three more came while it was open.
    assert!(log.len() >= 3, "{log:?}");
}

#[test]
fn a_forwarder_that_never_gets_ready_is_stopped_and_reported() {
    // Ready after 60 s, past a limit of 3.
    let (out, _) = with_window(&format!(
        "READY_LIMIT=3; if start_windowed \"$LOG\" Tx-pps {}; then echo ready; else echo not-ready; fi; \
         kill -0 \"$WINDOWED\" 2>/dev/null && echo still-running || echo stopped",
        forwarder(60.0)
    ));
    assert_eq!(out, ["not-ready", "stopped"]);
}

#[test]
fn a_forwarder_that_ends_early_closes_the_window_at_its_end() {
    // dsrlb-floor stops by itself after its --seconds; the window closes then, not at
    // the limit given to close_window.
    let (out, _) = with_window(
        "start_windowed \"$LOG\" forwarding bash -c 'echo forwarding; sleep 1'; \
         close_window 20; echo \"$WINDOW_SECONDS\"",
    );
    let window: f64 = out[0].parse().expect("WINDOW_SECONDS is a number");
    assert!(window < 5.0, "window {window} s: waited past the end");
}
