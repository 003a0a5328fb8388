"""Synthetic items for design studies, benchmarks and tests (the sample bank is too small).

Parameters follow the distributions the engine's benchmarks use:
a ~ lognormal(0, 0.25), b ~ N(0, 1), c ~ U(0.1, 0.25).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def synthetic_items(program: ExamProgram, n_items: int, rng: np.random.Generator, prefix: str = "SYN") -> list[SyntheticItem]:
    """``n_items`` items spread over the program's fields in blueprint proportion,
    and evenly over each field's middle categories."""
    weights = np.array([f.items for f in program.fields], dtype=float)
    field_index = rng.choice(len(program.fields), size=n_items, p=weights / weights.sum())
    a = np.exp(rng.normal(0.0, 0.25, n_items))
    b = rng.normal(0.0, 1.0, n_items)
    c = rng.uniform(0.1, 0.25, n_items)
    keys = rng.integers(0, len(program.option_labels), n_items)
    items = []
    for number, (f, ai, bi, ci, key) in enumerate(zip(field_index, a, b, c, keys), start=1):
        field = program.fields[f]
        category = int(field.categories[number % len(field.categories)])
        options = tuple(f"Option {label} of synthetic item {number}" for label in program.option_labels)
        content = ItemContent(
            stem=f"Synthetic item {number} ({field.name}, category {category}): which option is the key?",
            options=options,
            key=int(key),
            rationale=f"Option {program.option_labels[key]} is the key of this synthetic item.",
        )
        items.append(SyntheticItem(f"{prefix}-{number:05d}", category, content, round(float(ai), 3),
                                   round(float(bi), 3), round(float(ci), 3)))
    return items
