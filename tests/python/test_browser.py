"""The chat example's browser client (examples/chat_web/), driven in headless Chromium.

Two pages sign in as alice and bob, chat, see each other typing and present, create and move
channels, delete a message; a server error is shown in words. Bob's page reaches the server
through a TCP proxy in this test, which cuts its connection and refuses new ones for a while:
the page says "reconnecting", then resumes its session and shows the events it missed, each
once. A screenshot of each page is saved in target/screenshots/ (bob's is chat.png, the one
in README as docs/chat-client.png). Then pages served from two
other origins (Python http.server) try to open the gateway: the one given to
`--allowed-origin` opens, the other is refused (403 before the upgrade, which the browser
reports as a failed connection).

Needs Chromium and its driver (scripts/setup-browser.sh, run by this test: installs the
Debian packages when missing, as root) and selenium (scripts/setup-python.sh).

    python tests/python/test_browser.py [TEST_NAME...]
"""

import functools
import http.server
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAT_BIN = os.environ.get("CHAT_BIN", os.path.join(ROOT, "target", "release", "examples", "chat"))
SHOTS = os.path.join(ROOT, "target", "screenshots")
ALICE, BOB = "TOKEN_ALICE_7f3a", "TOKEN_BOB_91c2"
WAIT = 15.0  # seconds for anything the test waits for (a loaded machine)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chat:
    """The chat example on a free port."""

    def __init__(self, *extra):
        self.proc = subprocess.Popen(
            [CHAT_BIN, "--listen", "127.0.0.1:0", "--user", "alice:" + ALICE,
             "--user", "bob:" + BOB, "--heartbeat-ms", "2000", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        m = re.match(r"listening on (\S+)", line)
        assert m, f"expected `listening on ADDR`, got {line!r}"
        self.addr = m.group(1)
        self.port = int(self.addr.rsplit(":", 1)[1])
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Proxy:
    """A TCP proxy to `port`; `cut()` drops every connection and refuses new ones (accepted
    and closed at once) until `restore()`."""

    def __init__(self, port):
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.socks = []
        self.blocked = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.blocked:
                    client.close()
                    continue
                server = socket.create_connection(("127.0.0.1", self.upstream))
                self.socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.blocked = True
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.socks = []

    def restore(self):
        with self.lock:
            self.blocked = False

    def close(self):
        self.cut()
        self.listener.close()


class Site:
    """A directory served by Python's http.server on a free port (another origin)."""

    def __init__(self, files):
        self.dir = tempfile.TemporaryDirectory()
        for name, text in files.items():
            with open(os.path.join(self.dir.name, name), "w") as f:
                f.write(text)
        handler = functools.partial(QuietHandler, directory=self.dir.name)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.dir.cleanup()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,640", "--lang=en-US"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def until(driver, what, condition, timeout=WAIT):
    """Waits for `condition(driver)` to be truthy; fails naming `what`."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except Exception:
        page = {css: driver.find_element(By.CSS_SELECTOR, css).text
                for css in ("#status", "#error", "#members", "#members-channel", "#typing")}
        raise AssertionError(f"timed out waiting for {what}; the page shows {page}") from None


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def members(driver):
    return [li.get_attribute("data-user") for li in driver.find_elements(By.CSS_SELECTOR, "#members li")]


def messages(driver):
    """(id, author, content) of every message shown, in order."""
    return [(li.get_attribute("data-id"), li.get_attribute("data-author"),
             li.find_element(By.CSS_SELECTOR, ".content").text)
            for li in driver.find_elements(By.CSS_SELECTOR, "#messages li.message")]


def sign_in(driver, url, token, user):
    driver.get(url)
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "signin-button").click()
    until(driver, f"{user} online", lambda d: text(d, "#status") == f"connected as {user}")


def say(driver, content):
    box = driver.find_element(By.ID, "message")
    box.send_keys(content)
    driver.find_element(By.ID, "send").click()


def shows_message(driver, content):
    return lambda d: any(c == content for _, _, c in messages(d))


def test_two_pages_chat_and_resume_after_a_cut():
    chat = Chat()
    proxy = Proxy(chat.port)
    alice = bob = None
    try:
        alice, bob = browser(), browser()
        # A wrong token: the 4004 in words, and the sign-in form again.
        alice.get(f"http://{chat.addr}/")
        alice.find_element(By.ID, "token").send_keys("NOT_A_TOKEN")
        alice.find_element(By.ID, "signin-button").click()
        until(alice, "the 4004 in words", lambda d: text(d, "#error") == "wrong token: no user has it")
        assert alice.find_element(By.ID, "signin").is_displayed()
        assert not alice.find_element(By.ID, "chat").is_displayed()
        sign_in(alice, f"http://{chat.addr}/", ALICE, "alice")
        # The page is served with its Content-Security-Policy: no inline code.
        assert alice.execute_script("return document.scripts.length") == 1
        sign_in(bob, f"http://127.0.0.1:{proxy.port}/", BOB, "bob")

        # Presence: both pages list both users in #general.
        for d in (alice, bob):
            until(d, "alice and bob present", lambda d: members(d) == ["alice", "bob"])

        # Typing, then the message; each page sees the other's.
        alice.find_element(By.ID, "message").send_keys("hello b")
        until(bob, "alice is typing", lambda d: text(d, "#typing") == "alice is typing")
        alice.find_element(By.ID, "message").send_keys("ob")
        alice.find_element(By.ID, "send").click()
        until(bob, "alice's message", shows_message(bob, "hello bob"))
        until(bob, "typing cleared by the message", lambda d: text(d, "#typing") == "")
        bob.find_element(By.ID, "message").send_keys("hi alice")
        until(alice, "bob is typing", lambda d: text(d, "#typing") == "bob is typing")
        bob.find_element(By.ID, "send").click()
        until(alice, "bob's message", shows_message(alice, "hi alice"))

        # A channel: created by alice, listed on both pages.
        alice.find_element(By.ID, "channel-name").send_keys("dev")
        alice.find_element(By.ID, "add-channel").click()
        for d in (alice, bob):
            until(d, "#dev listed", lambda d: d.find_elements(By.CSS_SELECTOR, '#channels li[data-channel="dev"]'))

        # An error in words: creating it again is refused (4011).
        bob.find_element(By.ID, "channel-name").send_keys("dev")
        bob.find_element(By.ID, "add-channel").click()
        until(bob, "the 4011 in words", lambda d: text(d, "#error").startswith("refused: invalid request"))

        # The cut: bob's page loses its connection and cannot reconnect for a while.
        proxy.cut()
        until(bob, "bob reconnecting", lambda d: text(d, "#status") == "reconnecting…")
        missed = ["while you were away 1", "while you were away 2", "while you were away 3"]
        for content in missed:
            say(alice, content)
            until(alice, content, shows_message(alice, content))
        time.sleep(1.0)  # a few refused reconnects
        assert text(bob, "#status") == "reconnecting…"
        proxy.restore()
        until(bob, "bob resumed", lambda d: text(d, "#status") == "connected as bob")
        until(bob, "missed messages", shows_message(bob, missed[-1]))
        shown = messages(bob)
        ids = [i for i, _, _ in shown]
        assert len(ids) == len(set(ids)), f"a message shown twice: {shown}"
        assert [c for _, _, c in shown] == ["hello bob", "hi alice", *missed], shown
        assert shown == messages(alice), (shown, messages(alice))
        notes = [li.text for li in bob.find_elements(By.CSS_SELECTOR, "#messages li.system")]
        # 3 messages and alice's typing (an event too, shown as "is typing" only when live).
        assert any(re.fullmatch(r"reconnected: \d+ missed events below", n) for n in notes), notes
        highlighted = [li.text for li in bob.find_elements(By.CSS_SELECTOR, "#messages li.missed")]
        assert len(highlighted) == 3 and all(m in h for m, h in zip(missed, highlighted)), highlighted
        # Still the same session: alice never saw bob leave, and bob is still listed.
        assert not alice.find_elements(By.XPATH, "//li[contains(., 'bob left')]")
        assert members(bob) == ["alice", "bob"]

        # Delete: alice removes her first missed message on both pages.
        first = next(i for i, _, c in messages(alice) if c == missed[0])
        alice.find_element(By.CSS_SELECTOR, f'#messages li[data-id="{first}"] .delete').click()
        for d in (alice, bob):
            until(d, "the deleted message gone", lambda d: all(c != missed[0] for _, _, c in messages(d)))

        # Moving: bob goes to #dev (alice's list loses him), then alice follows.
        bob.find_element(By.CSS_SELECTOR, '#channels li[data-channel="dev"] button').click()
        until(bob, "bob in #dev alone", lambda d: members(d) == ["bob"] and d.find_element(By.ID, "members-channel").get_attribute("textContent") == "#dev")
        until(alice, "bob gone from #general", lambda d: members(d) == ["alice"])
        alice.find_element(By.CSS_SELECTOR, '#channels li[data-channel="dev"] button').click()
        for d in (alice, bob):
            until(d, "both in #dev", lambda d: members(d) == ["alice", "bob"])
        say(bob, "welcome to #dev")
        until(alice, "bob's message in #dev", shows_message(alice, "welcome to #dev"))
        bob.find_element(By.ID, "message").send_keys("see you")
        until(alice, "bob typing in #dev", lambda d: text(d, "#typing") == "bob is typing")

        alice.find_element(By.ID, "message").send_keys("sure")
        until(bob, "alice typing in #dev", lambda d: text(d, "#typing") == "alice is typing")

        # Heartbeats at hb_int (2 s) keep idle pages connected past the 5 s of silence the
        # server allows (it would close with 4009, and the page would say "reconnecting").
        lines = {d: len(d.find_elements(By.CSS_SELECTOR, "#messages li")) for d in (alice, bob)}
        time.sleep(6.0)
        for d, user in ((alice, "alice"), (bob, "bob")):
            assert text(d, "#status") == f"connected as {user}", text(d, "#status")
            assert len(d.find_elements(By.CSS_SELECTOR, "#messages li")) == lines[d]

        # Bob's page (the resumed one) is docs/chat-client.png.
        os.makedirs(SHOTS, exist_ok=True)
        assert bob.save_screenshot(os.path.join(SHOTS, "chat.png"))
        assert alice.save_screenshot(os.path.join(SHOTS, "chat-alice.png"))
    finally:
        for d in (alice, bob):
            if d:
                d.quit()
        proxy.close()
        chat.stop()


PROBE = """<!doctype html><html><head><title>probing</title></head><body>
<script>
const ws = new WebSocket('ws://127.0.0.1:%d/gateway');
ws.onmessage = (e) => { document.title = 'open: ' + e.data; };
ws.onclose = (e) => { if (!document.title.startsWith('open')) document.title = 'closed ' + e.code; };
</script></body></html>
"""


def test_pages_from_other_origins():
    allowed_port = free_port()
    chat = Chat("--allowed-origin", f"http://127.0.0.1:{allowed_port}")
    files = {"probe.html": PROBE % chat.port}
    evil = Site(files)
    d = None
    try:
        handler = functools.partial(QuietHandler, directory=evil.dir.name)
        friend = http.server.ThreadingHTTPServer(("127.0.0.1", allowed_port), handler)
        threading.Thread(target=friend.serve_forever, daemon=True).start()
        try:
            d = browser()
            d.get(f"http://127.0.0.1:{evil.port}/probe.html")
            until(d, "the other origin refused", lambda d: d.title != "probing")
            assert d.title == "closed 1006", d.title
            d.get(f"http://127.0.0.1:{allowed_port}/probe.html")
            until(d, "the allowed origin served", lambda d: d.title != "probing")
            assert d.title.startswith('open: {"f":100'), d.title
        finally:
            friend.shutdown()
            friend.server_close()
    finally:
        if d:
            d.quit()
        evil.stop()
        chat.stop()


def setup():
    """Chromium and its driver, installed if missing (scripts/setup-browser.sh)."""
    subprocess.run([os.path.join(ROOT, "scripts", "setup-browser.sh")], check=True, timeout=900)


def main(argv):
    setup()
    tests = [(name, fn) for name, fn in globals().items()
             if name.startswith("test_") and callable(fn)]
    if argv:
        tests = [(n, f) for n, f in tests if n in argv]
    passed = failed = 0
    for name, fn in tests:
        start = time.monotonic()
        try:
            fn()
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
