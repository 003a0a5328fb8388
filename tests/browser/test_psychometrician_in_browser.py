"""Every page of the psychometrician's area in a real headless chromium at 1280x800, in Japanese and in
English: no console error (the operation charts used to break the CSP 131 times a load), charts drawn,
axe-core clean, tables within the page, and a screenshot of each page written for review
(var/screenshots/psychometrician/LANG-NAME.png)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import engine as irt
from delivery.demo_stretch import ensure_demo_stretch
from itembank import calibration
from itembank.bank import entry
from itembank.models import Item
from tests.browser.conftest import serious_accessibility_violations
from tests.test_calibration_workflow import NOW, simulated_set

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "psychometrician"
HEADINGS = {"ja": {"bank": "項目バンク", "operations": "運用統計", "statistics": "露出と統計"},
            "en": {"bank": "Item bank", "operations": "Operation statistics", "statistics": "Exposure and statistics"}}


def test_every_psychometrician_page_in_both_languages(browser, live_server, engine, session, program, clock):
    made = ensure_demo_stretch(session, engine, program, clock.now, sittings_count=12)
    codes = session.scalars(select(Item.code).where(Item.status == "operational").order_by(Item.code)).all()[:40]
    pretest = session.scalars(select(Item.code).where(Item.status == "pretest", Item.field == "technology")
                              .order_by(Item.code)).all()[:1]
    versions = [entry(session, c).version for c in codes + pretest]
    truth = irt.ItemParameters([v.a for v in versions], [v.b for v in versions], [v.c for v in versions])
    data = simulated_set(session, codes + pretest, truth, n=400, per_examinee=20, rng=np.random.default_rng(5),
                         pretest=pretest)
    run = calibration.run_pretest_calibration(session, program, data, actor="psychometrician",
                                              actor_role="psychometrician", now=NOW)
    session.commit()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "bank": "/bank/", "bank-sorted": "/bank/?field=technology&sort=b&order=desc&page=2",
        "item-operational": f"/bank/items/{codes[0]}", "item-draft": f"/bank/items/{made.drafts[0]}",
        "statistics": "/bank/statistics", "operations": "/bank/operations/", "calibration": "/bank/calibration",
        "run": f"/bank/calibration/{run.id}", "review": f"/bank/calibration/{run.id}/items/{pretest[0]}",
        "forms": "/bank/forms", "studies": "/bank/studies", "rescoring": "/bank/rescoring/",
        "enemies": "/bank/enemies", "exchange": "/bank/exchange",
    }
    problems: dict[str, list[str]] = {}
    for language in ("ja", "en"):
        # axe is injected as a script tag, which the CSP refuses: the accessibility pass bypasses it,
        # the console pass keeps it (a CSP refusal is a console error).
        strict = browser.new_context(viewport={"width": 1280, "height": 800})
        loose = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        for context in (strict, loose):
            context.add_cookies([{"name": "cbt_language", "value": language, "url": live_server}])
            login = context.new_page()
            login.goto(live_server + "/staff/login")
            login.fill("#username", "psychometrician")
            login.fill("#password", "psychometrician-demo-pass")
            login.locator("button[type=submit].primary").click()
            login.wait_for_url("**/bank/")
            login.close()
        console = strict.new_page()
        errors: list[str] = []
        console.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        console.on("pageerror", lambda error: errors.append(str(error)))
        review = loose.new_page()
        for name, path in pages.items():
            errors.clear()
            response = console.goto(live_server + path)
            assert response.status == 200, (language, name)
            console.wait_for_load_state("networkidle")
            # Every image (the charts and plots) has loaded and has a size: drawn, not a black box.
            broken = console.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth < 50)"
                                      ".map(i => i.src)")
            wide = console.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")
            assert console.evaluate("() => document.documentElement.lang") == language
            console.screenshot(path=str(SCREENSHOTS / f"{language}-{name}.png"), full_page=False)
            review.goto(live_server + path)
            found = [*(f"console: {e}" for e in errors), *(f"image not drawn: {src}" for src in broken),
                     *(["the page scrolls sideways at 1280 px"] if wide else []),
                     *serious_accessibility_violations(review)]
            if found:
                problems[f"{language} {name}"] = found
        console.goto(live_server + "/bank/operations/")
        assert console.locator("h1").inner_text() == HEADINGS[language]["operations"]
        assert console.locator("figure.chart img").count() == 3
        # Item codes stay on one line in the bank's table.
        console.goto(live_server + "/bank/")
        assert console.locator("h1").inner_text() == HEADINGS[language]["bank"]
        rows = console.evaluate("() => [...document.querySelectorAll('td.code-cell a')].map(a => a.getClientRects().length)")
        assert len(rows) > 10 and set(rows) == {1}
        strict.close()
        loose.close()
    assert problems == {}
