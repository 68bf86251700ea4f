"""End-to-end tests of examples/chat.rs (seed 004, the i386chat gateway) with Python `websockets`.

Each test starts the release example on a free port (`--listen 127.0.0.1:0`) as a subprocess
and talks to it over WebSockets; every wait is bounded. The protocol: docs/protocols/chat.md.

    python tests/python/test_chat.py [TEST_NAME...]

prints one line per test and a last line `N passed, M failed`; exits 1 if any test failed.
Set CHAT_BIN to use another binary than target/release/examples/chat.
"""

import asyncio
import inspect
import json
import os
import re
import signal
import sys
import time
import traceback

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT_BIN = os.environ.get("CHAT_BIN", os.path.join(ROOT, "target", "release", "examples", "chat"))

ALICE, BOB, ADMIN = "TOKEN_A", "TOKEN_B", "TOKEN_R"
# Tests that do not test heartbeats use a 2 s interval (5 s of silence allowed), so that a
# loaded machine cannot time out an idle listener mid-test.
CALM = 2000
EXPECT = 3.0  # seconds to wait for a payload the test expects
QUIET = 0.25  # seconds of "nothing else arrives"
TEST_TIMEOUT = 20.0


class Server:
    """The chat example on a free port; `async with Server(...) as s`."""

    def __init__(self, heartbeat_ms=CALM, *extra):
        self.args = [
            CHAT_BIN, "--listen", "127.0.0.1:0",
            "--user", "alice:" + ALICE, "--user", "bob:" + BOB, "--admin", "root:" + ADMIN,
            "--heartbeat-ms", str(heartbeat_ms), *extra,
        ]
        # CHAT_DEFLATE=1 runs every test with permessage-deflate negotiated.
        if os.environ.get("CHAT_DEFLATE") == "1" and "--deflate" not in self.args:
            self.args.append("--deflate")
        self.compression = "deflate" if "--deflate" in self.args else None
        self.proc = None
        self.addr = None
        self._drain = None

    async def __aenter__(self):
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(self.proc.stderr.readline(), 10)
        m = re.match(r"listening on (\S+)", line.decode())
        assert m, f"expected `listening on ADDR`, got {line!r}"
        self.addr = m.group(1)
        self._drain = asyncio.create_task(self._read_rest())
        return self

    async def _read_rest(self):
        while await self.proc.stderr.readline():
            pass

    async def __aexit__(self, *exc):
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._drain.cancel()

    def url(self, path="/"):
        return f"ws://{self.addr}{path}"

    async def connect(self, path="/"):
        """Opens a WebSocket and reads HELLO."""
        c = await self.connect_raw(path)
        hello = await c.recv()
        assert hello["f"] == 100 and isinstance(hello["cnf"]["hb_int"], int), hello
        return c

    async def connect_raw(self, path="/"):
        ws = await websockets.connect(self.url(path), ping_interval=None,
                                      compression=self.compression,
                                      open_timeout=EXPECT, close_timeout=2)
        return Client(ws)

    async def login(self, token):
        """Connects, presents, reads READY and the session's own ROOM_USER_ADD."""
        c = await self.connect()
        ready = await c.present(token)
        joined = await c.expect_event("ROOM_USER_ADD")
        assert joined["cnf"] == {"user": ready["user"], "channel": "general"}, joined
        return c, ready


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed {code} {reason!r}")
        self.code, self.reason = code, reason


class Client:
    """A WebSocket client that checks every 130 carries the next sequence number."""

    def __init__(self, ws):
        self.ws = ws
        self.seq = None

    async def send(self, payload):
        await self.ws.send(payload if isinstance(payload, (str, bytes)) else json.dumps(payload))

    async def execute(self, event, cnf):
        await self.send({"f": 130, "t": event, "cnf": cnf})

    async def recv(self, timeout=EXPECT):
        """The next payload (parsed); raises Closed on a close, TimeoutError on silence."""
        try:
            text = await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as e:
            rcvd = e.rcvd
            raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else None) from None
        msg = json.loads(text)
        if msg.get("f") == 130:
            s = msg["s"]
            if self.seq is not None:
                assert s == self.seq + 1, f"sequence after {self.seq}: {msg}"
            self.seq = s
        return msg

    async def expect_event(self, t):
        msg = await self.recv()
        assert msg["f"] == 130 and msg["t"] == t, f"expected {t}, got {msg}"
        return msg

    async def expect_error(self, code, fatal):
        msg = await self.recv()
        assert msg == {"f": 150, "cnf": {"c": code, "d": fatal}}, f"expected error {code}, got {msg}"

    async def expect_close(self, code):
        try:
            msg = await self.recv()
        except Closed as e:
            assert e.code == code, f"expected close {code}, got {e.code} {e.reason!r}"
            return e.reason
        raise AssertionError(f"expected close {code}, got {msg}")

    async def expect_fatal(self, code):
        await self.expect_error(code, True)
        await self.expect_close(code)

    async def expect_silence(self, quiet=QUIET):
        try:
            msg = await self.recv(quiet)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"expected silence, got {msg}")

    async def heartbeat(self):
        await self.send({"f": 120})
        assert await self.recv() == {"f": 120}

    async def present(self, token):
        await self.send({"f": 110, "cnf": {"token": token}})
        ready = await self.recv()
        assert ready["f"] == 140 and ready["cnf"]["v"] == 6, ready
        assert "resumed" not in ready["cnf"], ready
        self.seq = 0
        return ready["cnf"]

    async def send_resume(self, token, session_id, s):
        await self.send({"f": 110, "cnf": {"token": token, "session_id": session_id, "s": s}})

    async def resume(self, token, session_id, s):
        await self.send_resume(token, session_id, s)
        ready = await self.recv()
        assert ready["f"] == 140 and ready["cnf"].get("resumed") is True, ready
        assert "members" not in ready["cnf"] and "channels" not in ready["cnf"], ready
        self.seq = s
        return ready["cnf"]

    async def close(self):
        await self.ws.close()


# ---------------------------------------------------------------------------------------------
# Tests


async def upgrade_status(addr, host, origin):
    """The status line's code of a raw upgrade request with `Host: host` and `Origin: origin`
    (None: no Origin)."""
    reader, writer = await asyncio.open_connection(*addr.rsplit(":", 1))
    origin_line = f"Origin: {origin}\r\n" if origin is not None else ""
    writer.write((f"GET /gateway HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin_line}\r\n").encode())
    line = await asyncio.wait_for(reader.readline(), EXPECT)
    writer.close()
    return int(line.split()[1])


async def test_origin_rule_answers_403_before_the_upgrade():
    async with Server(CALM, "--allowed-origin", "http://friend.example:8080") as server:
        host = server.addr
        port = int(host.rsplit(":", 1)[1])
        cases = [(None, 101), (f"http://{host}", 101), ("http://friend.example:8080", 101),
                 ("null", 403), ("http://friend.example", 403), (f"http://127.0.0.1:{port + 1}", 403),
                 ("https://evil.example", 403)]
        for origin, status in cases:
            assert await upgrade_status(server.addr, host, origin) == status, origin
        # A client library that sends an Origin gets the 403 as its handshake's answer.
        try:
            await websockets.connect(server.url("/"), origin="https://evil.example",
                                     open_timeout=EXPECT)
        except websockets.InvalidStatus as e:
            assert e.response.status_code == 403
        else:
            raise AssertionError("a foreign origin was upgraded")
        c = await websockets.connect(server.url("/"), origin=f"http://{host}", open_timeout=EXPECT)
        assert json.loads(await c.recv())["f"] == 100
        await c.close()


async def test_ready_lists_channels_and_members_and_a_mover_gets_the_new_list():
    async with Server() as server:
        alice, ready = await server.login(ALICE)
        assert ready["members"] == [] and ready["channels"] == ["general"], ready
        await alice.execute("CHANNEL_ADD", {"channel": "ops"})
        await alice.expect_event("CHANNEL_ADD")
        bob, ready = await server.login(BOB)
        assert ready["members"] == ["alice"] and ready["channels"] == ["general", "ops"], ready
        bob2, ready = await server.login(BOB)
        assert ready["members"] == ["alice", "bob"], ready
        await bob.expect_event("ROOM_USER_ADD")  # bob2's arrival
        await bob.execute("CHANNEL_MOVE", {"channel": "ops"})
        assert (await bob.expect_event("ROOM_USER_ADD"))["cnf"] == {
            "user": "bob", "channel": "ops", "members": ["bob"]}
        await bob2.expect_event("ROOM_USER_REMOVE")  # bob's departure from general
        await bob2.execute("CHANNEL_MOVE", {"channel": "ops"})
        assert (await bob2.expect_event("ROOM_USER_ADD"))["cnf"] == {
            "user": "bob", "channel": "ops", "members": ["bob", "bob"]}
        # The others' copy has no list.
        assert (await bob.expect_event("ROOM_USER_ADD"))["cnf"] == {"user": "bob", "channel": "ops"}
    # Beyond the large threshold: no list (as no presence events).
    async with Server(CALM, "--large-threshold", "1") as server:
        _, ready = await server.login(ALICE)
        assert ready["members"] == [], ready
        c = await server.connect()
        ready = await c.present(BOB)
        assert "members" not in ready and ready["channels"] == ["general"], ready


async def test_present_gives_ready_with_its_fields():
    async with Server(500) as server:
        c = await server.connect_raw("/any/path?at=all")
        assert await c.recv() == {"f": 100, "cnf": {"hb_int": 500}}
        await c.send({"f": 110, "cnf": {"token": ALICE}})
        ready = await c.recv()
        assert ready["f"] == 140, ready
        cnf = ready["cnf"]
        assert sorted(cnf) == ["channel", "channels", "enc_key", "members", "session_id",
                               "user", "v"], ready
        assert cnf["channels"] == ["general"] and cnf["members"] == [], ready
        assert cnf["v"] == 6 and cnf["user"] == "alice" and cnf["channel"] == "general"
        assert isinstance(cnf["session_id"], int) and 0 < cnf["session_id"] < 2**64
        assert re.fullmatch(r"[0-9a-f]{32}", cnf["enc_key"]), cnf
        assert await c.recv() == {"f": 130, "s": 1, "t": "ROOM_USER_ADD",
                                  "cnf": {"user": "alice", "channel": "general"}}


async def test_wrong_token_is_4004():
    async with Server() as server:
        c = await server.connect()
        await c.send({"f": 110, "cnf": {"token": "nope"}})
        await c.expect_fatal(4004)


async def test_anything_before_present_is_4003():
    async with Server() as server:
        c = await server.connect()
        await c.execute("MESSAGE_CREATE", {"content": "too early"})
        await c.expect_fatal(4003)
        c = await server.connect()
        await c.send({"f": 120})
        await c.expect_fatal(4003)


async def test_decode_errors_and_unknown_function_codes():
    async with Server() as server:
        c = await server.connect()
        await c.send("not json")
        await c.expect_fatal(4002)
        c = await server.connect()
        await c.send({"f": 999})
        await c.expect_fatal(4001)
        c, _ = await server.login(ALICE)
        await c.send({"f": 110, "cnf": {"token": ALICE}})
        await c.expect_fatal(4005)


async def test_two_users_exchange_messages():
    async with Server() as server:
        alice, _ = await server.login(ALICE)
        bob, _ = await server.login(BOB)
        assert (await alice.expect_event("ROOM_USER_ADD"))["cnf"] == {"user": "bob", "channel": "general"}
        for i in range(6):
            speaker, listener, author = (alice, bob, "alice") if i % 2 == 0 else (bob, alice, "bob")
            text = f"hello {i} from {author} ✓"
            await speaker.execute("MESSAGE_CREATE", {"content": text})
            mine = await speaker.expect_event("MESSAGE_CREATE")
            theirs = await listener.expect_event("MESSAGE_CREATE")
            assert mine["cnf"] == theirs["cnf"]
            assert mine["cnf"]["author"] == author and mine["cnf"]["content"] == text
            assert mine["cnf"]["channel"] == "general"
        # Client.recv checked s = previous + 1 on every 130.
        assert alice.seq == 2 + 6 and bob.seq == 1 + 6
        await bob.execute("START_TYPING", {})
        assert (await alice.expect_event("START_TYPING"))["cnf"] == {"user": "bob", "channel": "general"}
        await bob.expect_silence()


async def test_deflate_compresses_dispatches_and_replays():
    """With --deflate, dispatches (a stored block with the sequence prefix, then the body
    compressed once for every member) and replayed events inflate to the right JSON."""
    async with Server(CALM, "--deflate") as server:
        alice, ready = await server.login(ALICE)
        bob, _ = await server.login(BOB)
        assert bob.ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        await alice.expect_event("ROOM_USER_ADD")
        text = "compressed " * 40
        await bob.execute("MESSAGE_CREATE", {"content": text})
        for c in (alice, bob):
            assert (await c.expect_event("MESSAGE_CREATE"))["cnf"]["content"] == text
        seen = alice.seq
        await alice.close()
        await bob.execute("MESSAGE_CREATE", {"content": text + "again"})
        await bob.expect_event("MESSAGE_CREATE")
        back = await server.connect()
        await back.resume(ALICE, str(ready["session_id"]), seen)
        got = await back.expect_event("MESSAGE_CREATE")
        assert got["s"] == seen + 1 and got["cnf"]["content"] == text + "again", got


async def test_channel_add_and_move():
    async with Server() as server:
        alice, _ = await server.login(ALICE)
        bob, _ = await server.login(BOB)
        await alice.expect_event("ROOM_USER_ADD")
        await alice.execute("CHANNEL_ADD", {"channel": "ops"})
        for c in (alice, bob):
            assert (await c.expect_event("CHANNEL_ADD"))["cnf"] == {"channel": "ops", "by": "alice"}
        await alice.execute("CHANNEL_ADD", {"channel": "Not Valid"})
        await alice.expect_error(4011, False)
        await alice.execute("CHANNEL_MOVE", {"channel": "ops"})
        assert (await alice.expect_event("ROOM_USER_ADD"))["cnf"] == {
            "user": "alice", "channel": "ops", "members": ["alice"]}
        assert (await bob.expect_event("ROOM_USER_REMOVE"))["cnf"] == {"user": "alice", "channel": "general"}
        await bob.execute("MESSAGE_CREATE", {"content": "alone"})
        await bob.expect_event("MESSAGE_CREATE")
        await alice.expect_silence()
        await alice.execute("CHANNEL_MOVE", {"channel": "nowhere"})
        await alice.expect_error(4016, False)


async def test_message_delete_permissions():
    async with Server() as server:
        alice, _ = await server.login(ALICE)
        bob, _ = await server.login(BOB)
        await alice.expect_event("ROOM_USER_ADD")
        root, _ = await server.login(ADMIN)
        for c in (alice, bob):
            await c.expect_event("ROOM_USER_ADD")
        ids = []
        for text in ("one", "two"):
            await alice.execute("MESSAGE_CREATE", {"content": text})
            ids.append((await alice.expect_event("MESSAGE_CREATE"))["cnf"]["id"])
            for c in (bob, root):
                await c.expect_event("MESSAGE_CREATE")
        await bob.execute("MESSAGE_DELETE", {"id": ids[0]})
        await bob.expect_error(4012, False)
        await bob.heartbeat()  # still open
        for deleter, mid in ((alice, ids[0]), (root, ids[1])):
            await deleter.execute("MESSAGE_DELETE", {"id": mid})
            for c in (alice, bob, root):
                assert (await c.expect_event("MESSAGE_DELETE"))["cnf"] == {"id": mid, "channel": "general"}


async def test_ban():
    async with Server() as server:
        alice, _ = await server.login(ALICE)
        bob, _ = await server.login(BOB)
        await alice.expect_event("ROOM_USER_ADD")
        root, _ = await server.login(ADMIN)
        for c in (alice, bob):
            await c.expect_event("ROOM_USER_ADD")
        await alice.execute("SYSTEM_BAN_ADD", {"user": "bob"})
        await alice.expect_error(4012, False)
        await root.execute("SYSTEM_BAN_ADD", {"user": "bob"})
        for c in (root, alice, bob):
            assert (await c.expect_event("SYSTEM_BAN_ADD"))["cnf"] == {"user": "bob", "by": "root"}
        await bob.expect_fatal(4013)
        for c in (root, alice):
            assert (await c.expect_event("ROOM_USER_REMOVE"))["cnf"] == {"user": "bob", "channel": "general"}
        again = await server.connect()
        await again.send({"f": 110, "cnf": {"token": BOB}})
        await again.expect_fatal(4013)


async def test_heartbeat_echo_and_timeout():
    async with Server(500) as server:
        c, _ = await server.login(ALICE)
        for _ in range(8):  # 2 s of heartbeats every 250 ms: well past the 1.25 s allowed
            await asyncio.sleep(0.25)
            await c.heartbeat()
        start = time.monotonic()
        try:
            msg = await c.recv(2.5)
        except asyncio.TimeoutError:
            raise AssertionError("no 4009 within 2.5 s of silence") from None
        waited = time.monotonic() - start
        assert msg == {"f": 150, "cnf": {"c": 4009, "d": True}}, msg
        assert waited >= 1.1, f"timed out too early: {waited:.2f} s"
        await c.expect_close(4009)


async def test_resume_with_replay():
    async with Server() as server:
        alice, ready = await server.login(ALICE)
        bob, _ = await server.login(BOB)
        await alice.expect_event("ROOM_USER_ADD")
        seen = alice.seq
        await alice.close()
        missed = []
        for text in ("while you were out", "again"):
            await bob.execute("MESSAGE_CREATE", {"content": text})
            missed.append(await bob.expect_event("MESSAGE_CREATE"))
        await bob.execute("CHANNEL_ADD", {"channel": "later"})
        missed.append(await bob.expect_event("CHANNEL_ADD"))
        back = await server.connect()
        # The session id may come back as a string of digits (for JavaScript clients).
        again = await back.resume(ALICE, str(ready["session_id"]), seen)
        assert again["session_id"] == ready["session_id"] and again["enc_key"] == ready["enc_key"]
        for i, event in enumerate(missed):
            got = await back.expect_event(event["t"])
            assert got["s"] == seen + 1 + i and got["cnf"] == event["cnf"], (got, event)
        await back.expect_silence()
        await bob.expect_silence()
        await bob.execute("MESSAGE_CREATE", {"content": "live"})
        await bob.expect_event("MESSAGE_CREATE")
        live = await back.expect_event("MESSAGE_CREATE")
        assert live["s"] == seen + 4 and live["cnf"]["content"] == "live"


async def test_resume_refusals_are_4006_and_not_fatal():
    async with Server() as server:
        alice, ready = await server.login(ALICE)
        await alice.close()
        c = await server.connect()
        await c.send_resume(BOB, ready["session_id"], 1)  # another user's token
        await c.expect_error(4006, False)
        await c.send_resume(ALICE, ready["session_id"], 5)  # a sequence never sent
        await c.expect_error(4006, False)
        fresh = await c.present(BOB)
        assert fresh["user"] == "bob" and fresh["session_id"] != ready["session_id"]
        await c.expect_event("ROOM_USER_ADD")


async def test_resume_of_a_live_session_closes_the_old_connection_with_4015():
    async with Server() as server:
        old, ready = await server.login(ALICE)
        new = await server.connect()
        await new.resume(ALICE, ready["session_id"], 1)
        await old.expect_fatal(4015)
        await new.expect_silence()


async def test_oversize_payload_is_closed_with_1009():
    async with Server() as server:
        c, _ = await server.login(ALICE)
        head = '{"f":120,"cnf":"'
        exact = head + "x" * (4096 - len(head) - 2) + '"}'
        assert len(exact) == 4096
        await c.send(exact)
        assert await c.recv() == {"f": 120}
        await c.send(head + "x" * (4097 - len(head) - 2) + '"}')
        await c.expect_close(1009)


async def test_connection_limit_flags_answer_429_and_503():
    # Per-address limits apply to loopback only with --limit-loopback true.
    async with Server(CALM, "--limit-loopback", "true", "--max-conns-per-ip", "2",
                      "--new-conns-per-ip", "100") as server:
        a, _ = await server.login(ALICE)
        b, _ = await server.login(BOB)
        try:
            await server.connect_raw()
        except websockets.InvalidStatus as e:
            assert e.response.status_code == 429, e
            assert e.response.headers.get("Retry-After") == "1", e.response.headers
        else:
            raise AssertionError("a third connection from one address was accepted")
        await a.expect_event("ROOM_USER_ADD")  # bob
        await a.heartbeat()  # the others are not disturbed
        await b.close()
        await asyncio.sleep(0.1)
        c = await server.connect()  # a freed place is usable again
        await c.close()
    async with Server(CALM, "--limit-loopback", "true", "--new-conns-per-ip", "3") as server:
        held = [await server.connect() for _ in range(3)]
        try:
            await server.connect_raw()
        except websockets.InvalidStatus as e:
            assert e.response.status_code == 429, e
        else:
            raise AssertionError("a fourth new connection within a second was accepted")
        for c in held:
            await c.close()
    async with Server(CALM, "--max-connections", "1") as server:
        a, _ = await server.login(ALICE)
        try:
            await server.connect_raw()
        except websockets.InvalidStatus as e:
            assert e.response.status_code == 503, e
        else:
            raise AssertionError("a connection beyond --max-connections was accepted")
        await a.heartbeat()
    # Without --limit-loopback, loopback clients are exempt from the per-address limits.
    async with Server(CALM, "--max-conns-per-ip", "1") as server:
        held = [await server.connect() for _ in range(3)]
        for c in held:
            await c.close()


async def test_gateway_down_on_sigterm():
    async with Server() as server:
        alice, _ = await server.login(ALICE)
        bob, _ = await server.login(BOB)
        await alice.expect_event("ROOM_USER_ADD")
        stranger = await server.connect()  # never presents
        server.proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        for c, s in ((alice, 3), (bob, 2)):
            assert await c.recv() == {"f": 130, "s": s, "t": "GATEWAY_DOWN", "cnf": {}}
            assert await c.expect_close(1001) == "server shutting down"
        await stranger.expect_close(1001)
        code = await asyncio.wait_for(server.proc.wait(), 4)
        assert code == 0, f"exit status {code}"
        assert time.monotonic() - start < 4


# ---------------------------------------------------------------------------------------------


def main(argv):
    tests = [(name, fn) for name, fn in globals().items()
             if name.startswith("test_") and inspect.iscoroutinefunction(fn)]
    if argv:
        tests = [(n, f) for n, f in tests if n in argv]
    passed = failed = 0
    for name, fn in tests:
        start = time.monotonic()
        try:
            asyncio.run(asyncio.wait_for(fn(), TEST_TIMEOUT))
        except BaseException:  # noqa: BLE001 - a test's failure of any kind is reported
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - start:.2f} s)")
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {name} ({time.monotonic() - start:.2f} s)")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
