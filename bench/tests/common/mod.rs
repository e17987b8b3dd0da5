//! What the harness's script tests share: where the workspace is, running one of its
//! scripts from there, and reading the results CSVs it writes.

// Each test binary compiles its own copy and uses part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// Runs `script` (a path from the workspace root) there with `args`; panics with its
/// output unless it succeeds. Returns what it printed.
pub fn run_script<I, S>(script: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let root = workspace_root();
    let run = Command::new(root.join(script))
        .args(args)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("{script} does not start: {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{script}: {}\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

/// A results CSV: its header and its rows, split at commas.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect());
    (lines.next().unwrap_or_default(), lines.collect())
}

/// The figure in `column` of `row`; panics when there is none, with `log` (the run's
/// output) to say why.
pub fn number(header: &[String], row: &[String], column: &str, log: &str) -> f64 {
    let at = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    row.get(at)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .unwrap_or_else(|| panic!("{column} of {row:?} is not a measurement\n{log}"))
}
