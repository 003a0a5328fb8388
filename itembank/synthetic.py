"""Synthetic items for design studies, benchmarks and tests (the sample bank is too small).

Parameters follow the distributions the engine's benchmarks use:
a ~ lognormal(0, 0.25), b ~ N(0, 1), c ~ U(0.1, 0.25).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.assembly import Pool
from engine.models import ItemParameters
from itembank.content import ItemContent
from itembank.program import ExamProgram


@dataclass(frozen=True)
class SyntheticItem:
    code: str
    category: int
    content: ItemContent
    a: float
    b: float
    c: float


@dataclass(frozen=True)
class SyntheticParameters:
    """``n`` synthetic items as arrays: field index (program order), middle category number, a, b, c, key."""

    field: np.ndarray
    category: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    key: np.ndarray


SYNTHETIC_LANGUAGE = "en"  # the language synthetic items are written in


def synthetic_parameters(program: ExamProgram, n_items: int, rng: np.random.Generator) -> SyntheticParameters:
    """The items of :func:`synthetic_items` without their content (fast for pools of thousands)."""
    weights = np.array([f.items for f in program.fields], dtype=float)
    field_index = rng.choice(len(program.fields), size=n_items, p=weights / weights.sum())
    a = np.exp(rng.normal(0.0, 0.25, n_items))
    b = rng.normal(0.0, 1.0, n_items)
    c = rng.uniform(0.1, 0.25, n_items)
    keys = rng.integers(0, len(program.option_labels), n_items)
    numbers = np.arange(1, n_items + 1)
    category = np.array([program.fields[f].categories[number % len(program.fields[f].categories)]
                         for f, number in zip(field_index, numbers)], dtype=np.int64)
    return SyntheticParameters(field_index.astype(np.int64), category, a.round(3), b.round(3), c.round(3), keys)


def synthetic_items(program: ExamProgram, n_items: int, rng: np.random.Generator, prefix: str = "SYN") -> list[SyntheticItem]:
    """``n_items`` items spread over the program's fields in blueprint proportion,
    and evenly over each field's middle categories."""
    drawn = synthetic_parameters(program, n_items, rng)
    items = []
    for number in range(1, n_items + 1):
        field = program.fields[drawn.field[number - 1]]
        category = int(drawn.category[number - 1])
        key = int(drawn.key[number - 1])
        labels = program.labels_for(SYNTHETIC_LANGUAGE)
        options = tuple(f"Option {label} of synthetic item {number}" for label in labels)
        content = ItemContent(
            stem=f"Synthetic item {number} ({field.name}, category {category}): which option is the key?",
            options=options,
            key=key,
            rationale=f"Option {labels[key]} is the key of this synthetic item.",
            language=SYNTHETIC_LANGUAGE,
        )
        items.append(SyntheticItem(f"{prefix}-{number:05d}", category, content, float(drawn.a[number - 1]),
                                   float(drawn.b[number - 1]), float(drawn.c[number - 1])))
    return items


def synthetic_pool(program: ExamProgram, n_items: int, rng: np.random.Generator, *,
                   enemy_share: float = 0.02) -> Pool:
    """An operational pool of ``n_items`` synthetic items for assembly (indices as :mod:`itembank.assembly` uses),
    with enemy pairs among ``enemy_share`` of the items (pairs within a field, as clueing items usually are)."""
    drawn = synthetic_parameters(program, n_items, rng)
    category_index = {c.number: i for i, c in enumerate(program.categories)}
    groups = []
    for f in range(len(program.fields)):
        members = rng.permutation(np.flatnonzero(drawn.field == f))
        n_pairs = int(len(members) * enemy_share / 2)
        groups += [members[2 * k:2 * k + 2] for k in range(n_pairs)]
    return Pool(ItemParameters(drawn.a, drawn.b, drawn.c), drawn.field,
                np.array([category_index[int(c)] for c in drawn.category], dtype=np.int64), groups)
