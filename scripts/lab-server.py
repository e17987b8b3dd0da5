#!/usr/bin/env python3
"""A lab target's services, answering with the target's name:
HTTP on --http (GET / -> name; GET /stream?secs=N -> one line a second for N s),
UDP echo on --udp (any datagram -> name). Runs until killed."""
import argparse
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--http", required=True, help="ADDR:PORT")
    ap.add_argument("--udp", required=True, help="ADDR:PORT (bind the VIP: replies must come from it)")
    args = ap.parse_args()
    name = args.name.encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/stream":
                secs = int(parse_qs(url.query).get("secs", ["20"])[0])
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(secs):
                    line = b"%s %d\n" % (name, i)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                    time.sleep(1)
                self.wfile.write(b"0\r\n\r\n")
                return
            body = name + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    host, port = args.http.rsplit(":", 1)
    http = ThreadingHTTPServer((host, int(port)), Handler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()

    host, port = args.udp.rsplit(":", 1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, int(port)))
    while True:
        _, peer = udp.recvfrom(2048)
        udp.sendto(name + b"\n", peer)


if __name__ == "__main__":
    main()
