"""static/js/refresh.js in headless Chromium: it obeys each answer, and says when it stops.

The page and its refreshes come from a small scripted HTTP server on loopback (no app): each test
says what the refreshes are answered with - the region again, the region with auto-refresh
switched off, an error, a redirect to the login page once the session ended - and watches the
fetches and the page.
"""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]

SCRIPT = (Path(__file__).resolve().parents[2] / "static/js/refresh.js").read_bytes()
INTERVAL = 0.2  # seconds; the server says 10 to 30, the script takes what the page says
HANG_SECONDS = 4  # the script gives up on a fetch after max(2 s, its interval)


def region(seconds: float, text: str) -> str:
    return (
        '<!doctype html><html><head><script src="/static/js/refresh.js" defer></script></head>'
        f'<body><main><div id="queues" data-refresh-seconds="{seconds}"><p id="text">{text}</p>'
        "</div></main></body></html>"
    )


LOGIN = '<!doctype html><html><body><form><input type="password" name="password"></form></body>'


class Server:
    """Serves the page, then answers its refresh fetches with `answers` in turn."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.fetches: list[float] = []
        self.loaded = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.handle(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def handle(self, request) -> None:
        if request.path == "/static/js/refresh.js":
            return self.send(request, 200, SCRIPT, "text/javascript")
        if request.path.startswith("/login"):
            return self.send(request, 200, LOGIN.encode(), "text/html")
        if request.path != "/queues":  # the browser's favicon.ico
            return self.send(request, 404, b"", "text/plain")
        if not self.loaded:  # the page itself
            self.loaded = True
            return self.send(request, 200, region(INTERVAL, "first load").encode(), "text/html")
        self.fetches.append(time.monotonic())
        status, body = self.answers.pop(0) if self.answers else (200, region(INTERVAL, "again"))
        if status == "hang":  # accepted, then no answer for longer than the script waits
            time.sleep(HANG_SECONDS)
            status, body = 200, region(INTERVAL, "too late")
        if status == 302:
            request.send_response(302)
            request.send_header("Location", "/login?next=%2Fqueues")
            request.send_header("Content-Length", "0")
            request.end_headers()
            return None
        return self.send(request, status, body.encode(), "text/html")

    @staticmethod
    def send(request, status: int, body: bytes, content_type: str) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page gave up on this answer

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(answers) -> Server:
        servers.append(Server(answers))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# Notes can come and go between two polls of Playwright's: record each one the page shows.
RECORD_NOTES = """
window.__notes = [];
new MutationObserver(function () {
  document.querySelectorAll(".refresh-note").forEach(function (note) {
    var seen = note.className + "|" + note.textContent;
    var last = window.__notes[window.__notes.length - 1];
    if (!last || last.seen !== seen) { window.__notes.push({seen: seen, at: performance.now()}); }
  });
}).observe(document, {childList: true, subtree: true, characterData: true, attributes: true});
"""


def notes(page) -> list[tuple[str, float]]:
    """(class|text, ms since the page started) of every note the page has shown."""
    return [(n["seen"], n["at"]) for n in page.evaluate("window.__notes")]


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.add_init_script(RECORD_NOTES)
    page = context.new_page()
    page.set_default_timeout(5_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == []


def test_switching_auto_refresh_off_stops_an_open_page_at_its_next_refresh(page, serve):
    server = serve([(200, region(INTERVAL, "one")), (200, region(0, "flag off"))])
    page.goto(f"{server.url}/queues")

    page.wait_for_function("document.getElementById('text').textContent === 'flag off'")
    page.wait_for_timeout(INTERVAL * 1000 * 6)

    assert len(server.fetches) == 2  # none after the answer that said 0
    assert page.locator(".refresh-note").count() == 0


def test_a_failed_refresh_says_since_when_the_page_is_stale_and_recovers(page, serve):
    server = serve([(503, "down"), (500, "down"), (200, region(INTERVAL, "back"))])
    page.goto(f"{server.url}/queues")

    page.wait_for_function("document.getElementById('text').textContent === 'back'")

    shown = [seen for seen, _ in notes(page)]
    assert shown, "no stale note was shown"
    assert all(
        re.fullmatch(
            r"refresh-note stale\|stale: last refreshed at \d\d:\d\d:\d\d UTC \(the refresh "
            r"failed; trying again every 0\.2 s\)",
            seen,
        )
        for seen in shown
    ), shown
    assert page.locator(".refresh-note").count() == 0  # fresh again
    assert len(server.fetches) == 3


@pytest.mark.parametrize("status", [302, 401], ids=["redirect-to-login", "401"])
def test_a_refresh_after_the_session_ended_stops_and_says_so(page, serve, status):
    server = serve([(200, region(INTERVAL, "one")), (status, "")])
    page.goto(f"{server.url}/queues")

    note = page.locator(".refresh-note.ended")
    note.wait_for()
    assert note.inner_text() == "Session ended - reload to sign in"
    assert note.locator("a").get_attribute("href") == f"{server.url}/queues"
    assert page.inner_text("#text") == "one"  # the page stays as it was, no login form in it
    page.wait_for_timeout(INTERVAL * 1000 * 5)
    assert len(server.fetches) == 2


def test_a_refresh_that_gets_no_answer_counts_as_failed_and_polling_goes_on(page, serve):
    server = serve([("hang", ""), (200, region(INTERVAL, "answered"))])
    page.goto(f"{server.url}/queues")

    page.wait_for_function("document.getElementById('text').textContent === 'answered'")

    (seen, at), = notes(page)
    assert seen.startswith("refresh-note stale|stale: last refreshed at "), seen
    # Given up after 2 s (its interval is shorter), long before the answer would have come.
    assert 2000 < at < 1000 * HANG_SECONDS, at
    assert page.locator(".refresh-note").count() == 0
