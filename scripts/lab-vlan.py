#!/usr/bin/env python3
"""Lab 802.1Q trunk: makes the link between the lab's switch and dsrlb a tagged
member of one VLAN, as a switch port configured "tagged VID" does. Frames from the
switch side (ACCESS, untagged) go to the trunk (TRUNK, toward dsrlb) with the tag;
frames from the trunk that carry the tag go to the switch without it; any other
frame from the trunk (untagged, or another VLAN) is dropped and counted.

  lab-vlan.py --trunk d-lb --access d-lbt --vid 10 --counts FILE

Runs until SIGTERM, rewriting FILE (JSON) after every frame dropped and once a
second: {"to_trunk", "from_trunk": {"arp", "ipv4", "ipv6", "other"}, "untagged",
"other_vlan"}. The kernel moves a received tag out of the frame into the packet's
metadata (PACKET_AUXDATA), so tags are read there and written into the frame.
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
AUXDATA = struct.Struct("IIIHHHH")  # status, len, snaplen, mac, net, vlan_tci, vlan_tpid
KINDS = {0x0806: "arp", 0x0800: "ipv4", 0x86DD: "ipv6"}


def bound(iface):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.bind((iface, ETH_P_ALL))
    return sock


def receive(sock):
    """A frame received (not one sent) and its VLAN id, if it came tagged."""
    frame, ancillary, _, address = sock.recvmsg(65535, socket.CMSG_SPACE(AUXDATA.size))
    if address[2] == PACKET_OUTGOING:
        return None, None
    vid = None
    for level, kind, data in ancillary:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= AUXDATA.size:
            status, _, _, _, _, tci, _ = AUXDATA.unpack_from(data)
            if status & TP_STATUS_VLAN_VALID:
                vid = tci & 0x0FFF
    return frame, vid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trunk", required=True)
    ap.add_argument("--access", required=True)
    ap.add_argument("--vid", type=int, required=True)
    ap.add_argument("--counts", required=True)
    args = ap.parse_args()
    trunk, access = bound(args.trunk), bound(args.access)
    counts = {"to_trunk": 0, "from_trunk": {k: 0 for k in ["arp", "ipv4", "ipv6", "other"]},
              "untagged": 0, "other_vlan": 0}

    def write():
        with open(args.counts + ".tmp", "w") as f:
            json.dump(counts, f)
        os.replace(args.counts + ".tmp", args.counts)

    signal.signal(signal.SIGTERM, lambda *_: (write(), os._exit(0)))
    tag = struct.pack("!HH", 0x8100, args.vid)
    written = time.monotonic()
    while True:
        ready, _, _ = select.select([trunk, access], [], [], 1.0)
        for sock in ready:
            frame, vid = receive(sock)
            if frame is None or len(frame) < 14:
                continue
            if sock is access:
                trunk.send(frame[:12] + tag + frame[12:])
                counts["to_trunk"] += 1
            elif vid == args.vid:
                kind = KINDS.get(struct.unpack_from("!H", frame, 12)[0], "other")
                counts["from_trunk"][kind] += 1
                access.send(frame)
            else:
                counts["untagged" if vid is None else "other_vlan"] += 1
                write()
        if time.monotonic() - written >= 1.0:
            write()
            written = time.monotonic()


if __name__ == "__main__":
    main()
