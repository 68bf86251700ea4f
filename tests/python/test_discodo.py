"""End-to-end tests of examples/discodo.rs (seed 002, the Discodo gateway) with Python
`websockets`.

Each test starts the example on a free port (`--listen 127.0.0.1:0 --heartbeat-ms 500
--vc-timeout-ms 2000`) as a subprocess; every wait is bounded. The protocol:
docs/protocols/discodo.md.

    python tests/python/test_discodo.py          # or: python -m unittest discover -s tests/python

Set DISCODO_BIN to use a given binary; otherwise target/release/examples/discodo is built
(cargo does nothing when it is up to date).
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import unittest

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "py-discodo-pw"
HB = 500  # ms
VC_TIMEOUT = 2000  # ms
EXPECT = 3.0  # seconds to wait for something the test expects


def binary():
    path = os.environ.get("DISCODO_BIN")
    if path:
        return path
    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "discodo"],
                   cwd=ROOT, check=True, timeout=600)
    return os.path.join(ROOT, "target", "release", "examples", "discodo")


BIN = None


def setUpModule():
    global BIN
    BIN = binary()


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed {code} {reason!r}")
        self.code, self.reason = code, reason


class Client:
    def __init__(self, ws):
        self.ws = ws

    async def send(self, op, d=None, raw=None):
        await self.ws.send(raw if raw is not None else json.dumps({"op": op, "d": d}))

    async def recv_text(self, timeout=EXPECT):
        try:
            return await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as e:
            raise Closed(e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else None)

    async def recv(self, timeout=EXPECT):
        return json.loads(await self.recv_text(timeout))

    async def alive(self):
        """A heartbeat's ack is the very next payload (nothing else was pending)."""
        await self.send("HEARTBEAT", "still")
        self.last = await self.recv()
        return self.last == {"op": "HEARTBEAT_ACK", "d": "still"}

    async def error_then_close(self):
        """An error payload followed by the close: (payload, close code)."""
        payload = await self.recv()
        try:
            await self.recv()
        except Closed as c:
            return payload, c.code
        raise AssertionError(f"no close after {payload}")


def voice_state(guild, channel, user):
    return {"t": "VOICE_STATE_UPDATE",
            "d": {"guild_id": guild, "channel_id": channel, "user_id": user, "session_id": "s"}}


def voice_server(guild):
    return {"t": "VOICE_SERVER_UPDATE",
            "d": {"guild_id": guild, "token": "t", "endpoint": "voice.example:443"}}


class DiscodoTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self, *extra):
        self.proc = await asyncio.create_subprocess_exec(
            BIN, "--listen", "127.0.0.1:0", "--password", PASSWORD,
            "--heartbeat-ms", str(HB), "--vc-timeout-ms", str(VC_TIMEOUT), *extra,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        line = (await asyncio.wait_for(self.proc.stderr.readline(), 10)).decode()
        m = re.match(r"listening on (\S+)", line)
        self.assertIsNotNone(m, line)
        self.addr = m.group(1)
        self.drain = asyncio.create_task(self._drain())
        self.clients = []

    async def _drain(self):
        while await self.proc.stderr.readline():
            pass

    async def asyncTearDown(self):
        for c in self.clients:
            await c.ws.close()
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.drain.cancel()

    async def connect(self, password=PASSWORD):
        headers = {} if password is None else {"Authorization": password}
        ws = await websockets.connect(f"ws://{self.addr}/", additional_headers=headers,
                                      ping_interval=None, compression=None,
                                      open_timeout=EXPECT, close_timeout=1)
        c = Client(ws)
        self.clients.append(c)
        return c

    async def client(self):
        """Connected, past HELLO."""
        c = await self.connect()
        self.assertEqual((await c.recv())["op"], "HELLO")
        return c

    async def bot(self, user, shard=None):
        """Connected and identified."""
        c = await self.client()
        await c.send("IDENTIFY", {"user_id": user, "shard_id": shard})
        return c

    async def assertAlive(self, c):
        self.assertTrue(await c.alive(), c.last)

    async def test_hello_carries_the_interval_in_seconds(self):
        c = await self.connect()
        self.assertEqual(await c.recv_text(), '{"op":"HELLO","d":{"heartbeat_interval":0.5}}')

    async def test_a_missing_or_wrong_password_is_forbidden(self):
        for password, why in [(None, "missing Authorization header"), ("nope", "password mismatch")]:
            c = await self.connect(password)
            self.assertEqual(await c.error_then_close(), ({"op": "FORBIDDEN", "d": why}, 4001))

    async def test_heartbeat_is_echoed_as_sent(self):
        c = await self.client()
        for d in ["null", "0", "12.50", '"t"', "[1, {}]", '{"a": {"b": null}}']:
            await c.send(None, raw=f'{{"op":"HEARTBEAT","d":{d}}}')
            self.assertEqual(await c.recv_text(), f'{{"op":"HEARTBEAT_ACK","d":{d}}}')
        await c.send(None, raw='{"op":"HEARTBEAT"}')
        self.assertEqual(await c.recv(), {"op": "HEARTBEAT_ACK", "d": None})

    async def test_silence_past_interval_and_grace_closes_4009(self):
        alive, silent = await self.bot("1"), await self.bot("2")
        start = time.monotonic()
        while time.monotonic() - start < 4 * HB / 1000:
            await asyncio.sleep(0.4)
            await self.assertAlive(alive)
        payload, code = await silent.error_then_close()
        self.assertEqual((payload["op"], code), ("HEARTBEAT_TIMEOUT", 4009))

    async def test_nothing_but_identify_before_identify(self):
        for op in ["VC_DESTROY", "DISCORD_EVENT", "getState"]:
            c = await self.client()
            await c.send(op, {"guild_id": 1})
            self.assertEqual(await c.error_then_close(),
                             ({"op": "NOT_IDENTIFIED", "d": f"{op} before IDENTIFY"}, 4003))

    async def test_identify_once(self):
        c = await self.client()
        await c.send("IDENTIFY", {"shard_id": None})
        self.assertEqual((await c.recv())["op"], "BAD_REQUEST")
        await c.send("IDENTIFY", {"user_id": "5", "shard_id": None})
        await self.assertAlive(c)
        await c.send("IDENTIFY", {"user_id": "5", "shard_id": None})
        self.assertEqual((await c.recv())["op"], "ALREADY_IDENTIFIED")
        await self.assertAlive(c)

    async def test_voice_clients_are_recorded_and_destroyed(self):
        c = await self.bot("77")
        await c.send("DISCORD_EVENT", voice_state("100", "101", "77"))
        created = await c.recv()
        self.assertEqual(created["op"], "VC_CREATED")
        self.assertEqual((created["d"]["guild_id"], created["d"]["channel_id"]), ("100", "101"))
        await c.send("getState", {"guild_id": "100"})
        state = await c.recv()
        self.assertEqual(state, {"op": "getState", "d": {"id": created["d"]["id"],
                                                         "guild_id": "100", "channel_id": "101"}})
        await c.send("VC_DESTROY", {"guild_id": "100"})
        self.assertEqual(await c.recv(), {"op": "VC_DESTROYED", "d": {"guild_id": "100"}})
        await c.send("VC_DESTROY", {"guild_id": "100"})
        self.assertEqual((await c.recv())["op"], "VOICE_CLIENT_NOT_FOUND")
        await self.assertAlive(c)

    async def test_bounds_per_manager_and_per_node_answer_limit_reached(self):
        await self.asyncTearDown()
        await self.asyncSetUp("--max-voice-clients-per-manager", "2", "--max-voice-clients", "3",
                              "--max-managers", "2")

        def full(bound, most):
            return {"op": "LIMIT_REACHED", "d": f"{bound} ({most}) is reached"}

        async def create(c, user, guild):
            await c.send("DISCORD_EVENT", voice_state(str(guild), "5", user))
            return await c.recv()

        a, b = await self.bot("1"), await self.bot("2")
        for guild in (10, 11):
            self.assertEqual((await create(a, "1", guild))["op"], "VC_CREATED")
        self.assertEqual(await create(a, "1", 12),
                         full("this audio manager's bound on voice clients", 2))
        self.assertEqual((await create(b, "2", 10))["op"], "VC_CREATED")
        self.assertEqual(await create(b, "2", 11), full("this node's bound on voice clients", 3))
        c = await self.bot("3")
        self.assertEqual(await c.recv(), full("this node's bound on audio managers", 2))
        for bystander in (a, b, c):
            await self.assertAlive(bystander)
        await a.send("VC_DESTROY", {"guild_id": "10"})
        self.assertEqual((await a.recv())["op"], "VC_DESTROYED")
        self.assertEqual((await create(b, "2", 11))["op"], "VC_CREATED")

    async def make_voice_clients(self, user):
        c = await self.bot(user)
        await c.send("DISCORD_EVENT", voice_state(1, 2, user))
        await c.send("DISCORD_EVENT", voice_server("3"))
        self.assertEqual([(await c.recv())["op"] for _ in range(2)], ["VC_CREATED", "VC_CREATED"])
        await c.ws.close()

    async def test_resume_before_vc_timeout(self):
        await self.make_voice_clients("8")
        await asyncio.sleep(VC_TIMEOUT / 1000 * 0.75)
        c = await self.bot("8")
        self.assertEqual(await c.recv(),
                         {"op": "RESUMED", "d": {"voice_clients": [[1, 2], ["3", None]]}})
        other_shard = await self.bot("8", 1)
        await self.assertAlive(other_shard)

    async def test_fresh_after_vc_timeout(self):
        await self.make_voice_clients("9")
        await asyncio.sleep(VC_TIMEOUT / 1000 + 0.4)
        c = await self.bot("9")
        await self.assertAlive(c)  # no RESUMED first
        await c.send("getState", {"guild_id": 1})
        self.assertEqual((await c.recv())["op"], "VOICE_CLIENT_NOT_FOUND")

    async def test_malformed_json_is_answered_and_disturbs_no_one(self):
        a, b = await self.bot("1"), await self.bot("2")
        for text in ["{nope", "[]", '{"op": 3}']:
            await a.send(None, raw=text)
            self.assertEqual((await a.recv())["op"], "DECODE_ERROR", text)
        await self.assertAlive(a)
        await self.assertAlive(b)

    async def test_sigterm_closes_with_1001_and_exits_0(self):
        c = await self.bot("1")
        self.proc.send_signal(signal.SIGTERM)
        with self.assertRaises(Closed) as cm:
            await c.recv()
        self.assertEqual(cm.exception.code, 1001)
        await c.ws.close()
        self.assertEqual(await asyncio.wait_for(self.proc.wait(), EXPECT), 0)


if __name__ == "__main__":
    unittest.main()
