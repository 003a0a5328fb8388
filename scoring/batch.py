"""Scoring many sittings at once: the one scoring path, for one sitting or a year of them.

A sitting's scored answers are rows of an :class:`AnswerSheet` (long form); the
item versions seen are the columns of a sparse design, so a quarter of a million
sittings drawn from a bank of thousands of items never becomes a dense matrix.
Scoring one sitting at the end of its exam goes through the same code, so a
batch rescore gives the same scores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

import engine
from itembank.content import unpack
from itembank.models import ItemVersion
from itembank.program import FIELD_METHODS, SCORING_METHODS
from scoring.models import ScoringAmendment
from scoring.rules import ScoringRule
from scoring.scale import to_scale

UNANSWERED = -1


class ScoringError(RuntimeError):
    """Answers that cannot be scored (e.g. an item version without parameters)."""


@dataclass(frozen=True)
class AnswerSheet:
    """Scored answers of ``n_sittings`` sittings, one row per answer, grouped by sitting.

    sitting: (n_rows,) sitting index 0..n_sittings-1, non-decreasing; version_id: the
    item version shown; field: its field code; chosen: the option chosen (an index
    into the version's own options), -1 when unanswered (scored as wrong).
    """

    n_sittings: int
    sitting: np.ndarray
    version_id: np.ndarray
    field: np.ndarray
    chosen: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "sitting", np.asarray(self.sitting, dtype=np.int64))
        object.__setattr__(self, "version_id", np.asarray(self.version_id, dtype=np.int64))
        object.__setattr__(self, "field", np.asarray(self.field, dtype=str))
        object.__setattr__(self, "chosen", np.asarray(self.chosen, dtype=np.int64))
        if np.any(np.diff(self.sitting) < 0):
            raise ValueError("answer rows must be grouped by sitting")

    @classmethod
    def of_responses(cls, responses: np.ndarray, item_fields: np.ndarray) -> "AnswerSheet":
        """A sheet of scored responses (n, n_items: 1 right, 0 wrong, -1 not presented) to items
        whose key is option 0 (see :meth:`VersionTable.of_items`): for simulations."""
        rows, items = np.nonzero(np.asarray(responses) >= 0)
        return cls(n_sittings=responses.shape[0], sitting=rows, version_id=items,
                   field=np.asarray(item_fields)[items], chosen=np.where(responses[rows, items] == 1, 0, 1))


@dataclass(frozen=True)
class VersionTable:
    """What scoring needs of each item version (sorted ids): parameters, key, withdrawn."""

    version_id: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    key: np.ndarray
    withdrawn: np.ndarray

    def columns(self, version_ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.version_id, version_ids)

    @classmethod
    def of_items(cls, items: engine.ItemParameters) -> "VersionTable":
        """Items numbered 0..n-1 with their key at option 0 (see :meth:`AnswerSheet.of_responses`)."""
        n = items.n_items
        return cls(np.arange(n), items.a, items.b, items.c, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))


def version_table(session: Session, version_ids, amendment_ids=()) -> VersionTable:
    """Parameters and keys of the versions, with the given amendments applied.

    Each version's content is decrypted once, however many sittings saw it.
    """
    ids = np.unique(np.asarray(list(version_ids), dtype=np.int64))
    versions = {v.id: v for v in session.scalars(select(ItemVersion).where(ItemVersion.id.in_(ids.tolist())))}
    missing = [int(i) for i in ids if int(i) not in versions]
    if missing:
        raise ScoringError(f"unknown item versions {missing[:5]}")
    unusable = [v.id for v in versions.values() if v.a is None or v.b is None or v.c is None]
    if unusable:
        raise ScoringError(f"item versions without IRT parameters: {sorted(unusable)[:5]}")
    ordered = [versions[int(i)] for i in ids]
    key = np.array([unpack(v.content).key for v in ordered], dtype=np.int64)
    withdrawn = np.zeros(len(ids), dtype=bool)
    if amendment_ids:
        amendments = session.scalars(select(ScoringAmendment).where(ScoringAmendment.id.in_(list(amendment_ids)))
                                     .order_by(ScoringAmendment.id))
        for amendment in amendments:
            column = np.searchsorted(ids, amendment.item_version_id)
            if column < len(ids) and ids[column] == amendment.item_version_id:
                if amendment.kind == "withdrawn":
                    withdrawn[column] = True
                else:
                    key[column] = amendment.key
    return VersionTable(
        version_id=ids,
        a=np.array([v.a for v in ordered]),
        b=np.array([v.b for v in ordered]),
        c=np.array([v.c for v in ordered]),
        key=key,
        withdrawn=withdrawn,
    )


@dataclass(frozen=True)
class SheetScores:
    """Scores of every sitting of a sheet: column 0 the total, then the rule's fields.

    theta, se: (n_sittings, 1 + n_fields); scale: int, same shape; passed: (n_sittings,);
    scored_items: (n_sittings,) answers that counted (withdrawn items do not).
    """

    columns: tuple[str, ...]
    theta: np.ndarray
    se: np.ndarray
    scale: np.ndarray
    passed: np.ndarray
    scored_items: np.ndarray


def estimate_ability(rule: ScoringRule, responses, items: engine.ItemParameters, subsets) -> engine.AbilityEstimate:
    """Theta and its SE by the rule's method (EAP and MAP under the rule's normal prior)."""
    s = rule.settings
    if s.method == "eap":
        return engine.eap(responses, items, subsets=subsets, prior_mean=s.prior_mean, prior_sd=s.prior_sd,
                          n_points=s.quadrature_points, bound=s.quadrature_range)
    if s.method == "map":
        return engine.map_estimate(responses, items, subsets=subsets, prior_mean=s.prior_mean,
                                   prior_sd=s.prior_sd, bound=s.quadrature_range)
    if s.method == "ml":
        return engine.ml_estimate(responses, items, subsets=subsets, bound=s.quadrature_range)
    if s.method == "wle":
        return engine.wle_estimate(responses, items, subsets=subsets, bound=s.quadrature_range)
    raise ScoringError(f"scoring method {s.method!r} is not supported; one of {', '.join(SCORING_METHODS)}")


def estimate_scores(rule: ScoringRule, responses, items: engine.ItemParameters,
                    subsets: np.ndarray) -> engine.AbilityEstimate:
    """The total (subset 0, every item) by the rule's method and the fields (subsets 1..F) by its field method.

    "separate": each field by the method on its own items. "multidimensional_eap": the
    fields jointly, EAP under N(prior_mean, prior_sd^2 R) with R the rule's field
    correlation (engine.multidimensional_eap, its own product grid of 31 nodes per
    field on +-5 SD). "augmented": each field's WLE and SE, augmented by the others'
    (engine.augmented_subscores, each sitting's own SEs) with the same prior.
    """
    s = rule.settings
    if s.field_method == "separate":
        return estimate_ability(rule, responses, items, subsets)
    if s.field_method not in FIELD_METHODS or s.field_correlation is None:
        raise ScoringError(f"field method {s.field_method!r} needs a field correlation; "
                           f"one of {', '.join(FIELD_METHODS)}")
    n_fields = subsets.shape[0] - 1
    correlation = np.array(s.field_correlation, dtype=float)
    mean = np.full(n_fields, s.prior_mean)
    total = estimate_ability(rule, responses, items, subsets[:1])
    if s.field_method == "multidimensional_eap":
        field = np.argmax(subsets[1:], axis=0)  # every version is in one field (score_sheet checks)
        fields = engine.multidimensional_eap(responses, items, field, correlation, mean=mean,
                                             sd=np.full(n_fields, s.prior_sd))
    else:
        wle = engine.wle_estimate(responses, items, subsets=subsets[1:], bound=s.quadrature_range)
        fields = engine.augmented_subscores(wle.theta, wle.se, correlation * s.prior_sd**2, mean)
    return engine.AbilityEstimate(np.column_stack([total.theta, fields.theta]),
                                  np.column_stack([total.se, fields.se]))


def score_sheet(rule: ScoringRule, table: VersionTable, sheet: AnswerSheet) -> SheetScores:
    """Theta for the total and each field (by the rule's method), the scale transformation and
    the pass rule, for every sitting."""
    if rule.settings.method not in SCORING_METHODS:
        raise ScoringError(f"scoring method {rule.settings.method!r} is not supported; "
                           f"one of {', '.join(SCORING_METHODS)}")
    unknown_fields = set(np.unique(sheet.field)) - set(rule.fields)
    if unknown_fields:
        raise ScoringError(f"answers in fields the rule does not score: {sorted(unknown_fields)}")
    column = table.columns(sheet.version_id)
    counted = ~table.withdrawn[column]
    correct = (sheet.chosen == table.key[column]) & (sheet.chosen != UNANSWERED)
    responses = engine.SparseResponses.from_triples(
        sheet.sitting[counted], column[counted], correct[counted].astype(np.int8),
        n_examinees=sheet.n_sittings, n_items=len(table.version_id),
    )
    # Each version's field, for the subsets; a version belongs to one field.
    version_field = np.empty(len(table.version_id), dtype=sheet.field.dtype if sheet.field.size else "<U1")
    version_field[column] = sheet.field
    subsets = np.vstack([np.ones(len(table.version_id), dtype=bool)]
                        + [version_field == code for code in rule.fields])
    estimate = estimate_scores(rule, responses, engine.ItemParameters(table.a, table.b, table.c), subsets)
    undefined = np.isnan(estimate.theta).any(axis=0)
    if undefined.any():
        columns = [c for c, bad in zip(("total",) + rule.fields, undefined) if bad]
        raise ScoringError(f"no ability estimate for {', '.join(columns)}: no scored items there "
                           f"(the {rule.settings.method.upper()} method needs at least one)")
    scale = to_scale(estimate.theta, rule.scale)
    minimums = rule.pass_rule
    passed = (scale[:, 0] >= minimums.total_minimum) & np.all(scale[:, 1:] >= minimums.field_minimum, axis=1)
    return SheetScores(
        columns=("total",) + rule.fields,
        theta=estimate.theta,
        se=estimate.se,
        scale=scale,
        passed=passed,
        scored_items=np.bincount(sheet.sitting[counted], minlength=sheet.n_sittings),
    )
