"""The psychometrician's scores area in chromium: statistics and rescoring pages pass axe."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import serious_accessibility_violations

pytestmark = pytest.mark.browser


def test_statistics_and_rescoring_pages_are_accessible(page, live_server):
    # This walk reads the English pages (test_psychometrician_in_browser.py walks both languages).
    page.context.add_cookies([{"name": "cbt_language", "value": "en", "url": live_server}])
    page.goto(live_server + "/staff/login")
    page.get_by_label("Username").fill("psychometrician")
    page.get_by_label("Password").fill("psychometrician-demo-pass")
    page.get_by_role("button", name="Log in").click()
    violations = {}
    page.get_by_role("link", name="Operation statistics").click()
    expect(page.get_by_role("heading", name="Operation statistics")).to_be_visible()
    violations["operations"] = serious_accessibility_violations(page)
    page.get_by_role("link", name="Rescoring").click()
    expect(page.get_by_role("heading", name="Rescoring")).to_be_visible()
    violations["rescoring"] = serious_accessibility_violations(page)
    page.get_by_label("Item code").fill("NOPE")
    page.get_by_label("Reason").fill("test")
    page.get_by_role("button", name="Propose and show the effect").click()
    expect(page.get_by_text("no item NOPE")).to_be_visible()
    assert {name: found for name, found in violations.items() if found} == {}
