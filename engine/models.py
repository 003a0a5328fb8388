"""Dichotomous IRT models on the logistic metric (no 1.7 constant).

    P_j(theta) = c_j + (d_j - c_j) / (1 + exp(-a_j (theta - b_j)))

with d_j = 1 except for the 4PL; the 3PL has d = 1, the 2PL also c = 0, the
Rasch/1PL one common a. Every function here takes an ability grid ``theta`` of
shape (n_theta,) and returns arrays of shape (n_theta, n_items) or (n_theta,).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.responses import as_response_data

# Probabilities are kept this far from 0 and 1 so that logarithms stay finite.
EPSILON = 1e-12


@dataclass(frozen=True)
class ItemParameters:
    """Parameters of ``n_items`` items, each an array of shape (n_items,).

    a: discrimination (slope), b: difficulty (location), c: lower asymptote
    (pseudo-guessing, 0 for the 1PL/2PL), d: upper asymptote (None means 1, as in
    every model but the 4PL).
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("a", "b", "c"):
            object.__setattr__(self, name, np.atleast_1d(np.asarray(getattr(self, name), dtype=float)))
        if self.d is not None:
            object.__setattr__(self, "d", np.atleast_1d(np.asarray(self.d, dtype=float)))
        shapes = {self.a.shape, self.b.shape, self.c.shape} | ({self.d.shape} if self.d is not None else set())
        if len(shapes) != 1 or self.a.ndim != 1:
            raise ValueError(f"a, b, c (and d) must be 1-D arrays of one length, got shapes {shapes}")

    @property
    def n_items(self) -> int:
        return self.a.shape[0]

    @property
    def upper(self) -> np.ndarray | float:
        """The upper asymptote: d for the 4PL, else 1."""
        return 1.0 if self.d is None else self.d

    @property
    def upper_array(self) -> np.ndarray:
        """The upper asymptote as an (n_items,) array."""
        return np.ones(self.n_items) if self.d is None else self.d

    @property
    def intercept(self) -> np.ndarray:
        """The slope-intercept form's intercept -a b (mirt prints it as ``d``)."""
        return -self.a * self.b

    @classmethod
    def from_slope_intercept(cls, a, intercept, c=None, d=None) -> "ItemParameters":
        """Items from mirt's slope-intercept form a theta + intercept, i.e. b = -intercept / a."""
        a = np.asarray(a, dtype=float)
        c = np.zeros_like(a) if c is None else c
        return cls(a, -np.asarray(intercept, dtype=float) / a, c, d)

    def subset(self, index) -> "ItemParameters":
        """The items at ``index`` (integer positions or a boolean mask)."""
        return ItemParameters(self.a[index], self.b[index], self.c[index], None if self.d is None else self.d[index])


def _grid(theta) -> np.ndarray:
    return np.atleast_1d(np.asarray(theta, dtype=float))


def probability(theta: np.ndarray, items: ItemParameters) -> np.ndarray:
    """P(correct), shape (n_theta, n_items) for theta of shape (n_theta,).

    P = c + (d - c) / (1 + exp(-a (theta - b))); this is also each item's
    characteristic curve evaluated on the grid.
    """
    logistic = 1.0 / (1.0 + np.exp(-items.a * (_grid(theta)[:, None] - items.b)))
    return items.c + (items.upper - items.c) * logistic


def probability_derivative(theta: np.ndarray, items: ItemParameters) -> np.ndarray:
    """dP/dtheta, shape (n_theta, n_items): a (d - c) s (1 - s) with s the logistic part."""
    logistic = 1.0 / (1.0 + np.exp(-items.a * (_grid(theta)[:, None] - items.b)))
    return items.a * (items.upper - items.c) * logistic * (1.0 - logistic)


def item_information(theta: np.ndarray, items: ItemParameters) -> np.ndarray:
    """Fisher information of each item, shape (n_theta, n_items).

    I_j(theta) = P_j'(theta)^2 / (P_j (1 - P_j)); for the 3PL this is Birnbaum's
    a^2 (P - c)^2 (1 - P) / ((1 - c)^2 P).
    """
    p = np.clip(probability(theta, items), EPSILON, 1 - EPSILON)
    return probability_derivative(theta, items) ** 2 / (p * (1.0 - p))


def test_information(theta: np.ndarray, items: ItemParameters) -> np.ndarray:
    """Test information sum_j I_j(theta), shape (n_theta,)."""
    return item_information(theta, items).sum(axis=1)


def standard_error(theta: np.ndarray, items: ItemParameters) -> np.ndarray:
    """Conditional standard error of measurement 1 / sqrt(I(theta)), shape (n_theta,)."""
    return 1.0 / np.sqrt(test_information(theta, items))


def test_characteristic(theta: np.ndarray, items: ItemParameters) -> np.ndarray:
    """Expected number-correct score sum_j P_j(theta), shape (n_theta,)."""
    return probability(theta, items).sum(axis=1)


def log_likelihood(
    responses: np.ndarray, theta: np.ndarray, items: ItemParameters, *, chunk_size: int = 20_000
) -> np.ndarray:
    """Log-likelihood of each response vector at each theta, shape (n_examinees, n_theta).

    log L_i(theta) = sum_j [x_ij log P_j(theta) + (1 - x_ij) log(1 - P_j(theta))] over
    the items presented to i (responses -1 add nothing). Computed as two matrix
    products per chunk of ``chunk_size`` examinees, so memory stays
    O(chunk_size * n_theta) whatever the number of examinees.
    """
    data = as_response_data(responses, items.n_items)
    p = np.clip(probability(theta, items), EPSILON, 1 - EPSILON)
    log_p, log_q = np.log(p).T, np.log1p(-p).T
    return np.concatenate([block.node_log_likelihood(log_p, log_q) for block in data.blocks(chunk_size)])
