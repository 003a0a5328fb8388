"""engine.adaptive: every CAT sitting meets its blueprint, the shadow test is the optimum, exposure holds."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

import engine
from engine.adaptive import (
    CatSettings,
    ExposureControl,
    close_field,
    cut_decisions,
    draw_eligibility,
    eligibility_probabilities,
    field_limits,
    next_item,
    next_items,
    pretest_slots,
    record_sitting,
    run_sitting,
    should_stop,
    simulate_cat,
    simulate_sittings,
    sitting_violations,
    start,
    update,
)
from engine.assembly import (
    AssemblyInfeasible,
    Blueprint,
    Pool,
    _blueprint_rows,
    pool_targets,
)
from engine.design import Cut
from engine.models import item_information, probability


def random_case(seed: int, n_items: int, n_fields: int, per_field: int, n_enemy: int, cross_field: bool = False):
    """A random pool and blueprint (as in test_assembly): fields of 2 to 4 categories, bounds 0-2 to 3-8,
    enemy pairs and triples (within a field, or anywhere with ``cross_field``)."""
    rng = np.random.default_rng(seed)
    categories_per_field = rng.integers(2, 5, n_fields)
    category_field = np.repeat(np.arange(n_fields), categories_per_field)
    n_categories = len(category_field)
    counts = rng.integers(per_field // 2, per_field + 1, n_fields)
    minimum = rng.integers(0, 3, n_categories)
    maximum = np.maximum(minimum + rng.integers(3, 9, n_categories), 1)
    for f in range(n_fields):
        mine = category_field == f
        counts[f] = int(np.clip(counts[f], max(minimum[mine].sum(), 1), maximum[mine].sum()))
    blueprint = Blueprint(tuple(f"F{f}" for f in range(n_fields)), counts,
                          tuple(f"C{m}" for m in range(n_categories)), category_field, minimum, maximum)
    category = rng.integers(0, n_categories, n_items)
    items = engine.simulate_items(n_items, "3pl", rng)
    field = category_field[category]
    groups = []
    for _ in range(n_enemy):
        size = int(rng.integers(2, 4))
        if cross_field:
            groups.append(rng.choice(n_items, size=size, replace=False))
        else:
            mine = np.flatnonzero(field == rng.integers(n_fields))
            if len(mine) >= size:
                groups.append(rng.choice(mine, size=size, replace=False))
    return Pool(items, field, category, groups), blueprint, rng


def cuts_for(n_fields: int) -> tuple[Cut, ...]:
    return (Cut("total", -0.13, None),) + tuple(Cut(f"F{f}", -2.13, f) for f in range(n_fields))


def answers(theta: float, pool: Pool, rng: np.random.Generator):
    p = probability(np.array([theta]), pool.items)[0]
    return lambda item: int(rng.random() < p[item])


# ---- the blueprint holds in every sitting -------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n_items=st.integers(40, 500), n_fields=st.integers(1, 3),
       per_field=st.integers(3, 14), n_enemy=st.integers(0, 30), cross_field=st.booleans(),
       stopping=st.sampled_from(["fixed", "se", "ci", "sprt"]), theta=st.floats(-3, 3),
       randomesque=st.integers(1, 4), controlled=st.booleans())
def test_every_cat_sitting_meets_the_blueprint_and_enemy_rules_or_names_what_fails(
        seed, n_items, n_fields, per_field, n_enemy, cross_field, stopping, theta, randomesque, controlled):
    pool, blueprint, rng = random_case(seed, n_items, n_fields, per_field, n_enemy, cross_field)
    cat = CatSettings(stopping=stopping, se_target=0.4, randomesque=randomesque)
    eligible = (rng.random((1, pool.size)) < 0.7) if controlled else None
    try:
        state, _ = run_sitting(pool, blueprint, cat, cuts_for(n_fields), answers(theta, pool, rng), rng,
                               eligible=eligible)
    except AssemblyInfeasible as error:
        assert error.constraints and str(error)
        return
    except ValueError as error:  # lengths this random blueprint cannot have, refused before the first item
        assert "CAT lengths" in str(error)
        return
    assert state.finished
    assert sitting_violations(pool, blueprint, cat, state.items) == []
    if stopping == "fixed":
        assert engine.assembly.form_violations(pool, blueprint, state.items) == []


def test_a_fixed_length_sitting_is_a_blueprint_form_in_field_order_from_the_sample_sized_pool():
    pool, blueprint, rng = random_case(3, 2000, 3, 30, 40)
    state, _ = run_sitting(pool, blueprint, CatSettings(), (), answers(0.4, pool, rng), rng)
    assert engine.assembly.form_violations(pool, blueprint, state.items) == []
    assert np.all(np.diff(pool.field[state.items]) >= 0)  # strategy, then management, then technology
    assert len(state.items) == blueprint.n_items


def test_enemy_groups_across_fields_are_kept_and_the_later_fields_stay_feasible():
    pool, blueprint, rng = random_case(5, 300, 3, 10, 0)
    # Each item of field 0 an enemy of one of field 1: choosing in field 0 takes from field 1.
    first, second = np.flatnonzero(pool.field == 0), np.flatnonzero(pool.field == 1)
    groups = [np.array([i, j]) for i, j in zip(first, second)]
    pool = Pool(pool.items, pool.field, pool.category, groups)
    for seed in range(3):
        state, _ = run_sitting(pool, blueprint, CatSettings(), (), answers(0.0, pool, rng), np.random.default_rng(seed))
        assert sitting_violations(pool, blueprint, CatSettings(), state.items) == []


def test_excluded_items_are_never_given():
    pool, blueprint, rng = random_case(7, 400, 2, 10, 5)
    excluded = rng.random(pool.size) < 0.3
    state, _ = run_sitting(pool, blueprint, CatSettings(), (), answers(0.0, pool, rng), rng, excluded=excluded)
    assert not excluded[state.items].any()


def test_a_pool_too_small_for_the_blueprint_is_refused_by_name():
    pool, blueprint, rng = random_case(8, 40, 1, 12, 0)
    blueprint = dataclasses.replace(blueprint, field_counts=np.array([50]),
                                    category_max=np.full(len(blueprint.category_names), 30))
    with pytest.raises(AssemblyInfeasible) as raised:
        next_item(pool, blueprint, start(blueprint, CatSettings()), CatSettings(), None, rng)
    assert raised.value.constraints


# ---- the shadow test is the optimum of the whole problem -----------------------------------------

def brute_force_rest(pool, blueprint, state, cat, eligible, fields):
    """The best information of the rest of the shadow test by one MILP over the whole pool, the given
    items fixed, the fields ``fields`` at their shadow lengths (earlier ones as given, others empty)."""
    minimum, maximum = field_limits(blueprint, cat)
    given = state.field_counts
    f = state.field
    lengths = np.where(np.isin(np.arange(len(maximum)), fields), maximum, given)
    if cat.variable:
        lengths[f] = min(maximum[f], max(given[f] + 1, minimum[f]))
    open_field = np.isin(blueprint.category_field, fields) | (blueprint.category_field < f)
    rows = _blueprint_rows(pool, dataclasses.replace(
        blueprint, field_counts=lengths, category_min=np.where(open_field, blueprint.category_min, 0)), [], 0)
    info = item_information(np.array([state.theta]), pool.items)[0]
    lower = np.zeros(pool.size)
    lower[state.items] = 1
    upper = eligible.astype(float)
    upper[state.items] = 1
    result = milp(-info, integrality=np.ones(pool.size), bounds=Bounds(lower, upper),
                  constraints=[LinearConstraint(rows.matrix, rows.lower, rows.upper)])
    assert result.x is not None
    return -result.fun - info[state.items].sum(), info


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n_enemy=st.integers(0, 60), cross_field=st.booleans(),
       steps=st.integers(0, 12), variable=st.booleans())
def test_the_reduced_shadow_test_has_the_information_of_the_whole_pool_milp(seed, n_enemy, cross_field, steps,
                                                                             variable):
    pool, blueprint, rng = random_case(seed, 300, 2, 10, n_enemy, cross_field)
    cat = CatSettings(stopping="ci" if variable else "fixed")
    try:
        field_limits(blueprint, cat)
    except ValueError:
        return
    eligible = rng.random(pool.size) < 0.8
    reply = answers(rng.normal(), pool, rng)
    state = start(blueprint, cat)
    try:
        for step in range(steps + 1):
            if should_stop(pool, blueprint, state, cat, cuts_for(2)).field_complete:
                state = close_field(state)
                if state.finished:
                    return
            choice = next_item(pool, blueprint, state, cat, eligible, rng)
            if step < steps:
                state = update(pool, state, choice.item, reply(choice.item), cat)
    except AssemblyInfeasible:
        return
    if choice.relaxed:
        eligible = np.ones(pool.size, dtype=bool)
    free = np.setdiff1d(choice.shadow_test, state.items)
    f = state.field
    # The current field alone, or every remaining field when an enemy group ties them.
    fields = list(range(f, 2)) if np.any(pool.field[free] > f) else [f]
    best, info = brute_force_rest(pool, blueprint, state, cat, eligible, fields)
    assert info[free].sum() == pytest.approx(best, rel=1e-7, abs=1e-9)
    assert np.isin(state.items, choice.shadow_test).all()
    assert choice.item in free and pool.field[choice.item] == f


def test_the_item_given_is_the_most_informative_free_item_of_the_shadow_test():
    pool, blueprint, rng = random_case(9, 600, 2, 12, 10)
    cat = CatSettings()
    state = start(blueprint, cat)
    reply = answers(1.0, pool, rng)
    for _ in range(8):
        choice = next_item(pool, blueprint, state, cat, None, rng)
        free = np.setdiff1d(choice.shadow_test, state.items)
        free = free[pool.field[free] == state.field]
        info = item_information(np.array([state.theta]), pool.items)[0]
        assert info[choice.item] == pytest.approx(info[free].max())
        state = update(pool, state, choice.item, reply(choice.item), cat)


def test_sittings_side_by_side_get_the_shadow_tests_they_would_get_alone():
    pool, blueprint, rng = random_case(18, 500, 2, 10, 30)
    cat = CatSettings()
    states = []
    for b in range(6):
        state = start(blueprint, cat)
        reply = answers(rng.normal(), pool, rng)
        for _ in range(int(rng.integers(0, 6))):
            state = update(pool, state, next_item(pool, blueprint, state, cat, None, rng).item, reply(0), cat)
        states.append(state)
    eligible = rng.random((6, pool.size)) < 0.6
    together = next_items(pool, blueprint, states, cat, eligible, rng)
    for b, state in enumerate(states):
        alone = next_item(pool, blueprint, state, cat, eligible[b], rng)
        info = item_information(np.array([state.theta]), pool.items)[0]
        assert info[together[b].shadow_test].sum() == pytest.approx(info[alone.shadow_test].sum(), rel=1e-9)
        assert together[b].relaxed == alone.relaxed


# ---- estimates and stopping -------------------------------------------------------------------------

def test_interim_estimates_are_the_engines_eap_for_the_total_and_each_field():
    pool, blueprint, rng = random_case(10, 500, 3, 8, 0)
    cat = CatSettings(prior_mean=0.2, prior_sd=1.1)
    state, _ = run_sitting(pool, blueprint, cat, (), answers(0.5, pool, rng), rng)
    x = np.full((1, pool.size), -1, dtype=np.int8)
    x[0, state.items] = state.responses
    subsets = np.vstack([np.ones(pool.size, dtype=bool)] + [pool.field == f for f in range(3)])
    subsets &= x[0] >= 0
    expected = engine.eap(x, pool.items, subsets=subsets, prior_mean=0.2, prior_sd=1.1)
    # EAP sums in float32 products: agreement to ~1e-6 (docs/engine.md).
    assert state.theta == pytest.approx(expected.theta[0, 0], abs=1e-5)
    assert state.se == pytest.approx(expected.se[0, 0], abs=1e-5)
    assert state.field_theta == pytest.approx(expected.theta[0, 1:], abs=1e-5)


def test_map_early_then_ml_switches_once_the_answers_are_mixed():
    pool, blueprint, rng = random_case(11, 300, 1, 10, 0)
    cat = CatSettings(estimator="ml", early_estimator="map", early_items=3)
    state = start(blueprint, cat)
    choice = next_item(pool, blueprint, state, cat, None, rng)
    state = update(pool, state, choice.item, 1, cat)  # all right so far: ML would be +6
    assert abs(state.theta) < 3
    for response in (0, 1, 0):
        choice = next_item(pool, blueprint, state, cat, None, rng)
        state = update(pool, state, choice.item, response, cat)
    x = state.responses[None, :]
    ml = engine.ml_estimate(x, pool.items.subset(state.items))
    assert state.theta == pytest.approx(ml.theta[0])


def test_cat_recovers_known_abilities_and_measures_them_better_than_random_blueprint_forms():
    pool, blueprint, rng = random_case(12, 1500, 2, 14, 0)
    thetas = rng.normal(size=30)
    errors, cat_info, random_info = [], [], []
    for theta in thetas:
        state, _ = run_sitting(pool, blueprint, CatSettings(), (), answers(theta, pool, rng), rng)
        errors.append(state.theta - theta)
        cat_info.append(item_information(np.array([theta]), pool.items.subset(state.items))[0].sum())
        form = np.concatenate([rng.choice(np.flatnonzero(pool.field == f), n, replace=False)
                               for f, n in enumerate(blueprint.field_counts)])
        random_info.append(item_information(np.array([theta]), pool.items.subset(form))[0].sum())
    errors = np.array(errors)
    se = 1 / np.sqrt(np.mean(cat_info))
    assert np.sqrt(np.mean(errors ** 2)) < 2.0 * se  # within its own standard error, known truth
    assert abs(errors.mean()) < 3 * errors.std() / np.sqrt(len(errors))
    assert np.mean(cat_info) > 1.5 * np.mean(random_info)


def test_the_se_rule_ends_at_the_se_target_or_the_maximum():
    pool, blueprint, rng = random_case(13, 1500, 2, 25, 0)
    cat = CatSettings(stopping="se", se_target=0.3)
    minimum, maximum = field_limits(blueprint, cat)
    for theta in (-1.0, 0.0, 1.0):
        state, _ = run_sitting(pool, blueprint, cat, (), answers(theta, pool, rng), rng)
        counts = state.field_counts
        assert np.all((counts >= minimum) & (counts <= maximum))
        assert state.se <= 0.3 or counts[-1] == maximum[-1]


def test_the_ci_rule_ends_far_from_the_cut_at_the_minimum_and_runs_long_at_the_cut():
    pool, blueprint, rng = random_case(14, 1500, 2, 25, 0)
    cat = CatSettings(stopping="ci")
    minimum, maximum = field_limits(blueprint, cat)
    far = [run_sitting(pool, blueprint, cat, cuts_for(2), answers(2.5, pool, rng), rng)[0] for _ in range(3)]
    near = [run_sitting(pool, blueprint, cat, cuts_for(2), answers(-0.13, pool, rng), rng)[0] for _ in range(3)]
    assert np.mean([len(s.items) for s in far]) < minimum.sum() + 5 < np.mean([len(s.items) for s in near])
    assert max(len(s.items) for s in near) == maximum.sum()  # undecided at the cut: to the maximum


def test_sprt_decides_by_walds_log_likelihood_ratio():
    items = engine.ItemParameters(np.array([1.0, 1.5]), np.array([0.0, 0.5]), np.array([0.2, 0.1]))
    pool = Pool(items, np.array([0, 0]), np.array([0, 0]))
    cut = Cut("total", 0.0, None)
    p_hi, p_lo = probability(np.array([0.5]), items)[0], probability(np.array([-0.5]), items)[0]
    right = np.log(p_hi / p_lo).sum()  # log LR of two right answers, delta 0.5: about 1.0
    wrong = np.log((1 - p_hi) / (1 - p_lo)).sum()
    assert right > np.log(0.6 / 0.4) and right < np.log(0.9 / 0.1) and wrong < np.log(0.4 / 0.6)

    def decide(responses, error):
        return cut_decisions(pool, CatState_of([0, 1], responses),
                             CatSettings(stopping="sprt", sprt_delta=0.5, sprt_error=error), (cut,))[0]
    assert decide([1, 1], 0.4) == 1  # log LR above log((1 - beta) / alpha)
    assert decide([1, 1], 0.1) == 0  # between the bounds: undecided
    assert decide([0, 0], 0.4) == -1  # below log(beta / (1 - alpha))


def CatState_of(items, responses):
    from engine.adaptive import CatState
    return CatState(np.array(items), np.array(responses, dtype=np.int8), np.zeros(len(items), dtype=np.int64),
                    np.zeros(len(items)), 0, 0.0, 1.0, np.zeros(1), np.ones(1))


def test_lengths_spread_over_the_fields_and_bad_settings_are_refused_with_a_reason():
    blueprint = Blueprint(("s", "m", "t"), [32, 18, 42], tuple(f"c{m}" for m in range(23)),
                          np.repeat([0, 1, 2], [7, 5, 11]), np.full(23, 2), np.full(23, 8))
    assert field_limits(blueprint, CatSettings())[0].tolist() == [32, 18, 42]
    assert field_limits(blueprint, CatSettings(stopping="ci"))[0].tolist() == [14, 10, 22]  # category minimums
    assert field_limits(blueprint, CatSettings(stopping="ci", min_length=60))[0].tolist() == [21, 12, 27]
    assert field_limits(blueprint, CatSettings(stopping="se", max_length=70))[1].tolist() == [24, 14, 32]
    with pytest.raises(ValueError, match="above the blueprint's 92"):
        field_limits(blueprint, CatSettings(max_length=100))
    with pytest.raises(ValueError, match="category minimums need 22"):
        field_limits(blueprint, CatSettings(stopping="ci", max_length=40))
    for bad in ({"stopping": "sometimes"}, {"estimator": "mle"}, {"exposure_target": 0},
                {"min_length": 50, "max_length": 40}, {"exposure_classes": (1.0, 0.0)}):
        with pytest.raises(ValueError, match="CAT settings"):
            CatSettings(**bad)


def test_the_sitting_refuses_items_out_of_turn():
    pool, blueprint, rng = random_case(15, 300, 2, 8, 0)
    cat = CatSettings()
    state = start(blueprint, cat)
    other_field = int(np.flatnonzero(pool.field == 1)[0])
    with pytest.raises(ValueError, match="not in the field block in progress"):
        update(pool, state, other_field, 1, cat)
    choice = next_item(pool, blueprint, state, cat, None, rng)
    state = update(pool, state, choice.item, 1, cat)
    with pytest.raises(ValueError, match="given already"):
        update(pool, state, choice.item, 0, cat)
    unused = int(np.setdiff1d(np.flatnonzero(pool.field == 0), state.items)[0])
    with pytest.raises(ValueError, match="1 \\(right\\) or 0"):
        update(pool, state, unused, 2, cat)


def test_pretest_slots_fall_inside_every_block_at_random():
    rng = np.random.default_rng(0)
    seen = np.zeros(17)
    for _ in range(300):
        slots = pretest_slots(np.array([14, 10]), np.array([3, 2]), rng)
        assert [len(s) for s in slots] == [3, 2]
        assert slots[0].max() < 17 and slots[1].max() < 12 and len(set(slots[0])) == 3
        seen[slots[0]] += 1
    assert seen.min() > 0  # every position occurs


# ---- exposure over a simulated year ---------------------------------------------------------------

def test_eligibility_follows_the_ratio_of_counts_and_closes_an_item_at_its_target_rate():
    cat = CatSettings(exposure_target=0.25, exposure_margin=0.2)  # aim 0.2
    control = ExposureControl.start(4, cat)
    control = dataclasses.replace(control, administered=np.array([[4.0, 0.0, 1.0, 5.0]]),
                                  eligible=np.array([[8.0, 5.0, 40.0, 100.0]]), sittings=np.array([20.0]))
    # 0.2 * 8 / 4; never given; ratio above 1; rate 5 / 20 at the target: closed
    assert eligibility_probabilities(control)[0].tolist() == pytest.approx([0.4, 1.0, 1.0, 0.0])


def test_a_sitting_counts_overall_and_in_the_classes_its_items_were_chosen_in():
    cat = CatSettings(exposure_classes=(0.0,), exposure_fading=0.5)
    control = ExposureControl.start(4, cat)  # rows: all sittings, theta < 0, theta >= 0
    state = CatState_of([0, 2], [1, 0])
    state = dataclasses.replace(state, item_theta=np.array([-0.3, 0.4]))  # item 0 chosen below 0, item 2 above
    drawn = draw_eligibility(control, np.random.default_rng(0))
    assert drawn.shape == (3, 4) and drawn.all()  # nothing counted yet: every item eligible
    after = record_sitting(control, state, drawn)
    assert after.administered.tolist() == [[1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0]]
    assert after.eligible.tolist() == [[1] * 4] * 3 and after.sittings.tolist() == [1, 1, 1]
    again = record_sitting(after, dataclasses.replace(state, item_theta=np.array([-0.3, -0.2])), drawn)
    assert again.administered[0].tolist() == [1.5, 0, 1.5, 0]  # faded by w = 0.5, then counted
    assert again.administered[2].tolist() == [0, 0, 1, 0] and again.sittings.tolist() == [1.5, 1.5, 1]


def test_exposure_stays_under_its_target_through_a_simulated_year():
    pool, blueprint, rng = random_case(16, 240, 1, 6, 6)
    cat = CatSettings(exposure_target=0.2, exposure_classes=(-0.5, 0.5), exposure_fading=0.995)
    states, control, relaxed = simulate_sittings(pool, blueprint, cat, (), rng.normal(size=260), rng, concurrent=4)
    given = np.zeros(pool.size)
    for state in states[60:]:  # after a start-up of a few sittings per class
        given[state.items] += 1
        assert sitting_violations(pool, blueprint, cat, state.items) == []
    assert (given / 200).max() <= 0.2 + 0.01
    assert control.rates().max() <= 0.2 + 0.02  # overall and in each ability class, the recent window
    assert relaxed.sum() == 0

    uncontrolled = np.zeros(pool.size)
    for state in simulate_sittings(pool, blueprint, dataclasses.replace(cat, exposure_target=1.0, exposure_margin=0.0),
                                   (), rng.normal(size=40), rng)[0]:
        uncontrolled[state.items] += 1
    assert uncontrolled.max() / 40 > 0.5  # without control the best items go to most candidates


def test_simulate_cat_reports_the_design_figures_on_the_same_terms_as_loft():
    pool, blueprint, rng = random_case(17, 400, 2, 8, 4)
    targets = pool_targets(pool, blueprint, [("total", -0.13, None), ("F0", -2.13, 0), ("F1", -2.13, 1)])

    def score(responses):
        x = responses
        subsets = np.vstack([np.ones(pool.size, dtype=bool), pool.field == 0, pool.field == 1])
        estimate = engine.eap(x, pool.items, subsets=subsets)
        return estimate.theta, (estimate.theta[:, 0] >= -0.13) & np.all(estimate.theta[:, 1:] >= -2.13, axis=1)

    theta = rng.normal(size=25)
    report = simulate_cat("cat-ci", pool, blueprint, CatSettings(stopping="ci", exposure_target=0.4), score, targets,
                          cuts_for(2), theta, rng, field_names=("F0", "F1"), tolerance=0.05)
    assert report["sittings"] == 50 and report["candidates"] == 25
    minimum, maximum = field_limits(blueprint, CatSettings(stopping="ci"))
    assert minimum.sum() <= report["length"]["min"] <= report["length"]["max"] <= maximum.sum()
    assert 0.5 < report["classification"]["accuracy"] <= 1
    assert set(report["classification"]["cuts"]) == {"total", "F0", "F1"}
    assert report["steps"]["count"] == round(report["length"]["mean"] * 50)
    assert report["steps"]["count"] >= 50 * minimum.sum() and report["steps"]["relaxed"] >= 0
    assert 0 < report["overlap"]["mean"] < 1
