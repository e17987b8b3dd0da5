#!/usr/bin/python3
"""Lab fragments: sends COUNT UDP datagrams of SIZE bytes to VIP:PORT in IPv4
fragments of at most 1500 bytes (DF off), built by scapy, each from a port of its own,
in order or with the last fragment first, and waits for each answer on a kernel
socket (which reassembles it). The lab's UDP echo answers a datagram that begins with
"echo " with the target's name, a newline, and the datagram whole.

  lab-fragments.py --vip 10.99.0.100 --port 5353 --count 50 --size 4000 [--last-first]

Prints JSON: {"sent", "whole", "t1", "t2", "lost", "bad", "fragments"} where whole
counts answers that carried the datagram back byte for byte, and fragments is how
many frames each datagram took. Debian's python3-scapy; run with /usr/bin/python3.
"""
import argparse
import json
import random
import socket

from scapy.all import IP, UDP, Ether, conf, fragment, get_if_hwaddr, getmacbyip, sendp

conf.verb = 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vip", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--last-first", action="store_true")
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()
    mac = get_if_hwaddr(args.iface)
    vip_mac = getmacbyip(args.vip)
    if vip_mac is None:
        raise SystemExit(f"no ARP answer for {args.vip}")
    tally = {"sent": 0, "whole": 0, "t1": 0, "t2": 0, "lost": 0, "bad": 0, "fragments": 0}
    # Identifications of their own: a run after one whose datagrams a target could
    # not reassemble must not meet its leftovers (Linux keeps them 30 s).
    first_id = random.randrange(0x10000)
    for i in range(args.count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # A port of its own: the kernel picks it, and answers to it reach only us.
        sock.connect((args.vip, args.port))
        src, sport = sock.getsockname()
        sock.settimeout(args.timeout)
        head = b"echo %d " % i
        payload = head + bytes((i + j) % 251 for j in range(args.size - len(head)))
        datagram = IP(src=src, dst=args.vip, flags=0, id=(first_id + i) & 0xffff) / UDP(
            sport=sport, dport=args.port) / payload
        frames = fragment(datagram, fragsize=1480)
        tally["fragments"] = len(frames)
        if args.last_first:
            frames = frames[-1:] + frames[:-1]
        sendp([Ether(src=mac, dst=vip_mac) / f for f in frames], iface=args.iface)
        tally["sent"] += 1
        try:
            answer = sock.recv(65535)
        except socket.timeout:
            tally["lost"] += 1
            continue
        finally:
            sock.close()
        name, _, echoed = answer.partition(b"\n")
        if echoed == payload and name in (b"t1", b"t2"):
            tally["whole"] += 1
            tally[name.decode()] += 1
        else:
            tally["bad"] += 1
    print(json.dumps(tally))


if __name__ == "__main__":
    main()
