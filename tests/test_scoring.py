"""Scoring against values computed by hand, independently of the engine."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

import engine
from itembank.program import PassRule, ScaleTransformation
from scoring.batch import AnswerSheet, ScoringError, VersionTable, score_sheet
from scoring.rules import rule_of_program
from scoring.scale import to_scale

# A tiny item set: three 3PL items, two strategy and one technology.
A = [1.2, 0.8, 1.5]
B = [-0.5, 0.3, 1.0]
C = [0.2, 0.15, 0.25]


def p3(theta, a, b, c):
    return c + (1 - c) / (1 + math.exp(-a * (theta - b)))


def posterior_mean_and_sd(pattern, items):
    """EAP by adaptive integration over the N(0, 1) prior: the textbook definition."""

    def likelihood(theta):
        value = math.exp(-theta * theta / 2)
        for x, (a, b, c) in zip(pattern, items):
            p = p3(theta, a, b, c)
            value *= p if x == 1 else 1 - p
        return value

    norm = integrate.quad(likelihood, -12, 12, epsabs=1e-13)[0]
    mean = integrate.quad(lambda t: t * likelihood(t), -12, 12, epsabs=1e-13)[0] / norm
    second = integrate.quad(lambda t: t * t * likelihood(t), -12, 12, epsabs=1e-13)[0] / norm
    return mean, math.sqrt(second - mean * mean)


@pytest.mark.parametrize("pattern", [(1, 1, 1), (0, 0, 0), (1, 0, 1), (0, 1, 0)])
def test_eap_matches_direct_integration(pattern):
    items = engine.ItemParameters(A, B, C)
    estimate = engine.eap(np.array([pattern]), items)
    mean, sd = posterior_mean_and_sd(pattern, list(zip(A, B, C)))
    assert estimate.theta[0] == pytest.approx(mean, abs=1e-6)
    assert estimate.se[0] == pytest.approx(sd, abs=1e-6)


def test_hand_computed_single_item_posterior():
    # One Rasch item at b = 0 answered correctly under a N(0, 1) prior: the posterior is
    # 2 phi(t) sigma(t), so its mean is 2 E[t sigma(t)] = 2 E[sigma'(t)] by Stein's lemma,
    # 2 E[sigma(t)(1 - sigma(t))]: a one-dimensional integral done here by hand.
    estimate = engine.eap(np.array([[1]]), engine.ItemParameters([1.0], [0.0], [0.0]))
    density = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    sigma = lambda t: 1 / (1 + math.exp(-t))
    expected = 2 * integrate.quad(lambda t: sigma(t) * (1 - sigma(t)) * density(t), -12, 12)[0]
    assert estimate.theta[0] == pytest.approx(expected, abs=1e-6)
    assert round(expected, 3) == 0.413


def hand_made_table(a, b, c) -> VersionTable:
    """Versions 1..n with the key at option 0."""
    n = len(a)
    return VersionTable(np.arange(1, n + 1), np.array(a, float), np.array(b, float), np.array(c, float),
                        np.zeros(n, dtype=int), np.zeros(n, dtype=bool))


def sheet_of(rows: list[list[int]], fields) -> AnswerSheet:
    """One sitting per row of 1 (right: option 0) / 0 (wrong: option 1) over versions 1..n."""
    n = len(rows[0])
    return AnswerSheet(len(rows), np.repeat(np.arange(len(rows)), n), np.tile(np.arange(1, n + 1), len(rows)),
                       np.tile(fields, len(rows)), np.where(np.ravel(rows) == 1, 0, 1))


def test_total_and_field_scores_come_from_their_own_items(program):
    import dataclasses

    # EAP by textbook integration (the sample program scores by WLE, which needs items in every field).
    rule = rule_of_program(program)
    rule = dataclasses.replace(rule, settings=dataclasses.replace(rule.settings, method="eap"))
    fields = np.array(["strategy", "strategy", "technology"])
    scores = score_sheet(rule, hand_made_table(A, B, C), sheet_of([[1, 0, 1]], fields))
    total = posterior_mean_and_sd((1, 0, 1), list(zip(A, B, C)))[0]
    strategy = posterior_mean_and_sd((1, 0), list(zip(A[:2], B[:2], C[:2])))[0]
    technology = posterior_mean_and_sd((1,), [(A[2], B[2], C[2])])[0]
    assert scores.columns == ("total", "strategy", "management", "technology")
    np.testing.assert_allclose(scores.theta[0], [total, strategy, 0.0, technology], atol=1e-6)
    # A field with no items keeps the prior: theta 0, i.e. the scale's intercept.
    assert scores.scale[0, 2] == 620
    assert scores.scale[0, 0] == math.floor(620 + 150 * total + 0.5)


def test_scale_rounds_half_up_and_clips():
    scale = ScaleTransformation(slope=150.0, intercept=620.0, minimum=0, maximum=1000)
    theta = np.array([-0.1, -0.13, -0.1366666667, 0.0, 10.0, -10.0, 0.5 / 150])
    # -0.13 gives 600.5, rounded up to 601; -0.13666... gives 599.4999..., rounded down.
    assert to_scale(theta, scale).tolist() == [605, 601, 599, 620, 1000, 0, 621]


def test_pass_rule_needs_the_total_and_every_field():
    rule = PassRule(total_minimum=600, field_minimum=300)
    assert rule.passes(600, {"strategy": 300, "management": 300, "technology": 300})
    assert not rule.passes(599, {"strategy": 900, "management": 900, "technology": 900})
    assert not rule.passes(900, {"strategy": 900, "management": 299, "technology": 900})


def test_score_sheet_applies_the_pass_rule_per_sitting(program):
    # Two examinees on 30 strong items per field: one right everywhere, one weak in management.
    n = 30
    table = hand_made_table(np.full(3 * n, 1.5), np.zeros(3 * n), np.full(3 * n, 0.0))
    fields = np.repeat(["strategy", "management", "technology"], n)
    strong = np.ones(3 * n, dtype=int)
    weak_management = strong.copy()
    weak_management[n : 2 * n] = 0
    scores = score_sheet(rule_of_program(program), table, sheet_of([strong.tolist(), weak_management.tolist()], fields))
    assert scores.passed.tolist() == [True, False]
    assert scores.scale[1, 2] < 300 <= scores.scale[1, 1]


@pytest.mark.parametrize("method", ["eap", "map", "ml", "wle"])
def test_the_programs_method_chooses_the_estimator(program, method):
    import dataclasses

    rule = rule_of_program(program)
    rule = dataclasses.replace(rule, settings=dataclasses.replace(rule.settings, method=method))
    fields = np.array(["strategy", "management", "technology"])
    scores = score_sheet(rule, hand_made_table(A, B, C), sheet_of([[1, 0, 1]], fields))
    items = engine.ItemParameters(A, B, C)
    direct = {"eap": engine.eap, "map": engine.map_estimate, "ml": engine.ml_estimate,
              "wle": engine.wle_estimate}[method](np.array([[1, 0, 1]]), items)
    assert scores.theta[0, 0] == pytest.approx(direct.theta[0], abs=1e-6)
    if method in ("ml", "wle"):
        with pytest.raises(ScoringError, match="management"):
            score_sheet(rule, hand_made_table(A, B, C), sheet_of([[1, 0, 1]], np.array(["strategy"] * 2 + ["technology"])))


def test_an_unknown_method_is_refused(program):
    import dataclasses

    from scoring.batch import ScoringError

    rule = rule_of_program(program)
    rule = dataclasses.replace(rule, settings=dataclasses.replace(rule.settings, method="guess"))
    with pytest.raises(ScoringError, match="not supported"):
        score_sheet(rule, hand_made_table(A, B, C), sheet_of([[1, 0, 1]], np.array(["strategy"] * 3)))
