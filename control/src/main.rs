//! `dsrlb`: a DPDK Layer-4 load balancer that does Direct Server Return by MAC rewrite.
#![cfg_attr(test, allow(clippy::unwrap_used))]

use control::run;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "dsrlb",
    version,
    about = "Layer-4 load balancer on DPDK doing Direct Server Return by MAC rewrite",
    long_about = "dsrlb receives client traffic for virtual IPs (VIPs), picks a target per flow \
(per-worker flow table, then a Maglev consistent-hash table) and forwards each frame to \
that target by rewriting only its destination MAC. Targets hold the VIP on their loopback \
and answer clients directly: replies never pass through dsrlb.\n\n\
Logging goes to stderr; set its level with RUST_LOG (error, warn, info, debug)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the appliance: EAL, ports, one worker per rx queue, the control thread.
    /// Ctrl-C or SIGTERM stops it cleanly and prints its counters.
    Run {
        /// The TOML configuration file (see config/examples/dsrlb.toml).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Log a one-line summary of the counters every N seconds (0 = never).
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        stats_interval: u64,
    },
    /// Validate a configuration file and print it resolved (defaults filled in).
    /// Exits 1 and lists every error, each with its key, if the file is invalid.
    Check {
        /// The TOML configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match config::Config::load(&config) {
            Ok(c) => {
                print!("{}", c.to_toml());
                eprintln!("{}: valid", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint!("{e}");
                ExitCode::from(1)
            }
        },
        Command::Run {
            config,
            stats_interval,
        } => match config::Config::load(&config) {
            Ok(c) => run::run(&c, std::time::Duration::from_secs(stats_interval)),
            Err(e) => {
                eprint!("{e}");
                ExitCode::from(1)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
