//! Rise and fall: how probe results turn into a target's health.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet: counts as up, and the first result decides.
    Unknown,
    Up,
    Down,
}

impl Health {
    /// Whether the target may carry traffic.
    pub fn is_usable(self) -> bool {
        self != Health::Down
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Refused,
    /// connect or I/O failed with this errno (unreachable, reset, ...).
    Network(i32),
    HttpStatus(u16),
    HttpBody,
    HttpMalformed,
    Exit(i32),
    Signal(i32),
    Spawn(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("timeout"),
            Failure::Refused => f.write_str("connection refused"),
            Failure::Network(errno) => write!(f, "{}", std::io::Error::from_raw_os_error(*errno)),
            Failure::HttpStatus(code) => write!(f, "HTTP status {code}"),
            Failure::HttpBody => f.write_str("HTTP body lacks the expected text"),
            Failure::HttpMalformed => f.write_str("not an HTTP response"),
            Failure::Exit(code) => write!(f, "exit code {code}"),
            Failure::Signal(sig) => write!(f, "killed by signal {sig}"),
            Failure::Spawn(e) => write!(f, "cannot run the command: {e}"),
        }
    }
}

pub type Outcome = Result<(), Failure>;

/// One target's health, moved by probe results: `fall` failures in a row take an up
/// target down, `rise` successes in a row bring a down one up.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    state: Health,
    successes: u32,
    failures: u32,
    rise: u32,
    fall: u32,
}

impl HealthTracker {
    pub fn new(rise: u32, fall: u32) -> Self {
        HealthTracker {
            state: Health::Unknown,
            successes: 0,
            failures: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    pub fn state(&self) -> Health {
        self.state
    }

    /// Records a result; returns the new state if it changed.
    pub fn record(&mut self, ok: bool) -> Option<Health> {
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let next = match (self.state, ok) {
            (Health::Unknown, true) => Health::Up,
            (Health::Unknown, false) => Health::Down,
            (Health::Up, false) if self.failures >= self.fall => Health::Down,
            (Health::Down, true) if self.successes >= self.rise => Health::Up,
            (state, _) => state,
        };
        (next != self.state).then(|| {
            self.state = next;
            next
        })
    }

    /// Consecutive results behind the current state, for logs.
    pub fn streak(&self) -> (u32, u32) {
        (self.successes, self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_result_decides_then_rise_and_fall_apply() {
        let mut t = HealthTracker::new(2, 3);
        assert_eq!(t.state(), Health::Unknown);
        assert!(t.state().is_usable());
        assert_eq!(t.record(true), Some(Health::Up));
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None, "a success resets the failure count");
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(
            t.record(false),
            Some(Health::Down),
            "three failures in a row"
        );
        assert!(!t.state().is_usable());
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None, "a failure resets the success count");
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(Health::Up), "two successes in a row");
    }

    #[test]
    fn a_dead_target_is_down_at_its_first_probe() {
        let mut t = HealthTracker::new(2, 3);
        assert_eq!(t.record(false), Some(Health::Down));
    }
}
