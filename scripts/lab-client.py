#!/usr/bin/env python3
"""Lab client: N requests to the VIP, each from its own source port, and a tally of
which target answered. Prints JSON: {"answers": {"t1": n, ...}, "failed": n}.

  lab-client.py http --vip 10.99.0.100 --count 200   (or --vip fd00:99::100)
  lab-client.py udp  --vip 10.99.0.100 --port 5353 --count 200
  lab-client.py stream --want t2 --secs 25
      one long-lived HTTP stream that lands on target t2 (new source ports are tried
      until one does); prints {"target", "lines", "ok", "error"}: ok means every line
      "t2 0" .. "t2 N-1" arrived in order and the stream ended cleanly.
  lab-client.py streams --count 200 --secs 15 --ms 100
      that many long-lived streams at once, a line every 100 ms each; once all are
      open, prints "streaming N" on stderr; at the end {"streams", "complete",
      "resets", "errors", "longest_gap_ms", "targets"}: complete means every line
      arrived in order and the stream ended cleanly; longest_gap_ms, the longest wait
      between two lines of any stream (the line interval when nothing stalls).
  lab-client.py pings --ms 10 --secs 20
      a UDP request to VIP:5353 every 10 ms from one socket; once started, prints
      "pinging every 10 ms" on stderr; at the end {"sent", "answered", "answers",
      "longest_gap_ms", "gap_began_at_s"}: the longest time between two answers.
"""
import argparse
import errno
import json
import random
import socket
import sys
import time


def family(addr):
    """The socket family of an address: IPv6 if it has a colon."""
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def http_get(src, vip, port, sport, timeout):
    s = socket.socket(family(vip), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(timeout)
    try:
        s.bind((src, sport))
        s.connect((vip, port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % vip.encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            return None
        return body.decode().strip()
    finally:
        s.close()


def udp_ask(src, vip, port, sport, timeout, tries=3):
    s = socket.socket(family(vip), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.bind((src, sport))
        s.connect((vip, port))
        for _ in range(tries):
            s.send(b"who")
            try:
                return s.recv(2048).decode().strip()
            except socket.timeout:
                continue
        return None
    finally:
        s.close()


def stream(args):
    port = args.port or 80
    for attempt in range(100):
        s = socket.socket(family(args.vip), socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((args.src, random.randrange(20000, 60000)))
        s.connect((args.vip, port))
        s.sendall(b"GET /stream?secs=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % args.secs)
        f = s.makefile("rb")
        status = f.readline()
        while f.readline() not in (b"\r\n", b""):
            pass
        size = int(f.readline(), 16)
        first = f.read(size).decode()
        f.readline()
        if first.split()[0] != args.want:
            s.close()
            continue
        print(f"streaming from {args.want}", file=sys.stderr, flush=True)
        lines, error = [first.strip()], None
        try:
            while True:
                size = int(f.readline(), 16)
                if size == 0:
                    break
                lines.append(f.read(size).decode().strip())
                f.readline()
        except (OSError, ValueError) as e:
            error = repr(e)
        expected = [f"{args.want} {i}" for i in range(args.secs)]
        ok = error is None and status.startswith(b"HTTP/1.1 200") and lines == expected
        json.dump({"target": args.want, "lines": len(lines), "ok": ok, "error": error}, sys.stdout)
        print()
        return
    json.dump({"target": None, "lines": 0, "ok": False, "error": f"no flow landed on {args.want}"}, sys.stdout)
    print()


def one_stream(args, out, index, opened):
    """Opens a stream, then reads it to its end: its lines' times, or its error."""
    port = args.port or 80
    s = socket.socket(family(args.vip), socket.SOCK_STREAM)
    s.settimeout(10)
    record = {"lines": 0, "gap": 0.0, "error": None, "target": None, "complete": False}
    out[index] = record
    try:
        s.bind((args.src, 0))
        s.connect((args.vip, port))
        s.sendall(b"GET /stream?secs=%d&ms=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (args.secs, args.ms))
        opened.release()
        f = s.makefile("rb")
        status = f.readline()
        while f.readline() not in (b"\r\n", b""):
            pass
        last = time.monotonic()
        expected = args.secs * 1000 // args.ms
        while True:
            size = int(f.readline(), 16)
            if size == 0:
                break
            name, number = f.read(size).decode().split()
            f.readline()
            now = time.monotonic()
            record["gap"] = max(record["gap"], now - last)
            last = now
            if int(number) != record["lines"]:
                raise ValueError(f"line {number} after {record['lines']}")
            record["target"] = name
            record["lines"] += 1
        record["complete"] = status.startswith(b"HTTP/1.1 200") and record["lines"] == expected
    except (OSError, ValueError) as e:
        try:
            port = s.getsockname()[1]
        except OSError:
            port = None
        record["error"] = f"{e!r} (source port {port}, after {record['lines']} lines)"
        opened.release()
    finally:
        s.close()


def pings(args):
    """A UDP request to VIP:port every --ms for --secs from one socket: how many were
    answered, by whom, and the longest time without an answer (from the first)."""
    import select
    port = args.port or 5353
    s = socket.socket(family(args.vip), socket.SOCK_DGRAM)
    s.bind((args.src, 0))
    s.connect((args.vip, port))
    s.setblocking(False)
    start = time.monotonic()
    next_send, end = start, start + args.secs
    sent, answers, last, gap, worst_at = 0, {}, None, 0.0, None
    print(f"pinging every {args.ms} ms", file=sys.stderr, flush=True)
    while True:
        now = time.monotonic()
        if now >= end + 0.2:
            break
        if now >= next_send and now < end:
            try:
                s.send(b"ping %d" % sent)
            except OSError:
                pass
            sent += 1
            next_send += args.ms / 1000
        ready, _, _ = select.select([s], [], [], max(0.0, min(next_send, end + 0.2) - time.monotonic()))
        while ready:
            try:
                who = s.recv(2048).decode().strip()
            except (BlockingIOError, ConnectionRefusedError):
                break
            now = time.monotonic()
            if last is not None and now - last > gap:
                gap, worst_at = now - last, last - start
            last = now
            answers[who] = answers.get(who, 0) + 1
    json.dump({
        "sent": sent,
        "answered": sum(answers.values()),
        "answers": answers,
        "longest_gap_ms": round(gap * 1000),
        "gap_began_at_s": None if worst_at is None else round(worst_at, 3),
    }, sys.stdout)
    print()


def streams(args):
    import threading
    out = [None] * args.count
    opened = threading.Semaphore(0)
    threads = [threading.Thread(target=one_stream, args=(args, out, i, opened)) for i in range(args.count)]
    for t in threads:
        t.start()
    for _ in threads:
        opened.acquire()
    print(f"streaming {args.count}", file=sys.stderr, flush=True)
    for t in threads:
        t.join()
    errors = [r["error"] for r in out if r["error"]]
    resets = sum("Reset" in e or "ECONNRESET" in e for e in errors)
    targets = {}
    for r in out:
        if r["target"]:
            targets[r["target"]] = targets.get(r["target"], 0) + 1
    json.dump({
        "streams": args.count,
        "complete": sum(r["complete"] for r in out),
        "resets": resets,
        "errors": errors[:5],
        "longest_gap_ms": round(max(r["gap"] for r in out) * 1000),
        "targets": targets,
    }, sys.stdout)
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["http", "udp", "stream", "streams", "pings"])
    ap.add_argument("--ms", type=int, default=100)
    ap.add_argument("--want", default="t2")
    ap.add_argument("--secs", type=int, default=25)
    ap.add_argument("--vip", default="10.99.0.100")
    ap.add_argument("--port", type=int)
    ap.add_argument("--src", help="default 10.99.0.1, or fd00:99::1 to an IPv6 VIP")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()
    if args.src is None:
        args.src = "fd00:99::1" if family(args.vip) == socket.AF_INET6 else "10.99.0.1"
    if args.mode == "stream":
        return stream(args)
    if args.mode == "streams":
        return streams(args)
    if args.mode == "pings":
        return pings(args)
    port = args.port or (80 if args.mode == "http" else 5353)
    sport = random.randrange(20000, 60000 - 2 * args.count)
    answers, failed, errors = {}, 0, []
    deadline = time.monotonic() + 120
    for i in range(args.count):
        if time.monotonic() > deadline:
            failed += args.count - i
            errors.append("time budget of 120 s spent")
            break
        ask = http_get if args.mode == "http" else udp_ask
        for _ in range(10):
            sport += 1
            try:
                who = ask(args.src, args.vip, port, sport, args.timeout)
                break
            except OSError as e:
                who = None
                # A port another socket of this host holds (a running stream) is
                # the client's problem, not the VIP's: take the next one.
                if e.errno != errno.EADDRINUSE:
                    errors.append(f"port {sport}: {e}")
                    break
        if who is None:
            failed += 1
        else:
            answers[who] = answers.get(who, 0) + 1
    json.dump({"answers": answers, "failed": failed, "errors": errors[:5]}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
