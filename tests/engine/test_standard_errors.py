"""Standard errors: the observed information against finite differences of the marginal
log-likelihood and against mirt's published SEs; parameters at a bound; crossprod."""
import numpy as np
import pytest
from lsat_data import LSAT7_FREQUENCIES, PATTERNS, expand

import engine
from engine import FixedItems, ItemParameters, calibrate

LSAT7 = expand(LSAT7_FREQUENCIES)
NODES, _ = engine.normal_quadrature()


def marginal_log_likelihood(responses, counts, items, mean=0.0, sd=1.0):
    """sum_i log sum_q L_i(x_q) pi_q on the calibration's grid (61 nodes on [-6, 6]) with
    pi the normal(mean, sd) density normalised over the grid: the function EM maximises."""
    log_w = -0.5 * ((NODES - mean) / sd) ** 2
    log_w -= np.logaddexp.reduce(log_w)
    return float(counts @ np.logaddexp.reduce(engine.log_likelihood(responses, NODES, items) + log_w, axis=1))


def numerical_hessian(f, x, h=1e-4):
    """Central second differences, (len(x), len(x))."""
    n = len(x)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            def at(di, dj):
                y = x.copy()
                y[i] += di
                y[j] += dj
                return f(y)
            out[i, j] = out[j, i] = (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h)
    return out


def items_from(v, model, n):
    """Working parameters (log a, d[, logit c]) per item, item-major, -> ItemParameters."""
    k = 3 if model == "3pl" else 2
    w = v[: n * k].reshape(n, k)
    a = np.exp(w[:, 0])
    c = 1 / (1 + np.exp(-w[:, 2])) if model == "3pl" else np.zeros(n)
    return ItemParameters(a, -w[:, 1] / a, c)


def test_lsat7_rasch_observed_information_se_matches_mirt():
    # mirt 1.47, mirt(expand.table(LSAT7), 1, itemtype = 'Rasch') with its default
    # SE.type = 'Oakes': SE(d1) = 0.100416 (the reference value). Our Rasch is
    # the same model with the common slope in place of the latent SD; the SE of d does
    # not depend on how the other parameter is written. Cross-product SEs give 0.10129.
    observed = calibrate(LSAT7, "rasch", tol=1e-6)
    crossprod = calibrate(LSAT7, "rasch", tol=1e-6, se_method="crossprod")
    assert observed.se_method == "observed"
    assert observed.se_intercept[0] == pytest.approx(0.100416, abs=5e-5)
    assert crossprod.se_intercept[0] == pytest.approx(0.10129, abs=2e-4)


def test_lsat7_2pl_observed_se_matches_mirts_numerical_information():
    # test-01-mirtOne.R, modm2 (SE.type = 'Richardson'): 95% CIs of a1 for items 1 and 3
    # [0.6406, 1.3354] and [1.0779, 2.334], i.e. SEs 0.17724 and 0.32043 (3-4 digits).
    result = calibrate(LSAT7, "2pl", tol=1e-6)
    np.testing.assert_allclose(result.se.a[[0, 2]], [(1.3354 - 0.6406) / 3.92, (2.334 - 1.0779) / 3.92],
                               rtol=3e-3)


@pytest.mark.parametrize("model", ["2pl", "3pl", "rasch"])
def test_observed_information_is_the_negative_hessian_of_the_marginal_log_likelihood(model):
    counts = LSAT7_FREQUENCIES.astype(float)
    priors = engine.Priors(c_beta=(6, 16)) if model == "3pl" else None
    result = calibrate(LSAT7, model, priors=priors, tol=1e-7)
    n = 5
    if model == "rasch":
        v0 = np.concatenate([result.items.intercept, [np.log(result.items.a[0])]])

        def f(v):
            return marginal_log_likelihood(PATTERNS, counts, ItemParameters.from_slope_intercept(
                np.full(n, np.exp(v[-1])), v[:n]))
    else:
        work = [np.log(result.items.a), result.items.intercept]
        if model == "3pl":
            work.append(np.log(result.items.c / (1 - result.items.c)))
        v0 = np.column_stack(work).ravel()

        def f(v):
            value = marginal_log_likelihood(PATTERNS, counts, items_from(v, model, n))
            if model == "3pl":  # the Beta(6, 16) prior on c, in logit c
                c = 1 / (1 + np.exp(-v[2::3]))
                value += np.sum(5 * np.log(c) + 15 * np.log1p(-c))
            return value

    cov = np.linalg.inv(-numerical_hessian(f, v0))
    se_d = np.sqrt(np.diag(cov))[:n] if model == "rasch" else np.sqrt(np.diag(cov))[1::(3 if model == "3pl" else 2)]
    np.testing.assert_allclose(result.se_intercept, se_d, rtol=1e-4)
    if model == "rasch":
        # SE(a) by the delta method from SE(log a)
        assert result.se.a[0] == pytest.approx(result.items.a[0] * np.sqrt(cov[-1, -1]), rel=1e-4)


def test_observed_information_with_missing_responses_and_latent_parameters():
    # Fixed anchors, two free items, the latent mean and SD estimated, and a tenth of the
    # responses missing: every term of the observed information (item pairs with missing
    # cells, items x latent, latent x latent) against finite differences.
    rng = np.random.default_rng(5)
    truth = engine.simulate_items(8, "2pl", rng)
    x = engine.simulate_responses(rng.normal(0.4, 1.3, 1500), truth, rng,
                                  presented=rng.random((1500, 8)) > 0.1)
    anchors = np.arange(6)
    result = calibrate(x, "2pl", fixed=FixedItems(anchors, truth.subset(anchors)), tol=1e-7)
    free = np.array([6, 7])

    def f(v):
        items = ItemParameters(truth.a.copy(), truth.b.copy(), truth.c.copy())
        a, d = np.exp(v[[0, 2]]), v[[1, 3]]
        items.a[free], items.b[free] = a, -d / a
        return marginal_log_likelihood(x, np.ones(len(x)), items, v[4], np.exp(v[5]))

    v0 = np.array([np.log(result.items.a[6]), result.items.intercept[6], np.log(result.items.a[7]),
                   result.items.intercept[7], result.latent_mean, np.log(result.latent_sd)])
    cov = np.linalg.inv(-numerical_hessian(f, v0))
    se = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(result.se_intercept[free], se[[1, 3]], rtol=1e-4)
    np.testing.assert_allclose(result.se.a[free], result.items.a[free] * se[[0, 2]], rtol=1e-4)
    assert result.latent_se[0] == pytest.approx(se[4], rel=1e-4)
    assert result.latent_se[1] == pytest.approx(result.latent_sd * se[5], rel=1e-4)


def test_lsat7_3pl_parameters_at_a_bound_are_reported_and_held_for_the_ses():
    # mirt(expand.table(LSAT7), 1, '3PL') prints SE(d1) = 0.135 with four c estimates
    # near 0. Holding the c's that sit at the lower bound fixed, the others' SEs come out
    # near mirt's (0.134); with them free the information was near singular (condition
    # number ~5e13) and SE(d1) 2.47.
    result = calibrate(LSAT7, "3pl")
    at_c_bound = result.at_bound[:, 2]
    np.testing.assert_array_equal(at_c_bound, [True, False, True, True, True])
    assert np.all(np.isnan(result.se.c[at_c_bound])) and np.isfinite(result.se.c[1])
    assert result.se_intercept[0] == pytest.approx(0.135, abs=2e-3)
    assert [j for j, _ in result.bound_report()] == [0, 2, 3, 4]
    assert result.information_condition < 1e4 and result.warnings == ()


def test_near_singular_information_is_warned_about():
    from engine.calibration import CONDITION_WARNING, _invert_information

    # Two parameters that the data cannot tell apart: information [[1, 1 - e], [1 - e, 1]]
    # has condition number (2 - e) / e.
    info = np.array([[1.0, 1 - 1e-10], [1 - 1e-10, 1.0]]) * [[4.0], [1.0]] * [[4.0, 1.0]]
    cov, condition, positive = _invert_information(info, np.zeros(2, dtype=bool))
    assert positive and condition == pytest.approx(2e10, rel=1e-3) and condition > CONDITION_WARNING
    # Held rows are left out and their covariance is NaN.
    cov, condition, _ = _invert_information(info, np.array([False, True]))
    assert condition == 1.0 and cov[0, 0] == pytest.approx(1 / 16) and np.isnan(cov[1]).all()
    # An item whose responses repeat another's: its slope runs to the bound of a and is
    # reported there, then held; the rest stays well conditioned.
    rng = np.random.default_rng(8)
    x = engine.simulate_responses(rng.normal(size=300), engine.simulate_items(6, "2pl", rng), rng)
    result = calibrate(np.column_stack([x, x[:, 0]]), "2pl", max_iterations=300)
    assert result.at_bound[[0, 6], 0].all() and np.isnan(result.se.a[[0, 6]]).all()
    assert np.isfinite(result.information_condition) and result.information_condition < CONDITION_WARNING


def test_crossprod_and_observed_agree_on_a_large_sample():
    rng = np.random.default_rng(21)
    truth = engine.simulate_items(10, "2pl", rng)
    x = engine.simulate_responses(rng.normal(size=5000), truth, rng)
    observed = calibrate(x, "2pl")
    crossprod = calibrate(x, "2pl", se_method="crossprod")
    np.testing.assert_allclose(observed.se.a, crossprod.se.a, rtol=0.08)
    np.testing.assert_allclose(observed.se.b, crossprod.se.b, rtol=0.08)
    with pytest.raises(ValueError, match="se_method"):
        calibrate(x, "2pl", se_method="sandwich")


def test_4pl_observed_information_against_finite_differences():
    rng = np.random.default_rng(31)
    truth = engine.simulate_items(5, "4pl", rng)
    x = engine.simulate_responses(rng.normal(size=2000), truth, rng)
    priors = engine.Priors(a_lognormal=(0.0, 0.5), c_beta=(6, 16), upper_beta=(16, 2))
    result = calibrate(x, "4pl", priors=priors, tol=1e-6, max_iterations=5000)
    assert result.items.d is not None and result.se.d is not None

    def f(v):
        w = v.reshape(5, 4)
        a = np.exp(w[:, 0])
        c, u = 1 / (1 + np.exp(-w[:, 2])), 1 / (1 + np.exp(-w[:, 3]))
        value = marginal_log_likelihood(x, np.ones(len(x)), ItemParameters(a, -w[:, 1] / a, c, u))
        log_prior_a = -0.5 * (w[:, 0] / 0.5) ** 2 - w[:, 0]
        return value + np.sum(log_prior_a + 5 * np.log(c) + 15 * np.log1p(-c) + 15 * np.log(u) + np.log1p(-u))

    items = result.items
    v0 = np.column_stack([np.log(items.a), items.intercept, np.log(items.c / (1 - items.c)),
                          np.log(items.d / (1 - items.d))]).ravel()
    cov = np.linalg.inv(-numerical_hessian(f, v0))
    se = np.sqrt(np.diag(cov)).reshape(5, 4)
    held = result.at_bound[:, :4]
    assert not held.any()
    np.testing.assert_allclose(result.se_intercept, se[:, 1], rtol=1e-3)
    np.testing.assert_allclose(result.se.d, items.d * (1 - items.d) * se[:, 3], rtol=1e-3)
