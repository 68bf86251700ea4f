"""End-to-end tests of examples/nexus.rs (seed 000, the Nexus gateway) with Python `websockets`
(sync client) and http.client, written from docs/protocols/nexus.md.

Each test starts the release example on a free port (`--listen 127.0.0.1:0`) as a subprocess;
every wait is bounded. Run alone (`.venv/bin/python tests/python/test_nexus.py`) or under
`python -m unittest discover -s tests/python -p 'test_*.py'`. NEXUS_BIN overrides the binary
(default target/release/examples/nexus, built with cargo if missing).
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("NEXUS_BIN", os.path.join(ROOT, "target", "release", "examples", "nexus"))
PASSWORD = "s3cret"
CALM = 2000  # heartbeat interval of the tests that do not test heartbeats (5 s of silence)
EXPECT = 3.0
QUIET = 0.25


def setUpModule():
    if "NEXUS_BIN" not in os.environ and not os.path.exists(BIN):
        subprocess.run(["cargo", "build", "--release", "--example", "nexus"], cwd=ROOT, check=True)


class Server:
    """The example on a free port; use as a context manager."""

    def __init__(self, heartbeat_ms=CALM, *more):
        args = [BIN, "--listen", "127.0.0.1:0", "--password", PASSWORD, "--heartbeat-ms", str(heartbeat_ms),
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

    def ws(self, headers):
        # No client-initiated keepalive Pings: the client sends nothing it is not told to
        # (its WebSocket layer still answers the server's Pings).
        return connect(f"ws://{self.addr}/", additional_headers=headers, open_timeout=EXPECT,
                       ping_interval=None)

    def connect(self, client_id):
        c = self.ws({"Authorization": PASSWORD, "client-id": client_id})
        hello = recv(c)
        assert hello["op"] == 0 and isinstance(hello["d"]["heartbeat_interval"], int), hello
        return c

    def login(self, client_id):
        c = self.connect(client_id)
        c.send(json.dumps({"op": 10}))
        ready = recv(c)
        assert ready["t"] == "READY", ready
        return c, ready["d"]["access_token"]

    def http(self, method, path, token=None, body=None):
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=EXPECT)
        headers = {"Authorization": token} if token else {}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, None


def recv(c, timeout=EXPECT):
    return json.loads(c.recv(timeout=timeout))


def event(c, name):
    payload = recv(c)
    assert payload.get("t") == name, f"expected {name}, got {payload}"
    return payload["d"]


def closed_with(c, timeout=EXPECT):
    """Reads until the server closes; the close code and reason."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            c.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as e:
        return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, None)
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


class Handshake(unittest.TestCase):
    def test_hello_identify_ready_and_ping_pong(self):
        with Server(1500) as s:
            c = s.ws({"Authorization": PASSWORD, "client-id": "1001"})
            self.assertEqual(recv(c), {"op": 0, "d": {"heartbeat_interval": 1500}})
            c.send(json.dumps({"op": 10, "d": {"anything": True}}))
            ready = recv(c)
            self.assertEqual(ready["t"], "READY")
            self.assertEqual(sorted(ready["d"]), ["access_token", "client_id"])
            self.assertEqual(ready["d"]["client_id"], "1001")
            self.assertRegex(ready["d"]["access_token"], r"^[0-9a-f]{64}$")
            c.send(json.dumps({"op": 11}))
            self.assertEqual(recv(c), {"op": 12})

    def test_upgrade_refusals_4001_4002(self):
        with Server() as s:
            self.assertEqual(closed_with(s.ws({"Authorization": PASSWORD}))[0], 4001)
            self.assertEqual(closed_with(s.ws({"client-id": "1"}))[0], 4002)
            self.assertEqual(closed_with(s.ws({"client-id": "1", "Authorization": "nope"}))[0], 4002)
            first, _ = s.login("1")
            first.close()
            time.sleep(QUIET)
            s.login("1")

    def test_a_reconnect_over_a_half_open_socket_is_served_at_once_with_its_players(self):
        with Server() as s:
            old, old_token = s.login("1")
            self.assertEqual(s.http("POST", "/api/subscription/10/20", old_token)[0], 200)
            recv(old)
            self.assertEqual(s.http("POST", "/api/player/10/queue", old_token,
                                    [track("a", 60000), track("b", 60000)])[0], 200)
            # The old socket stays open and says nothing (its link died silently).
            began = time.monotonic()
            new, token = s.login("1")
            self.assertLess(time.monotonic() - began, 1.0)
            self.assertEqual(closed_with(old), (4006, "Session expired"))
            self.assertEqual(s.http("GET", "/api/player/10", old_token)[0], 401)
            status, state = s.http("GET", "/api/player/10", token)
            self.assertEqual((status, state["current"]["title"], state["queue_length"]), (200, "a", 1))
            self.assertEqual(s.http("POST", "/api/player/10/skip", token)[0], 200)
            self.assertEqual(event(new, "TRACK_FINISH")["track"]["title"], "a")


class CloseCodes(unittest.TestCase):
    def test_4013_before_identify_4004_4005_and_4011(self):
        with Server() as s:
            c = s.connect("1")
            c.send(json.dumps({"op": 11}))
            self.assertEqual(closed_with(c)[0], 4013)
            for text, code in [("nope", 4004), ("[]", 4004), ('{"op":"10"}', 4004),
                               ('{"op":3}', 4005), ('{"t":"NOT_AN_EVENT","d":{}}', 4005),
                               ('{"op":10}', 4011)]:
                c, _ = s.login("1")
                c.send(text)
                self.assertEqual(closed_with(c)[0], code, text)
            c, _ = s.login("1")
            c.send(b"\x00\x01")
            self.assertEqual(closed_with(c)[0], 4004)

    def test_an_idle_identified_client_is_kept_for_10_intervals_and_no_identify_is_4013(self):
        # Interval 200 ms; the reactor pings after 300 ms of silence and closes a peer that
        # answers nothing after 1 s. This client sends nothing; websockets answers the Pings.
        with Server(200, "--ping-interval-ms", "300", "--idle-timeout-ms", "1000") as s:
            c, token = s.login("1")
            silent(c, 10 * 0.2 + 0.2)
            self.assertEqual(s.http("GET", "/api/player/10", token)[0], 404)
            c.send(json.dumps({"op": 11}))
            self.assertEqual(recv(c), {"op": 12})
            c = s.connect("2")
            self.assertEqual(closed_with(c)[0], 4013)

    def test_voice_event_for_a_guild_without_player_is_4003(self):
        with Server() as s:
            c, _ = s.login("1")
            c.send(json.dumps({"t": "VOICE_SERVER_UPDATE", "d": {"guild_id": "5", "token": "t", "endpoint": "e"}}))
            self.assertEqual(closed_with(c), (4003, "No guild available"))
            c, _ = s.login("1")
            c.send(json.dumps({"t": "VOICE_SERVER_UPDATE", "d": {"token": "t"}}))
            self.assertEqual(closed_with(c)[0], 4004)

    def test_sigterm_closes_with_4010_and_exits_0(self):
        with Server() as s:
            c, _ = s.login("1")
            s.proc.send_signal(signal.SIGTERM)
            self.assertEqual(closed_with(c), (4010, "Server Closed"))
            self.assertEqual(s.proc.wait(5), 0)


class Rest(unittest.TestCase):
    def test_authorisation_401_403_and_errors(self):
        with Server() as s:
            a, token_a = s.login("1")
            _b, token_b = s.login("2")
            self.assertEqual(s.http("GET", "/api/player/10")[0], 401)
            self.assertEqual(s.http("GET", "/api/player/10", "wrong")[0], 401)
            self.assertEqual(s.http("GET", "/api/player/10", token_a)[0], 404)
            self.assertEqual(s.http("POST", "/api/subscription/10/20", token_a)[0], 200)
            recv(a)
            self.assertEqual(s.http("POST", "/api/player/10/queue", token_b, track("x", 10))[0], 403)
            self.assertEqual(s.http("POST", "/api/subscription/10/20", token_b)[0], 403)
            self.assertEqual(s.http("GET", "/api/player/10", "Bearer " + token_a)[0], 200)
            status, body = s.http("POST", "/api/player/10/queue", token_a, {"title": "no duration"})
            self.assertEqual(status, 400)
            self.assertIn("error", body)
            self.assertEqual(s.http("POST", "/api/player/10/skip", token_a), (409, {"error": "nothing is playing"}))
            self.assertEqual(s.http("DELETE", "/api/player/10/skip", token_a)[0], 405)
            a.close()
            time.sleep(QUIET)
            self.assertEqual(s.http("GET", "/api/player/10", token_a)[0], 401)

    def test_rest_driven_voice_join_ready_and_leave(self):
        with Server() as s:
            c, token = s.login("42")
            status, state = s.http("POST", "/api/subscription/10/20", token, {"self_deaf": False})
            self.assertEqual(status, 200)
            self.assertEqual(state["channel_id"], "20")
            op4 = {"guild_id": "10", "channel_id": "20", "self_mute": False, "self_deaf": False}
            self.assertEqual(recv(c), {"op": 1, "d": {"op": 4, "d": op4}})
            c.send(json.dumps({"t": "VOICE_SERVER_UPDATE", "d": {"guild_id": "10", "token": "t"}}))
            self.assertEqual(event(c, "VOICE_CONNECTION_ERROR")["guild_id"], "10")
            state = {"guild_id": "10", "channel_id": "20", "user_id": "42", "session_id": "abc"}
            c.send(json.dumps({"t": "VOICE_STATE_UPDATE", "d": state}))
            c.send(json.dumps({"t": "VOICE_SERVER_UPDATE", "d": {"guild_id": "10", "token": "t", "endpoint": "e"}}))
            self.assertEqual(event(c, "VOICE_CONNECTION_READY"), {"guild_id": "10", "channel_id": "20"})
            self.assertTrue(s.http("GET", "/api/player/10", token)[1]["connected"])
            self.assertEqual(s.http("DELETE", "/api/subscription/10", token)[0], 200)
            self.assertEqual(recv(c)["d"]["d"]["channel_id"], None)
            self.assertEqual(event(c, "VOICE_CONNECTION_DISCONNECT"), {"guild_id": "10", "channel_id": "20"})
            silent(c)


class Player(unittest.TestCase):
    def test_a_queue_of_short_tracks_in_order(self):
        with Server() as s:
            c, token = s.login("1")
            s.http("POST", "/api/subscription/10/20", token)
            recv(c)
            tracks = [track("a", 200), track("b", 150), track("c", 100)]
            status, state = s.http("POST", "/api/player/10/queue", token, tracks)
            self.assertEqual(status, 200)
            self.assertEqual([t["title"] for t in state["tracks"]], ["b", "c"])
            for title, ms in [("a", 200), ("b", 150), ("c", 100)]:
                start = event(c, "TRACK_START")
                began = time.monotonic()
                self.assertEqual((start["guild_id"], start["track"]["title"]), ("10", title))
                update = event(c, "QUEUE_STATE_UPDATE")
                self.assertEqual(update["new_state"]["guild_id"], "10")
                self.assertEqual(update["new_state"]["current"]["title"], title)
                finish = event(c, "TRACK_FINISH")
                self.assertGreaterEqual(time.monotonic() - began, (ms - 30) / 1000)
                self.assertEqual((finish["track"]["title"], finish["reason"]), (title, "finished"))
            idle = event(c, "QUEUE_STATE_UPDATE")
            self.assertEqual(idle["old_state"]["current"]["title"], "c")
            self.assertEqual((idle["new_state"]["current"], idle["new_state"]["queue_length"]), (None, 0))
            silent(c)

    def test_skip_stop_pause_resume_and_errors(self):
        with Server() as s:
            c, token = s.login("1")
            s.http("POST", "/api/subscription/10/20", token)
            recv(c)
            post = lambda path, body=None: s.http("POST", "/api/player/10/" + path, token, body)[0]
            self.assertEqual(post("queue", {"tracks": [track("a", 5000), track("b", 5000)]}), 200)
            event(c, "TRACK_START")
            event(c, "QUEUE_STATE_UPDATE")
            self.assertEqual(post("pause"), 200)
            status = event(c, "AUDIO_PLAYER_STATUS")
            self.assertEqual((status["paused"], status["track"]["title"]), (True, "a"))
            self.assertEqual(post("resume"), 200)
            self.assertFalse(event(c, "AUDIO_PLAYER_STATUS")["paused"])
            self.assertEqual(post("skip"), 200)
            self.assertEqual(event(c, "TRACK_FINISH")["reason"], "skipped")
            self.assertEqual(event(c, "TRACK_START")["track"]["title"], "b")
            event(c, "QUEUE_STATE_UPDATE")
            self.assertEqual(post("stop"), 200)
            self.assertEqual(event(c, "TRACK_FINISH")["reason"], "stopped")
            event(c, "QUEUE_STATE_UPDATE")
            bad = track("bad", 100, error="unsupported source")
            broken = track("broken", 1000, fail_after_ms=50)
            self.assertEqual(post("queue", [bad, broken]), 200)
            self.assertEqual(event(c, "TRACK_ERROR")["error"], "unsupported source")
            self.assertEqual(event(c, "TRACK_START")["track"]["title"], "broken")
            event(c, "QUEUE_STATE_UPDATE")
            self.assertEqual(event(c, "AUDIO_PLAYER_ERROR")["error"], "playback failed after 50 ms")
            self.assertEqual(event(c, "TRACK_FINISH")["reason"], "error")
            self.assertIsNone(event(c, "QUEUE_STATE_UPDATE")["new_state"]["current"])


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1)
