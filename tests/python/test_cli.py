"""The example servers' command lines (clap, examples/support/serve.rs) and log backend.

For every example: `--help` exits 0 and lists each flag with its default (the tables below
are the contract: the defaults of docs/protocols/*.md "Command line" and README's table); an
unknown flag, a missing value and a bad value of each flag exit 2 with an error naming the
flag (`--deflate`, a switch, given a value); each docs/protocols page shows the example's
current `--help`. Then a few servers are started on free ports: a repeated flag takes its
last value, a password may start with `-`, chat without `--user` prints a random demo token that works, and
`RUST_LOG` turns the library's logs on (off below `warn` when unset, `listening on ADDR` still
the first line).

    python tests/python/test_cli.py            # or: python -m unittest discover -s tests/python

Uses target/release/examples/NAME (tests/python/run.sh builds them; built here if missing).
"""

import asyncio
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import unittest

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPECT = 10.0  # seconds to wait for a line the test expects

# Flag → default as --help shows it (None: no default, the flag is repeatable; SWITCH: a
# flag without a value or default).
SWITCH = "switch"
SERVE = {
    "--max-connections": "65536",
    "--max-conns-per-ip": "256",
    "--new-conns-per-ip": "32",
    "--limit-loopback": "false",
    "--events-per-poll": "1024",
    "--reactors": "1",
    "--deflate": SWITCH,
}
RANDOM = "random, printed on stderr"
LIVENESS = {"--ping-interval-ms": "20000", "--idle-timeout-ms": "60000"}
BOUNDS = {
    "--max-queue": "1000",
    "--max-client-players": "1000",
    "--max-client-tracks": "10000",
    "--max-players": "10000",
    "--max-tracks": "100000",
}
EXAMPLES = {
    "echo": {"--listen": "127.0.0.1:9001", "--max-payload": "4096"},
    "chat": {
        "--listen": "127.0.0.1:9004",
        "--user": None,
        "--admin": None,
        "--heartbeat-ms": "20000",
        "--resume-window-ms": "60000",
        "--max-payload": "4096",
        "--large-threshold": "250",
        "--max-sessions": "100000",
        "--max-sessions-per-owner": "1000",
        "--max-channels": "10000",
        "--channels-per-user": "100",
        "--channel-adds-per-minute": "10",
        "--allowed-origin": None,
    },
    "discodo": {
        "--listen": "127.0.0.1:9002",
        "--password": RANDOM,
        "--heartbeat-ms": "15000",
        "--vc-timeout-ms": "300000",
        "--max-managers": "1000",
        "--max-voice-clients": "10000",
        "--max-voice-clients-per-manager": "2500",
    },
    "rooms": {
        "--listen": "127.0.0.1:9003",
        "--admin-token": RANDOM,
        "--heartbeat-ms": "30000",
        "--max-closed-rooms": "100000",
    },
    "nexus": {
        "--listen": "127.0.0.1:9000",
        "--password": RANDOM,
        "--heartbeat-ms": "30000",
        "--player-window-ms": "60000",
        **LIVENESS,
        **BOUNDS,
    },
    "nightingale": {
        "--listen": "127.0.0.1:9005",
        "--password": RANDOM,
        "--resume-window-ms": "60000",
        "--max-sessions": "100000",
        "--max-sessions-per-owner": "1000",
        **LIVENESS,
        **BOUNDS,
    },
}
# A bad value for each kind of value (the <NAME> --help shows).
BAD = {"N": "abc", "BYTES": "4k", "ADDR": "nowhere", "true|false": "maybe", "PW": "", "T": "",
       "NAME:TOKEN": "no-colon", "N|auto": "many", "ORIGIN": "nowhere"}


def binary(name):
    path = os.path.join(ROOT, "target", "release", "examples", name)
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--quiet", "--release", "--example", name],
                       cwd=ROOT, check=True, timeout=600)
    return path


def run(name, *args, env=None):
    """Runs an example that is expected to exit at once: (status, stdout, stderr)."""
    p = subprocess.run([binary(name), *args], capture_output=True, text=True, timeout=EXPECT,
                       env=env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def help_entries(text):
    """{flag: (value name, description)} of a --help text."""
    entries, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^\s+(?:-\w, )?(--[a-z-]+)(?: <([^>]+)>)?(.*)$", line)
        if m:
            current = m.group(1)
            entries[current] = [m.group(2), m.group(3).strip()]
        elif current and line.startswith(" "):
            entries[current][1] += " " + line.strip()
        else:
            current = None
    return {flag: tuple(entry) for flag, entry in entries.items()}


class Server:
    """An example started on a free port; its stderr lines arrive on a queue."""

    def __init__(self, name, *args, env=None):
        self.proc = subprocess.Popen([binary(name), *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self):
        line = self.lines.get(timeout=EXPECT)
        assert line is not None, "the server exited"
        return line

    def address(self):
        """Reads `listening on ADDR` (the next line) and returns (host, port)."""
        line = self.line()
        m = re.fullmatch(r"listening on (127\.0\.0\.1):(\d+)", line)
        assert m, f"expected `listening on ADDR`, got {line!r}"
        return m.group(1), int(m.group(2))

    def stop(self):
        """SIGTERM, then every stderr line left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=EXPECT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        rest = []
        while (line := self.lines.get(timeout=EXPECT)) is not None:
            rest.append(line)
        self.proc.stderr.close()
        return rest


def bad_request(addr):
    """A malformed HTTP request (refused with 400, which the reactor logs at debug or
    info); the answer's status line."""
    with socket.create_connection(addr, timeout=EXPECT) as s:
        s.sendall(b"garbage\r\n\r\n")
        with s.makefile("rb") as answer:
            return answer.readline().decode()


class HelpTest(unittest.TestCase):
    def test_help_lists_every_flag_with_its_default(self):
        for name, flags in EXAMPLES.items():
            with self.subTest(example=name):
                status, out, err = run(name, "--help")
                self.assertEqual((status, err), (0, ""))
                entries = help_entries(out)
                entries.pop("--help")
                self.assertEqual(set(entries), set(flags) | set(SERVE))
                for flag, default in {**flags, **SERVE}.items():
                    value_name, described = entries[flag]
                    if default is SWITCH:
                        self.assertEqual(value_name, None, flag)
                        self.assertNotIn("[default:", described, flag)
                    elif default is None:
                        self.assertNotIn("[default:", described, flag)
                        self.assertIn("(repeatable)", described, flag)
                    else:
                        self.assertIn(f"[default: {default}]", described, flag)

    def test_short_help_is_help(self):
        status, out, _ = run("echo", "-h")
        self.assertEqual(status, 0)
        self.assertIn("--max-connections <N>", out)

    def test_an_unknown_flag_exits_2_naming_it(self):
        for name in EXAMPLES:
            with self.subTest(example=name):
                status, out, err = run(name, "--no-such-flag", "1")
                self.assertEqual((status, out), (2, ""))
                self.assertIn("'--no-such-flag'", err)

    def test_a_missing_value_exits_2_naming_the_flag(self):
        for name in EXAMPLES:
            with self.subTest(example=name):
                status, _, err = run(name, "--listen", "127.0.0.1:0", "--max-connections")
                self.assertEqual(status, 2)
                self.assertIn("'--max-connections <N>'", err)

    def test_a_bad_value_of_each_flag_exits_2_naming_the_flag(self):
        for name in EXAMPLES:
            _, out, _ = run(name, "--help")
            for flag, (value_name, _) in help_entries(out).items():
                if flag == "--help":
                    continue
                if value_name is None:
                    with self.subTest(example=name, switch=flag):
                        status, stdout, err = run(name, "--listen", "127.0.0.1:0",
                                                  flag + "=yes")
                        self.assertEqual((status, stdout), (2, ""), err)
                        self.assertIn(f"'{flag}'", err)
                        self.assertNotIn("listening on", err)
                    continue
                with self.subTest(example=name, flag=flag):
                    status, stdout, err = run(name, "--listen", "127.0.0.1:0", flag,
                                              BAD[value_name])
                    self.assertEqual((status, stdout), (2, ""), err)
                    self.assertIn(f"'{flag} <{value_name}>'", err)
                    self.assertNotIn("listening on", err)

    def test_the_connection_limit_named_in_the_brief(self):
        status, _, err = run("chat", "--max-connections", "abc")
        self.assertEqual(status, 2)
        self.assertRegex(err, r"invalid value 'abc' for '--max-connections <N>'")

    def test_a_refused_user_is_a_usage_error(self):
        status, _, err = run("chat", "--user", "alice:" + "t" * 257)
        self.assertEqual(status, 2)
        self.assertIn("--user alice: tokens are at most 256 bytes", err)


class DocsTest(unittest.TestCase):
    def test_each_protocol_page_shows_the_current_help(self):
        for name in ["chat", "discodo", "nexus", "nightingale", "rooms"]:
            with self.subTest(example=name):
                with open(os.path.join(ROOT, "docs", "protocols", name + ".md")) as f:
                    page = f.read()
                m = re.search(r"```text\n\$ " + name + r" --help\n(.*?)```\n", page, re.S)
                self.assertTrue(m, f"no `$ {name} --help` block in {name}.md")
                _, out, _ = run(name, "--help")
                self.assertEqual(m.group(1), out)


async def open_echoing(url, count):
    """Opens `count` connections to echo at `url` and checks that each echoes."""
    conns = [await websockets.connect(url) for _ in range(count)]
    for i, ws in enumerate(conns):
        await ws.send(f"hello {i}")
        assert await asyncio.wait_for(ws.recv(), EXPECT) == f"hello {i}"
    return conns


class ReactorsTest(unittest.TestCase):
    """`--reactors N` (examples/support/serve.rs): echo runs N reactors on one port; the
    gateways refuse N > 1 until their engines can act as one gateway across reactors."""

    def test_echo_with_two_reactors_shuts_both_down_and_exits_0(self):
        s = Server("echo", "--listen", "127.0.0.1:0", "--reactors", "2")
        host, port = s.address()

        async def scenario():
            conns = await open_echoing(f"ws://{host}:{port}/", 60)
            s.proc.send_signal(signal.SIGTERM)
            codes = []
            for ws in conns:
                await asyncio.wait_for(ws.wait_closed(), EXPECT)
                codes.append(ws.close_code)
            return codes

        try:
            codes = asyncio.run(scenario())
            self.assertEqual(codes, [1001] * 60)
            self.assertEqual(s.proc.wait(timeout=EXPECT), 0)
        finally:
            rest = s.stop()
        self.assertEqual(rest, ["shutting down"])

    def test_the_gateways_refuse_more_than_one_reactor(self):
        for name in ["chat", "discodo", "nexus", "nightingale", "rooms"]:
            with self.subTest(example=name):
                status, _, err = run(name, "--listen", "127.0.0.1:0", "--reactors", "2")
                self.assertEqual(status, 2, err)
                self.assertIn(f"{name}: --reactors 2: this server runs one reactor", err)
                self.assertNotIn("listening on", err)

    def test_reactors_1_is_the_single_reactor(self):
        s = Server("chat", "--listen", "127.0.0.1:0", "--reactors", "1")
        try:
            s.line()  # the demo token
            s.address()
        finally:
            self.assertEqual(s.stop(), ["shutting down"])


class StartTest(unittest.TestCase):
    def test_a_repeated_flag_takes_its_last_value_and_a_password_may_start_with_a_dash(self):
        s = Server("nexus", "--password", "-pw", "--listen", "127.0.0.1:1",
                   "--listen", "127.0.0.1:0", "--limit-loopback", "yes",
                   "--max-queue", "0", "--ping-interval-ms", "1")
        try:
            s.address()  # no `no --password given` line before it
        finally:
            self.assertEqual(s.stop(), ["shutting down"])

    def test_chat_without_users_prints_a_random_demo_token_that_works(self):
        tokens = []
        for _ in range(2):
            s = Server("chat", "--listen", "127.0.0.1:0")
            try:
                m = re.fullmatch(r"no --user given: the token of the demo user `demo` is "
                                 r"([0-9a-f]{24})", s.line())
                self.assertTrue(m)
                tokens.append(m.group(1))
                host, port = s.address()
                ready = asyncio.run(present(f"ws://{host}:{port}/", tokens[-1]))
                self.assertEqual((ready["f"], ready["cnf"]["user"]), (140, "demo"))
            finally:
                s.stop()
        self.assertNotEqual(tokens[0], tokens[1])

    def test_a_token_given_twice_belongs_to_the_last_user_given(self):
        # --user and --admin are taken in command-line order, as by the hand-written parser.
        for flags, owner in [(["--admin", "root:T", "--user", "bob:T"], "bob"),
                             (["--user", "bob:T", "--admin", "root:T"], "root")]:
            s = Server("chat", "--listen", "127.0.0.1:0", *flags)
            try:
                host, port = s.address()
                ready = asyncio.run(present(f"ws://{host}:{port}/", "T"))
                self.assertEqual(ready["cnf"]["user"], owner, flags)
            finally:
                s.stop()

    def test_rust_log_debug_shows_the_librarys_logs(self):
        s = Server("echo", "--listen", "127.0.0.1:0", env={**os.environ, "RUST_LOG": "debug"})
        try:
            addr = s.address()
            self.assertRegex(bad_request(addr), r"^HTTP/1.1 400 ")
            line = s.line()
            self.assertRegex(line, r"^\[(DEBUG|INFO) +postern[:\]]")
        finally:
            s.stop()

    def test_without_rust_log_no_debug_line_and_listening_comes_first(self):
        env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        s = Server("echo", "--listen", "127.0.0.1:0", env=env)
        try:
            addr = s.address()
            self.assertRegex(bad_request(addr), r"^HTTP/1.1 400 ")
        finally:
            rest = s.stop()
        self.assertEqual(rest, ["shutting down"])


async def present(url, token):
    async with websockets.connect(url, ping_interval=None, compression=None,
                                  open_timeout=EXPECT) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), EXPECT))
        assert hello["f"] == 100, hello
        await ws.send(json.dumps({"f": 110, "cnf": {"token": token}}))
        return json.loads(await asyncio.wait_for(ws.recv(), EXPECT))


if __name__ == "__main__":
    unittest.main(verbosity=2)
