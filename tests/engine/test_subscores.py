"""Multidimensional EAP subscores: brute force on the product grid, the uncorrelated
case, and borrowing strength (coherence with the total)."""
import itertools

import numpy as np
import pytest

import engine
from engine.subscores import multidimensional_eap


def test_multidimensional_eap_equals_brute_force_on_the_product_grid():
    rng = np.random.default_rng(1)
    items = engine.simulate_items(9, "3pl", rng)
    field = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    corr = np.array([[1, 0.7, 0.5], [0.7, 1, 0.6], [0.5, 0.6, 1]])
    x = engine.simulate_responses(rng.normal(size=4), items, rng)
    x[1, 4] = -1
    est = multidimensional_eap(x, items, field, corr, n_points=11, bound=4.0)
    unit = np.linspace(-4, 4, 11)
    precision = np.linalg.inv(corr)
    for i in range(4):
        total, first, second = 0.0, np.zeros(3), np.zeros((3, 3))
        for point in itertools.product(unit, repeat=3):  # 1,331 nodes, by hand
            t = np.array(point)
            p = engine.probability(t[field][:, None].ravel(), items).diagonal()
            seen = x[i] >= 0
            like = np.prod(np.where(x[i][seen] == 1, p[seen], 1 - p[seen]))
            w = np.exp(-0.5 * t @ precision @ t) * like
            total += w
            first += w * t
            second += w * np.outer(t, t)
        mean = first / total
        np.testing.assert_allclose(est.theta[i], mean, atol=1e-10)
        np.testing.assert_allclose(est.covariance[i], second / total - np.outer(mean, mean), atol=1e-10)


def test_uncorrelated_fields_give_each_fields_own_eap():
    rng = np.random.default_rng(2)
    items = engine.simulate_items(12, "2pl", rng)
    field = np.repeat([0, 1], 6)
    x = engine.simulate_responses(rng.normal(size=200), items, rng)
    est = multidimensional_eap(x, items, field, np.eye(2), n_points=61, bound=6.0)
    for f in range(2):
        own = engine.eap(x[:, field == f], items.subset(field == f), n_points=61, bound=6.0)
        np.testing.assert_allclose(est.theta[:, f], own.theta, atol=1e-5)
        np.testing.assert_allclose(est.se[:, f], own.se, atol=1e-5)


def test_correlated_prior_borrows_strength():
    # Abilities correlated .8: field EAPs that borrow from the other fields are closer
    # to the truth (smaller RMSE) and have smaller posterior SDs than separate EAPs.
    rng = np.random.default_rng(3)
    corr = np.array([[1, 0.8, 0.8], [0.8, 1, 0.8], [0.8, 0.8, 1]])
    theta = rng.multivariate_normal(np.zeros(3), corr, size=3000)
    items = engine.simulate_items(24, "3pl", rng)
    field = np.repeat([0, 1, 2], 8)
    x = np.column_stack([engine.simulate_responses(theta[:, f], items.subset(field == f), rng) for f in range(3)])
    joint = multidimensional_eap(x, items, field, corr)
    separate = np.column_stack([engine.eap(x[:, field == f], items.subset(field == f)).theta for f in range(3)])
    rmse_joint = np.sqrt(np.mean((joint.theta - theta) ** 2, axis=0))
    rmse_separate = np.sqrt(np.mean((separate - theta) ** 2, axis=0))
    assert np.all(rmse_joint < 0.95 * rmse_separate)
    with pytest.raises(ValueError, match="field"):
        multidimensional_eap(x, items, field[:-1], corr)
