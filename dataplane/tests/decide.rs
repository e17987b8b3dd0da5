//! `forward::decide` as tables of packets: description, input frame, expected verdict,
//! expected output frame. Then the behaviours that need more than one packet: spread,
//! stickiness across snapshots, failover, drain, and no panic on any malformed input.
#![allow(clippy::unwrap_used)]

use dataplane::craft::*;
use dataplane::flow::{FlowTable, FlowTableConfig};
use dataplane::forward::{
    flow_hash_hint, Context, DropReason, PuntKind, ReplyKind, SameFlowRun, Verdict,
};
use dataplane::snapshot::{ArpAnswers, ServiceSpec, Snapshot, SnapshotSpec, TargetSpec};
use dataplane::wire::ipv6::ALL_NODES;
use dataplane::wire::ipv6::{multicast_mac, solicited_node};
use dataplane::wire::ndp::{FLAG_OVERRIDE, FLAG_SOLICITED};
use dataplane::wire::tcp::{FLAG_ACK, FLAG_SYN};
use dataplane::wire::Icmpv6Message::{EchoReply, EchoRequest};
use dataplane::wire::{
    ArpOperation, EtherType, IcmpMessage, Icmpv6Message, IpProtocol, MacAddr, NdpRepr,
};
use std::net::{Ipv4Addr, Ipv6Addr};
use IpProtocol::*;

const PORT_MAC: MacAddr = MacAddr([0x02, 0xdd, 0, 0, 0, 0x02]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xcc, 0, 0, 0, 0x01]);
const OTHER_MAC: MacAddr = MacAddr([0x02, 0xee, 0, 0, 0, 0x09]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const REAL: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const DEAD_VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 101);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0x100);
const REAL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 2);

/// `forward::decide` for a frame alone (no run before it).
fn decide(
    frame: &mut [u8],
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
) -> Verdict {
    let mut ctx = Context::new(snapshot, port_mac, flows, now_ms);
    dataplane::forward::decide(&mut ctx, frame, None)
}

/// `forward::decide` for the next frame of a burst decided with `run`.
fn decide_hinted(
    frame: &mut [u8],
    snapshot: &Snapshot,
    port_mac: MacAddr,
    flows: &mut FlowTable,
    now_ms: u64,
    hash_hint: Option<u64>,
    run: &mut SameFlowRun,
) -> Verdict {
    let mut ctx = Context::new(snapshot, port_mac, flows, now_ms);
    ctx.run = *run;
    let verdict = dataplane::forward::decide(&mut ctx, frame, hash_hint);
    *run = ctx.run;
    verdict
}

fn target_mac(last: u8) -> MacAddr {
    MacAddr([0x02, 0x11, 0, 0, 0, last])
}

fn target(last: u8) -> TargetSpec {
    TargetSpec {
        addr: Ipv4Addr::new(10, 99, 0, last).into(),
        mac: Some(target_mac(last)),
        weight: 1,
        healthy: true,
    }
}

/// An IPv6 target at fd00:99::`last`, at the same MAC as its IPv4 twin.
fn target6(last: u8) -> TargetSpec {
    TargetSpec {
        addr: Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, u16::from(last)).into(),
        ..target(last)
    }
}

fn service(vip: Ipv4Addr, proto: IpProtocol, port: u16, targets: Vec<TargetSpec>) -> ServiceSpec {
    ServiceSpec {
        forwards_icmp_errors: true,
        tracking: Default::default(),
        vip: vip.into(),
        proto,
        port,
        targets,
    }
}

fn spec(services: Vec<ServiceSpec>) -> SnapshotSpec {
    SnapshotSpec {
        real_addr: REAL,
        real_addr6: Some(REAL6),
        arp_answers: ArpAnswers::Every,
        seed: 42,
        table_size: 65537,
        services,
    }
}

/// VIP:80/tcp -> t11; VIP:any/udp -> t11; DEAD_VIP:80/tcp -> a target that is down.
fn single_target_snapshot() -> Snapshot {
    let mut down = target(13);
    down.healthy = false;
    Snapshot::build(
        &spec(vec![
            service(VIP, IpProtocol::Tcp, 80, vec![target(11)]),
            service(VIP, IpProtocol::Udp, 0, vec![target(11)]),
            service(DEAD_VIP, IpProtocol::Tcp, 80, vec![down]),
            ServiceSpec {
                vip: VIP6.into(),
                ..service(VIP, IpProtocol::Tcp, 80, vec![target6(11)])
            },
            ServiceSpec {
                vip: VIP6.into(),
                ..service(VIP, IpProtocol::Udp, 0, vec![target6(11)])
            },
        ]),
        None,
    )
    .unwrap()
}

fn flows() -> FlowTable {
    FlowTable::new(FlowTableConfig {
        capacity: 1 << 16,
        ..FlowTableConfig::default()
    })
}

fn with_macs(frame: &[u8], dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[0..6].copy_from_slice(&dst.0);
    out[6..12].copy_from_slice(&src.0);
    out
}

fn syn_to(dst: (Ipv4Addr, u16)) -> Vec<u8> {
    tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 40000), dst, FLAG_SYN)
}

fn echo_request_to(dst: Ipv4Addr) -> Vec<u8> {
    let msg = icmp_echo(IcmpMessage::EchoRequest, 7, 1, b"ping");
    ethernet(
        PORT_MAC,
        CLIENT_MAC,
        EtherType::Ipv4,
        &ipv4(CLIENT, dst, IpProtocol::Icmp, &msg),
    )
}

fn echo_reply_from(src: Ipv4Addr) -> Vec<u8> {
    let msg = icmp_echo(IcmpMessage::EchoReply, 7, 1, b"ping");
    ethernet(
        CLIENT_MAC,
        PORT_MAC,
        EtherType::Ipv4,
        &ipv4(src, CLIENT, IpProtocol::Icmp, &msg),
    )
}

const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 254);
const ROUTER_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 0xfe]);

/// A router's "fragmentation needed" (MTU 1400) to `to`, quoting `quoted`: an IPv4
/// packet a VIP sent, cut as routers cut it.
fn too_big(to: Ipv4Addr, quoted: &[u8]) -> Vec<u8> {
    let icmp = icmp_unreachable(4, 1400, quoted);
    ethernet(
        PORT_MAC,
        ROUTER_MAC,
        EtherType::Ipv4,
        &ipv4(ROUTER, to, IpProtocol::Icmp, &icmp),
    )
}

/// The 1500-byte reply a target sent from the VIP's port to the client.
fn reply_from(vip: (Ipv4Addr, u16), proto: IpProtocol) -> Vec<u8> {
    let body = [0u8; 1460];
    let l4 = match proto {
        IpProtocol::Udp => udp(vip.0, CLIENT, vip.1, 40000, &body),
        _ => tcp(vip.0, CLIENT, vip.1, 40000, FLAG_ACK, &body),
    };
    ipv4(vip.0, CLIENT, proto, &l4)
}

fn arp_request_for(addr: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::Request,
        (CLIENT_MAC, CLIENT),
        (MacAddr::ZERO, addr),
    )
}

fn mutate(mut frame: Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    f(&mut frame);
    frame
}

enum Output {
    Unchanged,
    Bytes(Vec<u8>),
}

/// An IPv6 frame from the client toward `fd00:99::100` behind `chain`, whose first
/// header is `first`, and `upper` bytes of upper layer.
fn ipv6_frame(dst_mac: MacAddr, first: IpProtocol, chain: &[Vec<u8>], upper: usize) -> Vec<u8> {
    let mut payload = chain.concat();
    payload.resize(payload.len() + upper, 0xaa);
    let ip = ipv6(CLIENT6, VIP6, first, &payload);
    ethernet(dst_mac, CLIENT_MAC, EtherType::Ipv6, &ip)
}

fn ipv6_case(
    what: &'static str,
    dst_mac: MacAddr,
    first: IpProtocol,
    chain: &[Vec<u8>],
    upper: usize,
    reason: DropReason,
) -> Case {
    Case {
        what,
        input: ipv6_frame(dst_mac, first, chain, upper),
        verdict: Verdict::Drop(reason),
        output: Output::Unchanged,
    }
}

fn ext(next: IpProtocol, units: u8) -> Vec<u8> {
    ipv6_extension(next, units)
}

fn solicited_mac() -> MacAddr {
    multicast_mac(solicited_node(VIP6))
}

/// A TCP SYN or UDP datagram from the client to `VIP6`:`port` behind `chain`
/// (first header `first`, or the transport's if the chain is empty). dsrlb checks
/// no transport checksum, so the IPv4-pseudo-header ones the builders give will do.
fn ipv6_l4(
    dst: Ipv6Addr,
    proto: IpProtocol,
    port: u16,
    chain: &[Vec<u8>],
    first: IpProtocol,
) -> Vec<u8> {
    let l4 = match proto {
        Udp => udp(CLIENT, VIP, 40000, port, b"hello"),
        _ => tcp(CLIENT, VIP, 40000, port, FLAG_SYN, &[]),
    };
    let mut payload = chain.concat();
    payload.extend_from_slice(&l4);
    let first = if chain.is_empty() { proto } else { first };
    ethernet(
        PORT_MAC,
        CLIENT_MAC,
        EtherType::Ipv6,
        &ipv6(CLIENT6, dst, first, &payload),
    )
}

/// The client's IPv4 packet in a frame to the port.
fn frame_of(ip: &[u8]) -> Vec<u8> {
    ethernet(PORT_MAC, CLIENT_MAC, EtherType::Ipv4, ip)
}

/// The client's IPv6 packet in a frame to the port.
fn frame6_of(ip: &[u8]) -> Vec<u8> {
    ethernet(PORT_MAC, CLIENT_MAC, EtherType::Ipv6, ip)
}

/// A 3000-byte UDP datagram from the client's `port` to VIP:5353 in three IPv4
/// fragments (1480, 1480 and 48 bytes of it), identification `ident`.
fn datagram_fragments(port: u16, ident: u16) -> Vec<Vec<u8>> {
    let datagram = udp(CLIENT, VIP, port, 5353, &[0x5a; 3000]);
    ipv4_fragments((CLIENT, VIP), Udp, ident, &datagram, 1480)
}

/// The same to VIP6, in IPv6 frames with their frame header.
fn datagram_fragments6(port: u16, ident: u32) -> Vec<Vec<u8>> {
    let datagram = udp(CLIENT, VIP, port, 5353, &[0x5a; 3000]);
    ipv6_fragments((CLIENT6, VIP6), Udp, ident, &datagram, 1448)
}

/// The fragment header of a first fragment (offset 0, more to come) naming `next`.
fn fragment_header(next: IpProtocol) -> Vec<u8> {
    vec![next.into(), 0, 0, 1, 0, 0, 0, 7]
}

/// An NDP message from `src` to `dst` with hop limit `hop_limit`, at `dst_mac`.
fn ndp_frame(
    (dst_mac, src_mac): (MacAddr, MacAddr),
    (src, dst): (Ipv6Addr, Ipv6Addr),
    repr: NdpRepr,
    hop_limit: u8,
) -> Vec<u8> {
    let message = ndp(&repr, src, dst);
    let mut frame = ethernet(
        dst_mac,
        src_mac,
        EtherType::Ipv6,
        &ipv6(src, dst, Icmpv6, &message),
    );
    frame[14 + 7] = hop_limit;
    frame
}

/// The client's solicitation for `target`, to its solicited-node group.
fn solicit(target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    let repr = NdpRepr::Solicit {
        target,
        mac: Some(CLIENT_MAC),
    };
    ndp_frame(
        (multicast_mac(group), CLIENT_MAC),
        (CLIENT6, group),
        repr,
        255,
    )
}

/// dsrlb's advertisement of `target` at its port's MAC, to `to` at `to_mac`.
fn advert(target: Ipv6Addr, (to, to_mac): (Ipv6Addr, MacAddr), flags: u8, option: bool) -> Vec<u8> {
    let repr = NdpRepr::Advert {
        flags,
        target,
        mac: option.then_some(PORT_MAC),
    };
    ndp_frame((to_mac, PORT_MAC), (target, to), repr, 255)
}

const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0xfe);

/// A router's "packet too big" (MTU 1400) to `to`, quoting the first 1232 bytes of
/// a 1500-byte TCP segment (or UDP datagram) a target sent from `from`:`port` to the
/// client, behind `chain` (first header `first` if any).
fn too_big6(
    to: Ipv6Addr,
    from: Ipv6Addr,
    (proto, port): (IpProtocol, u16),
    chain: &[Vec<u8>],
    first: IpProtocol,
) -> Vec<u8> {
    let body = [0u8; 1440];
    let l4 = match proto {
        Udp => udp(VIP, CLIENT, port, 40000, &body),
        _ => tcp(VIP, CLIENT, port, 40000, FLAG_ACK, &body),
    };
    let mut payload = chain.concat();
    payload.extend_from_slice(&l4);
    let first = if chain.is_empty() { proto } else { first };
    let mut quoted = ipv6(from, CLIENT6, first, &payload);
    quoted.truncate(1232);
    let message = icmpv6_error(Icmpv6Message::PacketTooBig, 1400, &quoted, (ROUTER6, to));
    ethernet(
        PORT_MAC,
        ROUTER_MAC,
        EtherType::Ipv6,
        &ipv6(ROUTER6, to, Icmpv6, &message),
    )
}

fn echo6(
    kind: Icmpv6Message,
    (src, dst): (Ipv6Addr, Ipv6Addr),
    macs: (MacAddr, MacAddr),
) -> Vec<u8> {
    let message = icmpv6_echo(kind, (7, 1), b"ping", (src, dst));
    ethernet(
        macs.0,
        macs.1,
        EtherType::Ipv6,
        &ipv6(src, dst, Icmpv6, &message),
    )
}

struct Case {
    what: &'static str,
    input: Vec<u8>,
    verdict: Verdict,
    output: Output,
}

fn forward_to_t11(frame: &[u8]) -> Output {
    Output::Bytes(with_macs(frame, target_mac(11), PORT_MAC))
}

fn cases(snapshot: &Snapshot) -> Vec<Case> {
    let t11 = snapshot
        .service(u32::from(VIP), 6, 80)
        .unwrap()
        .target_slots[0];
    let udp_t11 = snapshot
        .service(u32::from(VIP), 17, 0)
        .unwrap()
        .target_slots[0];
    let dead_service = snapshot.service(u32::from(DEAD_VIP), 6, 80).unwrap().slot;
    let web = snapshot.service(u32::from(VIP), 6, 80).unwrap().slot;
    let echo = snapshot.service(u32::from(VIP), 17, 0).unwrap().slot;
    let tcp_too_big = too_big(VIP, &reply_from((VIP, 80), IpProtocol::Tcp));
    let udp_too_big = too_big(VIP, &reply_from((VIP, 5353), IpProtocol::Udp));
    let syn = syn_to((VIP, 80));
    let first_fragment = mutate(syn.clone(), |f| f[20] = 0x20);
    let udp_fragments: Vec<Vec<u8>> = datagram_fragments(40000, 7)
        .iter()
        .map(|f| frame_of(f))
        .collect();
    let first_fragment6 = ipv6_l4(VIP6, Tcp, 80, &[fragment_header(Tcp)], Ipv6Fragment);
    let udp_fragments6 = datagram_fragments6(40000, 7);
    let udp = udp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 40000), (VIP, 5353), b"hello");
    let service6 = |proto| snapshot.service6(u128::from(VIP6), proto, 80).unwrap();
    let (t11_v6, udp_t11_v6) = (service6(6).target_slots[0], service6(17).target_slots[0]);
    let syn6 = ipv6_l4(VIP6, Tcp, 80, &[], Tcp);
    let chained6 = ipv6_l4(
        VIP6,
        Tcp,
        80,
        &[
            ext(Ipv6Routing, 1),
            ext(Ipv6DestinationOptions, 0),
            ext(Tcp, 2),
        ],
        HopByHop,
    );
    let udp6 = ipv6_l4(VIP6, Udp, 5353, &[], Udp);
    let web6 = service6(6).slot;
    let echo6_slot = snapshot.service6(u128::from(VIP6), 17, 0).unwrap().slot;
    let tcp_too_big6 = too_big6(VIP6, VIP6, (Tcp, 80), &[], Tcp);
    let chained_too_big6 = too_big6(
        VIP6,
        VIP6,
        (Tcp, 80),
        &[ext(Ipv6DestinationOptions, 1), ext(Tcp, 0)],
        Ipv6DestinationOptions,
    );
    let udp_too_big6 = too_big6(VIP6, VIP6, (Udp, 5353), &[], Udp);
    let dad_probe = ndp_frame(
        (solicited_mac(), CLIENT_MAC),
        (Ipv6Addr::UNSPECIFIED, solicited_node(VIP6)),
        NdpRepr::Solicit {
            target: VIP6,
            mac: None,
        },
        255,
    );
    let tagged = vlan_tagged(&syn, 100);
    let padded_ack = padded(tcp_frame(
        PORT_MAC,
        CLIENT_MAC,
        (CLIENT, 40001),
        (VIP, 80),
        FLAG_ACK,
    ));
    vec![
        Case {
            what:
                "fragmentation needed about VIP:80's flow goes to its target, only the MACs change",
            output: forward_to_t11(&tcp_too_big),
            input: tcp_too_big.clone(),
            verdict: Verdict::IcmpError {
                slot: t11,
                service: web,
            },
        },
        Case {
            what: "destination unreachable about a UDP flow of the any-port service",
            output: forward_to_t11(&udp_too_big),
            input: udp_too_big,
            verdict: Verdict::IcmpError {
                slot: udp_t11,
                service: echo,
            },
        },
        Case {
            what: "an ICMP error quoting a packet the VIP did not send",
            input: too_big(
                VIP,
                &reply_from((Ipv4Addr::new(10, 99, 0, 11), 80), IpProtocol::Tcp),
            ),
            verdict: Verdict::Drop(DropReason::IcmpErrorNotOurs),
            output: Output::Unchanged,
        },
        Case {
            what: "an ICMP error quoting a port no service listens on",
            input: too_big(VIP, &reply_from((VIP, 81), IpProtocol::Tcp)),
            verdict: Verdict::Drop(DropReason::IcmpErrorNotOurs),
            output: Output::Unchanged,
        },
        Case {
            what: "an ICMP error quoting less than 8 bytes of TCP",
            input: mutate(tcp_too_big.clone(), |f| {
                f.truncate(f.len() - 1);
                // The outer lengths follow the cut: IP total length, then nothing else.
                let total = u16::from_be_bytes([f[16], f[17]]) - 1;
                f[16..18].copy_from_slice(&total.to_be_bytes());
            }),
            verdict: Verdict::Drop(DropReason::IcmpErrorNotOurs),
            output: Output::Unchanged,
        },
        Case {
            what: "an ICMP error about a flow of a service without a usable target",
            input: too_big(DEAD_VIP, &reply_from((DEAD_VIP, 80), IpProtocol::Tcp)),
            verdict: Verdict::Unserved {
                service: dead_service,
            },
            output: Output::Unchanged,
        },
        Case {
            what: "an ICMP error to the real address is the doctor's",
            input: too_big(REAL, &reply_from((REAL, 61000), IpProtocol::Udp)),
            verdict: Verdict::Punt(PuntKind::ProbeAnswer),
            output: Output::Unchanged,
        },
        Case {
            what: "TCP SYN to VIP:80 goes to t11, only the MACs change",
            output: forward_to_t11(&syn),
            input: syn.clone(),
            verdict: Verdict::Forward { slot: t11 },
        },
        Case {
            what: "UDP to VIP, any-port service",
            output: forward_to_t11(&udp),
            input: udp.clone(),
            verdict: Verdict::Forward { slot: udp_t11 },
        },
        Case {
            what: "802.1Q-tagged SYN keeps its tag",
            output: forward_to_t11(&tagged),
            input: tagged,
            verdict: Verdict::Forward { slot: t11 },
        },
        Case {
            what: "padded minimum-size ACK keeps its padding",
            output: forward_to_t11(&padded_ack),
            input: padded_ack,
            verdict: Verdict::Forward { slot: t11 },
        },
        Case {
            what: "TCP to a VIP port with no service",
            input: syn_to((VIP, 81)),
            verdict: Verdict::Drop(DropReason::NoService),
            output: Output::Unchanged,
        },
        Case {
            what: "service whose only target is down",
            input: syn_to((DEAD_VIP, 80)),
            verdict: Verdict::Unserved {
                service: dead_service,
            },
            output: Output::Unchanged,
        },
        Case {
            what: "IPv4 to an address that is not ours",
            input: syn_to((Ipv4Addr::new(10, 99, 0, 200), 80)),
            verdict: Verdict::Drop(DropReason::NotOurAddress),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv4 to the VIP but another MAC (flooded)",
            input: with_macs(&syn, OTHER_MAC, CLIENT_MAC),
            verdict: Verdict::Drop(DropReason::NotOurMac),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv4 to the VIP on broadcast MAC",
            input: with_macs(&syn, MacAddr::BROADCAST, CLIENT_MAC),
            verdict: Verdict::Drop(DropReason::NotOurMac),
            output: Output::Unchanged,
        },
        Case {
            what: "TCP to the real address",
            input: syn_to((REAL, 22)),
            verdict: Verdict::Drop(DropReason::ToRealAddress),
            output: Output::Unchanged,
        },
        Case {
            what: "a target's SYN-ACK to the doctor's probe port on the real address",
            input: tcp_frame(
                PORT_MAC,
                OTHER_MAC,
                (VIP, 80),
                (REAL, 61000),
                FLAG_SYN | FLAG_ACK,
            ),
            verdict: Verdict::Punt(PuntKind::ProbeAnswer),
            output: Output::Unchanged,
        },
        Case {
            what: "UDP to the real address on the last probe port",
            input: udp_frame(PORT_MAC, OTHER_MAC, (VIP, 5353), (REAL, 61999), b"t1"),
            verdict: Verdict::Punt(PuntKind::ProbeAnswer),
            output: Output::Unchanged,
        },
        Case {
            what: "UDP to the real address just past the probe ports",
            input: udp_frame(PORT_MAC, OTHER_MAC, (VIP, 5353), (REAL, 62000), b"t1"),
            verdict: Verdict::Drop(DropReason::ToRealAddress),
            output: Output::Unchanged,
        },
        Case {
            what: "ICMP destination unreachable to the real address",
            input: ethernet(
                PORT_MAC,
                OTHER_MAC,
                EtherType::Ipv4,
                &ipv4(VIP, REAL, IpProtocol::Icmp, &{
                    let mut m = icmp_echo(IcmpMessage::EchoRequest, 0, 0, &[0; 28]);
                    m[0] = 3;
                    m
                }),
            ),
            verdict: Verdict::Punt(PuntKind::ProbeAnswer),
            output: Output::Unchanged,
        },
        Case {
            what: "frame shorter than an Ethernet header",
            input: syn[..10].to_vec(),
            verdict: Verdict::Drop(DropReason::Truncated),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv4 total length beyond the frame",
            input: syn[..40].to_vec(),
            verdict: Verdict::Drop(DropReason::Truncated),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv4 version 5",
            input: mutate(syn.clone(), |f| f[14] = 0x55),
            verdict: Verdict::Drop(DropReason::BadIpHeader),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv4 header length 16",
            input: mutate(syn.clone(), |f| f[14] = 0x44),
            verdict: Verdict::Drop(DropReason::BadIpHeader),
            output: Output::Unchanged,
        },
        Case {
            what: "first fragment to the VIP goes like its flow",
            output: forward_to_t11(&first_fragment),
            input: first_fragment.clone(),
            verdict: Verdict::Forward { slot: t11 },
        },
        Case {
            what: "first fragment of UDP: only the header's 8 bytes need be there",
            output: forward_to_t11(&udp_fragments[0]),
            input: udp_fragments[0].clone(),
            verdict: Verdict::Forward { slot: udp_t11 },
        },
        Case {
            what: "first fragment cutting the UDP header short",
            // Four bytes of it, more fragments to come (MF in byte 6 of the header).
            input: mutate(
                frame_of(&ipv4(CLIENT, VIP, Udp, &[0x9c, 0x40, 0x14, 0xe9])),
                |f| f[20] = 0x20,
            ),
            verdict: Verdict::Drop(DropReason::BadL4Header),
            output: Output::Unchanged,
        },
        Case {
            what: "later fragment before its first is held",
            input: mutate(syn.clone(), |f| f[21] = 0x10),
            verdict: Verdict::Hold,
            output: Output::Unchanged,
        },
        Case {
            what: "ICMP echo in fragments to the VIP",
            input: frame_of(
                &ipv4_fragments(
                    (CLIENT, VIP),
                    Icmp,
                    9,
                    &icmp_echo(IcmpMessage::EchoRequest, 1, 1, &[0; 64]),
                    48,
                )[0],
            ),
            verdict: Verdict::Drop(DropReason::Fragment),
            output: Output::Unchanged,
        },
        Case {
            what: "fragment to the real address",
            input: frame_of(&ipv4_fragments((CLIENT, REAL), Udp, 9, &[0; 64], 32)[0]),
            verdict: Verdict::Drop(DropReason::Fragment),
            output: Output::Unchanged,
        },
        Case {
            what: "GRE to the VIP",
            input: ethernet(
                PORT_MAC,
                CLIENT_MAC,
                EtherType::Ipv4,
                &ipv4(CLIENT, VIP, IpProtocol::Unknown(47), &[0; 8]),
            ),
            verdict: Verdict::Drop(DropReason::UnknownProtocol),
            output: Output::Unchanged,
        },
        Case {
            what: "TCP data offset below 20",
            input: mutate(syn.clone(), |f| f[46] = 0x40),
            verdict: Verdict::Drop(DropReason::BadL4Header),
            output: Output::Unchanged,
        },
        Case {
            what: "UDP length beyond the datagram",
            input: mutate(udp.clone(), |f| f[39] = 0xff),
            verdict: Verdict::Drop(DropReason::BadL4Header),
            output: Output::Unchanged,
        },
        // IPv6: TCP and UDP to a VIP's service forwarded, MACs only; the header
        // chain checked, each unusable one counted by name; NDP and echo answered.
        Case {
            what: "IPv6 SYN to VIP6:80 goes to its target, only the MACs change",
            output: forward_to_t11(&syn6),
            input: syn6.clone(),
            verdict: Verdict::Forward { slot: t11_v6 },
        },
        Case {
            what: "IPv6 SYN behind hop-by-hop, routing and destination options, forwarded",
            output: forward_to_t11(&chained6),
            input: chained6.clone(),
            verdict: Verdict::Forward { slot: t11_v6 },
        },
        Case {
            what: "IPv6 UDP to VIP6's every-port service",
            output: forward_to_t11(&udp6),
            input: udp6.clone(),
            verdict: Verdict::Forward { slot: udp_t11_v6 },
        },
        Case {
            what: "IPv6 TCP to a VIP6 port no service takes",
            input: ipv6_l4(VIP6, Tcp, 81, &[], Tcp),
            verdict: Verdict::Drop(DropReason::NoService),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv6 TCP to an address that is not ours",
            input: ipv6_l4(CLIENT6, Tcp, 80, &[], Tcp),
            verdict: Verdict::Drop(DropReason::NotOurAddress),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv6 TCP to the real address",
            input: ipv6_l4(REAL6, Tcp, 80, &[], Tcp),
            verdict: Verdict::Drop(DropReason::ToRealAddress),
            output: Output::Unchanged,
        },
        ipv6_case(
            "IPv6 GRE to the VIP",
            PORT_MAC,
            IpProtocol::Unknown(47),
            &[],
            8,
            DropReason::UnknownProtocol,
        ),
        Case {
            what: "IPv6 first fragment to the VIP goes like its flow",
            output: Output::Bytes(with_macs(&first_fragment6, target_mac(11), PORT_MAC)),
            input: first_fragment6,
            verdict: Verdict::Forward { slot: t11_v6 },
        },
        Case {
            what: "IPv6 later fragment before its first is held",
            input: frame6_of(&udp_fragments6[1]),
            verdict: Verdict::Hold,
            output: Output::Unchanged,
        },
        Case {
            what: "IPv6 fragments of ICMPv6 to the VIP",
            input: frame6_of(&ipv6_fragments((CLIENT6, VIP6), Icmpv6, 9, &[0; 64], 32)[0]),
            verdict: Verdict::Drop(DropReason::Fragment),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv6 TCP header cut short",
            input: ipv6_frame(PORT_MAC, Tcp, &[], 12),
            verdict: Verdict::Drop(DropReason::BadL4Header),
            output: Output::Unchanged,
        },
        Case {
            what: "neighbour solicitation for VIP6 (hop limit 255): advertised, S and O, our MAC",
            input: solicit(VIP6),
            verdict: Verdict::Reply(ReplyKind::Ndp),
            output: Output::Bytes(advert(
                VIP6,
                (CLIENT6, CLIENT_MAC),
                FLAG_SOLICITED | FLAG_OVERRIDE,
                true,
            )),
        },
        Case {
            what: "neighbour solicitation for the IPv6 real address",
            input: solicit(REAL6),
            verdict: Verdict::Reply(ReplyKind::Ndp),
            output: Output::Bytes(advert(
                REAL6,
                (CLIENT6, CLIENT_MAC),
                FLAG_SOLICITED | FLAG_OVERRIDE,
                true,
            )),
        },
        Case {
            what: "neighbour solicitation with hop limit 64: may come from off the segment",
            input: mutate(solicit(VIP6), |f| f[14 + 7] = 64),
            verdict: Verdict::Drop(DropReason::NdpHopLimit),
            output: Output::Unchanged,
        },
        Case {
            what: "neighbour solicitation for another host",
            input: solicit(CLIENT6),
            verdict: Verdict::Drop(DropReason::NdpNotForUs),
            output: Output::Unchanged,
        },
        Case {
            what: "neighbour solicitation with a bad checksum",
            input: mutate(solicit(VIP6), |f| f[14 + 40 + 2] ^= 0xff),
            verdict: Verdict::Drop(DropReason::BadNdp),
            output: Output::Unchanged,
        },
        Case {
            what: "neighbour solicitation with code 1",
            input: mutate(solicit(VIP6), |f| f[14 + 40 + 1] = 1),
            verdict: Verdict::Drop(DropReason::BadNdp),
            output: Output::Unchanged,
        },
        Case {
            what: "duplicate address probe (from ::) for VIP6: the control thread defends it",
            input: dad_probe.clone(),
            verdict: Verdict::Punt(PuntKind::DuplicateAddressProbe),
            output: Output::Unchanged,
        },
        Case {
            what: "a unicast solicitation without an option: answered without one",
            input: ndp_frame(
                (PORT_MAC, CLIENT_MAC),
                (CLIENT6, VIP6),
                NdpRepr::Solicit {
                    target: VIP6,
                    mac: None,
                },
                255,
            ),
            verdict: Verdict::Reply(ReplyKind::Ndp),
            output: Output::Bytes(advert(
                VIP6,
                (CLIENT6, CLIENT_MAC),
                FLAG_SOLICITED | FLAG_OVERRIDE,
                false,
            )),
        },
        Case {
            what: "a neighbour advertisement to the IPv6 real address: the control thread's",
            input: advert(CLIENT6, (REAL6, PORT_MAC), FLAG_SOLICITED, true),
            verdict: Verdict::Punt(PuntKind::NeighborAdvert),
            output: Output::Unchanged,
        },
        Case {
            what: "another host's unsolicited advertisement of itself",
            input: advert(
                CLIENT6,
                (ALL_NODES, multicast_mac(ALL_NODES)),
                FLAG_OVERRIDE,
                true,
            ),
            verdict: Verdict::Drop(DropReason::NdpNotForUs),
            output: Output::Unchanged,
        },
        Case {
            what: "another host advertising VIP6 as its own: a claim for the control thread",
            input: ndp_frame(
                (multicast_mac(ALL_NODES), OTHER_MAC),
                (CLIENT6, ALL_NODES),
                NdpRepr::Advert {
                    flags: FLAG_OVERRIDE,
                    target: VIP6,
                    mac: Some(OTHER_MAC),
                },
                255,
            ),
            verdict: Verdict::Punt(PuntKind::AddressClaim),
            output: Output::Unchanged,
        },
        Case {
            what: "dsrlb's own advertisement of VIP6, heard back",
            input: advert(
                VIP6,
                (ALL_NODES, multicast_mac(ALL_NODES)),
                FLAG_OVERRIDE,
                true,
            ),
            verdict: Verdict::Drop(DropReason::NdpNotForUs),
            output: Output::Unchanged,
        },
        Case {
            what: "packet too big about VIP6:80's flow goes to its target, only the MACs change",
            output: forward_to_t11(&tcp_too_big6),
            input: tcp_too_big6.clone(),
            verdict: Verdict::IcmpError {
                slot: t11_v6,
                service: web6,
            },
        },
        Case {
            what: "packet too big quoting a segment behind destination options",
            output: forward_to_t11(&chained_too_big6),
            input: chained_too_big6.clone(),
            verdict: Verdict::IcmpError {
                slot: t11_v6,
                service: web6,
            },
        },
        Case {
            what: "packet too big about VIP6's UDP flow goes to its target",
            output: forward_to_t11(&udp_too_big6),
            input: udp_too_big6.clone(),
            verdict: Verdict::IcmpError {
                slot: udp_t11_v6,
                service: echo6_slot,
            },
        },
        Case {
            what: "packet too big to VIP6 quoting another source",
            input: too_big6(VIP6, CLIENT6, (Tcp, 80), &[], Tcp),
            verdict: Verdict::Drop(DropReason::IcmpErrorNotOurs),
            output: Output::Unchanged,
        },
        Case {
            what: "packet too big about a VIP6 port no service takes",
            input: too_big6(VIP6, VIP6, (Tcp, 81), &[], Tcp),
            verdict: Verdict::Drop(DropReason::IcmpErrorNotOurs),
            output: Output::Unchanged,
        },
        Case {
            what: "packet too big whose quote ends before the ports",
            input: mutate(too_big6(VIP6, VIP6, (Tcp, 80), &[], Tcp), |f| {
                let short = 8 + 40 + 2;
                f.truncate(14 + 40 + short);
                f[14 + 4..14 + 6].copy_from_slice(&(short as u16).to_be_bytes());
            }),
            verdict: Verdict::Drop(DropReason::IcmpErrorNotOurs),
            output: Output::Unchanged,
        },
        Case {
            what: "ICMPv6 echo request to VIP6: answered from it",
            input: echo6(EchoRequest, (CLIENT6, VIP6), (PORT_MAC, CLIENT_MAC)),
            verdict: Verdict::Reply(ReplyKind::IcmpEcho),
            output: Output::Bytes(echo6(EchoReply, (VIP6, CLIENT6), (CLIENT_MAC, PORT_MAC))),
        },
        Case {
            what: "ICMPv6 echo request to the IPv6 real address: answered from it",
            input: echo6(EchoRequest, (CLIENT6, REAL6), (PORT_MAC, CLIENT_MAC)),
            verdict: Verdict::Reply(ReplyKind::IcmpEcho),
            output: Output::Bytes(echo6(EchoReply, (REAL6, CLIENT6), (CLIENT_MAC, PORT_MAC))),
        },
        Case {
            what: "ICMPv6 echo request to all nodes",
            input: echo6(
                EchoRequest,
                (CLIENT6, ALL_NODES),
                (multicast_mac(ALL_NODES), CLIENT_MAC),
            ),
            verdict: Verdict::Drop(DropReason::NotOurAddress),
            output: Output::Unchanged,
        },
        Case {
            what: "ICMPv6 echo reply to VIP6",
            input: echo6(EchoReply, (CLIENT6, VIP6), (PORT_MAC, CLIENT_MAC)),
            verdict: Verdict::Drop(DropReason::IcmpNotEcho),
            output: Output::Unchanged,
        },
        ipv6_case(
            "IPv6 to another host's MAC",
            OTHER_MAC,
            Tcp,
            &[],
            20,
            DropReason::NotOurMac,
        ),
        ipv6_case(
            "IPv6 hop-by-hop options second",
            PORT_MAC,
            Ipv6DestinationOptions,
            &[ext(HopByHop, 0), ext(Tcp, 0)],
            20,
            DropReason::Ipv6HopByHopNotFirst,
        ),
        ipv6_case(
            "IPv6 with no next header",
            PORT_MAC,
            Ipv6DestinationOptions,
            &[ext(NoNextHeader, 0)],
            0,
            DropReason::Ipv6NoNextHeader,
        ),
        ipv6_case(
            "IPv6 with seven extension headers",
            PORT_MAC,
            Ipv6DestinationOptions,
            &[
                ext(Ipv6DestinationOptions, 0),
                ext(Ipv6DestinationOptions, 0),
                ext(Ipv6DestinationOptions, 0),
                ext(Ipv6DestinationOptions, 0),
                ext(Ipv6DestinationOptions, 0),
                ext(Ipv6DestinationOptions, 0),
                ext(Udp, 0),
            ],
            8,
            DropReason::Ipv6ChainTooLong,
        ),
        ipv6_case(
            "IPv6 chain ends where the payload does",
            PORT_MAC,
            HopByHop,
            &[ext(Tcp, 0)],
            0,
            DropReason::Truncated,
        ),
        Case {
            what: "IPv6 payload length beyond the frame",
            input: mutate(ipv6_frame(PORT_MAC, Tcp, &[], 20), |f| f[19] = 21),
            verdict: Verdict::Drop(DropReason::Truncated),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv6 EtherType, version 4 in the header",
            input: mutate(ipv6_frame(PORT_MAC, Tcp, &[], 20), |f| f[14] = 0x40),
            verdict: Verdict::Drop(DropReason::BadIpHeader),
            output: Output::Unchanged,
        },
        Case {
            what: "IPv6 EtherType, shorter than its fixed header",
            input: ethernet(PORT_MAC, CLIENT_MAC, EtherType::Ipv6, &[0x60; 39]),
            verdict: Verdict::Drop(DropReason::Truncated),
            output: Output::Unchanged,
        },
        Case {
            what: "LLDP",
            input: ethernet(
                MacAddr([0x01, 0x80, 0xc2, 0, 0, 0x0e]),
                CLIENT_MAC,
                EtherType::Unknown(0x88cc),
                &[0; 46],
            ),
            verdict: Verdict::Drop(DropReason::UnknownEthertype),
            output: Output::Unchanged,
        },
        Case {
            what: "802.1ad outer tag",
            input: mutate(vlan_tagged(&syn, 5), |f| {
                f[12] = 0x88;
                f[13] = 0xa8
            }),
            verdict: Verdict::Drop(DropReason::StackedVlan),
            output: Output::Unchanged,
        },
        Case {
            what: "two 802.1Q tags",
            input: vlan_tagged(&vlan_tagged(&syn, 5), 6),
            verdict: Verdict::Drop(DropReason::StackedVlan),
            output: Output::Unchanged,
        },
        Case {
            what: "ARP request for the VIP is answered in place",
            input: arp_request_for(VIP),
            verdict: Verdict::Reply(ReplyKind::Arp),
            output: Output::Bytes(arp_frame(
                CLIENT_MAC,
                ArpOperation::Reply,
                (PORT_MAC, VIP),
                (CLIENT_MAC, CLIENT),
            )),
        },
        Case {
            what: "ARP request for the real address is answered",
            input: arp_request_for(REAL),
            verdict: Verdict::Reply(ReplyKind::Arp),
            output: Output::Bytes(arp_frame(
                CLIENT_MAC,
                ArpOperation::Reply,
                (PORT_MAC, REAL),
                (CLIENT_MAC, CLIENT),
            )),
        },
        Case {
            what: "ARP request for someone else",
            input: arp_request_for(Ipv4Addr::new(10, 99, 0, 11)),
            verdict: Verdict::Drop(DropReason::ArpNotForUs),
            output: Output::Unchanged,
        },
        Case {
            what: "gratuitous ARP claiming the VIP from another MAC: to the control thread",
            input: arp_frame(
                MacAddr::BROADCAST,
                ArpOperation::Request,
                (OTHER_MAC, VIP),
                (MacAddr::ZERO, VIP),
            ),
            verdict: Verdict::Punt(PuntKind::AddressClaim),
            output: Output::Unchanged,
        },
        Case {
            what: "our own gratuitous ARP for the VIP, come back",
            input: arp_frame(
                MacAddr::BROADCAST,
                ArpOperation::Request,
                (PORT_MAC, VIP),
                (MacAddr::ZERO, VIP),
            ),
            verdict: Verdict::Drop(DropReason::ArpNotForUs),
            output: Output::Unchanged,
        },
        Case {
            what: "ARP request unicast to another MAC",
            input: arp_frame(
                OTHER_MAC,
                ArpOperation::Request,
                (CLIENT_MAC, CLIENT),
                (MacAddr::ZERO, VIP),
            ),
            verdict: Verdict::Drop(DropReason::NotOurMac),
            output: Output::Unchanged,
        },
        Case {
            what: "ARP reply goes to the control thread",
            input: arp_frame(
                PORT_MAC,
                ArpOperation::Reply,
                (target_mac(11), Ipv4Addr::new(10, 99, 0, 11)),
                (PORT_MAC, REAL),
            ),
            verdict: Verdict::Punt(PuntKind::ArpReply),
            output: Output::Unchanged,
        },
        Case {
            what: "ARP for a hardware type other than Ethernet",
            input: mutate(arp_request_for(VIP), |f| f[15] = 6),
            verdict: Verdict::Drop(DropReason::BadArp),
            output: Output::Unchanged,
        },
        Case {
            what: "ARP truncated",
            input: arp_request_for(VIP)[..30].to_vec(),
            verdict: Verdict::Drop(DropReason::Truncated),
            output: Output::Unchanged,
        },
        Case {
            what: "RARP operation",
            input: mutate(arp_request_for(VIP), |f| f[21] = 3),
            verdict: Verdict::Drop(DropReason::ArpUnknownOperation),
            output: Output::Unchanged,
        },
        Case {
            what: "ICMP echo to the VIP is answered in place",
            input: echo_request_to(VIP),
            verdict: Verdict::Reply(ReplyKind::IcmpEcho),
            output: Output::Bytes(echo_reply_from(VIP)),
        },
        Case {
            what: "ICMP echo to the real address is answered",
            input: echo_request_to(REAL),
            verdict: Verdict::Reply(ReplyKind::IcmpEcho),
            output: Output::Bytes(echo_reply_from(REAL)),
        },
        Case {
            what: "ICMP other than echo to the VIP",
            input: ethernet(
                PORT_MAC,
                CLIENT_MAC,
                EtherType::Ipv4,
                &ipv4(
                    CLIENT,
                    VIP,
                    IpProtocol::Icmp,
                    &icmp_echo(IcmpMessage::TimeExceeded, 0, 0, &[]),
                ),
            ),
            verdict: Verdict::Drop(DropReason::IcmpNotEcho),
            output: Output::Unchanged,
        },
        Case {
            what: "ICMP header truncated",
            input: ethernet(
                PORT_MAC,
                CLIENT_MAC,
                EtherType::Ipv4,
                &ipv4(CLIENT, VIP, IpProtocol::Icmp, &[8, 0, 0]),
            ),
            verdict: Verdict::Drop(DropReason::BadL4Header),
            output: Output::Unchanged,
        },
    ]
}

#[test]
fn table_of_packets() {
    let snapshot = single_target_snapshot();
    let mut failures = Vec::new();
    for case in cases(&snapshot) {
        let mut frame = case.input.clone();
        let mut table = flows();
        let verdict = decide(&mut frame, &snapshot, PORT_MAC, &mut table, 1_000);
        let expected = match &case.output {
            Output::Unchanged => &case.input,
            Output::Bytes(b) => b,
        };
        if verdict != case.verdict {
            failures.push(format!(
                "{}: verdict {:?}, expected {:?}",
                case.what, verdict, case.verdict
            ));
        } else if &frame != expected {
            failures.push(format!(
                "{}: output\n  got  {:02x?}\n  want {:02x?}",
                case.what, frame, expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_drop_reason_has_a_distinct_name() {
    let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), DropReason::COUNT);
}

fn four_targets(weights: [u32; 4]) -> SnapshotSpec {
    let targets = (0..4)
        .map(|i| TargetSpec {
            weight: weights[i],
            ..target(11 + i as u8)
        })
        .collect();
    spec(vec![service(VIP, IpProtocol::Tcp, 80, targets)])
}

/// The IPv4 target a frame was forwarded to.
fn target_of(snapshot: &Snapshot, verdict: Verdict) -> Ipv4Addr {
    match verdict {
        Verdict::Forward { slot } => match snapshot.target_addr(slot).unwrap() {
            std::net::IpAddr::V4(addr) => addr,
            v6 => panic!("an IPv4 frame sent to {v6}"),
        },
        other => panic!("expected Forward, got {other:?}"),
    }
}

fn send(
    snapshot: &Snapshot,
    table: &mut FlowTable,
    src_port: u16,
    flags: u8,
    now_ms: u64,
) -> Ipv4Addr {
    let mut frame = tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, src_port), (VIP, 80), flags);
    let verdict = decide(&mut frame, snapshot, PORT_MAC, table, now_ms);
    let addr = target_of(snapshot, verdict);
    assert_eq!(
        &frame[0..6],
        &target_mac(addr.octets()[3]).0,
        "dst MAC is the chosen target's"
    );
    addr
}

#[test]
fn new_flows_spread_over_targets_by_weight() {
    let snapshot = Snapshot::build(&four_targets([1, 1, 1, 1]), None).unwrap();
    let mut table = flows();
    let mut counts = [0u32; 4];
    for port in 0..20_000u16 {
        let addr = send(&snapshot, &mut table, 1024 + port, FLAG_SYN, 0);
        counts[usize::from(addr.octets()[3] - 11)] += 1;
    }
    for c in counts {
        assert!((4_500..=5_500).contains(&c), "uneven spread {counts:?}");
    }
}

#[test]
fn flows_stay_on_their_target_when_a_target_is_added() {
    let before = Snapshot::build(&four_targets([1, 1, 1, 1]), None).unwrap();
    let mut table = flows();
    let first: Vec<Ipv4Addr> = (0..2_000)
        .map(|p| send(&before, &mut table, 2000 + p, FLAG_SYN, 0))
        .collect();
    let mut grown = four_targets([1, 1, 1, 1]);
    grown.services[0].targets.push(target(15));
    let after = Snapshot::build(&grown, Some(&before)).unwrap();
    for (p, was) in first.iter().enumerate() {
        assert_eq!(
            send(&after, &mut table, 2000 + p as u16, FLAG_ACK, 10),
            *was,
            "flow {p} moved"
        );
    }
    let to_new = (0..2_000)
        .filter(|p| {
            send(&after, &mut table, 30_000 + p, FLAG_SYN, 10) == Ipv4Addr::new(10, 99, 0, 15)
        })
        .count();
    assert!(
        to_new > 250,
        "new flows reach the new target ({to_new} of 2000)"
    );
}

#[test]
fn a_failed_target_loses_its_flows_and_no_other_flow_moves() {
    let healthy = Snapshot::build(&four_targets([1, 1, 1, 1]), None).unwrap();
    let mut table = flows();
    let first: Vec<Ipv4Addr> = (0..2_000)
        .map(|p| send(&healthy, &mut table, 2000 + p, FLAG_SYN, 0))
        .collect();
    let mut spec = four_targets([1, 1, 1, 1]);
    spec.services[0].targets[0].healthy = false;
    let failed = Snapshot::build(&spec, Some(&healthy)).unwrap();
    let t11 = Ipv4Addr::new(10, 99, 0, 11);
    for (p, was) in first.iter().enumerate() {
        let now = send(&failed, &mut table, 2000 + p as u16, FLAG_ACK, 10);
        assert_ne!(now, t11, "no traffic to a failed target");
        if *was != t11 {
            assert_eq!(now, *was, "flow {p} on a healthy target moved");
        }
    }
}

#[test]
fn drained_target_keeps_its_flows_and_gets_no_new_ones() {
    let before = Snapshot::build(&four_targets([1, 1, 1, 1]), None).unwrap();
    let mut table = flows();
    let first: Vec<Ipv4Addr> = (0..2_000)
        .map(|p| send(&before, &mut table, 2000 + p, FLAG_SYN, 0))
        .collect();
    let drained = Snapshot::build(&four_targets([0, 1, 1, 1]), Some(&before)).unwrap();
    let t11 = Ipv4Addr::new(10, 99, 0, 11);
    assert!(first.contains(&t11));
    for (p, was) in first.iter().enumerate() {
        assert_eq!(
            send(&drained, &mut table, 2000 + p as u16, FLAG_ACK, 10),
            *was
        );
    }
    assert!((0..2_000).all(|p| send(&drained, &mut table, 40_000 + p, FLAG_SYN, 10) != t11));
}

#[test]
fn two_appliances_with_the_same_config_agree_without_shared_state() {
    let a = Snapshot::build(&four_targets([1, 2, 3, 4]), None).unwrap();
    let b = Snapshot::build(&four_targets([1, 2, 3, 4]), None).unwrap();
    let (mut ta, mut tb) = (flows(), flows());
    for p in 0..5_000 {
        assert_eq!(
            send(&a, &mut ta, p, FLAG_SYN, 0),
            send(&b, &mut tb, p, FLAG_SYN, 0)
        );
    }
}

#[test]
fn flows_past_the_guard_are_forwarded_but_not_remembered() {
    let snapshot = Snapshot::build(&four_targets([1, 1, 1, 1]), None).unwrap();
    let mut table = FlowTable::new(FlowTableConfig {
        capacity: 4096,
        new_flow_rate: 100,
        ..FlowTableConfig::default()
    });
    for p in 0..1_000 {
        send(&snapshot, &mut table, 1000 + p, FLAG_SYN, 5);
    }
    assert_eq!(table.stats().inserted, 100);
    assert_eq!(table.stats().guard_refused, 900);
}

/// Every prefix of every valid frame, and every single-byte corruption of them at a
/// few values: decide must return a verdict, never panic, and never forward a frame
/// that is not a complete TCP/UDP packet to a VIP.
#[test]
fn malformed_input_never_panics() {
    let snapshot = single_target_snapshot();
    let mut table = flows();
    let seeds: Vec<Vec<u8>> = cases(&snapshot).into_iter().map(|c| c.input).collect();
    let mut verdicts = 0usize;
    for seed in &seeds {
        for len in 0..=seed.len() {
            let mut frame = seed[..len].to_vec();
            decide(&mut frame, &snapshot, PORT_MAC, &mut table, 0);
            verdicts += 1;
        }
        for at in 0..seed.len() {
            for value in [0x00, 0x01, 0x45, 0x7f, 0x80, 0xff] {
                let mut frame = seed.clone();
                frame[at] = value;
                decide(&mut frame, &snapshot, PORT_MAC, &mut table, 0);
                verdicts += 1;
            }
        }
    }
    assert!(verdicts > 10_000);
}

#[test]
fn a_removed_target_loses_its_flows_when_they_next_arrive_and_no_other_flow_moves() {
    let before = Snapshot::build(&four_targets([1, 1, 1, 1]), None).unwrap();
    let mut table = flows();
    let first: Vec<Ipv4Addr> = (0..2_000)
        .map(|p| send(&before, &mut table, 2000 + p, FLAG_SYN, 0))
        .collect();
    let mut spec = four_targets([1, 1, 1, 1]);
    spec.services[0].targets.remove(0);
    let after = Snapshot::build(&spec, Some(&before)).unwrap();
    let t11 = Ipv4Addr::new(10, 99, 0, 11);
    let live_before = table.stats().live;
    for (p, was) in first.iter().enumerate() {
        let now = send(&after, &mut table, 2000 + p as u16, FLAG_ACK, 10);
        assert_ne!(now, t11);
        if *was != t11 {
            assert_eq!(now, *was, "flow {p} moved");
        }
    }
    assert_eq!(
        table.stats().live,
        live_before,
        "re-pinned in place, not re-inserted"
    );
}

#[test]
fn the_workers_hash_hint_is_the_hash_decide_computes() {
    // Four targets on the IPv4 VIP and on the IPv6 one: a wrong hint picks another.
    let mut spec = four_targets([1, 1, 1, 1]);
    spec.services.push(ServiceSpec {
        vip: VIP6.into(),
        ..service(VIP, Tcp, 80, (11..15).map(target6).collect())
    });
    let snapshot = Snapshot::build(&spec, None).unwrap();
    for port in 0..1000u16 {
        let sport = 3000 + port / 2;
        let frame = if port % 2 == 0 {
            tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, sport), (VIP, 80), FLAG_SYN)
        } else {
            tcp6_frame(PORT_MAC, CLIENT_MAC, (CLIENT6, sport), (VIP6, 80), FLAG_SYN)
        };
        let hint = flow_hash_hint(&frame, snapshot.seed).expect("a TCP frame has a hash");
        let (mut a, mut b) = (frame.clone(), frame);
        let (mut ta, mut tb) = (flows(), flows());
        assert_eq!(
            dataplane::forward::hint_and_prefetch(&snapshot, &tb, &b),
            Some(hint),
            "the lookahead's hint"
        );
        assert_eq!(
            decide(&mut a, &snapshot, PORT_MAC, &mut ta, 0),
            decide_hinted(
                &mut b,
                &snapshot,
                PORT_MAC,
                &mut tb,
                0,
                Some(hint),
                &mut SameFlowRun::default()
            )
        );
        assert_eq!(a, b);
    }
    let vlan = vlan_tagged(
        &tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 1), (VIP, 80), FLAG_SYN),
        7,
    );
    assert!(
        flow_hash_hint(&vlan, 0).is_some(),
        "tagged frames are hashed too"
    );
    assert_eq!(flow_hash_hint(&arp_request_for(VIP), 0), None);
}

/// The fast path must agree with the general path on every frame, valid or not:
/// the same verdict and the same bytes out (and so the same flow-table effects).
#[test]
fn the_fast_path_agrees_with_the_general_path_on_every_frame() {
    let snapshot = single_target_snapshot();
    let mut seeds: Vec<Vec<u8>> = cases(&snapshot).into_iter().map(|c| c.input).collect();
    seeds.push(udp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 7), (VIP, 9), &[]));
    // IPv6 frames long enough for its fast path (74 bytes): UDP with a payload, and
    // TCP with data.
    let udp6 = udp(CLIENT, VIP, 7, 5353, &[0x55; 24]);
    seeds.push(ethernet(
        PORT_MAC,
        CLIENT_MAC,
        EtherType::Ipv6,
        &ipv6(CLIENT6, VIP6, Udp, &udp6),
    ));
    let data6 = tcp(CLIENT, VIP, 9, 80, FLAG_ACK, &[0x66; 16]);
    seeds.push(ethernet(
        PORT_MAC,
        CLIENT_MAC,
        EtherType::Ipv6,
        &ipv6(CLIENT6, VIP6, Tcp, &data6),
    ));
    seeds.push(padded(tcp_frame(
        PORT_MAC,
        CLIENT_MAC,
        (CLIENT, 8),
        (VIP, 80),
        FLAG_SYN | FLAG_ACK,
    )));
    let (mut fast_flows, mut general_flows) = (flows(), flows());
    let mut compared = 0;
    let mut check = |frame: Vec<u8>| {
        let (mut a, mut b) = (frame.clone(), frame);
        let va = decide(&mut a, &snapshot, PORT_MAC, &mut fast_flows, 5);
        let general = &mut Context::new(&snapshot, PORT_MAC, &mut general_flows, 5);
        let vb = dataplane::forward::decide_general(general, &mut b);
        assert_eq!(va, vb, "verdicts differ for {b:02x?}");
        assert_eq!(a, b, "outputs differ");
        compared += 1;
    };
    for seed in &seeds {
        for len in 0..=seed.len() {
            check(seed[..len].to_vec());
        }
        for at in 0..seed.len() {
            for value in [
                0x00, 0x01, 0x05, 0x06, 0x11, 0x20, 0x45, 0x46, 0x50, 0x7f, 0x80, 0xff,
            ] {
                let mut frame = seed.clone();
                frame[at] = value;
                check(frame);
            }
        }
    }
    assert!(compared > 20_000);
    assert_eq!(
        fast_flows.stats(),
        general_flows.stats(),
        "same flow-table effects"
    );
}

/// Bursts decided with one `SameFlowRun` each, as the worker does, against the same
/// frames decided one by one: runs of one flow broken by its other TCP state, other
/// flows, a tagged or truncated copy, another protocol, an unserved VIP; in a table
/// of one bucket (new flows not remembered while its entries are active, evicting
/// them once idle) and behind a new-flow guard (flows not remembered). Same
/// verdicts, same bytes out, same flow-table effects, and the same flows still live
/// (in the same state) once SYN-only flows have timed out.
#[test]
fn a_run_of_one_flows_frames_is_decided_as_each_frame_alone() {
    let snapshot = single_target_snapshot();
    let tcp =
        |port: u16, flags: u8| tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, port), (VIP, 80), flags);
    let (a_syn, a_ack) = (tcp(1000, FLAG_SYN), tcp(1000, FLAG_ACK));
    let (b_syn, b_ack) = (tcp(1001, FLAG_SYN), tcp(1001, FLAG_ACK));
    let (c_ack, d_syn) = (tcp(1002, FLAG_ACK), tcp(1003, FLAG_SYN));
    // Promoted within its only run: a run that ignored the state would leave it SYN-only.
    let (e_syn, e_ack) = (tcp(1004, FLAG_SYN), tcp(1004, FLAG_ACK));
    let a_udp = udp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 1000), (VIP, 80), &[1, 2]);
    let unserved = tcp_frame(
        PORT_MAC,
        CLIENT_MAC,
        (CLIENT, 1000),
        (DEAD_VIP, 80),
        FLAG_ACK,
    );
    let a_tagged = vlan_tagged(&a_ack, 7);
    let a_truncated = a_ack[..40].to_vec();
    // New flows the general path decides (tagged): in one bucket they evict A.
    let tagged_syn = |port: u16| vlan_tagged(&tcp(port, FLAG_SYN), 7);
    let (f_tagged, g_tagged, h_tagged) = (tagged_syn(1005), tagged_syn(1006), tagged_syn(1007));
    // One frame a letter: S/a flow A's SYN/ACK, B/b B's, c C's ACK, D D's SYN, E/e
    // E's, u A's ports over UDP, x A's ports to the unserved VIP, v A tagged, t A cut,
    // F/G/H new flows tagged.
    let frames_of = |letters: &str| -> Vec<Vec<u8>> {
        letters
            .chars()
            .map(|letter| match letter {
                'S' => &a_syn,
                'a' => &a_ack,
                'B' => &b_syn,
                'b' => &b_ack,
                'c' => &c_ack,
                'D' => &d_syn,
                'E' => &e_syn,
                'e' => &e_ack,
                'u' => &a_udp,
                'x' => &unserved,
                'v' => &a_tagged,
                'F' => &f_tagged,
                'G' => &g_tagged,
                'H' => &h_tagged,
                _ => &a_truncated,
            })
            .cloned()
            .collect()
    };
    let burst = frames_of("SSSaaSaaBBataavaauuuxxacDDaabbccDuEeeaaFaaGaaHaaxa");
    // The same frames with the new flows first: after a pause of more than
    // EVICT_AFTER_IDLE_MS they evict entries of flows whose frames follow.
    let after_a_pause = frames_of("FaaGaaHaaxaSSSaaSaaBBataavaauuuxxacDDaabbccDuEeeaa");
    const LAST_MS: u64 = 1_800;
    let roomy = FlowTableConfig {
        capacity: 4096,
        ..FlowTableConfig::default()
    };
    let one_bucket = FlowTableConfig {
        capacity: 3,
        ..FlowTableConfig::default()
    };
    let guarded = FlowTableConfig {
        capacity: 4096,
        new_flow_rate: 2,
        ..FlowTableConfig::default()
    };
    for config in [roomy, one_bucket, guarded] {
        let (mut in_runs, mut alone) = (FlowTable::new(config), FlowTable::new(config));
        for (now_ms, burst) in [
            (0, &burst),
            (10, &burst),
            (700, &burst),
            (LAST_MS, &after_a_pause),
        ] {
            let mut run = SameFlowRun::default();
            for (i, frame) in burst.iter().enumerate() {
                let (mut a, mut b) = (frame.clone(), frame.clone());
                let va = decide_hinted(
                    &mut a,
                    &snapshot,
                    PORT_MAC,
                    &mut in_runs,
                    now_ms,
                    None,
                    &mut run,
                );
                let vb = decide(&mut b, &snapshot, PORT_MAC, &mut alone, now_ms);
                assert_eq!(va, vb, "frame {i} at {now_ms} ms, {config:?}");
                assert_eq!(a, b, "frame {i} at {now_ms} ms, {config:?}");
            }
            assert_eq!(in_runs.stats(), alone.stats(), "{config:?}");
        }
        if config == one_bucket {
            let stats = in_runs.stats();
            assert!(
                stats.bucket_full > 0 && stats.evicted > 0,
                "the one bucket both kept its active flows and evicted idle ones: {stats:?}"
            );
        }
        let syn_timed_out = LAST_MS + config.tcp_syn_timeout_ms + 1;
        for frame in [&a_ack, &b_ack, &c_ack, &d_syn, &a_udp, &e_ack] {
            let (mut a, mut b) = (frame.clone(), frame.clone());
            assert_eq!(
                decide(&mut a, &snapshot, PORT_MAC, &mut in_runs, syn_timed_out),
                decide(&mut b, &snapshot, PORT_MAC, &mut alone, syn_timed_out)
            );
        }
        assert_eq!(in_runs.stats(), alone.stats(), "{config:?}");
    }
    let mut table = FlowTable::new(roomy);
    for frame in &burst {
        decide(&mut frame.clone(), &snapshot, PORT_MAC, &mut table, 700);
    }
    for frame in [&a_ack, &d_syn, &e_ack] {
        decide(
            &mut frame.clone(),
            &snapshot,
            PORT_MAC,
            &mut table,
            701 + roomy.tcp_syn_timeout_ms,
        );
    }
    assert_eq!(
        table.stats().expired,
        1,
        "in a roomy table, only SYN-only D times out"
    );
}

/// One `SameFlowRun` carried from burst to burst, as the worker keeps it, against
/// the same frames decided one by one, with the worker's flow-table walk between
/// bursts: a run goes on into the next burst under the same snapshot in the same
/// millisecond; a new snapshot (its target down, then up again) or a later
/// millisecond (which must refresh the entry, or the walk later expires it) ends it.
#[test]
fn a_run_carried_across_bursts_is_decided_as_each_frame_alone() {
    let two = |t11_healthy: bool| {
        let mut t11 = target(11);
        t11.healthy = t11_healthy;
        spec(vec![service(
            VIP,
            IpProtocol::Tcp,
            80,
            vec![t11, target(12)],
        )])
    };
    let up = Snapshot::build(&two(true), None).unwrap();
    let down = Snapshot::build(&two(false), Some(&up)).unwrap();
    let up_again = Snapshot::build(&two(true), Some(&down)).unwrap();
    let snapshots = [&up, &down, &up_again];
    // Flow A goes to t11 (the one that goes down), B to t12; C stays SYN-only.
    let on = |addr: u8| {
        (1000u16..)
            .find(|&port| {
                let mut table = flows();
                send(&up, &mut table, port, FLAG_SYN, 0) == Ipv4Addr::new(10, 99, 0, addr)
            })
            .unwrap()
    };
    let tcp =
        |port: u16, flags: u8| tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, port), (VIP, 80), flags);
    let (a, b, c) = (on(11), on(12), on(12) + 1000);
    let frame_of = |letter: char| match letter {
        'S' => tcp(a, FLAG_SYN),
        'a' => tcp(a, FLAG_ACK),
        'b' => tcp(b, FLAG_ACK),
        _ => tcp(c, FLAG_SYN),
    };
    // (snapshot, millisecond, frames): S/a flow A's SYN/ACK, b B's ACK, C C's SYN.
    let bursts: [(usize, u64, &str); 12] = [
        (0, 0, "Saa"),
        (0, 0, "aa"), // carried
        (1, 0, "aa"), // A's target is down: it moves to t12
        (2, 0, "aa"), // and stays there
        (2, 0, "ab"),
        (2, 0, "bb"),  // carried
        (2, 1, "bba"), // a later millisecond
        (2, 1, "aC"),
        (2, 1, "CC"),   // carried, SYN-only
        (2, 4000, "C"), // must refresh C
        (2, 4000, "C"),
        (2, 5500, "b"), // C idle 1500 ms; had 4000 not refreshed it, 5499 > 5000
    ];
    let configs = [
        FlowTableConfig {
            capacity: 4096,
            ..FlowTableConfig::default()
        },
        FlowTableConfig {
            capacity: 3,
            ..FlowTableConfig::default()
        },
    ];
    for config in configs {
        let (mut in_runs, mut alone) = (FlowTable::new(config), FlowTable::new(config));
        let mut run = SameFlowRun::default();
        let mut carried = 0;
        for (n, &(snapshot, now_ms, frames)) in bursts.iter().enumerate() {
            let snapshot = snapshots[snapshot];
            run.carry_over(snapshot, now_ms);
            for (i, letter) in frames.chars().enumerate() {
                let (mut x, mut y) = (frame_of(letter), frame_of(letter));
                if i == 0 && run.forward(&mut x.clone()).is_some() {
                    carried += 1;
                }
                let vx = decide_hinted(
                    &mut x,
                    snapshot,
                    PORT_MAC,
                    &mut in_runs,
                    now_ms,
                    None,
                    &mut run,
                );
                let vy = decide(&mut y, snapshot, PORT_MAC, &mut alone, now_ms);
                assert_eq!(vx, vy, "burst {n} frame {i} ({letter}), {config:?}");
                assert_eq!(x, y, "burst {n} frame {i} ({letter}), {config:?}");
            }
            // The worker's walk between polls: clears what expired by now_ms.
            for table in [&mut in_runs, &mut alone] {
                let buckets = table.bucket_count();
                table.count_by_slot(0, buckets, now_ms, &mut [0; 4], |_| true);
            }
            assert_eq!(
                in_runs.stats(),
                alone.stats(),
                "after burst {n}, {config:?}"
            );
        }
        assert!(
            carried >= 2,
            "runs went on into the next burst ({carried}), {config:?}"
        );
    }
}

/// A run takes a frame without re-validating it when the frame's header matches the
/// run's first frame under a mask. Every single-byte change and every cut of a TCP
/// ACK, a bare SYN, a TCP segment with data and UDP datagrams (short, padded, with
/// data), decided right after that frame (its flow's second, which starts the run),
/// against the same frames decided one by one: the same verdict, the same bytes out,
/// and the same flow state (probed after SYN-only flows time out).
#[test]
fn a_frame_continues_a_run_exactly_when_alone_it_would_go_the_same_way() {
    let snapshot = single_target_snapshot();
    let config = FlowTableConfig {
        capacity: 4096,
        ipv6_capacity: 4096,
        fragment_capacity: 16,
        ..FlowTableConfig::default()
    };
    let tcp = |flags: u8| tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 1000), (VIP, 80), flags);
    let udp = |payload: &[u8]| udp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 1000), (VIP, 53), payload);
    // With data: its cuts are long enough for the fast path but shorter than the
    // IP header says.
    let tcp_data = tcp_data_frame(
        PORT_MAC,
        CLIENT_MAC,
        (CLIENT, 1000),
        (VIP, 80),
        FLAG_ACK,
        &[7; 20],
    );
    let tcp6 = |flags: u8| tcp6_frame(PORT_MAC, CLIENT_MAC, (CLIENT6, 1000), (VIP6, 80), flags);
    let udp6 = |payload: &[u8]| {
        let datagram = dataplane::craft::udp(CLIENT, VIP, 1000, 53, payload);
        frame6_of(&ipv6(CLIENT6, VIP6, Udp, &datagram))
    };
    let tcp6_data = {
        let segment = dataplane::craft::tcp(CLIENT, VIP, 1000, 80, FLAG_ACK, &[7; 20]);
        frame6_of(&ipv6(CLIENT6, VIP6, Tcp, &segment))
    };
    let seeds = [
        tcp(FLAG_ACK),
        tcp(FLAG_SYN),
        tcp_data,
        udp(&[1, 2, 3, 4]),
        padded(udp(&[1, 2, 3, 4])),
        udp(&[9; 20]),
        tcp6(FLAG_ACK),
        tcp6(FLAG_SYN),
        tcp6_data,
        udp6(&[1, 2, 3, 4]),
        udp6(&[9; 40]),
    ];
    let mut continued = 0;
    let mut compared = 0;
    for seed in &seeds {
        let mut check = |frame: Vec<u8>| {
            let (mut in_run, mut alone) = (FlowTable::new(config), FlowTable::new(config));
            let mut run = SameFlowRun::default();
            let (mut a0, mut b0) = (seed.clone(), seed.clone());
            let first = decide_hinted(&mut a0, &snapshot, PORT_MAC, &mut in_run, 0, None, &mut run);
            assert_eq!(first, decide(&mut b0, &snapshot, PORT_MAC, &mut alone, 0));
            assert!(matches!(first, Verdict::Forward { .. }), "{first:?}");
            let (mut a1, mut b1) = (seed.clone(), seed.clone());
            let second =
                decide_hinted(&mut a1, &snapshot, PORT_MAC, &mut in_run, 0, None, &mut run);
            assert_eq!(second, decide(&mut b1, &snapshot, PORT_MAC, &mut alone, 0));
            assert_eq!(second, first);
            // Only the fast paths start runs: they read 54 bytes (Ethernet, IPv4,
            // TCP) and 74 (with IPv6).
            let span = if seed[12..14] == [0x86, 0xdd] { 74 } else { 54 };
            assert_eq!(
                run.stands(),
                seed.len() >= span,
                "the flow's second frame starts the run: {seed:02x?}"
            );
            let (mut a, mut b) = (frame.clone(), frame);
            let va = decide_hinted(&mut a, &snapshot, PORT_MAC, &mut in_run, 0, None, &mut run);
            let vb = decide(&mut b, &snapshot, PORT_MAC, &mut alone, 0);
            assert_eq!(va, vb, "verdicts differ for {b:02x?}");
            assert_eq!(a, b, "outputs differ");
            assert_eq!(in_run.stats(), alone.stats());
            let later = config.tcp_syn_timeout_ms + 1;
            let (mut a, mut b) = (seed.clone(), seed.clone());
            assert_eq!(
                decide(&mut a, &snapshot, PORT_MAC, &mut in_run, later),
                decide(&mut b, &snapshot, PORT_MAC, &mut alone, later)
            );
            assert_eq!(
                in_run.stats(),
                alone.stats(),
                "flow state differs after {b:02x?}"
            );
            compared += 1;
            if va == first {
                continued += 1;
            }
        };
        check(seed.clone());
        for len in 0..seed.len() {
            check(seed[..len].to_vec());
        }
        for at in 0..seed.len() {
            for value in [
                0x00, 0x01, 0x02, 0x05, 0x06, 0x10, 0x11, 0x12, 0x20, 0x40, 0x45, 0x50, 0x60, 0x80,
                0x86, 0xd0, 0xdd, 0xff,
            ] {
                let mut frame = seed.clone();
                frame[at] = value;
                check(frame);
            }
        }
    }
    assert!(compared > 2_000, "{compared}");
    // Not vacuous: many changed frames go the same way (the bytes a run may ignore).
    assert!(continued > 500, "{continued}");
}

/// A frame decided in full starts a run only where the last frame whose flow the fast
/// path hashed before it was of its flow (a train's second frame); otherwise the run
/// it replaces ends. Frames dropped before their flow is hashed do not count. Either
/// way its verdict and bytes are those of the frame decided alone.
#[test]
fn a_run_is_started_only_where_the_flow_hashed_before_was_the_same() {
    let snapshot = single_target_snapshot();
    let tcp = |client: Ipv4Addr, port: u16, flags: u8| {
        tcp_frame(PORT_MAC, CLIENT_MAC, (client, port), (VIP, 80), flags)
    };
    let other_client = Ipv4Addr::new(10, 99, 0, 7);
    let frame = tcp(CLIENT, 1000, FLAG_ACK);
    let no_service = mutate(frame.clone(), |f| f[37] ^= 1);
    let cut_short = frame[..37].to_vec();
    let other_port = tcp(CLIENT, 1001, FLAG_ACK);
    // What is decided between the run it replaces and the frame, and whether the
    // frame then starts a run.
    let cases: [(&str, Vec<Vec<u8>>, bool); 8] = [
        ("nothing", vec![], false),
        ("the same flow", vec![frame.clone()], true),
        // The run will not take it (another TCP state), but the flow is the same.
        (
            "the same endpoints, a SYN",
            vec![tcp(CLIENT, 1000, FLAG_SYN)],
            true,
        ),
        ("another source port", vec![other_port.clone()], false),
        (
            "another client",
            vec![tcp(other_client, 1000, FLAG_ACK)],
            false,
        ),
        (
            "the same flow, then a frame to a port with no service",
            vec![frame.clone(), no_service],
            true,
        ),
        (
            "the same flow, then a frame cut short",
            vec![frame.clone(), cut_short],
            true,
        ),
        (
            "the same flow, then another flow",
            vec![frame.clone(), other_port],
            false,
        ),
    ];
    for (what, between, expected) in cases {
        let mut flows_in_burst = flows();
        let mut run = SameFlowRun::default();
        let decide_next = |frame: &mut Vec<u8>, flows: &mut FlowTable, run: &mut SameFlowRun| {
            decide_hinted(frame, &snapshot, PORT_MAC, flows, 0, None, run)
        };
        // The run the frame replaces, another flow's: its second frame starts it.
        let before = tcp(other_client, 2000, FLAG_ACK);
        decide_next(&mut before.clone(), &mut flows_in_burst, &mut run);
        assert!(!run.stands(), "{what}: a flow's first frame starts no run");
        decide_next(&mut before.clone(), &mut flows_in_burst, &mut run);
        assert!(run.stands(), "{what}: its second does");
        for mut frame in between {
            decide_next(&mut frame, &mut flows_in_burst, &mut run);
        }
        let (mut a, mut b) = (frame.clone(), frame.clone());
        let verdict = decide_next(&mut a, &mut flows_in_burst, &mut run);
        assert_eq!(
            verdict,
            decide(&mut b, &snapshot, PORT_MAC, &mut flows(), 0),
            "{what}"
        );
        assert_eq!(a, b, "{what}");
        assert_eq!(run.stands(), expected, "after {what}");
    }
}

/// Who answers ARP for what: a lone appliance (and a pair's active) for the real
/// address and the VIPs, one behind a BGP router only for the real address, a pair's
/// standby for neither. Frames to the VIPs are forwarded in every case.
#[test]
fn arp_is_answered_as_the_appliance_role_says() {
    let answered = |asked: Ipv4Addr| {
        arp_frame(
            CLIENT_MAC,
            ArpOperation::Reply,
            (PORT_MAC, asked),
            (CLIENT_MAC, CLIENT),
        )
    };
    let not_ours = Verdict::Drop(DropReason::ArpNotForUs);
    let reply = Verdict::Reply(ReplyKind::Arp);
    let claim = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::Request,
        (OTHER_MAC, VIP),
        (MacAddr::ZERO, VIP),
    );
    for (scope, vip, real) in [
        (ArpAnswers::Every, Some(reply), Some(reply)),
        (ArpAnswers::RealAddress, None, Some(reply)),
        (ArpAnswers::Nothing, None, None),
    ] {
        let mut s = spec(vec![service(VIP, IpProtocol::Tcp, 80, vec![target(11)])]);
        s.arp_answers = scope;
        let snapshot = Snapshot::build(&s, None).unwrap();
        for (asked, want) in [(VIP, vip), (REAL, real)] {
            let mut frame = arp_request_for(asked);
            let verdict = decide(&mut frame, &snapshot, PORT_MAC, &mut flows(), 1_000);
            match want {
                Some(v) => {
                    assert_eq!(verdict, v, "{scope:?}: ARP for {asked}");
                    assert_eq!(frame, answered(asked), "{scope:?}: the reply for {asked}");
                }
                None => {
                    assert_eq!(verdict, not_ours, "{scope:?}: ARP for {asked}");
                    assert_eq!(frame, arp_request_for(asked), "{scope:?}: untouched");
                }
            }
        }
        // Another host claiming the VIP is news to the control thread in any role.
        let mut frame = claim.clone();
        let verdict = decide(&mut frame, &snapshot, PORT_MAC, &mut flows(), 1_000);
        assert_eq!(verdict, Verdict::Punt(PuntKind::AddressClaim), "{scope:?}");
        let mut syn = syn_to((VIP, 80));
        let verdict = decide(&mut syn, &snapshot, PORT_MAC, &mut flows(), 1_000);
        assert!(
            matches!(verdict, Verdict::Forward { .. }),
            "{scope:?}: {verdict:?}"
        );
    }
}

/// An ICMP error follows its flow: to the target the flow is pinned to while that is
/// usable, even where Maglev now picks another (a target was added); with
/// `icmp_errors = "drop"` it is dropped, named.
#[test]
fn an_icmp_error_goes_where_its_flow_goes() {
    let before = Snapshot::build(&four_targets([1, 1, 1, 0]), None).unwrap();
    let after = Snapshot::build(&four_targets([1, 1, 1, 1]), Some(&before)).unwrap();
    let mut table = flows();
    // A client port whose flow Maglev moves once t4 takes flows.
    let (port, pinned) = (40000u16..41000)
        .find_map(|port| {
            let mut syn = tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, port), (VIP, 80), FLAG_SYN);
            let to = target_of(&before, decide(&mut syn, &before, PORT_MAC, &mut table, 1));
            let mut fresh = flows();
            let mut again = tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, port), (VIP, 80), FLAG_SYN);
            let now = target_of(&after, decide(&mut again, &after, PORT_MAC, &mut fresh, 1));
            (now != to).then_some((port, to))
        })
        .unwrap();
    let body = [0u8; 1460];
    let quoted = ipv4(
        VIP,
        CLIENT,
        IpProtocol::Tcp,
        &tcp(VIP, CLIENT, 80, port, FLAG_ACK, &body),
    );
    let mut error = too_big(VIP, &quoted);
    let verdict = decide(&mut error, &after, PORT_MAC, &mut table, 2);
    let Verdict::IcmpError { slot, .. } = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(
        after.target_addr(slot).unwrap(),
        std::net::IpAddr::V4(pinned),
        "to the pinned target"
    );
    assert_eq!(&error[..6], after.target(slot).unwrap().mac.as_bytes());
    // Nothing recorded for a flow the table did not hold: the next error goes by
    // Maglev again, and the table is as it was.
    let inserted = table.stats().inserted;
    let other = ipv4(
        VIP,
        CLIENT,
        IpProtocol::Tcp,
        &tcp(VIP, CLIENT, 80, 50000, FLAG_ACK, &body),
    );
    let verdict = decide(&mut too_big(VIP, &other), &after, PORT_MAC, &mut table, 3);
    assert!(matches!(verdict, Verdict::IcmpError { .. }), "{verdict:?}");
    assert_eq!(
        table.stats().inserted,
        inserted,
        "an ICMP error records no flow"
    );

    let mut off = four_targets([1, 1, 1, 1]);
    off.services[0].forwards_icmp_errors = false;
    let off = Snapshot::build(&off, None).unwrap();
    let mut error = too_big(VIP, &quoted);
    let verdict = decide(&mut error, &off, PORT_MAC, &mut flows(), 4);
    assert_eq!(verdict, Verdict::Drop(DropReason::IcmpErrorOff));
    assert_eq!(error, too_big(VIP, &quoted), "a drop changes nothing");
}

/// VIP:any/udp and VIP6:any/udp over targets 11 to 14.
fn udp_over_four() -> SnapshotSpec {
    let targets = (11..15).map(target).collect();
    let targets6 = (11..15).map(target6).collect();
    spec(vec![
        service(VIP, Udp, 0, targets),
        ServiceSpec {
            vip: VIP6.into(),
            ..service(VIP, Udp, 0, targets6)
        },
    ])
}

/// Decides `fragments` (IP packets, framed by `frame`) in the order given, holding
/// what is held and deciding it again after each frame forwarded, as a worker
/// does: the slot each went to, checking that only its MACs changed.
fn decide_fragments(
    snapshot: &Snapshot,
    table: &mut FlowTable,
    fragments: &[Vec<u8>],
    frame: fn(&[u8]) -> Vec<u8>,
    now_ms: u64,
) -> Vec<u16> {
    let mut slots = Vec::new();
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut forwarded = |input: &[u8], verdict: Verdict, output: &[u8]| {
        let Verdict::Forward { slot } = verdict else {
            panic!("{verdict:?}");
        };
        let mac = snapshot.target(slot).unwrap().mac;
        assert_eq!(output, with_macs(input, mac, PORT_MAC));
        slots.push(slot);
    };
    for input in fragments.iter().map(|f| frame(f)) {
        let mut output = input.clone();
        match decide(&mut output, snapshot, PORT_MAC, table, now_ms) {
            Verdict::Hold => held.push(input),
            verdict => {
                forwarded(&input, verdict, &output);
                for input in std::mem::take(&mut held) {
                    let mut output = input.clone();
                    match decide(&mut output, snapshot, PORT_MAC, table, now_ms) {
                        Verdict::Hold => held.push(input),
                        verdict => forwarded(&input, verdict, &output),
                    }
                }
            }
        }
    }
    assert!(held.is_empty(), "{} fragments still held", held.len());
    slots
}

#[test]
fn every_fragment_of_a_datagram_goes_where_its_flow_goes_whatever_their_order() {
    let snapshot = Snapshot::build(&udp_over_four(), None).unwrap();
    let mut table = flows();
    let mut targets = std::collections::HashSet::new();
    for i in 0..200u16 {
        let port = 30_000 + i;
        let mut whole = udp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, port), (VIP, 5353), b"x");
        let flow_goes = decide(&mut whole, &snapshot, PORT_MAC, &mut table, 1_000);
        let Verdict::Forward { slot } = flow_goes else {
            panic!("{flow_goes:?}");
        };
        targets.insert(slot);
        let mut v4 = datagram_fragments(port, i);
        let mut v6 = datagram_fragments6(port, u32::from(i));
        assert_eq!((v4.len(), v6.len()), (3, 3));
        // Every other datagram's last fragment first, and some a middle one first.
        match i % 3 {
            1 => (v4.rotate_right(1), v6.rotate_right(1)),
            2 => (v4.swap(0, 1), v6.swap(0, 1)),
            _ => ((), ()),
        };
        let slots = decide_fragments(&snapshot, &mut table, &v4, frame_of, 1_000);
        assert_eq!(slots, [slot; 3], "datagram {i}");
        let slots6 = decide_fragments(&snapshot, &mut table, &v6, frame6_of, 1_000);
        let slot6 = slots6[0];
        assert_eq!(slots6, [slot6; 3], "IPv6 datagram {i}");
    }
    assert_eq!(targets.len(), 4, "datagrams spread over every target");
}

#[test]
fn a_later_fragment_waits_for_its_own_first_and_not_past_the_timeout() {
    let snapshot = Snapshot::build(&udp_over_four(), None).unwrap();
    let mut table = flows();
    let timeout = table.config().fragment_timeout_ms;
    let fragments = datagram_fragments(30_000, 1);
    let decide_at = |table: &mut FlowTable, ip: &[u8], now_ms| {
        decide(&mut frame_of(ip), &snapshot, PORT_MAC, table, now_ms)
    };
    assert!(matches!(
        decide_at(&mut table, &fragments[0], 1_000),
        Verdict::Forward { .. }
    ));
    // Another identification, source or protocol is another datagram.
    let other_ident = datagram_fragments(30_000, 2);
    assert_eq!(decide_at(&mut table, &other_ident[1], 1_000), Verdict::Hold);
    let mut other_source = fragments[1].clone();
    other_source[12..16].copy_from_slice(&[10, 99, 0, 9]);
    assert_eq!(decide_at(&mut table, &other_source, 1_000), Verdict::Hold);
    // Each later fragment keeps the datagram for another timeout from it.
    let kept = 1_000 + timeout - 1;
    assert!(matches!(
        decide_at(&mut table, &fragments[1], kept),
        Verdict::Forward { .. }
    ));
    let last = decide_at(&mut table, &fragments[2], kept + timeout);
    assert_eq!(
        last,
        Verdict::Hold,
        "past the timeout the datagram is forgotten"
    );
}

#[test]
fn a_later_fragment_whose_target_failed_is_unserved_not_sent_elsewhere() {
    let healthy = Snapshot::build(&udp_over_four(), None).unwrap();
    let mut table = flows();
    let fragments = datagram_fragments(30_000, 1);
    let verdict = decide(
        &mut frame_of(&fragments[0]),
        &healthy,
        PORT_MAC,
        &mut table,
        1_000,
    );
    let went = target_of(&healthy, verdict);
    let mut spec = udp_over_four();
    let index = usize::from(went.octets()[3] - 11);
    spec.services[0].targets[index].healthy = false;
    let failed = Snapshot::build(&spec, Some(&healthy)).unwrap();
    let service = failed.service(u32::from(VIP), 17, 0).unwrap().slot;
    let later = decide(
        &mut frame_of(&fragments[1]),
        &failed,
        PORT_MAC,
        &mut table,
        1_001,
    );
    assert_eq!(later, Verdict::Unserved { service });
}
