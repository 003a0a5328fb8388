"""Classical statistics, distractors and Mantel-Haenszel DIF."""
import numpy as np
import pytest

import engine
from engine import classical_statistics, distractor_analysis, mantel_haenszel


def test_classical_statistics_by_their_definitions():
    rng = np.random.default_rng(1)
    items = engine.simulate_items(12, "2pl", rng)
    x = engine.simulate_responses(rng.normal(size=500), items, rng)
    stats = classical_statistics(x)
    total = x.sum(axis=1)
    np.testing.assert_allclose(stats.p_value, x.mean(axis=0))
    np.testing.assert_allclose(stats.point_biserial, [np.corrcoef(x[:, j], total)[0, 1] for j in range(12)])
    np.testing.assert_allclose(stats.item_rest, [np.corrcoef(x[:, j], total - x[:, j])[0, 1] for j in range(12)])
    k, p = 12, x.mean(axis=0)
    assert stats.kr20 == pytest.approx(k / (k - 1) * (1 - np.sum(p * (1 - p)) / total.var()))


def test_kr20_equals_cronbach_alpha_on_a_small_hand_example():
    x = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]])
    # item variances .1875, .25, .1875; total scores 3, 2, 1, 0 -> variance 1.25
    assert classical_statistics(x).kr20 == pytest.approx(1.5 * (1 - 0.625 / 1.25))


def test_missing_cells_are_left_out_of_item_statistics():
    x = np.array([[1, -1], [0, 1], [1, 0], [-1, 1]])
    stats = classical_statistics(x)
    np.testing.assert_allclose(stats.p_value, [2 / 3, 2 / 3])
    np.testing.assert_array_equal(stats.n_presented, [3, 3])


def test_distractor_analysis():
    choices = np.array([[0, 1], [0, 1], [1, 2], [2, -1], [0, 3]])
    key = np.array([0, 1])
    result = distractor_analysis(choices, key, n_options=4)
    np.testing.assert_allclose(result.proportion[0], [0.6, 0.2, 0.2, 0.0])
    np.testing.assert_allclose(result.proportion[1], [0.0, 0.5, 0.25, 0.25])
    # totals: 2, 2, 0, 0, 1 -> choosers of option 0 on item 0 average 5/3
    assert result.mean_total[0, 0] == pytest.approx(5 / 3)
    assert result.point_biserial[0, 0] > 0 > result.point_biserial[0, 1]


def test_mantel_haenszel_on_a_hand_computed_table():
    # One stratum: reference 30 right / 10 wrong, focal 20 right / 20 wrong.
    # alpha = (30*20/80) / (10*20/80) = 3; delta = -2.35 ln 3.
    ref = [1] * 30 + [0] * 10
    foc = [1] * 20 + [0] * 20
    x = np.array([[v, 1] for v in ref + foc])  # second item constant, one stratum each
    focal = np.array([False] * 40 + [True] * 40)
    result = mantel_haenszel(x, focal, matching=np.zeros(80))
    assert result.alpha[0] == pytest.approx(3.0)
    assert result.delta[0] == pytest.approx(-2.35 * np.log(3.0))
    # MH chi-square: E(A) = 40*50/80 = 25, Var(A) = 40*40*50*30/(80^2*79) ; (|30-25|-.5)^2/Var
    var_a = 40 * 40 * 50 * 30 / (80**2 * 79)
    assert result.chi_square[0] == pytest.approx(4.5**2 / var_a)


def test_mantel_haenszel_finds_simulated_dif():
    # Item 0 is 1 logit harder for the focal group (D ~ -2.35); the others have no DIF.
    rng = np.random.default_rng(5)
    items = engine.simulate_items(30, "2pl", rng)
    theta = rng.normal(size=6000)
    focal = rng.random(6000) < 0.5
    x = engine.simulate_responses(theta, items, rng)
    harder = engine.ItemParameters(items.a[:1], items.b[:1] + 1.0, items.c[:1])
    x[focal, 0] = engine.simulate_responses(theta[focal], harder, rng)[:, 0]
    result = mantel_haenszel(x, focal)
    assert result.ets_class[0] == "C" and result.delta[0] < -1.5
    # Without DIF, |D| / SE ~ N(0, 1): class C should not occur, A should dominate.
    assert np.all(result.ets_class[1:] != "C")
    assert np.mean(result.ets_class[1:] == "A") > 0.8
