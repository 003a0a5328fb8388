"""Linking two calibrations onto one scale through their common items.

A calibration on scale X is put on scale Y by theta_Y = A theta_X + B, so that
a_Y = a_X / A, b_Y = A b_X + B, c_Y = c_X (Kolen & Brennan, 2014, ch. 6).

mean_mean     A = mean(a_X) / mean(a_Y),          B = mean(b_Y) - A mean(b_X)
mean_sigma    A = sd(b_Y) / sd(b_X),              B = mean(b_Y) - A mean(b_X)
haebara       minimises sum_q w_q sum_j [P_j(x_q; Y) - P_j(x_q; X*)]^2
stocking_lord minimises sum_q w_q [sum_j P_j(x_q; Y) - sum_j P_j(x_q; X*)]^2
where X* is X transformed by (A, B), over a normal grid on the Y scale; the
characteristic-curve methods start from mean/sigma and use BFGS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ability import normal_quadrature
from engine.models import ItemParameters, probability

METHODS = ("mean_mean", "mean_sigma", "haebara", "stocking_lord")


@dataclass(frozen=True)
class LinkingConstants:
    """theta_Y = A theta_X + B."""

    A: float
    B: float
    method: str = ""

    def transform_items(self, items: ItemParameters) -> ItemParameters:
        """Items of scale X expressed on scale Y."""
        return ItemParameters(items.a / self.A, self.A * items.b + self.B, items.c, items.d)

    def transform_theta(self, theta: np.ndarray) -> np.ndarray:
        return self.A * np.asarray(theta, dtype=float) + self.B

    def transform_se(self, se: np.ndarray) -> np.ndarray:
        """Standard errors of theta (or of b) on scale Y."""
        return self.A * np.asarray(se, dtype=float)


def link(from_items: ItemParameters, to_items: ItemParameters, method: str = "stocking_lord", *,
         n_points: int = 41, bound: float = 4.0) -> LinkingConstants:
    """Constants (A, B) that put ``from_items`` (scale X) on the scale of ``to_items`` (Y).

    from_items, to_items: the common items' parameters from the two calibrations,
    in the same order. The characteristic-curve criteria are summed over
    ``n_points`` nodes on [-bound, bound] weighted by N(0, 1) on scale Y.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if from_items.n_items != to_items.n_items:
        raise ValueError("both calibrations must give the same common items")
    if method == "mean_mean":
        A = float(np.mean(from_items.a) / np.mean(to_items.a))
        return LinkingConstants(A, float(np.mean(to_items.b) - A * np.mean(from_items.b)), method)
    spread = np.std(from_items.b)
    if spread > 0:
        A = float(np.std(to_items.b) / spread)
    elif method == "mean_sigma":
        raise ValueError("mean/sigma needs common items of different difficulty")
    else:
        A = 1.0
    B = float(np.mean(to_items.b) - A * np.mean(from_items.b))
    if method == "mean_sigma":
        return LinkingConstants(A, B, method)

    nodes, weights = normal_quadrature(n_points, bound)
    target = probability(nodes, to_items)

    def loss(x):
        moved = LinkingConstants(x[0], x[1]).transform_items(from_items)
        diff = target - probability(nodes, moved)
        if method == "haebara":
            return float(weights @ (diff**2).sum(axis=1))
        return float(weights @ diff.sum(axis=1) ** 2)

    from scipy import optimize  # imported late, slow to load

    result = optimize.minimize(loss, np.array([A, B]), method="BFGS", options={"gtol": 1e-10})
    return LinkingConstants(float(result.x[0]), float(result.x[1]), method)
