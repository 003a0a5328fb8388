"""Dichotomous IRT models on the logistic metric (no 1.7 constant).

P(correct | theta) = c + (d - c) / (1 + exp(-a (theta - b)))
with d = 1 except for the 4PL; the 3PL has d = 1, the 2PL also c = 0, the
Rasch/1PL also a = 1 (or one common a).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ItemParameters:
    """Parameters of ``n_items`` items, each an array of shape (n_items,)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("a", "b", "c"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float))
        if self.d is not None:
            object.__setattr__(self, "d", np.asarray(self.d, dtype=float))
        shapes = {self.a.shape, self.b.shape, self.c.shape} | ({self.d.shape} if self.d is not None else set())
        if len(shapes) != 1 or self.a.ndim != 1:
            raise ValueError(f"a, b, c (and d) must be 1-D arrays of one length, got shapes {shapes}")

    @property
    def n_items(self) -> int:
        return self.a.shape[0]

    def subset(self, index) -> "ItemParameters":
        return ItemParameters(self.a[index], self.b[index], self.c[index], None if self.d is None else self.d[index])


def probability(theta: np.ndarray, items: ItemParameters) -> np.ndarray:
    """P(correct), shape (n_theta, n_items) for theta of shape (n_theta,)."""
    theta = np.asarray(theta, dtype=float)
    logistic = 1.0 / (1.0 + np.exp(-items.a * (theta[:, None] - items.b)))
    upper = 1.0 if items.d is None else items.d
    return items.c + (upper - items.c) * logistic
