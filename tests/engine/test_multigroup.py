"""Multiple-group calibration: recovery of the groups' latent distributions and of
group-specific item parameters; likelihood-ratio DIF."""
import numpy as np
import pytest

import engine
from engine.multigroup import calibrate_groups, likelihood_ratio_dif


@pytest.fixture(scope="module")
def two_groups():
    # Reference N(0, 1), focal N(0.5, 1.3^2); item 3 is 0.8 harder for the focal group.
    rng = np.random.default_rng(1)
    truth = engine.simulate_items(8, "2pl", rng)
    groups = np.repeat([0, 1], 1500)
    theta = np.where(groups == 0, rng.normal(0, 1, 3000), rng.normal(0.5, 1.3, 3000))
    shifted = engine.ItemParameters(truth.a, truth.b + 0.8 * (np.arange(8) == 3), truth.c)
    x = np.where((groups == 0)[:, None], engine.simulate_responses(theta, truth, rng),
                 engine.simulate_responses(theta, shifted, rng))
    return x, groups, truth


def test_multiple_group_recovers_latent_distributions_and_group_parameters(two_groups):
    x, groups, truth = two_groups
    fit = calibrate_groups(x, groups, "2pl", free_items=[3])
    assert fit.converged
    assert fit.latent_mean[0] == 0 and fit.latent_sd[0] == 1
    # SEs of the focal mean and SD with 1,500 examinees are ~0.04: 3 SE bands.
    assert fit.latent_mean[1] == pytest.approx(0.5, abs=0.12)
    assert fit.latent_sd[1] == pytest.approx(1.3, abs=0.12)
    assert fit.items[1].b[3] - fit.items[0].b[3] == pytest.approx(0.8, abs=0.3)
    invariant = np.arange(8) != 3
    np.testing.assert_array_equal(fit.items[0].a[invariant], fit.items[1].a[invariant])
    np.testing.assert_allclose(fit.items[0].b[invariant], truth.b[invariant], atol=0.25)
    # Freeing an item adds its two parameters and cannot lower the likelihood.
    base = calibrate_groups(x, groups, "2pl")
    assert fit.n_parameters == base.n_parameters + 2
    assert fit.log_likelihood >= base.log_likelihood - 1e-6


def test_likelihood_ratio_dif_flags_the_shifted_item_only(two_groups):
    x, groups, _ = two_groups
    dif = likelihood_ratio_dif(x, groups, "2pl", items=[0, 3], tol=1e-4)
    np.testing.assert_array_equal(dif.df, [2, 2])
    assert dif.p_value[1] < 1e-6
    assert dif.p_value[0] > 0.001


def _marginal_log_likelihood(x, groups, model, vector, n_invariant, free, n_groups, nodes):
    """By hand, from the documented order of MultipleGroupCalibration.covariance: each
    invariant item's (log a, d[, logit c]), each free item's per group, then (mean_g, log sd_g)."""
    k = 3 if model == "3pl" else 2
    n_items = x.shape[1]
    invariant = np.flatnonzero(~free)
    items = vector[: (n_invariant + n_groups * free.sum()) * k].reshape(-1, k)
    latent = vector[items.size:].reshape(-1, 2)
    total = 0.0
    for g in range(n_groups):
        work = np.empty((n_items, k))
        work[invariant] = items[:n_invariant]
        work[free] = items[n_invariant + g * free.sum(): n_invariant + (g + 1) * free.sum()]
        a = np.exp(work[:, 0])
        c = 1 / (1 + np.exp(-work[:, 2])) if k == 3 else np.zeros(n_items)
        p = c[:, None] + (1 - c[:, None]) / (1 + np.exp(-(a[:, None] * nodes[None, :] + work[:, 1:2])))  # (J, Q)
        p = np.clip(p, 1e-12, 1 - 1e-12)  # the engine's EPSILON: no item is certain at the grid's ends
        mean, sd = (0.0, 1.0) if g == 0 else (latent[g - 1, 0], np.exp(latent[g - 1, 1]))
        w = np.exp(-0.5 * ((nodes - mean) / sd) ** 2)
        w /= w.sum()
        mine = x[groups == g]
        like = np.exp(np.where(mine == 1, 1, 0) @ np.log(p) + np.where(mine == 0, 1, 0) @ np.log1p(-p))
        total += np.sum(np.log(like @ w))
    return total


@pytest.mark.parametrize("model", ["2pl", "3pl"])
def test_multiple_group_standard_errors_are_the_inverse_hessian_of_the_marginal_likelihood(model):
    # Observed information by Louis' identity against central second differences of the
    # marginal log-likelihood computed by hand: three groups, one item free, a missing cell.
    rng = np.random.default_rng(5)
    truth = engine.simulate_items(5, model, rng)
    groups = np.repeat([0, 1, 2], 300)
    theta = rng.normal(np.array([0.0, 0.4, -0.3])[groups], np.array([1.0, 1.2, 0.8])[groups])
    x = engine.simulate_responses(theta, truth, rng)
    x[7, 2] = -1
    priors = engine.Priors(c_beta=(5, 17)) if model == "3pl" else None
    fit = calibrate_groups(x, groups, model, free_items=[1], tol=1e-7, n_points=41, priors=priors)
    free = np.arange(5) == 1
    k = 3 if model == "3pl" else 2
    nodes = np.linspace(-6, 6, 41)

    def work_of(items):
        columns = [np.log(items.a), -items.a * items.b] + ([np.log(items.c / (1 - items.c))] if k == 3 else [])
        return np.column_stack(columns)
    vector = np.concatenate([work_of(fit.items[0].subset(~free)).ravel()]
                            + [work_of(fit.items[g].subset(free)).ravel() for g in range(3)]
                            + [np.array([fit.latent_mean[g], np.log(fit.latent_sd[g])]) for g in (1, 2)])
    assert fit.covariance.shape == (vector.size, vector.size)

    def objective(v):
        value = _marginal_log_likelihood(x, groups, model, v, 4, free, 3, nodes)
        if priors is not None:
            c = 1 / (1 + np.exp(-v[: vector.size - 4].reshape(-1, k)[:, 2]))
            value += np.sum(4 * np.log(c) + 16 * np.log1p(-c))
        return value
    h = 1e-4
    size = vector.size
    hessian = np.empty((size, size))
    base = objective(vector)
    steps = np.eye(size) * h
    for i in range(size):  # finite differences, one pair of parameters at a time (the independent check)
        for j in range(i, size):
            hessian[i, j] = hessian[j, i] = (objective(vector + steps[i] + steps[j]) - objective(vector + steps[i] - steps[j])
                                             - objective(vector - steps[i] + steps[j])
                                             + objective(vector - steps[i] - steps[j])) / (4 * h * h)
    assert abs(base - fit.log_likelihood) < 1e-6
    np.testing.assert_allclose(np.linalg.inv(fit.covariance), -hessian, rtol=2e-3, atol=2e-2)
    # The reported SEs follow from the covariance by the delta method.
    sd_index = size - 1
    assert fit.latent_sd_se[2] == pytest.approx(fit.latent_sd[2] * np.sqrt(fit.covariance[sd_index, sd_index]))
    assert np.isnan(fit.latent_mean_se[0]) and fit.latent_mean_se[1] > 0
    a0 = fit.items[0].a[0]
    assert fit.se[0].a[0] == pytest.approx(a0 * np.sqrt(fit.covariance[0, 0]))
    assert fit.se[1].a[0] == fit.se[0].a[0] and fit.se[1].a[1] != fit.se[0].a[1]
    assert fit.positive_definite and np.isfinite(fit.information_condition)
