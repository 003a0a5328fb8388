"""Simulated items and responses with known truth, for tests, benchmarks and design studies."""
from __future__ import annotations

import numpy as np

from engine.models import ItemParameters, probability
from engine.responses import MISSING, SparseResponses


def simulate_items(n_items: int, model: str = "3pl", rng: np.random.Generator | int | None = None, *,
                   log_a_sd: float = 0.25, c_range: tuple[float, float] = (0.1, 0.25),
                   upper_range: tuple[float, float] = (0.9, 1.0)) -> ItemParameters:
    """Item parameters drawn as in the project's design studies.

    a ~ lognormal(0, log_a_sd) (a = 1 for 'rasch'), b ~ N(0, 1),
    c ~ U(c_range) for '3pl' and '4pl' (0 otherwise), the upper asymptote
    d ~ U(upper_range) for '4pl'.
    """
    rng = np.random.default_rng(rng)
    a = np.exp(rng.normal(0.0, log_a_sd, n_items)) if model != "rasch" else np.ones(n_items)
    b = rng.normal(0.0, 1.0, n_items)
    c = rng.uniform(*c_range, n_items) if model in ("3pl", "4pl") else np.zeros(n_items)
    upper = rng.uniform(*upper_range, n_items) if model == "4pl" else None
    return ItemParameters(a, b, c, upper)


def simulate_responses(theta: np.ndarray, items: ItemParameters, rng: np.random.Generator | int | None = None, *,
                       presented: np.ndarray | None = None, chunk_size: int = 50_000) -> np.ndarray:
    """Dense responses (n_examinees, n_items) int8: 1 with probability P_j(theta_i), else 0.

    presented: optional boolean (n_examinees, n_items); cells not presented are -1.
    """
    rng = np.random.default_rng(rng)
    theta = np.asarray(theta, dtype=float)
    out = np.empty((theta.shape[0], items.n_items), dtype=np.int8)
    for start in range(0, len(out), chunk_size):
        p = probability(theta[start : start + chunk_size], items)
        out[start : start + chunk_size] = rng.random(p.shape) < p
    if presented is not None:
        out[~np.asarray(presented, dtype=bool)] = MISSING
    return out


def simulate_sparse_design(theta: np.ndarray, items: ItemParameters, items_per_examinee: int,
                           rng: np.random.Generator | int | None = None) -> SparseResponses:
    """An incomplete design: each examinee answers ``items_per_examinee`` items drawn at
    random without replacement from the bank; generated directly in sparse form.
    """
    rng = np.random.default_rng(rng)
    theta = np.asarray(theta, dtype=float)
    n, k = theta.shape[0], items_per_examinee
    # k distinct items per examinee: the k smallest of n_items random keys would be
    # exact but O(n * n_items); drawing with rejection of duplicates is O(n * k).
    chosen = rng.integers(0, items.n_items, size=(n, k))
    while True:
        chosen.sort(axis=1)
        duplicate = np.zeros_like(chosen, dtype=bool)
        duplicate[:, 1:] = chosen[:, 1:] == chosen[:, :-1]
        if not duplicate.any():
            break
        chosen[duplicate] = rng.integers(0, items.n_items, size=int(duplicate.sum()))
    item = chosen.ravel()
    z = items.a[item] * (np.repeat(theta, k) - items.b[item])
    upper = 1.0 if items.d is None else items.d[item]
    p = items.c[item] + (upper - items.c[item]) / (1 + np.exp(-z))
    correct = (rng.random(item.shape[0]) < p).astype(np.int8)
    return SparseResponses(np.arange(n + 1, dtype=np.int64) * k, item, correct, items.n_items)
