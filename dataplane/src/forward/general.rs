//! The general path: every frame, every drop reason, through `wire`'s checked views.

use super::fragments::{first_fragment, later_fragment};
use super::steer::{may_ask_table, owner, steer, Flow};
use super::{
    rewrite_macs, Context, DropReason, PuntKind, ReplyKind, Verdict, PROBE_PORTS, REPLY_TTL,
};
use crate::flow::{Endpoint, Endpoint6, FlowKey, FlowState, FlowTable};
use crate::fragment::DatagramKey;
use crate::hash::{flow_hash, flow_hash6};
use crate::snapshot::{Service, Snapshot};
use crate::wire::tcp::{FLAG_ACK, FLAG_SYN};
use crate::wire::{
    ethernet, udp, vlan, ArpOperation, ArpPacket, ArpRepr, Error as WireError, EtherType,
    EthernetFrame, IcmpEchoRepr, IcmpMessage, IcmpPacket, IpProtocol, Ipv4Packet, MacAddr,
    QuotedIpv4Packet, TcpPacket, UdpPacket, VlanHeader,
};
use std::net::Ipv4Addr;

/// Every frame, every drop reason, through `wire`'s checked views.
#[inline(always)]
pub(super) fn decide_frame(
    ctx: &mut Context,
    frame: &mut [u8],
    hash_hint: Option<u64>,
) -> Result<Verdict, DropReason> {
    let (ethertype, l3_offset, dst_mac) = l2_header(frame)?;
    match ethertype {
        EtherType::Ipv4 => {
            if dst_mac != ctx.port_mac {
                return Err(DropReason::NotOurMac);
            }
            decide_ipv4(ctx, frame, l3_offset, hash_hint)
        }
        EtherType::Arp => {
            if dst_mac != ctx.port_mac && !dst_mac.is_broadcast() {
                return Err(DropReason::NotOurMac);
            }
            decide_arp(frame, l3_offset, ctx.snapshot, ctx.port_mac)
        }
        EtherType::Ipv6 => {
            if dst_mac != ctx.port_mac && !dst_mac.is_ipv6_multicast() {
                return Err(DropReason::NotOurMac);
            }
            super::ipv6::decide_ipv6(ctx, frame, l3_offset)
        }
        _ => Err(DropReason::UnknownEthertype),
    }
}

/// Why an IPv4 or IPv6 header that `wire` refused is dropped.
pub(super) fn ip_header_drop(error: WireError) -> DropReason {
    match error {
        WireError::Truncated => DropReason::Truncated,
        WireError::Malformed => DropReason::BadIpHeader,
    }
}

/// The flow hash of a TCP or UDP frame, from the fewest bytes that give it: lets a
/// burst start loading every flow's bucket before deciding on any frame (nothing
/// is validated here beyond bounds; `decide` does that). IPv6 frames with their
/// transport header right after the fixed one (those `fast6` takes) have one too.
#[inline(always)]
pub fn flow_hash_hint(frame: &[u8], seed: u64) -> Option<u64> {
    if let Some(f) = flow_fields(frame) {
        return Some(flow_hash(
            f.src, f.dst, f.src_port, f.dst_port, f.proto, seed,
        ));
    }
    let f = flow_fields6(frame)?;
    Some(flow_hash6(
        f.src, f.dst, f.src_port, f.dst_port, f.proto, seed,
    ))
}

/// `flow_hash_hint` under `snapshot`'s seed, having started to load what `decide`
/// will read for the frame: its service's steering slot, and its flow-table bucket
/// if `steer` may ask the table for it (`may_ask_table`). A burst's loads then
/// overlap instead of each frame waiting for its own.
#[inline(always)]
pub fn hint_and_prefetch(snapshot: &Snapshot, flows: &FlowTable, frame: &[u8]) -> Option<u64> {
    let seed = snapshot.seed;
    if let Some(f) = flow_fields(frame) {
        let hash = flow_hash(f.src, f.dst, f.src_port, f.dst_port, f.proto, seed);
        let service = snapshot.service(f.dst, f.proto, f.dst_port);
        prefetch::<u64>(flows, service, hash, || is_bare_syn(frame, f.l4));
        return Some(hash);
    }
    let f = flow_fields6(frame)?;
    let hash = flow_hash6(f.src, f.dst, f.src_port, f.dst_port, f.proto, seed);
    let service = snapshot.service6(f.dst, f.proto, f.dst_port);
    prefetch::<Endpoint6>(flows, service, hash, || is_bare_syn(frame, f.l4));
    Some(hash)
}

/// Starts loading the steering slot of a flow of `service`, and its bucket of the
/// family's flow table if `steer` may ask for it.
#[inline(always)]
fn prefetch<E: Endpoint>(
    flows: &FlowTable,
    service: Option<&Service>,
    hash: u64,
    is_bare_syn: impl FnOnce() -> bool,
) {
    let Some(service) = service else {
        return;
    };
    service.steering.prefetch(hash);
    if may_ask_table(service, is_bare_syn) {
        flows.prefetch::<E>(hash);
    }
}

/// Whether the TCP header at `l4` of a frame `flow_fields` took is a SYN without ACK
/// (false if the frame is too short to say).
#[inline(always)]
fn is_bare_syn(frame: &[u8], l4: usize) -> bool {
    frame
        .get(l4 + crate::wire::tcp::field::FLAGS)
        .is_some_and(|&f| f & (FLAG_SYN | FLAG_ACK) == FLAG_SYN)
}

/// What `flow_fields` reads: a TCP or UDP frame's addresses (`u32` for IPv4, `u128`
/// for IPv6), ports and protocol, and where its transport header starts.
struct FlowFields<A> {
    src: A,
    dst: A,
    src_port: u16,
    dst_port: u16,
    proto: u8,
    l4: usize,
}

/// Whether `proto` is one a flow hash is taken of.
#[inline(always)]
fn hashed(proto: u8) -> bool {
    proto == u8::from(IpProtocol::Tcp) || proto == u8::from(IpProtocol::Udp)
}

/// The ports of the transport header at `l4`, checked for bounds only.
#[inline(always)]
pub(super) fn ports_at(frame: &[u8], l4: usize) -> Option<(u16, u16)> {
    let ports = frame.get(l4..l4 + 4)?;
    Some((
        u16::from_be_bytes([ports[0], ports[1]]),
        u16::from_be_bytes([ports[2], ports[3]]),
    ))
}

/// An IPv4 TCP or UDP frame's `FlowFields`, checked for bounds only.
#[inline(always)]
fn flow_fields(frame: &[u8]) -> Option<FlowFields<u32>> {
    use crate::wire::ipv4::{field, MIN_HEADER_LEN};
    let (ethertype, l3, _) = l2_header(frame).ok()?;
    if ethertype != EtherType::Ipv4 {
        return None;
    }
    let ip = frame.get(l3..l3 + MIN_HEADER_LEN)?;
    let proto = ip[field::PROTOCOL];
    if !hashed(proto) {
        return None;
    }
    let l4 = l3 + usize::from(ip[field::VER_IHL] & 0x0f) * 4;
    let (src_port, dst_port) = ports_at(frame, l4)?;
    Some(FlowFields {
        src: crate::wire::read_ipv4(ip, field::SRC_ADDR.start).into(),
        dst: crate::wire::read_ipv4(ip, field::DST_ADDR.start).into(),
        src_port,
        dst_port,
        proto,
        l4,
    })
}

/// An IPv6 TCP or UDP frame's `FlowFields`, its transport header right after the
/// fixed one, checked for bounds only.
#[inline(always)]
fn flow_fields6(frame: &[u8]) -> Option<FlowFields<u128>> {
    use crate::wire::ipv6::{field, HEADER_LEN};
    let (ethertype, l3, _) = l2_header(frame).ok()?;
    if ethertype != EtherType::Ipv6 {
        return None;
    }
    let ip = frame.get(l3..l3 + HEADER_LEN)?;
    let proto = ip[field::NEXT_HEADER];
    if !hashed(proto) {
        return None;
    }
    let l4 = l3 + HEADER_LEN;
    let (src_port, dst_port) = ports_at(frame, l4)?;
    Some(FlowFields {
        src: crate::wire::read_ipv6(ip, field::SRC_ADDR).into(),
        dst: crate::wire::read_ipv6(ip, field::DST_ADDR).into(),
        src_port,
        dst_port,
        proto,
        l4,
    })
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
    ctx: &mut Context,
    frame: &mut [u8],
    l3_offset: usize,
    hash_hint: Option<u64>,
) -> Result<Verdict, DropReason> {
    let snapshot = ctx.snapshot;
    let ip = Ipv4Packet::new_checked(&frame[l3_offset..]).map_err(ip_header_drop)?;
    let dst = ip.dst_addr();
    let dst_u32 = u32::from(dst);
    let to_vip = snapshot.is_vip(dst_u32);
    if !to_vip && dst != snapshot.real_addr {
        return Err(DropReason::NotOurAddress);
    }
    let src_u32 = u32::from(ip.src_addr());
    let proto = ip.protocol();
    let datagram = ip.is_fragment().then(|| DatagramKey {
        src: src_u32.into(),
        dst: dst_u32.into(),
        ident: ip.ident().into(),
        proto: proto.into(),
        ipv6: false,
    });
    if let Some(datagram) = &datagram {
        if !to_vip || !matches!(proto, IpProtocol::Tcp | IpProtocol::Udp) {
            return Err(DropReason::Fragment);
        }
        if ip.frag_offset() != 0 {
            return Ok(later_fragment(ctx, frame, datagram));
        }
    }
    let (src_port, dst_port, state) = match proto {
        IpProtocol::Tcp | IpProtocol::Udp if to_vip => {
            transport_ports(proto, ip.payload(), datagram.is_some())?
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
                return Ok(icmp_error(ctx, frame, flow));
            }
            if icmp.msg_type() != IcmpMessage::EchoRequest {
                return Err(if to_vip {
                    DropReason::IcmpNotEcho
                } else {
                    DropReason::ToRealAddress
                });
            }
            return Ok(echo_reply(frame, l3_offset, ctx.port_mac));
        }
        _ if !to_vip => return Err(DropReason::ToRealAddress),
        _ => return Err(DropReason::UnknownProtocol),
    };
    let proto_u8 = u8::from(proto);
    let service = snapshot
        .service(dst_u32, proto_u8, dst_port)
        .ok_or(DropReason::NoService)?;
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
    let flow = Flow {
        key: FlowKey::new(src_u32, src_port, dst_port, service.slot),
        hash,
        state,
    };
    Ok(match &datagram {
        Some(datagram) => first_fragment(ctx, frame, service, &flow, datagram),
        None => forward_flow(ctx, frame, service, &flow),
    })
}

/// A TCP or UDP header's ports, and what it says of its flow's state. In a first
/// fragment (`first_fragment`) a UDP header's length is the whole datagram's, so only
/// the header itself must be there (a TCP header must be whole either way).
pub(super) fn transport_ports(
    proto: IpProtocol,
    l4: &[u8],
    first_fragment: bool,
) -> Result<(u16, u16, FlowState), DropReason> {
    match proto {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new_checked(l4).map_err(|_| DropReason::BadL4Header)?;
            let state = if tcp.syn() && !tcp.ack() {
                FlowState::TcpSynOnly
            } else {
                FlowState::TcpEstablished
            };
            Ok((tcp.src_port(), tcp.dst_port(), state))
        }
        IpProtocol::Udp if first_fragment => {
            let header = l4.get(..udp::HEADER_LEN).ok_or(DropReason::BadL4Header)?;
            let udp = UdpPacket::new_unchecked(header);
            Ok((udp.src_port(), udp.dst_port(), FlowState::Udp))
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(l4).map_err(|_| DropReason::BadL4Header)?;
            Ok((udp.src_port(), udp.dst_port(), FlowState::Udp))
        }
        _ => Err(DropReason::UnknownProtocol),
    }
}

/// A frame of `flow` to the target `steer` gives it, MACs rewritten; unserved if none.
#[inline(always)]
pub(super) fn forward_flow<E: Endpoint>(
    ctx: &mut Context,
    frame: &mut [u8],
    service: &Service,
    flow: &Flow<E>,
) -> Verdict {
    match steer(ctx, service, flow) {
        Some(to) => {
            rewrite_macs(frame, to.mac, ctx.port_mac);
            Verdict::Forward { slot: to.slot }
        }
        None => Verdict::Unserved {
            service: service.slot,
        },
    }
}

/// The flow an ICMP error to `vip` is about, from the packet it quotes: one the VIP
/// sent to a client, whose addresses and ports, swapped, give the client's flow.
pub(super) struct QuotedFlow<'s, E = u64> {
    pub service: &'s Service,
    pub key: FlowKey<E>,
    pub hash: u64,
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

/// An ICMP error about `flow`, to the target that owns it, where the flow's next
/// packet would go. Nothing is recorded.
pub(super) fn icmp_error<E: Endpoint>(
    ctx: &mut Context,
    frame: &mut [u8],
    flow: QuotedFlow<E>,
) -> Verdict {
    let service = flow.service;
    match owner(ctx, service, &flow.key, flow.hash) {
        Some((slot, mac)) => {
            rewrite_macs(frame, mac, ctx.port_mac);
            Verdict::IcmpError {
                slot,
                service: service.slot,
            }
        }
        None => Verdict::Unserved {
            service: service.slot,
        },
    }
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
