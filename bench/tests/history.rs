//! bench/history.py over results directories written here with known figures: the
//! ratios of the medians in each run's row, and how often each target was met.

mod common;

use common::run_script;
use std::path::{Path, PathBuf};

/// Results directories, removed however the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).expect("results directory");
    std::fs::write(dir.join(name), text).expect("results file");
}

/// Three reps of each forwarder at `flows`, the middle one the median.
fn rates(flows: u32, testpmd: f64, dsrlb: f64) -> String {
    [(testpmd, "testpmd"), (dsrlb, "dsrlb")]
        .iter()
        .flat_map(|&(v, impl_)| {
            [(1, v * 0.5), (2, v), (3, v * 2.0)]
                .map(|(rep, x)| format!("{impl_},{flows},{rep},{x}\n"))
        })
        .collect()
}

fn line_with<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
}

#[test]
fn history_gives_each_runs_ratios_and_counts_the_targets_met() {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("dsrlb-history-{}", std::process::id())));
    let root = &scratch.0;

    // A full run: one flow met (0.96 by rate, 0.975 by share), 1M missed (0.50).
    let full = root.join("20300101T000000Z");
    write(
        &full,
        "machine.txt",
        "commit: aaaaaaa\ncpu: Test CPU x 2\nquick: 0\n",
    );
    write(
        &full,
        "pps.csv",
        &format!(
            "impl,flows,rep,mpps\n{}{}",
            rates(1, 50.0, 48.0),
            rates(1_000_000, 30.0, 15.0)
        ),
    );
    write(
        &full,
        "share.csv",
        "impl,flows,rep,pmd_share_pct\ntestpmd,1,1,80\ndsrlb,1,1,78\ntestpmd,1000000,1,90\ndsrlb,1000000,1,45\n",
    );
    // A lab batch: af_packet met both ways; af_xdp 0.90 x testpmd (missed), 1.8 x Pen.
    write(
        &root.join("20300101T010000Z-lab"),
        "lab.csv",
        "impl,rep,forwarded_pps,drop_pct\n\
         testpmd/af_packet,1,400000,1\ndsrlb/af_packet,1,420000,2\n\
         testpmd/af_xdp,1,500000,0\ndsrlb/af_xdp,1,450000,0.5\npen,1,250000,50\n",
    );
    // The first lab's names (af_packet without the driver): 1.6 x Pen, but with more
    // drops than Pen, so that target is missed.
    write(
        &root.join("20300101T020000Z"),
        "lab.csv",
        "impl,rep,forwarded_pps,drop_pct\ntestpmd,1,400000,5\ndsrlb,1,400000,60\npen,1,250000,50\n",
    );
    // A smoke run: shown, marked, and not counted against the target.
    let quick = root.join("20300101T030000Z");
    write(
        &quick,
        "machine.txt",
        "commit: bbbbbbb\ncpu: Test CPU x 2\nquick: 1\n",
    );
    write(
        &quick,
        "pps.csv",
        &format!("impl,flows,rep,mpps\n{}", rates(1, 50.0, 25.0)),
    );

    let root_arg = root.to_str().expect("utf-8 temp path");
    let out = run_script("bench/history.py", [root_arg]);
    let full_row = line_with(&out, "| 20300101T000000Z ");
    assert!(
        full_row.contains("| aaaaaaa | Test CPU x 2 | 3 |"),
        "{full_row}"
    );
    assert!(full_row.contains("| 0.96 / 0.975 |"), "{full_row}");
    assert!(full_row.contains("| 0.50 / 0.500 |"), "{full_row}");
    let lab_row = line_with(&out, "| 20300101T010000Z-lab ");
    assert!(
        lab_row.ends_with("| 1.05 / 0.90 | 1.68 / 1.80 |"),
        "{lab_row}"
    );
    let old_lab_row = line_with(&out, "| 20300101T020000Z ");
    assert!(
        old_lab_row.ends_with("| 1.00 / - | 1.60 / - |"),
        "{old_lab_row}"
    );
    assert!(line_with(&out, "| 20300101T030000Z ").contains("| 3 (quick) | 0.50 / - |"));

    for (target, tally) in [
        ("1 flow, >= 0.95 x testpmd by rate", "met in 1 of 1"),
        ("1 flow, >= 0.95 x testpmd by PMD share", "met in 1 of 1"),
        ("1M flows, >= 0.85 x testpmd by rate", "met in 0 of 1"),
        ("lab af_packet, >= 0.95 x testpmd", "met in 2 of 2"),
        (
            "lab af_packet, >= 1.5 x Pen with fewer drops",
            "met in 1 of 2",
        ),
        ("lab af_xdp, >= 0.95 x testpmd", "met in 0 of 1"),
        ("lab af_xdp, >= 1.5 x Pen with fewer drops", "met in 1 of 1"),
        // testpmd / Pen: 1.6 and 1.6 on af_packet, 2.0 on af_xdp.
        (
            "lab af_packet, the ceiling's own: testpmd >= 1.5 x Pen",
            "met in 2 of 2",
        ),
        (
            "lab af_xdp, the ceiling's own: testpmd >= 1.5 x Pen",
            "met in 1 of 1",
        ),
    ] {
        let line = line_with(&out, &format!("- {target}:"));
        assert!(line.contains(tally), "{line}");
    }

    // The archive: every row written to a CSV, the directories gone, the same table
    // from the CSV alone; a directory still there wins over its archived row.
    let archive = root.join("history.csv");
    let archive_arg = archive.to_str().expect("utf-8 temp path");
    let written = run_script(
        "bench/history.py",
        ["--write-archive", archive_arg, root_arg],
    );
    assert!(written.starts_with("4 runs written"), "{written}");
    let kept = root.join("kept");
    std::fs::create_dir_all(&kept).expect("kept directory");
    std::fs::rename(&full, kept.join("20300101T000000Z")).expect("move the full run");
    for run in [
        "20300101T010000Z-lab",
        "20300101T020000Z",
        "20300101T030000Z",
    ] {
        std::fs::remove_dir_all(root.join(run)).expect("remove a results directory");
    }
    let kept_arg = kept.to_str().expect("utf-8 temp path");
    let from_archive = run_script("bench/history.py", [kept_arg, "--archive", archive_arg]);
    assert_eq!(
        from_archive, out,
        "the archive gives the same table and counts"
    );
    std::fs::write(
        kept.join("20300101T000000Z/pps.csv"),
        format!("impl,flows,rep,mpps\n{}", rates(1, 50.0, 40.0)),
    )
    .expect("results file");
    let raw_wins = run_script("bench/history.py", [kept_arg, "--archive", archive_arg]);
    assert!(line_with(&raw_wins, "| 20300101T000000Z ").contains("| 0.80 / 0.975 |"));

    // --since leaves the earlier runs out, rows and counts alike.
    let later = run_script(
        "bench/history.py",
        [
            "--archive",
            archive_arg,
            "/nonexistent",
            "--since",
            "20300101T010000Z",
        ],
    );
    assert!(!later.contains("20300101T000000Z"), "{later}");
    assert!(!later.contains("- 1 flow,"), "{later}");
    assert!(line_with(&later, "- lab af_packet, >= 0.95 x testpmd:").contains("met in 2 of 2"));
}
