"""Ability estimation: published LSAT7 values (mirt) and simulated truth."""
import numpy as np
import pytest
from lsat_data import PATTERNS

import engine
from engine import ItemParameters

# mirt, tests/testthat/test-01-mirtOne.R (philchalmers/mirt): LSAT7 2PL,
# mirt(expand.table(LSAT7), 1) with SE.type = 'SEM', coef() printed as a1, d.
LSAT7_2PL = ItemParameters.from_slope_intercept(
    [0.9876, 1.0808, 1.7075, 0.765, 0.7357], [1.8559, 0.808, 1.8052, 0.486, 1.8545])
# Same file, modm2 (SE.type = 'Richardson'; the estimates printed to 3-4 decimals differ
# from modm1's in the 4th decimal).
LSAT7_2PL_MODM2 = ItemParameters.from_slope_intercept(
    [0.988, 1.081, 1.706, 0.7651, 0.7358], [1.8561, 0.808, 1.8043, 0.486, 1.8545])
# Same file, modm4: all slopes constrained equal (a 1PL), SE.type = 'crossprod'.
LSAT7_1PL = ItemParameters.from_slope_intercept(np.full(5, 1.011), [1.868, 0.791, 1.461, 0.521, 1.993])


def test_eap_sum_score_table_matches_mirt_eapsum():
    # fscores(modm1, method = 'EAPsum', full.scores = FALSE): theta, SE and expected counts
    # (N = 1000) per summed score 0..5. The parameters above are printed to 4 decimals,
    # which moves these values by up to ~2e-5.
    table = engine.sum_score_eap(LSAT7_2PL)
    np.testing.assert_allclose(table.theta, [-1.86979, -1.431861, -0.9488463, -0.4131963, 0.1517289, 0.7271877],
                               atol=1e-4)
    np.testing.assert_allclose(table.se, [0.6927032, 0.6838697, 0.6942298, 0.7210951, 0.758772, 0.8009335],
                               atol=1e-4)
    np.testing.assert_allclose(1000 * table.probability,
                               [10.08994, 44.65882, 109.773, 207.7391, 319.1854, 308.5536], atol=5e-3)


def test_pattern_eap_matches_mirt_and_its_own_sum_score_table():
    # fscores(modm1, full.scores = FALSE) for patterns 00000, 00001, 00010, 00011, 00100,
    # 00101; mirt's test compares at 1e-2 (values printed by an older mirt whose EAP grid
    # differed; the all-wrong pattern equals the summed-score-0 EAP, -1.8698, to 1e-6 here).
    estimate = engine.eap(PATTERNS[:6], LSAT7_2PL)
    np.testing.assert_allclose(estimate.theta, [-1.8665957, -1.5266920, -1.5134024, -1.1852276, -1.0946830,
                                                -0.7666992], atol=1e-2)
    assert estimate.theta[0] == pytest.approx(engine.sum_score_eap(LSAT7_2PL).theta[0], abs=1e-6)


def test_map_matches_mirt():
    # fscores(modm2, method = 'MAP', full.scores = FALSE), same six patterns; agreement is
    # to the 4th decimal allowed by the 4-decimal parameters.
    estimate = engine.map_estimate(PATTERNS[:6], LSAT7_2PL_MODM2)
    np.testing.assert_allclose(estimate.theta, [-1.8165552, -1.4946906, -1.4822982, -1.1789899, -1.0958928,
                                                -0.7951026], atol=5e-4)


def test_ml_matches_mirt_and_is_bounded_for_extreme_patterns():
    # fscores(modm4, method = 'ML'): rows 13, 34, 40 of expand.table(LSAT7) are patterns
    # 00001, 00011, 00100 -> -2.783489, -1.750890, -2.783489 (mirt gives -Inf/Inf for
    # 00000/11111; here they get -bound/+bound). The slope printed to 3 decimals moves
    # theta by ~1e-3.
    estimate = engine.ml_estimate(PATTERNS[[1, 3, 4, 0, 31]], LSAT7_1PL)
    np.testing.assert_allclose(estimate.theta[:3], [-2.783489, -1.750890, -2.783489], atol=2e-3)
    assert estimate.theta[3] == -6.0 and estimate.theta[4] == 6.0
    assert np.all(np.isfinite(estimate.se))


def test_wle_is_finite_for_extreme_patterns_and_less_extreme_than_ml():
    estimate = engine.wle_estimate(PATTERNS[[0, 1, 30, 31]], LSAT7_2PL)
    ml = engine.ml_estimate(PATTERNS[[1, 30]], LSAT7_2PL)
    assert -6 < estimate.theta[0] < estimate.theta[1] < estimate.theta[2] < estimate.theta[3] < 6
    assert abs(estimate.theta[1]) < abs(ml.theta[0]) and abs(estimate.theta[2]) < abs(ml.theta[1])


def test_mode_estimates_solve_their_estimating_equations():
    items = engine.simulate_items(30, "3pl", 4)
    rng = np.random.default_rng(4)
    x = engine.simulate_responses(rng.normal(size=200), items, rng)
    for method in (engine.map_estimate, engine.ml_estimate):
        estimate = method(x, items)
        inside = np.abs(estimate.theta) < 5.9
        grid = estimate.theta[inside]
        h = 1e-5
        ll = lambda t: np.array([engine.log_likelihood(row[None], [ti], items)[0, 0] for row, ti in zip(x[inside], t)])
        prior = (lambda t: -0.5 * t**2) if method is engine.map_estimate else (lambda t: 0 * t)
        score = (ll(grid + h) + prior(grid + h) - ll(grid - h) - prior(grid - h)) / (2 * h)
        np.testing.assert_allclose(score, 0, atol=1e-4)


def test_missing_items_equal_scoring_the_presented_subset():
    items = engine.simulate_items(20, "3pl", 5)
    rng = np.random.default_rng(5)
    x = engine.simulate_responses(rng.normal(size=100), items, rng)
    x[:, 12:] = engine.MISSING
    full = engine.eap(x, items)
    part = engine.eap(x[:, :12], items.subset(np.arange(12)))
    np.testing.assert_allclose(full.theta, part.theta, atol=1e-5)
    np.testing.assert_allclose(full.se, part.se, atol=1e-5)
    for method in (engine.map_estimate, engine.ml_estimate, engine.wle_estimate):
        np.testing.assert_allclose(method(x, items).theta, method(x[:, :12], items.subset(np.arange(12))).theta,
                                   atol=1e-7)


def test_subsets_in_one_call_equal_separate_calls():
    items = engine.simulate_items(30, "2pl", 6)
    rng = np.random.default_rng(6)
    x = engine.simulate_responses(rng.normal(size=300), items, rng)
    fields = np.zeros((4, 30), dtype=bool)
    fields[0] = True
    fields[1, :10], fields[2, 10:18], fields[3, 18:] = True, True, True
    for method in (engine.eap, engine.map_estimate, engine.ml_estimate, engine.wle_estimate):
        together = method(x, items, subsets=fields)
        assert together.theta.shape == (300, 4)
        for k, mask in enumerate(fields):
            alone = method(x[:, mask], items.subset(mask))
            # EAP sums its posterior in float32: equal to ~1e-6, not bit for bit.
            np.testing.assert_allclose(together.theta[:, k], alone.theta, atol=1e-5)
            np.testing.assert_allclose(together.se[:, k], alone.se, atol=1e-5)


def test_eap_recovers_simulated_abilities_within_its_posterior_sd():
    # For EAP with the true prior, E[(theta_hat - theta)^2] = E[posterior variance]; with
    # n = 4000 the mean squared error has a relative sampling SD of about sqrt(2/n) ~ 2%,
    # so a 10% band is a > 4 SD check.
    items = engine.simulate_items(40, "3pl", 7)
    rng = np.random.default_rng(7)
    theta = rng.normal(size=4000)
    estimate = engine.eap(engine.simulate_responses(theta, items, rng), items)
    mse = np.mean((estimate.theta - theta) ** 2)
    assert mse == pytest.approx(np.mean(estimate.se**2), rel=0.1)
    assert abs(np.mean(estimate.theta - theta)) < 4 * np.sqrt(mse / 4000)


def test_sparse_and_dense_scoring_agree():
    items = engine.simulate_items(50, "3pl", 8)
    rng = np.random.default_rng(8)
    x = engine.simulate_responses(rng.normal(size=200), items, rng, presented=rng.random((200, 50)) < 0.4)
    sparse = engine.SparseResponses.from_dense(x)
    np.testing.assert_array_equal(sparse.to_dense(), x)
    np.testing.assert_allclose(engine.eap(sparse, items).theta, engine.eap(x, items).theta, atol=1e-5)
    np.testing.assert_allclose(engine.wle_estimate(sparse, items).theta, engine.wle_estimate(x, items).theta)


def test_marginal_reliability_is_the_population_average_of_conditional_reliability():
    from scipy import integrate

    items = engine.simulate_items(20, "3pl", 5)

    def integrand(t, sd):
        info = engine.test_information(np.array([t]), items)[0] * sd**2
        return info / (info + 1) * np.exp(-0.5 * (t / sd) ** 2) / (sd * np.sqrt(2 * np.pi))

    for sd in (1.0, 1.5):
        direct = integrate.quad(integrand, -12, 12, args=(sd,), limit=200)[0]
        assert engine.marginal_reliability(items, prior_sd=sd) == pytest.approx(direct, abs=1e-4)
    # More items, more reliability; and for EAP the empirical figure agrees with the
    # marginal one on simulated examinees (both estimate var(theta) / var(theta_hat + e)).
    rng = np.random.default_rng(6)
    x = engine.simulate_responses(rng.normal(size=20000), items, rng)
    empirical = engine.empirical_reliability(engine.eap(x, items))
    assert empirical == pytest.approx(engine.marginal_reliability(items), abs=0.02)
    assert engine.marginal_reliability(items.subset(np.arange(10))) < engine.marginal_reliability(items)


def test_eap_quadrature_is_a_setting():
    items = engine.simulate_items(30, "3pl", 7)
    x = engine.simulate_responses(np.random.default_rng(7).normal(size=500), items, 7)
    coarse, fine = engine.eap(x, items, n_points=61), engine.eap(x, items, n_points=121)
    np.testing.assert_allclose(coarse.theta, fine.theta, atol=1e-4)
    assert not np.array_equal(coarse.theta, fine.theta)


@pytest.mark.parametrize("estimator", [engine.ml_estimate, engine.wle_estimate, engine.map_estimate])
def test_mode_estimates_of_a_row_do_not_depend_on_the_rest_of_the_batch(estimator):
    # A sitting scored alone (its own items as columns) and in a batch of others drawn
    # from a larger bank give the same theta and SE to the last digit (rescoring promises it).
    rng = np.random.default_rng(21)
    bank = engine.simulate_items(300, "3pl", rng)
    design = engine.simulate_sparse_design(rng.normal(size=50), bank, 40, rng)
    dense = design.to_dense()
    own = np.flatnonzero(dense[7] >= 0)
    fields = np.zeros((2, 300), dtype=bool)
    fields[0], fields[1, ::2] = True, True
    batch = estimator(design, bank, subsets=fields)
    alone = estimator(dense[7:8, own], bank.subset(own), subsets=fields[:, own])
    assert batch.theta[7].tolist() == alone.theta[0].tolist()
    assert batch.se[7].tolist() == alone.se[0].tolist()
