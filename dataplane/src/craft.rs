//! Builders for well-formed frames, with correct checksums: the fixtures of the
//! packet tables, the DPDK integration tests and the benchmark's traffic. Compiled
//! for tests and with the `fixtures` feature only: frames dsrlb itself sends are
//! built by the wire module's `Repr::emit`.

use crate::wire::ipv6ext;
use crate::wire::{
    arp, checksum, ethernet, icmp, ipv4, tcp, udp, ArpOperation, ArpPacket, ArpRepr, EtherType,
    EthernetFrame, IcmpMessage, IcmpPacket, Icmpv6Message, Icmpv6Packet, IpProtocol, Ipv4Packet,
    Ipv6Packet, Ipv6Repr, MacAddr, NdpRepr, TcpPacket, UdpPacket,
};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Ethernet header followed by `payload`.
pub fn ethernet(dst: MacAddr, src: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; ethernet::HEADER_LEN + payload.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_dst_addr(dst);
    frame.set_src_addr(src);
    frame.set_ethertype(ethertype);
    frame.payload_mut().copy_from_slice(payload);
    bytes
}

/// Inserts an 802.1Q tag after the MAC addresses of an untagged frame.
pub fn vlan_tagged(frame: &[u8], vlan_id: u16) -> Vec<u8> {
    crate::wire::vlan::tagged(frame, vlan_id)
}

/// IPv4 header (20 bytes, DF, TTL 64) followed by `payload`, checksum filled.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let total = ipv4::MIN_HEADER_LEN + payload.len();
    let mut bytes = vec![0u8; total];
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.set_version_and_header_len(20);
    ip.set_total_len(total as u16);
    ip.set_ident(0x1234);
    ip.set_flags_and_offset(true, false, 0);
    ip.set_ttl(64);
    ip.set_protocol(proto);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
    ip.payload_mut().copy_from_slice(payload);
    bytes
}

/// `datagram` (a transport header and its data) from `src` to `dst` cut into IPv4
/// fragments of at most `size` bytes of it each (a multiple of 8), identification
/// `ident`, DF off, each with its header and checksum: the first carries the
/// transport header.
pub fn ipv4_fragments(
    (src, dst): (Ipv4Addr, Ipv4Addr),
    proto: IpProtocol,
    ident: u16,
    datagram: &[u8],
    size: usize,
) -> Vec<Vec<u8>> {
    cut(datagram, size, |offset, more, chunk| {
        let mut bytes = ipv4(src, dst, proto, chunk);
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.set_ident(ident);
        ip.set_flags_and_offset(false, more, offset);
        ip.fill_checksum();
        bytes
    })
}

/// The same for IPv6: each fragment a fixed header and a fragment header
/// (identification `ident`) naming `proto`.
pub fn ipv6_fragments(
    (src, dst): (Ipv6Addr, Ipv6Addr),
    proto: IpProtocol,
    ident: u32,
    datagram: &[u8],
    size: usize,
) -> Vec<Vec<u8>> {
    cut(datagram, size, |offset, more, chunk| {
        let mut payload = vec![0u8; ipv6ext::UNIT];
        payload[ipv6ext::field::NEXT_HEADER] = proto.into();
        let at = ipv6ext::field::FRAG_OFFSET_M;
        payload[at..at + 2].copy_from_slice(&(offset | u16::from(more)).to_be_bytes());
        payload[ipv6ext::field::FRAG_IDENT].copy_from_slice(&ident.to_be_bytes());
        payload.extend_from_slice(chunk);
        ipv6(src, dst, IpProtocol::Ipv6Fragment, &payload)
    })
}

/// `datagram` in chunks of `size`, each made a packet by `packet(offset, more to
/// come, chunk)`.
fn cut(datagram: &[u8], size: usize, packet: impl Fn(u16, bool, &[u8]) -> Vec<u8>) -> Vec<Vec<u8>> {
    let count = datagram.len().div_ceil(size);
    (datagram.chunks(size).enumerate())
        .map(|(i, chunk)| packet((i * size) as u16, i + 1 < count, chunk))
        .collect()
}

/// IPv6 header (hop limit 64) naming `next_header`, followed by `payload` (extension
/// headers and the upper layer, as given).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header,
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    let mut ip = Ipv6Packet::new_unchecked(&mut bytes[..]);
    repr.emit(&mut ip);
    ip.payload_mut().copy_from_slice(payload);
    bytes
}

/// An IPv6 extension header (hop-by-hop, routing or destination options) of
/// `units` 8-byte units after its first 8, naming `next`, its options all padding.
pub fn ipv6_extension(next: IpProtocol, units: u8) -> Vec<u8> {
    let mut header = vec![0u8; (usize::from(units) + 1) * ipv6ext::UNIT];
    header[ipv6ext::field::NEXT_HEADER] = next.into();
    header[ipv6ext::field::LENGTH] = units;
    header
}

/// TCP segment with a valid checksum.
pub fn tcp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut bytes = vec![0u8; tcp::MIN_HEADER_LEN + payload.len()];
    {
        let mut seg = TcpPacket::new_unchecked(&mut bytes[..]);
        seg.set_src_port(src_port);
        seg.set_dst_port(dst_port);
        seg.set_seq_number(1);
        seg.set_ack_number(if flags & tcp::FLAG_ACK != 0 { 1 } else { 0 });
        seg.set_header_len(20);
        seg.set_flags(flags);
        seg.set_window(64240);
    }
    bytes[tcp::MIN_HEADER_LEN..].copy_from_slice(payload);
    let sum = checksum::transport(src, dst, IpProtocol::Tcp.into(), &bytes);
    TcpPacket::new_unchecked(&mut bytes[..]).set_checksum(sum);
    bytes
}

/// UDP datagram with a valid checksum.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = udp::HEADER_LEN + payload.len();
    let mut bytes = vec![0u8; len];
    {
        let mut dgram = UdpPacket::new_unchecked(&mut bytes[..]);
        dgram.set_src_port(src_port);
        dgram.set_dst_port(dst_port);
        dgram.set_len(len as u16);
    }
    bytes[udp::HEADER_LEN..].copy_from_slice(payload);
    let sum = checksum::transport(src, dst, IpProtocol::Udp.into(), &bytes);
    UdpPacket::new_unchecked(&mut bytes[..]).set_checksum(if sum == 0 { 0xffff } else { sum });
    bytes
}

/// Ethernet + IPv4 + TCP.
pub fn tcp_frame(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: u8,
) -> Vec<u8> {
    tcp_data_frame(dst_mac, src_mac, src, dst, flags, &[])
}

/// Ethernet + IPv6 + TCP, its checksum over IPv6's pseudo-header.
pub fn tcp6_frame(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: (Ipv6Addr, u16),
    dst: (Ipv6Addr, u16),
    flags: u8,
) -> Vec<u8> {
    let mut segment = tcp(
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        src.1,
        dst.1,
        flags,
        &[],
    );
    TcpPacket::new_unchecked(&mut segment[..]).set_checksum(0);
    let sum = checksum::transport_v6(src.0, dst.0, IpProtocol::Tcp.into(), &segment);
    TcpPacket::new_unchecked(&mut segment[..]).set_checksum(sum);
    let ip = ipv6(src.0, dst.0, IpProtocol::Tcp, &segment);
    ethernet(dst_mac, src_mac, EtherType::Ipv6, &ip)
}

/// Ethernet + IPv4 + TCP carrying `payload`.
pub fn tcp_data_frame(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let seg = tcp(src.0, dst.0, src.1, dst.1, flags, payload);
    ethernet(
        dst_mac,
        src_mac,
        EtherType::Ipv4,
        &ipv4(src.0, dst.0, IpProtocol::Tcp, &seg),
    )
}

/// Ethernet + IPv4 + UDP.
pub fn udp_frame(
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    let dgram = udp(src.0, dst.0, src.1, dst.1, payload);
    ethernet(
        dst_mac,
        src_mac,
        EtherType::Ipv4,
        &ipv4(src.0, dst.0, IpProtocol::Udp, &dgram),
    )
}

/// ICMP echo message (request or reply) with a valid checksum.
pub fn icmp_echo(kind: IcmpMessage, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; icmp::HEADER_LEN + payload.len()];
    bytes[icmp::HEADER_LEN..].copy_from_slice(payload);
    let mut msg = IcmpPacket::new_unchecked(&mut bytes[..]);
    msg.set_msg_type(kind);
    msg.set_echo_ident(ident);
    msg.set_echo_seq_no(seq);
    msg.fill_checksum();
    bytes
}

/// ICMPv6 echo message (request or reply) with a valid checksum for `src` → `dst`.
pub fn icmpv6_echo(
    kind: Icmpv6Message,
    (ident, seq): (u16, u16),
    payload: &[u8],
    (src, dst): (Ipv6Addr, Ipv6Addr),
) -> Vec<u8> {
    let mut bytes = vec![0u8; crate::wire::icmpv6::HEADER_LEN + payload.len()];
    let mut msg = Icmpv6Packet::new_unchecked(&mut bytes[..]);
    msg.body_mut().copy_from_slice(payload);
    msg.set_msg_type(kind);
    msg.set_echo_ident(ident);
    msg.set_echo_seq_no(seq);
    msg.fill_checksum(src, dst);
    bytes
}

/// An ICMPv6 error (packet too big with `mtu`, or destination unreachable) quoting
/// `quoted`, with a valid checksum for `src` → `dst`.
pub fn icmpv6_error(
    kind: Icmpv6Message,
    mtu: u32,
    quoted: &[u8],
    (src, dst): (Ipv6Addr, Ipv6Addr),
) -> Vec<u8> {
    let mut bytes = vec![0u8; crate::wire::icmpv6::HEADER_LEN + quoted.len()];
    bytes[crate::wire::icmpv6::field::MTU..crate::wire::icmpv6::HEADER_LEN]
        .copy_from_slice(&mtu.to_be_bytes());
    let mut msg = Icmpv6Packet::new_unchecked(&mut bytes[..]);
    msg.body_mut().copy_from_slice(quoted);
    msg.set_msg_type(kind);
    msg.fill_checksum(src, dst);
    bytes
}

/// A neighbour solicitation or advertisement with a valid checksum for `src` → `dst`.
pub fn ndp(repr: &NdpRepr, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut bytes[..]), src, dst);
    bytes
}

/// Ethernet + ARP (Ethernet/IPv4), unpadded.
/// An ICMP destination unreachable (`code`, e.g. 4: fragmentation needed, with
/// `mtu`) quoting `quoted` (an IPv4 packet) cut to its header and 8 bytes, as routers
/// send it.
pub fn icmp_unreachable(code: u8, mtu: u16, quoted: &[u8]) -> Vec<u8> {
    let keep = quoted.len().min(usize::from(quoted[0] & 0x0f) * 4 + 8);
    let mut bytes = vec![0u8; icmp::HEADER_LEN + keep];
    bytes[icmp::HEADER_LEN..].copy_from_slice(&quoted[..keep]);
    bytes[6..8].copy_from_slice(&mtu.to_be_bytes());
    let mut msg = IcmpPacket::new_unchecked(&mut bytes[..]);
    msg.set_msg_type(IcmpMessage::DestinationUnreachable);
    msg.set_msg_code(code);
    msg.fill_checksum();
    bytes
}

pub fn arp_frame(
    eth_dst: MacAddr,
    operation: ArpOperation,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
) -> Vec<u8> {
    let repr = ArpRepr {
        operation,
        sender_hardware_addr: sender.0,
        sender_protocol_addr: sender.1,
        target_hardware_addr: target.0,
        target_protocol_addr: target.1,
    };
    let mut body = [0u8; arp::PACKET_LEN];
    repr.emit(&mut ArpPacket::new_unchecked(&mut body[..]));
    ethernet(eth_dst, sender.0, EtherType::Arp, &body)
}

/// Pads a frame to the 60-byte Ethernet minimum, as a NIC delivers it.
pub fn padded(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}
