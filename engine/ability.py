"""Ability estimation for many examinees at once."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.models import ItemParameters, probability

MISSING = -1


@dataclass(frozen=True)
class AbilityEstimate:
    """theta and its standard error; shape (n_examinees,) or (n_examinees, n_subsets)."""

    theta: np.ndarray
    se: np.ndarray


def normal_quadrature(n_points: int = 61, bound: float = 6.0, mean: float = 0.0, sd: float = 1.0):
    """Equally spaced nodes on mean +- bound*sd and normalised normal weights, each (n_points,)."""
    nodes = np.linspace(mean - bound * sd, mean + bound * sd, n_points)
    weights = np.exp(-0.5 * ((nodes - mean) / sd) ** 2)
    return nodes, weights / weights.sum()


def eap(
    responses: np.ndarray,
    items: ItemParameters,
    *,
    subsets: np.ndarray | None = None,
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
    n_points: int = 61,
    bound: float = 6.0,
    chunk_size: int = 20_000,
) -> AbilityEstimate:
    """Expected a posteriori theta and posterior SD under a normal prior.

    responses: (n_examinees, n_items) integers, 1 correct, 0 wrong, -1 (MISSING)
        not presented; missing items add nothing to the likelihood.
    subsets: optional boolean (n_subsets, n_items); each row scores only its items
        (e.g. the whole test and each field), all from one pass over the data.

    theta_hat = sum_q x_q L(x_q) w_q / sum_q L(x_q) w_q, with L the likelihood of
    the response pattern at node x_q and w_q the prior weight.
    """
    responses = np.asarray(responses)
    if responses.ndim != 2 or responses.shape[1] != items.n_items:
        raise ValueError(f"responses must have shape (n_examinees, {items.n_items}), got {responses.shape}")
    single = subsets is None
    masks = np.ones((1, items.n_items), dtype=bool) if single else np.asarray(subsets, dtype=bool)
    nodes, weights = normal_quadrature(n_points, bound, prior_mean, prior_sd)
    p = np.clip(probability(nodes, items), 1e-12, 1 - 1e-12)
    n_subsets = masks.shape[0]
    # (n_items, n_subsets * n_points): each subset's log-probabilities side by side,
    # so one matrix product gives every subset's log-likelihood at every node.
    log_right = (masks[:, :, None] * np.log(p).T[None, :, :]).transpose(1, 0, 2).reshape(items.n_items, -1)
    log_wrong = (masks[:, :, None] * np.log1p(-p).T[None, :, :]).transpose(1, 0, 2).reshape(items.n_items, -1)
    log_prior = np.log(weights)

    n = responses.shape[0]
    theta = np.empty((n, n_subsets))
    se = np.empty((n, n_subsets))
    for start in range(0, n, chunk_size):
        block = responses[start : start + chunk_size]
        loglik = (block == 1).astype(float) @ log_right + (block == 0).astype(float) @ log_wrong
        loglik = loglik.reshape(block.shape[0], n_subsets, n_points) + log_prior
        loglik -= loglik.max(axis=2, keepdims=True)
        posterior = np.exp(loglik)
        posterior /= posterior.sum(axis=2, keepdims=True)
        mean = posterior @ nodes
        theta[start : start + chunk_size] = mean
        se[start : start + chunk_size] = np.sqrt(np.maximum(posterior @ nodes**2 - mean**2, 0.0))
    if single:
        return AbilityEstimate(theta[:, 0], se[:, 0])
    return AbilityEstimate(theta, se)
