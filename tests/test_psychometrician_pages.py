"""The psychometrician's pages as a user meets them: the bank list paged and sorted on the server with its
filters kept, one stated limit for design studies, why an item cannot be edited, both languages."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from delivery.design_studies import MAX_CANDIDATES, MIN_CANDIDATES, WEB_MAX_CANDIDATES, StudyError, run_study
from delivery.web.psychometrician import PAGE_SIZE
from itembank import bank
from itembank.models import Item
from persistence.errors import InvalidInput
from tests.helpers import csrf_token, login_staff

PSY = {"actor": "psychometrician", "actor_role": "psychometrician"}


def _codes(page: str) -> list[str]:
    return re.findall(r'<td class="code-cell"><a href="/bank/items/([^"]+)">', page)


def test_the_bank_list_is_paged_on_the_server_and_keeps_its_filters(client, session):
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    total = session.scalar(select(func.count(Item.id)))
    first = client.get("/bank/").get_data(as_text=True)
    assert len(_codes(first)) == PAGE_SIZE and f"Items 1–{PAGE_SIZE} of {total}" in first
    everything = sorted(session.scalars(select(Item.code)))
    assert _codes(first) == everything[:PAGE_SIZE]
    pages = -(-total // PAGE_SIZE)
    last = client.get(f"/bank/?page={pages}").get_data(as_text=True)
    assert _codes(last) == everything[(pages - 1) * PAGE_SIZE:]
    assert client.get(f"/bank/?page={pages + 1}").status_code == 404
    assert client.get("/bank/?page=0").status_code == 400
    assert client.get("/bank/?sort=stem").status_code == 400 and client.get("/bank/?order=up").status_code == 400

    # A filter and a sort: the page links keep both, the column headings keep the filter.
    technology = client.get("/bank/?field=technology&sort=b&order=desc").get_data(as_text=True)
    expected = sorted(((e.version.b, e.item.code) for e in bank.browse(session, field="technology")),
                      key=lambda pair: (-pair[0], pair[1]))
    assert _codes(technology) == [code for _, code in expected[:PAGE_SIZE]]
    assert 'href="/bank/?page=2&amp;field=technology&amp;sort=b&amp;order=desc"' in technology
    assert 'aria-sort="descending"' in technology
    assert 'href="/bank/?sort=b&amp;order=asc&amp;field=technology"' in technology  # the same column: the other way
    assert 'href="/bank/?sort=code&amp;order=asc&amp;field=technology"' in technology

    # A text filter searches the decrypted content, then pages the matches.
    searched = client.get("/bank/?q=T23-00&sort=code").get_data(as_text=True)
    expected = sorted(e.item.code for e in bank.browse(session, text="T23-00"))
    assert expected and _codes(searched) == expected[:PAGE_SIZE]


def test_sorting_by_exposure_and_nulls_last(session):
    page = bank.browse_page(session, sort="shown", descending=True, limit=5, shown={1: 3, 2: 9})
    assert [e.item.id for e in page.entries[:2]] == [2, 1] and page.total == session.scalar(select(func.count(Item.id)))
    with pytest.raises(InvalidInput):
        bank.browse_page(session, sort="stem")


def test_one_limit_for_design_studies_on_the_page_and_in_the_service(client, session, program, clock):
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    page = client.get("/bank/studies").get_data(as_text=True)
    assert f"between {MIN_CANDIDATES} and {WEB_MAX_CANDIDATES:,} here" in page
    assert f'min="{MIN_CANDIDATES}" max="{WEB_MAX_CANDIDATES}"' in page
    token = csrf_token(client, "/bank/studies")
    for candidates in ("10", str(WEB_MAX_CANDIDATES + 1)):
        refused = client.post("/bank/studies", data={"csrf_token": token, "candidates": candidates, "pool": "bank",
                                                     "forms": "5", "design": ["loft"]})
        assert refused.status_code == 422
        assert (f"Simulate between {MIN_CANDIDATES} and {WEB_MAX_CANDIDATES:,} candidates here"
                in refused.get_data(as_text=True))
    with pytest.raises(StudyError, match=f"between {MIN_CANDIDATES} and {WEB_MAX_CANDIDATES:,} candidates here"):
        run_study(session, program, candidates=WEB_MAX_CANDIDATES + 1, max_candidates=WEB_MAX_CANDIDATES,
                  now=clock.now, **PSY)
    with pytest.raises(StudyError, match=f"between {MIN_CANDIDATES} and {MAX_CANDIDATES:,} candidates.$"):
        run_study(session, program, candidates=MAX_CANDIDATES + 1, now=clock.now, **PSY)


def test_the_item_page_says_why_an_item_cannot_be_edited(app, client, session):
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    operational = session.scalar(select(Item.code).where(Item.status == "operational").order_by(Item.code))
    pretest = session.scalar(select(Item.code).where(Item.status == "pretest").order_by(Item.code))
    with app.test_request_context("/", headers={"Cookie": "cbt_language=en"}):
        from delivery.web.i18n import user_message

        assert "Write a new draft item instead" in user_message(bank.edit_refusal(bank.entry(session, operational).item))
        assert "is in pretest" in user_message(bank.edit_refusal(bank.entry(session, pretest).item))
    with app.test_request_context("/", headers={"Cookie": "cbt_language=ja"}):
        from delivery.web.i18n import user_message

        assert "編集できません" in user_message(bank.edit_refusal(bank.entry(session, operational).item))
    # The view hands the page the service's refusal; the edit itself is refused with the same words.
    captured = []
    from flask import template_rendered

    def keep(sender, template, context, **extra):
        captured.append(context)
    template_rendered.connect(keep, app)
    try:
        shown = client.get(f"/bank/items/{operational}")
        assert shown.status_code == 200
        page = shown.get_data(as_text=True)
        assert '<p class="edit-refusal">' in page and "Write a new draft item instead" in page
        assert "Edit the content (makes a new version)" not in page and "staff-wide" in page
    finally:
        template_rendered.disconnect(keep, app)
    context = next(c for c in captured if "edit_refusal" in c)
    assert context["editable"] is False and "Write a new draft item instead" in context["edit_refusal"]


def test_the_pages_read_japanese_by_default(client, session):
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    client.delete_cookie("cbt_language")
    for path, words in (("/bank/", ["項目バンク", "絞り込む", "出題数"]),
                        ("/bank/statistics", ["露出と統計", "識別力", "困難度", "当て推量"]),
                        ("/bank/calibration", ["事前テスト項目の較正", "ドリフト監視"]),
                        ("/bank/forms", ["事前組版フォーム"]), ("/bank/studies", ["デザイン研究"]),
                        ("/bank/operations/", ["運用統計"]), ("/bank/rescoring/", ["再採点"]),
                        ("/bank/enemies", ["排他セット"]), ("/bank/exchange", ["インポート・エクスポート"])):
        page = client.get(path).get_data(as_text=True)
        assert '<html lang="ja"' in page, path
        for word in words:
            assert word in page, (path, word)


def test_the_item_statistics_are_paged_with_their_filters_kept(client, session):
    login_staff(client, "psychometrician", "psychometrician-demo-pass")
    operational = session.scalar(select(func.count(Item.id)).where(Item.status == "operational"))
    first = client.get("/bank/statistics?status=operational").get_data(as_text=True)
    assert len(_codes(first)) == PAGE_SIZE and f"Items 1–{PAGE_SIZE} of {operational}" in first
    assert 'href="/bank/statistics?page=2&amp;status=operational"' in first
    pages = -(-operational // PAGE_SIZE)
    last = client.get(f"/bank/statistics?status=operational&page={pages}").get_data(as_text=True)
    assert len(_codes(last)) == operational - (pages - 1) * PAGE_SIZE
    assert client.get(f"/bank/statistics?page={pages + 2}").status_code == 404
