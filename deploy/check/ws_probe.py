#!/usr/bin/env python3
"""A minimal WebSocket client for bin/check-deploy (standard library only).

Opens URL (ws:// or wss://, certificate not verified: the checks use throwaway certificates)
with the given Origin, prints the HTTP status line, then each text frame the server sends, one
per line, until the server closes or --timeout passes. Exit status: 0 when the upgrade
succeeded (101) or, with --expect-refused, when it did not; 1 otherwise.

    ws_probe.py wss://localhost:8443/cable --origin https://localhost:8443 --frames 1
"""

import argparse
import base64
import os
import socket
import ssl
import struct
import sys
import time
import urllib.parse


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def read_frame(sock):
    b0, b1 = read_exact(sock, 2)
    opcode = b0 & 0x0F
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", read_exact(sock, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", read_exact(sock, 8))
    mask = read_exact(sock, 4) if b1 & 0x80 else None
    payload = read_exact(sock, length)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return opcode, payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--origin")
    ap.add_argument("--frames", type=int, default=0, help="stop after N text frames (0: until close)")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--expect-refused", action="store_true")
    args = ap.parse_args()

    url = urllib.parse.urlsplit(args.url)
    secure = url.scheme == "wss"
    port = url.port or (443 if secure else 80)
    sock = socket.create_connection((url.hostname, port), timeout=args.timeout)
    if secure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        sock = ctx.wrap_socket(sock, server_hostname=url.hostname)
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    host = url.netloc.rsplit("@", 1)[-1]
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: actioncable-v1-json, actioncable-unsupported",
    ]
    if args.origin:
        lines.append(f"Origin: {args.origin}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    print(status, flush=True)
    upgraded = " 101 " in status + " "
    if not upgraded:
        return 0 if args.expect_refused else 1
    if args.expect_refused:
        return 1

    seen = 0
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            opcode, payload = read_frame(sock)
            if opcode == 0x1:
                print(payload.decode(), flush=True)
                seen += 1
                if args.frames and seen >= args.frames:
                    break
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                print(f"close {code}", flush=True)
                break
    except (EOFError, socket.timeout, ConnectionError) as e:
        print(f"ended: {e.__class__.__name__}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
