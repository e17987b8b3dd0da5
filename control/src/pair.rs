//! An active/standby pair, dsrlb's side: keepalived elects (`crate::keepalived`),
//! dsrlb follows. MASTER in the notify FIFO makes dsrlb active; BACKUP, FAULT, STOP,
//! or no keepalived at all (the FIFO has no writer) make it standby, as does the
//! start. dsrlb's fitness goes the other way, through the track file, and the tap it
//! holds tells keepalived it lives.

use crate::keepalived::{FAULT_VALUE, VRRP_INSTANCE};
use crate::tap::Tap;
use config::Ha;
use dataplane::wire::MacAddr;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Answers ARP for the VIPs and the shared real address, and announces them.
    Active,
    /// Silent for them; forwards what still reaches it; keeps MACs and health current.
    Standby,
}

/// After taking over, how long ARP claims from another MAC count as the peer's.
const TAKEOVER_GRACE: Duration = Duration::from_secs(1);

/// Why dsrlb holds itself unfit: `dsrlb ha drain`, or a graceful stop.
pub const DRAINED: &str = "drained by the operator";
pub const STOPPING: &str = "stopping";

/// Whether dsrlb can serve, as keepalived is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fitness {
    Serving,
    /// Some VIP cannot be served: a lower priority, so a peer that can takes over.
    Degraded(String),
    /// Nothing can be served: keepalived leaves MASTER at once.
    Unfit(String),
}

impl Fitness {
    fn value(&self, penalty: u8) -> i32 {
        match self {
            Fitness::Serving => 0,
            Fitness::Degraded(_) => -i32::from(penalty),
            Fitness::Unfit(_) => FAULT_VALUE,
        }
    }

    fn why(&self) -> &str {
        match self {
            Fitness::Serving => "",
            Fitness::Degraded(why) | Fitness::Unfit(why) => why,
        }
    }
}

/// `dsrlb show ha` for a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairView {
    pub role: Role,
    pub for_secs: u64,
    pub transitions: u64,
    /// Why the role is what it is (keepalived's last word, or its absence).
    pub reason: String,
    /// keepalived's last state for the instance; None while it is not running.
    pub keepalived: Option<String>,
    /// The priority keepalived gave with it (its effective one).
    pub priority: Option<u32>,
    /// What dsrlb last wrote to the track file, and why ("" when serving).
    pub health_value: i32,
    pub health_why: String,
    pub tap: String,
}

impl PairView {
    /// A few lines for `dsrlb ha status`.
    pub fn text(&self) -> String {
        format!(
            "role {} for {}s, {} transition(s): {}\nkeepalived {}{}\nhealth told keepalived: {}{}\n",
            match self.role {
                Role::Active => "active",
                Role::Standby => "standby",
            },
            self.for_secs,
            self.transitions,
            self.reason,
            self.keepalived.as_deref().unwrap_or("not running"),
            self.priority.map_or_else(String::new, |p| format!(" at priority {p}")),
            self.health_value,
            if self.health_why.is_empty() {
                " (serving)".to_owned()
            } else {
                format!(" ({})", self.health_why)
            },
        )
    }
}

#[derive(Debug)]
pub struct Pair {
    fifo: NotifyFifo,
    track_file: PathBuf,
    penalty: u8,
    fitness: Option<Fitness>,
    tap: Tap,
    election: Election,
    /// Why dsrlb says unfit whatever the rest says, so that the peer takes over:
    /// DRAINED or STOPPING.
    held: Option<&'static str>,
    /// The MACs that announced dsrlb's addresses while it was standby: the peer's.
    peer_macs: BTreeSet<MacAddr>,
}

impl Pair {
    /// Unfit in the track file first, then the FIFO, then the tap: keepalived leaves
    /// FAULT only once dsrlb says it can serve. Starts standby.
    pub fn start(ha: &Ha, now: Instant) -> Result<Pair, String> {
        let starting = Fitness::Unfit("starting".to_owned());
        write_track_file(&ha.track_file, starting.value(ha.degraded_penalty))
            .map_err(|e| format!("ha.track_file {}: {e}", ha.track_file.display()))?;
        let fifo = NotifyFifo::open(&ha.notify_fifo)
            .map_err(|e| format!("ha.notify_fifo {}: {e}", ha.notify_fifo.display()))?;
        let tap = Tap::create(&ha.tap).map_err(|e| format!("ha.tap `{}`: {e}", ha.tap))?;
        log::info!(
            "ha: standby until keepalived says MASTER (notify FIFO {}, track file {}, tap {})",
            ha.notify_fifo.display(),
            ha.track_file.display(),
            tap.name()
        );
        Ok(Pair {
            fifo,
            track_file: ha.track_file.clone(),
            penalty: ha.degraded_penalty,
            fitness: Some(starting),
            tap,
            election: Election::new(now),
            held: None,
            peer_macs: BTreeSet::new(),
        })
    }

    pub fn role(&self) -> Role {
        self.election.role
    }

    /// Whether an ARP claim on one of the shared addresses from `mac` (no target's)
    /// is the peer's doing, as it should be: any while standby (the MAC is then
    /// remembered as the peer's), the peer's while active, and any in the first
    /// second after taking over (the peer's last announcements).
    pub fn claim_is_peers(&mut self, mac: MacAddr, now: Instant) -> bool {
        let e = &self.election;
        if e.role == Role::Standby {
            self.peer_macs.insert(mac);
            return true;
        }
        self.peer_macs.contains(&mac) || now.saturating_duration_since(e.since) < TAKEOVER_GRACE
    }

    /// Drained by the operator.
    pub fn drained(&self) -> bool {
        self.held == Some(DRAINED)
    }

    /// Unfit for `why` until `hold(None)`; takes effect at the next `set_fitness`.
    pub fn hold(&mut self, why: Option<&'static str>) {
        self.held = why;
    }

    /// Reads what keepalived said since the last poll; the new role if it changed.
    pub fn poll(&mut self, now: Instant) -> Option<Role> {
        let (lines, writer) = self.fifo.read().unwrap_or_else(|e| {
            log::error!("ha: reading the notify FIFO: {e}");
            (Vec::new(), false)
        });
        self.election.hear(&lines, writer, now)
    }

    /// Tells keepalived (the track file) when dsrlb's fitness changes.
    pub fn set_fitness(&mut self, fitness: Fitness) {
        let fitness = match self.held {
            Some(why) => Fitness::Unfit(why.to_owned()),
            None => fitness,
        };
        if self.fitness.as_ref() == Some(&fitness) {
            return;
        }
        let value = fitness.value(self.penalty);
        match write_track_file(&self.track_file, value) {
            Ok(()) => {
                match &fitness {
                    Fitness::Serving => log::info!("ha: ready to serve (track file 0)"),
                    other => log::warn!("ha: {} (track file {value})", other.why()),
                }
                self.fitness = Some(fitness);
            }
            Err(e) => {
                log::error!(
                    "ha: cannot write the track file {}: {e}",
                    self.track_file.display()
                );
                // Tried again at the next pass.
                self.fitness = None;
            }
        }
    }

    pub fn view(&self, now: Instant) -> PairView {
        let fitness = self.fitness.as_ref();
        let e = &self.election;
        PairView {
            role: e.role,
            for_secs: now.saturating_duration_since(e.since).as_secs(),
            transitions: e.transitions,
            reason: e.reason.clone(),
            keepalived: e.keepalived.as_ref().map(|(s, _)| s.clone()),
            priority: e.keepalived.as_ref().and_then(|(_, p)| *p),
            health_value: fitness.map_or(FAULT_VALUE, |f| f.value(self.penalty)),
            health_why: fitness.map_or("not written".to_owned(), |f| f.why().to_owned()),
            tap: self.tap.name().to_owned(),
        }
    }
}

/// The role keepalived's words give: active on MASTER, standby otherwise.
#[derive(Debug)]
struct Election {
    role: Role,
    since: Instant,
    transitions: u64,
    reason: String,
    /// keepalived's last (state, priority); None while it is not running.
    keepalived: Option<(String, Option<u32>)>,
}

impl Election {
    fn new(now: Instant) -> Election {
        Election {
            role: Role::Standby,
            since: now,
            transitions: 0,
            reason: "starting".to_owned(),
            keepalived: None,
        }
    }

    /// `lines` read from the FIFO, and whether keepalived holds it open; the new
    /// role if it changed.
    fn hear(&mut self, lines: &[String], writer: bool, now: Instant) -> Option<Role> {
        for line in lines {
            if let Some((state, priority)) = instance_state(line) {
                self.keepalived = Some((state.to_owned(), priority));
            }
        }
        if !writer {
            self.keepalived = None;
        }
        let role = match &self.keepalived {
            Some((state, priority)) => {
                self.reason = format!(
                    "keepalived: {state}{}",
                    priority.map_or_else(String::new, |p| format!(" at priority {p}"))
                );
                if state == "MASTER" {
                    Role::Active
                } else {
                    Role::Standby
                }
            }
            None if writer => Role::Standby,
            None => {
                self.reason = "keepalived is not running".to_owned();
                Role::Standby
            }
        };
        if role == self.role {
            return None;
        }
        log::info!(
            "ha: {} ({})",
            match role {
                Role::Active => "active: answering ARP for the VIPs, announcing them",
                Role::Standby => "standby: silent for the VIPs",
            },
            self.reason
        );
        (self.role, self.since) = (role, now);
        self.transitions += 1;
        Some(role)
    }
}

/// (state, priority) from a notify FIFO line about dsrlb's VRRP instance, such as
/// `INSTANCE "dsrlb" MASTER 150`; None for any other line.
fn instance_state(line: &str) -> Option<(&str, Option<u32>)> {
    let mut words = line.split_whitespace();
    if words.next()? != "INSTANCE" || words.next()? != format!("\"{VRRP_INSTANCE}\"") {
        return None;
    }
    let state = words.next()?;
    Some((state, words.next().and_then(|p| p.parse().ok())))
}

/// Writes `value` to `path` whole: to a file beside it, then renamed over it, so
/// keepalived never reads half a number.
fn write_track_file(path: &Path, value: i32) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, format!("{value}\n"))?;
    std::fs::rename(&partial, path)
}

/// keepalived's notify FIFO, read without blocking. keepalived holds it open while
/// it runs, so a read that finds no writer means keepalived is gone.
#[derive(Debug)]
struct NotifyFifo {
    file: File,
    partial: Vec<u8>,
}

impl NotifyFifo {
    /// Opens `path`, made a FIFO first if it does not exist.
    fn open(path: &Path) -> io::Result<NotifyFifo> {
        match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_fifo() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "exists and is not a FIFO",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
                // SAFETY: a NUL-terminated path.
                if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Err(e) => return Err(e),
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        Ok(NotifyFifo {
            file,
            partial: Vec::new(),
        })
    }

    /// The whole lines written since the last read, and whether a writer holds the
    /// FIFO open (an empty FIFO without one reads as its end).
    fn read(&mut self) -> io::Result<(Vec<String>, bool)> {
        let mut buf = [0u8; 4096];
        let writer = loop {
            match self.file.read(&mut buf) {
                Ok(0) => break false,
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line).trim().to_owned());
        }
        // A line longer than keepalived ever writes is noise: dropped.
        if self.partial.len() > 4096 {
            self.partial.clear();
        }
        Ok((lines, writer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A fresh directory under the system's temp dir, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("dsrlb-pair-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Scratch(dir)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn notify_lines_name_the_state_of_dsrlbs_instance_only() {
        for (line, want) in [
            ("INSTANCE \"dsrlb\" MASTER 150", Some(("MASTER", Some(150)))),
            ("INSTANCE \"dsrlb\" BACKUP 100", Some(("BACKUP", Some(100)))),
            ("INSTANCE \"dsrlb\" FAULT", Some(("FAULT", None))),
            ("INSTANCE \"other\" MASTER 150", None),
            ("GROUP \"dsrlb\" MASTER 150", None),
            ("INSTANCE dsrlb MASTER 150", None),
            ("", None),
            ("INSTANCE \"dsrlb\"", None),
        ] {
            assert_eq!(instance_state(line), want, "{line:?}");
        }
    }

    #[test]
    fn the_fifo_gives_whole_lines_and_tells_when_keepalived_is_gone() {
        let dir = Scratch::new("fifo");
        let path = dir.path().join("run/ka.fifo");
        let mut fifo = NotifyFifo::open(&path).unwrap();
        assert!(std::fs::metadata(&path).unwrap().file_type().is_fifo());
        assert_eq!(fifo.read().unwrap(), (vec![], false), "no keepalived yet");
        // keepalived holds the FIFO open for reading and writing.
        let mut writer = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert_eq!(fifo.read().unwrap(), (vec![], true));
        writer
            .write_all(b"INSTANCE \"dsrlb\" BACKUP 100\nINSTANCE \"ds")
            .unwrap();
        let (lines, alive) = fifo.read().unwrap();
        assert_eq!(
            (lines, alive),
            (vec!["INSTANCE \"dsrlb\" BACKUP 100".to_owned()], true)
        );
        writer.write_all(b"rlb\" MASTER 100\n").unwrap();
        let (lines, _) = fifo.read().unwrap();
        assert_eq!(lines, vec!["INSTANCE \"dsrlb\" MASTER 100".to_owned()]);
        drop(writer);
        assert_eq!(fifo.read().unwrap(), (vec![], false), "keepalived gone");
        // A plain file where the FIFO should be is refused.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(NotifyFifo::open(&plain).is_err());
    }

    #[test]
    fn master_makes_it_active_anything_else_standby() {
        let now = Instant::now();
        let mut e = Election::new(now);
        let say = |s: &str| vec![format!("INSTANCE \"dsrlb\" {s}")];
        assert_eq!(
            e.hear(&[], true, now),
            None,
            "keepalived up, silent: standby"
        );
        assert_eq!(e.hear(&say("BACKUP 100"), true, now), None);
        assert_eq!(e.hear(&say("MASTER 100"), true, now), Some(Role::Active));
        assert_eq!(e.reason, "keepalived: MASTER at priority 100");
        assert_eq!(e.hear(&[], true, now), None, "no news: still active");
        assert_eq!(e.hear(&say("FAULT 100"), true, now), Some(Role::Standby));
        // Two states in one read: the last one counts.
        let both = [say("BACKUP 100"), say("MASTER 100")].concat();
        assert_eq!(e.hear(&both, true, now), Some(Role::Active));
        // keepalived killed: its MASTER line, then no writer.
        assert_eq!(e.hear(&[], false, now), Some(Role::Standby));
        assert_eq!(e.reason, "keepalived is not running");
        assert_eq!(e.hear(&say("MASTER 150"), true, now), Some(Role::Active));
        assert_eq!(e.hear(&say("STOP 150"), false, now), Some(Role::Standby));
        assert_eq!(e.transitions, 6);
        // Lines about other instances or in other shapes change nothing.
        e.hear(&say("MASTER 1"), true, now);
        let noise = vec!["INSTANCE \"x\" BACKUP 1".to_owned(), "garbage".to_owned()];
        assert_eq!(e.hear(&noise, true, now), None);
    }

    #[test]
    fn the_track_file_is_replaced_whole() {
        let dir = Scratch::new("track");
        let path = dir.path().join("run/dsrlb/ha-health");
        write_track_file(&path, FAULT_VALUE).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "-254\n");
        write_track_file(&path, 0).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n");
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no partial file left behind");
        assert_eq!(Fitness::Degraded("x".into()).value(50), -50);
    }
}
