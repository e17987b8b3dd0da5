//! The per-packet decision: a frame, the snapshot, the worker's flow table and the
//! time in, a `Verdict` out. Frames are rewritten in place for `Forward` and `Reply`.
//! Plain Rust over `&mut [u8]`: no DPDK, so it is tested as tables of packets.

use crate::flow::{FlowKey, FlowState, FlowTable, FlowTarget};
use crate::hash::flow_hash;
use crate::snapshot::{Service, Snapshot};
use crate::wire::{
    ethernet, vlan, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, IcmpEchoRepr,
    IcmpMessage, IcmpPacket, IpProtocol, Ipv4Packet, MacAddr, QuotedIpv4Packet, TcpPacket,
    UdpPacket, VlanHeader,
};
use std::net::Ipv4Addr;

pub use crate::counters::DropReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Arp,
    IcmpEcho,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PuntKind {
    /// An ARP reply: the control thread learns target MACs from it.
    ArpReply,
    /// A gratuitous ARP from another MAC for one of dsrlb's addresses: the control
    /// thread warns that another host claims it.
    AddressClaim,
    /// TCP or UDP to the real address on a `PROBE_PORTS` port, or an ICMP destination
    /// unreachable to it: a target answering the DSR doctor's in-path probe.
    ProbeAnswer,
}

/// Source ports of the DSR doctor's in-path probes, sent from the real address
/// (control's doctor): answers to the real address on these ports are punted; nothing
/// else uses them, and nothing to the real address is forwarded.
pub const PROBE_PORTS: std::ops::RangeInclusive<u16> = 61000..=61999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten for the target in `slot`; send it out of the port it came in on.
    Forward {
        slot: u16,
    },
    /// Rewritten into a reply to the sender; send it out of the port it came in on.
    Reply(ReplyKind),
    /// Hand the frame, unchanged, to the control thread.
    Punt(PuntKind),
    Drop(DropReason),
    /// Dropped: the service (counter slot `service`) has no target that may take
    /// the flow. Counted as `DropReason::NoUsableTarget` and against the service.
    Unserved {
        service: u16,
    },
    /// An ICMP error about a flow of the service (counter slot `service`), such as
    /// "fragmentation needed", rewritten for the target that owns the flow (in
    /// `slot`); counted as forwarded to it and against the service's ICMP errors.
    IcmpError {
        slot: u16,
        service: u16,
    },
}

/// TTL of the replies dsrlb originates (echo replies).
const REPLY_TTL: u8 = 64;

/// Decides what to do with one frame, rewriting it in place for `Forward` and `Reply`.
#[inline]
pub fn decide(
    frame: &mut [u8],
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
) -> Verdict {
    decide_hinted(
        frame,
        snapshot,
        port_mac,
        flows,
        now_ms,
        None,
        &mut SameFlowRun::default(),
    )
}

/// `decide` for the next frame of a burst: given the frame's flow hash if it is
/// already known (the worker computes it to prefetch; it must come from
/// `flow_hash_hint` with this snapshot's seed), and the burst's `SameFlowRun`.
#[inline(always)]
pub fn decide_hinted(
    frame: &mut [u8],
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
    hash_hint: Option<u64>,
    run: &mut SameFlowRun,
) -> Verdict {
    if let Some(slot) = run.forward(frame) {
        return Verdict::Forward { slot };
    }
    decide_outside_run(frame, snapshot, port_mac, flows, now_ms, hash_hint, run)
}

/// `decide_hinted` for a frame its caller has found not to continue `run`
/// (`SameFlowRun::forward` said no). The frame starts a new run if it can and the
/// frame decided in full before it was of its flow (see `SameFlowRun::last_hash`);
/// otherwise it ends the run.
#[inline(always)]
pub fn decide_outside_run(
    frame: &mut [u8],
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
    hash_hint: Option<u64>,
    run: &mut SameFlowRun,
) -> Verdict {
    if let Some(verdict) = fast_path(frame, snapshot, port_mac, flows, now_ms, hash_hint, run) {
        return verdict;
    }
    run.end();
    decide_without_fast_path(frame, snapshot, port_mac, flows, now_ms, hash_hint)
}

/// The flow of the frame forwarded just before in this burst. The next frame of
/// the same flow with the same header shape (same length and TCP state: a TSO
/// train's full segments, an elephant flow's burst) goes to the same target without
/// the service lookup, hash and flow-table probe.
/// This is exact, not a cache: between two frames of the run nothing it relies on
/// can change, and touching the entry again with the same state in the same
/// millisecond changes nothing. Within a burst that holds by construction (one
/// snapshot, one clock reading, and any other frame decided in between replaces or
/// ends the run). Across bursts `carry_over` keeps the run only under the same
/// snapshot and in the same millisecond: the worker's flow-table walk between polls
/// then only clears entries expired by that millisecond, and the run's entry was
/// touched in it.
///
/// A frame continues the run when it is long enough and its first `RUN_SPAN` bytes
/// equal those of the frame that started it wherever `run_mask` says: every byte the
/// fast path validates or keys the flow on. Its validation would then come out the
/// same (the one check that depends on the frame's length is repeated as `min_len`),
/// so it is not repeated field by field: one masked compare of three 16-byte words.
#[derive(Debug, Clone, Copy)]
pub struct SameFlowRun {
    /// The first `RUN_SPAN` bytes of the frame that started the run, as it came in.
    image: HeadWords,
    mask: &'static HeadWords,
    /// The shortest frame the run takes (usize::MAX: no run).
    min_len: usize,
    slot: u16,
    /// The frame's first 12 bytes after the rewrite (the target's MAC, this
    /// port's), as two words: two stores instead of byte-wise copies.
    macs_head: u64,
    macs_tail: u32,
    /// The snapshot (`Snapshot::epoch`) and millisecond of the run's first frame.
    snapshot_epoch: u64,
    now_ms: u64,
    /// The flow hash of the frame the fast path decided in full last, run or not: a
    /// frame with the same hash starts a run, so a train's second frame starts the
    /// run the rest of it continues. Among many flows almost no run outlives its
    /// first frame, and starting one for every frame costs more than this compare
    /// (its image copied, then compared with the next frame). A hash that matches
    /// another flow's only starts a run that no frame continues: never a question of
    /// correctness, since a frame outside a run is decided in full.
    last_hash: u64,
}

/// Bytes of a frame compared with the run's first frame: the fast path's span up to
/// the TCP flags (UDP's header ends before it).
const RUN_SPAN: usize = 48;

/// Which bits of the first `RUN_SPAN` bytes a frame of the run must share with its
/// first frame: the destination MAC, EtherType, version and header length, total
/// length, fragment bits, protocol, addresses and ports; for TCP the data offset and
/// the SYN and ACK flags (its `FlowState`), for UDP its length. Free to differ: the
/// source MAC (rewritten), TOS, IP id, the DF bit, TTL, checksums, TCP sequence and
/// acknowledgement numbers and its other flags, the UDP payload.
const fn run_mask(tcp: bool) -> HeadWords {
    let mut bytes = [0u8; RUN_SPAN];
    let mut i = 0;
    while i < RUN_SPAN {
        bytes[i] = match i {
            0..=5 | 12..=14 | 16 | 17 | 21 | 23 | 26..=37 => 0xff,
            20 => 0x3f,
            38 | 39 if !tcp => 0xff,
            46 if tcp => 0xf0,
            47 if tcp => crate::wire::tcp::FLAG_SYN | crate::wire::tcp::FLAG_ACK,
            _ => 0,
        };
        i += 1;
    }
    HeadWords::new(bytes)
}

static TCP_RUN_MASK: HeadWords = run_mask(true);
static UDP_RUN_MASK: HeadWords = run_mask(false);

/// `RUN_SPAN` bytes as three 16-byte words. On x86-64 they are SSE vectors: held in
/// a struct, a `u128` is split into two 64-bit halves, and the compare then takes
/// about 20 instructions instead of 12.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
struct HeadWords([HeadWord; 3]);

#[cfg(all(target_arch = "x86_64", target_feature = "sse4.1"))]
type HeadWord = core::arch::x86_64::__m128i;
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse4.1")))]
type HeadWord = u128;

impl HeadWords {
    #[inline(always)]
    const fn new(bytes: [u8; RUN_SPAN]) -> Self {
        // SAFETY: both word types are 16 plain bytes, valid for any bit pattern.
        HeadWords(unsafe { std::mem::transmute::<[u8; RUN_SPAN], [HeadWord; 3]>(bytes) })
    }

    /// Whether `self` and `other` differ in any bit of `mask`.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse4.1"))]
    #[inline(always)]
    #[allow(unused_unsafe)] // the intrinsics are safe to call from Rust 1.87 on
    fn differ(&self, other: &HeadWords, mask: &HeadWords) -> bool {
        use core::arch::x86_64::{_mm_and_si128, _mm_or_si128, _mm_testz_si128, _mm_xor_si128};
        // SAFETY: register-only SSE2/SSE4.1 operations, enabled for this build (cfg).
        unsafe {
            let word = |w: usize| _mm_and_si128(_mm_xor_si128(self.0[w], other.0[w]), mask.0[w]);
            let any = _mm_or_si128(_mm_or_si128(word(0), word(1)), word(2));
            _mm_testz_si128(any, any) == 0
        }
    }

    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse4.1")))]
    #[inline(always)]
    fn differ(&self, other: &HeadWords, mask: &HeadWords) -> bool {
        let word = |w: usize| (self.0[w] ^ other.0[w]) & mask.0[w];
        word(0) | word(1) | word(2) != 0
    }
}

impl Default for SameFlowRun {
    fn default() -> Self {
        SameFlowRun {
            image: HeadWords::new([0; RUN_SPAN]),
            mask: &TCP_RUN_MASK,
            min_len: usize::MAX,
            slot: 0,
            macs_head: 0,
            macs_tail: 0,
            snapshot_epoch: 0,
            now_ms: 0,
            last_hash: 0,
        }
    }
}

impl SameFlowRun {
    #[inline(always)]
    fn end(&mut self) {
        self.min_len = usize::MAX;
    }

    /// Whether a run stands: if not, no frame can continue it.
    #[inline(always)]
    pub fn stands(&self) -> bool {
        self.min_len != usize::MAX
    }

    /// Keeps the run for frames decided under `snapshot` at `now_ms` only if its
    /// first frame was decided under the same snapshot in the same millisecond;
    /// ends it otherwise. Callers that keep one run from burst to burst call this
    /// before each.
    #[inline(always)]
    pub fn carry_over(&mut self, snapshot: &Snapshot, now_ms: u64) {
        if self.snapshot_epoch != snapshot.epoch() || self.now_ms != now_ms {
            self.end();
        }
    }

    /// The target slot of the run's frames (meaningful while a run stands).
    #[inline(always)]
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// Forwards `frame` as the run's first frame was, if it continues the run:
    /// rewritten, and the target slot.
    #[inline(always)]
    pub fn forward(&self, frame: &mut [u8]) -> Option<u16> {
        // min_len is at least FAST_SPAN while a run stands: with max() the compiler
        // sees that the slice below is long enough, and the check goes.
        if frame.len() < self.min_len.max(RUN_SPAN) {
            return None;
        }
        let head: &mut [u8; RUN_SPAN] = frame.get_mut(..RUN_SPAN)?.try_into().ok()?;
        if HeadWords::new(*head).differ(&self.image, self.mask) {
            return None;
        }
        head[..8].copy_from_slice(&self.macs_head.to_ne_bytes());
        head[8..12].copy_from_slice(&self.macs_tail.to_ne_bytes());
        Some(self.slot)
    }
}

/// The general path alone: every frame, every drop reason. `decide` tries the fast
/// path first; tests compare the two.
#[doc(hidden)]
#[inline]
pub fn decide_without_fast_path(
    frame: &mut [u8],
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
    hash_hint: Option<u64>,
) -> Verdict {
    match decide_frame(frame, snapshot, port_mac, flows, now_ms, hash_hint) {
        Ok(verdict) => verdict,
        Err(reason) => Verdict::Drop(reason),
    }
}

/// Bytes the fast path reads at fixed offsets: Ethernet (14), IPv4 without options
/// (20), and TCP's first 20 bytes (UDP's 8, within the same span).
const FAST_SPAN: usize = 54;

/// The common frame (untagged IPv4 without options or fragments, TCP or UDP to a
/// service) through one bounds check and fixed offsets. None for anything else, or
/// for any check that fails: the general path then decides, with its drop reason. It
/// accepts exactly what the general path forwards, and forwards it the same way.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn fast_path(
    frame: &mut [u8],
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
    hash_hint: Option<u64>,
    run: &mut SameFlowRun,
) -> Option<Verdict> {
    let len = frame.len();
    let h: &[u8; FAST_SPAN] = frame.get(..FAST_SPAN)?.try_into().ok()?;
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    if h[0..6] != port_mac.0 || be16(12) != 0x0800 || h[14] != 0x45 || be16(20) & 0x3fff != 0 {
        return None;
    }
    let total = usize::from(be16(16));
    if total > len - 14 {
        return None;
    }
    let proto = h[23];
    let state = match proto {
        6 => {
            let header = usize::from(h[46] >> 4) * 4;
            if header < 20 || total < 20 + header {
                return None;
            }
            let flags = h[47];
            if flags & crate::wire::tcp::FLAG_SYN != 0 && flags & crate::wire::tcp::FLAG_ACK == 0 {
                FlowState::TcpSynOnly
            } else {
                FlowState::TcpEstablished
            }
        }
        17 => {
            let udp_len = usize::from(be16(38));
            if udp_len < 8 || udp_len > total.checked_sub(20)? {
                return None;
            }
            FlowState::Udp
        }
        _ => return None,
    };
    let (src, dst, src_port, dst_port) = (be32(26), be32(30), be16(34), be16(36));
    let service = snapshot.service(dst, proto, dst_port)?;
    let key = FlowKey::new(src, src_port, dst_port, service.slot);
    let hash =
        hash_hint.unwrap_or_else(|| flow_hash(src, dst, src_port, dst_port, proto, snapshot.seed));
    let start_run = hash == run.last_hash;
    run.last_hash = hash;
    // As it came in (`forward` rewrites it), for the run it may start: copied only
    // then, since most frames start no run.
    let head: Option<[u8; RUN_SPAN]> = if start_run {
        h[..RUN_SPAN].try_into().ok()
    } else {
        None
    };
    let Some(to) = forward(
        frame, service, &key, hash, state, snapshot, port_mac, flows, now_ms,
    ) else {
        // Nothing changed in the flow table: the run, if any, still stands.
        return Some(Verdict::Unserved {
            service: service.slot,
        });
    };
    // The rewritten MACs, read back: two loads.
    match (frame.get(..12), head) {
        (Some(m), Some(head)) if to.remembered => {
            *run = SameFlowRun {
                image: HeadWords::new(head),
                mask: if proto == 6 {
                    &TCP_RUN_MASK
                } else {
                    &UDP_RUN_MASK
                },
                min_len: (total + 14).max(FAST_SPAN),
                slot: to.slot,
                macs_head: u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]]),
                macs_tail: u32::from_ne_bytes([m[8], m[9], m[10], m[11]]),
                snapshot_epoch: snapshot.epoch(),
                now_ms,
                last_hash: hash,
            }
        }
        // Only the marker: writing a whole empty run cost 18 instructions a frame.
        _ => run.end(),
    }
    Some(Verdict::Forward { slot: to.slot })
}

#[inline(always)]
fn decide_frame(
    frame: &mut [u8],
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
    hash_hint: Option<u64>,
) -> Result<Verdict, DropReason> {
    let (ethertype, l3_offset, dst_mac) = l2_header(frame)?;
    match ethertype {
        EtherType::Ipv4 => {
            if dst_mac != port_mac {
                return Err(DropReason::NotOurMac);
            }
            decide_ipv4(
                frame, l3_offset, snapshot, port_mac, flows, now_ms, hash_hint,
            )
        }
        EtherType::Arp => {
            if dst_mac != port_mac && !dst_mac.is_broadcast() {
                return Err(DropReason::NotOurMac);
            }
            decide_arp(frame, l3_offset, snapshot, port_mac)
        }
        EtherType::Ipv6 => Err(DropReason::Ipv6),
        _ => Err(DropReason::UnknownEthertype),
    }
}

/// The flow hash of a TCP or UDP frame, from the fewest bytes that give it: lets a
/// burst start loading every flow's bucket before deciding on any frame (nothing
/// is validated here beyond bounds; `decide` does that).
#[inline(always)]
pub fn flow_hash_hint(frame: &[u8], seed: u64) -> Option<u64> {
    let (ethertype, l3, _) = l2_header(frame).ok()?;
    if ethertype != EtherType::Ipv4 {
        return None;
    }
    let ip = frame.get(l3..l3 + 20)?;
    let proto = ip[9];
    if proto != 6 && proto != 17 {
        return None;
    }
    let l4 = l3 + usize::from(ip[0] & 0x0f) * 4;
    let ports = frame.get(l4..l4 + 4)?;
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let src_port = u16::from_be_bytes([ports[0], ports[1]]);
    let dst_port = u16::from_be_bytes([ports[2], ports[3]]);
    Some(flow_hash(src, dst, src_port, dst_port, proto, seed))
}

/// The EtherType after at most one 802.1Q tag, where the L3 header starts, and the
/// destination MAC.
pub fn l2_header(frame: &[u8]) -> Result<(EtherType, usize, MacAddr), DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::Truncated)?;
    let dst_mac = eth.dst_addr();
    match eth.ethertype() {
        EtherType::Vlan => {
            let tag = VlanHeader::new_checked(eth.payload()).map_err(|_| DropReason::Truncated)?;
            match tag.ethertype() {
                EtherType::Vlan | EtherType::QinQ => Err(DropReason::StackedVlan),
                inner => Ok((inner, ethernet::HEADER_LEN + vlan::HEADER_LEN, dst_mac)),
            }
        }
        EtherType::QinQ => Err(DropReason::StackedVlan),
        other => Ok((other, ethernet::HEADER_LEN, dst_mac)),
    }
}

/// Sender of an ARP frame (for the control thread's neighbour learning).
pub fn arp_sender(frame: &[u8]) -> Option<(ArpOperation, Ipv4Addr, MacAddr)> {
    let (ethertype, l3_offset, _) = l2_header(frame).ok()?;
    if ethertype != EtherType::Arp {
        return None;
    }
    let arp = ArpPacket::new_checked(frame.get(l3_offset..)?).ok()?;
    Some((
        arp.operation(),
        arp.sender_protocol_addr(),
        arp.sender_hardware_addr(),
    ))
}

#[inline(always)]
fn decide_ipv4(
    frame: &mut [u8],
    l3_offset: usize,
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
    hash_hint: Option<u64>,
) -> Result<Verdict, DropReason> {
    let ip = Ipv4Packet::new_checked(&frame[l3_offset..]).map_err(|e| match e {
        crate::wire::Error::Truncated => DropReason::Truncated,
        crate::wire::Error::Malformed => DropReason::BadIpHeader,
    })?;
    let dst = ip.dst_addr();
    let dst_u32 = u32::from(dst);
    let to_vip = snapshot.is_vip(dst_u32);
    if !to_vip && dst != snapshot.real_addr {
        return Err(DropReason::NotOurAddress);
    }
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    let src_u32 = u32::from(ip.src_addr());
    let proto = ip.protocol();
    let (src_port, dst_port, state) = match proto {
        IpProtocol::Tcp if to_vip => {
            let tcp = TcpPacket::new_checked(ip.payload()).map_err(|_| DropReason::BadL4Header)?;
            let bare_syn = tcp.syn() && !tcp.ack();
            let state = if bare_syn {
                FlowState::TcpSynOnly
            } else {
                FlowState::TcpEstablished
            };
            (tcp.src_port(), tcp.dst_port(), state)
        }
        IpProtocol::Udp if to_vip => {
            let udp = UdpPacket::new_checked(ip.payload()).map_err(|_| DropReason::BadL4Header)?;
            (udp.src_port(), udp.dst_port(), FlowState::Udp)
        }
        IpProtocol::Tcp | IpProtocol::Udp => return probe_answer(proto, ip.payload()),
        IpProtocol::Icmp => {
            let icmp =
                IcmpPacket::new_checked(ip.payload()).map_err(|_| DropReason::BadL4Header)?;
            if icmp.msg_type() == IcmpMessage::DestinationUnreachable {
                if !to_vip {
                    return Ok(Verdict::Punt(PuntKind::ProbeAnswer));
                }
                let flow = quoted_flow(snapshot, dst_u32, icmp.payload())?;
                return icmp_error(frame, snapshot, port_mac, flows, now_ms, flow);
            }
            if icmp.msg_type() != IcmpMessage::EchoRequest {
                return Err(if to_vip {
                    DropReason::IcmpNotEcho
                } else {
                    DropReason::ToRealAddress
                });
            }
            return Ok(echo_reply(frame, l3_offset, port_mac));
        }
        _ if !to_vip => return Err(DropReason::ToRealAddress),
        _ => return Err(DropReason::UnknownProtocol),
    };
    let proto_u8 = u8::from(proto);
    let service = snapshot
        .service(dst_u32, proto_u8, dst_port)
        .ok_or(DropReason::NoService)?;
    let key = FlowKey::new(src_u32, src_port, dst_port, service.slot);
    let hash = hash_hint.unwrap_or_else(|| {
        flow_hash(
            src_u32,
            dst_u32,
            src_port,
            dst_port,
            proto_u8,
            snapshot.seed,
        )
    });
    Ok(
        match forward(
            frame, service, &key, hash, state, snapshot, port_mac, flows, now_ms,
        ) {
            Some(to) => Verdict::Forward { slot: to.slot },
            None => Verdict::Unserved {
                service: service.slot,
            },
        },
    )
}

/// The flow an ICMP error to `vip` is about, from the packet it quotes: one the VIP
/// sent to a client, whose addresses and ports, swapped, give the client's flow.
struct QuotedFlow<'s> {
    service: &'s Service,
    key: FlowKey,
    hash: u64,
}

fn quoted_flow<'s>(
    snapshot: &'s Snapshot,
    vip: u32,
    quote: &[u8],
) -> Result<QuotedFlow<'s>, DropReason> {
    let inner = QuotedIpv4Packet::new_checked(quote).map_err(|_| DropReason::IcmpErrorNotOurs)?;
    let proto = inner.protocol();
    if u32::from(inner.src_addr()) != vip || !matches!(proto, IpProtocol::Tcp | IpProtocol::Udp) {
        return Err(DropReason::IcmpErrorNotOurs);
    }
    // TCP and UDP both begin with the source port, then the destination port.
    let ports = UdpPacket::new_unchecked(inner.l4_head());
    let (vip_port, client_port) = (ports.src_port(), ports.dst_port());
    let client = u32::from(inner.dst_addr());
    let proto = u8::from(proto);
    let service = snapshot
        .service(vip, proto, vip_port)
        .ok_or(DropReason::IcmpErrorNotOurs)?;
    if !service.forwards_icmp_errors {
        return Err(DropReason::IcmpErrorOff);
    }
    Ok(QuotedFlow {
        service,
        key: FlowKey::new(client, client_port, vip_port, service.slot),
        hash: flow_hash(client, vip, client_port, vip_port, proto, snapshot.seed),
    })
}

/// An ICMP error about `flow`, to the target that owns it: its pinned one while
/// usable, else Maglev's, as the flow's next packet would go. Nothing is recorded.
fn icmp_error(
    frame: &mut [u8],
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
    flow: QuotedFlow,
) -> Result<Verdict, DropReason> {
    let service = flow.service;
    let unserved = Verdict::Unserved {
        service: service.slot,
    };
    let pinned = flows
        .get(&flow.key, flow.hash, now_ms)
        .map(|entry| entry.target())
        .filter(|&t| snapshot.usable_target(t).is_some());
    let Some(target) = pinned.or_else(|| service.pick(flow.hash, snapshot.targets())) else {
        return Ok(unserved);
    };
    let Some(mac) = snapshot.usable_target(target).map(|t| t.mac) else {
        return Ok(unserved);
    };
    rewrite_macs(frame, mac, port_mac);
    Ok(Verdict::IcmpError {
        slot: target.slot,
        service: service.slot,
    })
}

/// TCP or UDP to the real address: an answer to the doctor's probe if it is to one
/// of its ports, else dropped.
fn probe_answer(proto: IpProtocol, l4: &[u8]) -> Result<Verdict, DropReason> {
    let dst_port = match proto {
        IpProtocol::Tcp => TcpPacket::new_checked(l4).map(|t| t.dst_port()),
        _ => UdpPacket::new_checked(l4).map(|u| u.dst_port()),
    }
    .map_err(|_| DropReason::BadL4Header)?;
    if PROBE_PORTS.contains(&dst_port) {
        Ok(Verdict::Punt(PuntKind::ProbeAnswer))
    } else {
        Err(DropReason::ToRealAddress)
    }
}

/// Where `forward` sent a frame.
struct Forwarded {
    slot: u16,
    /// The flow table holds the flow, pinned to this target (false when the
    /// new-flow guard or a bucket of active flows left it unremembered).
    remembered: bool,
}

/// The flow's target (its pinned one while usable, else Maglev's), and the rewrite.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward(
    frame: &mut [u8],
    service: &Service,
    key: &FlowKey,
    hash: u64,
    state: FlowState,
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
) -> Option<Forwarded> {
    // A new flow, or one whose target is gone or down, takes Maglev's choice.
    let pick = || -> Option<(FlowTarget, MacAddr)> {
        let fresh = service.pick(hash, snapshot.targets())?;
        let target = snapshot.usable_target(fresh)?;
        Some((fresh, target.mac))
    };
    let (slot, target_mac, remembered) = match flows.get(key, hash, now_ms) {
        Some(mut entry) => {
            let (slot, mac) = match snapshot.usable_target(entry.target()) {
                Some(target) => (entry.target().slot, target.mac),
                None => {
                    let (fresh, mac) = pick()?;
                    entry.set_target(fresh);
                    (fresh.slot, mac)
                }
            };
            entry.touch(now_ms, state);
            (slot, mac, true)
        }
        None => {
            let (fresh, mac) = pick()?;
            let inserted = flows.insert(key, hash, fresh, state, now_ms).remembered();
            (fresh.slot, mac, inserted)
        }
    };
    rewrite_macs(frame, target_mac, port_mac);
    Some(Forwarded { slot, remembered })
}

/// To the target, from this port: the whole of a DSR forward's rewrite.
#[inline(always)]
fn rewrite_macs(frame: &mut [u8], target_mac: MacAddr, port_mac: MacAddr) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(target_mac);
    eth.set_src_addr(port_mac);
}

/// Echo request -> echo reply, in place: addresses swapped, TTL reset, both
/// checksums updated. `prepare` has checked the ICMP header.
fn echo_reply(frame: &mut [u8], l3_offset: usize, port_mac: MacAddr) -> Verdict {
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    let requester = eth.src_addr();
    eth.set_dst_addr(requester);
    eth.set_src_addr(port_mac);
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3_offset..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.set_ttl(REPLY_TTL);
    ip.fill_checksum();
    let mut icmp = IcmpPacket::new_unchecked(ip.payload_mut());
    if let Some(request) = IcmpEchoRepr::parse(&icmp) {
        request.reply().emit(&mut icmp);
    }
    Verdict::Reply(ReplyKind::IcmpEcho)
}

fn decide_arp(
    frame: &mut [u8],
    l3_offset: usize,
    snapshot: &Snapshot,
    port_mac: MacAddr,
) -> Result<Verdict, DropReason> {
    let arp = ArpPacket::new_checked(&frame[l3_offset..]).map_err(|e| match e {
        crate::wire::Error::Truncated => DropReason::Truncated,
        crate::wire::Error::Malformed => DropReason::BadArp,
    })?;
    match arp.operation() {
        ArpOperation::Reply => Ok(Verdict::Punt(PuntKind::ArpReply)),
        ArpOperation::Request => {
            let wanted = arp.target_protocol_addr();
            if !is_ours(snapshot, wanted) {
                return Err(DropReason::ArpNotForUs);
            }
            let request = ArpRepr::parse(&arp);
            if request.sender_protocol_addr != wanted
                && !(snapshot.arp_answers).answers(wanted == snapshot.real_addr)
            {
                // A router routes the VIPs to the real address (BGP scale-out), or
                // this appliance is a pair's standby: not its to answer.
                return Err(DropReason::ArpNotForUs);
            }
            if request.sender_protocol_addr == wanted {
                // Someone announcing our address (gratuitous ARP): not a question;
                // the control thread warns of another host claiming it.
                return if request.sender_hardware_addr == port_mac {
                    Err(DropReason::ArpNotForUs)
                } else {
                    Ok(Verdict::Punt(PuntKind::AddressClaim))
                };
            }
            write_arp_reply(frame, l3_offset, &request.reply(port_mac));
            Ok(Verdict::Reply(ReplyKind::Arp))
        }
        ArpOperation::Unknown(_) => Err(DropReason::ArpUnknownOperation),
    }
}

fn is_ours(snapshot: &Snapshot, addr: Ipv4Addr) -> bool {
    addr == snapshot.real_addr || snapshot.is_vip(u32::from(addr))
}

/// Writes `reply` over the request in `frame`, addressed to the one who asked.
fn write_arp_reply(frame: &mut [u8], l3_offset: usize, reply: &ArpRepr) {
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    eth.set_dst_addr(reply.target_hardware_addr);
    eth.set_src_addr(reply.sender_hardware_addr);
    let end = l3_offset + reply.buffer_len();
    reply.emit(&mut ArpPacket::new_unchecked(&mut frame[l3_offset..end]));
}
