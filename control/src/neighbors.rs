//! Target MACs: static ones from the config, the rest learned by ARP from the real
//! address. Pure bookkeeping over an explicit clock; the control loop sends what
//! `due_requests` asks for and feeds ARP replies to `heard`.

use dataplane::wire::MacAddr;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpTiming {
    pub refresh: Duration,
    pub retry: Duration,
    pub max_unanswered: u32,
}

impl From<&config::Arp> for ArpTiming {
    fn from(a: &config::Arp) -> Self {
        ArpTiming {
            refresh: Duration::from_secs(u64::from(a.refresh_secs)),
            retry: Duration::from_millis(u64::from(a.retry_ms)),
            max_unanswered: a.max_unanswered,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacSource {
    Static,
    Arp,
}

#[derive(Debug, Clone)]
struct Neighbor {
    mac: Option<MacAddr>,
    source: MacSource,
    next_request: Instant,
    unanswered: u32,
}

#[derive(Debug, Clone)]
pub struct Neighbors {
    timing: ArpTiming,
    entries: HashMap<Ipv4Addr, Neighbor>,
}

impl Neighbors {
    pub fn new(timing: ArpTiming) -> Self {
        Neighbors {
            timing,
            entries: HashMap::new(),
        }
    }

    /// Sets the targets to track. Known targets keep what was learned; a static MAC
    /// in the config always wins. Targets no longer listed are forgotten.
    pub fn track(
        &mut self,
        targets: impl IntoIterator<Item = (Ipv4Addr, Option<MacAddr>)>,
        now: Instant,
    ) {
        let mut next: HashMap<Ipv4Addr, Neighbor> = HashMap::new();
        for (addr, static_mac) in targets {
            let previous = self.entries.remove(&addr).or_else(|| next.remove(&addr));
            let entry = match (static_mac, previous) {
                (Some(mac), _) => Neighbor {
                    mac: Some(mac),
                    source: MacSource::Static,
                    next_request: now,
                    unanswered: 0,
                },
                (None, Some(prev)) if prev.source == MacSource::Arp => prev,
                (None, _) => Neighbor {
                    mac: None,
                    source: MacSource::Arp,
                    next_request: now,
                    unanswered: 0,
                },
            };
            next.insert(addr, entry);
        }
        self.entries = next;
    }

    pub fn set_timing(&mut self, timing: ArpTiming) {
        self.timing = timing;
    }

    /// How the target's MAC is known: None if unresolved (or not a target).
    pub fn source(&self, addr: Ipv4Addr) -> Option<MacSource> {
        self.entries
            .get(&addr)
            .and_then(|n| n.mac.map(|_| n.source))
    }

    pub fn mac(&self, addr: Ipv4Addr) -> Option<MacAddr> {
        self.entries.get(&addr).and_then(|n| n.mac)
    }

    /// An ARP packet from `addr` said it is at `mac`. Returns true if what the
    /// forwarding tables need changed (a MAC appeared or moved).
    pub fn heard(&mut self, addr: Ipv4Addr, mac: MacAddr, now: Instant) -> bool {
        let Some(n) = self.entries.get_mut(&addr) else {
            return false;
        };
        if n.source == MacSource::Static || !mac.is_unicast() {
            return false;
        }
        let changed = n.mac != Some(mac);
        n.mac = Some(mac);
        n.unanswered = 0;
        n.next_request = now + self.timing.refresh;
        changed
    }

    /// Targets to send an ARP request to now. Also forgets the MAC of a target that
    /// left `max_unanswered` requests unanswered: the returned flag says the
    /// forwarding tables need rebuilding.
    pub fn due_requests(&mut self, now: Instant) -> (Vec<Ipv4Addr>, bool) {
        let mut due = Vec::new();
        let mut changed = false;
        for (addr, n) in self.entries.iter_mut() {
            if n.source == MacSource::Static || now < n.next_request {
                continue;
            }
            if n.mac.is_some() && n.unanswered >= self.timing.max_unanswered {
                log::warn!(
                    "target {addr}: {} ARP requests unanswered; MAC {} forgotten",
                    n.unanswered,
                    n.mac.map_or_else(String::new, |m| m.to_string())
                );
                n.mac = None;
                changed = true;
            }
            n.unanswered = n.unanswered.saturating_add(1);
            n.next_request = now + self.timing.retry;
            due.push(*addr);
        }
        due.sort();
        (due, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 11);
    const T2: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 12);
    const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);

    fn timing() -> ArpTiming {
        ArpTiming {
            refresh: Duration::from_secs(30),
            retry: Duration::from_secs(1),
            max_unanswered: 3,
        }
    }

    #[test]
    fn unknown_targets_are_asked_every_retry_until_they_answer() {
        let t0 = Instant::now();
        let mut n = Neighbors::new(timing());
        n.track([(T1, None), (T2, Some(MAC1))], t0);
        assert_eq!(
            n.due_requests(t0).0,
            vec![T1],
            "static targets are never asked"
        );
        assert!(n.due_requests(t0 + Duration::from_millis(500)).0.is_empty());
        assert_eq!(n.due_requests(t0 + Duration::from_secs(1)).0, vec![T1]);
        assert!(
            n.heard(T1, MAC1, t0 + Duration::from_secs(1)),
            "a MAC appeared"
        );
        assert!(
            !n.heard(T1, MAC1, t0 + Duration::from_secs(2)),
            "same MAC: nothing changed"
        );
        assert!(
            n.due_requests(t0 + Duration::from_secs(30)).0.is_empty(),
            "refresh is 30 s after the last answer"
        );
        assert_eq!(n.due_requests(t0 + Duration::from_secs(32)).0, vec![T1]);
        assert_eq!(n.mac(T1), Some(MAC1));
    }

    #[test]
    fn a_silent_target_loses_its_mac_after_max_unanswered() {
        let t0 = Instant::now();
        let mut n = Neighbors::new(timing());
        n.track([(T1, None)], t0);
        n.due_requests(t0);
        n.heard(T1, MAC1, t0);
        let mut t = t0 + Duration::from_secs(30);
        for _ in 0..3 {
            let (due, changed) = n.due_requests(t);
            assert_eq!((due, changed), (vec![T1], false));
            t += Duration::from_secs(1);
        }
        let (due, changed) = n.due_requests(t);
        assert_eq!(due, vec![T1], "keeps asking");
        assert!(changed, "the MAC was forgotten");
        assert_eq!(n.mac(T1), None);
    }

    #[test]
    fn static_mac_wins_and_untracked_addresses_are_ignored() {
        let t0 = Instant::now();
        let mut n = Neighbors::new(timing());
        n.track([(T1, Some(MAC1))], t0);
        assert!(!n.heard(T1, MacAddr([2, 9, 9, 9, 9, 9]), t0));
        assert_eq!(n.mac(T1), Some(MAC1));
        assert!(!n.heard(T2, MAC1, t0), "not a target");
        assert_eq!(n.entries[&T1].source, MacSource::Static);
    }

    #[test]
    fn retracking_keeps_learned_macs() {
        let t0 = Instant::now();
        let mut n = Neighbors::new(timing());
        n.track([(T1, None)], t0);
        n.heard(T1, MAC1, t0);
        n.track([(T1, None), (T2, None)], t0);
        assert_eq!(n.mac(T1), Some(MAC1));
        n.track([(T2, None)], t0);
        assert!(!n.entries.contains_key(&T1));
    }
}
