"""The pretest loop and the drift watch: calibration runs over gathered responses.

The responses come from finished sittings, gathered by the delivery layer
(``delivery.pretest``) into a :class:`ResponseSet` of plain arrays; everything
psychometric is the engine's:

* a pretest run estimates the pretest items on the operational scale with the
  operational items fixed at their bank parameters (``engine.calibrate`` with
  ``FixedItems``), then adds classical statistics, distractor analysis,
  Mantel-Haenszel DIF by group, S-X2 fit where the design allows it, and the
  observed proportions correct by ability group for the ICC plot;
* the psychometrician approves items one by one: an approved item gets a new
  version carrying the run's parameters and becomes operational; a rejected one
  goes back to review. Every run is kept;
* a drift run re-estimates the operational items from recent data, links the
  estimates to the bank scale (``engine.link``, Stocking-Lord) and flags items
  whose ICC moved beyond the program's thresholds.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

import engine
from itembank import lifecycle
from itembank.bank import Parameters, new_parameter_version, versions_by_id
from itembank.content import unpack
from itembank.models import CalibrationItem, CalibrationRun, Item, ItemVersion
from itembank.program import CalibrationSettings, ExamProgram
from persistence import audit
from persistence.csv_export import csv_text
from persistence.errors import Conflict, InvalidInput, NotFound
from persistence.unit_of_work import unit_of_work

NOT_PRESENTED = -1
OMITTED = -2
ICC_GROUPS = 10


@dataclass(frozen=True)
class ResponseSet:
    """Responses gathered from finished sittings, one column per (item version, slot kind).

    choices: (n_sittings, n_columns) int8: the chosen option's index in the
        version's own option list, OMITTED (-2) for presented but unanswered,
        NOT_PRESENTED (-1).
    version_ids, pretest_slot: (n_columns,) the version shown, and whether it
        was shown in an unscored pretest slot.
    groups: name -> (n_sittings,) str labels for DIF ("" where unknown),
        e.g. occupation, company_type, region.
    sitting_ids: (n_sittings,) for the CSV export.
    """

    choices: np.ndarray
    version_ids: np.ndarray
    pretest_slot: np.ndarray
    sitting_ids: np.ndarray
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    window_from: dt.datetime | None = None
    window_to: dt.datetime | None = None

    @property
    def n_sittings(self) -> int:
        return self.choices.shape[0]

    def scored(self, keys: np.ndarray) -> np.ndarray:
        """(n_sittings, n_columns) int8: 1 right, 0 wrong or omitted, -1 not presented."""
        return _score(self.choices, keys)


def _score(choices: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Chosen options against the keys: 1 right, 0 wrong or omitted (unanswered counts as wrong, as in
    scoring), -1 not presented."""
    right = (choices == keys[None, :]).astype(np.int8)
    return np.where(choices == NOT_PRESENTED, np.int8(NOT_PRESENTED), right).astype(np.int8)


@dataclass(frozen=True)
class Columns:
    """The columns of a ResponseSet that a run uses, with what the bank knows of them."""

    index: np.ndarray  # column indices in the ResponseSet
    versions: list[ItemVersion]
    items: list[Item]
    keys: np.ndarray


def _columns(session: Session, data: ResponseSet, wanted: Callable[[ItemVersion, Item, bool], bool]) -> Columns:
    versions = versions_by_id(session, {int(v) for v in data.version_ids})
    items = {i.id: i for i in session.scalars(select(Item).where(
        Item.id.in_({v.item_id for v in versions.values()})))}
    index, chosen_versions, chosen_items, keys = [], [], [], []
    for column, (version_id, pretest) in enumerate(zip(data.version_ids, data.pretest_slot)):
        version = versions[int(version_id)]
        item = items[version.item_id]
        if wanted(version, item, bool(pretest)):
            index.append(column)
            chosen_versions.append(version)
            chosen_items.append(item)
            keys.append(unpack(version.content).key)
    return Columns(np.array(index, dtype=np.int64), chosen_versions, chosen_items, np.array(keys, dtype=np.int64))


def _is_anchor(version: ItemVersion, item: Item, pretest: bool) -> bool:
    # A scored slot of a version with parameters: its parameters scored the sitting.
    return not pretest and version.has_parameters


def _is_pretest(version: ItemVersion, item: Item, pretest: bool) -> bool:
    # Only the item's current version, while the item is still in pretest.
    return pretest and item.status == "pretest" and version.id == max(v.id for v in item.versions)


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _items_of(versions: list[ItemVersion]) -> engine.ItemParameters:
    return engine.ItemParameters([v.a for v in versions], [v.b for v in versions], [v.c for v in versions])


def _priors(settings: CalibrationSettings, reference_c: np.ndarray):
    """The prior on c: the program's Beta, or one whose mode is the mean c of ``reference_c``."""
    if settings.model != "3pl" or settings.c_prior is None:
        return None
    if settings.c_prior == "anchors":
        mode, weight = float(np.mean(reference_c)), settings.c_prior_weight
        return engine.Priors(c_beta=(weight * mode + 1.0, weight * (1.0 - mode) + 1.0))
    return engine.Priors(c_beta=settings.c_prior)


def _icc_groups(theta: np.ndarray, correct: np.ndarray) -> dict:
    """Observed proportion correct in ability groups of equal size, for the ICC plot."""
    seen = correct >= 0
    if seen.sum() < ICC_GROUPS * 5:
        return {"theta": [], "observed": [], "n": []}
    order = np.argsort(theta[seen])
    groups = np.array_split(order, ICC_GROUPS)
    t, x = theta[seen], correct[seen]
    return {"theta": [float(t[g].mean()) for g in groups], "observed": [float(x[g].mean()) for g in groups],
            "n": [int(g.size) for g in groups]}


def _dif(responses: np.ndarray, matching: np.ndarray, groups: dict[str, np.ndarray], columns: np.ndarray,
         minimum: int) -> tuple[dict, list[str]]:
    """Mantel-Haenszel DIF of ``columns`` for every grouping: focal group vs the rest of the grouping.

    Returns {grouping: {focal label: {"delta": [...], "ets_class": [...], "p": [...]}}} and notes on
    the groups left out for size.
    """
    results: dict = {}
    notes: list[str] = []
    for name, labels in groups.items():
        labels = np.asarray(labels).astype(str)
        known = labels != ""
        values, counts = np.unique(labels[known], return_counts=True)
        if values.size < 2:
            notes.append(f"DIF by {name}: only one group in the data")
            continue
        # Two groups: the smaller is focal; more: each large group against all the others.
        focal_labels = [values[np.argmin(counts)]] if values.size == 2 else list(values)
        for focal in focal_labels:
            n_focal = int((labels == focal).sum())
            n_reference = int(known.sum()) - n_focal
            if min(n_focal, n_reference) < minimum:
                notes.append(f"DIF by {name}: {focal} ({n_focal}) vs the rest ({n_reference}) is below "
                             f"{minimum} examinees per group")
                continue
            dif = engine.mantel_haenszel(responses[known][:, columns], labels[known] == focal,
                                         matching=matching[known])
            results.setdefault(name, {})[str(focal)] = {
                "n_focal": n_focal, "n_reference": n_reference,
                "delta": [_finite(v) for v in dif.delta], "ets_class": [str(v) for v in dif.ets_class],
                "p": [_finite(v) for v in dif.p_value],
            }
    return results, notes


def _enough_sittings(data: ResponseSet, settings: CalibrationSettings) -> None:
    if data.n_sittings < settings.min_sittings:
        raise InvalidInput("{n} finished sittings in the window; a calibration run needs at least "
                               "{minimum} (the program's min_sittings)", n=data.n_sittings,
                               minimum=settings.min_sittings)


def _calibrate(*args, **kwargs):
    """engine.calibrate, its failures on degenerate data turned into a clear refusal."""
    try:
        return engine.calibrate(*args, **kwargs)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
        raise InvalidInput("the calibration failed on this data ({error}); widen the window", error=str(error)) from None


def run_pretest_calibration(session: Session, program: ExamProgram, data: ResponseSet, *, actor: str,
                            actor_role: str, now: dt.datetime,
                            progress: Callable[[int, float, float], None] | None = None) -> CalibrationRun:
    """Calibrate the pretest items of ``data`` onto the operational scale; the run is saved. Commits (audited)."""
    with unit_of_work(session):
        return _pretest_run(session, program, data, actor=actor, actor_role=actor_role, now=now, progress=progress)


def _pretest_run(session: Session, program: ExamProgram, data: ResponseSet, *, actor: str, actor_role: str,
                 now: dt.datetime, progress) -> CalibrationRun:
    settings = program.calibration
    _enough_sittings(data, settings)
    anchors = _columns(session, data, _is_anchor)
    pretest = _columns(session, data, _is_pretest)
    if pretest.index.size == 0:
        raise InvalidInput("the finished sittings hold no responses to items that are still in pretest")
    if anchors.index.size < 10:
        raise InvalidInput("only {n} operational items with parameters were answered; "
                               "the scale needs more anchors", n=anchors.index.size)
    columns = np.concatenate([anchors.index, pretest.index])
    keys = np.concatenate([anchors.keys, pretest.keys])
    choices = data.choices[:, columns]
    responses = _score(choices, keys)
    keep = (responses[:, anchors.index.size:] >= 0).any(axis=1)  # sittings that saw a pretest item
    responses, choices = responses[keep], choices[keep]
    groups = {name: np.asarray(labels)[keep] for name, labels in data.groups.items()}
    n_anchor = anchors.index.size
    anchor_items = _items_of(anchors.versions)

    matrix = responses
    if (responses == NOT_PRESENTED).mean() > 0.5:
        matrix = engine.SparseResponses.from_dense(responses)
    result = _calibrate(matrix, settings.model, fixed=engine.FixedItems(np.arange(n_anchor), anchor_items),
                              priors=_priors(settings, anchor_items.c), callback=progress)
    priors = _priors(settings, anchor_items.c)

    theta = engine.eap(responses[:, :n_anchor], anchor_items, prior_mean=result.latent_mean,
                       prior_sd=result.latent_sd).theta
    classical = engine.classical_statistics(responses)
    distractors = engine.distractor_analysis(np.where(choices >= 0, choices, -1), keys,
                                             n_options=len(program.option_labels))
    # Matching score for DIF: number right on the operational items (every sitting has the same count).
    matching = (responses[:, :n_anchor] == 1).sum(axis=1)
    pretest_columns = np.arange(n_anchor, responses.shape[1])
    dif, dif_notes = _dif(responses, matching, groups, pretest_columns, settings.dif_min_group)
    fit, fit_note = _fit(responses, result, pretest_columns)

    run = CalibrationRun(
        kind="pretest", model=settings.model, created_at=now, created_by=actor,
        window_from=data.window_from, window_to=data.window_to, n_sittings=int(keep.sum()), n_anchors=n_anchor,
        converged=bool(result.converged), iterations=int(result.iterations),
        log_likelihood=float(result.log_likelihood), latent_mean=float(result.latent_mean),
        latent_sd=float(result.latent_sd),
        settings={"model": settings.model, "c_prior": list(priors.c_beta) if priors else None,
                  "min_responses": settings.min_responses, "fixed": "operational items at their bank parameters"},
        summary={"notes": dif_notes + ([fit_note] if fit_note else []),
                 "dif_groups": {name: sorted(map(str, by)) for name, by in dif.items()}},
    )
    session.add(run)
    for offset, column in enumerate(pretest_columns):
        version, item = pretest.versions[offset], pretest.items[offset]
        n = int(classical.n_presented[column])
        stats = {
            "p_value": _finite(classical.p_value[column]),
            "point_biserial": _finite(classical.point_biserial[column]),
            "item_rest": _finite(classical.item_rest[column]),
            "distractors": {
                "proportion": [_finite(v) for v in distractors.proportion[column]],
                "mean_total": [_finite(v) for v in distractors.mean_total[column]],
                "point_biserial": [_finite(v) for v in distractors.point_biserial[column]],
                # No key here: statistics are stored and exported in clear; the review screen
                # reads the key from the calibrated version's (encrypted) content.
            },
            "omitted": int(((choices[:, column] == OMITTED)).sum()),
            "fit": {name: values[offset] for name, values in fit.items()} if fit else None,
            "dif": {name: {focal: {k: (v[offset] if isinstance(v, list) else v) for k, v in r.items()}
                           for focal, r in by.items()} for name, by in dif.items()},
            "icc": _icc_groups(theta, responses[:, column]),
        }
        entry = CalibrationItem(
            item_id=item.id, item_version_id=version.id, n_responses=n,
            a=_finite(result.items.a[column]), b=_finite(result.items.b[column]), c=_finite(result.items.c[column]),
            se_a=_finite(result.se.a[column]), se_b=_finite(result.se.b[column]), se_c=_finite(result.se.c[column]),
            previous_a=version.a, previous_b=version.b, previous_c=version.c,
            converged=bool(result.item_converged[column]), message=result.item_messages[column][:500],
            statistics=stats,
        )
        entry.flags = _pretest_flags(entry, settings, int(keys[column]))
        entry.flagged = bool(entry.flags)
        run.items.append(entry)
    session.flush()
    audit.record(session, actor=actor, actor_role=actor_role, action="calibration.run",
                 subject=f"calibration:{run.id}",
                 details={"kind": "pretest", "sittings": run.n_sittings, "items": len(run.items)}, at=now)
    return run


# S-X2 of incomplete data: the summed-score test is the pretest items and the anchors seen most.
FIT_ANCHORS = 60
FIT_IMPUTATIONS = 5


def _fit(responses: np.ndarray, result, columns: np.ndarray) -> tuple[dict | None, str | None]:
    """S-X2 of the pretest columns. Forms differ per sitting, so no examinee answered every
    item: missing responses are imputed from plausible values, five times (engine.sx2)."""
    # mirt's df: each item's free parameters (less those at a bound) and the latent ones estimated.
    n_estimated, n_latent = engine.degrees_of_freedom(result)
    anchors = np.setdiff1d(np.arange(responses.shape[1]), columns)
    seen = (responses[:, anchors] >= 0).sum(axis=0)
    test = np.concatenate([np.sort(anchors[np.argsort(-seen, kind="stable")[:FIT_ANCHORS]]), columns])
    complete = bool((responses[:, test] >= 0).all())
    fit = engine.sx2(responses, result.items, n_estimated=n_estimated, n_latent=n_latent, latent_mean=result.latent_mean,
                     latent_sd=result.latent_sd, imputations=0 if complete else FIT_IMPUTATIONS,
                     rng=np.random.default_rng(20260), columns=test)
    at = len(test) - len(columns)
    note = None if complete else (
        f"S-X2 on a test of the pretest items and the {min(FIT_ANCHORS, anchors.size)} anchors answered most, "
        f"with each sitting's unanswered items imputed {FIT_IMPUTATIONS} times from plausible values "
        "(mirt's itemfit(impute = 5) approach): statistic and df are the means over the imputations")
    return {"sx2": [_finite(v) for v in fit.statistic[at:]], "df": [_finite(v) for v in fit.df[at:]],
            "p": [_finite(v) for v in fit.p_value[at:]]}, note


def _pretest_flags(entry: CalibrationItem, settings: CalibrationSettings, key: int) -> list[str]:
    stats = entry.statistics
    flags = []
    if entry.n_responses < settings.min_responses:
        flags.append(f"only {entry.n_responses} responses (at least {settings.min_responses} to approve)")
    if not entry.converged:
        flags.append(f"estimation did not settle: {entry.message}")
    if entry.se_b is not None and entry.se_b > settings.max_se_b:
        flags.append(f"SE of b {entry.se_b:.2f} above {settings.max_se_b}")
    pb = stats.get("point_biserial")
    if pb is not None and pb < settings.min_point_biserial:
        flags.append(f"point-biserial {pb:.2f} below {settings.min_point_biserial}")
    distractor = stats["distractors"]
    for option, value in enumerate(distractor["point_biserial"]):
        if option != key and value is not None and value > 0:
            flags.append(f"distractor {option + 1} attracts able candidates (point-biserial {value:.2f})")
    fit = stats.get("fit")
    if fit and fit.get("p") is not None and fit["p"] < settings.fit_alpha:
        flags.append(f"S-X2 misfit (p = {fit['p']:.3g})")
    for name, by in stats["dif"].items():
        for focal, result in by.items():
            if result["ets_class"] == "C":
                flags.append(f"DIF class C by {name} ({focal}, delta {result['delta']:.2f})")
    return flags


def runs(session: Session) -> list[CalibrationRun]:
    return list(session.scalars(select(CalibrationRun).options(selectinload(CalibrationRun.items))
                                .order_by(CalibrationRun.id.desc())))


def get_run(session: Session, run_id: int) -> CalibrationRun:
    run = session.scalar(select(CalibrationRun).where(CalibrationRun.id == run_id).options(
        selectinload(CalibrationRun.items).selectinload(CalibrationItem.item)))
    if run is None:
        raise NotFound("no calibration run {run}", run=run_id)
    return run


def _run_item(run: CalibrationRun, code: str) -> CalibrationItem:
    for entry in run.items:
        if entry.item.code == code:
            return entry
    raise NotFound("item {code} is not in calibration run {run}", code=code, run=run.id)


def approve(session: Session, program: ExamProgram, run_id: int, code: str, *, actor: str, actor_role: str,
            now: dt.datetime, note: str = "") -> ItemVersion:
    """Approve a pretest item of a run: a new version with the run's parameters; the item becomes operational.
    Commits (audited).
    """
    with unit_of_work(session):
        run = get_run(session, run_id)
        if run.kind != "pretest":
            raise Conflict("run {run} is a {kind} run; only pretest runs approve items", run=run_id, kind=run.kind)
        entry = _run_item(run, code)
        if entry.decision != "pending":
            raise Conflict("{code} was already {decision} in run {run}", code=code, decision=entry.decision,
                           run=run_id)
        item = entry.item
        if item.status != "pretest":
            raise Conflict("{code} is {status}, no longer in pretest", code=code, status=item.status)
        if item.current_version.id != entry.item_version_id:
            raise Conflict("{code} has a newer version than the one this run calibrated", code=code)
        settings = program.calibration
        if entry.n_responses < settings.min_responses:
            raise Conflict("{code} has {n} responses in run {run}; at least {minimum} are needed to approve it",
                           code=code, n=entry.n_responses, run=run_id, minimum=settings.min_responses)
        if not entry.converged or entry.a is None or entry.b is None or entry.c is None:
            raise Conflict("{code}'s estimates did not settle in run {run} ({message})", code=code, run=run_id,
                           message=entry.message)
        version = new_parameter_version(session, item, Parameters(
            entry.a, entry.b, entry.c, "calibration", entry.se_a, entry.se_b, entry.se_c, run.id, entry.n_responses),
            actor=actor, now=now, note=f"calibration run {run.id}")
        lifecycle.move(session, program, code, "operational", actor=actor, actor_role=actor_role, now=now,
                       reason=note or f"approved in calibration run {run.id}", calibration_run_id=run.id)
        entry.decision, entry.decided_by, entry.decided_at = "approved", actor, now
        entry.decision_note, entry.new_version_id = note[:500], version.id
        audit.record(session, actor=actor, actor_role=actor_role, action="calibration.approve", subject=f"item:{code}",
                     reason=note, details={"run": run.id, "version": version.version,
                                           "a": entry.a, "b": entry.b, "c": entry.c}, at=now)
    return version


def reject(session: Session, program: ExamProgram, run_id: int, code: str, *, actor: str, actor_role: str,
           now: dt.datetime, note: str) -> None:
    """Reject a pretest item of a run: it goes back to review, with the reason. Commits (audited)."""
    if not note.strip():
        raise InvalidInput("say why the item is rejected: the author will read it", field="note")
    with unit_of_work(session):
        run = get_run(session, run_id)
        entry = _run_item(run, code)
        if run.kind != "pretest" or entry.decision != "pending":
            raise Conflict("{code} cannot be rejected in run {run} (it is {decision})", code=code, run=run_id,
                           decision=entry.decision)
        lifecycle.move(session, program, code, "reviewed", actor=actor, actor_role=actor_role, now=now,
                       reason=f"rejected in calibration run {run.id}: {note}", calibration_run_id=run.id)
        entry.decision, entry.decided_by, entry.decided_at, entry.decision_note = "rejected", actor, now, note[:500]
        audit.record(session, actor=actor, actor_role=actor_role, action="calibration.reject", subject=f"item:{code}",
                     reason=note, details={"run": run.id}, at=now)


def icc_rmsd(old: engine.ItemParameters, new: engine.ItemParameters) -> np.ndarray:
    """Root mean square difference of two sets of ICCs over N(0, 1) abilities, (n_items,)."""
    nodes, weights = engine.normal_quadrature(41, 4.0)
    difference = engine.probability(nodes, new) - engine.probability(nodes, old)
    return np.sqrt(weights @ difference**2)


def run_drift_watch(session: Session, program: ExamProgram, data: ResponseSet, *, actor: str, actor_role: str,
                    now: dt.datetime,
                    progress: Callable[[int, float, float], None] | None = None) -> CalibrationRun:
    """Re-estimate the operational items from ``data``, link to the bank scale, flag what moved. Commits (audited)."""
    with unit_of_work(session):
        return _drift_run(session, program, data, actor=actor, actor_role=actor_role, now=now, progress=progress)


def _drift_run(session: Session, program: ExamProgram, data: ResponseSet, *, actor: str, actor_role: str,
               now: dt.datetime, progress) -> CalibrationRun:
    settings = program.calibration
    _enough_sittings(data, settings)
    operational = _columns(session, data, lambda v, i, pretest: _is_anchor(v, i, pretest) and i.status == "operational")
    if operational.index.size < 10:
        raise InvalidInput("too few operational items answered to re-estimate and link them")
    responses = _score(data.choices[:, operational.index], operational.keys)
    counts = (responses >= 0).sum(axis=0)
    usable = counts >= settings.min_responses
    if usable.sum() < 10:
        raise InvalidInput("fewer than 10 operational items have {minimum} responses in the window; widen it",
                           minimum=settings.min_responses)
    responses, counts = responses[:, usable], counts[usable]
    versions = [v for v, u in zip(operational.versions, usable) if u]
    items = [i for i, u in zip(operational.items, usable) if u]
    responses = responses[(responses >= 0).any(axis=1)]
    bank_items = _items_of(versions)
    matrix = engine.SparseResponses.from_dense(responses) if (responses < 0).mean() > 0.5 else responses
    result = _calibrate(matrix, settings.model, priors=_priors(settings, bank_items.c), callback=progress)
    constants = engine.link(result.items, bank_items, "stocking_lord")
    linked = constants.transform_items(result.items)
    rmsd = icc_rmsd(bank_items, linked)
    run = CalibrationRun(
        kind="drift", model=settings.model, created_at=now, created_by=actor, window_from=data.window_from,
        window_to=data.window_to, n_sittings=int(responses.shape[0]), n_anchors=len(versions),
        converged=bool(result.converged), iterations=int(result.iterations),
        log_likelihood=float(result.log_likelihood), latent_mean=float(constants.B),
        latent_sd=float(constants.A),
        settings={"model": settings.model, "drift_rmsd": settings.drift_rmsd, "drift_b": settings.drift_b,
                  "linking": "stocking_lord", "A": constants.A, "B": constants.B},
        summary={"notes": [f"free calibration linked to the bank scale: theta_bank = {constants.A:.3f} theta "
                           f"+ {constants.B:.3f} (Stocking-Lord over {len(versions)} items)"]},
    )
    session.add(run)
    for j, (version, item) in enumerate(zip(versions, items)):
        entry = CalibrationItem(
            item_id=item.id, item_version_id=version.id, n_responses=int(counts[j]),
            a=_finite(linked.a[j]), b=_finite(linked.b[j]), c=_finite(linked.c[j]),
            se_a=_finite(result.se.a[j] / constants.A), se_b=_finite(result.se.b[j] * constants.A),
            se_c=_finite(result.se.c[j]), previous_a=version.a, previous_b=version.b, previous_c=version.c,
            converged=bool(result.item_converged[j]), message=result.item_messages[j][:500],
            statistics={"rmsd": _finite(rmsd[j]), "b_shift": _finite(linked.b[j] - version.b),
                        "a_ratio": _finite(linked.a[j] / version.a)},
        )
        flags = []
        if rmsd[j] > settings.drift_rmsd:
            flags.append(f"ICC moved: RMSD {rmsd[j]:.3f} above {settings.drift_rmsd}")
        if abs(linked.b[j] - version.b) > settings.drift_b:
            flags.append(f"b moved by {linked.b[j] - version.b:+.2f} (threshold {settings.drift_b})")
        entry.flags, entry.flagged = flags, bool(flags)
        run.items.append(entry)
    session.flush()
    audit.record(session, actor=actor, actor_role=actor_role, action="calibration.run",
                 subject=f"calibration:{run.id}",
                 details={"kind": "drift", "sittings": run.n_sittings, "items": len(run.items),
                          "flagged": sum(e.flagged for e in run.items)}, at=now)
    return run


def acknowledge(session: Session, run_id: int, code: str, *, actor: str, actor_role: str, now: dt.datetime,
                note: str = "") -> None:
    """Mark a drift flag as seen (the item stays as it is; retiring it is a lifecycle step). Commits (audited)."""
    with unit_of_work(session):
        run = get_run(session, run_id)
        entry = _run_item(run, code)
        if run.kind != "drift" or entry.decision != "pending":
            raise Conflict("{code} cannot be acknowledged in run {run}", code=code, run=run_id)
        entry.decision, entry.decided_by, entry.decided_at = "acknowledged", actor, now
        entry.decision_note = note[:500]
        audit.record(session, actor=actor, actor_role=actor_role, action="calibration.acknowledge",
                     subject=f"item:{code}", reason=note, details={"run": run.id}, at=now)


def response_csv_columns(session: Session, data: ResponseSet) -> tuple[list[str], np.ndarray, list[ItemVersion]]:
    """Column names (``CODE.vN``, ``.pretest`` for pretest slots), scored responses and versions, for CSV."""
    versions = versions_by_id(session, {int(v) for v in data.version_ids})
    codes = {i.id: i.code for i in session.scalars(select(Item).where(
        Item.id.in_({v.item_id for v in versions.values()})))}
    names, keys, ordered = [], [], []
    for version_id, pretest in zip(data.version_ids, data.pretest_slot):
        version = versions[int(version_id)]
        names.append(f"{codes[version.item_id]}.v{version.version}" + (".pretest" if pretest else ""))
        keys.append(unpack(version.content).key)
        ordered.append(version)
    return names, data.scored(np.array(keys, dtype=np.int64)), ordered


def responses_csv(session: Session, data: ResponseSet, *, actor: str, actor_role: str, now: dt.datetime) -> str:
    """``data`` as RESPONSES.csv for `cbt calibrate` and R (``examinee_id`` then ``CODE.vN`` columns:
    1 right, 0 wrong or omitted, empty not presented). The export is audited; commits."""
    names, scored, _versions = response_csv_columns(session, data)
    symbols = ("", "0", "1")
    rows = ([f"sitting-{sitting_id}", *(symbols[v + 1] for v in row)] for sitting_id, row in zip(data.sitting_ids,
                                                                                                  scored.tolist()))
    with unit_of_work(session):
        text = csv_text(["examinee_id", *names], rows)
        audit.record(session, actor=actor, actor_role=actor_role, action="bank.export", subject="responses",
                     details={"sittings": data.n_sittings}, at=now)
    return text


def anchors_csv(session: Session, data: ResponseSet, *, actor: str, actor_role: str, now: dt.datetime) -> str:
    """The parameters of the versions ``data`` answered in scored slots, as PARAMS.csv for
    ``cbt calibrate --fixed``. The bank's parameters leave the system: audited; commits."""
    names, _scored, versions = response_csv_columns(session, data)
    rows = [(name, v.a, v.b, v.c) for name, v, pretest_slot in zip(names, versions, data.pretest_slot)
            if not pretest_slot and v.has_parameters]
    with unit_of_work(session):
        text = csv_text(["item_id", "a", "b", "c"], rows)
        audit.record(session, actor=actor, actor_role=actor_role, action="bank.export", subject="anchors",
                     details={"items": len(rows)}, at=now)
    return text
