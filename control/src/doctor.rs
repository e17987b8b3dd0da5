//! The DSR doctor: proves through the data path itself that each target is set up
//! for DSR, which a health check over the management network cannot see.
//!
//! For each service and target, now and then, a probe goes from the real address to
//! VIP:port with the target's MAC, exactly as a forwarded client frame goes: a TCP
//! SYN, or a UDP datagram carrying the service's `dsr_check.payload`. The target
//! answers the real address, which reaches dsrlb (it answers ARP for it) and which
//! the workers punt on the probe ports (`dataplane::forward::PROBE_PORTS`):
//! - a SYN-ACK or a UDP reply: the VIP is on the target's loopback and the service
//!   listens on it (the SYN-ACK is reset politely);
//! - a RST or an ICMP port unreachable: the VIP is there, nothing listens on it;
//! - nothing within the timeout: the VIP is not on its loopback, or its rp_filter
//!   drops frames from the real address, or it is down.
//!
//! A service with `dsr_check` takes a target out of the table after `fall` failed
//! probes (refused or silent), back after `rise` answered ones; without it the
//! findings are only shown. The probes come from ports no flow uses and their
//! answers are never forwarded. ARP flux (a host answering ARP for a VIP) is the
//! appliance's to see (`Appliance::arp_heard`); the doctor keeps who answered.

use crate::runtime::Frame;
use config::Config;
use dataplane::forward::{l2_header, PROBE_PORTS};
use dataplane::wire::{
    ethernet, ipv4, tcp, udp, EtherType, EthernetFrame, EthernetRepr, IcmpMessage, IcmpPacket,
    IpProtocol, Ipv4Packet, Ipv4Repr, MacAddr, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// Without `dsr_check`: how often each target is probed, and how long an answer
/// may take.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);
const WATCH_TIMEOUT: Duration = Duration::from_secs(1);
/// A host that answered ARP for a VIP is listed for this many question rounds.
const FLUX_MEMORY_ROUNDS: u32 = 3;

/// What the last in-path probe of a target found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathFinding {
    /// Not probed yet: no MAC known, or an every-port service without a port to probe.
    Unknown,
    /// SYN-ACK or UDP reply: the VIP is on its loopback, the service listens on it.
    Answers,
    /// RST or ICMP port unreachable: the VIP is there, nothing listens on VIP:port.
    Refused,
    /// No answer in time: the VIP is not on its loopback, rp_filter drops frames from
    /// the real address, or the target is down.
    Silent,
}

impl PathFinding {
    /// In words an operator can act on.
    pub fn explain(self, vip: Ipv4Addr, port: u16, real: Ipv4Addr) -> String {
        match self {
            PathFinding::Unknown => "not probed yet (no MAC known for it)".to_owned(),
            PathFinding::Answers => {
                format!("the VIP {vip} is on its loopback and {vip}:{port} answers")
            }
            PathFinding::Refused => format!(
                "the VIP {vip} is on its loopback but nothing listens on {vip}:{port} (is the service bound to the target's own address?)"
            ),
            PathFinding::Silent => format!(
                "no answer through the DSR path: the VIP {vip} is not on its loopback, or its rp_filter drops frames from {real} (run scripts/target-setup.sh --check {vip} on it)"
            ),
        }
    }
}

/// One (service, target) the doctor probes.
#[derive(Debug)]
struct Slot {
    service: usize,
    /// The service's VLAN (`None`: the port's), which its probes carry.
    vlan: Option<u16>,
    label: String,
    target: Ipv4Addr,
    vip: Ipv4Addr,
    /// 0: not probed (an every-port service without `dsr_check.port`).
    port: u16,
    udp: bool,
    payload: Vec<u8>,
    /// The source port of its probes, and what the current one began with.
    sport: u16,
    isn: u32,
    sent: Option<Instant>,
    next_at: Instant,
    interval: Duration,
    timeout: Duration,
    finding: PathFinding,
    since: Instant,
    /// With `dsr_check`: (rise, fall), the current streaks, and whether it passes.
    check: Option<(u32, u32)>,
    streak: (u32, u32),
    up: bool,
}

/// One target's in-path finding, as `dsrlb doctor` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathView {
    pub service: String,
    pub target: Ipv4Addr,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub finding: PathFinding,
    /// Seconds since the finding last changed.
    pub for_secs: u64,
    /// With `dsr_check`: whether the target passes it (in the table).
    pub check_passes: Option<bool>,
}

/// Sends the frame a builder makes from each port's MAC, on every port, on the VLAN
/// given (`None`: each port's own).
pub type Send<'a> = &'a mut dyn FnMut(Option<u16>, &dyn Fn(MacAddr) -> Frame);

#[derive(Debug)]
pub struct Doctor {
    slots: Vec<Slot>,
    /// The appliance's real address: where probes come from and answers go.
    real: Ipv4Addr,
    /// Hosts (other than dsrlb) that answered ARP for a VIP: when last, how often.
    flux: BTreeMap<(Ipv4Addr, MacAddr), (Instant, u64)>,
    question_interval: Duration,
    rng: u64,
    pub probes_sent: u64,
    pub answers: u64,
}

/// Where a probe goes, and what it carries.
struct Probe<'a> {
    target_mac: MacAddr,
    real: Ipv4Addr,
    vip: Ipv4Addr,
    sport: u16,
    dport: u16,
    segment: Segment<'a>,
}

enum Segment<'a> {
    Syn(u32),
    Rst(u32),
    Udp(&'a [u8]),
}

impl Doctor {
    pub fn new(config: &Config, now: Instant) -> Doctor {
        let mut slots = Vec::new();
        for (si, service) in config.services.iter().enumerate() {
            // Its probes are IPv4 frames: IPv6 services are not examined yet (`check`
            // refuses a `dsr_check` on one).
            let IpAddr::V4(vip) = service.vip else {
                continue;
            };
            let check = service.dsr_check.clone();
            let c = check.clone().unwrap_or_default();
            let (interval, timeout) = match &check {
                Some(c) => (
                    Duration::from_millis(u64::from(c.interval_ms)),
                    Duration::from_millis(u64::from(c.timeout_ms)),
                ),
                None => (WATCH_INTERVAL, WATCH_TIMEOUT),
            };
            for target in &service.targets {
                let index = slots.len() as u16;
                slots.push(Slot {
                    service: si,
                    vlan: service.vlan,
                    label: service.label(),
                    target: match target.address {
                        IpAddr::V4(target) => target,
                        IpAddr::V6(_) => continue,
                    },
                    vip,
                    port: c.port.unwrap_or(service.port),
                    udp: service.protocol == config::Protocol::Udp,
                    payload: c.payload.as_bytes().to_vec(),
                    sport: PROBE_PORTS.start() + index % PROBE_PORTS.len() as u16,
                    isn: 0,
                    sent: None,
                    next_at: now,
                    interval,
                    timeout,
                    finding: PathFinding::Unknown,
                    since: now,
                    check: check.as_ref().map(|c| (c.rise, c.fall)),
                    streak: (0, 0),
                    up: true,
                });
            }
        }
        Doctor {
            slots,
            real: config.appliance.address,
            flux: BTreeMap::new(),
            question_interval: Duration::from_secs(u64::from(config.arp.garp_interval_secs)),
            rng: now.elapsed().as_nanos() as u64 ^ 0x9e37_79b9_7f4a_7c15,
            probes_sent: 0,
            answers: 0,
        }
    }

    /// Findings and check states from `old` for the same target of the same service.
    pub fn carry_over(&mut self, old: &Doctor) {
        for slot in &mut self.slots {
            let same = |o: &&Slot| {
                (o.vip, o.port, o.udp, o.target) == (slot.vip, slot.port, slot.udp, slot.target)
            };
            if let Some(o) = old.slots.iter().find(same) {
                (slot.finding, slot.since, slot.streak, slot.up) =
                    (o.finding, o.since, o.streak, o.up);
            }
        }
        self.flux = old.flux.clone();
    }

    /// Forgets the probes in flight (their answers go elsewhere now: a pair's
    /// standby); findings stay, and probing resumes where `tick` is called again.
    pub fn pause(&mut self) {
        for slot in &mut self.slots {
            slot.sent = None;
        }
    }

    /// Forgets the probes in flight and sends none before `until`.
    pub fn defer(&mut self, until: Instant) {
        self.pause();
        for slot in &mut self.slots {
            slot.next_at = slot.next_at.max(until);
        }
    }

    /// Whether the target may take flows of the service as far as the doctor knows:
    /// false only where `dsr_check` has taken it out.
    pub fn passes(&self, service: usize, target: IpAddr) -> bool {
        self.slots
            .iter()
            .filter(|s| s.service == service && IpAddr::V4(s.target) == target)
            .all(|s| s.up)
    }

    /// Probes that timed out count as silent; probes that are due are sent. True if a
    /// check's verdict changed (the tables need rebuilding).
    pub fn tick(
        &mut self,
        now: Instant,
        mac_of: &dyn Fn(Ipv4Addr) -> Option<MacAddr>,
        send: Send,
    ) -> bool {
        let mut changed = false;
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            if slot.sent.is_some_and(|at| now >= at + slot.timeout) {
                changed |= self.found(i, PathFinding::Silent, now);
            }
            let slot = &mut self.slots[i];
            if slot.port == 0 || now < slot.next_at {
                continue;
            }
            // Without a MAC, probed at the first tick that has one.
            let Some(target_mac) = mac_of(slot.target) else {
                continue;
            };
            slot.next_at = now + slot.interval;
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let slot = &mut self.slots[i];
            slot.isn = self.rng as u32;
            slot.sent = Some(now);
            let segment = if slot.udp {
                Segment::Udp(&slot.payload)
            } else {
                Segment::Syn(slot.isn)
            };
            let probe = Probe {
                target_mac,
                real: self.real,
                vip: slot.vip,
                sport: slot.sport,
                dport: slot.port,
                segment,
            };
            send(slot.vlan, &|port_mac| probe_frame(&probe, port_mac));
            self.probes_sent += 1;
        }
        changed
    }

    /// A frame the workers punted as an answer to a probe: records what it says and
    /// resets a SYN-ACK. True if a check's verdict changed.
    pub fn answer(&mut self, frame: &[u8], now: Instant, send: Send) -> bool {
        let Some((i, finding, reset)) = self.match_answer(frame) else {
            return false;
        };
        self.answers += 1;
        if let Some(seq) = reset {
            let slot = &self.slots[i];
            let from = EthernetFrame::new_checked(frame).map(|f| f.src_addr());
            if let Ok(target_mac) = from {
                let rst = Probe {
                    target_mac,
                    real: self.real,
                    vip: slot.vip,
                    sport: slot.sport,
                    dport: slot.port,
                    segment: Segment::Rst(seq),
                };
                send(slot.vlan, &|port_mac| probe_frame(&rst, port_mac));
            }
        }
        self.found(i, finding, now)
    }

    /// (slot, finding, sequence number to reset with) for a frame that answers an
    /// outstanding probe; None for anything else.
    fn match_answer(&self, frame: &[u8]) -> Option<(usize, PathFinding, Option<u32>)> {
        // Behind the service's VLAN tag, if it has one.
        let (ethertype, l3, _) = l2_header(frame).ok()?;
        if ethertype != EtherType::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(frame.get(l3..)?).ok()?;
        if ip.dst_addr() != self.real {
            return None;
        }
        let outstanding = |sport: u16, vip: Ipv4Addr, port: u16, udp: bool| {
            self.slots.iter().position(|s| {
                s.sent.is_some() && (s.sport, s.vip, s.port, s.udp) == (sport, vip, port, udp)
            })
        };
        match ip.protocol() {
            IpProtocol::Tcp => {
                let seg = TcpPacket::new_checked(ip.payload()).ok()?;
                let i = outstanding(seg.dst_port(), ip.src_addr(), seg.src_port(), false)?;
                let ours = seg.ack_number() == self.slots[i].isn.wrapping_add(1);
                match (seg.rst(), seg.syn() && seg.ack()) {
                    (true, _) if ours => Some((i, PathFinding::Refused, None)),
                    (false, true) if ours => {
                        Some((i, PathFinding::Answers, Some(seg.ack_number())))
                    }
                    _ => None,
                }
            }
            IpProtocol::Udp => {
                let dgram = UdpPacket::new_checked(ip.payload()).ok()?;
                let i = outstanding(dgram.dst_port(), ip.src_addr(), dgram.src_port(), true)?;
                Some((i, PathFinding::Answers, None))
            }
            IpProtocol::Icmp => {
                let icmp = IcmpPacket::new_checked(ip.payload()).ok()?;
                if icmp.msg_type() != IcmpMessage::DestinationUnreachable {
                    return None;
                }
                // After the 8-byte header, the quoted datagram: its IPv4 header, then
                // 8 bytes of UDP or TCP.
                let quoted = icmp.payload();
                let inner = Ipv4Packet::new_unchecked(quoted);
                let header = usize::from(*quoted.first()? & 0x0f) * 4;
                let ports = quoted.get(header..header + 4)?;
                let sport = u16::from_be_bytes([ports[0], ports[1]]);
                let dport = u16::from_be_bytes([ports[2], ports[3]]);
                let dst = Ipv4Addr::from(<[u8; 4]>::try_from(quoted.get(16..20)?).ok()?);
                let udp = inner.protocol() == IpProtocol::Udp;
                let i = outstanding(sport, dst, dport, udp)?;
                // Code 3: port unreachable; any other: the probe got nowhere.
                let finding = if icmp.msg_code() == 3 {
                    PathFinding::Refused
                } else {
                    PathFinding::Silent
                };
                Some((i, finding, None))
            }
            _ => None,
        }
    }

    /// Records the finding of slot `i`'s probe; logs a change; moves its check. True
    /// if the check's verdict changed.
    fn found(&mut self, i: usize, finding: PathFinding, now: Instant) -> bool {
        let slot = &mut self.slots[i];
        slot.sent = None;
        if slot.finding != finding {
            let line = format!(
                "doctor: target {} of {}: {}",
                slot.target,
                slot.label,
                finding.explain(slot.vip, slot.port, self.real)
            );
            if finding == PathFinding::Answers {
                log::info!("{line}");
            } else {
                log::warn!("{line}");
            }
            (slot.finding, slot.since) = (finding, now);
        }
        let Some((rise, fall)) = slot.check else {
            return false;
        };
        slot.streak = if finding == PathFinding::Answers {
            (slot.streak.0 + 1, 0)
        } else {
            (0, slot.streak.1 + 1)
        };
        let was = slot.up;
        slot.up = if slot.up {
            slot.streak.1 < fall
        } else {
            slot.streak.0 >= rise
        };
        if slot.up != was {
            let (word, streak) = if slot.up {
                ("up", slot.streak.0)
            } else {
                ("down", slot.streak.1)
            };
            log::warn!(
                "target {} of {}: dsr_check {word} ({streak} probes in a row)",
                slot.target,
                slot.label
            );
        }
        slot.up != was
    }

    /// A host other than dsrlb answered ARP for `vip` with `mac`.
    pub fn flux_seen(&mut self, vip: Ipv4Addr, mac: MacAddr, now: Instant) {
        let seen = self.flux.entry((vip, mac)).or_insert((now, 0));
        *seen = (now, seen.1 + 1);
    }

    /// The hosts that answered ARP for `vip` lately, with how many answers.
    pub fn flux_for(&self, vip: Ipv4Addr, now: Instant) -> Vec<(MacAddr, u64)> {
        let memory = self.question_interval * FLUX_MEMORY_ROUNDS;
        self.flux
            .iter()
            .filter(|((v, _), (at, _))| *v == vip && now.saturating_duration_since(*at) <= memory)
            .map(|((_, mac), (_, n))| (*mac, *n))
            .collect()
    }

    pub fn paths(&self, now: Instant) -> Vec<PathView> {
        self.slots
            .iter()
            .map(|s| PathView {
                service: s.label.clone(),
                target: s.target,
                vip: s.vip,
                port: s.port,
                finding: s.finding,
                for_secs: now.saturating_duration_since(s.since).as_secs(),
                check_passes: s.check.map(|_| s.up),
            })
            .collect()
    }
}

/// The minimum-size frame of a probe, or of the RST that answers a SYN-ACK.
fn probe_frame(p: &Probe, port_mac: MacAddr) -> Frame {
    let mut frame = [0u8; ethernet::MIN_FRAME_LEN];
    let (protocol, l4_len) = match p.segment {
        Segment::Syn(_) | Segment::Rst(_) => (IpProtocol::Tcp, tcp::MIN_HEADER_LEN),
        Segment::Udp(payload) => (IpProtocol::Udp, udp::HEADER_LEN + payload.len()),
    };
    EthernetRepr {
        src_addr: port_mac,
        dst_addr: p.target_mac,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    let ip = Ipv4Repr {
        src_addr: p.real,
        dst_addr: p.vip,
        protocol,
        payload_len: l4_len,
        ttl: 64,
    };
    let l3 = ethernet::HEADER_LEN;
    ip.emit(&mut Ipv4Packet::new_unchecked(
        &mut frame[l3..l3 + ip.buffer_len()],
    ));
    let l4 = &mut frame[l3 + ipv4::MIN_HEADER_LEN..l3 + ip.buffer_len()];
    let tcp = |seq, flags| TcpRepr {
        src_port: p.sport,
        dst_port: p.dport,
        seq_number: seq,
        ack_number: 0,
        flags,
        window: if flags == tcp::FLAG_SYN { 1024 } else { 0 },
    };
    match p.segment {
        Segment::Syn(isn) => tcp(isn, tcp::FLAG_SYN).emit(l4, p.real, p.vip),
        Segment::Rst(seq) => tcp(seq, tcp::FLAG_RST).emit(l4, p.real, p.vip),
        Segment::Udp(payload) => {
            l4[udp::HEADER_LEN..].copy_from_slice(payload);
            UdpRepr {
                src_port: p.sport,
                dst_port: p.dport,
            }
            .emit(l4, p.real, p.vip)
        }
    }
    frame.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::craft::{ethernet as eth_frame, ipv4 as ip_packet, tcp_frame, udp_frame};
    use dataplane::wire::checksum;
    use dataplane::wire::tcp::{FLAG_ACK, FLAG_RST, FLAG_SYN};

    const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const T1_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);
    const REAL: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
    const T1: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 11);

    fn doctor(now: Instant) -> Doctor {
        let text = r#"
[appliance]
address = "10.99.0.2"
[[ports]]
name = "data"
device = "net_ring0"
[[services]]
vip = "10.99.0.100"
port = 80
protocol = "tcp"
dsr_check = { interval_ms = 1000, timeout_ms = 500, rise = 1, fall = 2 }
targets = [{ address = "10.99.0.11" }]
[[services]]
vip = "10.99.0.100"
port = 5353
protocol = "udp"
targets = [{ address = "10.99.0.11" }]
"#;
        Doctor::new(&Config::from_toml(text, "t").unwrap(), now)
    }

    /// Runs `f` with a sender that collects the frames built for PORT_MAC.
    fn sending<R>(f: impl FnOnce(Send) -> R) -> (R, Vec<Frame>) {
        let mut sent = Vec::new();
        let r = f(&mut |vlan, build: &dyn Fn(MacAddr) -> Frame| {
            sent.push(crate::runtime::on_vlan(build(PORT_MAC), vlan))
        });
        (r, sent)
    }

    fn t1_mac(addr: Ipv4Addr) -> Option<MacAddr> {
        (addr == T1).then_some(T1_MAC)
    }

    /// The probe's IPv4 packet and its transport segment, checksums verified.
    fn parts(frame: &Frame) -> (Ipv4Packet<&[u8]>, &[u8]) {
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!((eth.dst_addr(), eth.src_addr()), (T1_MAC, PORT_MAC));
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr()), (REAL, VIP));
        let l4 = &frame[34..14 + usize::from(ip.total_len())];
        let mut zeroed = l4.to_vec();
        let at = if ip.protocol() == IpProtocol::Tcp {
            16
        } else {
            6
        };
        zeroed[at..at + 2].copy_from_slice(&[0, 0]);
        let sum = checksum::transport(REAL, VIP, ip.protocol().into(), &zeroed);
        assert_eq!(
            u16::from_be_bytes([l4[at], l4[at + 1]]),
            sum,
            "transport checksum"
        );
        (ip, l4)
    }

    #[test]
    fn a_syn_answered_by_a_syn_ack_is_reset_and_found_listening() {
        let t0 = Instant::now();
        let mut d = doctor(t0);
        let (_, sent) = sending(|send| d.tick(t0, &t1_mac, send));
        assert_eq!(sent.len(), 2, "one probe each service");
        let (ip, l4) = parts(&sent[0]);
        assert_eq!(ip.protocol(), IpProtocol::Tcp);
        let syn = TcpPacket::new_checked(l4).unwrap();
        assert!(syn.syn() && !syn.ack() && syn.dst_port() == 80);
        assert!(PROBE_PORTS.contains(&syn.src_port()));
        let (udp_ip, udp_l4) = parts(&sent[1]);
        assert_eq!(udp_ip.protocol(), IpProtocol::Udp);
        assert_eq!(&udp_l4[8..], b"dsrlb-doctor", "the service's payload");

        // Someone else's SYN-ACK to that port (wrong ack): not an answer.
        let mut other = tcp_frame(
            PORT_MAC,
            T1_MAC,
            (VIP, 80),
            (REAL, syn.src_port()),
            FLAG_SYN | FLAG_ACK,
        );
        let (changed, reset) = sending(|send| d.answer(&other, t0, send));
        assert!(!changed && reset.is_empty());
        // The target's: ack = our ISN + 1.
        let ack = syn.seq_number().wrapping_add(1);
        other[14 + 20 + 8..14 + 20 + 12].copy_from_slice(&ack.to_be_bytes());
        let (_, reset) = sending(|send| d.answer(&other, t0, send));
        assert_eq!(d.paths(t0)[0].finding, PathFinding::Answers);
        let (_, rst) = parts(&reset[0]);
        let rst = TcpPacket::new_checked(rst).unwrap();
        assert!(rst.rst() && rst.seq_number() == ack && rst.src_port() == syn.src_port());
        assert_eq!(d.answers, 1);
    }

    #[test]
    fn rst_is_refused_silence_is_silent_and_the_check_falls_after_two() {
        let t0 = Instant::now();
        let mut d = doctor(t0);
        let (_, sent) = sending(|send| d.tick(t0, &t1_mac, send));
        let (_, l4) = parts(&sent[0]);
        let syn = TcpPacket::new_checked(l4).unwrap();
        let mut rst = tcp_frame(
            PORT_MAC,
            T1_MAC,
            (VIP, 80),
            (REAL, syn.src_port()),
            FLAG_RST | FLAG_ACK,
        );
        rst[42..46].copy_from_slice(&syn.seq_number().wrapping_add(1).to_be_bytes());
        let (changed, _) = sending(|send| d.answer(&rst, t0, send));
        assert!(!changed, "one failure of fall = 2");
        assert_eq!(d.paths(t0)[0].finding, PathFinding::Refused);
        assert!(d.passes(0, T1.into()));
        // The next round goes unanswered: silent, the second failure.
        let t1 = t0 + Duration::from_millis(1000);
        sending(|send| d.tick(t1, &t1_mac, send));
        let t2 = t1 + Duration::from_millis(500);
        let (changed, _) = sending(|send| d.tick(t2, &t1_mac, send));
        assert!(changed, "the check fell");
        assert_eq!(d.paths(t2)[0].finding, PathFinding::Silent);
        assert!(
            !d.passes(0, T1.into()) && d.passes(1, T1.into()),
            "only the service with dsr_check"
        );
        assert_eq!(d.paths(t2)[0].check_passes, Some(false));
        assert_eq!(d.paths(t2)[1].check_passes, None);
    }

    #[test]
    fn udp_replies_answer_and_port_unreachable_refuses() {
        let t0 = Instant::now();
        let mut d = doctor(t0);
        let (_, sent) = sending(|send| d.tick(t0, &t1_mac, send));
        let (_, l4) = parts(&sent[1]);
        let sport = u16::from_be_bytes([l4[0], l4[1]]);
        let reply = udp_frame(PORT_MAC, T1_MAC, (VIP, 5353), (REAL, sport), b"t1");
        sending(|send| d.answer(&reply, t0, send));
        assert_eq!(d.paths(t0)[1].finding, PathFinding::Answers);

        let t1 = t0 + Duration::from_secs(2);
        let (_, sent) = sending(|send| d.tick(t1, &t1_mac, send));
        let probe = &sent[1][14..14 + 20 + 8];
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(probe);
        let unreachable = eth_frame(
            PORT_MAC,
            T1_MAC,
            EtherType::Ipv4,
            &ip_packet(T1, REAL, IpProtocol::Icmp, &icmp),
        );
        sending(|send| d.answer(&unreachable, t1, send));
        assert_eq!(d.paths(t1)[1].finding, PathFinding::Refused);
    }

    #[test]
    fn no_probe_without_a_mac_and_arp_flux_is_remembered_a_while() {
        let t0 = Instant::now();
        let mut d = doctor(t0);
        let (_, sent) = sending(|send| d.tick(t0, &|_| None, send));
        assert!(sent.is_empty());
        assert_eq!(d.paths(t0)[0].finding, PathFinding::Unknown);
        d.flux_seen(VIP, T1_MAC, t0);
        d.flux_seen(VIP, T1_MAC, t0);
        assert_eq!(d.flux_for(VIP, t0), [(T1_MAC, 2)]);
        // garp_interval_secs defaults to 10: remembered for three rounds.
        assert_eq!(d.flux_for(VIP, t0 + Duration::from_secs(31)), []);
    }
}
