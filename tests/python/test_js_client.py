"""A real JavaScript client against examples/chat.rs: tests/js/chat_resume.mjs under Node.

The script uses the global WebSocket and JSON.parse without BigInt, as browser and Node
clients do: it presents, takes `session_id` from READY as JSON.parse gives it (a double),
drops the connection and resumes with that number. The resume must succeed (READY with
"resumed":true, then the replay), which it only can while session ids stay below 2^53
(docs/protocols/chat.md, "Numbers").

    python tests/python/test_js_client.py [TEST_NAME...]

Needs Node 20 or later (`node` on PATH, or NODE=/path/to/node). Without it the test FAILS,
saying so: a missing client is not a pass.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import traceback

from test_chat import ALICE, ROOT, Server

NODE = os.environ.get("NODE") or shutil.which("node") or "/usr/bin/node"
SCRIPT = os.path.join(ROOT, "tests", "js", "chat_resume.mjs")
RUNS = 5  # each run is a fresh session id; with 64-bit ids nearly every one fails


def node_command():
    """`node` plus the flag that gives it a global WebSocket, if it needs one."""
    if not (os.path.isfile(NODE) and os.access(NODE, os.X_OK)):
        raise AssertionError(
            f"node not found (looked for {NODE!r}; set NODE=/path/to/node): this test needs "
            "Node 20 or later and fails without it rather than pass silently")
    probe = "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
    if subprocess.run([NODE, "-e", probe], timeout=30).returncode == 0:
        return [NODE]
    if subprocess.run([NODE, "--experimental-websocket", "-e", probe], timeout=30).returncode == 0:
        return [NODE, "--experimental-websocket"]
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=30)
    raise AssertionError(f"{NODE} {version.stdout.strip()} has no WebSocket: need Node 20 or later")


async def test_javascript_client_resumes_with_the_session_id_it_parsed():
    command = node_command()
    async with Server() as s:
        for _ in range(RUNS):
            proc = await asyncio.create_subprocess_exec(
                *command, SCRIPT, s.url(), ALICE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 15)
            assert proc.returncode == 0, (
                f"the JavaScript client failed (exit {proc.returncode}):\n"
                f"{err.decode().strip()}\n{out.decode().strip()}")


def main(argv):
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_")]
    tests = [(n, f) for n, f in tests if not argv or n in argv]
    passed = failed = 0
    for name, fn in tests:
        try:
            asyncio.run(asyncio.wait_for(fn(), 120))
        except BaseException:  # noqa: BLE001 - a test's failure of any kind is reported
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
