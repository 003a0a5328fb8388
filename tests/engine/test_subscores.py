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


def _classical_scores(rng, n, sigma, error_sd):
    """x = tau + e with tau ~ N(0, sigma) and independent normal errors of the given SDs (n, F)."""
    tau = rng.multivariate_normal(np.zeros(len(sigma)), sigma, size=n)
    return tau, tau + rng.normal(size=tau.shape) * error_sd


def test_pooled_augmentation_is_wainers_regression_of_true_on_observed_scores():
    # Wainer et al.'s B = Sigma S_x^-1, computed here independently: the least-squares
    # regression of the true scores on all observed scores in a large sample, which
    # converges to Cov(tau, x) Cov(x)^-1 = Sigma (Sigma + D)^-1.
    rng = np.random.default_rng(11)
    sigma = np.array([[1.0, 0.6, 0.5], [0.6, 0.8, 0.4], [0.5, 0.4, 1.2]])
    error_sd = np.array([0.6, 0.9, 0.4])
    tau, x = _classical_scores(rng, 400_000, sigma, error_sd)
    se = np.broadcast_to(error_sd, x.shape)
    est = engine.augmented_subscores(x, se, sigma, pooled=True)
    design = np.column_stack([np.ones(len(x)), x])
    coefficients, *_ = np.linalg.lstsq(design, tau, rcond=None)  # (1 + F, F)
    regression = design @ coefficients
    assert np.max(np.abs(est.theta - regression)) < 0.02
    # The algebra exactly: B = Sigma S_x^-1 with S_x = Sigma + D, one error covariance for all.
    b = sigma @ np.linalg.inv(sigma + np.diag(error_sd**2))
    np.testing.assert_allclose(est.theta, x @ b.T, atol=1e-10)
    np.testing.assert_allclose(est.covariance[0], sigma - b @ sigma, atol=1e-12)
    # Its error covariance is the realised one.
    np.testing.assert_allclose(np.cov(est.theta - tau, rowvar=False), sigma - b @ sigma, atol=0.01)


def test_individual_augmentation_is_each_examinees_normal_posterior():
    # The conditional mean of tau given x_i in the joint normal [[S, S], [S, S + D_i]],
    # solved examinee by examinee (the independent computation), with one field unscored
    # and one with an infinite SE.
    rng = np.random.default_rng(12)
    sigma = np.array([[1.0, 0.7], [0.7, 1.0]])
    mean = np.array([0.2, -0.1])
    x = rng.normal(size=(6, 2))
    se = rng.uniform(0.3, 1.0, size=(6, 2))
    x[4, 1] = np.nan
    se[5, 0] = np.inf
    est = engine.augmented_subscores(x, se, sigma, mean)
    for i in range(6):
        seen = np.isfinite(x[i]) & np.isfinite(se[i])
        s_xx = sigma[np.ix_(seen, seen)] + np.diag(se[i, seen] ** 2)
        s_tx = sigma[:, seen]
        expected = mean + s_tx @ np.linalg.solve(s_xx, x[i, seen] - mean[seen])
        expected_cov = sigma - s_tx @ np.linalg.solve(s_xx, s_tx.T)
        np.testing.assert_allclose(est.theta[i], expected, atol=1e-12)
        np.testing.assert_allclose(est.covariance[i], expected_cov, atol=1e-12)
        np.testing.assert_allclose(est.se[i], np.sqrt(np.diag(expected_cov)), atol=1e-12)
    with pytest.raises(ValueError, match="positive definite"):
        engine.augmented_subscores(x, se, np.array([[1.0, 1.2], [1.2, 1.0]]))


def test_augmented_wle_field_scores_borrow_strength_on_a_3pl_test():
    rng = np.random.default_rng(13)
    corr = np.array([[1, 0.8, 0.8], [0.8, 1, 0.8], [0.8, 0.8, 1]])
    theta = rng.multivariate_normal(np.zeros(3), corr, size=3000)
    items = engine.simulate_items(36, "3pl", rng)
    field = np.repeat([0, 1, 2], 12)
    x = np.column_stack([engine.simulate_responses(theta[:, f], items.subset(field == f), rng) for f in range(3)])
    masks = field[None, :] == np.arange(3)[:, None]
    wle = engine.wle_estimate(x, items, subsets=masks)
    augmented = engine.augmented_subscores(wle.theta, wle.se, corr)
    rmse_wle = np.sqrt(np.mean((wle.theta - theta) ** 2, axis=0))
    rmse_augmented = np.sqrt(np.mean((augmented.theta - theta) ** 2, axis=0))
    assert np.all(rmse_augmented < 0.9 * rmse_wle)


def test_field_correlation_disattenuates_the_field_eaps():
    rng = np.random.default_rng(14)
    corr = np.array([[1, 0.85, 0.7], [0.85, 1, 0.75], [0.7, 0.75, 1]])
    theta = rng.multivariate_normal(np.zeros(3), corr, size=20_000)
    items = engine.simulate_items(60, "2pl", rng)
    field = np.repeat([0, 1, 2], 20)
    x = np.column_stack([engine.simulate_responses(theta[:, f], items.subset(field == f), rng) for f in range(3)])
    separate = engine.eap(x, items, subsets=field[None, :] == np.arange(3)[:, None])
    raw = np.corrcoef(separate.theta, rowvar=False)
    estimated = engine.field_correlation(separate)
    off = ~np.eye(3, dtype=bool)
    assert np.all(raw[off] < corr[off] - 0.05)  # the EAPs' own correlations are attenuated
    np.testing.assert_allclose(estimated[off], corr[off], atol=0.03)
    # One ability: the estimate is capped, and the matrix stays a correlation matrix.
    same = engine.simulate_responses(theta[:, 0], items, rng)
    capped = engine.field_correlation(engine.eap(same, items, subsets=field[None, :] == np.arange(3)[:, None]))
    assert np.all(capped[off] <= 0.95 + 1e-12) and np.all(capped[off] > 0.9)
    np.testing.assert_allclose(np.diag(capped), 1.0)
    assert np.linalg.eigvalsh(capped).min() > 0
