//! Every wire parser over arbitrary bytes: each view is checked once with
//! `new_checked`, then every accessor and `Repr::parse` must answer without panic,
//! on the bytes as a frame and as each header's buffer. Also the pcap reader (bench
//! and tests read captures with it) and the helpers the control thread uses on
//! punted frames.
#![no_main]

use dataplane::forward::{arp_sender, l2_header};
use dataplane::wire::{
    ipv6ext, ArpPacket, ArpRepr, EthernetFrame, EthernetRepr, IcmpEchoRepr, IcmpPacket,
    Icmpv6Packet, Ipv4Packet, Ipv6Packet, NdpRepr, TcpPacket, UdpPacket, VlanHeader,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Ok(frame) = EthernetFrame::new_checked(input) {
        let _ = (frame.dst_addr(), frame.src_addr(), frame.ethertype());
        let _ = EthernetRepr::parse(&frame);
        headers(frame.payload());
    }
    headers(input);
    let _ = l2_header(input);
    let _ = arp_sender(input);
    let _ = dataplane::pcap::read(input);
    let _ = dataplane::pcap::count(input);
});

/// `bytes` as each header that may follow Ethernet (and IPv4).
fn headers(bytes: &[u8]) {
    if let Ok(vlan) = VlanHeader::new_checked(bytes) {
        let _ = (
            vlan.priority(),
            vlan.vlan_id(),
            vlan.ethertype(),
            vlan.payload().len(),
        );
    }
    if let Ok(arp) = ArpPacket::new_checked(bytes) {
        let _ = (
            arp.operation(),
            arp.sender_protocol_addr(),
            arp.target_protocol_addr(),
        );
        let repr = ArpRepr::parse(&arp);
        let _ = repr
            .reply(repr.target_hardware_addr)
            .frame(repr.sender_hardware_addr);
    }
    if let Ok(ip) = Ipv4Packet::new_checked(bytes) {
        let _ = (
            ip.version(),
            ip.header_len(),
            ip.total_len(),
            ip.ident(),
            ip.ttl(),
        );
        let _ = (
            ip.dont_frag(),
            ip.more_frags(),
            ip.frag_offset(),
            ip.is_fragment(),
        );
        let _ = (
            ip.protocol(),
            ip.src_addr(),
            ip.dst_addr(),
            ip.verify_checksum(),
        );
        transport(ip.payload());
    }
    if let Ok(ip) = Ipv6Packet::new_checked(bytes) {
        let _ = (
            ip.version(),
            ip.traffic_class(),
            ip.flow_label(),
            ip.hop_limit(),
        );
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if let Ok(t) = ipv6ext::walk(ip.next_header(), ip.payload()) {
            let upper = &ip.payload()[t.offset..];
            transport(upper);
            icmpv6(upper, src, dst);
        }
    }
    transport(bytes);
}

/// `bytes` as ICMPv6 from `src` to `dst`, and as NDP: a parsed message emitted again.
fn icmpv6(bytes: &[u8], src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) {
    let Ok(icmp) = Icmpv6Packet::new_checked(bytes) else {
        return;
    };
    let _ = (
        icmp.msg_type(),
        icmp.msg_code(),
        icmp.echo_ident(),
        icmp.mtu(),
    );
    let _ = (icmp.verify_checksum(src, dst), icmp.body().len());
    if let Ok(Some(ndp)) = NdpRepr::parse(&icmp) {
        let mut out = vec![0u8; ndp.buffer_len()];
        ndp.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), src, dst);
        let again = Icmpv6Packet::new_checked(&out[..]).map(|p| NdpRepr::parse(&p));
        assert_eq!(again, Ok(Ok(Some(ndp))), "NDP emitted does not parse back");
    }
}

fn transport(bytes: &[u8]) {
    if let Ok(tcp) = TcpPacket::new_checked(bytes) {
        let _ = (
            tcp.src_port(),
            tcp.dst_port(),
            tcp.seq_number(),
            tcp.ack_number(),
        );
        let _ = (
            tcp.header_len(),
            tcp.flags(),
            tcp.syn(),
            tcp.fin(),
            tcp.rst(),
        );
        let _ = (tcp.window(), tcp.checksum(), tcp.payload().len());
    }
    if let Ok(udp) = UdpPacket::new_checked(bytes) {
        let _ = (
            udp.src_port(),
            udp.dst_port(),
            udp.len(),
            udp.checksum(),
            udp.payload().len(),
        );
    }
    if let Ok(icmp) = IcmpPacket::new_checked(bytes) {
        let _ = (
            icmp.msg_type(),
            icmp.msg_code(),
            icmp.echo_ident(),
            icmp.echo_seq_no(),
        );
        let _ = (icmp.verify_checksum(), icmp.payload().len());
        if let Some(echo) = IcmpEchoRepr::parse(&icmp) {
            let reply = echo.reply();
            let mut out = vec![0u8; bytes.len()];
            reply.emit(&mut IcmpPacket::new_unchecked(&mut out[..]));
        }
    }
}
