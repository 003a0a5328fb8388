"""Subscores that borrow strength from the other fields: multidimensional EAP.

A test of F fields (strategy, management, technology) with simple structure: each
item measures one field's ability theta_f, and the abilities are jointly normal,
theta ~ N(mean, Sigma) with Sigma from the fields' SDs and correlations. Since every
item loads on one field, the likelihood factorises over fields,

    L_i(theta) = prod_f L_if(theta_f),

so the posterior on the product grid of F one-dimensional grids is the prior times an
outer product of per-field likelihoods, and its moments are F successive contractions
(n Q^F work, never an n x Q^F array). Each field's EAP then uses the items of the
other fields through the correlation: a candidate weak on one field but strong on the
others is pulled towards them, not only towards the population mean, which is what
makes field scores coherent with the total (Haberman's and Wainer's augmented
subscores are the linear, summed-score analogues).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.models import EPSILON, ItemParameters, probability
from engine.responses import as_response_data


@dataclass(frozen=True)
class MultidimensionalEstimate:
    """theta, se: (n_examinees, n_fields) posterior means and SDs; covariance:
    (n_examinees, n_fields, n_fields) the posterior covariance."""

    theta: np.ndarray
    se: np.ndarray
    covariance: np.ndarray


def multidimensional_eap(responses, items: ItemParameters, field: np.ndarray, correlation: np.ndarray, *,
                         mean: np.ndarray | None = None, sd: np.ndarray | None = None, n_points: int = 31,
                         bound: float = 5.0, chunk_size: int = 5_000) -> MultidimensionalEstimate:
    """EAP of every field's ability under a correlated normal prior (simple structure).

    responses: (n_examinees, n_items) 1/0/-1 or SparseResponses; items: each item's
    parameters on its own field's scale; field: (n_items,) integer field of each item,
    0 .. F-1; correlation: (F, F) of the abilities; mean, sd: (F,) (default 0 and 1).
    Grid: ``n_points`` nodes per field on mean_f +- bound * sd_f, prior weights the
    N(mean, Sigma) density on the product grid (normalised). Cost O(n n_points^F).
    With an identity correlation the result is each field's own EAP.
    """
    data = as_response_data(responses, items.n_items)
    field = np.asarray(field, dtype=np.int64)
    correlation = np.atleast_2d(np.asarray(correlation, dtype=float))
    n_fields = correlation.shape[0]
    if field.shape != (items.n_items,) or field.min() < 0 or field.max() >= n_fields:
        raise ValueError(f"field must give each of the {items.n_items} items a field in 0 .. {n_fields - 1}")
    mean = np.zeros(n_fields) if mean is None else np.asarray(mean, dtype=float)
    sd = np.ones(n_fields) if sd is None else np.asarray(sd, dtype=float)
    unit = np.linspace(-bound, bound, n_points)
    grids = mean[:, None] + sd[:, None] * unit[None, :]  # (F, Q)
    covariance = correlation * np.outer(sd, sd)
    precision = np.linalg.inv(covariance)
    # log prior on the product grid, (Q,) * F
    mesh = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1) - mean  # (Q, ..., Q, F)
    log_prior = -0.5 * np.einsum("...f,fg,...g->...", mesh, precision, mesh)
    prior = np.exp(log_prior - log_prior.max())
    prior /= prior.sum()

    # Per-field log-likelihood tables, (n_items, Q) on the item's own field grid.
    log_p = np.empty((items.n_items, n_points))
    log_q = np.empty((items.n_items, n_points))
    for f in range(n_fields):  # a handful of fields
        members = np.flatnonzero(field == f)
        p = np.clip(probability(grids[f], items.subset(members)), EPSILON, 1 - EPSILON)
        log_p[members], log_q[members] = np.log(p).T, np.log1p(-p).T
    masks = (field[None, :] == np.arange(n_fields)[:, None])  # (F, n_items)
    # Each field's items only, side by side: (n_items, F * Q).
    stacked_p = (masks[:, :, None] * log_p[None]).transpose(1, 0, 2).reshape(items.n_items, -1)
    stacked_q = (masks[:, :, None] * log_q[None]).transpose(1, 0, 2).reshape(items.n_items, -1)

    theta = np.empty((data.n_examinees, n_fields))
    cov_out = np.empty((data.n_examinees, n_fields, n_fields))
    start = 0
    for block in data.blocks(chunk_size):
        loglik = block.node_log_likelihood(stacked_p, stacked_q).reshape(block.n, n_fields, n_points)
        like = np.exp(loglik - loglik.max(axis=2, keepdims=True))  # (n, F, Q), scaled per field
        # Moments by contracting one field at a time: m[g] = sum prior * prod_f L_f * t_g.
        moments = np.empty((block.n, 1 + n_fields + n_fields * n_fields))
        weights_list = [np.ones_like(grids[f]) for f in range(n_fields)]
        first = [[grids[f] if g == f else weights_list[f] for f in range(n_fields)] for g in range(n_fields)]
        columns = [weights_list] + first
        for g in range(n_fields):
            for h in range(n_fields):
                columns.append([grids[f] ** ((g == f) + (h == f)) for f in range(n_fields)])
        for index, factors in enumerate(columns):
            moments[:, index] = _contract(prior, like, factors)
        total = moments[:, 0]
        m1 = moments[:, 1 : 1 + n_fields] / total[:, None]
        m2 = moments[:, 1 + n_fields :].reshape(block.n, n_fields, n_fields) / total[:, None, None]
        theta[start : start + block.n] = m1
        cov_out[start : start + block.n] = m2 - m1[:, :, None] * m1[:, None, :]
        start += block.n
    se = np.sqrt(np.maximum(np.diagonal(cov_out, axis1=1, axis2=2), 0.0))
    return MultidimensionalEstimate(theta, se, cov_out)


def _contract(prior: np.ndarray, like: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
    """sum over the product grid of prior * prod_f like[:, f, q_f] * factors[f][q_f], (n,).

    Contracts the last field first: (n, Q, ..., Q) shrinks by one axis per step.
    """
    n_fields = like.shape[1]
    current = np.broadcast_to(prior, (like.shape[0],) + prior.shape)
    for f in range(n_fields - 1, -1, -1):
        current = np.einsum("n...q,nq->n...", current, like[:, f] * factors[f])
    return current
