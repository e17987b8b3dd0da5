//! `dsrlb`: a DPDK Layer-4 load balancer that does Direct Server Return by MAC rewrite.
#![cfg_attr(test, allow(clippy::unwrap_used))]

use control::api::{self, AdminAction, HaAction, Reply, Request};
use control::{ctl, run};

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
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
    /// Show the running appliance: `servers` (services), `targets` or `stats`.
    Show {
        #[arg(value_enum)]
        what: ShowWhat,
        /// Print JSON (the control socket's own answer) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connect: Connect,
    },
    /// Drain (keep flows, no new ones), disable (flows move away) or enable a target,
    /// in every service that lists its address. Lasts until enabled again or until
    /// the address leaves the config; a restart forgets it.
    Target {
        /// The target's data address, as in the config.
        address: std::net::IpAddr,
        #[arg(value_enum)]
        action: AdminAction,
        #[command(flatten)]
        connect: Connect,
    },
    /// Re-read the running appliance's config file and apply it live (as SIGHUP does).
    /// An invalid file, or one that changes what needs a restart, is refused with
    /// its errors; the running config then stays.
    Reload {
        #[command(flatten)]
        connect: Connect,
    },
    /// What the DSR doctor found for each target, through the data path itself: the
    /// VIP on its loopback, the service listening on the VIP, ARP answered for the
    /// VIP (ARP flux), its MAC and management probe; and what to do about it.
    Doctor {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connect: Connect,
    },
    /// The appliance in a group (BGP scale-out, or an active/standby pair): `status`;
    /// `drain` withdraws every VIP (in a pair: hands the VIPs to the peer), `undrain`
    /// announces again those that are ready (in a pair: may serve again).
    Ha {
        #[arg(value_enum)]
        action: HaAction,
        /// Print JSON instead of a table (status).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connect: Connect,
    },
    /// The target the running appliance would choose for a new flow to a service,
    /// and why (its Maglev slot); or for --random N flows drawn from --seed (the
    /// same flows on every appliance, to compare them).
    WhichTarget {
        #[arg(long)]
        vip: std::net::Ipv4Addr,
        #[arg(long)]
        port: u16,
        #[arg(long, value_enum)]
        proto: Proto,
        /// The client's address and port.
        #[arg(long, required_unless_present = "random")]
        src: Option<std::net::Ipv4Addr>,
        #[arg(long, required_unless_present = "random")]
        sport: Option<u16>,
        #[arg(long, conflicts_with_all = ["src", "sport"])]
        random: Option<u32>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connect: Connect,
    },
    /// Print the BIRD 2 configuration for the config's [bgp] section (one static
    /// protocol a VIP, the session to the router, BFD), for bird -c.
    BirdConfig {
        /// The TOML configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the keepalived configuration for the config's [ha] section (VRRP version
    /// 3, unicast, the notify FIFO, dsrlb's tap and track file), for keepalived -f.
    KeepalivedConfig {
        /// The TOML configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a configuration file and print it resolved (defaults filled in).
    /// Exits 1 and lists every error, each with its key, if the file is invalid.
    Check {
        /// The TOML configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Proto {
    Tcp,
    Udp,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ShowWhat {
    /// Each service: VIP, port, protocol, targets up/total, packets, bytes, drops.
    Servers,
    /// Each target: MAC and its source, state, weight, last probe, flows, packets.
    Targets,
    /// Each worker: rx/tx, drops by reason, flow table, guard; ports; mempool.
    Stats,
    /// A digest of each service's Maglev table, its seed and targets: equal on
    /// appliances that choose alike.
    Digest,
    /// The appliance's part in a group: in a pair its role, since when, transitions
    /// and why; behind BGP each VIP's announcement (as `dsrlb ha status`).
    Ha,
}

/// Where the running dsrlb listens. Exit status of the client commands: 0 done,
/// 1 refused (the message says why), 3 dsrlb not reachable.
#[derive(clap::Args, Debug)]
struct Connect {
    /// The control socket [default: control.socket of --config, else /run/dsrlb/dsrlb.sock].
    #[arg(short, long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The config file dsrlb runs with (only its control.socket is read).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl Connect {
    fn socket(&self) -> Result<PathBuf, String> {
        if let Some(path) = &self.socket {
            return Ok(path.clone());
        }
        let Some(file) = &self.config else {
            return Ok(PathBuf::from(config::DEFAULT_CONTROL_SOCKET));
        };
        // Read leniently: the file may be mid-edit, and only this key matters here.
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let value: toml::Value = text
            .parse()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(value
            .get("control")
            .and_then(|c| c.get("socket"))
            .and_then(|s| s.as_str())
            .map_or_else(
                || PathBuf::from(config::DEFAULT_CONTROL_SOCKET),
                PathBuf::from,
            ))
    }
}

/// Sends one request and prints the answer.
fn client(connect: &Connect, request: Request, json: bool) -> ExitCode {
    let reply = match connect.socket().and_then(|path| ctl::call(&path, &request)) {
        Ok(reply) => reply,
        Err(e) => {
            eprintln!("dsrlb: {e}");
            return ExitCode::from(3);
        }
    };
    let printed = match (&reply, json) {
        (Reply::Error(e), _) => {
            eprintln!("dsrlb: {}", e.trim_end());
            return ExitCode::from(1);
        }
        (Reply::Servers(s), false) => api::servers_table(s),
        (Reply::Targets(t), false) => api::targets_table(t),
        (Reply::Stats(s), false) => api::stats_table(s),
        (Reply::Doctor(d), false) => api::doctor_table(d),
        (Reply::Ha(h), false) => api::ha_table(h),
        (Reply::Digest(d), false) => api::digest_table(d),
        (Reply::Choices(c), false) => api::choices_table(c),
        (Reply::Digest(d), true) => to_json(d),
        (Reply::Choices(c), true) => to_json(c),
        (Reply::Ha(h), true) => to_json(h),
        (Reply::Done(text), false) | (Reply::Metrics(text), false) => format!("{text}\n"),
        (Reply::Servers(s), true) => to_json(s),
        (Reply::Targets(t), true) => to_json(t),
        (Reply::Stats(s), true) => to_json(s),
        (Reply::Doctor(d), true) => to_json(d),
        (other, true) => to_json(other),
    };
    print!("{printed}");
    ExitCode::SUCCESS
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value)
        .map_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"), |s| s + "\n")
}

/// The config file, valid and fit for its devices (`preflight`): what `check`
/// reports and what `run` starts from.
fn load_checked(path: &std::path::Path) -> Result<config::Config, config::ConfigError> {
    let config = config::Config::load(path)?;
    control::preflight::check(&config, path)?;
    Ok(config)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Show {
            what,
            json,
            connect,
        } => {
            let request = match what {
                ShowWhat::Servers => Request::ShowServers,
                ShowWhat::Targets => Request::ShowTargets,
                ShowWhat::Stats => Request::ShowStats,
                ShowWhat::Digest => Request::ShowDigest,
                ShowWhat::Ha => Request::Ha {
                    action: HaAction::Status,
                },
            };
            client(&connect, request, json)
        }
        Command::Target {
            address,
            action,
            connect,
        } => client(&connect, Request::Target { address, action }, false),
        Command::Reload { connect } => client(&connect, Request::Reload, false),
        Command::Doctor { json, connect } => client(&connect, Request::Doctor, json),
        Command::Ha {
            action,
            json,
            connect,
        } => client(&connect, Request::Ha { action }, json),
        Command::WhichTarget {
            vip,
            port,
            proto,
            src,
            sport,
            random,
            seed,
            json,
            connect,
        } => {
            let flows = match (random, src, sport) {
                (Some(count), _, _) => api::FlowsAsked::Random { count, seed },
                (None, Some(src), Some(sport)) => api::FlowsAsked::One { src, sport },
                _ => {
                    eprintln!("dsrlb: give --src and --sport, or --random N");
                    return ExitCode::from(2);
                }
            };
            let protocol = match proto {
                Proto::Tcp => config::Protocol::Tcp,
                Proto::Udp => config::Protocol::Udp,
            };
            let request = Request::WhichTarget {
                vip,
                port,
                protocol,
                flows,
            };
            client(&connect, request, json)
        }
        Command::BirdConfig { config } => {
            print_written(&config, "[bgp]", control::bird::config_text)
        }
        Command::KeepalivedConfig { config } => {
            print_written(&config, "[ha]", control::keepalived::config_text)
        }
        Command::Check { config } => match load_checked(&config) {
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
        } => match load_checked(&config) {
            Ok(c) => run::run(&config, c, std::time::Duration::from_secs(stats_interval)),
            Err(e) => {
                eprint!("{e}");
                ExitCode::from(1)
            }
        },
    }
}

/// Prints what `write` makes of the config at `path` (another daemon's configuration);
/// exits 1 if the config is invalid or lacks `section`.
fn print_written(
    path: &Path,
    section: &str,
    write: fn(&config::Config, &Path) -> Option<String>,
) -> ExitCode {
    match config::Config::load(path) {
        Ok(c) => match write(&c, path) {
            Some(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("{}: no {section} section", path.display());
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprint!("{e}");
            ExitCode::from(1)
        }
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
