"""End-to-end tests of examples/nightingale.rs (seed 001, the Nightingale gateway) with Python
`websockets` (sync client) and http.client, written from docs/protocols/nightingale.md.

Each test starts the release example on a free port (`--listen 127.0.0.1:0`) as a subprocess;
every wait is bounded. Run alone (`.venv/bin/python tests/python/test_nightingale.py`) or
under `python -m unittest discover -s tests/python -p 'test_*.py'`. NIGHTINGALE_BIN overrides
the binary (default target/release/examples/nightingale, built with cargo if missing).
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("NIGHTINGALE_BIN", os.path.join(ROOT, "target", "release", "examples", "nightingale"))
PASSWORD = "s3cret"
EXPECT = 3.0
QUIET = 0.25
TRACK_FIELDS = ["album", "artist", "channel", "duration", "source_url", "thumbnail", "title", "track"]


def setUpModule():
    if "NIGHTINGALE_BIN" not in os.environ and not os.path.exists(BIN):
        subprocess.run(["cargo", "build", "--release", "--example", "nightingale"], cwd=ROOT, check=True)


class Server:
    """The example on a free port; use as a context manager."""

    def __init__(self, window_ms=60000, *more):
        args = [BIN, "--listen", "127.0.0.1:0", "--password", PASSWORD, "--resume-window-ms", str(window_ms),
                *more]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        m = re.match(r"listening on (\S+)", line)
        assert m, f"expected `listening on ADDR`, got {line!r}"
        self.addr = m.group(1)
        self.host, self.port = self.addr.rsplit(":", 1)
        self._drain = threading.Thread(target=self.proc.stderr.read, daemon=True)
        self._drain.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self._drain.join(5)
        self.proc.stderr.close()

    def ws(self, path, headers=None):
        # No client-initiated keepalive Pings (the client's WebSocket layer still answers ours).
        return connect(f"ws://{self.addr}{path}", additional_headers=headers or {}, open_timeout=EXPECT,
                       ping_interval=None)

    def refused(self, path, headers=None):
        """The HTTP status refusing an upgrade."""
        try:
            self.ws(path, headers).close()
        except InvalidStatus as e:
            return e.response.status_code
        raise AssertionError(f"{path} was not refused")

    def open(self, user=42):
        c = self.ws(f"/ws?shards=1&user_id={user}")
        ready = recv(c)
        assert ready["op"] == "ready" and ready["data"]["resumed"] is False, ready
        return c, ready["data"]["session"]

    def http(self, method, path, session, query=None, body=None, password=PASSWORD):
        """A REST request; the session goes in its header, as documented."""
        target = f"/api/v1/{path}?{urllib.parse.urlencode(dict(query or {}))}"
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=EXPECT)
        headers = {"Authorization": password} if password else {}
        if session:
            headers["session"] = session
        conn.request(method, target, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, None


def recv(c, timeout=EXPECT):
    return json.loads(c.recv(timeout=timeout))


def typed(c, op, kind):
    payload = recv(c)
    assert payload["op"] == op and payload["data"]["type"] == kind, f"expected {op}/{kind}, got {payload}"
    return payload["data"]["data"]


def closed_with(c, timeout=EXPECT):
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            c.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None
    except TimeoutError:
        pass
    raise AssertionError("the server did not close the connection")


def silent(c, quiet=QUIET):
    try:
        got = c.recv(timeout=quiet)
    except TimeoutError:
        return
    raise AssertionError(f"expected silence, got {got}")


def track(title, ms, **extra):
    return {"title": title, "duration_ms": ms, **extra}


def check_track(test, t, title, ms):
    test.assertEqual(sorted(t), TRACK_FIELDS)
    test.assertEqual((t["title"], t["duration"]), (title, str(ms)))


def join_voice(test, s, c, session, user=42, guild=10, channel=20):
    status, _ = s.http("PUT", "connect", session, {"guild_id": guild, "channel_id": channel})
    test.assertEqual(status, 200)
    d = {"channel_id": str(channel), "guild_id": str(guild), "self_deaf": True, "self_mute": False}
    test.assertEqual(recv(c), {"op": "forward", "data": {"op": 4, "d": d}})
    state = {"guild_id": str(guild), "channel_id": str(channel), "user_id": str(user), "session_id": "vs"}
    test.assertEqual(s.http("POST", "voice/state", session, body=state)[0], 200)
    server = {"guild_id": str(guild), "token": "tok", "endpoint": "voice.example:443"}
    test.assertEqual(s.http("POST", "voice/server", session, body=server)[0], 200)
    up = typed(c, "update_state", "connect_gateway")
    test.assertEqual(sorted(up), ["channel", "guild", "server", "session", "ssrc"])
    test.assertEqual((up["channel"], up["guild"], up["session"], up["server"]),
                     (channel, guild, "vs", "voice.example:443"))


class Gateway(unittest.TestCase):
    def test_ready_with_a_uuid_and_400_for_bad_queries(self):
        with Server() as s:
            _c, session = s.open()
            self.assertRegex(session, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            for bad in ["/ws", "/ws?shards=1", "/ws?user_id=1", "/ws?shards=a&user_id=1", "/ws?shards=1&user_id=x"]:
                self.assertEqual(s.refused(bad), 400, bad)
            self.assertEqual(s.refused("/other?shards=1&user_id=1"), 404)

    def test_resume_refusals_and_expiry(self):
        with Server(300) as s:
            self.assertEqual(s.refused("/ws/resume"), 400)
            self.assertEqual(s.refused("/ws/resume", {"session": "ad13c35f-7bf4-413b-997d-eef2fe009f98"}), 404)
            c, session = s.open()
            c.close()
            time.sleep(0.6)
            self.assertEqual(s.refused("/ws/resume", {"session": session}), 404)

    def test_resume_replays_what_was_missed(self):
        with Server() as s:
            c, session = s.open()
            join_voice(self, s, c, session)
            s.http("POST", "playback/enqueue", session, {"guild_id": 10}, [track("a", 150), track("b", 150)])
            check_track(self, typed(c, "event", "track_start"), "a", 150)
            c.close()
            # Produced while away: REST payloads and player events.
            s.http("PUT", "connect", session, {"guild_id": 11, "channel_id": 30})
            time.sleep(0.45)
            c = s.ws("/ws/resume", {"session": session})
            self.assertEqual(recv(c), {"op": "ready", "data": {"session": session, "resumed": True}})
            self.assertEqual(recv(c)["data"]["d"]["guild_id"], "11")  # the forward
            end = typed(c, "event", "track_end")
            self.assertFalse(end["stopped"])
            check_track(self, end["track"], "a", 150)
            check_track(self, typed(c, "event", "track_start"), "b", 150)
            check_track(self, typed(c, "event", "track_end")["track"], "b", 150)
            silent(c)

    def test_abrupt_drop_then_resume_misses_nothing(self):
        with Server() as s:
            c, session = s.open()
            join_voice(self, s, c, session)
            s.http("POST", "playback/enqueue", session, {"guild_id": 10}, [track("a", 150)])
            typed(c, "event", "track_start")
            c.socket.shutdown(socket.SHUT_RDWR)  # no closing handshake
            c.socket.close()
            time.sleep(0.3)
            c = s.ws("/ws/resume", {"session": session})
            self.assertTrue(recv(c)["data"]["resumed"])
            check_track(self, typed(c, "event", "track_end")["track"], "a", 150)

    def test_live_session_resumed_elsewhere_closes_1000_and_messages_close_1003(self):
        with Server() as s:
            old, session = s.open()
            s.http("PUT", "connect", session, {"guild_id": 5, "channel_id": 6})
            self.assertEqual(recv(old)["op"], "forward")
            new = s.ws("/ws/resume", {"session": session})
            self.assertTrue(recv(new)["data"]["resumed"])
            self.assertEqual(closed_with(old), 1000)
            silent(new)  # what the open connection got is not sent again
            new.send('{"op":"hello"}')
            self.assertEqual(closed_with(new), 1003)

    def test_sigterm_closes_with_1001(self):
        with Server() as s:
            c, _ = s.open()
            s.proc.send_signal(signal.SIGTERM)
            self.assertEqual(closed_with(c), 1001)
            self.assertEqual(s.proc.wait(5), 0)


class Liveness(unittest.TestCase):
    """The reactor pings after 200 ms of silence and closes a peer that answers nothing
    after 800 ms of it (the defaults are 20 s and 60 s)."""

    FLAGS = ("--ping-interval-ms", "200", "--idle-timeout-ms", "800")

    def test_a_silent_client_whose_websocket_answers_pings_is_kept(self):
        with Server(60000, *self.FLAGS) as s:
            c, session = s.open()
            silent(c, 4 * 0.8)
            self.assertEqual(s.http("PUT", "connect", session, {"guild_id": 1, "channel_id": 2})[0], 200)
            self.assertEqual(recv(c)["op"], "forward")

    def test_a_peer_that_answers_nothing_is_closed_within_the_bound(self):
        with Server(60000, *self.FLAGS) as s:
            raw = socket.create_connection((s.host, int(s.port)), timeout=EXPECT)
            raw.sendall(b"GET /ws?shards=1&user_id=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        b"Sec-WebSocket-Version: 13\r\n\r\n")
            began = time.monotonic()
            time.sleep(0.8 + 0.4)  # It reads nothing, answers nothing.
            raw.settimeout(0.2)
            got = b""
            try:
                while chunk := raw.recv(65536):
                    got += chunk
            except TimeoutError:
                pass
            self.assertIn(b"\x89\x00", got)  # a Ping came first
            self.assertIn(b"\x88\x0e\x03\xe9idle timeout", got)  # then Close 1001
            # Without our Close, the TCP connection ends after the close timeout (5 s).
            raw.settimeout(5 + 3)
            try:
                self.assertEqual(raw.recv(65536), b"")
            except ConnectionResetError:
                pass
            self.assertLess(time.monotonic() - began, 0.8 + 5 + 2)
            raw.close()


class Rest(unittest.TestCase):
    def test_authorisation_and_bad_input(self):
        with Server() as s:
            c, session = s.open()
            self.assertEqual(s.http("GET", "player", session, {"guild_id": 1}, password=None)[0], 401)
            self.assertEqual(s.http("GET", "player", session, {"guild_id": 1}, password="no")[0], 401)
            self.assertEqual(s.http("GET", "player", None, {"guild_id": 1}),
                             (400, {"error": "the session header is required"}))
            self.assertEqual(s.http("GET", "player", "ad13c35f-7bf4-413b-997d-eef2fe009f98", {"guild_id": 1})[0], 404)
            self.assertEqual(s.http("GET", "player", session, {"guild_id": 1})[0], 404)
            self.assertEqual(s.http("PUT", "connect", session, {"guild_id": "x", "channel_id": 1})[0], 400)
            self.assertEqual(s.http("GET", "connect", session, {"guild_id": 1, "channel_id": 1})[0], 405)
            self.assertEqual(s.http("POST", "voice/server", session, body={"guild_id": "1", "token": "t"})[0], 400)
            self.assertEqual(s.http("POST", "voice/state", session,
                                    body={"guild_id": "1", "channel_id": None, "user_id": "42", "session_id": "v"})[0], 404)
            s.http("PUT", "connect", session, {"guild_id": 1, "channel_id": 2})
            recv(c)
            self.assertEqual(s.http("POST", "playback/enqueue", session, {"guild_id": 1}, {"title": "x"})[0], 400)
            self.assertEqual(s.http("POST", "playback/skip", session, {"guild_id": 1}),
                             (409, {"error": "nothing is playing"}))
            silent(c)

    def test_voice_reconnect_and_disconnect(self):
        with Server() as s:
            c, session = s.open()
            join_voice(self, s, c, session)
            s.http("POST", "voice/server", session, body={"guild_id": "10", "token": "t2", "endpoint": "other:443"})
            self.assertEqual(typed(c, "update_state", "reconnect_gateway")["server"], "other:443")
            status, body = s.http("DELETE", "disconnect", session, {"guild_id": 10})
            self.assertEqual((status, body["channel_id"]), (200, None))
            self.assertIsNone(recv(c)["data"]["d"]["channel_id"])
            self.assertEqual(typed(c, "update_state", "disconnect_gateway"),
                             {"channel": 20, "guild": 10, "session": "vs"})


class Player(unittest.TestCase):
    def test_a_queue_of_short_tracks_in_order(self):
        with Server() as s:
            c, session = s.open()
            join_voice(self, s, c, session)
            tracks = [track("a", 200, artist="X"), track("b", 150), track("c", 100)]
            status, state = s.http("POST", "playback/enqueue", session, {"guild_id": 10}, {"tracks": tracks})
            self.assertEqual((status, [t["title"] for t in state["queue"]]), (200, ["b", "c"]))
            for title, ms in [("a", 200), ("b", 150), ("c", 100)]:
                start = typed(c, "event", "track_start")
                began = time.monotonic()
                check_track(self, start, title, ms)
                end = typed(c, "event", "track_end")
                self.assertGreaterEqual(time.monotonic() - began, (ms - 30) / 1000)
                self.assertFalse(end["stopped"])
                check_track(self, end["track"], title, ms)
            silent(c)

    def test_play_skip_stop_pause_and_errors(self):
        with Server() as s:
            c, session = s.open()
            join_voice(self, s, c, session)
            act = lambda path, body=None: s.http("POST", "playback/" + path, session, {"guild_id": 10}, body)[0]
            self.assertEqual(act("enqueue", [track("a", 5000), track("b", 5000)]), 200)
            typed(c, "event", "track_start")
            self.assertEqual(act("play", track("now", 5000)), 200)
            end = typed(c, "event", "track_end")
            self.assertEqual((end["stopped"], end["track"]["title"]), (True, "a"))
            check_track(self, typed(c, "event", "track_start"), "now", 5000)
            self.assertEqual(act("pause"), 200)
            self.assertEqual(act("resume"), 200)
            self.assertEqual(act("skip"), 200)
            self.assertTrue(typed(c, "event", "track_end")["stopped"])
            check_track(self, typed(c, "event", "track_start"), "b", 5000)
            self.assertEqual(act("stop"), 200)
            self.assertTrue(typed(c, "event", "track_end")["stopped"])
            self.assertEqual(act("enqueue", [track("bad", 100, error="nope"), track("broken", 900, fail_after_ms=40)]), 200)
            errored = typed(c, "event", "track_errored")
            self.assertEqual(errored["error"], "nope")
            check_track(self, errored["track"], "bad", 100)
            typed(c, "event", "track_start")
            self.assertEqual(typed(c, "event", "track_errored")["error"], "playback failed after 40 ms")
            silent(c)


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1)
