//! The exit report: `dsrlb show stats`' table from the same view and renderer, then
//! the totals line (which the periodic log line also is) and what the control thread
//! itself took from the workers.

use crate::api::{stats_table, summary_line, StatsView};

pub fn final_report(stats: &StatsView, punted_to_control: u64) -> String {
    let overflow: u64 = stats.workers.iter().map(|w| w.count("punt_overflow")).sum();
    format!(
        "\n== dsrlb counters ==\n{}{}\npunted to control: {punted_to_control} (punt queue overflow: {overflow})\n",
        stats_table(stats),
        summary_line(&stats.workers),
    )
}
