"""S-X2 against mirt's printed values; its behaviour under a true and a wrong model."""
import numpy as np
import pytest

import engine
from engine import calibrate, sx2
from lsat_data import LSAT6_FREQUENCIES, LSAT7_FREQUENCIES, expand


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
