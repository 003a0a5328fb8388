"""From item responses to scale scores and a pass/fail decision."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import engine
from itembank.program import ScaleTransformation
from scoring.rules import ScoringRule


@dataclass(frozen=True)
class ScaledScores:
    """Scores of n examinees: column 0 is the total, then one per field in program order.

    theta, se: float (n, 1 + n_fields); scale: int (n, 1 + n_fields); passed: bool (n,).
    """

    columns: tuple[str, ...]
    theta: np.ndarray
    se: np.ndarray
    scale: np.ndarray
    passed: np.ndarray


def to_scale(theta: np.ndarray, scale: ScaleTransformation) -> np.ndarray:
    """clip(round(intercept + slope * theta), minimum, maximum), halves rounded up."""
    raw = np.floor(scale.intercept + scale.slope * np.asarray(theta, dtype=float) + 0.5)
    return np.clip(raw, scale.minimum, scale.maximum).astype(int)


def score_responses(
    rule: ScoringRule,
    items: engine.ItemParameters,
    item_fields: np.ndarray,
    responses: np.ndarray,
) -> ScaledScores:
    """Score every row of ``responses`` (n, n_items: 1 right, 0 wrong, -1 not presented).

    ``item_fields`` (n_items,) gives each column's field code. The total and the
    field thetas come from one EAP call over the item subsets.
    """
    item_fields = np.asarray(item_fields)
    subsets = np.vstack([np.ones(items.n_items, dtype=bool)] + [item_fields == code for code in rule.fields])
    if rule.method != "eap":
        raise ValueError(f"scoring method {rule.method!r} is not supported; use 'eap'")
    estimate = engine.eap(
        responses,
        items,
        subsets=subsets,
        prior_mean=rule.prior_mean,
        prior_sd=rule.prior_sd,
        n_points=rule.quadrature_points,
        bound=rule.quadrature_range,
    )
    scale = to_scale(estimate.theta, rule.scale)
    minimums = rule.pass_rule
    passed = (scale[:, 0] >= minimums.total_minimum) & np.all(scale[:, 1:] >= minimums.field_minimum, axis=1)
    return ScaledScores(("total",) + rule.fields, estimate.theta, estimate.se, scale, passed)
