"""Pre-assembled parallel forms: assembly by MILP, review, publication, retirement.

A psychometrician assembles a batch of draft forms (:func:`assemble_batch`) under the
program's blueprint, information targets, overlap and exposure settings; reviews each
(:func:`review`: counts against the blueprint, information against the targets,
overlap with the other forms, the items); publishes it (:func:`publish`), after which
sittings draw it when the program's method is "forms"; and retires it when it has
served. Every step is in the audit trail.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from engine.assembly import AssemblyInfeasible, assemble_forms, form_information
from itembank.assembly import (
    AssemblyError,
    BankPool,
    blueprint_for,
    form_problems,
    load_pool,
    target_scope,
)
from itembank.assembly_models import Form, FormItem
from itembank.program import ExamProgram
from persistence import audit
from persistence.errors import Conflict, InvalidInput, NotFound
from persistence.unit_of_work import unit_of_work


def forms(session: Session, program: ExamProgram, status: str | None = None) -> list[Form]:
    query = select(Form).where(Form.program_code == program.code).order_by(Form.id.desc())
    if status:
        query = query.where(Form.status == status)
    return list(session.scalars(query.options(selectinload(Form.items))))


def form_by_code(session: Session, code: str, *, lock: bool = False) -> Form:
    query = select(Form).where(Form.code == code)
    if lock:
        query = query.with_for_update()
    form = session.scalar(query)
    if form is None:
        raise NotFound("no form {code}", code=code)
    return form


def _forms_in_use(session: Session, program: ExamProgram, bank: BankPool) -> list[np.ndarray]:
    """The published forms' items as pool indices (items no longer in the pool left out)."""
    index = bank.index_of()
    published = session.scalars(select(Form).where(Form.status == "published", Form.program_code == program.code)
                                .options(selectinload(Form.items))).all()
    return [np.array(sorted(index[e.item_id] for e in form.items if e.item_id in index), dtype=np.int64)
            for form in published]


def assemble_batch(session: Session, program: ExamProgram, count: int, *, actor: str, actor_role: str,
                   now: dt.datetime, seed: int | None = None, note: str = "") -> list[Form]:
    """``count`` new draft forms, parallel to each other and to the published ones.

    Each item may be on at most max_exposure of the forms in use after publication
    (published and new together); any two forms share at most max_overlap of their
    scored items. Raises AssemblyError naming the constraint that cannot be met. Commits (audited).
    """
    if not 1 <= count <= 50:
        raise InvalidInput("assemble between 1 and 50 forms at a time", field="count")
    with unit_of_work(session):
        settings = program.assembly
        bank = load_pool(session, program)
        previous = _forms_in_use(session, program, bank)
        total = len(previous) + count
        max_uses = math.floor(settings.max_exposure * total + 1e-9)
        if max_uses < 1:
            needed = math.ceil(1 / settings.max_exposure - 1e-9)
            raise AssemblyError("exposure: with at most {share} of the forms per item, at least {needed} forms must "
                                "be in use; assemble {more} or more", share=f"{settings.max_exposure:.0%}",
                                needed=needed, more=needed - len(previous))
        scored = sum(f.scored for f in program.fields)
        max_overlap = settings.overlap_items(scored)
        try:
            made = assemble_forms(bank.pool, blueprint_for(program), bank.targets, count, tolerance=settings.tolerance,
                                  max_overlap=max_overlap, max_uses=max_uses, previous=previous, rng=seed)
        except AssemblyInfeasible as error:
            raise AssemblyError(str(error)) from None
        batch = f"{now:%Y%m%d-%H%M%S}"
        existing = session.scalar(select(func.count(Form.id)).where(Form.code.like(f"F{now:%y%m%d}-%"))) or 0
        created = []
        for k, indices in enumerate(made, start=1):
            form = Form(
                code=f"F{now:%y%m%d}-{existing + k:02d}", program_code=program.code, status="draft", batch=batch,
                created_at=now, created_by=actor, note=note[:500],
                targets=[{"name": t.name, "scope": target_scope(program, t), "theta": t.theta,
                          "information": t.information} for t in bank.targets],
                information=[float(v) for v in form_information(bank.pool, indices, bank.targets)],
                settings={"tolerance": settings.tolerance, "max_overlap_items": max_overlap, "max_uses": max_uses,
                          "forms_in_use": total, "seed": seed, "pool_items": bank.pool.size},
            )
            position = 0
            for f, field in enumerate(program.fields):
                for i in indices[bank.pool.field[indices] == f]:
                    position += 1
                    form.items.append(FormItem(position=position, item_id=int(bank.item_ids[i]),
                                               item_version_id=int(bank.version_ids[i]), field=field.code,
                                               category=program.categories[bank.pool.category[i]].number))
            session.add(form)
            created.append(form)
        session.flush()
        audit.record(session, actor=actor, actor_role=actor_role, action="forms.assemble", subject=f"forms:{batch}",
                     reason=note, details={"forms": [f.code for f in created], "seed": seed}, at=now)
    return created


@dataclass(frozen=True)
class CountLine:
    name: str
    count: int
    minimum: int
    maximum: int

    @property
    def met(self) -> bool:
        return self.minimum <= self.count <= self.maximum


@dataclass(frozen=True)
class InformationLine:
    name: str
    scope: str
    theta: float
    target: float
    information: float  # as assembled
    now: float | None  # with today's parameters, if every item is still in the pool

    @property
    def deviation(self) -> float:
        return self.information / self.target - 1.0


@dataclass(frozen=True)
class FormReview:
    """What the review screen and `cbt forms show` present about one form."""

    form: Form
    fields: list[CountLine]
    categories: list[CountLine]
    information: list[InformationLine]
    tolerance: float
    overlaps: list[tuple[str, int]]  # (other published or draft form, items in common)
    max_overlap: int
    problems: list[str]  # why it cannot be published or drawn today
    items: list[dict]  # code, field, category, a, b, c per position


def review(session: Session, program: ExamProgram, form: Form) -> FormReview:
    bank = load_pool(session, program)
    blueprint = blueprint_for(program)
    index = bank.index_of()
    problems, indices = form_problems(bank.pool, blueprint, index, bank.version_ids, form.items)
    field_counts = {code: 0 for code in program.field_codes}
    category_counts = {c.number: 0 for c in program.categories}
    for entry in form.items:
        field_counts[entry.field] = field_counts.get(entry.field, 0) + 1
        category_counts[entry.category] = category_counts.get(entry.category, 0) + 1
    bounds = program.assembly.category_bounds
    now_values = form_information(bank.pool, indices, bank.targets) if len(indices) == len(form.items) else None
    information = [InformationLine(t["name"], t["scope"], t["theta"], t["information"], value,
                                   None if now_values is None else float(now_values[k]))
                   for k, (t, value) in enumerate(zip(form.targets, form.information))]
    mine = {e.item_id for e in form.items}
    others = session.scalars(select(Form).where(Form.program_code == program.code, Form.id != form.id,
                                                Form.status.in_(("draft", "published")))
                             .options(selectinload(Form.items)).order_by(Form.id)).all()
    overlaps = [(o.code, len(mine & {e.item_id for e in o.items})) for o in others]
    max_overlap = int(form.settings.get("max_overlap_items", program.assembly.overlap_items(len(form.items))))
    problems += [f"{code} shares {n} items with this form (at most {max_overlap})"
                 for code, n in overlaps if n > max_overlap and code in {o.code for o in others
                                                                         if o.status == "published"}]
    parameters = _parameters(session, [e.item_version_id for e in form.items])
    items = []
    for entry in form.items:
        a, b, c, code = parameters[entry.item_version_id]
        items.append({"position": entry.position, "code": code, "field": entry.field, "category": entry.category,
                      "a": a, "b": b, "c": c, "current": entry.item_id in index})
    return FormReview(
        form=form,
        fields=[CountLine(f.code, field_counts.get(f.code, 0), f.scored, f.scored) for f in program.fields],
        categories=[CountLine(f"{c.number} {c.name}", category_counts.get(c.number, 0), *bounds[c.number])
                    for c in program.categories],
        information=information, tolerance=float(form.settings.get("tolerance", program.assembly.tolerance)),
        overlaps=overlaps, max_overlap=max_overlap, problems=problems, items=items,
    )


def _parameters(session: Session, version_ids: list[int]) -> dict[int, tuple]:
    from itembank.models import Item, ItemVersion

    rows = session.execute(select(ItemVersion.id, ItemVersion.a, ItemVersion.b, ItemVersion.c, Item.code)
                           .join(Item, Item.id == ItemVersion.item_id).where(ItemVersion.id.in_(version_ids)))
    return {row[0]: tuple(row[1:]) for row in rows}


def publish(session: Session, program: ExamProgram, code: str, *, actor: str, actor_role: str, now: dt.datetime,
            reason: str = "") -> Form:
    """Make a reviewed draft available to sittings; refused while review finds a problem. Commits (audited)."""
    with unit_of_work(session):
        form = form_by_code(session, code, lock=True)
        if form.status != "draft":
            raise Conflict("form {code} is {status}; only a draft can be published", code=code, status=form.status)
        problems = review(session, program, form).problems
        if problems:
            raise Conflict("form {code} cannot be published: {problems}", code=code, problems="; ".join(problems))
        form.status, form.published_at, form.published_by = "published", now, actor
        session.flush()
        audit.record(session, actor=actor, actor_role=actor_role, action="forms.publish", subject=f"form:{code}",
                     reason=reason, details={"items": len(form.items)}, at=now)
    return form


def retire(session: Session, code: str, *, actor: str, actor_role: str, now: dt.datetime, reason: str) -> Form:
    """Stop drawing a published form, or set a draft aside; a reason is required. Commits (audited)."""
    if not reason.strip():
        raise InvalidInput("give a reason for retiring the form", field="reason")
    with unit_of_work(session):
        form = form_by_code(session, code, lock=True)
        if form.status == "retired":
            raise Conflict("form {code} is already retired", code=code)
        previous = form.status
        form.status, form.retired_at, form.retired_by = "retired", now, actor
        session.flush()
        audit.record(session, actor=actor, actor_role=actor_role, action="forms.retire", subject=f"form:{code}",
                     reason=reason, details={"from": previous}, at=now)
    return form
