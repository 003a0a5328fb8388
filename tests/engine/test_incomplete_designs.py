"""Incomplete designs: S-X2 by multiple imputation, and calibration of tiny anchored samples."""
from __future__ import annotations

import numpy as np
from scipy import stats

import engine


def incomplete_design(n: int, items: engine.ItemParameters, shown: float, rng) -> tuple[np.ndarray, np.ndarray]:
    theta = rng.normal(0, 1, n)
    presented = rng.random((n, items.n_items)) < shown
    return engine.simulate_responses(theta, items, rng, presented=presented), theta


def test_without_missing_cells_imputation_changes_nothing():
    rng = np.random.default_rng(1)
    items = engine.simulate_items(20, "2pl", rng)
    responses, _ = incomplete_design(2000, items, 1.0, rng)
    plain = engine.sx2(responses, items, n_estimated=2)
    imputed = engine.sx2(responses, items, n_estimated=2, imputations=3, rng=2)
    np.testing.assert_allclose(imputed.statistic, plain.statistic)
    np.testing.assert_allclose(imputed.df, plain.df)


def test_imputed_cells_follow_the_model_and_observed_cells_stay():
    rng = np.random.default_rng(2)
    items = engine.simulate_items(30, "3pl", rng)
    responses, theta = incomplete_design(20_000, items, 0.4, rng)
    completed = engine.impute_responses(responses, items, np.random.default_rng(3))
    observed = responses >= 0
    assert (completed >= 0).all() and (completed[observed] == responses[observed]).all()
    # The proportion correct of imputed cells matches the model's expectation for those cells
    # within a few binomial standard errors (the expectation is over the true thetas).
    expected = engine.probability(theta, items)[~observed]
    drawn = completed[~observed]
    assert abs(drawn.mean() - expected.mean()) < 4 * np.sqrt(expected.mean() * (1 - expected.mean()) / drawn.size) + 0.01


def test_a_fitting_bank_is_not_flagged_and_a_misfitting_item_is():
    rng = np.random.default_rng(4)
    items = engine.simulate_items(40, "2pl", rng)
    responses, theta = incomplete_design(4000, items, 0.5, rng)
    # Item 0's responses come from a flat curve the model does not have: p = 0.5 whatever theta.
    shown = responses[:, 0] >= 0
    responses[shown, 0] = (rng.random(shown.sum()) < 0.5).astype(np.int8)
    items_for_fit = engine.ItemParameters(np.r_[1.8, items.a[1:]], np.r_[0.0, items.b[1:]], items.c)
    fit = engine.sx2(responses, items_for_fit, n_estimated=0, imputations=5, rng=5)
    assert fit.p_value[0] < 1e-4
    # Among the 39 items that fit, p < .01 should be rare: at most 3 (binomial(39, .01) tail < .01).
    assert np.sum(fit.p_value[1:] < 0.01) <= 3, np.sort(fit.p_value[1:])[:5]
    assert stats.binom.sf(3, 39, 0.01) < 0.01


def test_a_tiny_anchored_sample_finishes_with_a_report_instead_of_crashing():
    # Two examinees cannot estimate a latent distribution: EM must still end and say so.
    rng = np.random.default_rng(2)
    items = engine.simulate_items(200, "3pl", rng)
    presented = rng.random((2, 200)) < 0.5
    responses = engine.simulate_responses(rng.normal(0, 1, 2), items, rng, presented=presented)
    result = engine.calibrate(responses, "3pl", fixed=engine.FixedItems(np.arange(190), items.subset(np.arange(190))))
    assert result.latent_sd >= 0.05
    assert not result.item_converged[190:].all() and any(result.item_messages[190:])
