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
