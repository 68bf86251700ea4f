"""End-to-end tests of permessage-deflate (RFC 7692) against examples/echo.rs.

Python `websockets` offers permessage-deflate by default: it checks compressed round trips
and that a server without `--deflate` declines the offer. Raw sockets send what a library
will not: decompression bombs (refused 1009, the server's memory unmoved), corrupt data
(1007), RSV1 where it is not allowed (1002). Each test starts echo on a free port.

    python tests/python/test_deflate.py

Set ECHO_BIN to use a given binary; otherwise target/release/examples/echo is built.
"""

import asyncio
import base64
import os
import socket
import struct
import subprocess
import unittest
import zlib

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = None
LIMIT = 4096  # echo's default --max-payload


def setUpModule():
    global BIN
    BIN = os.environ.get("ECHO_BIN")
    if not BIN:
        subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "echo"],
                       cwd=ROOT, check=True, timeout=600)
        BIN = os.path.join(ROOT, "target", "release", "examples", "echo")


def compress(data, final=False):
    """Raw deflate of one message, as a client sends it (sync flush, tail removed)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)
    return out if final else out[:-4]


def inflate(payload):
    """Inflates one server message (tail appended back)."""
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


def frame(payload, opcode=0x1, fin=True, rsv1=False):
    """A masked client frame."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


class Raw:
    """A hand-driven client socket."""

    def __init__(self, port, offer="permessage-deflate"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        ext = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
        self.sock.sendall((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n{ext}\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.recv_some()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head.decode()
        assert self.head.startswith("HTTP/1.1 101"), self.head

    def recv_some(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        return data

    def need(self, n):
        while len(self.buf) < n:
            self.buf += self.recv_some()

    def read_frame(self):
        """(first byte, payload) of the next server frame."""
        self.need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, at = b1 & 0x7F, 2
        if n == 126:
            self.need(4)
            n, at = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self.need(10)
            n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
        self.need(at + n)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return b0, payload

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may have closed already: its Close frame is what counts

    def close_code(self):
        b0, payload = self.read_frame()
        assert b0 & 0x0F == 0x8, f"expected a Close frame, got {b0:#x}"
        return struct.unpack("!H", payload[:2])[0]


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class DeflateTest(unittest.IsolatedAsyncioTestCase):
    deflate = True

    async def asyncSetUp(self):
        args = [BIN, "--listen", "127.0.0.1:0"] + (["--deflate"] if self.deflate else [])
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        self.assertIn("listening on", line)
        self.port = int(line.strip().rsplit(":", 1)[1])

    async def asyncTearDown(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stderr.close()

    async def echo_round_trips(self):
        async with websockets.connect(f"ws://127.0.0.1:{self.port}", max_size=None) as ws:
            for msg in ["x", "hello " * 600, b"\x00\x01" * 2048, os.urandom(LIMIT)]:
                await ws.send(msg)
                got = await asyncio.wait_for(ws.recv(), 5)
                self.assertEqual(got, msg)
            return ws.response.headers.get("Sec-WebSocket-Extensions")


class WithDeflate(DeflateTest):
    async def test_websockets_negotiates_and_round_trips(self):
        ext = await self.echo_round_trips()
        self.assertEqual(ext, "permessage-deflate; server_no_context_takeover; "
                              "client_no_context_takeover; client_max_window_bits=15")

    async def test_the_server_compresses_and_accepts_both_kinds(self):
        c = Raw(self.port)
        self.assertIn("Sec-WebSocket-Extensions: permessage-deflate", c.head)
        text = b"compress me please " * 100
        c.send(frame(compress(text), rsv1=True))
        b0, payload = c.read_frame()
        self.assertEqual(b0, 0xC1, "a compressed text frame")
        self.assertEqual(inflate(payload), text)
        c.send(frame(b"tiny", rsv1=False))
        self.assertEqual(c.read_frame(), (0x81, b"tiny"), "short messages go out plain")
        # A message split over frames, the first with RSV1; one ended with BFINAL.
        z = compress(text)
        c.send(frame(z[:10], opcode=0x2, fin=False, rsv1=True) + frame(z[10:], opcode=0x0))
        b0, payload = c.read_frame()
        self.assertEqual(b0, 0xC2)
        c.send(frame(compress(text, final=True), rsv1=True))
        b0, payload = c.read_frame()
        self.assertEqual(inflate(payload), text)

    async def test_bomb_in_one_frame_is_1009_and_costs_no_memory(self):
        bomb = compress(b"a" * (3 << 20))
        self.assertLess(len(bomb), LIMIT, "3 MiB in under 4 KiB")
        before = vm_kib(self.proc.pid, "VmHWM")
        bystander = Raw(self.port)
        c = Raw(self.port)
        c.send(frame(bomb, rsv1=True))
        self.assertEqual(c.close_code(), 1009)
        bystander.send(frame(b"still here"))
        self.assertEqual(bystander.read_frame(), (0x81, b"still here"))
        grown = vm_kib(self.proc.pid, "VmHWM") - before
        self.assertLess(grown, 1024, f"peak memory grew {grown} KiB")

    async def test_bomb_in_fragments_is_1009(self):
        bomb = compress(bytes(64 << 20))
        self.assertLess(len(bomb), 80 * 1024, "64 MiB in about 64 KiB")
        before = vm_kib(self.proc.pid, "VmHWM")
        c = Raw(self.port)
        chunks = [bomb[i:i + LIMIT] for i in range(0, len(bomb), LIMIT)]
        c.send(frame(chunks[0], opcode=0x2, fin=False, rsv1=True))
        for i, chunk in enumerate(chunks[1:]):
            c.send(frame(chunk, opcode=0x0, fin=i + 2 == len(chunks)))
        self.assertEqual(c.close_code(), 1009)
        grown = vm_kib(self.proc.pid, "VmHWM") - before
        self.assertLess(grown, 1024, f"peak memory grew {grown} KiB")

    async def test_corrupt_data_is_1007(self):
        c = Raw(self.port)
        c.send(frame(b"\xff\xff\xff\xff\xff", rsv1=True))
        self.assertEqual(c.close_code(), 1007)

    async def test_rsv1_on_a_control_frame_or_continuation_is_1002(self):
        c = Raw(self.port)
        c.send(frame(b"", opcode=0x9, rsv1=True))
        self.assertEqual(c.close_code(), 1002)
        c = Raw(self.port)
        z = compress(b"some words some words")
        c.send(frame(z[:4], fin=False, rsv1=True) + frame(z[4:], opcode=0x0, rsv1=True))
        self.assertEqual(c.close_code(), 1002)

    async def test_a_compressed_frame_may_pass_the_limit_by_the_slack_only(self):
        noise = os.urandom(LIMIT)
        z = compress(noise)
        self.assertGreater(len(z), LIMIT)
        c = Raw(self.port)
        c.send(frame(z, opcode=0x2, rsv1=True))
        b0, payload = c.read_frame()
        self.assertEqual(b0, 0x82, "incompressible: echoed plain")
        self.assertEqual(payload, noise)
        c.send(frame(os.urandom(LIMIT + LIMIT // 256 + 17), opcode=0x2, rsv1=True))
        self.assertEqual(c.close_code(), 1009)

    async def test_an_offer_the_server_cannot_take_is_declined(self):
        c = Raw(self.port, offer="permessage-deflate; server_max_window_bits=16")
        self.assertNotIn("Sec-WebSocket-Extensions", c.head)
        c.send(frame(compress(b"abc abc abc"), rsv1=True))
        self.assertEqual(c.close_code(), 1002)


class WithoutDeflate(DeflateTest):
    deflate = False

    async def test_the_offer_is_declined_and_echo_works(self):
        self.assertIsNone(await self.echo_round_trips())

    async def test_rsv1_is_1002(self):
        c = Raw(self.port)
        self.assertNotIn("Sec-WebSocket-Extensions", c.head)
        c.send(frame(compress(b"hello hello"), rsv1=True))
        self.assertEqual(c.close_code(), 1002)


del DeflateTest

if __name__ == "__main__":
    unittest.main()
