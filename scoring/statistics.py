"""The operation's numbers: sittings, pass rates and score distributions, by breakdown.

Works on plain arrays, one element per scored sitting (gathered by the delivery
layer from sittings, bookings, centres and candidates), so that a year of
results is a handful of numpy group-bys, not a loop over sittings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from persistence.csv_export import csv_text

# The exam spec's candidate groups.
GROUPS = ("working/it", "working/non-it", "working/unknown", "student", "unknown")
BREAKDOWNS = ("month", "centre", "region", "group")


@dataclass(frozen=True)
class ScoredSittings:
    """n scored sittings: ``month`` 'YYYY-MM', ``centre``, ``region``, ``group`` (see GROUPS),
    ``age`` in years at the sitting, ``total`` (n,), ``fields`` (n, n_fields), ``passed`` (n,)."""

    field_codes: tuple[str, ...]
    month: np.ndarray
    centre: np.ndarray
    region: np.ndarray
    group: np.ndarray
    age: np.ndarray
    total: np.ndarray
    fields: np.ndarray
    passed: np.ndarray

    @property
    def n(self) -> int:
        return self.total.shape[0]


def candidate_group(occupation: str | None, company_type: str | None) -> str:
    if occupation == "student":
        return "student"
    if occupation == "working":
        return f"working/{company_type}" if company_type in ("it", "non-it") else "working/unknown"
    return "unknown"


@dataclass(frozen=True)
class Breakdown:
    """Counts and means per key of one dimension; arrays have one element per key."""

    dimension: str
    keys: tuple[str, ...]
    sittings: np.ndarray
    passed: np.ndarray
    mean_total: np.ndarray
    mean_fields: np.ndarray  # (n_keys, n_fields)
    below_field_minimum: np.ndarray  # (n_keys, n_fields): share under the field minimum

    @property
    def pass_rate(self) -> np.ndarray:
        return np.divide(self.passed, self.sittings, out=np.zeros(len(self.keys)), where=self.sittings > 0)


def breakdown(data: ScoredSittings, dimension: str, field_minimum: int) -> Breakdown:
    """Group the sittings by ``dimension`` (one of BREAKDOWNS), keys in sorted order."""
    if dimension not in BREAKDOWNS:
        raise ValueError(f"unknown breakdown {dimension!r}; one of {', '.join(BREAKDOWNS)}")
    keys, index = np.unique(getattr(data, dimension), return_inverse=True)
    k = len(keys)
    sittings = np.bincount(index, minlength=k)
    safe = np.maximum(sittings, 1)
    mean_fields = np.stack(
        [np.bincount(index, weights=data.fields[:, j], minlength=k) for j in range(len(data.field_codes))], axis=1
    ) / safe[:, None] if data.n else np.zeros((k, len(data.field_codes)))
    below = np.stack(
        [np.bincount(index, weights=data.fields[:, j] < field_minimum, minlength=k)
         for j in range(len(data.field_codes))], axis=1
    ) / safe[:, None] if data.n else np.zeros((k, len(data.field_codes)))
    return Breakdown(
        dimension=dimension,
        keys=tuple(str(key) for key in keys),
        sittings=sittings,
        passed=np.bincount(index, weights=data.passed, minlength=k).astype(int),
        mean_total=np.bincount(index, weights=data.total, minlength=k) / safe,
        mean_fields=mean_fields,
        below_field_minimum=below,
    )


def score_distribution(totals: np.ndarray, bin_width: int = 50, maximum: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Counts of totals in bins [0, w), [w, 2w), ... with the maximum in the last bin."""
    edges = np.arange(0, maximum + bin_width, bin_width)
    counts, _ = np.histogram(np.minimum(totals, maximum - 1e-9), bins=edges)
    return edges, counts


@dataclass(frozen=True)
class Summary:
    """The headline figures, as the exam spec's table reports them."""

    applicants: int
    examinees: int
    passed: int
    average_age_of_passers: float
    working_share: float
    it_share_of_working: float
    pass_rate_working: float
    pass_rate_students: float

    @property
    def pass_rate(self) -> float:
        return self.passed / self.examinees if self.examinees else 0.0


def summary(data: ScoredSittings, applicants: int) -> Summary:
    working = np.char.startswith(data.group.astype(str), "working/")
    student = data.group == "student"
    known_company = np.isin(data.group, ("working/it", "working/non-it"))

    def rate(mask):
        return float(data.passed[mask].mean()) if mask.any() else 0.0

    return Summary(
        applicants=applicants,
        examinees=data.n,
        passed=int(data.passed.sum()),
        average_age_of_passers=float(data.age[data.passed].mean()) if data.passed.any() else 0.0,
        working_share=float(working.mean()) if data.n else 0.0,
        it_share_of_working=float((data.group[known_company] == "working/it").mean()) if known_company.any() else 0.0,
        pass_rate_working=rate(working),
        pass_rate_students=rate(student),
    )


def breakdowns_csv(breakdowns: list[Breakdown], field_codes: tuple[str, ...]) -> str:
    """One CSV of every breakdown: dimension, key, sittings, passed, pass_rate, mean scores
    (quoted, no cell a spreadsheet runs as a formula: :mod:`persistence.csv_export`)."""
    header = (["dimension", "key", "sittings", "passed", "pass_rate", "mean_total"]
              + [f"mean_{code}" for code in field_codes] + [f"below_minimum_{code}" for code in field_codes])
    rows = [[b.dimension, key, int(b.sittings[i]), int(b.passed[i]), f"{b.pass_rate[i]:.4f}", f"{b.mean_total[i]:.1f}"]
            + [f"{v:.1f}" for v in b.mean_fields[i]] + [f"{v:.4f}" for v in b.below_field_minimum[i]]
            for b in breakdowns for i, key in enumerate(b.keys)]
    return csv_text(header, rows)
