#!/usr/bin/python3
"""Lab neighbour-discovery probe, built and read by scapy (an implementation of NDP
that is not dsrlb's): sends one neighbour solicitation on IFACE and prints, as JSON,
every neighbour advertisement seen within a second after it.

  lab-ndp.py solicit --iface eth0 --target fd00:99::100 [--hop-limit 255]
      [--src fd00:99::1 | --src ::]   (:: is a duplicate address probe: no option)

Each advertisement: {"src_mac", "src", "dst", "dst_mac", "target", "hop_limit",
"router", "solicited", "override", "option_mac"} (option_mac null without one).

  lab-ndp.py reports --pcap FILE

prints, as JSON, every MLDv2 listener report in a capture: {"src_mac", "src", "dst",
"dst_mac", "hop_limit", "router_alert", "groups", "checksum_ok"}.
Debian's python3-scapy; run with /usr/bin/python3.
"""
import argparse
import json
import time

from scapy.all import AsyncSniffer, Ether, IPv6, raw, rdpcap, sendp, get_if_hwaddr
from scapy.layers.inet6 import (ICMPv6MLDMultAddrRec, ICMPv6MLReport2, ICMPv6ND_NA, ICMPv6ND_NS,
                                ICMPv6NDOptDstLLAddr, IPv6ExtHdrHopByHop, RouterAlert,
                                ICMPv6NDOptSrcLLAddr, in6_getnsma, in6_getnsmac,
                                inet_pton, inet_ntop)
import socket


def solicited_node(target):
    group = in6_getnsma(inet_pton(socket.AF_INET6, target))
    return inet_ntop(socket.AF_INET6, group), in6_getnsmac(group)


def addressing(frame):
    """Who sent a frame to whom, and its hop limit."""
    return {
        "src_mac": frame[Ether].src,
        "dst_mac": frame[Ether].dst,
        "src": frame[IPv6].src,
        "dst": frame[IPv6].dst,
        "hop_limit": frame[IPv6].hlim,
    }


def advert(frame):
    na = frame[ICMPv6ND_NA]
    option = frame.getlayer(ICMPv6NDOptDstLLAddr)
    return {
        **addressing(frame),
        "target": na.tgt,
        "router": bool(na.R),
        "solicited": bool(na.S),
        "override": bool(na.O),
        "option_mac": option.lladdr if option else None,
    }


def address_records(message):
    """Every record of a report (scapy hangs each record after the one before it)."""
    for record in message.records:
        while isinstance(record, ICMPv6MLDMultAddrRec):
            yield record
            record = record.payload


def report(frame):
    """An MLDv2 report as scapy reads it; its checksum recomputed by scapy."""
    message = frame[ICMPv6MLReport2]
    rebuilt = frame.copy()
    del rebuilt[ICMPv6MLReport2].cksum
    hop_by_hop = frame.getlayer(IPv6ExtHdrHopByHop)
    return {
        **addressing(frame),
        "router_alert": bool(hop_by_hop and any(isinstance(o, RouterAlert) and o.value == 0
                                                for o in hop_by_hop.options)),
        "groups": sorted(r.dst for r in address_records(message)),
        "checksum_ok": Ether(raw(rebuilt))[ICMPv6MLReport2].cksum == message.cksum,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["solicit", "reports"])
    ap.add_argument("--pcap")
    ap.add_argument("--iface")
    ap.add_argument("--target")
    ap.add_argument("--src", default="fd00:99::1")
    ap.add_argument("--hop-limit", type=int, default=255)
    args = ap.parse_args()
    if args.command == "reports":
        frames = rdpcap(args.pcap)
        print(json.dumps([report(f) for f in frames if f.haslayer(ICMPv6MLReport2)]))
        return
    mac = get_if_hwaddr(args.iface)
    group, group_mac = solicited_node(args.target)
    ns = Ether(src=mac, dst=group_mac) / IPv6(src=args.src, dst=group, hlim=args.hop_limit)
    ns /= ICMPv6ND_NS(tgt=args.target)
    if args.src != "::":
        ns /= ICMPv6NDOptSrcLLAddr(lladdr=mac)
    sniffer = AsyncSniffer(iface=args.iface, filter="icmp6 and ip6[40] == 136",
                           lfilter=lambda f: f.haslayer(ICMPv6ND_NA))
    sniffer.start()
    time.sleep(0.3)
    sendp(ns, iface=args.iface, verbose=False)
    time.sleep(1.0)
    frames = sniffer.stop() or []
    print(json.dumps([advert(f) for f in frames if f[ICMPv6ND_NA].tgt == args.target]))


if __name__ == "__main__":
    main()
