"""Batch rescoring reproduces every result; campaigns correct a key or withdraw an item."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from centers.accounts import create_staff
from delivery import rescoring
from delivery.models import Sitting, SittingItem
from delivery.sittings import scored_answers
from itembank.content import unpack
from itembank.models import Item, ItemVersion
from persistence.audit import AuditEvent
from persistence.errors import DomainError
from scoring import campaigns
from scoring.models import Certificate, ScoreResult
from scoring.results import rescore, same_scores
from tests.helpers import api, booked_candidate, login_candidate, start_sitting


def finish_sittings(app, session, program, clock, n: int) -> list[ScoreResult]:
    ids = []
    for k in range(n):
        client = app.test_client()
        booked = booked_candidate(session, program, clock.now)
        login_candidate(client, booked)
        state = start_sitting(client)
        for item in state["items"]:
            if (item["position"] * (k + 3)) % 5:
                api(client, "PUT", f"/api/sitting/answers/{item['position']}", {"option": (item["position"] + k) % 4})
        api(client, "POST", "/api/sitting/finish", {})
        ids.append(booked.booking_id)
    session.expire_all()
    return list(session.scalars(select(ScoreResult).join(Sitting, Sitting.id == ScoreResult.sitting_id)
                                .where(Sitting.booking_id.in_(ids)).order_by(ScoreResult.id)))


def test_a_batch_rescore_reproduces_the_scores_given_at_the_end_of_each_sitting(app, session, program, clock):
    results = finish_sittings(app, session, program, clock, 8)
    report = rescoring.check_reproduction(session, results)
    assert report.all_identical, report.mismatched_result_ids
    assert report.largest_theta_difference < 1e-9


def most_seen_scored_version(session, results) -> ItemVersion:
    seen = Counter(session.scalars(select(SittingItem.item_version_id).where(
        SittingItem.sitting_id.in_([r.sitting_id for r in results]), SittingItem.is_pretest.is_(False))))
    return session.get(ItemVersion, seen.most_common(1)[0][0])


@pytest.fixture
def second_psychometrician(session):
    import uuid
    name = f"psy-{uuid.uuid4().hex[:6]}"
    create_staff(session, username=name, display_name="Second Psychometrician", password="second-psy-password",
                 role="psychometrician")
    session.commit()
    return name


def test_a_key_correction_shows_its_effect_then_applies_by_a_second_person(app, session, program, clock,
                                                                           second_psychometrician):
    results = finish_sittings(app, session, program, clock, 6)
    version = most_seen_scored_version(session, results)
    code = session.get(Item, version.item_id).code
    old_key = unpack(version.content).key
    new_key = (old_key + 1) % 4
    # Certificates issued before the correction are superseded if their result moves.
    from scoring import certificates
    for result in results:
        certificates.issue(session, result, holder_name="X", sat_on=clock.now.date(),
                           directory=certificates.key_directory(), now=clock.now)
    session.commit()

    campaign = rescoring.propose_campaign(
        session, [campaigns.Amendment(code, version.version, "key", new_key)],
        reason="The published key was wrong", actor="psychometrician", now=clock.now)
    session.commit()
    affected = rescoring.affected_results(session, [version.id])
    assert affected
    # Every change in the table is what scoring the sitting with the corrected key gives.
    for change in campaign.changes:
        result = session.get(ScoreResult, change.score_result_id)
        chosen = {i.item_version_id: i.chosen_option for i in session.get(Sitting, result.sitting_id).items}
        assert chosen[version.id] in (old_key, new_key)  # only these candidates can move
        assert change.before == campaigns.summary_of(result)
    moved = {c.score_result_id for c in campaign.changes}
    chose_either = {r.id for r in affected
                    if {i.item_version_id: i.chosen_option for i in session.get(Sitting, r.sitting_id).items}[version.id]
                    in (old_key, new_key)}
    assert moved <= chose_either

    with pytest.raises(DomainError, match="another psychometrician"):
        rescoring.apply_campaign(session, program, campaign.id, actor="psychometrician", now=clock.now)
    session.rollback()
    changed = rescoring.apply_campaign(session, program, campaign.id, actor=second_psychometrician, now=clock.now)
    session.commit()
    assert changed == len(moved)
    session.expire_all()
    for change in campaign.changes:
        result = session.get(ScoreResult, change.score_result_id)
        assert campaigns.summary_of(result) == change.after
        assert result.amendment_ids == [campaign.amendments[0].id]
        # Rescoring the stored answers with the recorded amendments gives the new figures.
        assert same_scores(rescore(session, result, scored_answers(session, session.get(Sitting, result.sitting_id))), result)
        assert session.scalar(select(Certificate).where(Certificate.score_result_id == result.id,
                                                        Certificate.superseded_at.is_(None))) is None
    assert rescoring.check_reproduction(session, results).all_identical
    actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.subject == f"campaign:{campaign.id}").order_by(AuditEvent.id))]
    assert actions == ["rescoring.propose", "rescoring.apply"]


def test_withdrawing_an_item_scores_every_affected_sitting_on_one_item_fewer(app, session, program, clock,
                                                                             second_psychometrician):
    results = finish_sittings(app, session, program, clock, 4)
    version = most_seen_scored_version(session, results)
    code = session.get(Item, version.item_id).code
    campaign = rescoring.propose_campaign(session, [campaigns.Amendment(code, version.version, "withdrawn")],
                                          reason="Ambiguous stem", actor=second_psychometrician, now=clock.now)
    session.commit()
    affected = {r.id for r in rescoring.affected_results(session, [version.id])}
    rescoring.apply_campaign(session, program, campaign.id, actor="psychometrician", now=clock.now)
    session.commit()
    session.expire_all()
    for result_id in affected:
        assert session.get(ScoreResult, result_id).scored_items == 91
    # The withdrawn item leaves the operational pool, so no later sitting draws it.
    assert session.get(Item, version.item_id).status == "retired"


@pytest.mark.parametrize("amendment, message", [
    (campaigns.Amendment("S01-001", 99, "key", 1), "no version 99"),
    (campaigns.Amendment("NOPE", 1, "key", 1), "no item NOPE"),
    (campaigns.Amendment("S01-001", 1, "key", 7), "one of the 4 options"),
    (campaigns.Amendment("S01-001", 1, "swap"), "unknown amendment"),
])
def test_a_bad_amendment_is_refused_with_a_reason(session, clock, amendment, message):

    with pytest.raises(DomainError, match=message):
        rescoring.propose_campaign(session, [amendment], reason="test", actor="psychometrician", now=clock.now)
    session.rollback()


def test_campaigns_in_the_web_area_and_the_superseded_certificate(app, session, program, clock,
                                                                  second_psychometrician):
    from tests.helpers import csrf_token, login_staff

    results = finish_sittings(app, session, program, clock, 3)
    # A result with a field estimate off the estimator's lower bound (a WLE of a
    # chance-level field can sit there, and one more right answer leaves it there).
    subject = next((r for r in results if any(r.thetas[f] > -5.99 for f in program.field_codes)), results[0])
    before = {"thetas": dict(subject.thetas)}
    candidate = app.test_client()
    # That result's certificate, as its candidate would print it.
    sitting = session.get(Sitting, subject.sitting_id)
    from scoring import certificates
    certificate = certificates.issue(session, subject, holder_name="X", sat_on=clock.now.date(),
                                     directory=certificates.key_directory(), now=clock.now)
    session.commit()
    seen = {i.item_version_id: i.chosen_option for i in sitting.items if not i.is_pretest}
    # An answered item of a field whose estimate is off that bound.
    field_of = {i.item_version_id: i.field for i in sitting.items}
    movable = [v for v, chosen in seen.items() if chosen is not None and subject.thetas[field_of[v]] > -5.99]
    version = session.get(ItemVersion, (movable or [v for v, chosen in seen.items() if chosen is not None])[0])
    item = session.get(Item, version.item_id)
    # Make that candidate's answer the key, so that their result surely moves.
    new_key = seen[version.id]
    if new_key == unpack(version.content).key:
        new_key = (new_key + 1) % 4

    proposer, approver = app.test_client(), app.test_client()
    login_staff(proposer, "psychometrician", "psychometrician-demo-pass")
    login_staff(approver, second_psychometrician, "second-psy-password")
    proposed = proposer.post("/bank/rescoring/", data={
        "csrf_token": csrf_token(proposer), "code": item.code, "version": str(version.version), "kind": "key",
        "key": "ABCD"[new_key], "reason": "Key misprinted"})
    assert proposed.status_code == 302
    page_url = proposed.headers["Location"]
    page = proposer.get(page_url).get_data(as_text=True)
    assert "Another psychometrician applies" in page and "Apply to every result" not in page
    assert approver.post(page_url + "/apply", data={"csrf_token": csrf_token(approver)}).status_code == 302
    assert "applied" in approver.get(page_url).get_data(as_text=True)

    check = candidate.get("/verify", query_string={"code": certificate.code}).get_data(as_text=True)
    session.expire_all()
    assert session.get(ScoreResult, subject.id).thetas != before["thetas"]
    assert "Genuine certificate" in check and 'id="superseded"' in check

    bad = proposer.post("/bank/rescoring/", data={"csrf_token": csrf_token(proposer), "code": "NOPE",
                                                  "version": "1", "kind": "key", "key": "A", "reason": "x"})
    assert bad.status_code == 404 and "no item NOPE" in bad.get_data(as_text=True)


def test_cbt_rescoring_check_reports_reproduction(app, session, program, clock):
    from click.testing import CliRunner

    from delivery.cli import main as cbt

    finish_sittings(app, session, program, clock, 2)
    url = session.get_bind().url.render_as_string(hide_password=False)
    outcome = CliRunner().invoke(cbt, ["rescoring", "check"], env={"CBT_DATABASE_URL": url})
    assert outcome.exit_code == 0, outcome.output
    assert "reproduced exactly" in outcome.output
