"""A live server on the test database and a headless chromium to drive it.

Every browser context a test opens (the ``page`` fixture's, and any the test makes with
``browser.new_context``) is watched: a console error or an uncaught page error on any page
fails the test (a 4xx answer to a page or to a script's request is the server's answer, not
an error: see ``ANSWERED``). The app's Content-Security-Policy is in force (axe-core is evaluated through
the DevTools protocol, which the policy does not govern), so a style or script the policy
blocks shows as the console error the user's browser would log.
"""
from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

AXE = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a closed network: no background connections chromium would make on its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Chromium logs every 4xx answer as "Failed to load resource". For a page (a form sent back with its
# message, an error page) or a script's request (a seat told it was signed out) that is the server's
# deliberate answer, which the tests check; a stylesheet, script, image or font that fails to load,
# and any 5xx, is a broken page.
ANSWERED = ("document", "fetch", "xhr")
FAILED_LOAD = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})")


def start_live_server(app) -> tuple[str, object]:
    """Serve ``app`` on a free port of the loopback in a thread: its address, and the server to shut down."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_port}", server


BROWSER_SECRET = "browser-test-secret"


def at_seat_pc(page, live_server: str, booked) -> None:
    """This browser page is the PC of the booking's seat (enrolled by tests.helpers): its seat cookie."""
    from delivery.web.seats import SEAT_COOKIE, seat_cookie_value

    page.context.add_cookies([{"name": SEAT_COOKIE, "value": seat_cookie_value(BROWSER_SECRET, booked.seat_token),
                               "url": live_server}])


@pytest.fixture
def live_server(engine):
    from delivery.web import create_app

    # Short polling intervals, so that the tests see live updates quickly.
    app = create_app({"ENGINE": engine, "SECRET_KEY": BROWSER_SECRET, "CLOCK_POLL_SECONDS": 2,
                      "BOARD_POLL_SECONDS": 1})
    address, server = start_live_server(app)
    yield address
    # The test's pages go first: a request still in flight (a favicon, a poll) would otherwise
    # see the server vanish and log a connection reset that is the test's teardown, not the app.
    for watched in WATCHING:
        watched.close_contexts()
    server.shutdown()


@pytest.fixture(scope="session")
def chromium():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run and `make test` install it with apt-get)")
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `npm ci --prefix tests/browser`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# The watched browsers of the running test (live_server closes their pages before it stops).
WATCHING: list = []


class WatchedBrowser:
    """The session's chromium, whose new contexts report their console errors and page errors.

    ``take_errors()`` hands over (and forgets) what was seen so far; whatever is left when the
    test ends fails it."""

    def __init__(self, browser):
        self._browser = browser
        self._contexts: list = []
        self._errors: list[str] = []
        self._kinds: dict[str, str] = {}  # each requested address's resource type (document, fetch, ...)

    def _request(self, request) -> None:
        self._kinds[request.url] = request.resource_type

    def _console(self, message) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        failed = FAILED_LOAD.match(message.text)
        if failed and 400 <= int(failed.group(1)) < 500 and self._kinds.get(where) in ANSWERED:
            return
        self._errors.append(f"console error: {message.text} (at {where})")

    def _page_error(self, error) -> None:
        page = error.page
        self._errors.append(f"page error: {error.error} (on {page.url if page else '?'})")

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        context.on("request", self._request)
        context.on("console", self._console)
        context.on("weberror", self._page_error)
        self._contexts.append(context)
        return context

    def take_errors(self) -> list[str]:
        errors, self._errors = self._errors, []
        return errors

    def close_contexts(self) -> None:
        for context in self._contexts:
            try:
                context.close()
            except Exception:  # noqa: BLE001 - already closed by the test
                pass
        self._contexts = []

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture
def browser(chromium):
    watched = WatchedBrowser(chromium)
    WATCHING.append(watched)
    yield watched
    WATCHING.remove(watched)
    watched.close_contexts()
    errors = watched.take_errors()
    if errors:
        pytest.fail("the browser logged errors:\n" + "\n".join(errors[:40]), pytrace=False)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # English chosen with the switch, as the other tests' clients (tests/conftest.py EnglishReader); a test
    # of the Japanese pages clears it (context.clear_cookies()) or chooses 日本語.
    context.add_cookies([{"name": "cbt_language", "value": "en", "domain": "127.0.0.1", "path": "/"}])
    page = context.new_page()
    yield page
    context.close()


def serious_accessibility_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    # Evaluated, not added as a <script>: the app's CSP refuses inline scripts, and stays in force.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
