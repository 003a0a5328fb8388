"""A live server on the test database and a headless chromium to drive it."""
from __future__ import annotations

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
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run and `make test` install it with apt-get)")
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `npm ci --prefix tests/browser`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    # axe is injected as a script tag, which the app's Content-Security-Policy would refuse.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    # English chosen with the switch, as the other tests' clients (tests/conftest.py EnglishReader); a test
    # of the Japanese pages clears it (context.clear_cookies()) or chooses 日本語.
    context.add_cookies([{"name": "cbt_language", "value": "en", "domain": "127.0.0.1", "path": "/"}])
    page = context.new_page()
    yield page
    context.close()


def serious_accessibility_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
