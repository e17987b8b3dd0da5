//! BGP scale-out, dsrlb's side: each VIP is announced (its BIRD protocol enabled)
//! only while dsrlb is ready to serve it, withdrawn (disabled) in the control loop's
//! pass that sees it cannot, and on `dsrlb ha drain`. The routes point at a tap that
//! dsrlb holds (`crate::tap`), so BIRD withdraws them all when dsrlb ends, however
//! it ends. BIRD is told the whole state again every second, so a BIRD restarted,
//! or a command lost, is mended within a second.

use crate::bird::{protocol, BirdControl};
use crate::tap::Tap;
use config::Bgp;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How often BIRD is told every VIP's state again.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Vip {
    vip: Ipv4Addr,
    protocol: String,
    /// Whether it should be announced, and why not.
    want: bool,
    why: String,
    /// What BIRD was last told with success (None: not yet, or BIRD unreachable).
    told: Option<bool>,
    since: Instant,
}

/// One VIP's announcement, as `dsrlb ha status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipAnnouncement {
    pub vip: Ipv4Addr,
    pub announced: bool,
    /// Whether BIRD has been told so.
    pub confirmed: bool,
    pub for_secs: u64,
    /// Why it is withdrawn ("" when announced).
    pub why: String,
}

#[derive(Debug)]
pub struct Announcer {
    bird: BirdControl,
    tap: Tap,
    vips: Vec<Vip>,
    drained: bool,
    next_sync: Instant,
    /// The last error from BIRD, logged once until it is reachable again.
    bird_error: Option<String>,
}

impl Announcer {
    /// Withdraws every VIP a BIRD may still announce for a dsrlb that died, then
    /// creates the tap the routes point at: nothing is announced before `update`
    /// finds a VIP ready.
    pub fn start(bgp: &Bgp, vips: &[Ipv4Addr], now: Instant) -> Result<Announcer, String> {
        let bird = BirdControl::new(&bgp.bird_socket);
        for vip in vips {
            if let Err(e) = bird.command(&format!("disable {}", protocol(*vip))) {
                log::info!("bgp: before start, {e} (its config starts every VIP disabled)");
                break;
            }
        }
        let tap = Tap::create(&bgp.tap).map_err(|e| format!("bgp.tap `{}`: {e}", bgp.tap))?;
        log::info!(
            "bgp: tap {} up; VIPs are announced through BIRD at {} while dsrlb serves them{}",
            tap.name(),
            bgp.bird_socket.display(),
            if bgp.drain {
                " (drained: none until `dsrlb ha undrain`)"
            } else {
                ""
            }
        );
        Ok(Announcer {
            bird,
            tap,
            vips: (vips.iter())
                .map(|&vip| Vip {
                    vip,
                    protocol: protocol(vip),
                    want: false,
                    why: "starting".to_owned(),
                    told: None,
                    since: now,
                })
                .collect(),
            drained: bgp.drain,
            next_sync: now,
            bird_error: None,
        })
    }

    pub fn drained(&self) -> bool {
        self.drained
    }

    pub fn set_drained(&mut self, drained: bool) {
        self.drained = drained;
    }

    /// `why_not(vip)`: None if dsrlb is ready to serve it, else why not. Announces
    /// or withdraws at once what changed; every second tells BIRD everything again.
    pub fn update(&mut self, why_not: &dyn Fn(Ipv4Addr) -> Option<String>, now: Instant) {
        let sync = now >= self.next_sync;
        if sync {
            self.next_sync = now + SYNC_INTERVAL;
        }
        for i in 0..self.vips.len() {
            let why = if self.drained {
                Some("drained".to_owned())
            } else {
                why_not(self.vips[i].vip)
            };
            let v = &mut self.vips[i];
            let want = why.is_none();
            if want != v.want {
                log::info!(
                    "bgp: {} {}",
                    if want { "announcing" } else { "withdrawing" },
                    match &why {
                        None => format!("{}: ready to serve it", v.vip),
                        Some(why) => format!("{}: {why}", v.vip),
                    }
                );
                (v.want, v.since) = (want, now);
            }
            v.why = why.unwrap_or_default();
            // Between syncs only changes go to BIRD, and none while it fails (a hung
            // BIRD costs a timeout a second, not one a pass).
            if sync || (v.told != Some(v.want) && self.bird_error.is_none()) {
                self.tell(i);
            }
        }
    }

    /// Tells BIRD VIP `i`'s state; remembers what it took.
    fn tell(&mut self, i: usize) {
        let v = &mut self.vips[i];
        let verb = if v.want { "enable" } else { "disable" };
        match self.bird.command(&format!("{verb} {}", v.protocol)) {
            Ok(_) => {
                v.told = Some(v.want);
                if let Some(e) = self.bird_error.take() {
                    log::info!("bgp: BIRD reachable again (was: {e})");
                }
            }
            Err(e) => {
                v.told = None;
                if self.bird_error.as_ref() != Some(&e) {
                    log::error!("bgp: cannot {verb} {}: {e}; retrying every second", v.vip);
                    self.bird_error = Some(e);
                }
            }
        }
    }

    /// The VIPs after a reload: those kept keep their state; new ones start
    /// withdrawn (BIRD has a protocol for them only if its config was written again
    /// with `dsrlb bird-config` and loaded with `birdc configure`).
    pub fn set_vips(&mut self, vips: &[Ipv4Addr], now: Instant) {
        let mut old = std::mem::take(&mut self.vips);
        for &vip in vips {
            match old.iter().position(|v| v.vip == vip) {
                Some(at) => self.vips.push(old.swap_remove(at)),
                None => self.vips.push(Vip {
                    vip,
                    protocol: protocol(vip),
                    want: false,
                    why: "new".to_owned(),
                    told: None,
                    since: now,
                }),
            }
        }
        for gone in old {
            if gone.told == Some(true) {
                let _ = self.bird.command(&format!("disable {}", gone.protocol));
            }
        }
    }

    pub fn view(&self, now: Instant) -> Vec<VipAnnouncement> {
        self.vips
            .iter()
            .map(|v| VipAnnouncement {
                vip: v.vip,
                announced: v.want,
                confirmed: v.told == Some(v.want),
                for_secs: now.saturating_duration_since(v.since).as_secs(),
                why: v.why.clone(),
            })
            .collect()
    }

    /// The tap the VIPs' routes point at.
    pub fn tap_name(&self) -> &str {
        self.tap.name()
    }

    /// The last error from BIRD while it lasts.
    pub fn bird_error(&self) -> Option<&str> {
        self.bird_error.as_deref()
    }
}
