"""Design studies of the program: simulated candidates through its assembly designs and its own scoring.

The figures come from :func:`engine.design.simulate_design`; this module gathers what
the engine cannot know (the pool from the bank or the synthetic generator, the
blueprint and targets from the program, the scoring rule from :mod:`scoring`) and keeps
each study in the database for the psychometrician's screens.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.assembly import AssemblyInfeasible, LoftPool, Pool, assemble_forms, assemble_loft, exposure_eligibility
from engine.design import Cut, simulate_design
from itembank.assembly import AssemblyError, blueprint_for, cut_points, exposure_rates, load_pool, targets_for
from itembank.assembly_models import DesignStudy
from itembank.program import ExamProgram
from itembank.synthetic import synthetic_pool
from persistence import audit
from persistence.errors import InvalidInput, NotFound
from persistence.unit_of_work import unit_of_work
from scoring.batch import AnswerSheet, VersionTable, score_sheet
from scoring.rules import rule_of_program

DESIGNS = ("loft", "forms")
# The one source of the limits on the number of simulated candidates: the CLI runs up to
# MAX_CANDIDATES; a web request is kept to WEB_MAX_CANDIDATES (larger studies run with `cbt simulate`).
MIN_CANDIDATES = 50
MAX_CANDIDATES = 20_000
WEB_MAX_CANDIDATES = 2_000
MAX_FORMS = 50


class StudyError(InvalidInput):
    """A study that cannot run as asked."""


def check_candidates(candidates: int | None, limit: int = MAX_CANDIDATES) -> None:
    """Refuse a number of candidates outside MIN_CANDIDATES..limit, in the words of the caller's limit."""
    limit = min(limit, MAX_CANDIDATES)
    if candidates is not None and MIN_CANDIDATES <= candidates <= limit:
        return
    if limit < MAX_CANDIDATES:
        raise StudyError("Simulate between {low} and {high} candidates here; run larger studies with cbt simulate.",
                         field="candidates", low=MIN_CANDIDATES, high=f"{limit:,}")
    raise StudyError("Simulate between {low} and {high} candidates.", field="candidates", low=MIN_CANDIDATES,
                     high=f"{limit:,}")


def study_pool(session: Session, program: ExamProgram, source: str, rng: np.random.Generator) -> tuple[Pool, str]:
    """The pool to study: "bank" (today's operational items) or "synthetic:N" (N generated items)."""
    if source == "bank":
        bank = load_pool(session, program)
        return bank.pool, f"operational bank ({bank.pool.size} items)"
    if source.startswith("synthetic:"):
        try:
            size = int(source.split(":", 1)[1])
        except ValueError:
            raise StudyError("Pool {source}: give the number of synthetic items, e.g. synthetic:5000.",
                             field="pool", source=source) from None
        if not 200 <= size <= 50_000:
            raise StudyError("A synthetic pool has between 200 and 50,000 items.", field="pool")
        return synthetic_pool(program, size, rng), f"synthetic pool of {size} items"
    raise StudyError("Pool {source}: use bank or synthetic:N.", field="pool", source=source)


def run_study(session: Session, program: ExamProgram, *, candidates: int, designs: tuple[str, ...] = DESIGNS,
              pool_source: str = "bank", n_forms: int = 10, seed: int = 1, actor: str, actor_role: str,
              now: dt.datetime, max_candidates: int = MAX_CANDIDATES) -> DesignStudy:
    """Simulate ``candidates`` candidates (each sitting twice) through each design; store and return the study.
    ``max_candidates`` is the caller's limit (:data:`WEB_MAX_CANDIDATES` for a web request). Commits (audited)."""
    check_candidates(candidates, max_candidates)
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown or not designs:
        raise StudyError("The designs are {designs}; got {given}.", field="designs", designs=", ".join(DESIGNS),
                         given=", ".join(designs) or "-")
    if not 1 <= n_forms <= MAX_FORMS:
        raise StudyError("Between 1 and {high} pre-assembled forms.", field="forms", high=MAX_FORMS)
    rng = np.random.default_rng(seed)
    pool, description = study_pool(session, program, pool_source, rng)
    settings = program.assembly
    blueprint = blueprint_for(program)
    try:
        targets = targets_for(program, pool)
    except AssemblyInfeasible as error:  # the pool lacks a field
        raise StudyError("The pool cannot meet the information targets: {error}", error=str(error)) from None
    rule = rule_of_program(program)
    item_fields = np.array(program.field_codes)[pool.field]

    table = VersionTable.of_items(pool.items)

    def score(responses: np.ndarray):
        scores = score_sheet(rule, table, AnswerSheet.of_responses(responses, item_fields))
        return scores.theta, scores.passed

    cuts = tuple(Cut(name, theta, field) for name, theta, field in cut_points(program))
    theta = rng.normal(rule.settings.prior_mean, rule.settings.prior_sd, candidates)
    results = {}
    for design in designs:
        assemble = _assembler(design, program, pool, blueprint, targets, n_forms, rng)
        results[design] = simulate_design(
            design, pool, assemble, score, targets, cuts, theta, rng, tolerance=settings.tolerance,
            exposure_target=settings.max_exposure, field_names=program.field_codes,
            scale=(program.scale.slope, program.scale.intercept))
    with unit_of_work(session):
        study = DesignStudy(created_at=now, created_by=actor, pool=description, n_candidates=candidates, seed=seed,
                            settings={"designs": list(designs), "forms": n_forms, "pool": pool_source,
                                      "tolerance": settings.tolerance, "max_exposure": settings.max_exposure,
                                      "max_overlap": settings.max_overlap, "randomesque": settings.randomesque,
                                      "targets": {t.name: t.information for t in targets}},
                            results=results)
        session.add(study)
        session.flush()
        audit.record(session, actor=actor, actor_role=actor_role, action="study.run", subject=f"study:{study.id}",
                     details={"designs": list(designs), "candidates": candidates, "pool": description}, at=now)
    return study


def _assembler(design: str, program: ExamProgram, pool: Pool, blueprint, targets, n_forms: int,
               rng: np.random.Generator):
    settings = program.assembly
    try:
        if design == "loft":
            prepared = LoftPool.prepare(pool, blueprint, targets)
            before = np.zeros(pool.size, dtype=np.int64)

            def loft(generator, counts, sittings):
                rates = exposure_rates(counts, sittings, before)
                eligibility = exposure_eligibility(rates, settings.max_exposure, settings.exposure_margin)
                return assemble_loft(prepared, generator, tolerance=settings.tolerance, eligibility=eligibility,
                                     randomesque=settings.randomesque)
            return loft
        scored = sum(f.scored for f in program.fields)
        made = assemble_forms(pool, blueprint, targets, n_forms, tolerance=settings.tolerance,
                              max_overlap=settings.overlap_items(scored),
                              max_uses=max(1, math.floor(settings.max_exposure * n_forms + 1e-9)), rng=rng)
    except AssemblyInfeasible as error:
        raise StudyError("The {design} design cannot be assembled: {error}", design=design, error=str(error)) from None

    def draw(generator, counts, sittings):
        return made[int(generator.integers(len(made)))]
    return draw


def studies(session: Session) -> list[DesignStudy]:
    return list(session.scalars(select(DesignStudy).order_by(DesignStudy.id.desc())))


def get_study(session: Session, study_id: int) -> DesignStudy:
    study = session.get(DesignStudy, study_id)
    if study is None:
        raise NotFound(f"no design study {study_id}")
    return study


__all__ = ["AssemblyError", "DESIGNS", "StudyError", "get_study", "run_study", "studies", "study_pool"]
