//! Health probes from the kernel's side (the management network), many at once on
//! one thread: non-blocking sockets and child processes, all waited on with one epoll.
//! A slow or dead target only ever costs its own probe's timeout.

use super::state::{Failure, Health, HealthTracker, Outcome};
use config::{Probe, ProbeKind};
use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
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
    pub address: Ipv4Addr,
    /// The port tcp and http probes use.
    pub port: u16,
    pub probe: Probe,
}

/// Where probes leave from.
#[derive(Debug, Clone, Default)]
pub struct ProbeSource {
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
    epoll: OwnedFd,
    slots: Vec<Slot>,
    source: ProbeSource,
    interface: Option<CString>,
    stats: ScheduleStats,
}

const READ_LIMIT: usize = 64 * 1024;
/// close_range(2) flag: mark close-on-exec rather than close (Rust's spawn keeps
/// a pipe open until exec to report exec errors).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
/// With no pidfd (old kernels) exec probes are polled this often.
const EXEC_POLL: Duration = Duration::from_millis(10);

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn sockaddr(addr: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    }
}

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
        // SAFETY: plain syscall; the fd is owned below.
        let epoll = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
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
            epoll,
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
        let by_key: std::collections::HashMap<(&str, Ipv4Addr, u16), &Slot> = old
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
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 256];
        let timeout_ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: valid epoll fd and event buffer.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout_ms,
            )
        };
        for event in events.iter().take(n.max(0) as usize) {
            let i = event.u64 as usize;
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
        let net = |e: io::Error| Failure::Network(e.raw_os_error().unwrap_or(libc::EIO));
        // SAFETY: plain syscall; the fd is owned right away.
        let fd = unsafe {
            OwnedFd::from_raw_fd(
                cvt(libc::socket(
                    libc::AF_INET,
                    libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    0,
                ))
                .map_err(net)?,
            )
        };
        if let Some(name) = &self.interface {
            // SAFETY: valid fd and NUL-terminated name.
            cvt(unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    name.as_ptr().cast(),
                    name.as_bytes_with_nul().len() as libc::socklen_t,
                )
            })
            .map_err(net)?;
        }
        if let Some(source) = self.source.address {
            let local = sockaddr(source, 0);
            // SAFETY: valid fd and address.
            cvt(unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&local as *const libc::sockaddr_in).cast(),
                    std::mem::size_of_val(&local) as u32,
                )
            })
            .map_err(net)?;
        }
        let slot = &self.slots[i];
        let remote = sockaddr(slot.target.address, slot.target.port);
        // SAFETY: valid fd and address.
        let ret = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&remote as *const libc::sockaddr_in).cast(),
                std::mem::size_of_val(&remote) as u32,
            )
        };
        if ret < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(connect_failure(e.raw_os_error().unwrap_or(libc::EIO)));
            }
        }
        self.watch(
            fd.as_raw_fd(),
            libc::EPOLLOUT as u32,
            i,
            libc::EPOLL_CTL_ADD,
        )
        .map_err(net)?;
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
        // The check must not inherit dsrlb's descriptors: DPDK's hugepage memfds
        // among them would stay referenced (and the memory held) while it runs.
        // SAFETY: the closure makes one async-signal-safe syscall.
        unsafe {
            command.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
                Ok(())
            });
        }
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
        // SAFETY: plain syscall on our own child's pid.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::c_int, 0) };
        let pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as RawFd) });
        if let Some(fd) = &pidfd {
            if self
                .watch(fd.as_raw_fd(), libc::EPOLLIN as u32, i, libc::EPOLL_CTL_ADD)
                .is_err()
            {
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

    fn watch(&self, fd: RawFd, events: u32, i: usize, op: libc::c_int) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events,
            u64: i as u64,
        };
        // SAFETY: valid epoll fd, fd and event.
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event) }).map(|_| ())
    }

    fn advance(&mut self, i: usize, changes: &mut Vec<Change>) {
        let slot = &mut self.slots[i];
        let outcome = match &mut slot.running {
            None => return,
            Some(Running::Exec { child, .. }) => match child.try_wait() {
                Ok(Some(status)) => exit_outcome(status),
                Ok(None) => return,
                Err(e) => Err(Failure::Spawn(e.to_string())),
            },
            Some(Running::Connect {
                fd,
                phase: Phase::Connecting,
                ..
            }) => {
                let raw = fd.as_raw_fd();
                match (socket_error(raw), slot.target.probe.kind) {
                    (0, ProbeKind::Http) => match send_all(raw, &slot.request) {
                        Ok(()) => {
                            match self.watch(raw, libc::EPOLLIN as u32, i, libc::EPOLL_CTL_MOD) {
                                Ok(()) => {
                                    if let Some(Running::Connect { phase, .. }) =
                                        &mut self.slots[i].running
                                    {
                                        *phase = Phase::Reading(Vec::with_capacity(1024));
                                    }
                                    return;
                                }
                                Err(e) => {
                                    Err(Failure::Network(e.raw_os_error().unwrap_or(libc::EIO)))
                                }
                            }
                        }
                        Err(errno) => Err(Failure::Network(errno)),
                    },
                    (0, _) => Ok(()),
                    (errno, _) => Err(connect_failure(errno)),
                }
            }
            Some(Running::Connect {
                fd,
                phase: Phase::Reading(buf),
                ..
            }) => {
                let mut chunk = [0u8; 4096];
                // SAFETY: valid fd and buffer.
                let n = unsafe {
                    libc::recv(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len(), 0)
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::WouldBlock {
                        return;
                    }
                    Err(Failure::Network(e.raw_os_error().unwrap_or(libc::EIO)))
                } else {
                    buf.extend_from_slice(&chunk[..n as usize]);
                    match http_verdict(buf, n == 0 || buf.len() >= READ_LIMIT, &slot.target.probe) {
                        Some(outcome) => outcome,
                        None => return,
                    }
                }
            }
        };
        self.finish(i, outcome, changes);
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

/// Sends a whole (small) request on a freshly connected socket; Err(errno).
fn send_all(fd: RawFd, bytes: &[u8]) -> Result<(), i32> {
    // SAFETY: valid fd and buffer.
    let sent = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
    if sent < 0 {
        Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else if sent as usize != bytes.len() {
        Err(libc::EMSGSIZE)
    } else {
        Ok(())
    }
}

fn socket_error(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid fd and out buffers.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        err
    }
}

fn connect_failure(errno: i32) -> Failure {
    match errno {
        libc::ECONNREFUSED => Failure::Refused,
        libc::ETIMEDOUT => Failure::Timeout,
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
