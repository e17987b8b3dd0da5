#!/usr/bin/env python3
"""A lab target's service, answering with the target's name: HTTP on --http
(GET / -> name; GET /stream?secs=N[&ms=M] -> "name i" once a second, or every M ms,
for N s, chunked; GET /bytes?n=N -> N bytes, the name first, in full-size segments),
or a
UDP echo on each --udp address (any datagram -> name and a newline; one that begins
with "echo " -> the same followed by the datagram whole). Runs until killed."""
import argparse
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--pidfile", help="write this process's pid here")
    ap.add_argument("--http", help="ADDR:PORT, or [::]:PORT for both families")
    ap.add_argument("--udp", action="append", default=[],
                    help="ADDR:PORT or [ADDR6]:PORT, repeatable (bind the VIP itself: replies must come from it)")
    args = ap.parse_args()
    if bool(args.http) == bool(args.udp):
        ap.error("give --http or --udp")
    name = args.name.encode()
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    if args.udp:
        serve_udp(name, args.udp)
    else:
        serve_http(name, args.http)


def host_port(address):
    """ "10.99.0.100:80" or "[fd00:99::100]:80": the host, its family, the port."""
    host, port = address.rsplit(":", 1)
    if host.startswith("["):
        return host.strip("[]"), socket.AF_INET6, int(port)
    return host, socket.AF_INET, int(port)


def serve_udp(name, addresses):
    import selectors
    sel = selectors.DefaultSelector()
    for address in addresses:
        host, family, port = host_port(address)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((host, port))
        sel.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            data, peer = key.fileobj.recvfrom(65535)
            reply = name + b"\n"
            if data.startswith(b"echo "):
                reply += data
            key.fileobj.sendto(reply, peer)


def serve_http(name, address):

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/stream":
                query = parse_qs(url.query)
                secs = int(query.get("secs", ["20"])[0])
                # One line every `ms` milliseconds (default a second) for `secs` s.
                ms = max(10, int(query.get("ms", ["1000"])[0]))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(secs * 1000 // ms):
                    line = b"%s %d\n" % (name, i)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                    time.sleep(ms / 1000)
                self.wfile.write(b"0\r\n\r\n")
                return
            if url.path == "/bytes":
                n = int(parse_qs(url.query).get("n", ["1000000"])[0])
                body = (name + b"\n" + b"x" * n)[:n]
            else:
                body = name + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    host, family, port = host_port(address)

    class Server(ThreadingHTTPServer):
        address_family = family

        def server_bind(self):
            if family == socket.AF_INET6:
                # [::] takes IPv4 too (as ::ffff:a.b.c.d): one server, both families.
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    Server.allow_reuse_address = True
    # socketserver listens with a backlog of 5: 200 streams opened at once overflowed
    # it, the kernel dropped their handshakes' last ACK and accepted them seconds
    # later, after SYN-ACK retries, and a client that waited 10 s for its first line
    # timed out (1 to 18 of 200, more under load), with no frame lost on the way.
    Server.request_queue_size = 1024
    http = Server((host, port), Handler)
    http.daemon_threads = True
    http.serve_forever()


if __name__ == "__main__":
    main()
