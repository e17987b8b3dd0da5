//! The benchmark harness's smoke run, end to end: `bench/run.sh --quick --reps 2
//! --floors` builds the release binaries, runs testpmd, dsrlb and dsrlb-floor's four
//! modes side by side on the pcap replay, alternated twice, the
//! micro-benchmarks and the prober schedule, and must leave a figure in every
//! place a full run would. A harness that rots (a config key renamed under it, a
//! forwarder that no longer starts) shows up here as `nan` or a missing file, not
//! weeks later in a benchmark session.
//!
//! Needs root (hugepages, perf on CPU 1) and about two minutes once the release
//! build is done: scripts/test.sh runs it (`--include-ignored`).

mod common;

use common::{number, read_csv, run_script, workspace_root};
use std::path::PathBuf;
use std::process::Command;

/// Removes the results directory however the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs root, hugepages and perf: scripts/test.sh runs it"]
fn the_quick_run_leaves_a_figure_everywhere_a_full_run_would() {
    // Not under /tmp/dsrlb-bench-*: run.sh's clean-up kills by that name.
    let scratch = Scratch(std::env::temp_dir().join(format!("dsrlb-smoke-{}", std::process::id())));
    let out = &scratch.0;
    // Two reps, not quick's one: the option must reach every alternated pair.
    let stdout = run_script(
        "bench/run.sh",
        [
            "--quick".as_ref(),
            "--reps".as_ref(),
            "2".as_ref(),
            "--floors".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );

    // Both forwarders and the four floors at both flow counts, rep 1 and rep 2 each,
    // each with a rate and a PMD share, and nothing else but dsrlb during a change.
    let (pps_header, pps) = read_csv(&out.join("pps.csv"));
    let (share_header, share) = read_csv(&out.join("share.csv"));
    let forwarders = [
        "testpmd",
        "dsrlb",
        "floor-swap",
        "floor-maglev",
        "floor-table",
        "floor-checked",
    ];
    // And dsrlb during a change at the largest flow count, 1000.
    assert_eq!(pps.len(), forwarders.len() * 4 + 2, "{pps:?}");
    assert_eq!(share.len(), forwarders.len() * 4 + 2, "{share:?}");
    let measured = forwarders
        .iter()
        .flat_map(|&f| [(f, "1"), (f, "1000")])
        .chain([("dsrlb-change", "1000")]);
    for (impl_name, flows) in measured {
        {
            for rep in ["1", "2"] {
                let pick = |table: &[Vec<String>]| {
                    table
                        .iter()
                        .find(|r| r.get(..3).is_some_and(|key| key == [impl_name, flows, rep]))
                        .cloned()
                        .unwrap_or_else(|| {
                            panic!("no row for {impl_name} at {flows} flows, rep {rep}\n{stdout}")
                        })
                };
                let mpps = number(&pps_header, &pick(&pps), "mpps", &stdout);
                // A forwarder that ran at all forwards millions a second here.
                assert!(
                    mpps > 0.1,
                    "{impl_name} at {flows} flows: {mpps} Mpps\n{stdout}"
                );
                let pmd = number(&share_header, &pick(&share), "pmd_share_pct", &stdout);
                assert!(
                    pmd > 0.0 && pmd <= 100.0,
                    "{impl_name} at {flows} flows: PMD {pmd} %"
                );
            }
        }
    }

    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(summary.contains("Packet rate per worker core"), "{summary}");
    assert!(
        summary.contains("During a change at 1000 flows"),
        "{summary}"
    );
    assert!(summary.contains("## Floors"), "{summary}");
    let plot = std::fs::read_to_string(out.join("pps.svg")).expect("pps.svg");
    assert!(plot.starts_with("<svg"), "pps.svg is not an SVG");
    let micro = std::fs::read_to_string(out.join("micro.txt")).expect("micro.txt");
    for line in [
        "N =  100 targets",
        "Flow table memory",
        "Snapshot rebuild",
        "1000000 flows",
    ] {
        assert!(micro.contains(line), "micro.txt lacks `{line}`:\n{micro}");
    }
    let probes =
        std::fs::read_to_string(out.join("probe-schedule.txt")).expect("probe-schedule.txt");
    assert!(probes.contains("probes started"), "{probes}");
}

/// A bad `--reps` is refused before anything runs: exit 2, the option named, no
/// results written.
#[test]
fn a_bad_rep_count_is_refused_naming_the_option() {
    let root = workspace_root();
    for args in [
        vec!["--reps"],
        vec!["--reps", "0"],
        vec!["--reps", "three"],
        vec!["--reps", "-1"],
        vec!["--reps", "100"],
    ] {
        let scratch =
            Scratch(std::env::temp_dir().join(format!("dsrlb-reps-{}", std::process::id())));
        let run = Command::new(root.join("bench/run.sh"))
            .args(&args)
            .arg("--out")
            .arg(&scratch.0)
            .current_dir(&root)
            .output()
            .expect("bench/run.sh starts");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--reps"), "{args:?}: {stderr}");
        assert!(!scratch.0.exists(), "{args:?} wrote results");
    }
}
