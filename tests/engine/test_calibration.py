"""Calibration: published LSAT results (mirt, ltm) and recovery of simulated truth."""
import numpy as np
import pytest
from lsat_data import LSAT6_FREQUENCIES, LSAT7_FREQUENCIES, PATTERNS, expand
from scipy import optimize

import engine
from engine import FixedItems, ItemParameters, Priors, calibrate

LSAT6 = expand(LSAT6_FREQUENCIES)
LSAT7 = expand(LSAT7_FREQUENCIES)


def test_lsat7_2pl_matches_mirt():
    # mirt 1.47 reference page for mirt() (philchalmers/mirt, reference/mirt.md), defaults
    # (61 nodes on [-6, 6], TOL 1e-4): "Log-likelihood = -2658.805", coef() a1 / d:
    # 0.988/1.856, 1.081/0.808, 1.706/1.804, 0.765/0.486, 0.736/1.855 (3 decimals);
    # tests/testthat/test-01-mirtOne.R gives 4: 0.988 1.8561 1.081 0.808 1.706 1.8043
    # 0.7651 0.486 0.7358 1.8545. Both fits stop at TOL 1e-4, so the 4th decimal may
    # differ by a few units.
    result = calibrate(LSAT7, "2pl")
    assert result.converged
    assert result.log_likelihood == pytest.approx(-2658.805, abs=1e-3)
    np.testing.assert_allclose(result.items.a, [0.988, 1.081, 1.706, 0.7651, 0.7358], atol=1.5e-3)
    np.testing.assert_allclose(result.items.intercept, [1.8561, 0.808, 1.8043, 0.486, 1.8545], atol=1.5e-3)
    assert result.n_parameters == 10
    assert result.aic == pytest.approx(5337.61, abs=1e-2)  # mirt: AIC = 5337.61, BIC = 5386.688
    assert result.bic == pytest.approx(5386.688, abs=1e-2)


def test_lsat7_2pl_crossprod_standard_errors_close_to_mirt():
    # test-01-mirtOne.R, modm2 (SE.type = 'Richardson', numerical observed information):
    # 95% CI for a1 of item 1 is [0.6406, 1.3354] -> SE 0.1772; item 3 [1.0779, 2.334] ->
    # 0.3205. Cross-product SEs estimate the same information differently; with N = 1000
    # the two agree to a few percent (the observed ones: test_standard_errors.py).
    result = calibrate(LSAT7, "2pl", se_method="crossprod")
    np.testing.assert_allclose(result.se.a[[0, 2]], [(1.3354 - 0.6406) / 3.92, (2.334 - 1.0779) / 3.92], rtol=0.05)


def test_lsat7_equal_slopes_matches_mirt_crossprod_standard_errors():
    # test-01-mirtOne.R, modm4: 'F = 1-5, CONSTRAIN = (1-5, a1)', SE.type = 'crossprod':
    # a1 = 1.011 [0.885, 1.138]; d = 1.868 [1.67, 2.067], 0.791 [0.631, 0.951],
    # 1.461 [1.277, 1.644], 0.521 [0.367, 0.676], 1.993 [1.793, 2.193].
    result = calibrate(LSAT7, "rasch", se_method="crossprod")
    np.testing.assert_allclose(result.items.a, 1.011, atol=1e-3)
    np.testing.assert_allclose(result.items.intercept, [1.868, 0.791, 1.461, 0.521, 1.993], atol=1e-3)
    assert result.se.a[0] == pytest.approx((1.138 - 0.885) / 3.92, abs=5e-4)
    # SE of d = -a b by the delta method from the (a, b) covariance is not kept; check b's
    # SE against mirt's d interval instead through d = -a b at fixed a (a's SE is small):
    se_d_mirt = (np.array([2.067, 0.951, 1.644, 0.676, 2.193]) - [1.67, 0.631, 1.277, 0.367, 1.793]) / 3.92
    np.testing.assert_allclose(result.se_intercept, se_d_mirt, atol=1.5e-3)


def test_lsat6_rasch_matches_mirt():
    # test-01-mirtOne.R: mirt(expand.table(LSAT6), 1, itemtype = 'Rasch'): d = 2.73, 0.999,
    # 0.24, 1.306, 2.099 and latent variance 0.57. Our one common slope a on N(0, 1) is the
    # same model with a^2 = variance and the same intercepts.
    result = calibrate(LSAT6, "rasch")
    np.testing.assert_allclose(result.items.intercept, [2.73, 0.999, 0.24, 1.306, 2.099], atol=1e-3)
    assert result.items.a[0] ** 2 == pytest.approx(0.57, abs=5e-3)


def test_lsat6_2pl_matches_ltm_and_mirt():
    # ltm (Rizopoulos) summary(ltm(LSAT ~ z1)): log.Lik -2466.653; Dscrmn 0.8254 0.7229 0.8905
    # 0.6886 0.6575, Dffclt -3.3597 -1.3696 -0.2799 -1.8659 -3.1236 (21 Gauss-Hermite nodes:
    # the 3rd decimal differs from a 61-node rectangular grid); mirt QMCEM logLik -2466.653
    # (test-01-mirtOne.R).
    result = calibrate(LSAT6, "2pl")
    assert result.log_likelihood == pytest.approx(-2466.653, abs=1e-3)
    np.testing.assert_allclose(result.items.a, [0.8254, 0.7229, 0.8905, 0.6886, 0.6575], atol=2e-3)
    np.testing.assert_allclose(result.items.b, [-3.3597, -1.3696, -0.2799, -1.8659, -3.1236], atol=1e-2)


def test_lsat7_3pl_reaches_mirts_log_likelihood():
    # mirt reference/anova.md: mod2 <- mirt(expand.table(LSAT7), 1, '3PL'); anova():
    # logLik -2658.055 (AIC 5346.11, 15 parameters). The 3PL surface is flat (four c
    # estimates at 0), so estimates are compared through the likelihood, which must also
    # exceed the nested 2PL's -2658.805.
    result = calibrate(LSAT7, "3pl")
    assert result.converged
    assert result.log_likelihood == pytest.approx(-2658.055, abs=2e-3)
    assert result.items.c[1] == pytest.approx(0.298, abs=0.01)


def test_squarem_reaches_the_same_optimum_in_fewer_e_steps():
    plain = calibrate(LSAT7, "3pl", accelerate=False, tol=1e-5, max_iterations=5000)
    fast = calibrate(LSAT7, "3pl", tol=1e-5)
    assert fast.log_likelihood == pytest.approx(plain.log_likelihood, abs=1e-3)
    assert fast.iterations < 0.6 * plain.iterations  # 76 vs 136 E-steps here


def z_scores(result, truth):
    return np.concatenate([(result.items.a - truth.a) / result.se.a, (result.items.b - truth.b) / result.se.b])


@pytest.mark.parametrize("model", ["2pl", "rasch"])
def test_recovery_within_standard_errors(model):
    # With SEs right, (estimate - truth) / SE ~ N(0, 1): the mean of z^2 over 2 x 25 values
    # has SD sqrt(2/50) = 0.2, so [0.4, 1.8] is a 3-4 SD band, and no |z| should pass 4.
    rng = np.random.default_rng(11)
    truth = engine.simulate_items(25, model, rng)
    x = engine.simulate_responses(rng.normal(size=3000), truth, rng)
    result = calibrate(x, model)
    z = z_scores(result, truth)
    if model == "rasch":
        z = (result.items.b - truth.b) / result.se.b
    assert 0.4 < np.mean(z**2) < 1.8
    assert np.max(np.abs(z)) < 4


def test_3pl_recovery_with_c_prior():
    # The c prior Beta(6, 16) pulls c towards .27 while the truth is U(.1, .25), a bias of a
    # few hundredths on c; a and b are checked within 4 SEs (about 1 in 16,000 by chance).
    rng = np.random.default_rng(12)
    truth = engine.simulate_items(20, "3pl", rng)
    x = engine.simulate_responses(rng.normal(size=8000), truth, rng)
    result = calibrate(x, "3pl", priors=Priors(c_beta=(6, 16)))
    assert result.converged and result.item_converged.all()
    z = z_scores(result, truth)
    assert np.mean(np.abs(z) < 4) >= 0.95
    assert np.sqrt(np.mean((result.items.c - truth.c) ** 2)) < 0.06


def test_fixed_anchor_calibration_puts_pretest_items_on_the_bank_scale():
    # Examinees ~ N(0.5, 1.2^2) on the bank scale; 30 anchors fixed at their true values,
    # 6 pretest items free. The latent mean and SD are estimated (their SEs with N = 4000
    # are ~0.02), and pretest items must come out on the bank scale within 4 SEs.
    rng = np.random.default_rng(13)
    truth = engine.simulate_items(36, "2pl", rng)
    x = engine.simulate_responses(rng.normal(0.5, 1.2, size=4000), truth, rng)
    anchors = np.arange(30)
    result = calibrate(x, "2pl", fixed=FixedItems(anchors, truth.subset(anchors)))
    np.testing.assert_array_equal(result.items.a[:30], truth.a[:30])
    assert result.latent_mean == pytest.approx(0.5, abs=0.1)
    assert result.latent_sd == pytest.approx(1.2, abs=0.1)
    free = np.arange(30, 36)
    z = np.concatenate([(result.items.a[free] - truth.a[free]) / result.se.a[free],
                        (result.items.b[free] - truth.b[free]) / result.se.b[free]])
    assert np.max(np.abs(z)) < 4
    assert np.all(result.se.a[:30] == 0)


def test_sparse_design_equals_dense_with_missing():
    rng = np.random.default_rng(14)
    truth = engine.simulate_items(40, "2pl", rng)
    sparse = engine.simulate_sparse_design(rng.normal(size=2000), truth, 15, rng)
    assert np.all(np.diff(sparse.indptr) == 15)
    dense = sparse.to_dense()
    assert all(len(set(row)) == 15 for row in np.split(sparse.item, sparse.indptr[1:-1]))
    a = calibrate(sparse, "2pl", threads=2)
    b = calibrate(dense, "2pl")
    assert a.log_likelihood == pytest.approx(b.log_likelihood, abs=1e-6)
    np.testing.assert_allclose(a.items.a, b.items.a, atol=1e-6)
    np.testing.assert_allclose(a.se.b, b.se.b, rtol=1e-6)


def test_non_convergence_is_reported_per_item():
    result = calibrate(LSAT7, "3pl", max_iterations=3)
    assert not result.converged
    assert not result.item_converged.all()
    assert any("still moving" in message for message in result.item_messages)


def test_unidentified_item_is_flagged():
    # An item everyone answers correctly has no finite difficulty.
    x = LSAT7.copy()
    x[:, 4] = 1
    result = calibrate(x, "2pl", max_iterations=200)
    assert not result.item_converged[4]
    assert "not identified" in result.item_messages[4]


def test_priors_pull_estimates():
    # Strong priors dominate 1000 examinees: estimates sit within ~3 prior SDs of the mode.
    on_a = calibrate(LSAT7, "2pl", priors=Priors(a_lognormal=(0.0, 0.05)))
    assert np.all(np.abs(np.log(on_a.items.a)) < 0.15)
    on_c = calibrate(LSAT7, "3pl", priors=Priors(c_beta=(60, 160)))
    np.testing.assert_allclose(on_c.items.c, 59 / 218, atol=0.05)  # mode of Beta(60, 160)
    # A flat-enough prior changes nothing.
    weak = calibrate(LSAT7, "2pl", priors=Priors(b_normal=(0.0, 100.0)))
    np.testing.assert_allclose(weak.items.a, calibrate(LSAT7, "2pl").items.a, atol=2e-3)


def test_posterior_mode_with_priors_equals_direct_optimisation():
    # EM with priors must land on the mode of marginal log-likelihood + log priors; a
    # general-purpose optimiser (BFGS on the 32 LSAT7 patterns) finds the same point.
    priors = Priors(a_lognormal=(0.0, 0.5), b_normal=(0.0, 0.5))
    nodes, weights = engine.normal_quadrature()

    def negative_log_posterior(v):
        items = ItemParameters(np.exp(v[:5]), -v[5:] / np.exp(v[:5]), np.zeros(5))
        marginal = np.exp(engine.log_likelihood(PATTERNS, nodes, items)) @ weights
        log_prior = np.sum(-0.5 * (v[:5] / 0.5) ** 2 - v[:5]) + np.sum(-0.5 * (items.b / 0.5) ** 2)
        return -(LSAT7_FREQUENCIES @ np.log(marginal) + log_prior)

    result = calibrate(LSAT7, "2pl", priors=priors, tol=1e-7)
    start = np.concatenate([np.log(result.items.a), result.items.intercept])
    direct = optimize.minimize(negative_log_posterior, start + 0.05, method="BFGS", options={"gtol": 1e-6})
    np.testing.assert_allclose(start, direct.x, atol=2e-4)


@pytest.mark.parametrize("model", ["2pl", "3pl", "rasch"])
def test_every_item_fixed_estimates_the_latent_distribution(model):
    # Only the latent mean and SD are free: EM must reach the maximum of the marginal
    # log-likelihood over (mean, log sd), found here by BFGS, and give its SEs.
    rng = np.random.default_rng(3)
    truth = engine.simulate_items(20, "2pl", rng)
    x = engine.simulate_responses(rng.normal(0.5, 1.2, 3000), truth, rng)
    nodes, _ = engine.normal_quadrature()
    loglik = engine.log_likelihood(x, nodes, truth)

    def negative(v):
        log_w = -0.5 * ((nodes - v[0]) / np.exp(v[1])) ** 2
        return -np.logaddexp.reduce(loglik + log_w - np.logaddexp.reduce(log_w), axis=1).sum()

    direct = optimize.minimize(negative, [0.0, 0.0], method="BFGS", options={"gtol": 1e-8})
    result = calibrate(x, model, fixed=FixedItems(np.arange(20), truth), tol=1e-6)
    assert result.converged and result.n_parameters == 2
    # EM's latent M-step matches the posterior moments (as mirt's), which on a grid cut at
    # +-6 is not exactly the grid likelihood's maximum: the two differ by ~1e-5 here.
    assert result.latent_mean == pytest.approx(direct.x[0], abs=5e-5)
    assert result.latent_sd == pytest.approx(np.exp(direct.x[1]), abs=5e-5)
    assert 0.015 < result.latent_se[0] < 0.035 and 0.01 < result.latent_se[1] < 0.03


def test_convergence_waits_for_the_latent_mean_and_sd():
    # One free item and anchors: the stopping rule must judge the latent mean and SD too,
    # so EM ends where the marginal likelihood over them is maximal.
    rng = np.random.default_rng(4)
    truth = engine.simulate_items(11, "2pl", rng)
    x = engine.simulate_responses(rng.normal(0.3, 1.3, 2000), truth, rng)
    anchors = np.arange(10)
    loose = calibrate(x, "2pl", fixed=FixedItems(anchors, truth.subset(anchors)))
    tight = calibrate(x, "2pl", fixed=FixedItems(anchors, truth.subset(anchors)), tol=1e-8, max_iterations=5000)
    assert loose.iterations > 2
    assert loose.latent_mean == pytest.approx(tight.latent_mean, abs=1e-3)
    assert loose.latent_sd == pytest.approx(tight.latent_sd, abs=1e-3)


@pytest.mark.parametrize("model", ["rasch", "2pl", "3pl"])
def test_items_without_information_are_not_estimable(model):
    # An item everyone got right and one nobody was presented: left out, NaN, named; the
    # Rasch model no longer runs 2,000 E-steps chasing an infinite intercept.
    x = np.column_stack([LSAT7, np.ones(1000, dtype=np.int8), np.full(1000, -1, dtype=np.int8)])
    result = calibrate(x, model)
    assert result.converged and result.iterations < 500
    np.testing.assert_array_equal(result.not_estimable, [False] * 5 + [True, True])
    assert np.isnan(result.items.a[5:]).all() and np.isnan(result.se.b[5:]).all()
    assert "answered it correctly" in result.item_messages[5] and "no responses" in result.item_messages[6]
    np.testing.assert_allclose(result.items.a[:5], calibrate(LSAT7, model).items.a, atol=1e-6)


def test_examinee_without_responses_adds_nothing():
    x = np.vstack([LSAT7, np.full((3, 5), -1, dtype=np.int8)])
    result = calibrate(x, "2pl")
    assert result.n_examinees == 1000 and result.examinees_without_responses == 3
    assert result.bic == pytest.approx(calibrate(LSAT7, "2pl").bic, abs=1e-6)


def test_4pl_recovery():
    # 4PL items (upper asymptote ~ U(.9, 1)) with 20,000 examinees and weak priors on both
    # asymptotes: every parameter recovered, the upper asymptotes within a few hundredths.
    rng = np.random.default_rng(41)
    truth = engine.simulate_items(15, "4pl", rng)
    x = engine.simulate_responses(rng.normal(size=20000), truth, rng)
    result = calibrate(x, "4pl", priors=Priors(c_beta=(6, 16), upper_beta=(16, 2)))
    assert result.converged and result.n_parameters == 60
    assert np.sqrt(np.mean((result.items.d - truth.d) ** 2)) < 0.04
    assert np.sqrt(np.mean((result.items.b - truth.b) ** 2)) < 0.15
    assert np.sqrt(np.mean((np.log(result.items.a) - np.log(truth.a)) ** 2)) < 0.15
    z = (result.items.b - truth.b) / result.se.b
    assert np.mean(np.abs(z) < 3) >= 0.85
    # The 4PL nests the 3PL: its log-likelihood is at least the 3PL's on the same data.
    three = calibrate(x, "3pl", priors=Priors(c_beta=(6, 16)))
    assert result.log_likelihood > three.log_likelihood


def test_tiny_sample_is_warned_about():
    x = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 0, 1, 1, 1]], dtype=np.int8)
    result = calibrate(x, "2pl")
    assert any("3 examinees for 10 parameters" in warning for warning in result.warnings)
