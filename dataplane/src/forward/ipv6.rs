//! IPv6 frames: TCP and UDP to a VIP's service go to a target as IPv4's do (only the
//! MACs change); neighbour solicitations for dsrlb's addresses and echo requests to
//! them are answered in place.

use super::fragments::{first_fragment, later_fragment};
use super::general::{
    forward_flow, icmp_error, ip_header_drop, l2_header, ports_at, transport_ports, QuotedFlow,
};
use super::steer::Flow;
use super::{Context, DropReason, PuntKind, ReplyKind, Verdict, REPLY_TTL};
use crate::flow::{Endpoint6, FlowKey6};
use crate::fragment::DatagramKey;
use crate::hash::flow_hash6;
use crate::snapshot::Snapshot;
use crate::wire::ipv6ext::{self, ChainError, Transport};
use crate::wire::ndp::{self, FLAG_OVERRIDE, FLAG_SOLICITED};
use crate::wire::{
    ipv6, ArpOperation, EtherType, EthernetFrame, Icmpv6Message, Icmpv6Packet, IpProtocol,
    Ipv6Packet, Ipv6Repr, MacAddr, NdpRepr,
};
use std::net::{IpAddr, Ipv6Addr};

/// An IPv6 frame to the port's MAC or an IPv6 multicast MAC.
pub(super) fn decide_ipv6(
    ctx: &mut Context,
    frame: &mut [u8],
    l3_offset: usize,
) -> Result<Verdict, DropReason> {
    let snapshot = ctx.snapshot;
    let l3 = frame.get(l3_offset..).ok_or(DropReason::Truncated)?;
    let ip = Ipv6Packet::new_checked(l3).map_err(ip_header_drop)?;
    let transport = ipv6ext::walk(ip.next_header(), ip.payload()).map_err(chain_drop)?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let l4 = ip.payload().get(transport.offset..).unwrap_or_default();
    if transport.protocol == IpProtocol::Icmpv6 && transport.fragment.is_none() {
        let message = Icmpv6Packet::new_checked(l4).map_err(|_| DropReason::BadL4Header)?;
        let error = matches!(
            message.msg_type(),
            Icmpv6Message::PacketTooBig | Icmpv6Message::DestinationUnreachable
        );
        if error && snapshot.is_vip6(u128::from(dst)) {
            let flow = quoted_flow6(snapshot, dst, message.body())?;
            return Ok(icmp_error(ctx, frame, flow));
        }
        let about = Icmpv6About::read(&message, src, dst, ip.hop_limit(), &transport)?;
        return icmpv6(ctx, frame, l3_offset, src, dst, about);
    }
    if !snapshot.is_vip6(u128::from(dst)) {
        return Err(if snapshot.real_addr6 == Some(dst) {
            DropReason::ToRealAddress
        } else {
            DropReason::NotOurAddress
        });
    }
    // RFC 8200 §4.5 tells a datagram's fragments by addresses and identification.
    let datagram = transport.fragment.map(|f| DatagramKey {
        src: u128::from(src),
        dst: u128::from(dst),
        ident: f.ident,
        proto: 0,
        ipv6: true,
    });
    if let (Some(fragment), Some(datagram)) = (transport.fragment, &datagram) {
        if !matches!(transport.protocol, IpProtocol::Tcp | IpProtocol::Udp) {
            return Err(DropReason::Fragment);
        }
        if !fragment.is_first() {
            return Ok(later_fragment(ctx, frame, datagram));
        }
    }
    let (src_port, dst_port, state) = transport_ports(transport.protocol, l4, datagram.is_some())?;
    let proto = u8::from(transport.protocol);
    let service = snapshot
        .service6(u128::from(dst), proto, dst_port)
        .ok_or(DropReason::NoService)?;
    let (src, dst) = (u128::from(src), u128::from(dst));
    let flow = Flow {
        key: FlowKey6::new6(src.to_be_bytes(), src_port, dst_port, service.slot),
        hash: flow_hash6(src, dst, src_port, dst_port, proto, snapshot.seed),
        state,
    };
    Ok(match &datagram {
        Some(datagram) => first_fragment(ctx, frame, service, &flow, datagram),
        None => forward_flow(ctx, frame, service, &flow),
    })
}

/// The flow an ICMPv6 error to `vip` (packet too big, destination unreachable) is
/// about, from the packet it quotes (as much as fits, RFC 4443): one the VIP sent to
/// a client, its extension headers walked to the ports; swapped, the client's flow.
fn quoted_flow6<'s>(
    snapshot: &'s Snapshot,
    vip: Ipv6Addr,
    quote: &[u8],
) -> Result<QuotedFlow<'s, Endpoint6>, DropReason> {
    let not_ours = DropReason::IcmpErrorNotOurs;
    let header = quote.get(..ipv6::HEADER_LEN).ok_or(not_ours)?;
    let inner = Ipv6Packet::new_unchecked(header);
    if inner.version() != 6 || inner.src_addr() != vip {
        return Err(not_ours);
    }
    let rest = &quote[ipv6::HEADER_LEN..];
    let transport = ipv6ext::walk(inner.next_header(), rest).map_err(|_| not_ours)?;
    let proto = transport.protocol;
    let later_fragment = transport.fragment.is_some_and(|f| f.offset != 0);
    if later_fragment || !matches!(proto, IpProtocol::Tcp | IpProtocol::Udp) {
        return Err(not_ours);
    }
    // TCP and UDP both begin with the source port, then the destination port.
    let (vip_port, client_port) = ports_at(rest, transport.offset).ok_or(not_ours)?;
    let (client, vip) = (u128::from(inner.dst_addr()), u128::from(vip));
    let proto = u8::from(proto);
    let service = snapshot.service6(vip, proto, vip_port).ok_or(not_ours)?;
    if !service.forwards_icmp_errors {
        return Err(DropReason::IcmpErrorOff);
    }
    Ok(QuotedFlow {
        service,
        key: FlowKey6::new6(client.to_be_bytes(), client_port, vip_port, service.slot),
        hash: flow_hash6(client, vip, client_port, vip_port, proto, snapshot.seed),
    })
}

fn chain_drop(error: ChainError) -> DropReason {
    match error {
        ChainError::Truncated => DropReason::Truncated,
        ChainError::HopByHopNotFirst => DropReason::Ipv6HopByHopNotFirst,
        ChainError::NoNextHeader => DropReason::Ipv6NoNextHeader,
        ChainError::TooLong => DropReason::Ipv6ChainTooLong,
    }
}

/// What an ICMPv6 message asks of dsrlb, read before the frame is rewritten.
enum Icmpv6About {
    /// A well-formed neighbour solicitation: for `target`, from `mac` if it said.
    Solicit {
        target: Ipv6Addr,
        mac: Option<MacAddr>,
    },
    /// A well-formed neighbour advertisement: `target` is at `mac`, if it said.
    Advert {
        target: Ipv6Addr,
        mac: Option<MacAddr>,
    },
    /// An echo request with no extension header before it.
    Echo,
    Other,
}

impl Icmpv6About {
    fn read(
        message: &Icmpv6Packet<&[u8]>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        transport: &Transport,
    ) -> Result<Icmpv6About, DropReason> {
        let kind = message.msg_type();
        if kind == Icmpv6Message::EchoRequest {
            return Ok(if transport.offset == 0 {
                Icmpv6About::Echo
            } else {
                Icmpv6About::Other
            });
        }
        let Some(ndp) = NdpRepr::parse(message).map_err(|_| DropReason::BadNdp)? else {
            return Ok(Icmpv6About::Other);
        };
        if hop_limit != ndp::HOP_LIMIT {
            return Err(DropReason::NdpHopLimit);
        }
        if !message.verify_checksum(src, dst) {
            return Err(DropReason::BadNdp);
        }
        Ok(match ndp {
            NdpRepr::Solicit { target, mac } => Icmpv6About::Solicit { target, mac },
            NdpRepr::Advert { target, mac, .. } => Icmpv6About::Advert { target, mac },
        })
    }
}

fn icmpv6(
    ctx: &Context,
    frame: &mut [u8],
    l3_offset: usize,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    about: Icmpv6About,
) -> Result<Verdict, DropReason> {
    let snapshot = ctx.snapshot;
    let to_vip = snapshot.is_vip6(u128::from(dst));
    let to_real = snapshot.real_addr6 == Some(dst);
    match about {
        Icmpv6About::Solicit { target, mac } => {
            if !answers_for(snapshot, target) {
                return Err(DropReason::NdpNotForUs);
            }
            if src.is_unspecified() {
                // Another host about to take the address: the control thread defends
                // it with a whole advertisement, which may not fit this frame.
                return Ok(Verdict::Punt(PuntKind::DuplicateAddressProbe));
            }
            let requester = sender_mac(mac, frame);
            Ok(neighbor_advert(
                frame,
                l3_offset,
                target,
                (src, requester),
                ctx.port_mac,
            ))
        }
        Icmpv6About::Advert { target, mac } => {
            let sender = sender_mac(mac, frame);
            if is_ours(snapshot, target) {
                // Another host announcing one of dsrlb's addresses.
                return if sender == ctx.port_mac {
                    Err(DropReason::NdpNotForUs)
                } else {
                    Ok(Verdict::Punt(PuntKind::AddressClaim))
                };
            }
            if to_real {
                // A target answering dsrlb's solicitation: the control thread learns
                // its MAC (if it asked).
                return Ok(Verdict::Punt(PuntKind::NeighborAdvert));
            }
            Err(DropReason::NdpNotForUs)
        }
        Icmpv6About::Echo if to_vip || to_real => Ok(echo_reply(frame, l3_offset, ctx.port_mac)),
        _ if to_vip => Err(DropReason::IcmpNotEcho),
        _ if to_real => Err(DropReason::ToRealAddress),
        _ => Err(DropReason::NotOurAddress),
    }
}

/// Whether dsrlb answers a neighbour solicitation for `target`: one of its addresses,
/// as the appliance's role says (like ARP, see `ArpAnswers`).
fn answers_for(snapshot: &Snapshot, target: Ipv6Addr) -> bool {
    let is_real = snapshot.real_addr6 == Some(target);
    is_ours(snapshot, target) && snapshot.arp_answers.answers(is_real)
}

/// The MAC an NDP message's link-layer option names, else its frame's sender.
fn sender_mac(option: Option<MacAddr>, frame: &[u8]) -> MacAddr {
    option.unwrap_or_else(|| EthernetFrame::new_unchecked(frame).src_addr())
}

fn is_ours(snapshot: &Snapshot, addr: Ipv6Addr) -> bool {
    snapshot.real_addr6 == Some(addr) || snapshot.is_vip6(u128::from(addr))
}

/// The address a punted duplicate address probe (a solicitation from `::`) asks
/// about: the control thread answers it to all nodes.
pub fn dad_probe(frame: &[u8]) -> Option<Ipv6Addr> {
    let (message, src) = ndp_of(frame)?;
    match NdpRepr::parse(&Icmpv6Packet::new_unchecked(message)).ok()?? {
        NdpRepr::Solicit { target, .. } if src.is_unspecified() => Some(target),
        _ => None,
    }
}

/// A punted frame's NDP message (checked as an ICMPv6 header) and its source.
fn ndp_of(frame: &[u8]) -> Option<(&[u8], Ipv6Addr)> {
    let (ethertype, l3_offset, _) = l2_header(frame).ok()?;
    if ethertype != EtherType::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(frame.get(l3_offset..)?).ok()?;
    let transport = ipv6ext::walk(ip.next_header(), ip.payload()).ok()?;
    if transport.protocol != IpProtocol::Icmpv6 {
        return None;
    }
    let payload = l3_offset + ipv6::HEADER_LEN;
    let end = payload + usize::from(ip.payload_len());
    let message = frame.get(payload + transport.offset..end)?;
    Icmpv6Packet::new_checked(message).ok()?;
    Some((message, ip.src_addr()))
}

/// Who a punted neighbour advertisement says is where, as `arp_sender` says it of
/// an ARP reply (for the control thread's neighbour learning): the target address at
/// the MAC its option names (else the frame's sender).
pub fn ndp_sender(frame: &[u8]) -> Option<(ArpOperation, IpAddr, MacAddr)> {
    let (message, _) = ndp_of(frame)?;
    match NdpRepr::parse(&Icmpv6Packet::new_unchecked(message)).ok()?? {
        NdpRepr::Advert { target, mac, .. } => {
            let mac = sender_mac(mac, frame);
            Some((ArpOperation::Reply, IpAddr::V6(target), mac))
        }
        NdpRepr::Solicit { .. } => None,
    }
}

/// Rewrites a solicitation for `target` into the advertisement that answers it,
/// from `target` at the port's MAC, solicited and overriding. The target's MAC
/// option goes in where the frame has room for it: every multicast solicitation
/// carries its sender's option, so has room (RFC 4861 §4.3); a unicast one without
/// it may be answered without (§7.2.4).
fn neighbor_advert(
    frame: &mut [u8],
    l3_offset: usize,
    target: Ipv6Addr,
    (to, to_mac): (Ipv6Addr, MacAddr),
    port_mac: MacAddr,
) -> Verdict {
    let flags = FLAG_SOLICITED | FLAG_OVERRIDE;
    let start = l3_offset + ipv6::HEADER_LEN;
    let room = frame.len().saturating_sub(start);
    let mut advert = NdpRepr::Advert {
        flags,
        target,
        mac: Some(port_mac),
    };
    if advert.buffer_len() > room {
        advert = NdpRepr::Advert {
            flags,
            target,
            mac: None,
        };
    }
    let ip = Ipv6Repr {
        src_addr: target,
        dst_addr: to,
        next_header: IpProtocol::Icmpv6,
        payload_len: advert.buffer_len(),
        hop_limit: ndp::HOP_LIMIT,
    };
    write_reply(frame, l3_offset, (to_mac, port_mac), &ip);
    let message = &mut frame[start..start + advert.buffer_len()];
    advert.emit(&mut Icmpv6Packet::new_unchecked(message), target, to);
    Verdict::Reply(ReplyKind::Ndp)
}

/// Echo request -> echo reply, in place: addresses swapped, hop limit reset, the
/// checksum filled for the new pseudo-header.
fn echo_reply(frame: &mut [u8], l3_offset: usize, port_mac: MacAddr) -> Verdict {
    let requester = EthernetFrame::new_unchecked(&*frame).src_addr();
    let request = Ipv6Packet::new_unchecked(&frame[l3_offset..]);
    let ip = Ipv6Repr {
        src_addr: request.dst_addr(),
        dst_addr: request.src_addr(),
        next_header: IpProtocol::Icmpv6,
        payload_len: usize::from(request.payload_len()),
        hop_limit: REPLY_TTL,
    };
    write_reply(frame, l3_offset, (requester, port_mac), &ip);
    let start = l3_offset + ipv6::HEADER_LEN;
    let mut icmp = Icmpv6Packet::new_unchecked(&mut frame[start..start + ip.payload_len]);
    icmp.set_msg_type(Icmpv6Message::EchoReply);
    icmp.fill_checksum(ip.src_addr, ip.dst_addr);
    Verdict::Reply(ReplyKind::IcmpEcho)
}

/// The Ethernet addresses and the IPv6 header of a reply written over its request.
fn write_reply(frame: &mut [u8], l3_offset: usize, (dst, src): (MacAddr, MacAddr), ip: &Ipv6Repr) {
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut frame[l3_offset..]));
}
