//! Writes the seed corpora (fuzz/corpus/TARGET/seed-*) from the test fixtures: the
//! frames the decide tests are made of, the example configs, the control requests
//! `dsrlb` sends and the requests a Prometheus scraper makes.
//!   cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/corpus
#![allow(clippy::unwrap_used)]

use dataplane::craft::*;
use dataplane::wire::ipv6::{multicast_mac, solicited_node};
use dataplane::wire::tcp::{FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};
use dataplane::wire::{
    ndp, ArpOperation, EtherType, IcmpMessage, Icmpv6Packet, IpProtocol, Ipv6Packet, MacAddr,
    NdpRepr,
};
use dsrlb_fuzz::{encode, target_mac, OTHER_VIP, PORT_MAC, REAL, VIP, VIP6};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xcc, 0, 0, 0, 0x01]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

fn main() {
    let root = std::env::args().nth(1).expect("usage: seeds CORPUS_DIR");
    let root = Path::new(&root);
    let frames = frames();
    write(root, "wire", frames.iter().map(|(_, f)| f.clone()));
    write(root, "decide", decide_sequences(&frames).into_iter());
    let configs = ["demo", "dsrlb", "lab"]
        .map(|name| std::fs::read(format!("config/examples/{name}.toml")).unwrap());
    let appliance = dsrlb_fuzz::APPLIANCE_CONFIG.as_bytes().to_vec();
    write(root, "config", configs.into_iter().chain([appliance]));
    write(root, "control_request", lines(CONTROL_REQUESTS));
    write(root, "metrics_http", lines(HTTP_REQUESTS));
}

fn write(root: &Path, target: &str, seeds: impl Iterator<Item = Vec<u8>>) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds.enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), seed).unwrap();
    }
}

const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 1);

/// A router's "packet too big" to VIP6, quoting a segment a target sent from it.
fn packet_too_big6() -> Vec<u8> {
    let router = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 0xfe);
    let segment = tcp(VIP, CLIENT, 80, 40000, FLAG_ACK, &[0; 64]);
    let quoted = ipv6(VIP6, CLIENT6, IpProtocol::Tcp, &segment);
    let message = icmpv6_error(
        dataplane::wire::Icmpv6Message::PacketTooBig,
        1400,
        &quoted,
        (router, VIP6),
    );
    let packet = ipv6(router, VIP6, IpProtocol::Icmpv6, &message);
    ethernet(PORT_MAC, CLIENT_MAC, EtherType::Ipv6, &packet)
}

/// The client asking for the VIP's MAC, as NDP does.
/// Fragment `i` of three of a 3000-byte UDP datagram from the client to VIP:5353.
fn fragment(i: usize) -> Vec<u8> {
    let datagram = udp(CLIENT, VIP, 40000, 5353, &[0x5a; 3000]);
    let ip = &ipv4_fragments((CLIENT, VIP), IpProtocol::Udp, 7, &datagram, 1480)[i];
    ethernet(PORT_MAC, CLIENT_MAC, EtherType::Ipv4, ip)
}

/// The same to VIP6.
fn fragment6(i: usize) -> Vec<u8> {
    let datagram = udp(CLIENT, VIP, 40000, 5353, &[0x5a; 3000]);
    let ip = &ipv6_fragments((CLIENT6, VIP6), IpProtocol::Udp, 7, &datagram, 1448)[i];
    ethernet(PORT_MAC, CLIENT_MAC, EtherType::Ipv6, ip)
}

fn neighbour_solicitation() -> Vec<u8> {
    let group = solicited_node(VIP6);
    let ns = NdpRepr::Solicit {
        target: VIP6,
        mac: Some(CLIENT_MAC),
    };
    let mut message = vec![0u8; ns.buffer_len()];
    ns.emit(
        &mut Icmpv6Packet::new_unchecked(&mut message[..]),
        CLIENT6,
        group,
    );
    let mut ip = ipv6(CLIENT6, group, IpProtocol::Icmpv6, &message);
    Ipv6Packet::new_unchecked(&mut ip[..]).set_hop_limit(ndp::HOP_LIMIT);
    ethernet(multicast_mac(group), CLIENT_MAC, EtherType::Ipv6, &ip)
}

/// One frame of each kind the decision tells apart, padded as a NIC delivers them.
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let to_vip = |port, flags| tcp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 40000), (VIP, port), flags);
    let udp = udp_frame(PORT_MAC, CLIENT_MAC, (CLIENT, 5353), (VIP, 53), b"query");
    let echo = icmp_echo(IcmpMessage::EchoRequest, 7, 1, b"ping");
    // A router's "fragmentation needed" about a 1500-byte reply from VIP:80.
    let big_reply = tcp(VIP, CLIENT, 80, 40000, FLAG_ACK, &[0; 1460]);
    let too_big = icmp_unreachable(4, 1400, &ipv4(VIP, CLIENT, IpProtocol::Tcp, &big_reply));
    let arp = |op, wanted| {
        arp_frame(
            MacAddr::BROADCAST,
            op,
            (CLIENT_MAC, CLIENT),
            (MacAddr::ZERO, wanted),
        )
    };
    let reply = arp_frame(
        PORT_MAC,
        ArpOperation::Reply,
        (target_mac(11), Ipv4Addr::new(10, 99, 0, 11)),
        (PORT_MAC, REAL),
    );
    [
        ("tcp syn", to_vip(80, FLAG_SYN)),
        ("tcp ack", to_vip(80, FLAG_ACK)),
        ("tcp fin", to_vip(80, FLAG_FIN | FLAG_ACK)),
        ("tcp rst", to_vip(80, FLAG_RST)),
        (
            "tcp data",
            tcp_data_frame(
                PORT_MAC,
                CLIENT_MAC,
                (CLIENT, 40000),
                (VIP, 80),
                FLAG_ACK,
                b"GET / HTTP/1.1\r\n\r\n",
            ),
        ),
        ("tcp other port", to_vip(81, FLAG_SYN)),
        (
            "tcp down vip",
            tcp_frame(
                PORT_MAC,
                CLIENT_MAC,
                (CLIENT, 40000),
                (OTHER_VIP, 443),
                FLAG_SYN,
            ),
        ),
        ("udp", udp.clone()),
        ("vlan udp", vlan_tagged(&udp, 100)),
        (
            "echo to vip",
            ethernet(
                PORT_MAC,
                CLIENT_MAC,
                EtherType::Ipv4,
                &ipv4(CLIENT, VIP, IpProtocol::Icmp, &echo),
            ),
        ),
        (
            "fragmentation needed to vip",
            ethernet(
                PORT_MAC,
                CLIENT_MAC,
                EtherType::Ipv4,
                &ipv4(CLIENT, VIP, IpProtocol::Icmp, &too_big),
            ),
        ),
        (
            "ipv6 tcp behind hop-by-hop and destination options",
            ethernet(
                PORT_MAC,
                CLIENT_MAC,
                EtherType::Ipv6,
                &ipv6(
                    CLIENT6,
                    VIP6,
                    IpProtocol::HopByHop,
                    &[
                        ipv6_extension(IpProtocol::Ipv6DestinationOptions, 0),
                        ipv6_extension(IpProtocol::Tcp, 1),
                        vec![0; 20],
                    ]
                    .concat(),
                ),
            ),
        ),
        ("ipv6 neighbour solicitation", neighbour_solicitation()),
        (
            "ipv6 syn to vip6",
            tcp6_frame(PORT_MAC, CLIENT_MAC, (CLIENT6, 40000), (VIP6, 80), FLAG_SYN),
        ),
        ("ipv6 packet too big to vip6", packet_too_big6()),
        ("udp fragment first", fragment(0)),
        ("udp fragment middle", fragment(1)),
        ("udp fragment last", fragment(2)),
        ("ipv6 udp fragment first", fragment6(0)),
        ("ipv6 udp fragment last", fragment6(2)),
        ("arp for vip", arp(ArpOperation::Request, VIP)),
        ("arp for real", arp(ArpOperation::Request, REAL)),
        ("arp reply", reply),
        (
            "gratuitous claim",
            arp_frame(
                MacAddr::BROADCAST,
                ArpOperation::Request,
                (CLIENT_MAC, VIP),
                (MacAddr::ZERO, VIP),
            ),
        ),
    ]
    .into_iter()
    .map(|(name, frame)| (name, padded(frame)))
    .collect()
}

/// Each frame alone, then flows as they go: a connection begun and carried on,
/// one seen mid-stream, across a health change (step 0xff), and past its timeout.
fn decide_sequences(frames: &[(&str, Vec<u8>)]) -> Vec<Vec<u8>> {
    let of = |name: &str| frames.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let alone = frames.iter().map(|(_, f)| encode(&[(0, f.clone())]));
    let sequences = vec![
        encode(&[
            (0, of("tcp syn")),
            (1, of("tcp ack")),
            (0, of("tcp data")),
            (0, of("tcp data")),
            (1, of("tcp fin")),
        ]),
        encode(&[
            (0, of("tcp data")),
            (0, of("tcp data")),
            (0xff, of("tcp data")),
            (2, of("tcp ack")),
        ]),
        encode(&[
            (0, of("tcp syn")),
            (0xff, of("tcp ack")),
            (200, of("tcp ack")),
            (0, of("tcp rst")),
        ]),
        encode(&[
            (0, of("udp")),
            (0, of("udp")),
            (0, of("vlan udp")),
            (250, of("udp")),
        ]),
        encode(&[
            (0, of("udp fragment last")),
            (0, of("udp fragment first")),
            (1, of("udp fragment middle")),
            (0, of("ipv6 udp fragment last")),
            (0, of("ipv6 udp fragment first")),
            (250, of("udp fragment middle")),
        ]),
    ];
    alone.chain(sequences).collect()
}

fn lines(texts: &'static [&'static str]) -> impl Iterator<Item = Vec<u8>> {
    texts.iter().map(|t| t.as_bytes().to_vec())
}

const CONTROL_REQUESTS: &[&str] = &[
    "{\"command\":\"show_servers\"}\n",
    "{\"command\":\"show_targets\"}\n",
    "{\"command\":\"show_stats\"}\n",
    "{\"command\":\"metrics\"}\n",
    "{\"command\":\"reload\"}\n",
    "{\"command\":\"target\",\"address\":\"10.99.0.11\",\"action\":\"drain\"}\n",
    "{\"command\":\"target\",\"address\":\"10.99.0.12\",\"action\":\"disable\"}\n",
    "{\"command\":\"target\",\"address\":\"10.99.0.12\",\"action\":\"enable\"}\n",
];

const HTTP_REQUESTS: &[&str] = &[
    "GET /metrics HTTP/1.1\r\nHost: 10.99.1.2:9100\r\nAccept: text/plain;version=0.0.4\r\nUser-Agent: Prometheus/2.45.0\r\n\r\n",
    "GET /metrics?x=1 HTTP/1.0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
];
