"""Idle memory per connection with permessage-deflate negotiated or not.

    python3 scripts/deflate-idle.py [N]     (default 5000 connections each way)

Starts target/release/examples/echo --deflate, opens N WebSocket connections offering
permessage-deflate (negotiated) and measures the server's RSS growth per connection, then
the same with a fresh server and connections that do not offer it, then with offers that
ask for context takeover... no: the server's default answers no context takeover either
way, so the only difference is the negotiated state (a boxed 48-byte DeflateConn). Each
connection then exchanges one compressed message, so the figure includes whatever the
message left behind. Prints one line per case.
"""

import base64
import os
import socket
import subprocess
import sys
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "examples", "echo")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def frame(payload, rsv1):
    b0 = 0x81 | (0x40 if rsv1 else 0)
    key = os.urandom(4)
    head = bytes([b0, 0x80 | 126]) + len(payload).to_bytes(2, "big") if len(payload) > 125 \
        else bytes([b0, 0x80 | len(payload)])
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def run(n, offer):
    wrap = os.environ.get("ECHO_WRAP", "").split()
    proc = subprocess.Popen(wrap + [BIN, "--listen", "127.0.0.1:0", "--deflate",
                             "--max-connections", str(n + 10)],
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    while "listening on" not in line:
        line = proc.stderr.readline()
    port = int(line.strip().rsplit(":", 1)[1])
    time.sleep(0.2)
    base = rss_kib(proc.pid)
    text = b"an idle client said this once, and then nothing more " * 8
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    z = (c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if offer else ""
        s.sendall((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n").encode())
        socks.append(s)
    for s in socks:
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        if not os.environ.get("NO_MESSAGE"):
            rsv1 = offer and not os.environ.get("PLAIN_IN")
            s.sendall(frame(z if rsv1 else text, rsv1))
    for s in socks:
        if not os.environ.get("NO_MESSAGE"):
            s.recv(65536)  # the echo
    time.sleep(0.5)
    grown = rss_kib(proc.pid) - base
    proc.terminate()
    proc.wait()
    for s in socks:
        s.close()
    return grown * 1024 / n


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    for offer in (False, True):
        per = run(n, offer)
        print(f"{n} idle connections, deflate {'negotiated' if offer else 'not offered'}: "
              f"{per:.0f} bytes of server RSS each")


if __name__ == "__main__":
    main()
