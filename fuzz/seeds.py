#!/usr/bin/env python3
"""Writes the seed corpora, fuzz/corpus/<target>/, from real frames, requests and payloads.

The inputs are taken from postern's tests and protocol docs (tests/*.rs, src/**/tests,
docs/protocols/*.md) and spelled in each target's input format (see fuzz/src/lib.rs and
fuzz/src/stream.rs). Deterministic: rerunning it rewrites the same files. Usage:

    python3 fuzz/seeds.py
"""

import hashlib
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455 §5.7's example key


def write(target, items):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    for data in items:
        name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def frame(b0, payload, key=KEY, masked=True):
    """A client frame with raw first byte b0 (FIN, RSV, opcode)."""
    n = len(payload)
    m = 0x80 if masked else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


TEXT = "κόσμε a€𝄞 Hello-µ@ßöäüàá-UTF-8!!".encode()
BAD_UTF8 = [
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",  # surrogate
    b"\xf4\x90\x80\x80",  # > U+10FFFF
    b"\xc0\xaf",  # overlong
    b"abc\xff",
    b"\xe0\x80\xaf",
    b"\xf0\x9f\x98",  # truncated
]

FRAMES = [
    bytes([0x81, 0x85]) + KEY + bytes([0x7F, 0x9F, 0x4D, 0x51, 0x58]),  # "Hello", RFC
    frame(0x81, b'{"f":120}'),
    frame(0x82, bytes(range(200))),
    frame(0x82, b"\x00" * 70000),
    frame(0x89, b"ping"),
    frame(0x8A, b""),
    frame(0x88, b"\x03\xe8bye"),
    frame(0x88, b""),
    frame(0x88, b"\x03"),  # truncated close
    frame(0x88, b"\x03\xed"),  # 1005 on the wire
    frame(0x88, b"\x03\xe8\xff"),  # reason not UTF-8
    frame(0x01, TEXT[:7]),  # first fragment, cut inside a code point
    frame(0x80, TEXT[7:]),
    frame(0x81, b"x", masked=False),  # unmasked
    frame(0xC1, b"x"),  # RSV1
    frame(0x83, b"x"),  # reserved opcode
    frame(0x09, b"x"),  # fragmented ping
    frame(0x80, b"x"),  # continuation without a message
    bytes([0x89, 0xFE, 0x00, 0x7E]),  # ping over 125
    bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]),  # 64-bit length with the top bit
    bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]) + KEY,  # 65536, over 4096
]


def header_seeds():
    out = []
    for pick in (0, 3, 6, 7):
        for f in FRAMES:
            out.append(bytes([pick]) + f[:14])
    return out


def codec_seeds():
    out = []
    for payload in [TEXT, b"", b"\x03\xe8bye", b"\x0f\xa0" + "é".encode() * 70] + BAD_UTF8:
        out.append(KEY + bytes([len(payload) // 2]) + payload)
    return out


def stream_seeds():
    """Head byte: limit pick (bits 0-2) and the count of read sizes (bits 3-5)."""
    fragmented = frame(0x01, TEXT[:7]) + frame(0x89, b"mid") + frame(0x80, TEXT[7:])
    chat = frame(0x81, b'{"f":110,"cnf":{"token":"t"}}') + frame(0x81, b'{"f":120}')
    close = frame(0x81, b"last words") + frame(0x88, b"\x03\xe8bye") + frame(0x81, b"after")
    streams = [
        (6, [], chat),
        (6, [1], fragmented),
        (6, [3, 7], fragmented + chat),
        (6, [5, 1, 2], close),
        (3, [2], frame(0x82, bytes(126))),  # over a 125-byte limit
        (5, [9], frame(0x02, bytes(600)) + frame(0x00, bytes(600)) + frame(0x80, b"")),
        (6, [4], frame(0x01, b"ok") + frame(0x81, b"new message inside")),
        (6, [2], frame(0x01, BAD_UTF8[0][:13]) + frame(0x80, BAD_UTF8[0][13:])),
        (6, [1, 13], frame(0x82, bytes(300)) * 3),
        (7, [255, 1], frame(0x82, bytes(5000))),
    ]
    out = []
    for limit, sizes, data in streams:
        out.append(bytes([limit | (len(sizes) << 3)] + sizes) + data)
    for f in FRAMES:
        out.append(bytes([6]) + f)
    return out


UPGRADE = (
    b"GET /gateway?v=6&encoding=json HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8080\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"\r\n"
)

REQUESTS = [
    UPGRADE,
    UPGRADE + frame(0x81, b'{"f":120}'),
    UPGRADE.replace(b"13", b"8"),
    UPGRADE.replace(b"GET", b"POST"),
    UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0"),
    UPGRADE.replace(b"Upgrade: websocket\r\n", b""),
    UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"),
    UPGRADE.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"short"),
    UPGRADE.replace(b"Sec-WebSocket-Version: 13\r\n", b""),
    UPGRADE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
    b"GET /gw?roomId=42&name=a%20b+c&e=&flag&bad=%zz%4&u=%FF&roomId=7 HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-A: \t one \t\r\nx-a: two\r\nX-Bin: \xff\xfe\r\n\r\n",
    b"GET / HTTP/1.1\r\n folded: v\r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET /a b HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nName: v\x00x\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"PUT /api/v1/connect?guild_id=10&channel_id=20 HTTP/1.1\r\nHost: x\r\n"
    b"Connection: close\r\nContent-Length: 2\r\n\r\n{}",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(70)) + b"\r\n",
]

# Client and server payloads of the seed protocols (tests/*.rs, src/gateway/dialects).
PAYLOADS = [
    # i386chat
    '{"f":110,"cnf":{"token":"t"}}',
    '{"f":110,"cnf":{"token":"t","session_id":9683494578353,"s":4}}',
    '{"f":110,"cnf":{"token":"t","session_id":"18446744073709551615"},"s":7}',
    '{"f":110,"cnf":{"session_id":-1}}',
    '{"f":110,"cnf":"token"}',
    '{"f":120}',
    '{"f":120,"cnf":""}',
    '{"f":130,"cnf":{"content":"hi"},"s":21,"t":"MESSAGE_CREATE"}',
    '{"f":130,"cnf":{},"s":1,"e":"START_TYPING"}',
    '{"f":140,"cnf":{"v":6,"session_id":42,"enc_key":"k"}}',
    '{"f":150,"cnf":{"c":4004,"d":true}}',
    '{"f":1e400}',
    '{"f":"110"}',
    # chat rooms
    '{"e":1,"d":{}}',
    '{"e":2,"d":{}}',
    '{"e":2}',
    '{"e":"1"}',
    '{"e":1.5}',
    '{"e":3,"d":{"authorId":"x","content":"y","sentAt":1}}',
    '{"e":0,"d":{"heartbeatInterval":30000}}',
    # Discodo
    '{"op":"IDENTIFY","d":{"user_id":1,"shard_id":0}}',
    '{"op":"HEARTBEAT","d":{"a": [1, 2.50]}}',
    '{"op":"HEARTBEAT"}',
    '{"op":"HELLO","d":{"heartbeat_interval":15.0}}',
    '{"op":"DECODE_ERROR","d":"malformed payload: eof"}',
    '{"a": {"b": [null, "x"]}, "n": 1e3}',
    '{"op":1}',
    # Nexus
    '{"op":10,"d":{"x":1}}',
    '{"op":10}',
    '{"op":11}',
    '{"op":"10"}',
    '{"op":null}',
    '{"op":99,"t":"X"}',
    '{"t":"VOICE_SERVER_UPDATE","d":{"guild_id":"1","token":"t","endpoint":"e"}}',
    '{"t":"TRACK_START","d":{"guild_id":"1"}}',
    '{"t":7}',
    # Nightingale
    '{"op":"ready","data":{"session":"ad13c35f-7bf4-413b-997d-eef2fe009f98","resumed":false}}',
    '{"op":"forward","data":{"op":4,"d":{}}}',
    '{"op":"update_voice_state","data":{}}',
    # odd JSON
    "[]",
    '"\\ud800"',
    "[" * 130 + "]" * 130,
    '{"d":"\\u0000\\n\\"x"}',
    "",
]


def session_seeds():
    """Config bytes (25, see fuzz/src/input.rs) then (client, op, args) triples; see fuzz/src/model.rs step()."""
    config = (
        # interval, grace, required, identify timeout, heartbeat burst - 1, before identify
        struct.pack(">HHBHBB", 1000, 500, 1, 10000, 3, 0)
        # probes: every 5 s, answered within 2 s
        + struct.pack(">BHH", 0, 5000, 2000)
        # resume window, replay events, replay bytes, max sessions - 1, rate - 1, window,
        # slack, replace old
        + struct.pack(">HBHBBHBB", 30000, 8, 400, 3, 15, 60000, 2, 1)
    )
    ops = [
        bytes([0, 4]),  # client 0 identifies
        bytes([0, 10, 0, 10]),  # one event to session 0
        bytes([0, 12]),  # read
        bytes([0, 7]),  # heartbeat
        bytes([0, 14]),  # drop the connection
        bytes([0, 10, 224, 20]),  # broadcast while detached
        bytes([0, 5]),  # resume with the last sequence read
        bytes([0, 12]),
        bytes([1, 4]),
        bytes([1, 3]),  # reconnect, leaving a half-open connection
        bytes([1, 6]),  # resume at the upgrade
        bytes([0, 1, 0x40, 0x00]),  # 16 s pass
        bytes([0, 2, 0xFF, 0xFF, 20]),  # a big jump
        bytes([2, 15, 0, 3]),
    ]
    return [config + b"".join(ops), config + b"".join(ops[:8]) * 4]


def main():
    write("frame_header", header_seeds())
    write("wire_codecs", codec_seeds())
    write("ws_stream", stream_seeds())
    write("upgrade_request", REQUESTS)
    payloads = [p.encode() for p in PAYLOADS]
    for target in ["i386", "rooms", "discodo", "nexus", "nightingale"]:
        write("dialect_" + target, payloads)
    write("session_machine", session_seeds())


if __name__ == "__main__":
    main()
