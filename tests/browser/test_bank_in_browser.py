"""The psychometrician's area in a real headless chromium, with accessibility checks on every page."""
from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

import engine as irt
from itembank import calibration
from itembank.bank import entry
from itembank.models import Item
from tests.bank_helpers import qti_package
from tests.browser.conftest import serious_accessibility_violations
from tests.test_calibration_workflow import NOW, simulated_set

pytestmark = pytest.mark.browser


def test_a_psychometrician_imports_reviews_and_calibrates_in_a_browser(page, live_server, session, program, tmp_path):
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
    violations: dict[str, list[str]] = {}

    # This walk reads the English pages (test_psychometrician_in_browser.py walks both languages).
    page.context.add_cookies([{"name": "cbt_language", "value": "en", "url": live_server}])
    page.goto(live_server + "/staff/login")
    page.get_by_label("Username").fill("psychometrician")
    page.get_by_label("Password").fill("psychometrician-demo-pass")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Item bank")).to_be_visible()
    violations["bank"] = serious_accessibility_violations(page)

    page.get_by_label("Text").fill("primary key")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="T21-001").click()
    expect(page.get_by_role("heading", name="As the candidate sees it")).to_be_visible()
    violations["item"] = serious_accessibility_violations(page)

    page.get_by_role("link", name="Import and export").click()
    violations["exchange"] = serious_accessibility_violations(page)
    package = tmp_path / "qti30.zip"
    package.write_bytes(qti_package("qti30"))
    page.get_by_label("Package (.zip)").set_input_files(str(package))
    page.get_by_role("button", name="Import the package").click()
    expect(page.get_by_role("status")).to_contain_text("2 item(s) imported")
    violations["import report"] = serious_accessibility_violations(page)

    page.get_by_role("link", name="Q3-DB-001").click()
    page.get_by_role("link", name="Edit the content (makes a new version)").click()
    violations["edit"] = serious_accessibility_violations(page)
    page.get_by_label("Rationale").fill("member_no is the only column unique in every row.")
    page.get_by_label("What changed and why").fill("clearer rationale")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_text("Version 2 of Q3-DB-001 saved.")).to_be_visible()

    page.get_by_role("link", name="Calibration", exact=True).click()
    violations["calibration"] = serious_accessibility_violations(page)
    page.get_by_role("link", name=f"Run {run.id}", exact=True).click()
    violations["run"] = serious_accessibility_violations(page)
    page.get_by_role("link", name=pretest[0]).click()
    image = page.get_by_role("img", name=f"Item characteristic curve of {pretest[0]}")
    expect(image).to_be_visible()
    # The plot is rendered on the server; it has loaded once the browser knows its size.
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=image.element_handle())
    violations["review"] = serious_accessibility_violations(page)

    page.get_by_role("link", name="Enemy sets").click()
    violations["enemies"] = serious_accessibility_violations(page)
    page.get_by_role("link", name="Exposure and statistics").click()
    violations["statistics"] = serious_accessibility_violations(page)

    assert violations == {name: [] for name in violations}
