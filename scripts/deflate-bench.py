"""Echo with and without permessage-deflate: messages per server CPU-second.

    .venv/bin/python scripts/deflate-bench.py [MESSAGES] [SIZE]   (defaults 20000, 1024)

Starts target/release/examples/echo (with --deflate for the second round), runs 10 Python
`websockets` clients (compression offered in the deflate round, off otherwise) that each
send MESSAGES/10 JSON-like text messages of SIZE bytes, 16 in flight, and reads the echo of
each. The server's CPU time (utime + stime from /proc) is what is divided by: the Python
clients are far slower than the server, so wall-clock rates say nothing about it.
"""

import asyncio
import os
import subprocess
import sys

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "examples", "echo")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def payload(size, i):
    body = '{"op":0,"t":"MESSAGE_CREATE","d":{"id":"%d","content":"' % i
    filler = "the quick brown fox jumps over the lazy dog " * (size // 44 + 1)
    return (body + filler)[: size - 3] + '"}}'


async def client(port, count, size, compression):
    async with websockets.connect(f"ws://127.0.0.1:{port}", compression=compression,
                                  max_size=None) as ws:
        sent = received = 0
        while received < count:
            while sent < count and sent - received < 16:
                await ws.send(payload(size, sent))
                sent += 1
            await ws.recv()
            received += 1


async def round_(deflate, messages, size):
    args = [BIN, "--listen", "127.0.0.1:0"] + (["--deflate"] if deflate else [])
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    port = int(proc.stderr.readline().strip().rsplit(":", 1)[1])
    before = cpu_seconds(proc.pid)
    compression = "deflate" if deflate else None
    await asyncio.gather(*(client(port, messages // 10, size, compression) for _ in range(10)))
    used = cpu_seconds(proc.pid) - before
    proc.terminate()
    proc.wait()
    return used


def main():
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    for deflate in (False, True):
        used = asyncio.run(round_(deflate, messages, size))
        rate = messages / used if used else float("inf")
        print(f"echo {size} B, deflate {'on ' if deflate else 'off'}: {messages} messages, "
              f"server CPU {used:.2f} s, {rate:,.0f} messages per server CPU-second")


if __name__ == "__main__":
    main()
