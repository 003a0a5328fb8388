"""S-X2 against mirt's printed values; its behaviour under a true and a wrong model."""
import numpy as np
import pytest
from lsat_data import LSAT6_FREQUENCIES, LSAT7_FREQUENCIES, expand

import engine
from engine import calibrate, sx2


def test_lsat7_sx2_matches_mirt():
    # mirt tests/testthat/test-01-mirtOne.R: itemfit(modm1) on the LSAT7 2PL:
    # S_X2 = 4.749440, 14.451071, 1.270381, 5.237400, 0.941125 with df.S_X2 = 2 each.
    # The statistic moves with the estimates, which both programs stop at TOL 1e-4: the
    # two agree to ~2e-3 (mirt's own test allows 1e-2).
    x = expand(LSAT7_FREQUENCIES)
    fit = sx2(x, calibrate(x, "2pl").items, n_estimated=2)
    np.testing.assert_allclose(fit.statistic, [4.749440, 14.451071, 1.270381, 5.237400, 0.941125], atol=5e-3)
    np.testing.assert_array_equal(fit.df, [2, 2, 2, 2, 2])


def test_lsat6_first_item_p_value_matches_mirt():
    # test-01-mirtOne.R: itemfit(mod) on the LSAT6 2PL: p.S_X2[1] = .7984 (tolerance 1e-2).
    x = expand(LSAT6_FREQUENCIES)
    fit = sx2(x, calibrate(x, "2pl").items, n_estimated=2)
    assert fit.p_value[0] == pytest.approx(0.7984, abs=2e-3)


def test_sx2_p_values_are_not_small_under_the_true_model_and_flag_a_wrong_one():
    rng = np.random.default_rng(3)
    items = engine.simulate_items(20, "2pl", rng)
    x = engine.simulate_responses(rng.normal(size=3000), items, rng)
    # Under the true parameters p-values are ~U(0, 1): fewer than 5 of 20 below .05 has
    # binomial probability > .98.
    fit = sx2(x, items, n_estimated=0)
    assert np.sum(fit.p_value < 0.05) < 5
    # Item 0 generated as a steep item with a guessing floor of .4, calibrated as 2PL:
    # the 2PL cannot bend to the floor, so the misfit is gross.
    a, b = items.a.copy(), items.b.copy()
    a[0], b[0] = 2.0, 0.5
    truth3 = engine.ItemParameters(a, b, np.where(np.arange(20) == 0, 0.4, 0.0))
    x3 = engine.simulate_responses(rng.normal(size=5000), truth3, rng)
    fit3 = sx2(x3, calibrate(x3, "2pl").items)
    assert fit3.p_value[0] < 1e-3
    assert fit3.misfit(0.001)[0]


def test_leave_one_out_distribution_is_lord_wingersky_without_the_item():
    from engine.fit import _leave_one_out_distributions

    items = engine.simulate_items(6, "3pl", 4)
    nodes = np.linspace(-3, 3, 7)
    p = engine.probability(nodes, items)
    loo = _leave_one_out_distributions(p)
    for j in range(6):
        keep = np.arange(6) != j
        direct = engine.summed_score_likelihood(nodes, items.subset(keep))
        np.testing.assert_allclose(loo[j], direct, atol=1e-12)


def test_collapsing_follows_mirts_rule_on_a_small_table():
    from engine.fit import _collapse

    # Score groups 1..7 of one item: examinees N_k, observed correct, model proportion.
    n = np.array([0, 1, 5, 1, 8, 3, 1], dtype=float)
    correct = np.array([0, 0, 2, 1, 6, 3, 1], dtype=float)
    p = np.array([0.2, 0.3, 0.45, 0.6, 0.7, 0.8, 0.9])
    expected = np.column_stack([n * (1 - p), n * p])
    observed = np.column_stack([n - correct, correct])
    # By hand: score 1 is empty and goes; the single examinee of score 2 joins score 3
    # (6 examinees), the single one of score 4 joins score 5 (9), and the single one of
    # score 7, the last group, joins score 6 (4). Then the lowest group with an expected
    # cell below 1 is the last (4 x .2 + 1 x .1 = 0.9 wrong): it joins the one before.
    e, o = _collapse(expected, observed, 1.0)
    want_e = np.array([expected[1] + expected[2], expected[3] + expected[4] + expected[5] + expected[6]])
    want_o = np.array([observed[1] + observed[2], observed[3] + observed[4] + observed[5] + observed[6]])
    np.testing.assert_allclose(e, want_e)
    np.testing.assert_allclose(o, want_o)
    # A middle group merges into the neighbour with fewer examinees (the lower one on a tie).
    e, o = _collapse(np.array([[5.0, 5], [0.5, 3], [4, 4], [6, 6]]), np.array([[5.0, 5], [1, 3], [4, 4], [6, 6]]), 1.0)
    np.testing.assert_allclose(e, [[5, 5], [4.5, 7], [6, 6]])


def test_lsat6_rasch_df_subtract_the_latent_variance_as_mirt():
    # mirt itemfit(mirt(expand.table(LSAT6), 1, 'Rasch')): df.S_X2 = 2, 2, 1, 2, 2; each
    # item's df loses its intercept and the estimated latent variance (our common slope).
    x = expand(LSAT6_FREQUENCIES)
    result = calibrate(x, "rasch")
    n_estimated, n_latent = engine.degrees_of_freedom(result)
    np.testing.assert_array_equal(n_estimated, 1)
    assert n_latent == 1
    fit = sx2(x, result.items, n_estimated=n_estimated, n_latent=n_latent)
    np.testing.assert_array_equal(fit.df, [2, 2, 1, 2, 2])
    # 2PL: no latent parameter, df as mirt's LSAT7 2PL (2 each, test above).
    assert engine.degrees_of_freedom(calibrate(x, "2pl"))[1] == 0


def test_lsat7_m2_matches_mirt():
    # mirt reference/M2.md: M2(mirt(expand.table(LSAT7), 1)):
    # M2 11.938, df 5, p 0.036, RMSEA 0.037 [0.009, 0.065], SRMSR 0.032.
    x = expand(LSAT7_FREQUENCIES)
    fit = engine.m2(x, calibrate(x, "2pl", tol=1e-6))
    assert fit.statistic == pytest.approx(11.938, abs=2e-3)
    assert fit.df == 5 and fit.p_value == pytest.approx(0.036, abs=5e-4)
    assert fit.rmsea == pytest.approx(0.037, abs=5e-4)
    np.testing.assert_allclose(fit.rmsea_interval, [0.009, 0.065], atol=5e-4)
    assert fit.srmsr == pytest.approx(0.032, abs=5e-4)


def test_m2_is_chi_square_under_the_true_model():
    # Fixed true parameters (nothing estimated: Delta empty would be singular, so use a
    # calibration): over data sets from the model, M2's p-values are not small.
    rng = np.random.default_rng(9)
    truth = engine.simulate_items(6, "2pl", rng)
    p_values = []
    for _ in range(8):
        x = engine.simulate_responses(rng.normal(size=1500), truth, rng)
        p_values.append(engine.m2(x, calibrate(x, "2pl")).p_value)
    assert np.mean(np.array(p_values) < 0.05) <= 0.25
