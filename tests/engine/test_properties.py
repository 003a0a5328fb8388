"""Property tests (hypothesis)."""
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import engine
from engine.linking import METHODS, link

slopes = st.floats(0.2, 3.0)
locations = st.floats(-3.0, 3.0)
floors = st.floats(0.0, 0.4)


@st.composite
def item_sets(draw, min_items=1, max_items=8):
    n = draw(st.integers(min_items, max_items))
    a = draw(arrays(float, n, elements=slopes))
    b = draw(arrays(float, n, elements=locations))
    c = draw(arrays(float, n, elements=floors))
    return engine.ItemParameters(a, b, c)


thetas = arrays(float, st.integers(1, 10), elements=st.floats(-5, 5))


@given(item_sets(), thetas)
def test_information_is_positive(items, theta):
    assert np.all(engine.item_information(theta, items) > 0)
    assert np.all(engine.standard_error(theta, items) > 0)


@given(item_sets(), thetas)
def test_probabilities_lie_between_c_and_1(items, theta):
    p = engine.probability(theta, items)
    assert np.all(p >= items.c) and np.all(p <= 1)
    assert np.all(p[np.abs(theta) < 3] > items.c) and np.all(p[np.abs(theta) < 3] < 1)


@settings(max_examples=30, deadline=None)
@given(n_items=st.integers(2, 12), a=slopes, b=arrays(float, 12, elements=locations), seed=st.integers(0, 1000))
def test_eap_is_monotone_in_number_correct_under_rasch(n_items, a, b, seed):
    # Under a Rasch model the number correct is sufficient: patterns ordered by score
    # must get strictly increasing EAPs (equal scores equal EAPs).
    items = engine.ItemParameters(np.full(n_items, a), b[:n_items], np.zeros(n_items))
    rng = np.random.default_rng(seed)
    x = (rng.random((40, n_items)) < 0.5).astype(int)
    theta = engine.eap(x, items).theta
    score = x.sum(axis=1)
    order = np.argsort(score, kind="stable")
    diffs = np.diff(theta[order])
    same = np.diff(score[order]) == 0
    assert np.all(diffs[~same] > 0)
    np.testing.assert_allclose(diffs[same], 0, atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(item_sets(min_items=3), st.sampled_from(METHODS))
def test_linking_a_calibration_to_itself_is_the_identity(items, method):
    assume(np.std(items.b) > 0.05)  # mean/sigma needs common items of different difficulty
    constants = link(items, items, method)
    assert abs(constants.A - 1) < 1e-4 and abs(constants.B) < 1e-4
