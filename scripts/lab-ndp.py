#!/usr/bin/python3
"""Lab neighbour-discovery probe, built and read by scapy (an implementation of NDP
that is not dsrlb's): sends one neighbour solicitation on IFACE and prints, as JSON,
every neighbour advertisement seen within a second after it.

  lab-ndp.py solicit --iface eth0 --target fd00:99::100 [--hop-limit 255]
      [--src fd00:99::1 | --src ::]   (:: is a duplicate address probe: no option)

Each advertisement: {"src_mac", "src", "dst", "dst_mac", "target", "hop_limit",
"router", "solicited", "override", "option_mac"} (option_mac null without one).
Debian's python3-scapy; run with /usr/bin/python3.
"""
import argparse
import json
import time

from scapy.all import AsyncSniffer, Ether, IPv6, sendp, get_if_hwaddr
from scapy.layers.inet6 import (ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr,
                                ICMPv6NDOptSrcLLAddr, in6_getnsma, in6_getnsmac,
                                inet_pton, inet_ntop)
import socket


def solicited_node(target):
    group = in6_getnsma(inet_pton(socket.AF_INET6, target))
    return inet_ntop(socket.AF_INET6, group), in6_getnsmac(group)


def advert(frame):
    na = frame[ICMPv6ND_NA]
    option = frame.getlayer(ICMPv6NDOptDstLLAddr)
    return {
        "src_mac": frame[Ether].src,
        "dst_mac": frame[Ether].dst,
        "src": frame[IPv6].src,
        "dst": frame[IPv6].dst,
        "hop_limit": frame[IPv6].hlim,
        "target": na.tgt,
        "router": bool(na.R),
        "solicited": bool(na.S),
        "override": bool(na.O),
        "option_mac": option.lladdr if option else None,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["solicit"])
    ap.add_argument("--iface", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--src", default="fd00:99::1")
    ap.add_argument("--hop-limit", type=int, default=255)
    args = ap.parse_args()
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
