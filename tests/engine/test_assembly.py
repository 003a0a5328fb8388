"""engine.assembly and engine.design: every form meets its specification, or assembly names what it cannot meet."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.assembly import (
    AssemblyInfeasible,
    Blueprint,
    LoftPool,
    Pool,
    assemble_forms,
    assemble_loft,
    exposure_eligibility,
    form_information,
    form_violations,
    pool_targets,
)


def random_case(seed: int, n_items: int, n_fields: int, per_field: int, n_enemy: int, factor: float = 1.0):
    """A random pool and blueprint: fields with 2 to 5 categories, bounds from 0-2 to 3-8, enemy pairs and triples."""
    rng = np.random.default_rng(seed)
    categories_per_field = rng.integers(2, 6, n_fields)
    category_field = np.repeat(np.arange(n_fields), categories_per_field)
    n_categories = len(category_field)
    counts = rng.integers(per_field // 2, per_field + 1, n_fields)
    minimum = rng.integers(0, 3, n_categories)
    maximum = np.maximum(minimum + rng.integers(3, 9, n_categories), 1)
    for f in range(n_fields):  # keep the field's count reachable within its categories' bounds
        mine = category_field == f
        counts[f] = int(np.clip(counts[f], minimum[mine].sum(), maximum[mine].sum()))
    blueprint = Blueprint(tuple(f"F{f}" for f in range(n_fields)), counts,
                          tuple(f"C{m}" for m in range(n_categories)), category_field, minimum, maximum)
    category = rng.integers(0, n_categories, n_items)
    items = engine.simulate_items(n_items, "3pl", rng)
    groups = [rng.choice(n_items, size=int(rng.integers(2, 4)), replace=False) for _ in range(n_enemy)]
    pool = Pool(items, category_field[category], category, groups)
    points = [("total", -0.1, None)] + [(f"F{f}", -1.5, f) for f in range(n_fields)]
    return pool, blueprint, pool_targets(pool, blueprint, points, factor), rng


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n_items=st.integers(60, 900), n_fields=st.integers(1, 4),
       per_field=st.integers(3, 30), n_enemy=st.integers(0, 40), factor=st.sampled_from([0.9, 1.0, 1.1]))
def test_every_loft_form_meets_its_specification_or_assembly_names_what_fails(seed, n_items, n_fields, per_field,
                                                                                n_enemy, factor):
    pool, blueprint, targets, rng = random_case(seed, n_items, n_fields, per_field, n_enemy, factor)
    try:
        prepared = LoftPool.prepare(pool, blueprint, targets)
        eligibility = exposure_eligibility(rng.uniform(0, 0.5, pool.size), 0.4)
        for _ in range(3):
            form = assemble_loft(prepared, rng, tolerance=0.05, eligibility=eligibility)
            assert form_violations(pool, blueprint, form, targets, 0.05) == []
            assert len(form) == blueprint.n_items
    except AssemblyInfeasible as error:
        assert error.constraints and str(error)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), n_items=st.integers(150, 600), n_fields=st.integers(1, 3),
       per_field=st.integers(4, 20), n_enemy=st.integers(0, 30), n_forms=st.integers(1, 4))
def test_every_parallel_form_meets_its_specification_or_assembly_names_what_fails(seed, n_items, n_fields, per_field,
                                                                                    n_enemy, n_forms):
    pool, blueprint, targets, rng = random_case(seed, n_items, n_fields, per_field, n_enemy)
    max_overlap = blueprint.n_items // 3
    try:
        forms = assemble_forms(pool, blueprint, targets, n_forms, tolerance=0.05, max_overlap=max_overlap,
                               max_uses=2, rng=rng, time_limit=10)
    except AssemblyInfeasible as error:
        assert error.constraints and str(error)
        return
    assert len(forms) == n_forms
    uses = np.zeros(pool.size, dtype=int)
    for k, form in enumerate(forms):
        assert form_violations(pool, blueprint, form, targets, 0.05) == []
        uses[form] += 1
        for other in forms[:k]:
            assert len(np.intersect1d(form, other)) <= max_overlap
    assert uses.max() <= 2


def test_an_impossible_blueprint_is_refused_by_name():
    pool, blueprint, targets, rng = random_case(3, 300, 2, 10, 0)
    greedy = Blueprint(blueprint.field_names, blueprint.field_counts, blueprint.category_names,
                       blueprint.category_field, np.where(np.arange(len(blueprint.category_names)) == 0, 500, 0),
                       np.full(len(blueprint.category_names), 600))
    with pytest.raises(AssemblyInfeasible) as loft:
        LoftPool.prepare(pool, greedy, targets)
    assert f"category {blueprint.category_names[0]}" in loft.value.constraints
    with pytest.raises(AssemblyInfeasible) as milp:
        assemble_forms(pool, greedy, targets, 1, tolerance=0.05, max_overlap=10)
    assert f"category {blueprint.category_names[0]}" in milp.value.constraints
    # Too few forms for the exposure cap: 3 forms with each item on one form need more items than the field has.
    big = Blueprint(blueprint.field_names, np.array([int((pool.field == f).sum()) // 2 for f in range(2)]),
                    blueprint.category_names, blueprint.category_field, np.zeros(len(blueprint.category_names)),
                    np.full(len(blueprint.category_names), 1000))
    with pytest.raises(AssemblyInfeasible, match="exposure"):
        assemble_forms(pool, big, targets, 3, tolerance=0.05, max_overlap=1000, max_uses=1)


def test_enemy_sets_that_cannot_be_kept_are_named_by_the_milp():
    rng = np.random.default_rng(5)
    items = engine.simulate_items(12, "3pl", rng)
    # One field, one category of 12 items, all in two enemy sets of six: a form of 3 cannot avoid them.
    pool = Pool(items, np.zeros(12), np.zeros(12), [np.arange(6), np.arange(6, 12)])
    blueprint = Blueprint(("F",), np.array([3]), ("C",), np.array([0]), np.array([0]), np.array([3]))
    targets = pool_targets(pool, blueprint, [("total", 0.0, None)])
    with pytest.raises(AssemblyInfeasible) as error:
        assemble_forms(pool, blueprint, targets, 1, tolerance=0.5, max_overlap=3, per_category=None)
    assert any(name.startswith("enemy set") for name in error.value.constraints)


def test_parallel_forms_from_a_large_pool_hit_the_targets_and_keep_overlap_and_exposure():
    pool, blueprint, targets, rng = random_case(11, 2000, 3, 30, 40)
    forms = assemble_forms(pool, blueprint, targets, 4, tolerance=0.05, max_overlap=10, max_uses=1, rng=rng)
    for k, form in enumerate(forms):
        ratio = form_information(pool, form, targets) / np.array([t.information for t in targets])
        assert np.all(np.abs(ratio - 1) <= 0.05)
        for other in forms[:k]:
            assert len(np.intersect1d(form, other)) == 0  # each item on at most one form


def test_exposure_control_keeps_every_item_below_its_target():
    pool, blueprint, targets, rng = random_case(21, 400, 3, 12, 10)
    prepared = LoftPool.prepare(pool, blueprint, targets)
    counts = np.zeros(pool.size)
    sittings = 600
    for s in range(sittings):
        rates = counts / max(s, 20)
        form = assemble_loft(prepared, rng, tolerance=0.05, eligibility=exposure_eligibility(rates, 0.25))
        counts[form] += 1
    uncontrolled = np.zeros(pool.size)
    for s in range(sittings):
        uncontrolled[assemble_loft(prepared, rng, tolerance=0.05)] += 1
    assert (uncontrolled / sittings).max() > 0.3  # without control, the best-fitting items are overused
    assert (counts / sittings).max() <= 0.25 + 0.02


def test_eligibility_falls_from_one_to_zero_near_the_target():
    assert exposure_eligibility(np.array([0.0, 0.16, 0.18, 0.2, 0.3]), 0.2).tolist() == pytest.approx(
        [1.0, 1.0, 0.5, 0.0, 0.0])
