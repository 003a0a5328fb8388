"""Form assembly: parallel forms by mixed-integer programming, and linear-on-the-fly forms.

Both methods work on the same description of the task:

* a :class:`Pool` of ``n`` items: parameters, each item's field and middle category
  (integer indices into the blueprint), and enemy groups (items that may not sit together);
* a :class:`Blueprint`: items per field, and lower and upper bounds on items per
  middle category;
* :class:`InformationTarget` s: the test information wanted at given abilities (the cut
  points of the total and of the fields), each over the whole form or one field's items,
  with a relative ``tolerance``.

A form is an int array of pool indices. :func:`form_violations` lists every way a form
misses its specification, and both methods run it on what they return: a form is never
silently short or off-blueprint; when one cannot be built, :class:`AssemblyInfeasible`
names the constraints that cannot be met.

Pre-assembled forms (:func:`assemble_forms`) are built one after another, each a MILP
solved by HiGHS (scipy.optimize.milp): binary x_i (item i on the form) and the largest
relative deviation y from the information targets,

    minimise y  subject to
        sum_{i in field f} x_i = n_f                        (field counts)
        lo_m <= sum_{i in category m} x_i <= hi_m           (category coverage)
        sum_{i in enemy group e} x_i <= 1                   (enemy sets)
        sum_{i in form g} x_i <= max_overlap                (each earlier form g)
        | sum_i I_k(i) x_i / T_k - 1 | <= y                 (each target k)
        x_i = 0 for items already on max_uses forms         (exposure)

Building forms one at a time toward a target (not toward maximum information) leaves
good items for the later forms, so the last form is as close to the target as the first.

LOFT (:func:`assemble_loft`) builds a form for one sitting in milliseconds with the
weighted-deviations heuristic (Swanson & Stocking, 1993): it adds one item at a time,
the one whose information at each target point is closest to what the form still
needs per remaining slot, choosing at random among the ``randomesque`` best (Kingsbury
& Zara, 1989), while the blueprint's counts, category bounds and enemy sets are kept
exactly (an item is a candidate only if the rest of the form can still meet them).
Exposure control is by eligibility: item i takes part in a sitting with probability
:func:`exposure_eligibility` of its observed exposure rate, which falls from 1 to 0 as
the rate nears the target; content constraints come first, so an ineligible item is
used only when no eligible one can fill a slot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, cast

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from engine.models import ItemParameters, item_information

__all__ = [
    "AssemblyInfeasible",
    "Blueprint",
    "InformationTarget",
    "LoftPool",
    "Pool",
    "assemble_forms",
    "assemble_loft",
    "choose_least_exposed",
    "exposure_eligibility",
    "form_information",
    "form_violations",
    "pool_targets",
]


class AssemblyInfeasible(ValueError):
    """No form meets the specification; ``constraints`` names the ones that cannot be met."""

    def __init__(self, message: str, constraints: tuple[str, ...] = ()):
        super().__init__(message)
        self.constraints = constraints


@dataclass(frozen=True)
class Blueprint:
    """What every form holds.

    field_names (n_fields,), field_counts (n_fields,) items per form;
    category_names (n_categories,), category_field (n_categories,) the field index of
    each category, category_min / category_max (n_categories,) items per form.
    """

    field_names: tuple[str, ...]
    field_counts: np.ndarray
    category_names: tuple[str, ...]
    category_field: np.ndarray
    category_min: np.ndarray
    category_max: np.ndarray

    def __post_init__(self) -> None:
        for name in ("field_counts", "category_field", "category_min", "category_max"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        if len(self.field_counts) != len(self.field_names):
            raise ValueError("field_counts and field_names differ in length")
        if not (len(self.category_names) == len(self.category_field) == len(self.category_min)
                == len(self.category_max)):
            raise ValueError("category arrays differ in length")
        if np.any(self.category_min > self.category_max):
            bad = int(np.argmax(self.category_min > self.category_max))
            raise ValueError(f"category {self.category_names[bad]}: minimum above maximum")

    @property
    def n_items(self) -> int:
        return int(self.field_counts.sum())


@dataclass(frozen=True)
class Pool:
    """``n`` items available to assembly.

    items: their parameters; field, category: int (n,) indices into the blueprint;
    enemy_groups: int arrays of pool indices, at most one of each group per form.
    """

    items: ItemParameters
    field: np.ndarray
    category: np.ndarray
    enemy_groups: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", np.asarray(self.field, dtype=np.int64))
        object.__setattr__(self, "category", np.asarray(self.category, dtype=np.int64))
        object.__setattr__(self, "enemy_groups", tuple(np.unique(np.asarray(g, dtype=np.int64))
                                                       for g in self.enemy_groups if len(np.unique(g)) > 1))
        if not (self.field.shape == self.category.shape == (self.items.n_items,)):
            raise ValueError("field and category need one entry per item")

    @property
    def size(self) -> int:
        return self.items.n_items

    def enemies_of(self) -> list[np.ndarray]:
        """For each item, the pool indices it may not sit with (empty arrays for most)."""
        neighbours: list[list[int]] = [[] for _ in range(self.size)]
        for group in self.enemy_groups:
            for i in group:
                neighbours[i].extend(int(j) for j in group if j != i)
        return [np.unique(np.array(n, dtype=np.int64)) for n in neighbours]


@dataclass(frozen=True)
class InformationTarget:
    """Test information wanted at ``theta``: over the whole form (field None) or one field's items."""

    name: str
    theta: float
    information: float
    field: int | None = None


def _scope(pool: Pool, target: InformationTarget) -> np.ndarray:
    return np.ones(pool.size, dtype=bool) if target.field is None else pool.field == target.field


def _information_matrix(pool: Pool, targets: tuple[InformationTarget, ...]) -> np.ndarray:
    """(n_items, n_targets): item i's contribution to target k (0 outside the target's scope)."""
    thetas = np.array([t.theta for t in targets], dtype=float)
    info = item_information(thetas, pool.items).T
    for k, target in enumerate(targets):
        info[~_scope(pool, target), k] = 0.0
    return info


def pool_targets(pool: Pool, blueprint: Blueprint, points: list[tuple[str, float, int | None]],
                 factor: float = 1.0) -> tuple[InformationTarget, ...]:
    """Targets derived from the pool: ``factor`` times the information an average form has.

    points: (name, theta, field index or None). The average form has, in each field,
    n_f items of the field's mean information at theta: T = factor * sum_f n_f mean_f I(theta)
    over the fields in the target's scope.
    """
    targets = []
    for name, theta, field in points:
        info = item_information(np.array([theta]), pool.items)[0]
        fields = range(len(blueprint.field_names)) if field is None else [field]
        total = 0.0
        for f in fields:
            in_field = pool.field == f
            if not in_field.any():
                raise AssemblyInfeasible(f"the pool has no {blueprint.field_names[f]} items",
                                         (f"field {blueprint.field_names[f]}",))
            total += blueprint.field_counts[f] * info[in_field].mean()
        targets.append(InformationTarget(name, float(theta), float(factor * total), field))
    return tuple(targets)


def form_information(pool: Pool, form: np.ndarray, targets: tuple[InformationTarget, ...]) -> np.ndarray:
    """The form's information at each target (n_targets,)."""
    return _information_matrix(pool, targets)[np.asarray(form, dtype=np.int64)].sum(axis=0)


def form_violations(pool: Pool, blueprint: Blueprint, form: np.ndarray,
                    targets: tuple[InformationTarget, ...] = (), tolerance: float | None = None, *,
                    information: np.ndarray | None = None) -> list[str]:
    """Every way ``form`` misses the blueprint, the enemy sets and (with a tolerance) the targets.

    information: the form's information at the targets, when the caller has it already.
    """
    form = np.asarray(form, dtype=np.int64)
    problems = []
    if len(np.unique(form)) != len(form):
        problems.append("an item appears twice")
    if len(form) and (form.min() < 0 or form.max() >= pool.size):
        return problems + ["an index outside the pool"]
    fields = np.bincount(pool.field[form], minlength=len(blueprint.field_names))
    for f, name in enumerate(blueprint.field_names):
        if fields[f] != blueprint.field_counts[f]:
            problems.append(f"field {name}: {fields[f]} items, the blueprint needs {blueprint.field_counts[f]}")
    categories = np.bincount(pool.category[form], minlength=len(blueprint.category_names))
    for m, name in enumerate(blueprint.category_names):
        if not blueprint.category_min[m] <= categories[m] <= blueprint.category_max[m]:
            problems.append(f"category {name}: {categories[m]} items, the blueprint allows "
                            f"{blueprint.category_min[m]} to {blueprint.category_max[m]}")
    chosen = np.zeros(pool.size, dtype=bool)
    chosen[form] = True
    for group in pool.enemy_groups:
        if chosen[group].sum() > 1:
            problems.append(f"enemy set: items {', '.join(map(str, group[chosen[group]]))} together")
    if targets and tolerance is not None:
        values = form_information(pool, form, targets) if information is None else information
        for target, value in zip(targets, values):
            deviation = value / target.information - 1.0
            if abs(deviation) > tolerance + 1e-9:
                problems.append(f"information at {target.name}: {value:.3f}, target {target.information:.3f} "
                                f"({deviation:+.1%}, tolerance {tolerance:.0%})")
    return problems


def _check_supply(pool: Pool, blueprint: Blueprint, usable: np.ndarray, copies: int = 1,
                  why: str = "") -> None:
    """Refuse at once, by name, what no form can have: more items than the pool holds."""
    problems = []
    for f, name in enumerate(blueprint.field_names):
        have = int((usable & (pool.field == f)).sum())
        need = int(blueprint.field_counts[f])
        if have < need:
            problems.append((f"field {name}", f"the {name} field needs {need} items per form but {have} are "
                                              f"available{why}"))
    for m, name in enumerate(blueprint.category_names):
        have = int((usable & (pool.category == m)).sum())
        need = int(blueprint.category_min[m])
        if have < need:
            problems.append((f"category {name}", f"category {name} needs at least {need} items per form but "
                                                 f"{have} are available{why}"))
    for f, name in enumerate(blueprint.field_names):
        in_field = np.flatnonzero(blueprint.category_field == f)
        room = sum(min(int(blueprint.category_max[m]), int((usable & (pool.category == m)).sum())) for m in in_field)
        if room < blueprint.field_counts[f]:
            problems.append((f"field {name}", f"the {name} field needs {blueprint.field_counts[f]} items but its "
                                              f"category maximums and the pool allow only {room}{why}"))
    if problems:
        raise AssemblyInfeasible("; ".join(p[1] for p in problems), tuple(p[0] for p in problems))


# ---- parallel forms: one MILP per form ---------------------------------------------------------

@dataclass(frozen=True)
class _Rows:
    matrix: sparse.csr_array
    lower: np.ndarray
    upper: np.ndarray
    names: list[str]


def _blueprint_rows(pool: Pool, blueprint: Blueprint, previous: list[np.ndarray], max_overlap: int) -> _Rows:
    n = pool.size
    rows, lower, upper, names = [], [], [], []

    def add(indicator: np.ndarray, lo: float, hi: float, name: str) -> None:
        rows.append(indicator)
        lower.append(lo)
        upper.append(hi)
        names.append(name)

    for f, name in enumerate(blueprint.field_names):
        add(np.flatnonzero(pool.field == f), blueprint.field_counts[f], blueprint.field_counts[f], f"field {name}")
    for m, name in enumerate(blueprint.category_names):
        add(np.flatnonzero(pool.category == m), blueprint.category_min[m], blueprint.category_max[m],
            f"category {name}")
    for e, group in enumerate(pool.enemy_groups):
        add(group, 0, 1, f"enemy set {e + 1} (items {', '.join(map(str, group))})")
    for g, form in enumerate(previous):
        add(np.asarray(form, dtype=np.int64), 0, max_overlap, f"overlap with form {g + 1} (at most {max_overlap})")
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    matrix = sparse.csr_array((np.ones(len(indices)), indices, indptr), shape=(len(rows), n))
    return _Rows(matrix, np.array(lower, dtype=float), np.array(upper, dtype=float), names)


def _solve_form(pool: Pool, rows: _Rows, info: np.ndarray, targets: tuple[InformationTarget, ...],
                upper_bound: np.ndarray, time_limit: float, gap: float):
    """One form: variables x (n items), y (largest relative deviation), one (a constant 1).

    The objective is y + one: with the constant, HiGHS's relative gap becomes an absolute
    gap on y, so it stops as soon as y is within ``gap`` of the best bound.
    """
    n, k = pool.size, len(targets)
    scaled = info / np.array([t.information for t in targets])  # (n, k): contribution / target
    blue = sparse.hstack([rows.matrix, sparse.csr_array((rows.matrix.shape[0], 2))])
    # scaled x - y <= 1  and  scaled x + y >= 1
    info_rows = sparse.vstack([
        sparse.hstack([sparse.csr_array(scaled.T), sparse.csr_array(np.c_[-np.ones(k), np.zeros(k)])]),
        sparse.hstack([sparse.csr_array(scaled.T), sparse.csr_array(np.c_[np.ones(k), np.zeros(k)])]),
    ])
    constraints = [
        LinearConstraint(blue, rows.lower, rows.upper),
        LinearConstraint(info_rows, np.r_[np.full(k, -np.inf), np.ones(k)], np.r_[np.ones(k), np.full(k, np.inf)]),
    ]
    cost = np.zeros(n + 2)
    cost[n] = cost[n + 1] = 1.0
    integrality = np.r_[np.ones(n), 0, 0]
    bounds = Bounds(np.r_[np.zeros(n), 0.0, 1.0], np.r_[upper_bound, np.inf, 1.0])
    return milp(cost, integrality=integrality, bounds=bounds, constraints=constraints,
                options={"time_limit": time_limit, "mip_rel_gap": gap, "presolve": True})


def _explain_infeasible(pool: Pool, rows: _Rows, upper_bound: np.ndarray, time_limit: float) -> tuple[str, ...]:
    """The constraints an elastic version of the problem has to bend (slack > 0) to become feasible.

    Every row gets a non-negative slack on each side; the rows with slack in the
    least-bending solution are the ones that cannot all be met. Bending a field's count
    costs more than bending a category bound, an enemy set or an overlap limit, so the
    answer names the constraint that keeps the field from being filled.
    """
    n, r = pool.size, rows.matrix.shape[0]
    eye = sparse.identity(r, format="csr")
    matrix = sparse.hstack([rows.matrix, eye, -eye])
    constraint = LinearConstraint(matrix, rows.lower, rows.upper)
    weight = np.array([100.0 if name.startswith("field ") else 1.0 for name in rows.names])
    cost = np.r_[np.zeros(n), weight, weight]
    result = milp(cost, integrality=np.r_[np.ones(n), np.zeros(2 * r)],
                  bounds=Bounds(np.zeros(n + 2 * r), np.r_[upper_bound, np.full(2 * r, np.inf)]),
                  constraints=[constraint], options={"time_limit": time_limit})
    if result.x is None:
        return ()
    slack = result.x[n:n + r] + result.x[n + r:]
    return tuple(rows.names[i] for i in np.flatnonzero(slack > 0.5))


def _subpool(pool: Pool, keep: np.ndarray) -> tuple[Pool, np.ndarray]:
    """The pool restricted to ``keep`` (sorted indices), and each old index's new one (-1: dropped)."""
    new_index = np.full(pool.size, -1, dtype=np.int64)
    new_index[keep] = np.arange(len(keep))
    groups = [new_index[g][new_index[g] >= 0] for g in pool.enemy_groups]
    return Pool(pool.items.subset(keep), pool.field[keep], pool.category[keep], tuple(groups)), new_index


def _form_by_milp(pool: Pool, blueprint: Blueprint, targets: tuple[InformationTarget, ...], usable: np.ndarray,
                  others: list[np.ndarray], max_overlap: int, time_limit: float, gap: float, number: int,
                  explain: bool) -> np.ndarray | None:
    """One form from ``pool`` by MILP (sorted indices), or None (or, with ``explain``, AssemblyInfeasible)."""
    rows = _blueprint_rows(pool, blueprint, others, max_overlap)
    result = _solve_form(pool, rows, _information_matrix(pool, targets), targets, usable.astype(float),
                         time_limit, gap)
    if result.x is not None:
        return np.sort(np.flatnonzero(result.x[:pool.size] > 0.5))
    if not explain:
        return None
    if result.status == 2:  # infeasible
        names = _explain_infeasible(pool, rows, usable.astype(float), time_limit)
        raise AssemblyInfeasible(f"form {number} cannot meet: {'; '.join(names) or 'the blueprint as a whole'}",
                                 names or ("blueprint",))
    raise AssemblyInfeasible(f"form {number}: the solver found no form within {time_limit:g} s ({result.message})",
                             ("time limit",))


def assemble_forms(pool: Pool, blueprint: Blueprint, targets: tuple[InformationTarget, ...], n_forms: int, *,
                   tolerance: float, max_overlap: int, max_uses: np.ndarray | int | None = None,
                   previous: Sequence[np.ndarray] = (), rng: np.random.Generator | int | None = None,
                   per_category: int | None = 30, time_limit: float = 20.0, gap: float = 0.005) -> list[np.ndarray]:
    """``n_forms`` parallel forms, each meeting the blueprint and within ``tolerance`` of every target.

    previous: forms already in use (pool indices); each new form shares at most
    ``max_overlap`` items with each of them and with each other. max_uses: on how many
    forms (previous and new together) an item may be at most (an int, or (n,) per item).
    per_category: each form's MILP first runs on a random ``per_category`` items of each
    category, the least used first (the same optimum in a large pool, found ten times
    faster, and it spreads the items over the forms); if that fails, on the whole pool.
    gap: HiGHS stops when the largest deviation is within ``gap`` of the best possible.
    Returns sorted int arrays of pool indices. Raises AssemblyInfeasible naming the
    constraints that cannot be met (or the information target that was missed).
    """
    rng = np.random.default_rng(rng)
    n = pool.size
    previous = [np.asarray(p, dtype=np.int64) for p in previous]
    uses = np.zeros(n, dtype=np.int64)
    for earlier in previous:
        uses[earlier] += 1
    cap = np.full(n, np.iinfo(np.int64).max) if max_uses is None else np.broadcast_to(
        np.asarray(max_uses, dtype=np.int64), (n,))
    if max_uses is not None:
        # Every form needs each field's count from items with uses left: n_forms * n_f <= sum of uses left.
        left = np.maximum(cap - uses, 0)
        for f, name in enumerate(blueprint.field_names):
            supply = int(np.minimum(left[pool.field == f], n_forms).sum())
            need = n_forms * int(blueprint.field_counts[f])
            if supply < need:
                raise AssemblyInfeasible(
                    f"exposure: {n_forms} new forms need {need} {name} items in all, but with each item on at "
                    f"most {int(cap.max())} of the {len(previous) + n_forms} forms the pool offers {supply}",
                    (f"exposure ({name})",))
    forms: list[np.ndarray] = []
    for number in range(1, n_forms + 1):
        usable = uses < cap
        _check_supply(pool, blueprint, usable, why=f" for form {number} within the exposure cap"
                      if max_uses is not None else "")
        form: np.ndarray | None = None
        if per_category is not None:
            key = uses + rng.random(n) + 2.0 * np.iinfo(np.int32).max * ~usable
            order = np.lexsort((key, pool.category))
            start = np.r_[0, np.cumsum(np.bincount(pool.category, minlength=len(blueprint.category_names)))[:-1]]
            rank = np.arange(n) - start[pool.category[order]]
            keep = np.sort(order[(rank < per_category) & usable[order]])
            if len(keep) < n:
                small, new_index = _subpool(pool, keep)
                others = [new_index[g][new_index[g] >= 0] for g in previous + forms]
                found = _form_by_milp(small, blueprint, targets, np.ones(len(keep), dtype=bool), others,
                                      max_overlap, time_limit, gap, number, explain=False)
                if found is not None and not form_violations(pool, blueprint, keep[found], targets, tolerance):
                    form = keep[found]
        if form is None:
            form = _form_by_milp(pool, blueprint, targets, usable, previous + forms, max_overlap, time_limit, gap,
                                 number, explain=True)
            assert form is not None  # with explain=True it raises AssemblyInfeasible rather than return None
        problems = form_violations(pool, blueprint, form, targets, tolerance)
        if problems:
            raise AssemblyInfeasible(f"form {number}: {'; '.join(problems)}",
                                     tuple(p.split(":")[0] for p in problems))
        for other in previous + forms:
            if np.intersect1d(form, other).size > max_overlap:
                raise AssemblyInfeasible(f"form {number}: more than {max_overlap} items in common with another form",
                                         ("overlap",))
        forms.append(form)
        uses[form] += 1
    return forms


# ---- LOFT: one form per sitting, greedy on weighted deviations ---------------------------------

def exposure_eligibility(rates: np.ndarray, target: float, margin: float = 0.2) -> np.ndarray:
    """Probability that each item takes part in the next sitting, from its exposure rate.

    1 below (1 - margin) * target, falling linearly to 0 at the target: an item whose
    observed share of sittings nears the target is used less, one above it not at all
    (unless the blueprint cannot be met without it).
    """
    return np.clip((target - np.asarray(rates, dtype=float)) / (margin * target), 0.0, 1.0)


@dataclass(frozen=True)
class LoftPool:
    """A pool prepared once for many LOFT sittings (kept per process between logins).

    info: (n, n_targets) item contributions; enemies: per item, the indices it may not
    sit with; relevant: per field, the targets its items count toward (the total's and
    its own); category_start: where each category begins in the pool sorted by category.
    """

    pool: Pool
    blueprint: Blueprint
    targets: tuple[InformationTarget, ...]
    info: np.ndarray
    enemies: tuple[np.ndarray, ...]
    has_enemies: np.ndarray
    relevant: tuple[np.ndarray, ...]
    category_start: np.ndarray
    schedule: tuple[int, ...]

    @classmethod
    def prepare(cls, pool: Pool, blueprint: Blueprint, targets: tuple[InformationTarget, ...]) -> "LoftPool":
        _check_supply(pool, blueprint, np.ones(pool.size, dtype=bool))
        enemies = pool.enemies_of()
        relevant = tuple(np.array([k for k, t in enumerate(targets) if t.field is None or t.field == f], dtype=np.int64)
                         for f in range(len(blueprint.field_names)))
        counts = np.bincount(pool.category, minlength=len(blueprint.category_names))
        # The fields fill together, each slot at its share of the field's count, so the
        # total's remaining need is spread over all of them.
        share = np.concatenate([(np.arange(n) + 0.5) / n for n in blueprint.field_counts])
        fields = np.repeat(np.arange(len(blueprint.field_names)), blueprint.field_counts)
        schedule = tuple(int(f) for f in fields[np.argsort(share, kind="stable")])
        return cls(pool, blueprint, targets, _information_matrix(pool, targets), tuple(enemies),
                   np.array([len(e) > 0 for e in enemies], dtype=bool), relevant,
                   np.r_[0, np.cumsum(counts)[:-1]], schedule)


def assemble_loft(prepared: LoftPool, rng: np.random.Generator, *, tolerance: float,
                  eligibility: np.ndarray | None = None, randomesque: int = 5,
                  per_category: int | None = 24) -> np.ndarray:
    """One form for one sitting (sorted pool indices), meeting the blueprint and every target within tolerance.

    eligibility: (n,) probabilities from :func:`exposure_eligibility` (None: all eligible).
    per_category: the first attempt chooses among a random ``per_category`` items of
    each middle category (eligible ones first), which keeps the choice fast in a large
    pool and varies the forms; None uses the whole pool.

    The priorities are the blueprint (always), then precision, then exposure: a form
    that misses a target or that enemy sets leave short is built again from the whole
    pool, and then once more with every item eligible; if that fails too,
    AssemblyInfeasible names what could not be met.
    """
    plans = [(per_category, True), (None, True), (None, False)]
    if per_category is None:
        plans = plans[1:]
    if eligibility is None:
        plans = [plan for plan in plans if not plan[1]] or [(per_category, False)]
    last: list[str] = []
    names: tuple[str, ...] = ()
    for thinned, controlled in plans:
        # controlled plans are kept only when eligibility is given (above)
        eligible = rng.random(prepared.pool.size) < cast(np.ndarray, eligibility) if controlled else None
        try:
            form = _greedy_form(prepared, rng, eligible, randomesque, thinned)
        except AssemblyInfeasible as error:
            last, names = [str(error)], error.constraints
            continue
        form = _swap_toward_targets(prepared, form, tolerance, eligible)
        last = form_violations(prepared.pool, prepared.blueprint, form, prepared.targets, tolerance,
                               information=prepared.info[form].sum(axis=0))
        if not last:
            return form
        names = tuple(p.split(":")[0] for p in last)
    raise AssemblyInfeasible("; ".join(last), names)


def _swap_toward_targets(prepared: LoftPool, form: np.ndarray, tolerance: float, eligible: np.ndarray | None,
                         max_swaps: int = 30) -> np.ndarray:
    """Exchange items for others of the same category while that brings the largest relative
    deviation from the targets down, until it is within tolerance (blueprint and enemy sets kept).

    Greedy choice can end a little off target in a small pool; one exchange keeps every
    count, so the best exchanges are searched category by category, all pairs at once.
    """
    pool = prepared.pool
    wanted = np.array([t.information for t in prepared.targets])
    form = form.copy()
    for _ in range(max_swaps):
        have = prepared.info[form].sum(axis=0)
        worst = np.max(np.abs(have / wanted - 1.0))
        if worst <= tolerance * 0.8:
            break
        on_form = np.zeros(pool.size, dtype=bool)
        on_form[form] = True
        blocked = on_form.copy()
        for i in form:
            if prepared.has_enemies[i]:
                blocked[prepared.enemies[i]] = True
        if eligible is not None:
            blocked |= ~eligible
        best = (worst, -1, -1)
        for m in np.unique(pool.category[form]):
            out = form[pool.category[form] == m]
            into = np.flatnonzero((pool.category == m) & ~blocked)
            if into.size == 0:
                continue
            # (out, in, targets): the form's information after each exchange
            after = have + prepared.info[into][None, :, :] - prepared.info[out][:, None, :]
            deviation = np.max(np.abs(after / wanted - 1.0), axis=2)
            j, k = np.unravel_index(np.argmin(deviation), deviation.shape)
            if deviation[j, k] < best[0] - 1e-12:
                best = (deviation[j, k], int(out[j]), int(into[k]))
        if best[1] < 0:
            break
        form[form == best[1]] = best[2]
    return np.sort(form)


def _thin(prepared: LoftPool, rng: np.random.Generator, eligible: np.ndarray | None, per_category: int) -> np.ndarray:
    """Up to ``per_category`` random items of each category, eligible ones first (sorted pool indices)."""
    pool = prepared.pool
    key = pool.category * 4.0 + rng.random(pool.size)
    if eligible is not None:
        key += 2.0 * ~eligible
    order = np.argsort(key)
    rank = np.arange(pool.size) - prepared.category_start[pool.category[order]]
    return np.sort(order[rank < per_category])


def _greedy_form(prepared: LoftPool, rng: np.random.Generator, eligible: np.ndarray | None,
                 randomesque: int, per_category: int | None) -> np.ndarray:
    """The weighted-deviations choice, one item at a time.

    Per field it keeps ``ok``, a mask of the items that may still be chosen (not chosen,
    no enemy on the form, category not full), updated as items are added rather than
    rebuilt, so each step costs a handful of array operations on the field's items.
    """
    pool, blueprint, targets = prepared.pool, prepared.blueprint, prepared.targets
    n_fields = len(blueprint.field_names)
    considered = np.arange(pool.size) if per_category is None else _thin(prepared, rng, eligible, per_category)
    wanted = np.array([t.information for t in targets])
    # Each target's mean contribution per slot: deviations are measured in these units.
    weight = np.array([(blueprint.n_items if t.field is None else blueprint.field_counts[t.field]) / t.information
                       for t in targets])
    is_total = np.array([t.field is None for t in targets])
    items = [considered[pool.field[considered] == f] for f in range(n_fields)]
    info = [prepared.info[np.ix_(items[f], prepared.relevant[f])] for f in range(n_fields)]
    category = [pool.category[items[f]] for f in range(n_fields)]
    preferred = [None if eligible is None else eligible[items[f]] for f in range(n_fields)]
    ok = [np.ones(len(items[f]), dtype=bool) for f in range(n_fields)]
    position = np.full(pool.size, -1, dtype=np.int64)
    for f in range(n_fields):
        position[items[f]] = np.arange(len(items[f]))
    unmet = [int(blueprint.category_min[blueprint.category_field == f].sum()) for f in range(n_fields)]
    forced = [False] * n_fields

    count = np.zeros(len(blueprint.category_names), dtype=np.int64)
    field_left = [int(c) for c in blueprint.field_counts]
    n_left = sum(field_left)
    total_of = [is_total[prepared.relevant[f]] for f in range(n_fields)]
    have = np.zeros(len(targets))
    chosen: list[int] = []
    for f in prepared.schedule:
        if not forced[f] and unmet[f] >= field_left[f]:
            # Every remaining slot must go to a category still below its minimum.
            forced[f] = True
            below = count < blueprint.category_min
            ok[f] &= below[category[f]]
        mask = ok[f]
        if preferred[f] is not None:
            both = mask & preferred[f]
            if both.any():
                mask = both
        n_ok = int(np.count_nonzero(mask))
        if n_ok == 0:
            open_names = [blueprint.category_names[m] for m in np.flatnonzero(blueprint.category_field == f)
                          if count[m] < (blueprint.category_min[m] if forced[f] else blueprint.category_max[m])]
            raise AssemblyInfeasible(f"the {blueprint.field_names[f]} field cannot be completed: enemy sets and "
                                     f"earlier choices leave no item for {', '.join(open_names)}",
                                     (f"field {blueprint.field_names[f]}",))
        relevant = prepared.relevant[f]
        # What the form still needs per remaining slot, for each of the field's targets.
        need = np.maximum(wanted[relevant] - have[relevant], 0.0) / np.where(total_of[f], n_left, field_left[f])
        score = np.abs(info[f] - need) @ weight[relevant]
        score[~mask] = np.inf
        k = min(randomesque, n_ok)
        best = np.argpartition(score, k - 1)[:k] if k < len(score) else np.flatnonzero(mask)
        at = int(best[rng.integers(len(best))])
        pick = int(items[f][at])
        chosen.append(pick)
        ok[f][at] = False
        if prepared.has_enemies[pick]:
            for enemy in prepared.enemies[pick]:
                if position[enemy] >= 0:
                    ok[pool.field[enemy]][position[enemy]] = False
        m = int(pool.category[pick])
        count[m] += 1
        if count[m] <= blueprint.category_min[m]:
            unmet[f] -= 1
        if count[m] == blueprint.category_max[m] or (forced[f] and count[m] == blueprint.category_min[m]):
            ok[f] &= category[f] != m
        field_left[f] -= 1
        n_left -= 1
        have += prepared.info[pick]
    return np.sort(np.array(chosen, dtype=np.int64))


def choose_least_exposed(field: np.ndarray, counts: np.ndarray, per_field: np.ndarray, rng: np.random.Generator,
                         excluded: np.ndarray | None = None, enemies: list[np.ndarray] | None = None,
                         field_names: tuple[str, ...] = ()) -> np.ndarray:
    """``per_field[f]`` items of each field f, the least shown first (random among equals).

    Used for the pretest slots: spreading the trials evenly gets every pretest item to
    its calibration sample soonest. excluded: (n,) items that may not be used (e.g.
    enemies of the scored items); enemies: per item, items it may not sit with.
    """
    field = np.asarray(field, dtype=np.int64)
    available = np.ones(field.shape[0], dtype=bool) if excluded is None else ~np.asarray(excluded, dtype=bool)
    # cast: numpy's stubs take random(<Any>) for the scalar overload
    order = np.lexsort((cast(np.ndarray, rng.random(field.shape[0])), np.asarray(counts)))
    chosen = []
    for f, count in enumerate(per_field):
        taken = 0
        for i in order[field[order] == f]:
            if taken == count:
                break
            if not available[i]:
                continue
            chosen.append(int(i))
            taken += 1
            available[i] = False
            if enemies is not None and len(enemies[i]):
                available[enemies[i]] = False
        if taken < count:
            name = field_names[f] if field_names else str(f)
            raise AssemblyInfeasible(f"the {name} field needs {count} pretest items per sitting but only {taken} "
                                     "can sit with this form (pretest pool and enemy sets)", (f"pretest {name}",))
    return np.array(chosen, dtype=np.int64)
