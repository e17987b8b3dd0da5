#!/usr/bin/env python3
"""Frames an attacker on the lab's data segment could send, from raw sockets on the
client's eth0 (run it in dsr-client): the lab tests' proof that nothing on the data
segment changes what dsrlb believes, and that the kernel beside it stays out.

    lab-forge.py arp-reply DST_MAC SENDER_IP TARGET_IP COUNT MAC[,MAC...]
        COUNT ARP replies to DST_MAC saying SENDER_IP is at each MAC in turn, 5 ms apart
    lab-forge.py garp IP MAC          a gratuitous ARP claiming IP for MAC
    lab-forge.py who-has IP           asks for IP; prints the MACs that answered (1.5 s)
    lab-forge.py syn SRC DST PORT     one TCP SYN from SRC (spoofed) to DST:PORT
    lab-forge.py half-open HOST PORT COUNT SECONDS
        COUNT TCP connections to HOST:PORT, each sending a request line and no more,
        held for SECONDS; prints "open" once all are connected
    lab-forge.py syn-flood DST PORT SECONDS MAX
        SYNs to DST:PORT from random sources in 10.99.128.0/17 and random ports, as fast
        as one process sends them, for SECONDS or MAX SYNs; prints how many
"""
import json
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806


def mac(text):
    return bytes.fromhex(text.replace(":", ""))


def arp(dst, op, sha, spa, tha, tpa):
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + socket.inet_aton(spa) + tha + socket.inet_aton(tpa)
    return dst + sha + struct.pack("!H", ETH_P_ARP) + body + bytes(18)


def link():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    s.bind(("eth0", 0))
    return s


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn(src, dst, sport, port):
    tcp = struct.pack("!HHIIBBHHH", sport, port, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:] + tcp


def main(args):
    what = args[0]
    if what == "arp-reply":
        dst, sender, target, count, macs = mac(args[1]), args[2], args[3], int(args[4]), args[5].split(",")
        s = link()
        for i in range(count):
            s.send(arp(dst, 2, mac(macs[i % len(macs)]), sender, dst, target))
            time.sleep(0.005)
    elif what == "garp":
        s = link()
        s.send(arp(b"\xff" * 6, 1, mac(args[2]), args[1], bytes(6), args[1]))
    elif what == "who-has":
        target = args[1]
        s = link()
        me = s.getsockname()[4]
        s.send(arp(b"\xff" * 6, 1, me, "10.99.0.1", bytes(6), target))
        s.settimeout(0.2)
        answers, end = set(), time.time() + 1.5
        while time.time() < end:
            try:
                frame = s.recv(128)
            except socket.timeout:
                continue
            if frame[20:22] == b"\x00\x02" and socket.inet_ntoa(frame[28:32]) == target:
                answers.add(frame[22:28].hex(":"))
        print(json.dumps(sorted(answers)))
    elif what == "syn":
        src, dst, port = args[1], args[2], int(args[3])
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).sendto(syn(src, dst, 40000, port), (dst, 0))
    elif what == "half-open":
        host, port, count, seconds = args[1], int(args[2]), int(args[3]), float(args[4])
        held = []
        for _ in range(count):
            c = socket.create_connection((host, port), timeout=5)
            c.sendall(b"GET /metrics HTTP/1.1\r\n")
            held.append(c)
        print("open", flush=True)
        time.sleep(seconds)
    elif what == "syn-flood":
        import random
        dst, port, seconds, most = args[1], int(args[2]), float(args[3]), int(args[4])
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        sent, end = 0, time.time() + seconds
        while sent < most and (sent % 1024 or time.time() < end):
            src = "10.99.%d.%d" % (random.randint(128, 255), random.randint(1, 254))
            try:
                s.sendto(syn(src, dst, random.randint(1024, 65535), port), (dst, 0))
                sent += 1
            except BlockingIOError:
                pass
        print(sent)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:] or ["help"])
