"""End-to-end tests of examples/rooms.rs (seed 003, the chat-rooms gateway) with Python
`websockets` and `urllib` for the REST API.

Each test starts the example on a free port (`--listen 127.0.0.1:0 --heartbeat-ms 500`) as a
subprocess; every wait is bounded. The protocol: docs/protocols/rooms.md.

    python tests/python/test_rooms.py            # or: python -m unittest discover -s tests/python

Set ROOMS_BIN to use a given binary; otherwise target/release/examples/rooms is built (cargo
does nothing when it is up to date).
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "py-rooms-token"
HB = 500  # ms
EXPECT = 3.0  # seconds to wait for something the test expects


def binary():
    path = os.environ.get("ROOMS_BIN")
    if path:
        return path
    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "rooms"],
                   cwd=ROOT, check=True, timeout=600)
    return os.path.join(ROOT, "target", "release", "examples", "rooms")


BIN = None


def setUpModule():
    global BIN
    BIN = binary()


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed {code} {reason!r}")
        self.code, self.reason = code, reason


class Client:
    """A participant's socket."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, packet):
        await self.ws.send(packet if isinstance(packet, (str, bytes)) else json.dumps(packet))

    async def beat(self):
        await self.send({"e": 1, "d": {}})

    async def recv(self, timeout=EXPECT):
        """The next packet; Closed on a close, TimeoutError on silence."""
        try:
            return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        except websockets.ConnectionClosed as e:
            raise Closed(e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else None)

    async def expect(self, e, timeout=EXPECT):
        """Behaves (heartbeats, answers probes) until a packet with event id `e` comes."""
        end = time.monotonic() + timeout
        while True:
            try:
                p = await self.recv(0.2)
            except asyncio.TimeoutError:
                if time.monotonic() > end:
                    raise
                await self.beat()
                continue
            if p["e"] == e:
                return p
            if p["e"] == 2:
                await self.beat()

    async def live(self, seconds):
        """Behaves for `seconds`; returns the packets other than heartbeats and probes."""
        got, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            await self.beat()
            try:
                p = await self.recv(min(0.2, max(0.0, end - time.monotonic())))
            except asyncio.TimeoutError:
                continue
            if p["e"] == 2:
                await self.beat()
            elif p["e"] != 1:
                got.append(p)
        return got

    async def closed(self, timeout=EXPECT):
        """Reads, answering nothing, until the close: (code, reason)."""
        end = time.monotonic() + timeout
        while True:
            try:
                await self.recv(max(0.01, end - time.monotonic()))
            except Closed as c:
                return c.code, c.reason


class RoomsTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self, *extra):
        self.proc = await asyncio.create_subprocess_exec(
            BIN, "--listen", "127.0.0.1:0", "--admin-token", TOKEN, "--heartbeat-ms", str(HB),
            *extra,
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

    async def connect(self, path):
        ws = await websockets.connect(f"ws://{self.addr}{path}", ping_interval=None,
                                      compression=None, open_timeout=EXPECT, close_timeout=1)
        c = Client(ws)
        self.clients.append(c)
        return c

    async def join(self, room, who):
        """Connects as `who` in `room` and reads hello."""
        c = await self.connect(f"/gateway?roomId={room}&participantId={who}")
        self.assertEqual(await c.recv(), {"e": 0, "d": {"heartbeatInterval": HB}})
        return c

    async def refused(self, path):
        """The HTTP status and body of a refused upgrade."""
        with self.assertRaises(websockets.InvalidStatus) as cm:
            await self.connect(path)
        r = cm.exception.response
        return r.status_code, r.body.decode().strip()

    async def rest(self, method, path, body=None, auth=f"Bearer {TOKEN}"):
        """An admin request: (status, parsed JSON or text body)."""
        def call():
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(f"http://{self.addr}{path}", data=data, method=method)
            if auth:
                req.add_header("Authorization", auth)
            try:
                with urllib.request.urlopen(req, timeout=EXPECT) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode().strip()
        return await asyncio.to_thread(call)

    # -- the upgrade ----------------------------------------------------------------------

    async def test_both_query_parameters_are_required(self):
        for query, missing in [("", "roomId, participantId"), ("?participantId=p", "roomId"),
                               ("?roomId=&participantId=p", "roomId"),
                               ("?roomId=r", "participantId")]:
            status, body = await self.refused("/gateway" + query)
            self.assertEqual(status, 400, query)
            self.assertTrue(body.endswith(missing), body)
        status, _ = await self.refused("/ws?roomId=r&participantId=p")
        self.assertEqual(status, 404)
        await self.join("r", "p")

    async def test_ids_that_do_not_decode_to_utf8_are_400_and_never_name_another(self):
        why = "request target is not UTF-8 once percent-decoded"
        for query in ["?roomId=%FE&participantId=p", "?roomId=r&participantId=%FF",
                      "?roomId=r&participantId=a%C3"]:
            self.assertEqual(await self.refused("/gateway" + query), (400, why), query)
        fffd, thorn = await self.join("r", "%EF%BF%BD"), await self.join("r", "%C3%BE")
        for path in ["/rooms/r/participants/%FE", "/rooms/r/participants/%FF", "/rooms/%FE"]:
            self.assertEqual(await self.rest("DELETE", path), (400, why), path)
        kick = {"e": 5, "d": {"userId": "\u00fe"}}
        self.assertEqual(await self.rest("DELETE", "/rooms/r/participants/%C3%BE"), (200, kick))
        self.assertEqual(await thorn.expect(5), kick)
        self.assertEqual(await thorn.closed(), (4010, "kicked"))
        self.assertEqual(await fffd.expect(5), kick)
        self.assertEqual(await fffd.live(0.3), [], "U+FFFD is another participant")

    # -- heartbeats -----------------------------------------------------------------------

    async def test_heartbeats_keep_a_client_and_it_is_never_probed(self):
        c = await self.join("hb", "p")
        beats, probes = [], 0
        end = time.monotonic() + 6 * HB / 1000
        while time.monotonic() < end:
            await c.beat()
            try:
                p = await c.recv(0.2)
            except asyncio.TimeoutError:
                continue
            if p == {"e": 2, "d": {}}:
                probes += 1
                await c.beat()
            elif p == {"e": 1, "d": {}}:
                beats.append(time.monotonic())  # the server's own, every 0.85 interval
        self.assertEqual(probes, 0, "a client heard from every 200 ms is not probed")
        self.assertLessEqual(len(beats), 8, "client heartbeats are not answered")
        mean = (beats[-1] - beats[0]) / (len(beats) - 1)
        self.assertLess(mean, 0.95 * HB / 1000, "server heartbeats come before the interval")
        await c.send({"e": 2, "d": {}})
        self.assertEqual(await c.recv(0.5), {"e": 1, "d": {}})

    async def probed_then_closed(self, c, timeout):
        """Reads, answering nothing, until the close: (code, reason, first probe time)."""
        probe, end = None, time.monotonic() + timeout
        while True:
            try:
                p = await c.recv(max(0.01, end - time.monotonic()))
            except Closed as e:
                return e.code, e.reason, probe
            if p["e"] == 2 and probe is None:
                probe = time.monotonic()

    async def test_a_silent_client_is_probed_then_closed_4009_after_two_intervals(self):
        c = await self.join("silent", "p")
        start = time.monotonic()
        code, reason, probe = await self.probed_then_closed(c, 2 * HB / 1000 + 3)
        self.assertEqual((code, reason), (4009, "heartbeat timeout"))
        self.assertIsNotNone(probe)
        self.assertGreaterEqual(probe - start, HB / 1000 - 0.02)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 2 * HB / 1000 - 0.02)
        self.assertLess(elapsed, 2 * HB / 1000 + 1.0)

    async def test_a_client_that_ignores_probes_but_heartbeats_every_interval_is_kept(self):
        # Issue 11: the seed's own client heartbeats every interval and never answers a
        # probe; it used to get 4009 at 1.75 intervals.
        c = await self.join("deaf", "p")
        start = time.monotonic()
        next_beat = start + HB / 1000
        while time.monotonic() - start < 10 * HB / 1000:
            try:
                p = await c.recv(max(0.001, next_beat - time.monotonic()))
                self.assertIn(p["e"], (1, 2))
            except asyncio.TimeoutError:
                pass
            if time.monotonic() >= next_beat:
                await c.beat()
                next_beat += HB / 1000
        status, _ = await self.rest("POST", "/rooms/deaf/messages",
                                    {"authorId": "a", "content": "still here"})
        self.assertEqual(status, 200)
        while True:
            p = await c.recv()
            if p["e"] == 3:
                self.assertEqual(p["d"]["content"], "still here")
                break

    # -- the REST API and events 3-7 --------------------------------------------------------

    async def test_rest_needs_the_admin_token(self):
        body = {"authorId": "a", "content": "x"}
        for auth in [None, "Bearer nope", TOKEN]:
            status, _ = await self.rest("POST", "/rooms/r/messages", body, auth=auth)
            self.assertEqual(status, 401, auth)
        self.assertEqual((await self.rest("POST", "/rooms/r/messages", body))[0], 200)

    async def test_message_create_goes_to_every_participant_of_the_room(self):
        a, b, other = await self.join("m", "a"), await self.join("m", "b"), await self.join("x", "c")
        before = int(time.time() * 1000)
        status, sent = await self.rest("POST", "/rooms/m/messages", {"authorId": "a", "content": "hi"})
        self.assertEqual(status, 200)
        d = sent["d"]
        self.assertEqual(sorted(d), ["authorId", "content", "sentAt"])
        self.assertEqual((d["authorId"], d["content"]), ("a", "hi"))
        self.assertTrue(before <= d["sentAt"] < before + 5000, d)
        self.assertEqual(await a.expect(3), sent)
        self.assertEqual(await b.expect(3), sent)
        self.assertEqual(await other.live(0.3), [])
        self.assertEqual((await self.rest("POST", "/rooms/m/messages", {"content": "x"}))[0], 400)

    async def test_room_update_has_exactly_the_fields_changed(self):
        a, b = await self.join("u", "a"), await self.join("u", "b")
        for change in [{"chatLocked": True}, {"maxParticipants": 5, "discordWebhookLink": "https://x"},
                       {"roomLocked": False}]:
            self.assertEqual((await self.rest("PATCH", "/rooms/u", change))[0], 200)
            for c in (a, b):
                self.assertEqual(await c.expect(4), {"e": 4, "d": change})
        self.assertEqual((await self.rest("PATCH", "/rooms/u", {}))[0], 400)

    async def test_a_locked_room_refuses_with_403(self):
        a = await self.join("l", "a")
        await self.rest("PATCH", "/rooms/l", {"roomLocked": True})
        await a.expect(4)
        self.assertEqual(await self.refused("/gateway?roomId=l&participantId=b"), (403, "room is locked"))

    async def test_a_full_room_refuses_with_409(self):
        await self.join("f", "a")
        await self.rest("PATCH", "/rooms/f", {"maxParticipants": 1})
        self.assertEqual(await self.refused("/gateway?roomId=f&participantId=b"), (409, "room is full"))

    async def test_kick_goes_to_all_then_closes_the_kicked_who_cannot_rejoin(self):
        a, b = await self.join("k", "a"), await self.join("k", "b")
        status, sent = await self.rest("DELETE", "/rooms/k/participants/b")
        kick = {"e": 5, "d": {"userId": "b"}}
        self.assertEqual((status, sent), (200, kick))
        self.assertEqual(await a.expect(5), kick)
        self.assertEqual(await b.expect(5), kick)
        self.assertEqual(await b.closed(), (4010, "kicked"))
        self.assertEqual(await self.refused("/gateway?roomId=k&participantId=b"),
                         (403, "kicked from this room"))
        self.assertEqual(await a.live(0.2), [])

    async def test_participant_update_goes_to_all_and_banned_disconnects(self):
        a, b = await self.join("p", "a"), await self.join("p", "b")
        change = {"color": True, "admin": True}
        self.assertEqual((await self.rest("PATCH", "/rooms/p/participants/b", change))[0], 200)
        update = {"e": 6, "d": {"userId": "b", **change}}
        self.assertEqual((await a.expect(6), await b.expect(6)), (update, update))
        await self.rest("PATCH", "/rooms/p/participants/b", {"banned": True})
        ban = {"e": 6, "d": {"userId": "b", "banned": True}}
        self.assertEqual((await a.expect(6), await b.expect(6)), (ban, ban))
        self.assertEqual(await b.closed(), (4011, "banned"))
        self.assertEqual((await self.refused("/gateway?roomId=p&participantId=b"))[0], 403)

    async def test_room_close_goes_to_all_then_closes_every_socket(self):
        a, b = await self.join("c", "a"), await self.join("c", "b")
        self.assertEqual(await self.rest("DELETE", "/rooms/c"), (200, {"e": 7, "d": {}}))
        for c in (a, b):
            self.assertEqual(await c.expect(7), {"e": 7, "d": {}})
            self.assertEqual(await c.closed(), (4012, "room closed"))
        self.assertEqual((await self.refused("/gateway?roomId=c&participantId=a"))[0], 410)

    async def test_closed_rooms_remembered_are_bounded_oldest_forgotten_first(self):
        await self.asyncTearDown()
        await self.asyncSetUp("--max-closed-rooms", "2")
        for room in ["a", "b"]:
            self.assertEqual(await self.rest("DELETE", f"/rooms/{room}"), (200, {"e": 7, "d": {}}))
        self.assertEqual(await self.rest("DELETE", "/rooms/a"), (410, "room is closed"))
        self.assertEqual(await self.refused("/gateway?roomId=a&participantId=p"),
                         (410, "room is closed"))
        self.assertEqual((await self.rest("DELETE", "/rooms/c"))[0], 200)
        # "a", the oldest, is forgotten: a new room of that name; "b" and "c" stay closed.
        await self.join("a", "p")
        for room in ["b", "c"]:
            self.assertEqual(await self.refused(f"/gateway?roomId={room}&participantId=p"),
                             (410, "room is closed"), room)

    # -- bad input ------------------------------------------------------------------------

    async def test_malformed_json_closes_the_sender_only(self):
        bystander = await self.join("bad", "ok")
        for text, code in [("{nope", 4002), ('{"e":3,"d":{}}', 4001), (b"\x01", 4002)]:
            rude = await self.join("bad", "rude")
            await rude.send(text)
            self.assertEqual((await rude.closed())[0], code, text)
        await self.rest("POST", "/rooms/bad/messages", {"authorId": "x", "content": "still here"})
        self.assertEqual((await bystander.expect(3))["d"]["content"], "still here")

    async def test_sigterm_closes_with_1001_and_exits_0(self):
        c = await self.join("bye", "a")
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual((await c.closed())[0], 1001)
        await c.ws.close()
        self.assertEqual(await asyncio.wait_for(self.proc.wait(), EXPECT), 0)


if __name__ == "__main__":
    unittest.main()
