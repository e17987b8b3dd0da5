//! Target MACs: static ones from the config, the rest learned from the real address
//! by ARP (IPv4 targets) or neighbour solicitation (IPv6 ones; "ARP" below stands
//! for both, and a "reply" for an ARP reply or a neighbour advertisement). Pure bookkeeping over an explicit clock; the control loop sends what
//! `due_requests` asks for and feeds ARP replies to `heard`.
//!
//! Nothing on the data segment can change a target's MAC unless dsrlb asked for it:
//! only a reply to a request dsrlb has outstanding (within `retry` of sending it)
//! counts, and never one naming a broadcast, multicast or zero MAC, one of dsrlb's
//! own, or another target's of the same family (a dual-stack host has an IPv4 and an
//! IPv6 target address at one MAC). A known target's MAC moves only when a new MAC answers
//! two requests in a row alone; two MACs answering one request is a conflict: the
//! MAC in use stays, and the episode is counted and shown until a request is answered
//! by the one MAC alone again.

use dataplane::wire::MacAddr;
use std::collections::HashMap;
use std::net::IpAddr;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MacSource {
    Static,
    #[default]
    Arp,
}

#[derive(Debug, Clone, Default)]
struct Neighbor {
    mac: Option<MacAddr>,
    source: MacSource,
    next_request: Option<Instant>,
    unanswered: u32,
    /// When the request now outstanding went out.
    asked: Option<Instant>,
    /// The MACs that answered it.
    answers: Vec<MacAddr>,
    /// A new MAC that answered the previous request alone: it takes over if it
    /// answers this one alone too.
    candidate: Option<MacAddr>,
    /// The MAC in use and the other one, while two answer the same requests.
    conflict: Option<(MacAddr, MacAddr)>,
}

/// What an ARP reply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A MAC learned, or a move confirmed: the forwarding tables need it.
    Changed,
    /// Nothing for the tables: the MAC in use again, or a move waiting to be confirmed
    /// (the target is asked again at once).
    Unchanged,
    /// A new MAC answered alone; asked again to confirm it.
    Moving { from: MacAddr, to: MacAddr },
    /// Two MACs answered one request: the first of an episode; the MAC in use stays.
    Conflict { kept: MacAddr, other: MacAddr },
    /// Not believed, and why.
    Ignored(Ignored),
}

/// Why an ARP reply changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ignored {
    /// From an address that is no target, or one with a configured MAC.
    NotLearned,
    /// No request to that target is outstanding.
    Unsolicited,
    /// A broadcast, multicast or zero MAC.
    NotUnicast,
    /// One of dsrlb's own MACs.
    Ours,
    /// The MAC of another target of the same address family.
    AnotherTarget,
}

impl Ignored {
    pub const ALL: [Ignored; 5] = [
        Ignored::NotLearned,
        Ignored::Unsolicited,
        Ignored::NotUnicast,
        Ignored::Ours,
        Ignored::AnotherTarget,
    ];

    /// Its label in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Ignored::NotLearned => "not_learned",
            Ignored::Unsolicited => "unsolicited",
            Ignored::NotUnicast => "not_unicast",
            Ignored::Ours => "our_mac",
            Ignored::AnotherTarget => "another_targets_mac",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Neighbors {
    timing: ArpTiming,
    entries: HashMap<IpAddr, Neighbor>,
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
        targets: impl IntoIterator<Item = (IpAddr, Option<MacAddr>)>,
        now: Instant,
    ) {
        let mut next: HashMap<IpAddr, Neighbor> = HashMap::new();
        for (addr, static_mac) in targets {
            let previous = self.entries.remove(&addr).or_else(|| next.remove(&addr));
            let entry = match (static_mac, previous) {
                (Some(mac), _) => Neighbor {
                    mac: Some(mac),
                    source: MacSource::Static,
                    ..Neighbor::default()
                },
                (None, Some(prev)) if prev.source == MacSource::Arp => prev,
                (None, _) => Neighbor {
                    next_request: Some(now),
                    ..Neighbor::default()
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
    pub fn source(&self, addr: IpAddr) -> Option<MacSource> {
        self.entries
            .get(&addr)
            .and_then(|n| n.mac.map(|_| n.source))
    }

    /// The target of `like`'s address family whose MAC is `mac`, if one is known at
    /// it (a dual-stack host is a target of each family at one MAC).
    pub fn holder_of(&self, mac: MacAddr, like: IpAddr) -> Option<IpAddr> {
        self.entries
            .iter()
            .find(|(a, e)| e.mac == Some(mac) && a.is_ipv4() == like.is_ipv4())
            .map(|(addr, _)| *addr)
    }

    pub fn mac(&self, addr: IpAddr) -> Option<MacAddr> {
        self.entries.get(&addr).and_then(|n| n.mac)
    }

    /// An ARP reply from `addr` said it is at `mac`; `ours` are dsrlb's own MACs.
    pub fn heard(&mut self, addr: IpAddr, mac: MacAddr, ours: &[MacAddr], now: Instant) -> Heard {
        if let Some(why) = self.impossible(addr, mac, ours) {
            return Heard::Ignored(why);
        }
        let window = self.timing.retry;
        let refresh = self.timing.refresh;
        let Some(n) = self
            .entries
            .get_mut(&addr)
            .filter(|n| n.source == MacSource::Arp)
        else {
            return Heard::Ignored(Ignored::NotLearned);
        };
        if n.asked.is_none_or(|at| now > at + window) {
            return Heard::Ignored(Ignored::Unsolicited);
        }
        if !n.answers.contains(&mac) {
            n.answers.push(mac);
        }
        if let [first, second, ..] = n.answers[..] {
            n.candidate = None;
            let kept = n.mac.unwrap_or(first);
            let other = if second == kept { first } else { second };
            let fresh = n.conflict.is_none();
            n.conflict = Some((kept, other));
            return if fresh {
                Heard::Conflict { kept, other }
            } else {
                Heard::Unchanged
            };
        }
        n.unanswered = 0;
        match n.mac {
            None => {
                n.mac = Some(mac);
                n.next_request = Some(now + refresh);
                Heard::Changed
            }
            Some(current) if current == mac => {
                n.candidate = None;
                n.next_request = Some(now + refresh);
                Heard::Unchanged
            }
            Some(_) if n.candidate == Some(mac) => {
                n.mac = Some(mac);
                n.candidate = None;
                n.next_request = Some(now + refresh);
                Heard::Changed
            }
            Some(current) => {
                // Asked again at once: the move stands only if this MAC alone answers.
                n.candidate = Some(mac);
                n.next_request = Some(now);
                Heard::Moving {
                    from: current,
                    to: mac,
                }
            }
        }
    }

    /// Why no target at `addr` can be at `mac`, if none can.
    fn impossible(&self, addr: IpAddr, mac: MacAddr, ours: &[MacAddr]) -> Option<Ignored> {
        if !mac.is_unicast() || mac == MacAddr::ZERO {
            Some(Ignored::NotUnicast)
        } else if ours.contains(&mac) {
            Some(Ignored::Ours)
        } else if self.entries.iter().any(|(a, n)| {
            // A dual-stack host has an IPv4 and an IPv6 address at one MAC.
            *a != addr && a.is_ipv4() == addr.is_ipv4() && n.mac == Some(mac)
        }) {
            Some(Ignored::AnotherTarget)
        } else {
            None
        }
    }

    /// Whether a target's MAC is still being asked for the first time: unknown, and
    /// fewer than `max_unanswered` requests have gone unanswered (a target that never
    /// answers stops counting then).
    pub fn any_resolving(&self) -> bool {
        let patience = self.timing.max_unanswered;
        self.entries
            .values()
            .any(|n| n.source == MacSource::Arp && n.mac.is_none() && n.unanswered < patience)
    }

    /// The MAC in use and the other one, while two MACs answer for `addr`.
    pub fn conflict(&self, addr: IpAddr) -> Option<(MacAddr, MacAddr)> {
        self.entries.get(&addr).and_then(|n| n.conflict)
    }

    /// Targets to send an ARP request to now. Also forgets the MAC of a target that
    /// left `max_unanswered` requests unanswered: the returned flag says the
    /// forwarding tables need rebuilding.
    pub fn due_requests(&mut self, now: Instant) -> (Vec<IpAddr>, bool) {
        let mut due = Vec::new();
        let mut changed = false;
        for (addr, n) in self.entries.iter_mut() {
            if n.source == MacSource::Static || n.next_request.is_some_and(|at| now < at) {
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
            // A conflict ends with a request the MAC in use alone answered.
            if n.conflict.is_some() && n.answers.len() == 1 && n.mac == n.answers.first().copied() {
                log::info!(
                    "target {addr}: only {} answers again; the ARP conflict is over",
                    n.answers[0]
                );
                n.conflict = None;
            }
            n.answers.clear();
            n.asked = Some(now);
            n.unanswered = n.unanswered.saturating_add(1);
            n.next_request = Some(now + self.timing.retry);
            due.push(*addr);
        }
        due.sort();
        (due, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;
    const T1: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11));
    const T2: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 12));
    const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);

    fn timing() -> ArpTiming {
        ArpTiming {
            refresh: Duration::from_secs(30),
            retry: Duration::from_secs(1),
            max_unanswered: 3,
        }
    }

    const OURS: [MacAddr; 1] = [MacAddr([2, 0, 0, 0, 0, 2])];
    const MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0c]);
    const FORGED: MacAddr = MacAddr([2, 0x66, 0, 0, 0, 0x66]);

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
        let heard = n.heard(T1, MAC2, &OURS, t0 + Duration::from_secs(1));
        assert_eq!(heard, Heard::Changed, "a MAC appeared");
        let again = n.heard(T1, MAC2, &OURS, t0 + Duration::from_secs(1));
        assert_eq!(again, Heard::Unchanged, "same MAC: nothing changed");
        assert!(
            n.due_requests(t0 + Duration::from_secs(30)).0.is_empty(),
            "refresh is 30 s after the last answer"
        );
        assert_eq!(n.due_requests(t0 + Duration::from_secs(32)).0, vec![T1]);
        assert_eq!(n.mac(T1), Some(MAC2));
    }

    #[test]
    fn only_answers_to_our_requests_with_a_mac_a_target_can_have_count() {
        let t0 = Instant::now();
        let mut n = Neighbors::new(timing());
        n.track([(T1, None), (T2, Some(MAC1))], t0);
        // Before any request: unsolicited, however it looks.
        assert_eq!(
            n.heard(T1, MAC2, &OURS, t0),
            Heard::Ignored(Ignored::Unsolicited)
        );
        n.due_requests(t0);
        for (mac, why) in [
            (MacAddr::BROADCAST, Ignored::NotUnicast),
            (MacAddr([1, 0, 0x5e, 0, 0, 1]), Ignored::NotUnicast),
            (MacAddr::ZERO, Ignored::NotUnicast),
            (OURS[0], Ignored::Ours),
            (MAC1, Ignored::AnotherTarget),
        ] {
            assert_eq!(n.heard(T1, mac, &OURS, t0), Heard::Ignored(why), "{mac}");
        }
        assert_eq!(
            n.heard(T2, FORGED, &OURS, t0),
            Heard::Ignored(Ignored::NotLearned),
            "static"
        );
        let stranger = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 77));
        assert_eq!(
            n.heard(stranger, FORGED, &OURS, t0),
            Heard::Ignored(Ignored::NotLearned)
        );
        // Past the request's window: unsolicited again.
        let late = t0 + Duration::from_millis(1001);
        assert_eq!(
            n.heard(T1, MAC2, &OURS, late),
            Heard::Ignored(Ignored::Unsolicited)
        );
        assert_eq!(n.mac(T1), None);
        assert_eq!(
            n.heard(T1, MAC2, &OURS, t0 + Duration::from_millis(999)),
            Heard::Changed
        );
    }

    #[test]
    fn a_moved_mac_is_confirmed_and_two_answers_are_a_conflict() {
        let t0 = Instant::now();
        let mut n = Neighbors::new(timing());
        n.track([(T1, None)], t0);
        n.due_requests(t0);
        assert_eq!(n.heard(T1, MAC2, &OURS, t0), Heard::Changed);
        // At the refresh a new MAC answers alone: asked again at once, traffic stays.
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(n.due_requests(t1).0, vec![T1]);
        assert_eq!(
            n.heard(T1, FORGED, &OURS, t1),
            Heard::Moving {
                from: MAC2,
                to: FORGED
            }
        );
        assert_eq!(n.mac(T1), Some(MAC2));
        assert_eq!(n.due_requests(t1).0, vec![T1], "asked again at once");
        // The old MAC answers the second request too: a conflict, the MAC stays.
        assert_eq!(n.heard(T1, MAC2, &OURS, t1), Heard::Unchanged);
        assert_eq!(
            n.heard(T1, FORGED, &OURS, t1),
            Heard::Conflict {
                kept: MAC2,
                other: FORGED
            }
        );
        assert_eq!(
            n.heard(T1, FORGED, &OURS, t1),
            Heard::Unchanged,
            "one alarm an episode"
        );
        assert_eq!(
            (n.mac(T1), n.conflict(T1)),
            (Some(MAC2), Some((MAC2, FORGED)))
        );
        // Over once a request is answered by the MAC in use alone.
        let t2 = t1 + Duration::from_secs(30);
        n.due_requests(t2);
        assert_eq!(n.heard(T1, MAC2, &OURS, t2), Heard::Unchanged);
        n.due_requests(t2 + Duration::from_secs(30));
        assert_eq!(n.conflict(T1), None);
        // A real move: the new MAC alone answers two requests in a row.
        let t3 = t2 + Duration::from_secs(60);
        n.due_requests(t3);
        assert_eq!(
            n.heard(T1, FORGED, &OURS, t3),
            Heard::Moving {
                from: MAC2,
                to: FORGED
            }
        );
        n.due_requests(t3);
        assert_eq!(n.heard(T1, FORGED, &OURS, t3), Heard::Changed);
        assert_eq!(n.mac(T1), Some(FORGED));
    }

    #[test]
    fn a_silent_target_loses_its_mac_after_max_unanswered() {
        let t0 = Instant::now();
        let mut n = Neighbors::new(timing());
        n.track([(T1, None)], t0);
        n.due_requests(t0);
        n.heard(T1, MAC1, &OURS, t0);
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
        let static_wins = n.heard(T1, MacAddr([2, 9, 9, 9, 9, 9]), &OURS, t0);
        assert_eq!(static_wins, Heard::Ignored(Ignored::NotLearned));
        assert_eq!(n.mac(T1), Some(MAC1));
        let stranger = n.heard(T2, MacAddr([2, 9, 9, 9, 9, 8]), &OURS, t0);
        assert_eq!(
            stranger,
            Heard::Ignored(Ignored::NotLearned),
            "not a target"
        );
        assert_eq!(n.entries[&T1].source, MacSource::Static);
    }

    #[test]
    fn retracking_keeps_learned_macs() {
        let t0 = Instant::now();
        let mut n = Neighbors::new(timing());
        n.track([(T1, None)], t0);
        n.due_requests(t0);
        n.heard(T1, MAC1, &OURS, t0);
        n.track([(T1, None), (T2, None)], t0);
        assert_eq!(n.mac(T1), Some(MAC1));
        n.track([(T2, None)], t0);
        assert!(!n.entries.contains_key(&T1));
    }

    #[test]
    fn a_dual_stack_host_has_both_its_addresses_at_one_mac() {
        let t0 = Instant::now();
        let t1_v6: IpAddr = "fd00:99::11".parse().unwrap();
        let t2_v6: IpAddr = "fd00:99::12".parse().unwrap();
        let mut n = Neighbors::new(timing());
        n.track([(T1, Some(MAC1)), (t1_v6, None), (t2_v6, None)], t0);
        assert_eq!(n.due_requests(t0).0, vec![t1_v6, t2_v6]);
        assert_eq!(
            n.heard(t1_v6, MAC1, &OURS, t0),
            Heard::Changed,
            "T1's MAC, other family"
        );
        assert_eq!(
            n.heard(t2_v6, MAC1, &OURS, t0),
            Heard::Ignored(Ignored::AnotherTarget),
            "an IPv6 target's MAC claimed for another IPv6 target"
        );
        assert_eq!((n.mac(t1_v6), n.mac(t2_v6)), (Some(MAC1), None));
        assert_eq!(n.holder_of(MAC1, t2_v6), Some(t1_v6), "by family");
        assert_eq!(n.holder_of(MAC1, T2), Some(T1));
    }

    #[test]
    fn a_target_is_resolving_until_it_answers_or_leaves_max_unanswered_unanswered() {
        let t0 = Instant::now();
        let mut n = Neighbors::new(timing());
        n.track([(T1, None), (T2, Some(MAC1))], t0);
        assert!(n.any_resolving(), "T1 not asked yet");
        n.due_requests(t0);
        assert_eq!(n.heard(T1, MAC2, &OURS, t0), Heard::Changed);
        assert!(!n.any_resolving(), "T1 answered; T2 is static");
        let mut silent = Neighbors::new(timing());
        silent.track([(T1, None)], t0);
        for i in 0..3 {
            assert!(silent.any_resolving(), "after {i} unanswered");
            silent.due_requests(t0 + Duration::from_secs(i));
        }
        assert!(
            !silent.any_resolving(),
            "three unanswered: no longer waited for"
        );
    }
}
