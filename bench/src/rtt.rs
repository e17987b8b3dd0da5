//! `dsrlb-rtt`: UDP round trips for the lab's latency figure. `echo` answers every
//! datagram on each address it binds; `ping` sends one datagram at a time, waits for
//! its own answer and prints the percentiles in microseconds as one JSON line.
//! Compiled, so that the tool's own time a round trip is microseconds: the Python
//! client and echo it replaces added tens of them, and their jitter, to every sample.

use clap::{Parser, Subcommand};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "UDP round trips: an echo, and a client that measures them")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Answer every datagram with itself, on each address, until `secs` have passed.
    /// Prints "echo on ADDR" for each, once bound.
    Echo {
        #[arg(long = "bind", required = true)]
        binds: Vec<SocketAddr>,
        #[arg(long, default_value_t = 600)]
        secs: u64,
    },
    /// `count` round trips to `to`, one at a time, `gap_us` apart.
    Ping {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
        src: IpAddr,
        #[arg(long, default_value_t = 5000)]
        count: u32,
        #[arg(long, default_value_t = 500)]
        gap_us: u64,
        /// A round trip not answered within this is lost.
        #[arg(long, default_value_t = 200)]
        timeout_ms: u64,
    },
}

/// Lost round trips after which, with none answered, `ping` stops: nothing is
/// there, and waiting out every timeout would only make the harness slow.
const GIVE_UP_AFTER_LOST: u32 = 20;

fn echo(binds: &[SocketAddr], secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut sockets = Vec::new();
    for addr in binds {
        let socket = UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        // Wakes the loop to check the deadline.
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| format!("{addr}: {e}"))?;
        let bound = socket.local_addr().map_err(|e| format!("{addr}: {e}"))?;
        // Port 0 binds a free port: the line says which.
        println!("echo on {bound}");
        sockets.push((bound, socket));
    }
    let threads: Vec<_> = sockets
        .into_iter()
        .map(|(addr, socket)| {
            std::thread::spawn(move || -> Result<(), String> {
                let mut buf = [0u8; 2048];
                while Instant::now() < deadline {
                    match socket.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            // A client gone away is its problem, not the echo's.
                            let _ = socket.send_to(&buf[..n], from);
                        }
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(e) => return Err(format!("{addr}: {e}")),
                    }
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| "an echo thread panicked".to_string())??;
    }
    Ok(())
}

/// Round-trip times in microseconds (in the order measured) and the number lost.
fn ping(
    to: SocketAddr,
    src: IpAddr,
    count: u32,
    gap: Duration,
    timeout: Duration,
) -> Result<(Vec<f64>, u32), String> {
    let socket = UdpSocket::bind((src, 0)).map_err(|e| format!("bind {src}: {e}"))?;
    socket
        .connect(to)
        .map_err(|e| format!("connect {to}: {e}"))?;
    let set_wait = |wait: Duration| {
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| format!("{to}: {e}"))
    };
    // The wait is set before the clock starts, so no round trip times a setsockopt;
    // only a late answer to an earlier one shortens it (and it is restored after).
    set_wait(timeout)?;
    let mut wait_shortened = false;
    let mut samples = Vec::with_capacity(count as usize);
    let mut lost = 0;
    let mut buf = [0u8; 64];
    for seq in 0..count {
        if lost >= GIVE_UP_AFTER_LOST && samples.is_empty() {
            break;
        }
        if wait_shortened {
            set_wait(timeout)?;
            wait_shortened = false;
        }
        let token = u64::from(seq).to_le_bytes();
        let sent = Instant::now();
        match socket.send(&token) {
            Ok(_) => {}
            // An ICMP unreachable that came after its round trip timed out: this one
            // is lost too.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                lost += 1;
                std::thread::sleep(gap);
                continue;
            }
            Err(e) => return Err(format!("send to {to}: {e}")),
        }
        loop {
            match socket.recv(&mut buf) {
                Ok(n) if buf[..n] == token => {
                    samples.push(sent.elapsed().as_secs_f64() * 1e6);
                    break;
                }
                // The late answer to a round trip already counted lost: wait out
                // what is left of this one's timeout.
                Ok(_) => {
                    let left = timeout.saturating_sub(sent.elapsed());
                    if left.is_zero() {
                        lost += 1;
                        break;
                    }
                    set_wait(left)?;
                    wait_shortened = true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    lost += 1;
                    break;
                }
                // An ICMP unreachable for an earlier datagram: this one is lost too.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    lost += 1;
                    break;
                }
                Err(e) => return Err(format!("receive from {to}: {e}")),
            }
        }
        std::thread::sleep(gap);
    }
    Ok((samples, lost))
}

/// The `q` quantile of sorted `samples` (the sample at rank q × n), NaN when empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[rank]
}

fn main() -> ExitCode {
    let outcome = match Args::parse().mode {
        Mode::Echo { binds, secs } => echo(&binds, secs),
        Mode::Ping {
            to,
            src,
            count,
            gap_us,
            timeout_ms,
        } => ping(
            to,
            src,
            count,
            Duration::from_micros(gap_us),
            Duration::from_millis(timeout_ms),
        )
        .map(|(mut samples, lost)| {
            samples.sort_by(f64::total_cmp);
            // Rust writes NaN (nothing answered) as Python's json module reads it.
            let us = |q| format!("{:.1}", quantile(&samples, q));
            println!(
                "{{\"p50_us\": {}, \"p99_us\": {}, \"answered\": {}, \"lost\": {}}}",
                us(0.50),
                us(0.99),
                samples.len(),
                lost
            );
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dsrlb-rtt: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_pick_the_sample_at_their_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&samples, 0.50), 51.0);
        assert_eq!(quantile(&samples, 0.99), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
