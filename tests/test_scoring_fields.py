"""Field-score methods: the program file's [scoring] field_method and field_correlation, and the
scoring service's use of them (multidimensional EAP, augmented WLE, separate)."""
from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pytest

import engine
from itembank.program import PROGRAMS_DIR, ProgramError, parse_program
from scoring.batch import AnswerSheet, VersionTable, score_sheet
from scoring.rules import ScoringRule, rule_of_program

FIELDS = ("strategy", "management", "technology")


def sample_data() -> dict:
    return tomllib.loads((PROGRAMS_DIR / "it-passport.toml").read_text())


def with_scoring(**changes) -> dict:
    data = sample_data()
    data["scoring"].update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del data["scoring"][key]
    return data


def test_a_common_correlation_becomes_the_matrix_and_separate_is_the_default():
    program = parse_program(with_scoring(field_method="multidimensional_eap", field_correlation=0.85), "p.toml")
    assert program.scoring.field_method == "multidimensional_eap"
    assert program.scoring.field_correlation == ((1.0, 0.85, 0.85), (0.85, 1.0, 0.85), (0.85, 0.85, 1.0))
    matrix = [[1, 0.8, 0.7], [0.8, 1, 0.75], [0.7, 0.75, 1]]
    program = parse_program(with_scoring(field_method="augmented", field_correlation=matrix), "p.toml")
    assert program.scoring.field_correlation == tuple(tuple(float(v) for v in row) for row in matrix)
    plain = parse_program(with_scoring(field_method=None, field_correlation=None), "p.toml")
    assert (plain.scoring.field_method, plain.scoring.field_correlation) == ("separate", None)


@pytest.mark.parametrize("changes, message", [
    ({"field_method": "borrowed"}, "field_method must be one of separate, multidimensional_eap, augmented, "
                                   "got 'borrowed'"),
    ({"field_method": "multidimensional_eap", "field_correlation": None}, "needs field_correlation"),
    ({"field_method": "separate", "field_correlation": 0.9}, "used only by the field methods"),
    ({"field_method": "augmented", "field_correlation": "high"}, "a number or a 3 x 3 matrix"),
    ({"field_method": "augmented", "field_correlation": [[1, 0.5], [0.5, 1]]}, "a number or a 3 x 3 matrix"),
    ({"field_method": "augmented", "field_correlation": 1.0}, "strictly between -1 and 1"),
    ({"field_method": "augmented", "field_correlation": [[1, 0.5, 0.5], [0.4, 1, 0.5], [0.5, 0.5, 1]]},
     "symmetric"),
    ({"field_method": "augmented", "field_correlation": [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]},
     "not positive definite"),
    ({"field_method": "multidimensional_eap", "field_correlation": True}, "a number or a 3 x 3 matrix"),
])
def test_bad_field_settings_name_what_is_wrong(changes, message):
    with pytest.raises(ProgramError, match=message) as raised:
        parse_program(with_scoring(**changes), "broken.toml")
    assert raised.value.template != raised.value.message  # a template with its values (translatable)
    assert "broken.toml: [scoring]" in str(raised.value)


def test_the_sample_programs_field_method_is_set():
    program = parse_program(sample_data(), "it-passport.toml")
    assert program.scoring.field_method in ("separate", "multidimensional_eap", "augmented")


def rule_with(program, field_method: str, correlation=None, method: str = "eap") -> ScoringRule:
    rule = rule_of_program(program)
    corr = None if correlation is None else tuple(map(tuple, correlation))
    return dataclasses.replace(rule, settings=dataclasses.replace(
        rule.settings, method=method, field_method=field_method, field_correlation=corr))


@pytest.fixture(scope="module")
def sittings():
    rng = np.random.default_rng(18)
    items = engine.simulate_items(30, "3pl", rng)
    field = np.repeat([0, 1, 2], [10, 8, 12])
    x = engine.simulate_responses(rng.normal(size=40), items, rng)
    x[0] = 0  # a weak candidate: everything wrong
    x[1, :5] = -1  # some items not presented
    sheet = AnswerSheet.of_responses(x, np.array(FIELDS)[field])
    return items, field, x, sheet


CORR = np.array([[1, 0.8, 0.7], [0.8, 1, 0.75], [0.7, 0.75, 1]])


def test_multidimensional_eap_fields_and_the_eap_total_through_the_service(program, sittings):
    items, field, x, sheet = sittings
    scores = score_sheet(rule_with(program, "multidimensional_eap", CORR), VersionTable.of_items(items), sheet)
    joint = engine.multidimensional_eap(x, items, field, CORR)
    total = engine.eap(x, items, n_points=61, bound=6.0)
    np.testing.assert_allclose(scores.theta[:, 1:], joint.theta, atol=1e-12)
    np.testing.assert_allclose(scores.se[:, 1:], joint.se, atol=1e-12)
    np.testing.assert_allclose(scores.theta[:, 0], total.theta, atol=1e-5)  # EAP in float32 products
    assert scores.columns == ("total",) + FIELDS


def test_augmented_fields_are_the_wle_augmented_by_the_others(program, sittings):
    items, field, x, sheet = sittings
    scores = score_sheet(rule_with(program, "augmented", CORR), VersionTable.of_items(items), sheet)
    wle = engine.wle_estimate(x, items, subsets=field[None, :] == np.arange(3)[:, None])
    expected = engine.augmented_subscores(wle.theta, wle.se, CORR)
    np.testing.assert_allclose(scores.theta[:, 1:], expected.theta, atol=1e-12)
    np.testing.assert_allclose(scores.se[:, 1:], expected.se, atol=1e-12)


def test_borrowing_strength_keeps_a_weak_candidates_total_within_the_fields(program, sittings):
    # Separate EAPs shrink each short field towards the mean more than the total: the weak
    # candidate's total comes out below all three fields. Borrowing strength removes it.
    items, _, _, sheet = sittings
    table = VersionTable.of_items(items)
    separate = score_sheet(rule_with(program, "separate"), table, sheet).scale[0]
    joint = score_sheet(rule_with(program, "multidimensional_eap", CORR), table, sheet).scale[0]
    assert separate[0] < separate[1:].min()
    assert separate[1:].min() - separate[0] > 2 * (joint[1:].min() - joint[0])  # the gap more than halved
    high = np.full((3, 3), 0.9) + 0.1 * np.eye(3)
    joint = score_sheet(rule_with(program, "multidimensional_eap", high), table, sheet).scale[0]
    assert joint[1:].min() - joint[0] <= 2 < separate[1:].min() - separate[0]  # all wrong: 1 point below


def test_rules_keep_their_digest_and_round_trip_their_field_method(program):
    separate = rule_with(program, "separate")
    assert "field_method" not in separate.as_json()  # rules stored before field methods keep their version
    assert ScoringRule.from_json(separate.as_json()) == separate
    joint = rule_with(program, "multidimensional_eap", CORR)
    stored = joint.as_json()
    assert stored["field_method"] == "multidimensional_eap" and stored["field_correlation"][0] == [1.0, 0.8, 0.7]
    assert ScoringRule.from_json(stored) == joint
    assert joint.digest != separate.digest
