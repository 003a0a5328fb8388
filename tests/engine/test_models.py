"""Model functions against their closed forms and brute force."""
import numpy as np
import pytest

import engine
from engine import ItemParameters

THETA = np.linspace(-4, 4, 17)


def three_pl(n=7, seed=0):
    return engine.simulate_items(n, "3pl", seed)


def test_probability_is_the_3pl_formula_without_the_1_7_constant():
    items = ItemParameters([1.2], [0.5], [0.2])
    expected = 0.2 + 0.8 / (1 + np.exp(-1.2 * (THETA - 0.5)))
    np.testing.assert_allclose(engine.probability(THETA, items)[:, 0], expected, rtol=1e-14)


def test_four_pl_upper_asymptote():
    items = ItemParameters([1.0], [0.0], [0.1], d=[0.9])
    p = engine.probability(np.array([-40.0, 0.0, 40.0]), items)[:, 0]
    np.testing.assert_allclose(p, [0.1, 0.5, 0.9], atol=1e-12)


def test_slope_intercept_form_round_trips():
    items = ItemParameters.from_slope_intercept([0.988, 1.081], [1.856, 0.808])
    np.testing.assert_allclose(items.intercept, [1.856, 0.808])
    np.testing.assert_allclose(items.b, [-1.856 / 0.988, -0.808 / 1.081])


def test_derivative_and_information_match_numerical_derivatives():
    items = three_pl()
    h = 1e-6
    numeric = (engine.probability(THETA + h, items) - engine.probability(THETA - h, items)) / (2 * h)
    np.testing.assert_allclose(engine.probability_derivative(THETA, items), numeric, rtol=1e-6, atol=1e-10)
    p = engine.probability(THETA, items)
    birnbaum = items.a**2 * (p - items.c) ** 2 * (1 - p) / ((1 - items.c) ** 2 * p)
    np.testing.assert_allclose(engine.item_information(THETA, items), birnbaum, rtol=1e-10)


def test_test_information_se_and_characteristic_curve():
    items = three_pl()
    info = engine.item_information(THETA, items).sum(axis=1)
    np.testing.assert_allclose(engine.test_information(THETA, items), info)
    np.testing.assert_allclose(engine.standard_error(THETA, items), 1 / np.sqrt(info))
    np.testing.assert_allclose(engine.test_characteristic(THETA, items), engine.probability(THETA, items).sum(axis=1))


def test_log_likelihood_matches_brute_force_and_ignores_missing():
    items = three_pl()
    rng = np.random.default_rng(1)
    x = engine.simulate_responses(rng.normal(size=50), items, rng)
    x[rng.random(x.shape) < 0.3] = engine.MISSING
    p = engine.probability(THETA, items)
    brute = np.array([[np.sum(np.where(row == 1, np.log(pq), np.where(row == 0, np.log1p(-pq), 0.0)))
                       for pq in p] for row in x])
    np.testing.assert_allclose(engine.log_likelihood(x, THETA, items), brute, rtol=1e-10)
    # chunking changes nothing
    np.testing.assert_allclose(engine.log_likelihood(x, THETA, items, chunk_size=7), brute, rtol=1e-10)


def test_invalid_codes_are_rejected():
    with pytest.raises(ValueError, match="only 1"):
        engine.eap(np.array([[2, 0]]), ItemParameters([1, 1], [0, 0], [0, 0]))
