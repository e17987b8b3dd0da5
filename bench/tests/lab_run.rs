//! The harness's lab part, end to end and short: `bench/lab-peers.sh OUT 3 2` brings
//! the namespace lab up, runs the generator against testpmd and dsrlb on af_packet and
//! af_xdp and against Pen, two reps of 3 s, then the latency round trips, and must
//! leave a figure in every row, the pairs in turn (testpmd first in rep 1, dsrlb
//! first in rep 2), and no echo or forwarder behind. What the full run's lab figures
//! rest on rots here first (Pen's flags, the nft sinks, the tc switch rules).
//!
//! Needs root (namespaces, hugepages, Pen and nft from scripts/setup.sh) and about
//! two minutes: scripts/test.sh runs it (`--include-ignored`).

mod common;

use common::{number, read_csv, run_script, workspace_root};
use std::path::PathBuf;
use std::process::Command;

/// Takes the lab down and removes the results however the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new(workspace_root().join("scripts/lab.sh"))
            .arg("down")
            .output();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs root, namespaces, Pen and nft: scripts/test.sh runs it"]
fn the_lab_part_leaves_every_row_with_the_pairs_in_turn() {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("dsrlb-labrun-{}", std::process::id())));
    let out = &scratch.0;
    std::fs::create_dir_all(out).expect("results directory");
    let stdout = run_script(
        "bench/lab-peers.sh",
        [out.as_os_str(), "3".as_ref(), "2".as_ref()],
    );

    let (header, rows) = read_csv(&out.join("lab.csv"));
    let order: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.get(1).cloned().unwrap_or_default(), r[0].clone()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("1", "testpmd/af_packet"),
        ("1", "dsrlb/af_packet"),
        ("1", "testpmd/af_xdp"),
        ("1", "dsrlb/af_xdp"),
        ("1", "pen"),
        ("2", "dsrlb/af_packet"),
        ("2", "testpmd/af_packet"),
        ("2", "dsrlb/af_xdp"),
        ("2", "testpmd/af_xdp"),
        ("2", "pen"),
    ]
    .iter()
    .map(|(rep, fw)| (rep.to_string(), fw.to_string()))
    .collect();
    assert_eq!(order, expected, "{stdout}");
    for row in &rows {
        let sent = number(&header, row, "sent", &stdout);
        let forwarded = number(&header, row, "forwarded", &stdout);
        // Every forwarder forwards most of what it is offered here (Pen about half).
        assert!(sent > 10_000.0, "{row:?}\n{stdout}");
        assert!(
            forwarded > sent / 4.0 && forwarded <= sent,
            "{row:?}\n{stdout}"
        );
        let drops = number(&header, row, "drop_pct", &stdout);
        let at_forwarder = number(&header, row, "lost_at_forwarder_pct", &stdout);
        assert!((0.0..=100.0).contains(&drops), "{row:?}");
        assert!(at_forwarder <= drops + 0.01, "{row:?}");
        assert!(
            number(&header, row, "forwarded_pps", &stdout) > 0.0,
            "{row:?}"
        );
    }

    let (header, rows) = read_csv(&out.join("latency.csv"));
    let forwarders: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        forwarders,
        ["testpmd", "dsrlb", "dsrlb-backoff"],
        "{stdout}"
    );
    for row in &rows {
        let (p50, p99) = (
            number(&header, row, "p50_us", &stdout),
            number(&header, row, "p99_us", &stdout),
        );
        assert!(p50 > 0.0 && p99 >= p50, "{row:?}");
        let direct = number(&header, row, "direct_p50_us", &stdout);
        assert!(direct > 0.0, "{row:?}");
        // 3000 round trips each way: a handful lost on a busy VM, not most.
        assert!(number(&header, row, "lost", &stdout) < 300.0, "{row:?}");
        assert!(
            number(&header, row, "direct_lost", &stdout) < 300.0,
            "{row:?}"
        );
    }

    // Nothing the harness started is left running: its forwarders and generator (by
    // their EAL file prefixes and dsrlb's config directory, all dsrlb-bench-* or
    // dsrlb-lab-bench.*), Pen on the lab's data port, the echoes and pings. Matched
    // by command line, not by name: a dsrlb or testpmd of someone else's on the same
    // machine is not the harness's.
    for pattern in ["dsrlb-bench-|dsrlb-lab-bench", "dsr_if data0", "dsrlb-rtt"] {
        let left = Command::new("pgrep")
            .args(["-a", "-f", pattern])
            .output()
            .expect("pgrep runs");
        assert!(
            left.stdout.is_empty(),
            "still running: {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }
}
