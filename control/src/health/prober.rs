//! Health probes from the kernel's side (the management network), many at once on
//! one thread: non-blocking sockets and child processes, all waited on with one epoll.
//! A slow or dead target only ever costs its own probe's timeout.

use super::state::{Failure, Health, HealthTracker, Outcome};
use super::sys::{self, RawErrno, Read};
use crate::poller::{Interest, Poller};
use config::{Probe, ProbeKind};
use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// What to probe: one target of one service.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The caller's key for this target (returned in `Change`).
    pub id: usize,
    /// For logs: "10.99.0.11 of web (10.99.0.100:80/tcp)".
    pub label: String,
    /// Where probes go.
    pub address: IpAddr,
    /// The port tcp and http probes use.
    pub port: u16,
    pub probe: Probe,
}

/// Where probes leave from.
#[derive(Debug, Clone, Default)]
pub struct ProbeSource {
    /// For probes to IPv4 addresses; IPv6 ones leave from the address the kernel
    /// picks (on `interface`, if given).
    pub address: Option<Ipv4Addr>,
    pub interface: Option<String>,
}

/// A target whose health changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: usize,
    pub from: Health,
    pub to: Health,
    /// The result that made the change.
    pub outcome: Outcome,
    /// Consecutive successes and failures at the change.
    pub streak: (u32, u32),
}

/// The last result of a target's probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastProbe {
    pub at: SystemTime,
    pub outcome: Outcome,
}

/// How closely probes kept to their schedule.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScheduleStats {
    pub started: u64,
    pub max_lateness: Duration,
    /// Probes started later than 10% of their interval.
    pub late_over_10pct: u64,
}

enum Phase {
    Connecting,
    /// HTTP: request sent, response bytes so far.
    Reading(Vec<u8>),
}

enum Running {
    Connect {
        fd: OwnedFd,
        deadline: Instant,
        phase: Phase,
    },
    Exec {
        child: Child,
        pidfd: Option<OwnedFd>,
        deadline: Instant,
    },
}

struct Slot {
    target: ProbeTarget,
    interval: Duration,
    timeout: Duration,
    tracker: HealthTracker,
    next_due: Instant,
    running: Option<Running>,
    last: Option<LastProbe>,
    request: Vec<u8>,
}

pub struct Prober {
    poller: Poller,
    slots: Vec<Slot>,
    source: ProbeSource,
    interface: Option<CString>,
    stats: ScheduleStats,
}

const READ_LIMIT: usize = 64 * 1024;
/// With no pidfd (old kernels) exec probes are polled this often.
const EXEC_POLL: Duration = Duration::from_millis(10);

impl Drop for Prober {
    /// Exec checks still running are killed and reaped, not left behind.
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(Running::Exec { mut child, .. }) = slot.running.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Prober {
    /// Schedules every target, their first probes spread over their interval.
    pub fn new(targets: Vec<ProbeTarget>, source: ProbeSource) -> io::Result<Prober> {
        let poller = Poller::new()?;
        let interface = match &source.interface {
            Some(name) => Some(
                CString::new(name.as_str())
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            ),
            None => None,
        };
        let now = Instant::now();
        let n = targets.len().max(1) as u32;
        let slots = targets
            .into_iter()
            .enumerate()
            .map(|(i, target)| {
                let interval = Duration::from_millis(u64::from(target.probe.interval_ms));
                let request = format!(
                    "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: dsrlb-health\r\nConnection: close\r\n\r\n",
                    target.probe.path, target.address
                )
                .into_bytes();
                Slot {
                    interval,
                    timeout: Duration::from_millis(u64::from(target.probe.timeout_ms)),
                    tracker: HealthTracker::new(target.probe.rise, target.probe.fall),
                    next_due: now + interval * (i as u32 % n) / n,
                    running: None,
                    last: None,
                    request,
                    target,
                }
            })
            .collect();
        Ok(Prober {
            poller,
            slots,
            source,
            interface,
            stats: ScheduleStats::default(),
        })
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// After a reload: targets probed exactly as before (same label, address, port
    /// and probe) keep their health, last result and schedule from `old`; the rest
    /// start as new. Probes `old` had in flight are abandoned.
    pub fn carry_over(&mut self, old: &Prober) {
        let by_key: std::collections::HashMap<(&str, IpAddr, u16), &Slot> = old
            .slots
            .iter()
            .map(|s| {
                (
                    (s.target.label.as_str(), s.target.address, s.target.port),
                    s,
                )
            })
            .collect();
        for slot in &mut self.slots {
            let key = (
                slot.target.label.as_str(),
                slot.target.address,
                slot.target.port,
            );
            if let Some(o) = by_key
                .get(&key)
                .filter(|o| o.target.probe == slot.target.probe)
            {
                slot.tracker = o.tracker.clone();
                slot.last = o.last.clone();
                slot.next_due = o.next_due;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether some target has not had its first result yet.
    pub fn any_unknown(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.tracker.state() == Health::Unknown)
    }

    pub fn health(&self, index: usize) -> Health {
        self.slots
            .get(index)
            .map_or(Health::Unknown, |s| s.tracker.state())
    }

    pub fn target(&self, index: usize) -> Option<&ProbeTarget> {
        self.slots.get(index).map(|s| &s.target)
    }

    pub fn last(&self, index: usize) -> Option<&LastProbe> {
        self.slots.get(index).and_then(|s| s.last.as_ref())
    }

    pub fn schedule_stats(&self) -> ScheduleStats {
        self.stats
    }

    /// Starts due probes, waits up to `max_wait` for probe I/O, finishes what is done
    /// or timed out. Returns the health changes.
    pub fn poll(&mut self, max_wait: Duration) -> Vec<Change> {
        let mut changes = Vec::new();
        let now = Instant::now();
        for i in 0..self.slots.len() {
            if self.slots[i].running.is_none() && self.slots[i].next_due <= now {
                self.start(i, now, &mut changes);
            }
        }
        let wait = self.wait_time(Instant::now(), max_wait);
        for i in self.poller.wait(wait) {
            if i < self.slots.len() {
                self.advance(i, &mut changes);
            }
        }
        let now = Instant::now();
        for i in 0..self.slots.len() {
            let expired = match &mut self.slots[i].running {
                Some(Running::Connect { deadline, .. }) => *deadline <= now,
                Some(Running::Exec {
                    deadline,
                    child,
                    pidfd,
                }) => {
                    if pidfd.is_none() {
                        if let Ok(Some(status)) = child.try_wait() {
                            let outcome = exit_outcome(status);
                            self.finish(i, outcome, &mut changes);
                            continue;
                        }
                    }
                    *deadline <= now
                }
                None => false,
            };
            if expired {
                self.finish(i, Err(Failure::Timeout), &mut changes);
            }
        }
        changes
    }

    fn wait_time(&self, now: Instant, max_wait: Duration) -> Duration {
        let mut until = now + max_wait;
        for s in &self.slots {
            let at = match &s.running {
                None => s.next_due,
                Some(Running::Connect { deadline, .. }) => *deadline,
                Some(Running::Exec {
                    deadline, pidfd, ..
                }) => {
                    if pidfd.is_none() {
                        (*deadline).min(now + EXEC_POLL)
                    } else {
                        *deadline
                    }
                }
            };
            until = until.min(at);
        }
        // epoll waits in whole milliseconds: round up so a due time is not missed by
        // waking a hair early, then spinning.
        let d = until.saturating_duration_since(now);
        let ms = d.as_nanos().div_ceil(1_000_000);
        Duration::from_millis(ms as u64)
    }

    fn start(&mut self, i: usize, now: Instant, changes: &mut Vec<Change>) {
        let slot = &mut self.slots[i];
        let lateness = now.saturating_duration_since(slot.next_due);
        self.stats.started += 1;
        self.stats.max_lateness = self.stats.max_lateness.max(lateness);
        if lateness > slot.interval / 10 {
            self.stats.late_over_10pct += 1;
        }
        // Keep the cadence; after a stall, start afresh rather than bunch up.
        slot.next_due += slot.interval;
        if slot.next_due <= now {
            slot.next_due = now + slot.interval;
        }
        let deadline = now + slot.timeout;
        let started = match slot.target.probe.kind {
            ProbeKind::Tcp | ProbeKind::Http => self.start_connect(i, deadline),
            ProbeKind::Exec => self.start_exec(i, deadline),
        };
        if let Err(failure) = started {
            self.finish(i, Err(failure), changes);
        }
    }

    fn start_connect(&mut self, i: usize, deadline: Instant) -> Result<(), Failure> {
        let target = &self.slots[i].target;
        let to = SocketAddr::new(target.address, target.port);
        let fd = sys::start_connect(to, self.source.address, self.interface.as_ref())
            .map_err(connect_failure)?;
        self.poller
            .watch(&fd, i, Interest::Writable)
            .map_err(Failure::Network)?;
        self.slots[i].running = Some(Running::Connect {
            fd,
            deadline,
            phase: Phase::Connecting,
        });
        Ok(())
    }

    fn start_exec(&mut self, i: usize, deadline: Instant) -> Result<(), Failure> {
        let slot = &self.slots[i];
        let Some((program, args)) = slot.target.probe.command.split_first() else {
            return Err(Failure::Spawn("empty command".to_owned()));
        };
        let mut command = Command::new(program);
        sys::close_descriptors_on_exec(&mut command);
        let child = command
            .args(args)
            .env("DSRLB_PROBE_ADDRESS", slot.target.address.to_string())
            .env("DSRLB_PROBE_PORT", slot.target.port.to_string())
            .env("DSRLB_TARGET", &slot.target.label)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Failure::Spawn(format!("{program}: {e}")))?;
        // A pidfd becomes readable when the child exits: epoll waits for it too.
        let pidfd = sys::pidfd(&child);
        if let Some(fd) = &pidfd {
            if self.poller.watch(fd, i, Interest::Readable).is_err() {
                log::debug!("pidfd not usable with epoll; polling exec probes");
            }
        }
        self.slots[i].running = Some(Running::Exec {
            child,
            pidfd,
            deadline,
        });
        Ok(())
    }

    /// An event for slot `i`: its probe moves on, and finishes if it is decided.
    fn advance(&mut self, i: usize, changes: &mut Vec<Change>) {
        let slot = &mut self.slots[i];
        let outcome = match &mut slot.running {
            None => None,
            Some(Running::Exec { child, .. }) => match child.try_wait() {
                Ok(Some(status)) => Some(exit_outcome(status)),
                Ok(None) => None,
                Err(e) => Some(Err(Failure::Spawn(e.to_string()))),
            },
            Some(Running::Connect {
                phase: Phase::Connecting,
                ..
            }) => self.connected(i),
            Some(Running::Connect {
                fd,
                phase: Phase::Reading(buf),
                ..
            }) => read_response(fd, buf, &slot.target.probe),
        };
        if let Some(outcome) = outcome {
            self.finish(i, outcome, changes);
        }
    }

    /// Slot `i`'s connect completed: a tcp probe is decided; an http probe sends its
    /// request and waits for the response (None).
    fn connected(&mut self, i: usize) -> Option<Outcome> {
        let slot = &mut self.slots[i];
        let Some(Running::Connect { fd, phase, .. }) = &mut slot.running else {
            return None;
        };
        if let Err(errno) = sys::connect_result(&*fd) {
            return Some(Err(connect_failure(errno)));
        }
        if slot.target.probe.kind != ProbeKind::Http {
            return Some(Ok(()));
        }
        let sent = sys::send_all(&*fd, &slot.request)
            .and_then(|()| self.poller.rewatch(&*fd, i, Interest::Readable));
        match sent {
            Ok(()) => {
                *phase = Phase::Reading(Vec::with_capacity(1024));
                None
            }
            Err(errno) => Some(Err(Failure::Network(errno))),
        }
    }

    fn finish(&mut self, i: usize, outcome: Outcome, changes: &mut Vec<Change>) {
        let slot = &mut self.slots[i];
        if let Some(Running::Exec { mut child, .. }) = slot.running.take() {
            if outcome == Err(Failure::Timeout) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        // Dropping a Connect closes its socket (and takes it out of the epoll set).
        let from = slot.tracker.state();
        if let Some(to) = slot.tracker.record(outcome.is_ok()) {
            changes.push(Change {
                id: slot.target.id,
                from,
                to,
                outcome: outcome.clone(),
                streak: slot.tracker.streak(),
            });
        }
        slot.last = Some(LastProbe {
            at: SystemTime::now(),
            outcome,
        });
    }
}

/// Reads what has come of an HTTP response into `buf`; its verdict once there is one.
fn read_response(fd: &OwnedFd, buf: &mut Vec<u8>, probe: &Probe) -> Option<Outcome> {
    let mut chunk = [0u8; 4096];
    match sys::read(fd, &mut chunk) {
        Read::Pending => None,
        Read::Failed(errno) => Some(Err(Failure::Network(errno))),
        Read::Bytes(n) => {
            buf.extend_from_slice(&chunk[..n]);
            http_verdict(buf, n == 0 || buf.len() >= READ_LIMIT, probe)
        }
    }
}

fn connect_failure(errno: RawErrno) -> Failure {
    match errno {
        sys::REFUSED => Failure::Refused,
        sys::TIMED_OUT => Failure::Timeout,
        other => Failure::Network(other),
    }
}

fn exit_outcome(status: std::process::ExitStatus) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(Failure::Exit(code)),
        (None, Some(sig)) => Err(Failure::Signal(sig)),
        (None, None) => Err(Failure::Exit(-1)),
    }
}

/// Judges an HTTP response so far: None while more is needed. `complete` is true at
/// end of stream (or at the read limit).
fn http_verdict(buf: &[u8], complete: bool, probe: &Probe) -> Option<Outcome> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n");
    let Some(line_end) = line_end else {
        return complete.then_some(Err(Failure::HttpMalformed));
    };
    let line = std::str::from_utf8(&buf[..line_end]).ok();
    let status = line
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok());
    let Some(status) = status else {
        return Some(Err(Failure::HttpMalformed));
    };
    if status != probe.expect_status {
        return Some(Err(Failure::HttpStatus(status)));
    }
    match &probe.expect_body {
        None => Some(Ok(())),
        Some(text) => {
            let body_start = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
            let found = body_start.is_some_and(|start| {
                buf[start..]
                    .windows(text.len())
                    .any(|w| w == text.as_bytes())
            });
            if found {
                Some(Ok(()))
            } else if complete {
                Some(Err(Failure::HttpBody))
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "prober_tests.rs"]
mod tests;
