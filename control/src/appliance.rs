//! The control state and what the control loop does with it: ARP (announcements,
//! target MAC resolution), health probes, operators' drain/enable/disable, reload,
//! and the forwarding snapshots built from all of it. The façade over the dataplane:
//! it holds no DPDK handle and reaches the workers only through `runtime::Dataplane`,
//! so it is tested against a stand-in.

use crate::accounting::{Accounting, Totals};
use crate::announcer::Announcer;
use crate::api::{AdminAction, HaAction, HaView, Reply};
use crate::doctor::Doctor;
use crate::episodes::Episodes;
use crate::health::{Change, Health, ProbeSource, ProbeTarget, Prober};
use crate::marks::Marks;
use crate::neighbors::{ArpTiming, Heard, Ignored, Neighbors};
use crate::pair::{Fitness, Pair, Role, DRAINED, STOPPING};
use crate::runtime::{Dataplane, Frame};
use crate::spec::{arp_answers, snapshot_spec, tracked_targets, AdminStates};
use config::Config;
use dataplane::forward::{arp_sender, dad_probe, ndp_sender};
use dataplane::maglev::BuildError;
use dataplane::snapshot::{Snapshot, SnapshotSpec};
use dataplane::wire::mld::{self, MldReportRepr};
use dataplane::wire::{ipv6, ArpOperation, ArpRepr, MacAddr, NdpRepr};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// ARP from the data segment that dsrlb did not simply believe.
#[derive(Debug)]
pub struct ArpBook {
    /// Replies ignored, by why.
    pub ignored: BTreeMap<Ignored, u64>,
    /// Episodes of two MACs answering for one target.
    pub conflicts: u64,
    /// ARP frames from other MACs for dsrlb's own addresses.
    pub address_claims: u64,
    /// The same, heard while a pair's standby: its peer announcing them, as it should.
    pub peer_announcements: u64,
    /// Which (address, kind) has been logged in its current episode.
    logged: Episodes<(IpAddr, &'static str)>,
}

impl Default for ArpBook {
    fn default() -> Self {
        ArpBook {
            ignored: BTreeMap::new(),
            conflicts: 0,
            address_claims: 0,
            peer_announcements: 0,
            logged: Episodes::new(Duration::from_secs(60)),
        }
    }
}

pub struct Appliance {
    pub(crate) config: Config,
    pub(crate) config_path: PathBuf,
    pub(crate) neighbors: Neighbors,
    pub(crate) prober: Prober,
    /// (service index, target address) of each prober slot.
    pub(crate) probed: Vec<(usize, IpAddr)>,
    /// Whether each service had a target for new flows at the last publication.
    serving: Vec<bool>,
    /// Targets an operator drained or disabled, by address.
    pub(crate) admin: AdminStates,
    pub(crate) accounting: Accounting,
    pub(crate) started: Instant,
    pub(crate) reloads: u64,
    pub(crate) reloads_refused: u64,
    /// Frames the workers punted to the control thread.
    pub(crate) punted: u64,
    /// Every target's first probe and first MAC resolution have been seen since
    /// start (see `SETTLING`): from then on the tables change only as the targets do.
    settled: bool,
    /// What ARP from the data segment was refused, contested or claimed.
    pub(crate) arp: ArpBook,
    /// The in-path probes and who answers ARP for the VIPs.
    pub(crate) doctor: Doctor,
    /// BGP scale-out: the VIPs' announcements through BIRD (`start_announcing`).
    pub(crate) announcer: Option<Announcer>,
    /// An active/standby pair: keepalived's election, followed (`start_announcing`).
    pub(crate) pair: Option<Pair>,
    next_announcement: Instant,
    /// Gratuitous ARPs still to send quickly after becoming active.
    garp_burst_left: u8,
    /// Became active since the last tick: the burst is due once the tables say so.
    took_over: bool,
    /// Something changed that the published tables do not show yet.
    stale: bool,
    /// The services whose tables carry marks, and when those may go.
    marks: Marks,
}

/// The longest the control loop waits for probe I/O in a pass, so that punted ARP,
/// questions and signals are seen within it, and a table build's end too.
pub const TICK: Duration = Duration::from_millis(10);

/// The longest a stopping active waits for its peer to take the VIPs.
const HAND_OVER_PATIENCE: Duration = Duration::from_secs(1);

/// After a takeover, how long the DSR doctor waits before it probes again.
const DOCTOR_SETTLE: Duration = Duration::from_secs(1);

/// Between the gratuitous ARPs of a takeover's burst.
const GARP_BURST_GAP: Duration = Duration::from_millis(100);

impl Appliance {
    /// The control state for `config`, and the first forwarding snapshot: every
    /// target counts as healthy until probed, and none has a MAC unless configured.
    pub fn new(config: Config, config_path: PathBuf) -> Result<(Appliance, Snapshot), String> {
        let now = Instant::now();
        let mut neighbors = Neighbors::new(ArpTiming::from(&config.arp));
        neighbors.track(tracked_targets(&config), now);
        let (prober, probed) =
            build_prober(&config).map_err(|e| format!("starting the health prober: {e}"))?;
        let admin = AdminStates::new();
        // In a pair, standby until keepalived says otherwise.
        let arp = arp_answers(&config, false);
        let spec = snapshot_spec(&config, &neighbors, |_, _| true, &admin, arp);
        let snapshot = Snapshot::build(&spec, None)
            .map_err(|e| format!("building the forwarding tables: {e}"))?;
        // Before any worker counts: every target starts at zero.
        let mut accounting = Accounting::default();
        accounting.observe(&snapshot, &Totals(&[]));
        let doctor = Doctor::new(&config, now);
        let appliance = Appliance {
            serving: serving(&snapshot),
            config,
            config_path,
            neighbors,
            prober,
            probed,
            admin,
            accounting,
            started: now,
            reloads: 0,
            reloads_refused: 0,
            punted: 0,
            settled: false,
            arp: ArpBook::default(),
            doctor,
            announcer: None,
            pair: None,
            next_announcement: now,
            garp_burst_left: 0,
            took_over: false,
            stale: false,
            marks: Marks::default(),
        };
        Ok((appliance, snapshot))
    }

    /// One pass of the control loop: waits up to `tick` for probe I/O, takes what the
    /// workers punted (ARP replies that resolve targets), asks for the MACs that are
    /// due, and publishes new tables in the same pass if anything changed; announces
    /// the addresses when their interval is up.
    pub fn tick(&mut self, dp: &mut dyn Dataplane, tick: Duration) {
        self.keep_up(dp, tick);
        self.stale |= self.marks_settled(dp);
        if self.stale {
            self.republish(dp);
        }
        if std::mem::take(&mut self.took_over) {
            // ARP answered first (just published), then announced: the burst.
            self.garp_burst_left = self.config.ha.as_ref().map_or(0, |ha| ha.garp_burst);
            self.next_announcement = Instant::now();
            self.announce_when_due(dp);
        }
        self.update_announcements(dp);
    }

    /// The label of the service at `index` in the running config (empty if none).
    fn service_label(&self, index: usize) -> String {
        (self.config.services.get(index)).map_or_else(String::new, |s| s.label())
    }

    /// Whether a service's marks may go now (see `marks`).
    fn marks_settled(&mut self, dp: &dyn Dataplane) -> bool {
        // Most passes: no marks anywhere, and no snapshot to read.
        if !self.marks.watching() {
            return false;
        }
        let quiet = Duration::from_secs(u64::from(self.config.flows.tcp_established_timeout_secs));
        let workers = dp.workers();
        let kept = |slot: u16| -> u64 {
            (workers.iter())
                .map(|w| w.stats.slots.service_kept(slot))
                .sum()
        };
        let snapshot = dp.snapshot();
        let due = self.marks.check(&snapshot, kept, quiet, Instant::now());
        for service in &due {
            let label = self.service_label(service.index);
            log::info!(
                "service {label}: {} changed slots settled (no flow depends on them)",
                service.steering.marked()
            );
        }
        !due.is_empty()
    }

    /// With [bgp]: once the dataplane forwards, the tap and BIRD's VIPs, announced
    /// from the next pass on as they are ready. With [ha]: the track file, the notify
    /// FIFO and the tap keepalived follows; standby until it says MASTER.
    pub fn start_announcing(&mut self) -> Result<(), String> {
        if let Some(bgp) = &self.config.bgp {
            let vips = self.config.vips_v4();
            self.announcer = Some(Announcer::start(bgp, &vips, Instant::now())?);
        }
        if let Some(ha) = &self.config.ha {
            self.pair = Some(Pair::start(ha, Instant::now())?);
        }
        Ok(())
    }

    /// A graceful stop of a pair's active: tells keepalived it cannot serve, and keeps
    /// forwarding until the peer announces the VIPs (or HAND_OVER_PATIENCE passes),
    /// so that frames in between are not lost. How long it took, if it was active.
    pub fn hand_over(&mut self, dp: &mut dyn Dataplane) -> Option<Duration> {
        let pair = self.pair.as_mut()?;
        if pair.role() != Role::Active {
            return None;
        }
        let start = Instant::now();
        pair.hold(Some(STOPPING));
        pair.set_fitness(Fitness::Serving);
        let heard = self.arp.peer_announcements;
        while start.elapsed() < HAND_OVER_PATIENCE {
            self.tick(dp, TICK);
            if !self.is_active() && self.arp.peer_announcements > heard {
                break;
            }
        }
        let took = start.elapsed();
        log::info!("ha: handed over in {took:?} (stopping)");
        Some(took)
    }

    /// Whether this appliance answers for the VIPs: alone, or a pair's active.
    fn is_active(&self) -> bool {
        self.pair.as_ref().is_none_or(|p| p.role() == Role::Active)
    }

    /// Takes keepalived's news: a role change makes the tables stale (what ARP is
    /// answered); becoming active also calls for the announcement burst, which
    /// `tick` sends once the tables answer ARP.
    fn follow_election(&mut self) {
        let Some(pair) = &mut self.pair else {
            return;
        };
        match pair.poll(Instant::now()) {
            None => {}
            Some(Role::Active) => {
                self.stale = true;
                self.took_over = true;
                // The targets answer the real address at the peer's MAC until the
                // burst of gratuitous ARPs has moved them.
                self.doctor.defer(Instant::now() + DOCTOR_SETTLE);
            }
            Some(Role::Standby) => {
                self.stale = true;
                self.took_over = false;
                // Its answers would reach the peer: nothing in flight counts.
                self.doctor.pause();
            }
        }
    }

    /// Each VIP announced while dsrlb can serve it: every port's link up, every
    /// target's first probe and first MAC resolution done (until then its tables may
    /// differ from a settled peer's, which would move flows the peer carries), and a
    /// usable target in one of its services.
    fn update_announcements(&mut self, dp: &dyn Dataplane) {
        self.settled |= !self.prober.any_unknown() && !self.neighbors.any_resolving();
        let settling = !self.settled;
        if let Some(pair) = &mut self.pair {
            let probing = self.prober.any_unknown();
            pair.set_fitness(fitness(
                &self.config,
                &self.serving,
                dp,
                probing || settling,
            ));
        }
        let Some(announcer) = &mut self.announcer else {
            return;
        };
        let links_up = dp.links_up() && dp.workers_running();
        let config = &self.config;
        let serving = &self.serving;
        let why_not = |vip: Ipv4Addr| -> Option<String> {
            let vip = IpAddr::V4(vip);
            if !links_up {
                return Some("a port's link is down, or a worker stopped".to_owned());
            }
            if settling {
                return Some(SETTLING.to_owned());
            }
            (!vip_served(config, serving, vip))
                .then(|| "no service of it has a usable target".to_owned())
        };
        announcer.update(&why_not, Instant::now());
    }

    /// `tick` but for publishing: probes, ARP and announcements. What changes the
    /// tables marks them stale. Also runs while tables are built (`build_aside`).
    fn keep_up(&mut self, dp: &mut dyn Dataplane, wait: Duration) {
        for change in &self.prober.poll(wait) {
            log_health_change(&self.prober, change);
            self.stale = true;
        }
        self.follow_election();
        let now = Instant::now();
        let (mut heard, mut answers, mut probed) = (Vec::new(), Vec::new(), Vec::new());
        self.punted += dp.take_punts(&mut |frame| {
            let neighbour = arp_sender(frame)
                .map(|(operation, addr, mac)| (operation, IpAddr::V4(addr), mac))
                .or_else(|| ndp_sender(frame));
            match (neighbour, dad_probe(frame)) {
                (Some(neighbour), _) => heard.push(neighbour),
                (None, Some(addr)) => probed.push(addr),
                (None, None) => answers.push(frame.to_vec()),
            }
        });
        for addr in probed {
            self.defend(dp, addr, now);
        }
        let ours = if heard.is_empty() {
            Vec::new()
        } else {
            dp.port_macs()
        };
        for (operation, addr, mac) in heard {
            self.stale |= self.arp_heard(operation, addr, mac, &ours, now);
        }
        let (due, forgot) = self.neighbors.due_requests(now);
        self.stale |= forgot;
        for target in due {
            self.resolve(dp, target);
        }
        let send = &mut |vlan, build: &dyn Fn(MacAddr) -> Frame| {
            Self::send_arp(dp, "a DSR probe", &[vlan], build)
        };
        for frame in &answers {
            self.stale |= self.doctor.answer(frame, now, send);
        }
        let neighbors = &self.neighbors;
        if self.is_active() {
            // A standby's probes would be answered to its peer, which holds the
            // real address: its verdicts wait until it is active.
            self.stale |= self
                .doctor
                .tick(now, &|addr| neighbors.mac(addr.into()), send);
        }
        self.announce_when_due(dp);
    }

    /// Announces when due: every garp_interval_secs, and GARP_BURST_GAP apart while a
    /// burst after a takeover lasts.
    fn announce_when_due(&mut self, dp: &dyn Dataplane) {
        let now = Instant::now();
        if now < self.next_announcement {
            return;
        }
        self.announce(dp);
        self.next_announcement = if self.garp_burst_left > 1 {
            self.garp_burst_left -= 1;
            now + GARP_BURST_GAP
        } else {
            self.garp_burst_left = 0;
            now + Duration::from_secs(u64::from(self.config.arp.garp_interval_secs))
        };
    }

    /// Builds the tables for `spec` on a thread of its own while the control loop
    /// keeps up with probes and ARP (a large service's Maglev table takes seconds to
    /// fill); what changes meanwhile marks the tables stale again. Builds here if no
    /// thread can be started.
    fn build_aside(
        &mut self,
        dp: &mut dyn Dataplane,
        spec: &SnapshotSpec,
        previous: &Snapshot,
    ) -> Result<Snapshot, BuildError> {
        let settle = self.marks.due().clone();
        // Until the appliance has settled, its tables fill in as probes and MACs come
        // (no flow predates that); marks from it would send a flow taken over
        // mid-stream from a settled peer to a target the peer never chose.
        let unsettled = !self.settled;
        std::thread::scope(|scope| {
            let build = || {
                Snapshot::build_settling(spec, Some(previous), &|key| {
                    unsettled || settle.contains(&key)
                })
            };
            let job = match std::thread::Builder::new()
                .name("dsrlb-tables".into())
                .spawn_scoped(scope, build)
            {
                Ok(job) => job,
                Err(e) => {
                    log::warn!("cannot start a thread to build the tables ({e}); building them in the control loop");
                    return build();
                }
            };
            while !job.is_finished() {
                self.keep_up(dp, TICK);
            }
            // A panic in the build is the control thread's, as if it had built here.
            job.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// An ARP frame (or neighbour advertisement, as a reply) a worker punted: a claim
    /// on one of dsrlb's addresses by another host, or a reply that may resolve a
    /// target. True if the tables need it. What traffic can trigger is logged once an
    /// episode (`episodes`) and counted.
    fn arp_heard(
        &mut self,
        operation: ArpOperation,
        addr: IpAddr,
        mac: MacAddr,
        ours: &[MacAddr],
        now: Instant,
    ) -> bool {
        if self.own_addresses().contains(&addr) {
            if !ours.contains(&mac) {
                self.address_claimed(addr, mac, now);
            }
            return false;
        }
        if operation != ArpOperation::Reply {
            return false;
        }
        let book = &mut self.arp;
        match self.neighbors.heard(addr, mac, ours, now) {
            Heard::Changed => {
                let by = if addr.is_ipv4() {
                    "ARP"
                } else {
                    "neighbour discovery"
                };
                log::info!("target {addr} is at {mac} (learned by {by})");
                book.logged.end_where(|(a, _)| *a == addr);
                true
            }
            Heard::Unchanged => {
                book.logged.end_where(|(a, _)| *a == addr);
                false
            }
            Heard::Moving { from, to } => {
                if book.logged.starts((addr, "moving"), now) {
                    log::info!("target {addr} answered from {to}, not {from}: asking again before its traffic moves");
                }
                false
            }
            Heard::Conflict { kept, other } => {
                book.conflicts += 1;
                log::warn!(
                    "target {addr}: ARP conflict, {kept} and {other} both answer for it; its traffic stays on {kept} until one alone answers (dsrlb show targets, dsrlb_target_mac_conflict)"
                );
                false
            }
            Heard::Ignored(why) => {
                *book.ignored.entry(why).or_default() += 1;
                if why != Ignored::NotLearned && book.logged.starts((addr, why.name()), now) {
                    log::warn!(
                        "target {addr}: ignoring an ARP reply that says it is at {mac} ({}); more are counted (dsrlb_arp_ignored_total)",
                        why.name()
                    );
                }
                false
            }
        }
    }

    /// Another host said by ARP that `addr`, an address of dsrlb's, is at `mac`:
    /// counted, logged once an episode, and for a VIP kept by the doctor (ARP flux).
    fn address_claimed(&mut self, addr: IpAddr, mac: MacAddr, now: Instant) {
        let is_target = self.neighbors.holder_of(mac, addr).is_some();
        if let Some(pair) = self.pair.as_mut().filter(|_| !is_target) {
            if pair.claim_is_peers(mac, now) {
                self.arp.peer_announcements += 1;
                return;
            }
        }
        let book = &mut self.arp;
        book.address_claims += 1;
        let is_vip = !self.config.appliance.is_own(addr);
        if let (IpAddr::V4(vip), true) = (addr, is_vip) {
            self.doctor.flux_seen(vip, mac, now);
        }
        if !book.logged.starts((addr, "claim"), now) {
            return;
        }
        let host = self
            .neighbors
            .holder_of(mac, addr)
            .map_or_else(|| mac.to_string(), |t| format!("target {t} ({mac})"));
        match (is_vip, addr) {
            (true, IpAddr::V4(_)) => log::warn!(
                "ARP flux: {host} claims {addr}, a VIP of dsrlb's, by ARP (answering or announcing it), so clients may reach it without dsrlb; on that host: sysctl net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 (scripts/target-setup.sh {addr}); further claims are counted (dsrlb_arp_address_claims_total)"
            ),
            (true, IpAddr::V6(_)) => log::warn!(
                "{host} claims {addr}, a VIP of dsrlb's, by neighbour advertisement, so clients may reach it without dsrlb; on that host the VIP belongs on lo alone, as a /128 (scripts/target-setup.sh {addr}); further claims are counted (dsrlb_arp_address_claims_total)"
            ),
            (false, _) => log::warn!(
                "another host ({host}) claims {addr}, an address of dsrlb's, by ARP or neighbour advertisement: a duplicate address or a second balancer on the segment; further claims are counted (dsrlb_arp_address_claims_total)"
            ),
        }
    }

    /// Another host probes `addr`, an IPv6 address of dsrlb's, for duplicate address
    /// detection (about to take it): advertised to all nodes, which makes it give
    /// the address up; counted and logged once an episode like a claim by ARP.
    fn defend(&mut self, dp: &dyn Dataplane, addr: Ipv6Addr, now: Instant) {
        self.advertise(dp, addr);
        let book = &mut self.arp;
        book.address_claims += 1;
        if book
            .logged
            .starts((addr.into(), "duplicate address probe"), now)
        {
            log::warn!(
                "another host probes {addr}, an address of dsrlb's, for duplicate address detection (it would take it): advertised to all nodes so that it does not; further probes are counted (dsrlb_arp_address_claims_total)"
            );
        }
    }

    /// An unsolicited neighbour advertisement of `addr` (overriding, with the port's
    /// MAC) to all nodes, on every port and VLAN it is on: IPv6's gratuitous ARP.
    fn advertise(&self, dp: &dyn Dataplane, addr: Ipv6Addr) {
        let vlans = self.vlans_of(addr.into());
        Self::send_arp(
            dp,
            "an unsolicited neighbour advertisement",
            &vlans,
            &|mac| {
                let advert = NdpRepr::Advert {
                    flags: dataplane::wire::ndp::FLAG_OVERRIDE,
                    target: addr,
                    mac: Some(mac),
                };
                advert.frame(mac, (addr, ipv6::ALL_NODES)).to_vec()
            },
        );
    }

    /// An MLDv2 report of the solicited-node groups of dsrlb's IPv6 addresses, from
    /// each port's link-local address, on every VLAN: a switch that snoops multicast
    /// then passes dsrlb the solicitations for them. Sent with each announcement,
    /// well within a snooping switch's listener interval (260 s by default).
    fn report_listening(&self, dp: &dyn Dataplane) {
        let Some(real6) = self.config.appliance.address6 else {
            return;
        };
        let mut groups: Vec<Ipv6Addr> = (self.own_addresses().into_iter())
            .filter_map(|addr| match addr {
                IpAddr::V6(addr) => Some(ipv6::solicited_node(addr)),
                IpAddr::V4(_) => None,
            })
            .collect();
        groups.sort_unstable();
        groups.dedup();
        let report = MldReportRepr { groups: &groups };
        let vlans = self.vlans_of(real6.into());
        Self::send_arp(dp, "an MLD report", &vlans, &|mac| {
            report.frame(mac, mld::link_local(mac))
        });
    }

    /// Sends an ARP frame `build` makes from each port's MAC on every port, once on
    /// each of `vlans` (`None`: the port's own).
    fn send_arp(
        dp: &dyn Dataplane,
        what: &str,
        vlans: &[Option<u16>],
        build: &dyn Fn(MacAddr) -> Frame,
    ) {
        for &vlan in vlans {
            for (port, sent) in dp.send_on_every_port(vlan, build) {
                if !sent {
                    log::warn!("port {port}: could not send {what}");
                }
            }
        }
    }

    /// The VLANs `addr` is announced or resolved on, each once (`None`: the port's
    /// own): a VIP's and a target's, those of the services that name it; the real
    /// addresses', the port's and every service's, since targets and clients on any
    /// of them may ask for it.
    fn vlans_of(&self, addr: IpAddr) -> Vec<Option<u16>> {
        let services = &self.config.services;
        let mut vlans: Vec<Option<u16>> = if self.config.appliance.is_own(addr) {
            std::iter::once(None)
                .chain(services.iter().map(|s| s.vlan))
                .collect()
        } else {
            (services.iter())
                .filter(|s| s.vip == addr || s.targets.iter().any(|t| t.address == addr))
                .map(|s| s.vlan)
                .collect()
        };
        vlans.sort_unstable();
        vlans.dedup();
        if vlans.is_empty() {
            vlans.push(None);
        }
        vlans
    }

    /// The real addresses and every VIP, once each.
    fn own_addresses(&self) -> Vec<IpAddr> {
        let appliance = &self.config.appliance;
        let mut addrs = self.config.vips();
        addrs.push(appliance.address.into());
        addrs.extend(appliance.address6.map(IpAddr::V6));
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// Gratuitous ARP for every address of dsrlb's, then "who has VIP?" from the
    /// real address for each VIP: any answer comes from a host that answers ARP for
    /// it (ARP flux), which the doctor names.
    pub fn announce(&self, dp: &dyn Dataplane) {
        if !self.is_active() {
            // The peer holds the VIPs and the shared real address.
            return;
        }
        if self.config.bgp.is_some() {
            // The router routes the VIPs to the real address: only it is announced.
            let real = self.config.appliance.address;
            let vlans = self.vlans_of(real.into());
            Self::send_arp(dp, "a gratuitous ARP", &vlans, &|mac| {
                ArpRepr::gratuitous(mac, real)
                    .frame(MacAddr::BROADCAST)
                    .to_vec()
            });
            return;
        }
        for addr in self.own_addresses() {
            let vlans = self.vlans_of(addr);
            match addr {
                IpAddr::V4(addr) => Self::send_arp(dp, "a gratuitous ARP", &vlans, &|mac| {
                    ArpRepr::gratuitous(mac, addr)
                        .frame(MacAddr::BROADCAST)
                        .to_vec()
                }),
                IpAddr::V6(addr) => self.advertise(dp, addr),
            }
        }
        self.report_listening(dp);
        let real = self.config.appliance.address;
        for vip in self.config.vips_v4() {
            let vlans = self.vlans_of(vip.into());
            Self::send_arp(dp, "an ARP question for a VIP", &vlans, &|mac| {
                ArpRepr::request((mac, real), vip)
                    .frame(MacAddr::BROADCAST)
                    .to_vec()
            });
        }
    }

    fn resolve(&self, dp: &dyn Dataplane, target: IpAddr) {
        let vlans = self.vlans_of(target);
        match target {
            IpAddr::V4(target) => {
                // In a pair the real address is shared: asked from it, a target would
                // point its entry for it at whichever appliance asked last. An ARP
                // probe (from 0.0.0.0) is answered to the asker's MAC and changes no
                // entry.
                let real = if self.config.ha.is_some() {
                    Ipv4Addr::UNSPECIFIED
                } else {
                    self.config.appliance.address
                };
                Self::send_arp(dp, "an ARP request", &vlans, &|mac| {
                    ArpRepr::request((mac, real), target)
                        .frame(MacAddr::BROADCAST)
                        .to_vec()
                });
            }
            IpAddr::V6(target) => {
                // `check` refuses an IPv6 service without the IPv6 real address.
                let Some(real) = self.config.appliance.address6 else {
                    return;
                };
                Self::send_arp(dp, "a neighbour solicitation", &vlans, &|mac| {
                    let solicit = NdpRepr::Solicit {
                        target,
                        mac: Some(mac),
                    };
                    solicit
                        .frame(mac, (real, ipv6::solicited_node(target)))
                        .to_vec()
                });
            }
        }
    }

    pub(crate) fn health_of(&self, service: usize, addr: IpAddr) -> Health {
        health_in(&self.prober, &self.probed, service, addr)
    }

    /// Rebuilds the forwarding tables from the config and what is known now.
    fn republish(&mut self, dp: &mut dyn Dataplane) {
        self.stale = false;
        let current = dp.snapshot();
        let spec = snapshot_spec(
            &self.config,
            &self.neighbors,
            |service, addr| {
                self.health_of(service, addr).is_usable() && self.doctor.passes(service, addr)
            },
            &self.admin,
            arp_answers(&self.config, self.is_active()),
        );
        match self.build_aside(dp, &spec, &current) {
            Ok(next) => {
                drop(current);
                self.publish(dp, next);
            }
            Err(e) => {
                log::error!("cannot rebuild the forwarding tables, keeping the current ones: {e}")
            }
        }
    }

    /// Swaps in `next`, then accounts for it and logs services that lost or regained
    /// their last usable target.
    fn publish(&mut self, dp: &mut dyn Dataplane, next: Snapshot) {
        let now_serving = serving(&next);
        let next = Arc::new(next);
        let previous = dp.snapshot();
        if dp.publish(Arc::clone(&next)) {
            log::debug!("forwarding tables republished");
        }
        self.marks.published(&previous, &next, Instant::now());
        drop(previous);
        self.accounting.observe(&next, &Totals(dp.workers()));
        for (si, is) in serving_changes(&self.serving, &now_serving) {
            let label = self.service_label(si);
            if is {
                log::info!("service {label} has a usable target again");
            } else {
                log::error!("service {label} has no usable target: its packets are dropped (no_usable_target)");
            }
        }
        self.serving = now_serving;
    }

    /// Applies the config file again, whole or not at all. Refused (and the running
    /// config kept) if the file is invalid or changes what needs a restart.
    fn reload(&mut self, dp: &mut dyn Dataplane) -> Result<String, String> {
        let path = self.config_path.display().to_string();
        let next = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        let restart: Vec<String> = self
            .config
            .needs_restart_for(&next)
            .iter()
            .map(|e| format!("  {e}\n"))
            .collect();
        if !restart.is_empty() {
            return Err(format!(
                "{path}: {} change(s) need a restart:\n{}",
                restart.len(),
                restart.concat()
            ));
        }
        let (mut prober, probed) =
            build_prober(&next).map_err(|e| format!("starting the health prober: {e}"))?;
        prober.carry_over(&self.prober);
        let mut admin = self.admin.clone();
        admin.retain(|addr, _| {
            next.services
                .iter()
                .any(|s| s.targets.iter().any(|t| t.address == *addr))
        });
        let mut doctor = Doctor::new(&next, Instant::now());
        doctor.carry_over(&self.doctor);
        let spec = snapshot_spec(
            &next,
            &self.neighbors_for(&next),
            |service, addr| {
                health_in(&prober, &probed, service, addr).is_usable()
                    && doctor.passes(service, addr)
            },
            &admin,
            arp_answers(&next, self.is_active()),
        );
        let current = dp.snapshot();
        let snapshot = self
            .build_aside(dp, &spec, &current)
            .map_err(|e| format!("{path}: cannot build the forwarding tables: {e}"))?;
        drop(current);
        // Probes and ARP went on under the running config while the tables were
        // built: take what they found. If it changes the tables, they are stale and
        // the next tick rebuilds them.
        prober.carry_over(&self.prober);
        doctor.carry_over(&self.doctor);
        let neighbors = self.neighbors_for(&next);
        let summary = describe_changes(&self.config, &next);
        self.config = next;
        self.prober = prober;
        self.probed = probed;
        self.neighbors = neighbors;
        self.admin = admin;
        self.doctor = doctor;
        if let Some(announcer) = &mut self.announcer {
            announcer.set_vips(&self.config.vips_v4(), Instant::now());
        }
        // Indices follow the new config: report every service without a target anew.
        self.serving = vec![true; self.config.services.len()];
        self.publish(dp, snapshot);
        // New VIPs are announced now, not at the next interval.
        self.announce(dp);
        Ok(format!("{path}: reloaded ({summary})"))
    }

    /// The targets' MACs as known now, tracked and timed as `next` says.
    fn neighbors_for(&self, next: &Config) -> Neighbors {
        let mut neighbors = self.neighbors.clone();
        neighbors.set_timing(ArpTiming::from(&next.arp));
        neighbors.track(tracked_targets(next), Instant::now());
        neighbors
    }

    /// `dsrlb reload` and SIGHUP: logs the outcome either way.
    pub fn reload_logged(&mut self, dp: &mut dyn Dataplane) -> Reply {
        match self.reload(dp) {
            Ok(done) => {
                self.reloads += 1;
                log::info!("{done}");
                Reply::Done(done)
            }
            Err(e) => {
                self.reloads_refused += 1;
                log::error!("reload refused, the running config stays: {}", e.trim_end());
                Reply::Error(format!("reload refused, the running config stays: {e}"))
            }
        }
    }

    /// `dsrlb ha status|drain|undrain` (and `dsrlb show ha`).
    pub fn ha(&mut self, dp: &dyn Dataplane, action: HaAction) -> Reply {
        if action != HaAction::Status {
            let drain = action == HaAction::Drain;
            let verb = if drain { "drained" } else { "undrained" };
            if let Some(pair) = &mut self.pair {
                log::info!("ha: {verb} by the operator");
                pair.hold(drain.then_some(DRAINED));
            } else if let Some(announcer) = &mut self.announcer {
                log::info!("bgp: {verb} by the operator");
                announcer.set_drained(drain);
            } else {
                return Reply::Error(
                    "not in a group: the config has no [bgp] or [ha] section".to_owned(),
                );
            }
            self.update_announcements(dp);
        }
        let now = Instant::now();
        let announcer = self.announcer.as_ref();
        let pair = self.pair.as_ref();
        Reply::Ha(HaView {
            mode: match (announcer, pair) {
                (Some(_), _) => "bgp",
                (None, Some(_)) => "pair",
                (None, None) => "single",
            }
            .to_owned(),
            drained: announcer.is_some_and(Announcer::drained) || pair.is_some_and(Pair::drained),
            tap: (announcer.map(|a| a.tap_name().to_owned()))
                .or_else(|| pair.map(|p| p.view(now).tap)),
            bird_error: announcer.and_then(|a| a.bird_error().map(str::to_owned)),
            vips: announcer.map_or_else(Vec::new, |a| a.view(now)),
            pair: pair.map(|p| p.view(now)),
        })
    }

    /// `dsrlb target ADDRESS drain|enable|disable`.
    pub fn set_admin(
        &mut self,
        dp: &mut dyn Dataplane,
        address: IpAddr,
        action: AdminAction,
    ) -> Reply {
        let services: Vec<String> = self
            .config
            .services
            .iter()
            .filter(|s| s.targets.iter().any(|t| t.address == address))
            .map(|s| s.label())
            .collect();
        if services.is_empty() {
            return Reply::Error(format!("no target {address} in the running config"));
        }
        match action {
            AdminAction::Enable => self.admin.remove(&address),
            other => self.admin.insert(address, other),
        };
        self.republish(dp);
        let what = match action {
            AdminAction::Drain => "drained (keeps its flows, takes no new ones)",
            AdminAction::Enable => "enabled",
            AdminAction::Disable => "disabled (its flows move to other targets)",
        };
        let done = format!("target {address} {what} in {}", services.join(", "));
        log::info!("{done}");
        Reply::Done(done)
    }
}

fn log_health_change(prober: &Prober, change: &Change) {
    let label = prober
        .target(change.id)
        .map_or_else(String::new, |t| t.label.clone());
    let (successes, failures) = change.streak;
    let why = match (&change.outcome, change.from) {
        (Ok(()), Health::Unknown) => "first probe succeeded".to_owned(),
        (Err(failure), Health::Unknown) => format!("first probe failed: {failure}"),
        (Ok(()), _) => format!("{successes} successes in a row"),
        (Err(failure), _) => format!("{failures} failures in a row, last: {failure}"),
    };
    let line = format!("target {label}: {} -> {} ({why})", change.from, change.to);
    if change.to == Health::Down {
        log::warn!("{line}");
    } else {
        log::info!("{line}");
    }
}

/// One prober slot per (service, target) whose service has a probe.
fn build_prober(config: &Config) -> std::io::Result<(Prober, Vec<(usize, IpAddr)>)> {
    let mut targets = Vec::new();
    let mut keys = Vec::new();
    for (si, service) in config.services.iter().enumerate() {
        for target in &service.targets {
            let Some(probe) = service.probe_for(target) else {
                continue;
            };
            targets.push(ProbeTarget {
                id: keys.len(),
                label: format!("{} of {}", target.address, service.label()),
                address: target.probe_address(),
                port: probe.port.unwrap_or(service.port),
                probe,
            });
            keys.push((si, target.address));
        }
    }
    let source = ProbeSource {
        address: config.health.source_address,
        interface: config.health.interface.clone(),
    };
    Ok((Prober::new(targets, source)?, keys))
}

/// The health of (service index, target address) as `prober` sees it; targets without
/// a probe are up.
fn health_in(prober: &Prober, probed: &[(usize, IpAddr)], service: usize, addr: IpAddr) -> Health {
    probed
        .iter()
        .position(|&key| key == (service, addr))
        .map_or(Health::Up, |i| prober.health(i))
}

/// "services +1 -0, targets +2 -1", for the reload's log line and reply.
fn describe_changes(before: &Config, after: &Config) -> String {
    let keys = |c: &Config| -> std::collections::BTreeSet<String> {
        c.services
            .iter()
            .map(|s| format!("{}:{}/{}", s.vip, s.port, s.protocol))
            .collect()
    };
    let targets = |c: &Config| -> std::collections::BTreeSet<String> {
        c.services
            .iter()
            .flat_map(|s| {
                s.targets
                    .iter()
                    .map(move |t| format!("{}:{}/{} {}", s.vip, s.port, s.protocol, t.address))
            })
            .collect()
    };
    let (sb, sa) = (keys(before), keys(after));
    let (tb, ta) = (targets(before), targets(after));
    let mut text = format!(
        "services +{} -{}, targets +{} -{}",
        sa.difference(&sb).count(),
        sb.difference(&sa).count(),
        ta.difference(&tb).count(),
        tb.difference(&ta).count()
    );
    let added: Vec<&String> = sa.difference(&sb).collect();
    if !added.is_empty() {
        text.push_str(&format!(
            "; new: {}",
            added
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    text
}

/// Whether this appliance can serve, for keepalived: nothing while a port's link is
/// down, a worker stopped, it is `settling` (see `SETTLING`) or no VIP has a usable
/// target; less while some VIP has none.
fn fitness(config: &Config, serving: &[bool], dp: &dyn Dataplane, settling: bool) -> Fitness {
    if !dp.links_up() {
        return Fitness::Unfit("a port's link is down".to_owned());
    }
    if !dp.workers_running() {
        return Fitness::Unfit("a worker stopped".to_owned());
    }
    if settling {
        return Fitness::Unfit(SETTLING.to_owned());
    }
    let unserved: Vec<String> = (config.vips().into_iter())
        .filter(|&vip| !vip_served(config, serving, vip))
        .map(|vip| vip.to_string())
        .collect();
    match unserved.len() {
        0 => Fitness::Serving,
        n if n == config.vips().len() => Fitness::Unfit("no VIP has a usable target".to_owned()),
        _ => Fitness::Degraded(format!("no usable target for {}", unserved.join(", "))),
    }
}

/// Why an appliance that has just started is not ready to take flows yet: some
/// target's first probe or first MAC resolution is still to come (for a pair, also
/// after a reload that added a probed target).
const SETTLING: &str = "first health checks or target MACs pending";

/// Whether a service of `vip` has a usable target (`serving` as `serving` gives it).
fn vip_served(config: &Config, serving: &[bool], vip: IpAddr) -> bool {
    (config.services.iter().enumerate())
        .any(|(si, s)| s.vip == vip && serving.get(si).copied().unwrap_or(false))
}

/// Per service (in config order): whether any target may take new flows.
fn serving(snapshot: &Snapshot) -> Vec<bool> {
    let mut serving = vec![false; snapshot.services().len()];
    for s in snapshot.services() {
        if let Some(slot) = serving.get_mut(s.index) {
            *slot = !s.table().is_empty();
        }
    }
    serving
}

/// Services whose "has a usable target" changed: (index, now serving). Logged once per
/// change, never per packet.
fn serving_changes(before: &[bool], after: &[bool]) -> Vec<(usize, bool)> {
    after
        .iter()
        .enumerate()
        .filter(|(i, is)| before.get(*i) != Some(is))
        .map(|(i, &is)| (i, is))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stand_in::{StandIn, PORT_MAC};
    use dataplane::snapshot::{ArpAnswers, ServiceSpec, SnapshotSpec, TargetSpec};
    use dataplane::wire::IpProtocol;
    use std::path::Path;

    const REAL: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
    const T1: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 11);
    const T2: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 12);
    const T2_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0c]);

    const CONFIG: &str = r#"
[appliance]
address = "10.99.0.2"
[dataplane]
worker_lcores = [1]
[[ports]]
name = "data"
device = "net_ring0"
[[services]]
vip = "10.99.0.100"
port = 80
protocol = "tcp"
targets = [{ address = "10.99.0.11" }, { address = "10.99.0.12", mac = "02:00:00:00:00:0c" }]
"#;

    /// The control state for CONFIG, written to a file of its own, and a stand-in
    /// dataplane forwarding with its first snapshot.
    fn started(dir: &Path) -> (Appliance, StandIn) {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("dsrlb.toml");
        std::fs::write(&path, CONFIG).unwrap();
        let config = Config::load(&path).unwrap();
        let (appliance, snapshot) = Appliance::new(config, path).unwrap();
        (appliance, StandIn::new(snapshot))
    }

    fn scratch(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("dsrlb-appliance-{name}-{}", std::process::id()))
    }

    #[test]
    fn fitness_says_unfit_degraded_or_serving() {
        let two_vips = format!(
            "{CONFIG}[[services]]\nvip = \"10.99.0.101\"\nport = 80\nprotocol = \"tcp\"\ntargets = [{{ address = \"10.99.0.13\" }}]\n"
        );
        let config = Config::from_toml(&two_vips, "t").unwrap();
        let (_, snapshot) = Appliance::new(config.clone(), PathBuf::new()).unwrap();
        let mut dp = StandIn::new(snapshot);
        let unfit = |why: &str| Fitness::Unfit(why.to_owned());
        assert_eq!(
            fitness(&config, &[true, true], &dp, false),
            Fitness::Serving
        );
        assert_eq!(
            fitness(&config, &[true, false], &dp, false),
            Fitness::Degraded("no usable target for 10.99.0.101".to_owned())
        );
        assert_eq!(
            fitness(&config, &[false, false], &dp, false),
            unfit("no VIP has a usable target")
        );
        assert_eq!(fitness(&config, &[true, true], &dp, true), unfit(SETTLING));
        dp.workers_running = false;
        assert_eq!(
            fitness(&config, &[true, true], &dp, false),
            unfit("a worker stopped")
        );
        dp.links_up = false;
        assert_eq!(
            fitness(&config, &[true, true], &dp, false),
            unfit("a port's link is down")
        );
    }

    #[test]
    fn the_first_pass_announces_every_address_and_asks_for_unknown_macs() {
        let dir = scratch("announce");
        let (mut app, mut dp) = started(&dir);
        assert_eq!(dp.target_mac(T1), None, "no MAC yet: not usable");
        assert_eq!(dp.target_mac(T2), Some(T2_MAC), "static MAC");
        app.tick(&mut dp, Duration::ZERO);
        let vip = Ipv4Addr::new(10, 99, 0, 100);
        let sent = dp.arp_sent();
        for addr in [REAL, vip] {
            assert!(
                sent.contains(&(ArpOperation::Request, addr, addr)),
                "GARP for {addr}: {sent:?}"
            );
        }
        assert!(
            sent.contains(&(ArpOperation::Request, REAL, T1)),
            "{sent:?}"
        );
        assert!(
            !sent.iter().any(|&(_, _, t)| t == T2),
            "T2's MAC is configured"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Each port's own frames carry its VLAN, each service's VIP and targets theirs
    /// where it names one, and the real address goes on all of them.
    #[test]
    fn announcements_and_questions_go_on_their_vlans() {
        let text = format!(
            "{CONFIG}[[services]]\nvip = \"10.99.0.101\"\nport = 80\nprotocol = \"tcp\"\nvlan = 20\ntargets = [{{ address = \"10.99.0.13\" }}]\n"
        );
        let config = Config::from_toml(&text, "t").unwrap();
        let (mut app, snapshot) = Appliance::new(config, PathBuf::new()).unwrap();
        let mut dp = StandIn::new(snapshot);
        dp.port_vlan = Some(10);
        app.tick(&mut dp, Duration::ZERO);
        let vlan_of = |frame: &[u8]| {
            use dataplane::wire::{EtherType, EthernetFrame};
            let eth = EthernetFrame::new_checked(frame).unwrap();
            assert_eq!(eth.ethertype(), EtherType::Vlan, "untagged: {frame:02x?}");
            dataplane::wire::VlanHeader::new_checked(eth.payload())
                .unwrap()
                .vlan_id()
        };
        let sent: Vec<(u16, Ipv4Addr, Ipv4Addr)> = (dp.sent.borrow().iter())
            .filter_map(|f| {
                let (_, sender, _) = arp_sender(f)?;
                let (_, l3, _) = dataplane::forward::l2_header(f).ok()?;
                let arp = dataplane::wire::ArpPacket::new_checked(&f[l3..]).ok()?;
                Some((vlan_of(f), sender, arp.target_protocol_addr()))
            })
            .collect();
        let on = |addr: Ipv4Addr, asked: Ipv4Addr| -> Vec<u16> {
            let mut vlans: Vec<u16> = (sent.iter())
                .filter(|&&(_, s, t)| s == addr && t == asked)
                .map(|&(v, _, _)| v)
                .collect();
            vlans.sort_unstable();
            vlans
        };
        let (vip, vip20) = (Ipv4Addr::new(10, 99, 0, 100), Ipv4Addr::new(10, 99, 0, 101));
        assert_eq!(on(vip, vip), [10], "the port's VIP: {sent:?}");
        assert_eq!(on(vip20, vip20), [20], "VLAN 20's VIP: {sent:?}");
        assert_eq!(
            on(REAL, REAL),
            [10, 20],
            "the real address on both: {sent:?}"
        );
        assert_eq!(
            on(REAL, T1),
            [10],
            "T1 asked for on the port's VLAN: {sent:?}"
        );
        let t3 = Ipv4Addr::new(10, 99, 0, 13);
        assert_eq!(
            on(REAL, t3),
            [20],
            "VLAN 20's target asked for there: {sent:?}"
        );
        assert!(
            dp.sent.borrow().iter().all(|f| vlan_of(f) > 0),
            "every frame tagged"
        );
    }

    /// An ARP reply to dsrlb's request for T1, saying it is at `mac`.
    fn t1_reply(mac: MacAddr) -> Vec<u8> {
        let request = ArpRepr::request((PORT_MAC, REAL), T1);
        request.reply(mac).frame(PORT_MAC).to_vec()
    }

    /// Tables that fill in at start (a MAC learned) mark nothing: no flow predates
    /// them, and marks would send a flow a settled peer carried elsewhere. Once
    /// settled, a change marks the slots it moves.
    #[test]
    fn start_up_changes_mark_no_slots_later_ones_do() {
        let dir = scratch("settling");
        let (mut app, mut dp) = started(&dir);
        let marked = |dp: &StandIn| dp.snapshot.services()[0].steering.marked();
        app.tick(&mut dp, Duration::ZERO);
        dp.punts.push(t1_reply(MacAddr([2, 0, 0, 0, 0, 0x0b])));
        app.tick(&mut dp, Duration::ZERO);
        assert!(dp.target_mac(T1).is_some(), "T1 learned: the table changed");
        assert_eq!(marked(&dp), 0, "while settling");
        app.tick(&mut dp, Duration::ZERO);
        let reply = app.set_admin(&mut dp, T2.into(), AdminAction::Disable);
        assert!(matches!(reply, Reply::Done(_)), "{reply:?}");
        assert!(marked(&dp) > 0, "a change once settled");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_arp_reply_to_our_request_is_published_in_the_same_pass() {
        let dir = scratch("learn");
        let (mut app, mut dp) = started(&dir);
        let t1_mac = MacAddr([2, 0, 0, 0, 0, 0x0b]);
        // Before dsrlb asks: not believed, counted.
        dp.punts.push(t1_reply(t1_mac));
        app.tick(&mut dp, Duration::ZERO);
        assert_eq!((dp.published, dp.target_mac(T1)), (0, None));
        assert_eq!(app.arp.ignored.get(&Ignored::Unsolicited), Some(&1));
        // The first pass asked; the answer is learned and published in the next.
        dp.punts.push(t1_reply(t1_mac));
        app.tick(&mut dp, Duration::ZERO);
        assert_eq!((dp.published, app.punted), (1, 2));
        assert_eq!(dp.target_mac(T1), Some(t1_mac));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn forged_arp_moves_nothing_and_is_counted_and_shown() {
        let dir = scratch("forged");
        let (mut app, mut dp) = started(&dir);
        let t1_mac = MacAddr([2, 0, 0, 0, 0, 0x0b]);
        let forged = MacAddr([2, 0x66, 0, 0, 0, 0x66]);
        app.tick(&mut dp, Duration::ZERO);
        dp.punts.push(t1_reply(t1_mac));
        app.tick(&mut dp, Duration::ZERO);
        // Another MAC answers dsrlb's request too (in the same window): a conflict,
        // the traffic stays, and the state show targets and the stats read says so.
        dp.punts.push(t1_reply(forged));
        app.tick(&mut dp, Duration::ZERO);
        assert_eq!(dp.target_mac(T1), Some(t1_mac));
        assert_eq!(app.arp.conflicts, 1);
        // What show targets marks as a conflict (views.rs reads it there).
        assert_eq!(app.neighbors.conflict(T1.into()), Some((t1_mac, forged)));
        // T2's MAC, dsrlb's own, or a broadcast one for T1: refused.
        for mac in [T2_MAC, PORT_MAC, MacAddr::BROADCAST] {
            dp.punts.push(t1_reply(mac));
        }
        // Someone announcing the VIP: a claim, counted (and logged once).
        let vip = Ipv4Addr::new(10, 99, 0, 100);
        dp.punts.push(
            ArpRepr::gratuitous(forged, vip)
                .frame(MacAddr::BROADCAST)
                .to_vec()
                .to_vec(),
        );
        app.tick(&mut dp, Duration::ZERO);
        let ignored = |why| app.arp.ignored.get(&why).copied();
        assert_eq!(ignored(Ignored::AnotherTarget), Some(1));
        assert_eq!(ignored(Ignored::Ours), Some(1));
        assert_eq!(ignored(Ignored::NotUnicast), Some(1));
        assert_eq!(app.arp.address_claims, 1);
        assert_eq!(dp.target_mac(T1), Some(t1_mac));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn drain_republishes_and_an_unknown_target_is_refused() {
        let dir = scratch("admin");
        let (mut app, mut dp) = started(&dir);
        let refused = app.set_admin(
            &mut dp,
            Ipv4Addr::new(10, 99, 0, 99).into(),
            AdminAction::Drain,
        );
        assert!(matches!(refused, Reply::Error(ref e) if e.contains("no target 10.99.0.99")));
        assert_eq!(dp.published, 0);
        let done = app.set_admin(&mut dp, T2.into(), AdminAction::Drain);
        assert!(
            matches!(done, Reply::Done(ref d) if d.contains("drained")),
            "{done:?}"
        );
        assert_eq!(dp.published, 1);
        let service = &dp.snapshot.services()[0];
        assert!(
            service.table().is_empty(),
            "T1 has no MAC and T2 is drained: no new flows"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_broken_reload_keeps_the_running_config_and_a_good_one_applies_whole() {
        let dir = scratch("reload");
        let (mut app, mut dp) = started(&dir);
        let path = app.config_path.clone();
        std::fs::write(&path, CONFIG.replace("port = 80", "port = 80\nweight = 1")).unwrap();
        assert!(matches!(app.reload_logged(&mut dp), Reply::Error(_)));
        assert_eq!((app.reloads, app.reloads_refused, dp.published), (0, 1, 0));
        assert_eq!(app.config.services.len(), 1);
        let second = "[[services]]\nvip = \"10.99.0.101\"\nport = 53\nprotocol = \"udp\"\ntargets = [{ address = \"10.99.0.12\", mac = \"02:00:00:00:00:0c\" }]\n";
        std::fs::write(&path, format!("{CONFIG}{second}")).unwrap();
        let reply = app.reload_logged(&mut dp);
        assert!(
            matches!(reply, Reply::Done(ref d) if d.contains("services +1 -0")),
            "{reply:?}"
        );
        assert_eq!(
            (app.reloads, dp.published, dp.snapshot.services().len()),
            (1, 1, 2)
        );
        let new_vip = Ipv4Addr::new(10, 99, 0, 101);
        assert!(
            dp.arp_sent()
                .contains(&(ArpOperation::Request, new_vip, new_vip)),
            "announced at once"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn arp_goes_on_while_a_reload_builds_large_tables() {
        let dir = scratch("reload-aside");
        let (mut app, mut dp) = started(&dir);
        app.tick(&mut dp, Duration::ZERO);
        let t1_mac = MacAddr([2, 0, 0, 0, 0, 0x0b]);
        // T1 answers the request of the first pass while the reload builds two tables
        // of a million slots each (far longer than starting the thread that builds).
        dp.punts.push(t1_reply(t1_mac));
        let second = "[[services]]\nvip = \"10.99.0.101\"\nport = 53\nprotocol = \"udp\"\ntargets = [{ address = \"10.99.0.11\" }, { address = \"10.99.0.12\", mac = \"02:00:00:00:00:0c\" }]\n";
        let big = format!("[maglev]\ntable_size = 1048573\n{CONFIG}{second}");
        std::fs::write(&app.config_path, big).unwrap();
        let reply = app.reload_logged(&mut dp);
        assert!(matches!(reply, Reply::Done(_)), "{reply:?}");
        assert_eq!(app.punted, 1, "the reply was taken during the reload");
        assert_eq!(dp.snapshot.services()[0].table().len(), 1048573);
        assert_eq!(
            dp.target_mac(T1),
            None,
            "the reload's tables were specified before T1 answered"
        );
        app.tick(&mut dp, Duration::ZERO);
        assert_eq!(dp.target_mac(T1), Some(t1_mac), "learned, so republished");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn snapshot(healthy: [bool; 2]) -> Snapshot {
        let target = |last: u8, healthy: bool| TargetSpec {
            addr: Ipv4Addr::new(10, 0, 0, last).into(),
            mac: Some(MacAddr([2, 0, 0, 0, 0, last])),
            weight: 1,
            healthy,
        };
        Snapshot::build(
            &SnapshotSpec {
                real_addr: Ipv4Addr::new(10, 0, 0, 2),
                real_addr6: None,
                arp_answers: ArpAnswers::Every,
                seed: 0,
                table_size: 251,
                services: vec![
                    ServiceSpec {
                        forwards_icmp_errors: true,
                        tracking: Default::default(),
                        vip: Ipv4Addr::new(10, 0, 0, 200).into(),
                        proto: IpProtocol::Tcp,
                        port: 80,
                        targets: vec![target(11, healthy[0])],
                    },
                    ServiceSpec {
                        forwards_icmp_errors: true,
                        tracking: Default::default(),
                        vip: Ipv4Addr::new(10, 0, 0, 100).into(),
                        proto: IpProtocol::Tcp,
                        port: 80,
                        targets: vec![target(12, healthy[1])],
                    },
                ],
            },
            None,
        )
        .unwrap()
    }

    #[test]
    fn serving_is_in_config_order_and_changes_are_reported_once() {
        // Snapshot services are sorted by VIP; serving() must still follow config order.
        assert_eq!(serving(&snapshot([true, false])), vec![true, false]);
        let all_up = serving(&snapshot([true, true]));
        let first_down = serving(&snapshot([false, true]));
        assert_eq!(serving_changes(&all_up, &first_down), vec![(0, false)]);
        assert_eq!(
            serving_changes(&first_down, &first_down),
            vec![],
            "no change, nothing logged"
        );
        assert_eq!(serving_changes(&first_down, &all_up), vec![(0, true)]);
    }
}
