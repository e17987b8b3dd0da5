//! `dsrlb-traffic`: writes a pcap file of client traffic to a VIP, for `net_pcap`
//! replay (the demo, the benchmark). Flows differ by client address and source port;
//! packets go round-robin over the flows, a SYN first for each TCP flow. IPv4, or
//! TCP over IPv6 with `--ipv6-vip`.

use clap::{Parser, ValueEnum};
use dataplane::craft::{
    arp_frame, ethernet, icmp_echo, ipv4, padded, tcp6_frame, tcp_frame, udp_frame,
};
use dataplane::wire::tcp::{FLAG_ACK, FLAG_SYN};
use dataplane::wire::{ArpOperation, EtherType, IcmpMessage, IpProtocol, MacAddr};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Proto {
    Tcp,
    Udp,
}

#[derive(Parser, Debug)]
#[command(about = "Write a pcap file of client traffic to a VIP (for net_pcap replay)")]
struct Args {
    /// Output pcap file.
    #[arg(long)]
    out: PathBuf,
    /// Distinct flows (client address and source port vary).
    #[arg(long, default_value_t = 1000)]
    flows: u32,
    /// Packets in all (at least one per flow).
    #[arg(long, default_value_t = 10_000)]
    packets: u32,
    #[arg(long, default_value = "10.99.0.100")]
    vip: Ipv4Addr,
    #[arg(long, default_value_t = 80)]
    port: u16,
    #[arg(long, value_enum, default_value_t = Proto::Tcp)]
    proto: Proto,
    /// The balancer port's MAC (the frames' destination).
    #[arg(long, default_value = "02:00:00:00:00:02")]
    dst_mac: String,
    /// First client address; flows take consecutive addresses from it, 64 ports each.
    #[arg(long, default_value = "10.99.2.1")]
    client: Ipv4Addr,
    /// Also write one each of: ARP request for the VIP, ICMP echo to the VIP, IPv6,
    /// a truncated frame, a frame for another MAC.
    #[arg(long)]
    mix: bool,
    /// TCP over IPv6 instead, to this VIP, from clients counted up from --client6
    /// (the same flows: 64 ports a client).
    #[arg(long)]
    ipv6_vip: Option<Ipv6Addr>,
    #[arg(long, default_value = "fd00:99:2::1")]
    client6: Ipv6Addr,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let dst_mac = match args.dst_mac.parse::<config::Mac>() {
        Ok(mac) => MacAddr(mac.0),
        Err(e) => {
            eprintln!("--dst-mac: {e}");
            return ExitCode::from(2);
        }
    };
    if args.flows == 0 || args.packets < args.flows {
        eprintln!("need --flows >= 1 and --packets >= --flows");
        return ExitCode::from(2);
    }
    if args.ipv6_vip.is_some() && (args.mix || matches!(args.proto, Proto::Udp)) {
        eprintln!("--ipv6-vip writes TCP alone (no --mix, no --proto udp)");
        return ExitCode::from(2);
    }
    let client_mac = MacAddr([0x02, 0xcc, 0, 0, 0, 0x01]);
    let flow_addr = |f: u32| {
        let client = Ipv4Addr::from(u32::from(args.client) + f / 64);
        (client, 10_000 + (f % 64) as u16)
    };
    let mut frames = Vec::with_capacity(args.packets as usize + 5);
    for i in 0..args.packets {
        let f = i % args.flows;
        let first = i < args.flows;
        let flags = if first { FLAG_SYN } else { FLAG_ACK };
        if let Some(vip6) = args.ipv6_vip {
            let (client, port) = flow_addr(f);
            let offset = u32::from(client) - u32::from(args.client);
            let client6 = Ipv6Addr::from(u128::from(args.client6) + u128::from(offset));
            let frame = tcp6_frame(
                dst_mac,
                client_mac,
                (client6, port),
                (vip6, args.port),
                flags,
            );
            frames.push(padded(frame));
            continue;
        }
        let frame = match args.proto {
            Proto::Tcp => tcp_frame(
                dst_mac,
                client_mac,
                flow_addr(f),
                (args.vip, args.port),
                flags,
            ),
            Proto::Udp => udp_frame(
                dst_mac,
                client_mac,
                flow_addr(f),
                (args.vip, args.port),
                &[0u8; 18],
            ),
        };
        frames.push(padded(frame));
    }
    if args.mix {
        let client = args.client;
        frames.push(padded(arp_frame(
            MacAddr::BROADCAST,
            ArpOperation::Request,
            (client_mac, client),
            (MacAddr::ZERO, args.vip),
        )));
        let echo = icmp_echo(IcmpMessage::EchoRequest, 1, 1, b"dsrlb demo");
        frames.push(padded(ethernet(
            dst_mac,
            client_mac,
            EtherType::Ipv4,
            &ipv4(client, args.vip, IpProtocol::Icmp, &echo),
        )));
        frames.push(padded(ethernet(
            dst_mac,
            client_mac,
            EtherType::Ipv6,
            &[0x60; 40],
        )));
        frames.push(frames[0][..30].to_vec());
        let mut other = frames[0].clone();
        other[0..6].copy_from_slice(&[0x02, 0xee, 0, 0, 0, 0x09]);
        frames.push(other);
    }
    let file = match std::fs::File::create(&args.out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: {e}", args.out.display());
            return ExitCode::from(1);
        }
    };
    if let Err(e) = dataplane::pcap::write(std::io::BufWriter::new(file), &frames) {
        eprintln!("{}: {e}", args.out.display());
        return ExitCode::from(1);
    }
    eprintln!(
        "{}: {} frames, {} flows",
        args.out.display(),
        frames.len(),
        args.flows
    );
    ExitCode::SUCCESS
}
