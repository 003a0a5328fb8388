"""Building a sitting's form from the bank, by the method the program names.

* ``method = "loft"``: the scored items are assembled for this sitting from the
  operational pool (:func:`engine.assembly.assemble_loft`): the blueprint's field counts
  and category bounds, the enemy sets, information at the cut points within the
  tolerance of its target, and exposure control from the counts of every process.
* ``method = "forms"``: the sitting draws one of the published pre-assembled forms
  (:mod:`itembank.forms`) at random, among those still usable.

Either way the pretest slots are filled from pretest items only, the least shown
first (so each reaches its calibration sample soonest), never with an enemy of an item
on the form; the items are shuffled within each field, and the options of each item
shown in a random order recorded on the sitting (answers keep the content's option
numbers, so scoring never sees the display order).

The pool (parameters, fields, categories, enemy sets, published forms) is read once
per process and kept while the bank does not change: every login asks the database
for a cheap stamp of the bank (the newest status change and version, a checksum of
the enemy sets, the newest form event), and reloads when it differs, so an item
published or retired by another process or host takes effect at the next login.
Exposure counts live in the database (:class:`~itembank.assembly_models.ItemExposure`),
bumped by one statement per login; each process re-reads everyone's counts every
``exposure_refresh_seconds`` and adds its own sittings in between.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import BigInteger, cast, func, select, update
from sqlalchemy.orm import Session

from engine.assembly import (
    AssemblyInfeasible,
    Blueprint,
    InformationTarget,
    LoftPool,
    Pool,
    assemble_loft,
    choose_least_exposed,
    exposure_eligibility,
    form_violations,
    pool_targets,
)
from engine.models import ItemParameters
from itembank.assembly_models import Form, FormItem, ItemExposure
from itembank.bank import contents_by_version
from itembank.bank import pool as bank_pool
from itembank.enemies import enemies_by_item
from itembank.models import EnemySetMember, ItemStatusChange, ItemVersion
from itembank.program import ExamProgram
from persistence.audit import AuditEvent
from persistence.errors import Unavailable


class AssemblyError(Unavailable):
    """The bank cannot supply a form that meets the blueprint; the message names what fails."""


@dataclass(frozen=True)
class FormPosition:
    position: int
    version_id: int
    field: str
    is_pretest: bool
    option_order: tuple[int, ...] | None = None  # content indices in display order; None: content order

    @property
    def option_order_text(self) -> str | None:
        return None if self.option_order is None else ",".join(map(str, self.option_order))


@dataclass(frozen=True)
class SittingForm:
    """What a sitting gets: its positions, and the published form drawn (None for LOFT)."""

    positions: list[FormPosition]
    form_id: int | None

    def __iter__(self):
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


# ---- the program as engine arrays ---------------------------------------------------------------

def blueprint_for(program: ExamProgram) -> Blueprint:
    """The program's blueprint for the scored items: field counts, category bounds (categories in syllabus order)."""
    settings = program.assembly
    categories = program.categories
    field_index = {code: i for i, code in enumerate(program.field_codes)}
    return Blueprint(
        field_names=program.field_codes,
        field_counts=np.array([f.scored for f in program.fields]),
        category_names=tuple(f"{c.number} {c.name}" for c in categories),
        category_field=np.array([field_index[c.field] for c in categories]),
        category_min=np.array([settings.category_bounds[c.number][0] for c in categories]),
        category_max=np.array([settings.category_bounds[c.number][1] for c in categories]),
    )


def cut_points(program: ExamProgram) -> list[tuple[str, float, int | None]]:
    """The abilities where precision matters: the total's pass mark and each field's, as (name, theta, field)."""
    rule, scale = program.pass_rule, program.scale
    points: list[tuple[str, float, int | None]] = [(f"total {rule.total_minimum}",
                                                    scale.theta_for(rule.total_minimum), None)]
    points += [(f"{field.code} {rule.field_minimum}", scale.theta_for(rule.field_minimum), index)
               for index, field in enumerate(program.fields)]
    return points


def targets_for(program: ExamProgram, pool: Pool) -> tuple[InformationTarget, ...]:
    """The information targets at the cut points: derived from ``pool`` or as the program states them."""
    settings = program.assembly
    points = cut_points(program)
    if settings.targets == "pool":
        return pool_targets(pool, blueprint_for(program), points, settings.target_factor)
    scopes = ["total"] + list(program.field_codes)
    return tuple(InformationTarget(name, theta, settings.targets[scopes[0 if field is None else field + 1]], field)
                 for name, theta, field in points)


def target_scope(program: ExamProgram, target: InformationTarget) -> str:
    return "total" if target.field is None else program.field_codes[target.field]


# ---- the pool, cached per process ----------------------------------------------------------------

@dataclass(frozen=True)
class BankPool:
    """The operational and pretest pools as arrays, aligned: index i of ``pool`` is ``item_ids[i]``."""

    stamp: tuple
    pool: Pool
    item_ids: np.ndarray
    version_ids: np.ndarray
    codes: tuple[str, ...]
    targets: tuple[InformationTarget, ...]
    loft: LoftPool | None
    pretest_item_ids: np.ndarray
    pretest_version_ids: np.ndarray
    pretest_field: np.ndarray
    enemies: dict[int, set[int]]
    forms: tuple["UsableForm", ...]  # published forms every item of which is still usable
    unusable_forms: dict[str, str]  # published form code -> why it cannot be drawn
    # version id -> options that keep their place in the sitting's shuffle (absent: all may move)
    fixed_options: dict[int, tuple[int, ...]] = dataclasses.field(default_factory=dict)

    def index_of(self) -> dict[int, int]:
        return {int(item_id): i for i, item_id in enumerate(self.item_ids)}


@dataclass(frozen=True)
class UsableForm:
    form_id: int
    code: str
    indices: np.ndarray  # pool indices of its items


def bank_stamp(session: Session) -> tuple:
    """A cheap fingerprint of what assembly reads, one round trip on primary keys and small tables.

    The newest status change and item version (every lifecycle step and every new
    version appends one), the enemy sets' member count and a checksum of their pairs,
    and the newest form publication or retirement in the audit trail.
    """
    member = EnemySetMember
    row = session.execute(select(
        select(func.max(ItemStatusChange.id)).scalar_subquery(),
        select(func.max(ItemVersion.id)).scalar_subquery(),
        select(func.count(member.item_id)).scalar_subquery(),
        # In 64 bits: item id squared times set id overflows PostgreSQL's 32-bit integer in a large bank.
        select(func.coalesce(func.sum(cast(member.item_id, BigInteger) * member.item_id * member.enemy_set_id),
                             0)).scalar_subquery(),
        select(func.max(AuditEvent.id)).where(AuditEvent.action.in_(FORM_ACTIONS)).scalar_subquery(),
    )).one()
    return tuple(row)


# Audited actions that change which forms can be drawn.
FORM_ACTIONS = ("forms.publish", "forms.retire")


def load_pool(session: Session, program: ExamProgram, stamp: tuple = ()) -> BankPool:
    """Read the pools, the enemy sets and the published forms from the database."""
    blueprint = blueprint_for(program)
    field_index = {code: i for i, code in enumerate(program.field_codes)}
    category_index = {c.number: i for i, c in enumerate(program.categories)}
    operational = [p for p in bank_pool(session, "operational")
                   if p.a is not None and p.b is not None and p.c is not None
                   and p.field in field_index and p.category in category_index]
    pretest = [p for p in bank_pool(session, "pretest") if p.field in field_index]
    enemies = enemies_by_item(session)
    item_ids = np.array([p.item_id for p in operational], dtype=np.int64)
    index = {int(item_id): i for i, item_id in enumerate(item_ids)}
    groups = _enemy_groups(session, index)
    pool = Pool(
        ItemParameters([p.a for p in operational], [p.b for p in operational], [p.c for p in operational])
        if operational else ItemParameters(np.zeros(0), np.zeros(0), np.zeros(0)),
        np.array([field_index[p.field] for p in operational], dtype=np.int64),
        np.array([category_index[p.category] for p in operational], dtype=np.int64),
        groups,
    )
    try:
        targets = targets_for(program, pool)
    except AssemblyInfeasible as error:
        raise AssemblyError(str(error)) from None
    loft = None
    if program.assembly.method == "loft":
        try:
            loft = LoftPool.prepare(pool, blueprint, targets)
        except AssemblyInfeasible as error:
            raise AssemblyError(str(error)) from None
    version_ids = np.array([p.version_id for p in operational], dtype=np.int64)
    forms, unusable = _published_forms(session, program, pool, index, version_ids, blueprint)
    return BankPool(
        stamp=stamp, pool=pool, item_ids=item_ids, version_ids=version_ids,
        codes=tuple(p.code for p in operational), targets=targets, loft=loft,
        pretest_item_ids=np.array([p.item_id for p in pretest], dtype=np.int64),
        pretest_version_ids=np.array([p.version_id for p in pretest], dtype=np.int64),
        pretest_field=np.array([field_index[p.field] for p in pretest], dtype=np.int64),
        enemies=enemies, forms=tuple(forms), unusable_forms=unusable,
        fixed_options=_fixed_options(session, [p.version_id for p in operational + pretest]),
    )


def _fixed_options(session: Session, version_ids: list[int]) -> dict[int, tuple[int, ...]]:
    """The options of each version that must keep their place (its content says so: QTI fixed, shuffle off).

    Read through the process's cache of decrypted content, which the sittings' pages fill anyway.
    """
    contents = contents_by_version(session, version_ids)
    return {version_id: content.fixed_positions for version_id, content in contents.items()
            if content.fixed_positions}


def option_order(n_options: int, fixed: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...] | None:
    """A random display order of the content's options in which the ``fixed`` ones keep their place.

    Returns None (content order) when every option is fixed. With none fixed it draws
    exactly what ``rng.permutation(n_options)`` draws.
    """
    order = np.arange(n_options)
    free = np.setdiff1d(order, np.asarray(fixed, dtype=np.int64))
    if len(free) == 0:
        return None
    order[free] = rng.permutation(free)
    return tuple(int(o) for o in order)


def _enemy_groups(session: Session, index: dict[int, int]) -> list[np.ndarray]:
    members: dict[int, list[int]] = {}
    for set_id, item_id in session.execute(select(EnemySetMember.enemy_set_id, EnemySetMember.item_id)):
        if item_id in index:
            members.setdefault(set_id, []).append(index[item_id])
    return [np.array(sorted(m), dtype=np.int64) for m in members.values() if len(m) > 1]


def form_problems(pool: Pool, blueprint: Blueprint, index: dict[int, int], version_ids: np.ndarray,
                  items: list[FormItem]) -> tuple[list[str], np.ndarray]:
    """Why a stored form cannot be drawn today (items retired or re-versioned, blueprint, enemy sets)."""
    problems = []
    indices = []
    for entry in items:
        i = index.get(entry.item_id)
        if i is None:
            problems.append(f"item {entry.item_id} at position {entry.position} is no longer operational")
        elif version_ids[i] != entry.item_version_id:
            problems.append(f"item {entry.item_id} at position {entry.position} has a newer version than the one "
                            "reviewed")
        else:
            indices.append(i)
    indices = np.array(sorted(indices), dtype=np.int64)
    if not problems:
        problems = form_violations(pool, blueprint, indices)
    return problems, indices


def _published_forms(session: Session, program: ExamProgram, pool: Pool, index: dict[int, int],
                     version_ids: np.ndarray, blueprint: Blueprint) -> tuple[list[UsableForm], dict[str, str]]:
    usable, unusable = [], {}
    forms = session.scalars(select(Form).where(Form.status == "published", Form.program_code == program.code)
                            .order_by(Form.id)).all()
    for form in forms:
        problems, indices = form_problems(pool, blueprint, index, version_ids, form.items)
        if problems:
            unusable[form.code] = "; ".join(problems)
        else:
            usable.append(UsableForm(form.id, form.code, indices))
    return usable, unusable


class _Cache:
    """The pool and the exposure counts of one database and program, shared by the process's threads."""

    def __init__(self, bind, program: ExamProgram):
        # Held so that the ids in the cache's key stay theirs while the cache lives.
        self.bind, self.program = bind, program
        self.lock = threading.Lock()
        self.pool: BankPool | None = None
        self.scored: np.ndarray | None = None  # per operational pool index: sittings that showed it scored
        self.before: np.ndarray | None = None  # per pool index: sittings assembled before it entered
        self.pretest: np.ndarray | None = None  # per pretest index: sittings that showed it
        self.sittings = 0
        self.read_at = -np.inf


_caches: dict[tuple, _Cache] = {}
_caches_lock = threading.Lock()


def _cache_for(session: Session, program: ExamProgram) -> _Cache:
    bind = session.get_bind()
    key = (id(bind), id(program))
    with _caches_lock:
        if key not in _caches:
            _caches[key] = _Cache(bind, program)
        return _caches[key]


def current_pool(session: Session, program: ExamProgram) -> BankPool:
    """The cached pool, reloaded if the bank's stamp changed since it was read."""
    cache = _cache_for(session, program)
    stamp = bank_stamp(session)
    with cache.lock:
        if cache.pool is None or cache.pool.stamp != stamp:
            cache.pool = load_pool(session, program, stamp)
            cache.read_at = -np.inf  # align the exposure counts with the new pool
        return cache.pool


# ---- exposure -------------------------------------------------------------------------------------

def _refresh_exposure(session: Session, program: ExamProgram, cache: _Cache, now_seconds: float) -> None:
    """Re-read every process's exposure counts (and start counting items new to the pool)."""
    bank = cache.pool
    rows = session.execute(select(ItemExposure.item_id, ItemExposure.scored, ItemExposure.pretest,
                                  ItemExposure.sittings_before)).all()
    scored_per_sitting = sum(f.scored for f in program.fields)
    sittings = sum(row[1] for row in rows) // scored_per_sitting
    known = {row[0]: row for row in rows}
    missing = sorted(int(i) for i in np.r_[bank.item_ids, bank.pretest_item_ids] if int(i) not in known)
    if missing:
        _insert_ignoring_existing(session, [{"item_id": i, "scored": 0, "pretest": 0, "sittings_before": sittings}
                                            for i in missing])
    cache.scored = np.array([known[i][1] if i in known else 0 for i in bank.item_ids.tolist()], dtype=np.int64)
    cache.before = np.array([known[i][3] if i in known else sittings for i in bank.item_ids.tolist()],
                            dtype=np.int64)
    cache.pretest = np.array([known[i][2] if i in known else 0 for i in bank.pretest_item_ids.tolist()],
                             dtype=np.int64)
    cache.sittings = sittings
    cache.read_at = now_seconds


def _insert_ignoring_existing(session: Session, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: another process may add the same items at the same moment."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(ItemExposure).values(rows).on_conflict_do_nothing(index_elements=["item_id"]))


# Below this many sittings an observed rate says little: the rate's denominator is at least this.
EXPOSURE_WARMUP_SITTINGS = 20


def exposure_rates(scored: np.ndarray, sittings: int, before: np.ndarray) -> np.ndarray:
    """Each item's share of the sittings since it entered exposure control."""
    return scored / np.maximum(sittings - before, EXPOSURE_WARMUP_SITTINGS)


def record_exposure(session: Session, scored_item_ids: list[int], pretest_item_ids: list[int],
                    sittings_before: int = 0) -> None:
    """Count one more sitting for each item shown: two UPDATE statements, in the login's transaction.

    The counters are locked first, all in item order: an UPDATE alone locks rows in the order
    it meets them (on PostgreSQL, where they lie on disk, which every update moves), so two
    logins sharing items could each hold what the other waits for. In one order they queue.
    A counter missing (its insert went with a login that rolled back) is added first, with
    ``sittings_before`` as the sittings the item has missed.
    """
    every = sorted({*scored_item_ids, *pretest_item_ids})
    if every:
        # Missing counters are added before any is locked: a row another login is adding
        # makes this insert wait until that login ends, so the lock below finds every row.
        found = set(session.scalars(select(ItemExposure.item_id).where(ItemExposure.item_id.in_(every))))
        if len(found) < len(every):
            _insert_ignoring_existing(session, [{"item_id": i, "scored": 0, "pretest": 0,
                                                 "sittings_before": sittings_before} for i in every if i not in found])
        session.execute(select(ItemExposure.item_id).where(ItemExposure.item_id.in_(every))
                        .order_by(ItemExposure.item_id).with_for_update())
    for column, ids in (("scored", scored_item_ids), ("pretest", pretest_item_ids)):
        if ids:
            session.execute(update(ItemExposure).where(ItemExposure.item_id.in_(sorted(ids)))
                            .values({column: getattr(ItemExposure, column) + 1})
                            .execution_options(synchronize_session=False))


# ---- a sitting's form -----------------------------------------------------------------------------

def draw_form(session: Session, program: ExamProgram, rng: np.random.Generator) -> SittingForm:
    """The sitting's form: fields in program order, each with its scored and pretest items shuffled together.

    Raises AssemblyError naming the constraint that cannot be met; records the exposure.
    """
    cache = _cache_for(session, program)
    bank = current_pool(session, program)
    settings = program.assembly
    now_seconds = time.monotonic()
    with cache.lock:
        if cache.pool is not bank or now_seconds - cache.read_at > settings.exposure_refresh_seconds:
            cache.pool = bank
            _refresh_exposure(session, program, cache, now_seconds)
        scored_counts, pretest_counts = cache.scored.copy(), cache.pretest.copy()
        sittings, before = cache.sittings, cache.before

    form_id, version_of = None, bank.version_ids
    try:
        if settings.method == "loft":
            rates = exposure_rates(scored_counts, sittings, before)
            eligibility = exposure_eligibility(rates, settings.max_exposure, settings.exposure_margin)
            chosen = assemble_loft(bank.loft, rng, tolerance=settings.tolerance, eligibility=eligibility,
                                   randomesque=settings.randomesque)
        else:
            if not bank.forms:
                why = "; ".join(f"{code}: {reason}" for code, reason in bank.unusable_forms.items())
                if why:
                    raise AssemblyError("no published form can be drawn ({why})", why=why)
                raise AssemblyError("no published form can be drawn: publish a reviewed form first")
            drawn = bank.forms[int(rng.integers(len(bank.forms)))]
            chosen, form_id = drawn.indices, drawn.form_id
        pretest = _choose_pretest(program, bank, chosen, pretest_counts, rng)
    except AssemblyInfeasible as error:
        raise AssemblyError(str(error)) from None

    scored_ids = bank.item_ids[chosen].tolist()
    pretest_ids = bank.pretest_item_ids[pretest].tolist()
    record_exposure(session, scored_ids, pretest_ids, sittings_before=sittings)
    with cache.lock:
        if cache.pool is bank:  # this process's own sittings count before the next refresh
            cache.scored[chosen] += 1
            cache.pretest[pretest] += 1
            cache.sittings += 1

    positions: list[FormPosition] = []
    n_options = len(program.option_labels)
    for f, field in enumerate(program.fields):
        entries = [(int(version_of[i]), False) for i in chosen if bank.pool.field[i] == f]
        entries += [(int(bank.pretest_version_ids[j]), True) for j in pretest if bank.pretest_field[j] == f]
        for k in rng.permutation(len(entries)):
            version_id, is_pretest = entries[k]
            order = (option_order(n_options, bank.fixed_options.get(version_id, ()), rng)
                     if settings.shuffle_options else None)
            positions.append(FormPosition(len(positions) + 1, version_id, field.code, is_pretest, order))
    return SittingForm(positions, form_id)


def _choose_pretest(program: ExamProgram, bank: BankPool, chosen: np.ndarray, counts: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """The pretest slots: the least shown pretest items, none an enemy of the form's items or of each other."""
    per_field = np.array([f.pretest for f in program.fields])
    if per_field.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    pretest_index = {int(item_id): j for j, item_id in enumerate(bank.pretest_item_ids)}
    excluded = np.zeros(len(bank.pretest_item_ids), dtype=bool)
    for item_id in bank.item_ids[chosen].tolist():
        for enemy in bank.enemies.get(item_id, ()):
            if enemy in pretest_index:
                excluded[pretest_index[enemy]] = True
    enemies = [np.array([pretest_index[e] for e in bank.enemies.get(int(item_id), ()) if e in pretest_index],
                        dtype=np.int64) for item_id in bank.pretest_item_ids]
    return choose_least_exposed(bank.pretest_field, counts, per_field, rng, excluded, enemies,
                                field_names=program.field_codes)
