"""Adaptive testing (CAT) by shadow tests, with exposure control that holds all year.

The sitting is a sequence of steps. Before each item, :func:`next_item` assembles a
*shadow test* (van der Linden & Reese, 1998): a complete test that contains every item
given so far, meets the blueprint (field counts, middle-category bounds, enemy sets) and
has the largest information at the current ability estimate theta_hat; the item given
is the most informative unused item of the shadow test (or one at random among its
``randomesque`` most informative, Kingsbury & Zara, 1989). Because every shadow test is
a complete blueprint test, so is the sitting at every point where it may end.

Fields keep their order (strategy, management, technology): the sitting works through
one field block after another, and a block, once left, is never reopened. The shadow
test of block f is the MILP over binary x_i (item i joins the shadow test):

    maximise   sum_i I_i(theta_hat) x_i
    subject to sum_{i in field f} x_i = L_f - g_f                  (the block's length)
               lo_m - g_m <= sum_{i in category m} x_i <= hi_m - g_m (its categories)
               sum_{i in enemy group e} x_i <= 1                   (enemy sets)
               x_i = 0 for items given, enemies of items given, ineligible items

with g the items already given in the block (or category). It is built by the rows of
:mod:`engine.assembly` and solved by HiGHS (scipy.optimize.milp), like the forms. Two
exact reductions keep it to about a hundred variables, a millisecond or two:

* **the block alone**: the rows of different fields share no items, so the shadow test
  over all remaining fields separates into one problem per field; only an enemy group
  that spans the current field and a later one couples them, and then the later fields
  are solved with it (at their full length, so that whatever length they end at stays
  feasible);
* **the items that can be optimal**: in each category only the items at least as
  informative as its r-th most informative item without enemies can be in an optimal
  shadow test (r = the category's remaining room, at most the block's remaining length):
  any other item could be exchanged for one of those r, keeping every row and not
  losing information.

The LP relaxation is solved first: without enemy rows the matrix (a field row over
disjoint category rows) is totally unimodular, so the LP's optimal vertex is the MILP's
optimum; a fractional vertex goes to the MILP. HiGHS's fixed cost per call dominates at
this size, so sittings running side by side (:func:`next_items`, :func:`update_many`,
used by the simulations) share one block-diagonal LP and one estimator call.

A sitting is :func:`start`, then for each item :func:`next_item`, the answer,
:func:`update` and :func:`should_stop` (with :func:`close_field` when a block is
complete), every state an immutable :class:`CatState` passed in and returned;
:func:`run_sitting` is that loop, :func:`sitting_violations` checks its result.

Length. ``fixed``: each field block has its blueprint count (or a share of
``max_length``). Variable lengths (``se``, ``ci``, ``sprt``): a block has between a
minimum and a maximum number of items; the shadow test is as long as the block's
minimum, or one item longer than what was given once past it, so that the items given
meet every category bound at each point where the block may end (category minimums are
absolute, e.g. 2 per middle category, so the shortest blueprint test of a field is the
sum of its minimums). A block ends (:func:`should_stop`):

* ``fixed``: at its length;
* ``se``: when SE(theta_hat) <= se_target / sqrt(s_f), s_f the share of the maximum
  length in the blocks so far (so the test ends with the total's SE at its target);
* ``ci``: when the confidence interval theta_hat +- z SE excludes the cut, for the
  total's cut and the field's own (Kingsbury & Weiss, 1983), or one of them is already a
  clear fail (the pass rule needs every one);
* ``sprt``: when Wald's sequential probability ratio test of theta = cut - delta against
  cut + delta decides, for the same cuts (Reckase, 1983; Spray & Reckase, 1994):
  log LR = sum_j [x_j log(P_j(cut+d) / P_j(cut-d)) + (1 - x_j) log(Q_j(cut+d) / Q_j(cut-d))],
  pass at log((1 - beta) / alpha), fail at log(beta / (1 - alpha)), alpha = beta =
  ``sprt_error``;

and always at the block's maximum. Interim estimates (:func:`update`) are by
``estimator`` (EAP by default), with ``early_estimator`` while fewer than
``early_items`` items were answered or while the answers are all right or all wrong
(where ML has no finite estimate), for the total and for each field. The final score is
not computed here: it is the program's scoring rule over the items given.

Exposure (:class:`ExposureControl`): the item-eligibility method of van der Linden &
Veldkamp (2004, 2007). Before a sitting, item i is made eligible with probability

    p_i = min(1, r * eps_i / alpha_i, (target - rate_i) / (target - r))   (clipped to [0, 1])

where alpha_i counts the sittings that were given item i, eps_i those in which it was
eligible, rate_i = alpha_i / sittings, and r = (1 - margin) x target. Since P(given) =
P(given | eligible) P(eligible) and alpha / eps estimates the first factor, the ratio
term settles each popular item's rate at r without a simulation to tune it; it does not
see the rate itself, which wanders around r, so the second term (feedback on the observed
rate, as LOFT's :func:`engine.assembly.exposure_eligibility`) closes the item as its rate
nears the target. With ability classes (``exposure_classes``) the same counts are kept
per class of the estimate at which items are chosen, and an item must be eligible overall
and in the current estimate's class (exposure conditional on ability, van der Linden &
Veldkamp, 2007, on top of the overall guarantee). Counts fade (alpha <- w alpha + ...,
w = ``exposure_fading``) so that under year-round testing the rates follow the recent
sittings: a window of about 1 / (1 - w) sittings. Ineligible items leave the shadow
test; when no shadow test can be made of eligible items, eligibility is set aside for
that step (the blueprint comes first) and the step is counted as relaxed.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.stats import norm

from engine.ability import eap, map_estimate, ml_estimate, wle_estimate
from engine.assembly import (
    AssemblyInfeasible,
    Blueprint,
    InformationTarget,
    Pool,
    _blueprint_rows,
    _explain_infeasible,
    form_violations,
)
from engine.design import Cut, Scorer, design_report
from engine.models import EPSILON, item_information, probability
from engine.responses import MISSING, SparseResponses

__all__ = [
    "STOPPING_RULES",
    "CatChoice",
    "CatSettings",
    "CatState",
    "CatStop",
    "ExposureControl",
    "close_field",
    "cut_decisions",
    "draw_eligibility",
    "eligibility_probabilities",
    "eligible_at",
    "field_limits",
    "next_item",
    "next_items",
    "pretest_slots",
    "record_sitting",
    "run_sitting",
    "run_sittings",
    "should_stop",
    "simulate_cat",
    "simulate_sittings",
    "sitting_violations",
    "start",
    "update",
    "update_many",
]

STOPPING_RULES = ("fixed", "se", "ci", "sprt")
ESTIMATORS = ("eap", "map", "ml", "wle")


@dataclass(frozen=True)
class CatSettings:
    """How an adaptive sitting runs: everything is program configuration.

    stopping: one of STOPPING_RULES (see the module docstring); se_target: the total's
    SE (theta units) for ``se``; min_length / max_length: scored items in the whole test
    (None: the blueprint's category minimums / its count), spread over the fields in
    blueprint proportion by :func:`field_limits`; confidence: the two-sided level of
    ``ci``; sprt_delta, sprt_error: the half-width of the indifference region and
    alpha = beta of ``sprt``; estimator, early_estimator, early_items: the interim
    estimates; prior_mean, prior_sd: the prior of EAP and MAP (the scoring rule's);
    randomesque: the item is drawn among this many best of the shadow test;
    exposure_target: no item in more than this share of sittings; exposure_margin: the
    control aims at (1 - margin) x target, so that the observed rates, which scatter
    around the aim, stay under the target; exposure_classes: ability edges of classes in
    which exposure is also controlled, on top of the overall control (() for none);
    exposure_fading: the weight w of the past counts at each sitting they count (1: no
    fading); time_limit: seconds per HiGHS call.
    """

    stopping: str = "fixed"
    se_target: float = 0.25
    min_length: int | None = None
    max_length: int | None = None
    confidence: float = 0.95
    sprt_delta: float = 0.2
    sprt_error: float = 0.05
    estimator: str = "eap"
    early_estimator: str | None = None
    early_items: int = 0
    prior_mean: float = 0.0
    prior_sd: float = 1.0
    randomesque: int = 1
    exposure_target: float = 0.25
    exposure_margin: float = 0.1
    exposure_classes: tuple[float, ...] = ()
    exposure_fading: float = 1.0
    time_limit: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "exposure_classes", tuple(float(e) for e in self.exposure_classes))
        problems = []
        if self.stopping not in STOPPING_RULES:
            problems.append(f"stopping rule {self.stopping!r}: one of {', '.join(STOPPING_RULES)}")
        for name in ("estimator", "early_estimator"):
            value = getattr(self, name)
            if value is not None and value not in ESTIMATORS:
                problems.append(f"{name} {value!r}: one of {', '.join(ESTIMATORS)}")
        if not self.se_target > 0:
            problems.append("se_target must be positive")
        if not 0 < self.confidence < 1:
            problems.append("confidence must lie between 0 and 1")
        if not self.sprt_delta > 0 or not 0 < self.sprt_error < 0.5:
            problems.append("sprt_delta must be positive and sprt_error between 0 and 0.5")
        if self.prior_sd <= 0:
            problems.append("prior_sd must be positive")
        if self.randomesque < 1:
            problems.append("randomesque must be at least 1")
        if not 0 < self.exposure_target <= 1 or not 0 <= self.exposure_margin < 1:
            problems.append("exposure_target must lie in (0, 1] and exposure_margin in [0, 1)")
        if not 0 < self.exposure_fading <= 1:
            problems.append("exposure_fading must lie in (0, 1]")
        if list(self.exposure_classes) != sorted(set(self.exposure_classes)):
            problems.append("exposure_classes must be increasing ability edges")
        for name in ("min_length", "max_length"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be at least 1")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            problems.append(f"min_length {self.min_length} is above max_length {self.max_length}")
        if problems:
            raise ValueError("CAT settings: " + "; ".join(problems))

    @property
    def variable(self) -> bool:
        return self.stopping != "fixed"


def _apportion(total: int, counts: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``counts`` by largest remainders (sums to total)."""
    exact = total * counts / counts.sum()
    whole = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - whole), kind="stable")
    whole[order[:total - whole.sum()]] += 1
    return whole


def field_limits(blueprint: Blueprint, settings: CatSettings) -> tuple[np.ndarray, np.ndarray]:
    """The least and most scored items of each field block, each (n_fields,).

    Maximum: the blueprint's field counts, or ``max_length`` spread over the fields in
    their proportion. Minimum: the maximum for ``fixed``; else ``min_length`` spread the
    same way, never below the sum of the field's category minimums (the shortest test
    that meets the blueprint) nor below 1. Raises ValueError for lengths the blueprint
    cannot have.
    """
    counts = blueprint.field_counts
    n_fields = len(counts)
    floor = np.array([blueprint.category_min[blueprint.category_field == f].sum() for f in range(n_fields)])
    room = np.array([blueprint.category_max[blueprint.category_field == f].sum() for f in range(n_fields)])
    if settings.max_length is None:
        maximum = counts.copy()
    else:
        if settings.max_length > blueprint.n_items:
            raise ValueError(f"CAT max_length {settings.max_length} is above the blueprint's {blueprint.n_items} "
                             "scored items")
        maximum = _apportion(settings.max_length, counts)
    problems = [f"the {blueprint.field_names[f]} field: at most {maximum[f]} items, but its category minimums "
                f"need {floor[f]}" for f in range(n_fields) if maximum[f] < floor[f]]
    problems += [f"the {blueprint.field_names[f]} field: {maximum[f]} items, but its category maximums allow "
                 f"{room[f]}" for f in range(n_fields) if maximum[f] > room[f] and not settings.variable]
    maximum = np.minimum(maximum, np.maximum(room, floor))
    if not settings.variable:
        minimum = maximum.copy()
    else:
        spread = np.zeros(n_fields, dtype=np.int64) if settings.min_length is None else \
            _apportion(min(settings.min_length, int(counts.sum())), counts)
        minimum = np.maximum(np.maximum(spread, floor), 1)
        problems += [f"the {blueprint.field_names[f]} field: at least {minimum[f]} items, above its maximum "
                     f"{maximum[f]}" for f in range(n_fields) if minimum[f] > maximum[f]]
    if problems:
        raise ValueError("CAT lengths: " + "; ".join(problems))
    return minimum.astype(np.int64), maximum.astype(np.int64)


# ---- the state of one sitting -----------------------------------------------------------------

@dataclass(frozen=True)
class CatState:
    """One adaptive sitting so far: an immutable value, passed in and returned.

    items (n_given,): pool indices in the order given; responses (n_given,) int8 1/0;
    item_field (n_given,): each item's field; item_theta (n_given,): the estimate each
    item was chosen at (exposure control counts by it); field: the block in progress (n_fields
    once the test is over); theta, se: the interim estimate from every item; field_theta,
    field_se (n_fields,): each field's own interim estimate (the prior before its block).
    """

    items: np.ndarray
    responses: np.ndarray
    item_field: np.ndarray
    item_theta: np.ndarray
    field: int
    theta: float
    se: float
    field_theta: np.ndarray
    field_se: np.ndarray

    @property
    def n_fields(self) -> int:
        return len(self.field_theta)

    @property
    def finished(self) -> bool:
        return self.field >= self.n_fields

    @property
    def field_counts(self) -> np.ndarray:
        """Items given in each field, (n_fields,)."""
        return np.bincount(self.item_field, minlength=self.n_fields)


def start(blueprint: Blueprint, settings: CatSettings) -> CatState:
    """A sitting before its first item: the first field's block, every estimate at the prior."""
    field_limits(blueprint, settings)  # refuse lengths the blueprint cannot have before the sitting starts
    n_fields = len(blueprint.field_names)
    return CatState(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8), np.zeros(0, dtype=np.int64),
                    np.zeros(0), 0, settings.prior_mean, settings.prior_sd, np.full(n_fields, settings.prior_mean),
                    np.full(n_fields, settings.prior_sd))


def _estimates(kind: str, x, items, subsets: np.ndarray, settings: CatSettings):
    if kind == "eap":
        return eap(x, items, subsets=subsets, prior_mean=settings.prior_mean, prior_sd=settings.prior_sd)
    if kind == "map":
        return map_estimate(x, items, subsets=subsets, prior_mean=settings.prior_mean, prior_sd=settings.prior_sd)
    if kind == "ml":
        return ml_estimate(x, items, subsets=subsets)
    return wle_estimate(x, items, subsets=subsets)


def update(pool: Pool, state: CatState, item: int, response: int, settings: CatSettings) -> CatState:
    """The sitting after ``item`` was answered (``response`` 1 right, 0 wrong): a new state.

    Re-estimates theta for the total and every field from all the answers (the
    estimator with the total and the fields as subsets). Raises ValueError for an item
    already given, outside the pool or outside the block in progress.
    """
    return update_many(pool, [state], [item], [response], settings)[0]


def update_many(pool: Pool, states: list[CatState], items, responses, settings: CatSettings) -> list[CatState]:
    """:func:`update` for sittings running side by side: one estimator call for them all.

    items, responses: (n_sittings,) the item each sitting was given and its answer. The
    answers go in as one SparseResponses over the items any of them has seen, with the
    total and each field as subsets (1 + n_fields, n_seen).
    """
    new_items, new_responses, new_fields = [], [], []
    for state, item, response in zip(states, items, responses):
        item = int(item)
        if state.finished:
            raise ValueError("the sitting is over: no more items")
        if not 0 <= item < pool.size:
            raise ValueError(f"item {item} is not in the pool of {pool.size} items")
        if item in state.items:
            raise ValueError(f"item {item} was given already")
        if pool.field[item] != state.field:
            raise ValueError(f"item {item} is not in the field block in progress ({state.field})")
        if response not in (0, 1):
            raise ValueError(f"a response is 1 (right) or 0 (wrong), not {response!r}")
        new_items.append(np.r_[state.items, item].astype(np.int64))
        new_responses.append(np.r_[state.responses, response].astype(np.int8))
        new_fields.append(np.r_[state.item_field, pool.field[item]].astype(np.int64))
    n_fields = states[0].n_fields
    seen, column = np.unique(np.concatenate(new_items), return_inverse=True)
    lengths = [len(i) for i in new_items]
    sitting = np.repeat(np.arange(len(states)), lengths)
    x = SparseResponses.from_triples(sitting, column, np.concatenate(new_responses), len(states), len(seen))
    subsets = np.vstack([np.ones(len(seen), dtype=bool)] + [pool.field[seen] == f for f in range(n_fields)])
    given = pool.items.subset(seen)
    main = _estimates(settings.estimator, x, given, subsets, settings)
    theta, se = np.array(main.theta, dtype=float), np.array(main.se, dtype=float)
    # Answers per sitting and scope (total, fields): (n_sittings, 1 + n_fields).
    scope = np.column_stack([np.ones(len(sitting), dtype=bool)]
                            + [pool.field[seen[column]] == f for f in range(n_fields)])
    right_answers = np.concatenate(new_responses) == 1
    presented = np.array([np.bincount(sitting, weights=scope[:, k], minlength=len(states))
                          for k in range(1 + n_fields)]).T
    right = np.array([np.bincount(sitting, weights=scope[:, k] & right_answers, minlength=len(states))
                      for k in range(1 + n_fields)]).T
    if settings.early_estimator is not None and settings.early_estimator != settings.estimator:
        early = (presented < settings.early_items) | (right == 0) | (right == presented)
        if early.any():
            first = _estimates(settings.early_estimator, x, given, subsets, settings)
            theta[early], se[early] = first.theta[early], first.se[early]
    # A field not begun keeps the prior (ML and WLE have no estimate without items).
    theta[presented == 0], se[presented == 0] = settings.prior_mean, settings.prior_sd
    return [CatState(new_items[b], new_responses[b], new_fields[b], np.r_[state.item_theta, state.theta],
                     state.field, float(theta[b, 0]), float(se[b, 0]), theta[b, 1:], se[b, 1:])
            for b, state in enumerate(states)]


def close_field(state: CatState) -> CatState:
    """The sitting moved on to the next field block (or ended after the last)."""
    return dataclasses.replace(state, field=state.field + 1)


# ---- the shadow test -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CatChoice:
    """The next item, and the shadow test it came from.

    shadow_test: sorted pool indices, the items given and the rest of the shadow test
    of the fields solved (the current one, and any later one an enemy group ties to it);
    information: the item's information at theta_hat; relaxed: the exposure control was
    set aside at this step because no shadow test could be made of eligible items.
    """

    item: int
    field: int
    shadow_test: np.ndarray
    information: float
    relaxed: bool


def _block_lengths(blueprint: Blueprint, state: CatState, settings: CatSettings) -> np.ndarray:
    """The shadow test's length in each field from the current one on (0 before it)."""
    minimum, maximum = field_limits(blueprint, settings)
    given = state.field_counts
    lengths = np.zeros(len(maximum), dtype=np.int64)
    f = state.field
    lengths[f] = min(int(maximum[f]), max(int(given[f]) + 1, int(minimum[f]))) if settings.variable else maximum[f]
    lengths[f + 1:] = maximum[f + 1:]
    return lengths


def _enemy_members(pool: Pool) -> tuple[np.ndarray, np.ndarray]:
    """Every enemy group's members side by side (pool indices) and the group of each."""
    if not pool.enemy_groups:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    sizes = [len(g) for g in pool.enemy_groups]
    return np.concatenate(pool.enemy_groups), np.repeat(np.arange(len(sizes)), sizes)


def _linked_fields(pool: Pool, members: np.ndarray, group: np.ndarray, field: int) -> bool:
    """Whether an enemy group spans the current field and a later one (then the later fields are solved too)."""
    if len(members):
        n_groups = int(group.max()) + 1
        here = np.bincount(group, weights=pool.field[members] == field, minlength=n_groups) > 0
        later = np.bincount(group, weights=pool.field[members] > field, minlength=n_groups) > 0
        return bool(np.any(here & later))
    return False


def next_item(pool: Pool, blueprint: Blueprint, state: CatState, settings: CatSettings,
              eligible: np.ndarray | None = None, rng: np.random.Generator | None = None, *,
              excluded: np.ndarray | None = None) -> CatChoice:
    """The next item of the sitting: the most informative unused item of the shadow test.

    eligible: (n,) bool, the exposure control's draw for the class of theta_hat
    (:func:`eligible_at`; None: all eligible); set aside at a step when no shadow test
    can be made of eligible items. excluded: (n,) bool, items that may never be given in
    this sitting (enemies of its pretest items, items the candidate saw in an earlier
    sitting); never set aside. rng: for the randomesque draw. Raises AssemblyInfeasible
    naming the constraints when no shadow test exists, ValueError when the block in
    progress is complete.
    """
    return next_items(pool, blueprint, [state], settings, None if eligible is None else [eligible], rng,
                      excluded=None if excluded is None else [excluded])[0]


@dataclass(frozen=True)
class _Step:
    """One sitting's shadow-test problem: the candidates, their pool, the rows' counts, theta_hat's information."""

    state: CatState
    field: int
    rest: Blueprint
    usable: np.ndarray
    room: np.ndarray
    info: np.ndarray


def next_items(pool: Pool, blueprint: Blueprint, states: list[CatState], settings: CatSettings,
               eligible: list | np.ndarray | None = None, rng: np.random.Generator | None = None, *,
               excluded: list | np.ndarray | None = None) -> list[CatChoice]:
    """:func:`next_item` for sittings running side by side (eligible, excluded: one (n,) row each).

    The sittings' shadow tests are independent problems: their LP relaxations go to
    HiGHS as one block-diagonal LP (each block keeps its integral vertex), so the cost
    of a call is shared; a block with a fractional vertex is solved as its own MILP.
    """
    rng = np.random.default_rng(rng)
    members, group = _enemy_members(pool)
    in_enemy_group = np.zeros(pool.size, dtype=bool)
    in_enemy_group[members] = True
    steps = [_prepare_step(pool, blueprint, state, settings, members, group,
                           None if excluded is None else excluded[b]) for b, state in enumerate(states)]
    controlled = eligible is not None
    candidates = [step.usable if eligible is None else step.usable & np.asarray(eligible[b], dtype=np.bool_)
                  for b, step in enumerate(steps)]
    keeps = [_optimal_candidates(pool, c, step.info, in_enemy_group, step.room) for c, step in zip(candidates, steps)]
    subs = [_candidate_pool(pool, keep, members, group) for keep in keeps]
    solutions = _shadow_tests(subs, steps, keeps, settings.time_limit)
    relaxed = [False] * len(steps)
    for b, step in enumerate(steps):
        if solutions[b] is None and controlled:
            # The blueprint comes first: this step is made of every usable item.
            keeps[b] = _optimal_candidates(pool, step.usable, step.info, in_enemy_group, step.room)
            subs[b] = _candidate_pool(pool, keeps[b], members, group)
            solutions[b] = _shadow_tests([subs[b]], [step], [keeps[b]], settings.time_limit)[0]
            relaxed[b] = True
        if solutions[b] is None:
            rows = _blueprint_rows(subs[b], step.rest, [], 0)
            names = _explain_infeasible(subs[b], rows, np.ones(subs[b].size), settings.time_limit)
            raise AssemblyInfeasible(f"no shadow test for the {blueprint.field_names[step.field]} block: "
                                     f"{'; '.join(names) or 'the blueprint as a whole'}", names or ("blueprint",))
    choices = []
    for b, step in enumerate(steps):
        solution = solutions[b]
        free = solution[pool.field[solution] == step.field]
        order = free[np.argsort(-step.info[free], kind="stable")]
        item = int(order[rng.integers(min(settings.randomesque, len(order)))])
        choices.append(CatChoice(item, step.field, np.sort(np.r_[step.state.items, solution]).astype(np.int64),
                                 float(step.info[item]), relaxed[b]))
    return choices


def _prepare_step(pool: Pool, blueprint: Blueprint, state: CatState, settings: CatSettings, members: np.ndarray,
                  group: np.ndarray, excluded: np.ndarray | None) -> _Step:
    if state.finished:
        raise ValueError("the sitting is over: no more items")
    f = state.field
    n_fields = len(blueprint.field_names)
    lengths = _block_lengths(blueprint, state, settings)
    if state.field_counts[f] >= lengths[f]:
        raise ValueError(f"the {blueprint.field_names[f]} block is complete: close it before the next item")
    linked = _linked_fields(pool, members, group, f)
    in_scope = pool.field >= f if linked else pool.field == f

    blocked = np.zeros(pool.size, dtype=bool)
    blocked[state.items] = True
    if len(members):
        # Every member of a group that has an item given is out.
        hit = np.bincount(group, weights=blocked[members], minlength=int(group.max()) + 1) > 0
        blocked[members[hit[group]]] = True
    if excluded is not None:
        blocked |= np.asarray(excluded, dtype=bool)

    info = np.zeros(pool.size)
    scope_index = np.flatnonzero(in_scope)
    info[scope_index] = item_information(np.array([state.theta]), pool.items.subset(scope_index))[0]
    given_category = np.bincount(pool.category[state.items], minlength=len(blueprint.category_names))
    # The problem of the remaining items: counts and bounds less what was given.
    solved = np.arange(n_fields) >= f if linked else np.arange(n_fields) == f
    remaining = np.where(solved, lengths - state.field_counts, 0)
    scoped = solved[blueprint.category_field]
    rest = dataclasses.replace(
        blueprint, field_counts=remaining,
        category_min=np.where(scoped, np.maximum(blueprint.category_min - given_category, 0), 0),
        category_max=np.where(scoped, np.maximum(blueprint.category_max - given_category, 0), 0))
    room = np.minimum(rest.category_max, remaining[blueprint.category_field])
    return _Step(state, f, rest, in_scope & ~blocked, room, info)


def _optimal_candidates(pool: Pool, candidates: np.ndarray, info: np.ndarray, in_enemy_group: np.ndarray,
                        room: np.ndarray) -> np.ndarray:
    """The candidates that can be in an optimal shadow test (sorted pool indices).

    Per category m: the items down to and including its room[m]-th most informative item
    without enemies (all of them when it has fewer). Any other item of an optimal test
    could be exchanged for one of those room[m] items not on it: the same rows, no enemy,
    no less information.
    """
    index = np.flatnonzero(candidates)
    if not len(index):
        return index
    # By category, the most informative first: one sort of a combined key.
    span = 2.0 * float(info[index].max()) + 1.0
    order = index[np.argsort(pool.category[index] * span - info[index], kind="stable")]
    category = pool.category[order]
    free = ~in_enemy_group[order]
    # Items without enemies ranked above each item within its category.
    before = np.cumsum(free) - free
    starts = np.r_[0, np.flatnonzero(np.diff(category)) + 1]
    offset = np.repeat(before[starts], np.diff(np.r_[starts, len(order)]))
    return np.sort(order[(before - offset) < room[category]])


def _candidate_pool(pool: Pool, keep: np.ndarray, members: np.ndarray, group: np.ndarray) -> Pool:
    """The pool of the candidates ``keep`` (sorted pool indices), with the enemy groups among them."""
    position = np.full(pool.size, -1, dtype=np.int64)
    position[keep] = np.arange(len(keep))
    inside = position[members] >= 0
    groups = []
    if inside.any():
        n_groups = int(group.max()) + 1
        shared = np.flatnonzero(np.bincount(group[inside], minlength=n_groups) > 1)
        groups = [position[members[inside & (group == g)]] for g in shared]
    return Pool(pool.items.subset(keep), pool.field[keep], pool.category[keep], tuple(groups))


def _shadow_tests(subs: list[Pool], steps: list[_Step], keeps: list[np.ndarray], time_limit: float) -> list:
    """The free part of each sitting's shadow test (pool indices), or None where none exists among its
    candidates ``keeps[b]`` (``subs[b]`` is their pool).

    The LP relaxation first: without enemy rows the constraint matrix (one row per field
    over disjoint category rows, an interval matrix) is totally unimodular, so the LP's
    optimal vertex is integral and is the MILP's optimum, found in a fraction of the
    time HiGHS's MIP solver takes to start. The sittings' problems are the blocks of one
    LP; a fractional block (enemy rows) goes to the MILP on its own, and when the joint LP
    is infeasible each block is tried on its own to find which.
    """
    some = [b for b, keep in enumerate(keeps) if len(keep)]
    if len(some) < len(keeps):
        # No candidate at all: no shadow test (the block always needs one more item).
        solutions: list = [None] * len(keeps)
        if some:
            found = _shadow_tests([subs[b] for b in some], [steps[b] for b in some], [keeps[b] for b in some],
                                  time_limit)
            for b, solution in zip(some, found):
                solutions[b] = solution
        return solutions
    problems = []
    for sub, step, keep in zip(subs, steps, keeps):
        rows = _blueprint_rows(sub, step.rest, [], 0)
        problems.append((-step.info[keep], rows))
    sizes = np.array([len(k) for k in keeps])
    offsets = np.r_[0, np.cumsum(sizes)]
    if len(problems) == 1:
        matrix = problems[0][1].matrix
    else:
        matrix = sparse.block_diag([rows.matrix for _, rows in problems], format="csr")
    lower = np.concatenate([rows.lower for _, rows in problems])
    upper = np.concatenate([rows.upper for _, rows in problems])
    cost = np.concatenate([c for c, _ in problems])
    relaxation = milp(cost, integrality=np.zeros(len(cost)), bounds=Bounds(0, 1),
                      constraints=[LinearConstraint(matrix, lower, upper)],
                      options={"time_limit": time_limit, "presolve": True})
    if relaxation.x is None:
        if len(problems) == 1:
            return [None if relaxation.status == 2 else _solve_integer(*problems[0], keeps[0], time_limit)]
        return [_shadow_tests([sub], [step], [keep], time_limit)[0] for sub, step, keep in zip(subs, steps, keeps)]
    solutions = []
    for b, keep in enumerate(keeps):
        x = relaxation.x[offsets[b]:offsets[b + 1]]
        if np.all(np.minimum(x, 1 - x) < 1e-7):
            solutions.append(keep[x > 0.5])
        else:
            solutions.append(_solve_integer(*problems[b], keep, time_limit))
    return solutions


def _solve_integer(cost: np.ndarray, rows, keep: np.ndarray, time_limit: float):
    result = milp(cost, integrality=np.ones(len(keep)), bounds=Bounds(0, 1),
                  constraints=[LinearConstraint(rows.matrix, rows.lower, rows.upper)],
                  options={"time_limit": time_limit, "presolve": True})
    return None if result.x is None else keep[result.x > 0.5]


# ---- stopping --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CatStop:
    """Whether the block in progress is complete, whether the test is, and why."""

    field_complete: bool
    test_complete: bool
    reason: str


def cut_decisions(pool: Pool, state: CatState, settings: CatSettings, cuts: tuple[Cut, ...]) -> np.ndarray:
    """For each cut (n_cuts,): +1 a clear pass, -1 a clear fail, 0 not yet decided.

    A cut with field None is judged on every item given, a field's cut on its own items,
    by the confidence interval (``ci``, and for ``fixed``/``se`` too) or by the SPRT.
    """
    decisions = np.zeros(len(cuts), dtype=np.int64)
    z = norm.ppf(0.5 + settings.confidence / 2)
    for k, cut in enumerate(cuts):
        mine = np.ones(len(state.items), dtype=bool) if cut.field is None else state.item_field == cut.field
        if not mine.any():
            continue
        if settings.stopping == "sprt":
            items = pool.items.subset(state.items[mine])
            p = np.clip(probability(np.array([cut.theta - settings.sprt_delta, cut.theta + settings.sprt_delta]),
                                    items), EPSILON, 1 - EPSILON)
            x = state.responses[mine]
            ratio = float(np.sum(x * np.log(p[1] / p[0]) + (1 - x) * np.log((1 - p[1]) / (1 - p[0]))))
            alpha = beta = settings.sprt_error
            decisions[k] = 1 if ratio >= np.log((1 - beta) / alpha) else -1 if ratio <= np.log(beta / (1 - alpha)) else 0
        else:
            theta, se = (state.theta, state.se) if cut.field is None else \
                (state.field_theta[cut.field], state.field_se[cut.field])
            decisions[k] = 1 if theta - z * se > cut.theta else -1 if theta + z * se < cut.theta else 0
    return decisions


def should_stop(pool: Pool, blueprint: Blueprint, state: CatState, settings: CatSettings,
                cuts: tuple[Cut, ...] = ()) -> CatStop:
    """Whether the block in progress is complete (then :func:`close_field`) and the test with it.

    A block is never complete below its minimum and always at its maximum; between them
    the stopping rule decides (module docstring). For ``ci`` and ``sprt`` the cuts that
    count are the total's (field None) and the block's own field's.
    """
    if state.finished:
        return CatStop(True, True, "the sitting is over")
    f = state.field
    last = f == len(blueprint.field_names) - 1
    minimum, maximum = field_limits(blueprint, settings)
    given = int(state.field_counts[f])
    name = blueprint.field_names[f]

    def done(reason: str) -> CatStop:
        return CatStop(True, last, reason)

    if given >= maximum[f]:
        return done(f"{name}: {given} items, the block's {'length' if not settings.variable else 'maximum'}")
    if given < minimum[f] or not settings.variable:
        return CatStop(False, False, f"{name}: {given} of at least {minimum[f]} items")
    if settings.stopping == "se":
        share = maximum[:f + 1].sum() / maximum.sum()
        wanted = settings.se_target / np.sqrt(share)
        if state.se <= wanted:
            return done(f"{name}: SE {state.se:.3f} at or under {wanted:.3f}")
        return CatStop(False, False, f"{name}: SE {state.se:.3f} above {wanted:.3f}")
    relevant = [k for k, cut in enumerate(cuts) if cut.field is None or cut.field == f]
    if not relevant:
        raise ValueError(f"the {settings.stopping} stopping rule needs the cut scores (none for the total or {name})")
    decisions = cut_decisions(pool, state, settings, tuple(cuts[k] for k in relevant))
    if np.any(decisions < 0):
        return done(f"{name}: a clear fail ({settings.stopping})")
    if np.all(decisions != 0):
        return done(f"{name}: every cut decided ({settings.stopping})")
    return CatStop(False, False, f"{name}: a cut is not decided yet")


def sitting_violations(pool: Pool, blueprint: Blueprint, settings: CatSettings, items: np.ndarray) -> list[str]:
    """Every way the scored items of a finished sitting (in the order given) miss the blueprint.

    The fields in blueprint order, each block's length within :func:`field_limits`, and
    then :func:`engine.assembly.form_violations` (category bounds, enemy sets, no item
    twice) with the block lengths as the field counts.
    """
    items = np.asarray(items, dtype=np.int64)
    if len(items) and (items.min() < 0 or items.max() >= pool.size):
        return ["an index outside the pool"]
    problems = []
    if np.any(np.diff(pool.field[items]) < 0):
        problems.append("the fields are not in blueprint order")
    minimum, maximum = field_limits(blueprint, settings)
    counts = np.bincount(pool.field[items], minlength=len(blueprint.field_names))
    for f, name in enumerate(blueprint.field_names):
        if not minimum[f] <= counts[f] <= maximum[f]:
            problems.append(f"field {name}: {counts[f]} items, the CAT allows {minimum[f]} to {maximum[f]}")
    return problems + form_violations(pool, dataclasses.replace(blueprint, field_counts=counts), items)


def pretest_slots(minimum: np.ndarray, pretest: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Where each field block's pretest items go: per field, sorted positions within the block.

    Positions count every item of the block, scored and pretest; they are drawn at
    random among the first minimum[f] + pretest[f] (every block is at least that long),
    so the pretest items sit at random places whatever length the block ends at.
    """
    return [np.sort(rng.choice(int(m + p), size=int(p), replace=False)) for m, p in zip(minimum, pretest)]


# ---- exposure control across sittings -----------------------------------------------------------

@dataclass(frozen=True)
class ExposureControl:
    """Eligibility counts (van der Linden & Veldkamp), an immutable value carried from sitting to sitting.

    Row 0 is every sitting; with ability edges, rows 1.. are the classes they make.
    administered, eligible (n_rows, n): faded counts alpha and eps; sittings (n_rows,):
    faded sittings per row; aim = (1 - margin) x target; fading: the weight w of the
    past at each sitting a row counts.
    """

    target: float
    aim: float
    edges: np.ndarray
    administered: np.ndarray
    eligible: np.ndarray
    sittings: np.ndarray
    fading: float

    @classmethod
    def start(cls, n_items: int, settings: CatSettings) -> ExposureControl:
        n_rows = 1 + (len(settings.exposure_classes) + 1 if settings.exposure_classes else 0)
        return cls(settings.exposure_target, settings.exposure_target * (1 - settings.exposure_margin),
                   np.array(settings.exposure_classes, dtype=float), np.zeros((n_rows, n_items)),
                   np.zeros((n_rows, n_items)), np.zeros(n_rows), settings.exposure_fading)

    def row_of(self, theta: float) -> int:
        """The row of the ability class ``theta`` is in (0 when there are no classes)."""
        return 0 if not len(self.edges) else 1 + int(np.searchsorted(self.edges, theta, side="right"))

    def rates(self) -> np.ndarray:
        """Each item's (faded) share of each row's sittings, (n_rows, n)."""
        return self.administered / np.maximum(self.sittings, 1.0)[:, None]


def eligibility_probabilities(control: ExposureControl, warmup: int = 20) -> np.ndarray:
    """Each item's probability of eligibility in each row, (n_rows, n).

    p_ri = min(1, aim eps_ri / alpha_ri, (target - rate_ri) / (target - aim)), clipped to
    [0, 1], with rate_ri = alpha_ri / max(sittings_r, warmup) the item's recent share of
    the row's sittings. The ratio is van der Linden & Veldkamp's: it makes P(given) =
    aim in expectation but does not see the rate itself, which drifts like a random walk
    around the aim; the second term is a feedback on the observed rate (the LOFT rule of
    :func:`engine.assembly.exposure_eligibility`) that holds it under the target. An item
    never given (alpha = 0) is eligible.
    """
    alpha, eps = control.administered, control.eligible
    rate = alpha / np.maximum(control.sittings, warmup)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(alpha > 0, control.aim * eps / alpha, 1.0)
    feedback = (control.target - rate) / max(control.target - control.aim, 1e-9)
    return np.clip(np.minimum(ratio, feedback), 0.0, 1.0)


def draw_eligibility(control: ExposureControl, rng: np.random.Generator) -> np.ndarray:
    """One sitting's eligibility draw for every row, (n_rows, n) bool."""
    p = eligibility_probabilities(control)
    return rng.random(p.shape) < p


def eligible_at(control: ExposureControl, drawn: np.ndarray, theta: float) -> np.ndarray:
    """The items eligible at a step whose estimate is ``theta`` (n,): eligible overall and in theta's class."""
    row = control.row_of(theta)
    return drawn[0] if row == 0 else drawn[0] & drawn[row]


def record_sitting(control: ExposureControl, state: CatState, drawn: np.ndarray) -> ExposureControl:
    """The counts after a sitting (its items and the estimates they were chosen at) with eligibility ``drawn``.

    Row 0: alpha <- w alpha + given, eps <- w eps + drawn_0, sittings <- w sittings + 1:
    the fixed point of p = aim eps / alpha is P(given) = aim whatever else limits the
    choice, so every item's share of sittings settles at or under the aim. Each class
    row counts the sittings whose estimate was in the class when an item was chosen,
    eps from its own draw, alpha the items chosen while there (exposure conditional on
    the estimate, on top of the overall guarantee).
    """
    w = control.fading
    administered, eligible, sittings = control.administered.copy(), control.eligible.copy(), control.sittings.copy()
    drawn = np.asarray(drawn, dtype=bool)
    items = np.asarray(state.items, dtype=np.int64)
    rows = np.array([control.row_of(t) for t in state.item_theta], dtype=np.int64)
    visits = [(0, items)] + [(int(r), items[rows == r]) for r in np.unique(rows) if r > 0]
    for r, given in visits:
        administered[r] *= w
        administered[r, given] += 1.0
        eligible[r] = w * eligible[r] + drawn[r]
        sittings[r] = w * sittings[r] + 1.0
    return dataclasses.replace(control, administered=administered, eligible=eligible, sittings=sittings)


# ---- simulation -----------------------------------------------------------------------------------

def run_sitting(pool: Pool, blueprint: Blueprint, settings: CatSettings, cuts: tuple[Cut, ...],
                answer: Callable[[int], int], rng: np.random.Generator, *, eligible: np.ndarray | None = None,
                control: ExposureControl | None = None, excluded: np.ndarray | None = None,
                timings: list | None = None) -> tuple[CatState, int]:
    """One whole sitting through :func:`next_item`, :func:`update`, :func:`should_stop`, :func:`close_field`.

    answer(item) -> 1 or 0; eligible: (n_rows, n) the sitting's eligibility draw
    (:func:`draw_eligibility`), used through :func:`eligible_at` at the estimate of each
    step (control gives the classes; without it, row 0). timings: when given, each
    step's seconds (choice, estimate, stopping rule) are appended. Returns the final
    state and the number of steps at which exposure control was set aside.
    """
    state = start(blueprint, settings)
    relaxed = 0
    while True:
        started = time.perf_counter()
        row = None if eligible is None else eligible[0] if control is None else \
            eligible_at(control, eligible, state.theta)
        choice = next_item(pool, blueprint, state, settings, row, rng, excluded=excluded)
        state = update(pool, state, choice.item, answer(choice.item), settings)
        stop = should_stop(pool, blueprint, state, settings, cuts)
        if timings is not None:
            timings.append(time.perf_counter() - started)
        relaxed += choice.relaxed
        if stop.field_complete:
            state = close_field(state)
        if stop.test_complete:
            return state, relaxed


def run_sittings(pool: Pool, blueprint: Blueprint, settings: CatSettings, cuts: tuple[Cut, ...],
                 answer: Callable[[np.ndarray, np.ndarray], np.ndarray], n_sittings: int,
                 rng: np.random.Generator, *, eligible: np.ndarray | None = None,
                 control: ExposureControl | None = None) -> tuple[list[CatState], np.ndarray, int]:
    """``n_sittings`` sittings side by side, step for step (:func:`next_items`, :func:`update_many`).

    answer(sittings, items) -> (k,) responses of those sittings to those items;
    eligible: (n_sittings, n_rows, n) their eligibility draws. A sitting that ends
    drops out; the others go on. Returns the final states, the steps at which exposure
    control was set aside per sitting, and the number of batched steps taken.
    """
    states = [start(blueprint, settings) for _ in range(n_sittings)]
    relaxed = np.zeros(n_sittings, dtype=np.int64)
    active = list(range(n_sittings))
    rounds = 0
    while active:
        rows = None if eligible is None else [
            eligible[b][0] if control is None else eligible_at(control, eligible[b], states[b].theta) for b in active]
        choices = next_items(pool, blueprint, [states[b] for b in active], settings, rows, rng)
        items = np.array([c.item for c in choices])
        responses = answer(np.array(active), items)
        updated = update_many(pool, [states[b] for b in active], items, responses, settings)
        still = []
        for b, state, choice in zip(active, updated, choices):
            stop = should_stop(pool, blueprint, state, settings, cuts)
            relaxed[b] += choice.relaxed
            states[b] = close_field(state) if stop.field_complete else state
            if not stop.test_complete:
                still.append(b)
        active = still
        rounds += 1
    return states, relaxed, rounds


def simulate_sittings(pool: Pool, blueprint: Blueprint, settings: CatSettings, cuts: tuple[Cut, ...],
                      theta: np.ndarray, rng: np.random.Generator, *, control: ExposureControl | None = None,
                      concurrent: int = 20) -> tuple[list[CatState], ExposureControl, np.ndarray]:
    """Simulated candidates of true abilities ``theta`` (n,) through the adaptive test, in order.

    ``concurrent`` sittings run at a time, as at the centres: they draw their
    eligibility from the same counts, updated when the batch ends. Responses are drawn
    from the true ability as each item is given. Returns the final states, the exposure
    control after the last sitting (to seed the counts before going live, or to carry a
    simulated year on) and the relaxed steps of each sitting.
    """
    theta = np.asarray(theta, dtype=float)
    control = ExposureControl.start(pool.size, settings) if control is None else control
    states: list[CatState] = []
    relaxed = []
    for first in range(0, len(theta), concurrent):
        batch = np.arange(first, min(first + concurrent, len(theta)))

        def answer(sittings: np.ndarray, items: np.ndarray, batch=batch) -> np.ndarray:
            a, b, c = pool.items.a[items], pool.items.b[items], pool.items.c[items]
            upper = 1.0 if pool.items.d is None else pool.items.d[items]
            p = c + (upper - c) / (1.0 + np.exp(-a * (theta[batch[sittings]] - b)))
            return (rng.random(len(items)) < p).astype(np.int8)

        drawn = np.array([draw_eligibility(control, rng) for _ in batch])
        finished, steps_relaxed, _ = run_sittings(pool, blueprint, settings, cuts, answer, len(batch), rng,
                                                  eligible=drawn, control=control)
        relaxed.append(steps_relaxed)
        for k, state in enumerate(finished):
            control = record_sitting(control, state, drawn[k])
        states.extend(finished)
    return states, control, np.concatenate(relaxed) if relaxed else np.zeros(0, dtype=np.int64)


def simulate_cat(name: str, pool: Pool, blueprint: Blueprint, settings: CatSettings, score: Scorer,
                 targets: tuple[InformationTarget, ...], cuts: tuple[Cut, ...], theta: np.ndarray,
                 rng: np.random.Generator, *, field_names: tuple[str, ...], tolerance: float,
                 scale: tuple[float, float] = (1.0, 0.0), grid: np.ndarray | None = None,
                 overlap_pairs: int = 2000, control: ExposureControl | None = None,
                 concurrent: int = 20) -> dict:
    """``len(theta)`` candidates, each sitting twice, through the adaptive test: the report of a design study.

    The same report as :func:`engine.design.simulate_design` (so CAT, LOFT and forms
    compare on the same figures), plus ``steps`` (steps per sitting, steps where
    exposure control was set aside, the simulation's time per sitting-step) and
    ``control`` (the final eligibility figures). Sittings run ``concurrent`` at a time,
    as at the centres: the sittings of a batch draw their eligibility from the same
    counts, which are updated when the batch ends (a fresh control unless one is
    passed). Responses are drawn from the true ability as each item is given; the final
    scores come from ``score`` over all the sittings' answers at once.
    """
    theta = np.asarray(theta, dtype=float)
    n = len(theta)
    started = time.perf_counter()
    states, control, relaxed = simulate_sittings(pool, blueprint, settings, cuts, np.r_[theta, theta], rng,
                                                 control=control, concurrent=concurrent)
    forms = [state.items for state in states]
    responses = np.full((2 * n, pool.size), MISSING, dtype=np.int8)
    for s, state in enumerate(states):
        responses[s, state.items] = state.responses
    assembly_seconds = time.perf_counter() - started
    started = time.perf_counter()
    estimate, passed = score(responses)
    scoring_seconds = time.perf_counter() - started
    report = design_report(name, pool, forms, estimate, passed, targets, cuts, theta, rng, tolerance=tolerance,
                           exposure_target=settings.exposure_target, field_names=field_names, scale=scale, grid=grid,
                           overlap_pairs=overlap_pairs,
                           seconds={"assembly": round(assembly_seconds, 3), "scoring": round(scoring_seconds, 3),
                                    "assembly_per_sitting_ms": round(1000 * assembly_seconds / (2 * n), 3)})
    steps = int(sum(len(f) for f in forms))
    report["steps"] = {"count": steps, "relaxed": int(relaxed.sum()), "concurrent": concurrent,
                       "ms_per_sitting_step": round(1000 * assembly_seconds / steps, 3)}
    p = eligibility_probabilities(control)
    report["control"] = {"rows": len(control.sittings), "aim": control.aim,
                         "ineligible_share": float(1 - p[0].mean()), "row_sittings": control.sittings.round(1).tolist()}
    return report
