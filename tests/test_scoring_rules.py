"""Scoring rules are versioned, results record theirs, and rescoring reproduces a result."""
from __future__ import annotations

import math
import tomllib

from sqlalchemy import select

from delivery.models import Sitting
from delivery.sittings import scored_answers
from itembank.program import PROGRAMS_DIR, parse_program
from scoring.models import ScoreResult
from scoring.results import rescore, same_scores, score_answers
from scoring.rules import current_rule_version, rule_of_program
from tests.helpers import api, booked_candidate, login_candidate, start_sitting


def finished_sitting(client, session, program, clock) -> tuple[Sitting, ScoreResult]:
    booked = booked_candidate(session, program, clock.now)
    login_candidate(client, booked)
    state = start_sitting(client)
    for item in state["items"][::3]:
        api(client, "PUT", f"/api/sitting/answers/{item['position']}", {"option": item["position"] % 4})
    api(client, "POST", "/api/sitting/finish", {})
    session.expire_all()
    sitting = session.scalar(select(Sitting).where(Sitting.booking_id == booked.booking_id))
    return sitting, session.scalar(select(ScoreResult).where(ScoreResult.sitting_id == sitting.id))


def test_a_changed_rule_is_a_new_version_and_old_results_keep_theirs(client, session, program, clock):
    sitting, result = finished_sitting(client, session, program, clock)
    assert result.rule_version.definition == rule_of_program(program).as_json()

    data = tomllib.loads((PROGRAMS_DIR / "it-passport.toml").read_text())
    data["scale"]["slope"] = 120.0
    stricter = parse_program(data, "changed.toml")
    new_version = current_rule_version(session, stricter)
    session.commit()
    assert new_version.id != result.rule_version_id
    assert new_version.version == result.rule_version.version + 1
    assert current_rule_version(session, stricter).id == new_version.id  # stored once

    again = rescore(session, result, scored_answers(session, sitting))
    assert same_scores(again, result)
    under_new_rule = score_answers(session, new_version, scored_answers(session, sitting))
    theta = result.thetas["total"]
    assert under_new_rule.total_score == max(0, min(1000, math.floor(620 + 120 * theta + 0.5)))
    assert under_new_rule.rule_version_id == new_version.id


def test_rescoring_from_stored_responses_reproduces_every_digit(app, session, program, clock):
    results = [finished_sitting(app.test_client(), session, program, clock) for _ in range(3)]
    for sitting, result in results:
        again = rescore(session, result, scored_answers(session, sitting))
        assert same_scores(again, result), (again.thetas, result.thetas)
