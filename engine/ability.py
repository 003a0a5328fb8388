"""Ability estimation for many examinees at once: EAP, MAP, ML, WLE, summed-score EAP.

Responses are dense integer arrays (n_examinees, n_items) with 1 correct, 0 wrong,
-1 (``MISSING``) not presented, or a ``SparseResponses``. Not-presented items add
nothing to the likelihood. ``subsets`` (boolean (n_subsets, n_items)) scores each
row's items separately (e.g. the total and the three field scores) in the same
pass; theta and se then have shape (n_examinees, n_subsets).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.models import EPSILON, ItemParameters, probability
from engine.responses import MISSING, as_response_data

__all__ = [
    "MISSING",
    "AbilityEstimate",
    "SummedScoreTable",
    "eap",
    "map_estimate",
    "ml_estimate",
    "wle_estimate",
    "normal_quadrature",
    "summed_score_likelihood",
    "sum_score_eap",
]


@dataclass(frozen=True)
class AbilityEstimate:
    """theta and its standard error; shape (n_examinees,) or (n_examinees, n_subsets)."""

    theta: np.ndarray
    se: np.ndarray


def normal_quadrature(n_points: int = 61, bound: float = 6.0, mean: float = 0.0, sd: float = 1.0):
    """Equally spaced nodes on mean +- bound*sd and normalised normal weights, each (n_points,).

    mirt's default for one dimension is 61 nodes on [-6, 6].
    """
    nodes = np.linspace(mean - bound * sd, mean + bound * sd, n_points)
    weights = np.exp(-0.5 * ((nodes - mean) / sd) ** 2)
    return nodes, weights / weights.sum()


def _subset_masks(subsets, n_items: int) -> tuple[np.ndarray, bool]:
    if subsets is None:
        return np.ones((1, n_items), dtype=bool), True
    masks = np.atleast_2d(np.asarray(subsets, dtype=bool))
    if masks.shape[1] != n_items:
        raise ValueError(f"subsets must have shape (n_subsets, {n_items}), got {masks.shape}")
    return masks, False


def _shape(estimate: AbilityEstimate, single: bool) -> AbilityEstimate:
    return AbilityEstimate(estimate.theta[:, 0], estimate.se[:, 0]) if single else estimate


def eap(
    responses,
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

    theta_hat = sum_q x_q L(x_q) w_q / sum_q L(x_q) w_q, se = the posterior SD,
    with L the likelihood of the response pattern at node x_q and w_q the prior
    weight (``n_points`` nodes on prior_mean +- bound * prior_sd).

    responses: (n_examinees, n_items) or SparseResponses; subsets: optional
    boolean (n_subsets, n_items). Each chunk of ``chunk_size`` examinees costs one
    (chunk, n_items) x (n_items, n_subsets * n_points) matrix product.
    """
    data = as_response_data(responses, items.n_items)
    masks, single = _subset_masks(subsets, items.n_items)
    nodes, weights = normal_quadrature(n_points, bound, prior_mean, prior_sd)
    p = np.clip(probability(nodes, items), EPSILON, 1 - EPSILON)
    n_subsets = masks.shape[0]
    # (n_items, n_subsets * n_points): each subset's log-probabilities side by side,
    # so one matrix product gives every subset's log-likelihood at every node.
    log_p = (masks[:, :, None] * np.log(p).T[None]).transpose(1, 0, 2).reshape(items.n_items, -1)
    log_q = (masks[:, :, None] * np.log1p(-p).T[None]).transpose(1, 0, 2).reshape(items.n_items, -1)
    log_prior = np.log(weights)
    centred = (nodes - prior_mean).astype(np.float32)

    theta = np.empty((data.n_examinees, n_subsets))
    se = np.empty((data.n_examinees, n_subsets))
    start = 0
    # float32 products: the posterior mean moves by ~1e-6, far below any SE.
    for block in data.blocks(chunk_size, np.float32):
        loglik = block.node_log_likelihood(log_p, log_q).reshape(block.n, n_subsets, n_points)
        loglik += log_prior.astype(np.float32)
        loglik -= loglik.max(axis=2, keepdims=True)
        posterior = np.exp(loglik, out=loglik)
        # Moments about the prior mean keep the variance free of cancellation.
        total = posterior.sum(axis=2, dtype=np.float64)
        mean = (posterior @ centred).astype(np.float64) / total
        second = (posterior @ centred**2).astype(np.float64) / total
        theta[start : start + block.n] = prior_mean + mean
        se[start : start + block.n] = np.sqrt(np.maximum(second - mean**2, 0.0))
        start += block.n
    return _shape(AbilityEstimate(theta, se), single)


def _mode_estimates(responses, items, subsets, kind, prior_mean, prior_sd, bound, tol, max_iterations, chunk_size):
    """Root of an estimating equation f(theta) = 0 for each examinee and subset.

    f is the score of the log-likelihood (ML), of the log-posterior (MAP), or the
    score plus Warm's correction J / (2 I) (WLE). The root is sought inside
    [-bound, bound] by Fisher-scoring steps safeguarded by bisection of a
    bracket, so every step is an array operation over all unfinished examinees.
    When f keeps one sign on the whole interval (ML for all-correct or
    all-wrong patterns, where the likelihood is monotone) the estimate is the
    bound on that side.
    """
    data = as_response_data(responses, items.n_items)
    masks, single = _subset_masks(subsets, items.n_items)
    n_subsets = masks.shape[0]
    upper = np.broadcast_to(items.upper, (items.n_items,))
    theta_out = np.empty((data.n_examinees, n_subsets))
    se_out = np.empty((data.n_examinees, n_subsets))
    precision = 1.0 / prior_sd**2
    a_all, b_all, c_all = items.a, items.b, items.c

    def row_sum(cells):
        # A sequential sum over each row's own items, in their column order: a row's
        # estimate is then the same to the last digit whatever else is in the batch (a
        # pairwise sum over all the batch's columns would round differently).
        return np.cumsum(cells, axis=1)[:, -1] if cells.shape[1] else np.zeros(cells.shape[0])

    def equation(theta, index, correct, presented):
        a, b, c, u = a_all[index], b_all[index], c_all[index], upper[index]
        s = 1.0 / (1.0 + np.exp(-a * (theta[:, None] - b)))
        p = np.clip(c + (u - c) * s, EPSILON, 1 - EPSILON)
        dp = a * (u - c) * s * (1.0 - s)
        pq = p * (1.0 - p)
        info = row_sum(presented * dp**2 / pq)
        f = row_sum(presented * (correct - p) * dp / pq)
        if kind == "map":
            f -= (theta - prior_mean) * precision
            info = info + precision
        elif kind == "wle":
            d2p = dp * a * (1.0 - 2.0 * s)
            f += row_sum(presented * dp * d2p / pq) / (2.0 * np.maximum(info, 1e-300))
        return f, info

    start = 0
    for block in data.blocks(chunk_size):
        # One row per (examinee, subset) pair, holding that pair's presented items only
        # (in column order, padded at the end with cells that count for nothing).
        examinee, item, answer = block.triplets()
        n_rows = block.n * n_subsets
        pair_rows, pair_items, pair_answers = [], [], []
        for k in range(n_subsets):  # a handful of subsets (the total and the fields)
            keep = masks[k][item]
            pair_rows.append(examinee[keep] * n_subsets + k)
            pair_items.append(item[keep])
            pair_answers.append(answer[keep])
        row_of = np.concatenate(pair_rows)
        item_of = np.concatenate(pair_items)
        answer_of = np.concatenate(pair_answers).astype(float)
        order = np.lexsort((item_of, row_of))
        row_of, item_of, answer_of = row_of[order], item_of[order], answer_of[order]
        counts = np.bincount(row_of, minlength=n_rows)
        width = int(counts.max()) if counts.size else 0
        position = np.arange(row_of.size) - np.repeat(np.cumsum(counts) - counts, counts)
        index = np.zeros((n_rows, width), dtype=np.int64)
        correct = np.zeros((n_rows, width))
        presented = np.zeros((n_rows, width))
        index[row_of, position] = item_of
        correct[row_of, position] = answer_of
        presented[row_of, position] = 1.0
        lo = np.full(n_rows, -bound)
        hi = np.full(n_rows, bound)
        f_lo, _ = equation(lo, index, correct, presented)
        f_hi, _ = equation(hi, index, correct, presented)
        theta = np.where(f_lo <= 0, -bound, np.where(f_hi >= 0, bound, 0.0))
        active = np.flatnonzero((f_lo > 0) & (f_hi < 0))
        for _ in range(max_iterations):
            if active.size == 0:
                break
            t = theta[active]
            f, info = equation(t, index[active], correct[active], presented[active])
            lo[active] = np.where(f > 0, t, lo[active])
            hi[active] = np.where(f > 0, hi[active], t)
            step = f / np.maximum(info, 1e-300)
            proposal = t + step
            outside = (proposal <= lo[active]) | (proposal >= hi[active])
            proposal = np.where(outside, 0.5 * (lo[active] + hi[active]), proposal)
            theta[active] = proposal
            done = (np.abs(proposal - t) < tol) | (hi[active] - lo[active] < tol)
            active = active[~done]
        _, info = equation(theta, index, correct, presented)
        with np.errstate(divide="ignore"):  # a row with no items: se set below
            se = 1.0 / np.sqrt(info)
        empty = counts == 0
        if kind == "map":
            theta[empty], se[empty] = prior_mean, prior_sd
        else:
            theta[empty], se[empty] = np.nan, np.nan
        theta_out[start : start + block.n] = theta.reshape(block.n, n_subsets)
        se_out[start : start + block.n] = se.reshape(block.n, n_subsets)
        start += block.n
    return _shape(AbilityEstimate(theta_out, se_out), single)


def map_estimate(responses, items: ItemParameters, *, subsets=None, prior_mean: float = 0.0,
                 prior_sd: float = 1.0, bound: float = 6.0, tol: float = 1e-8,
                 max_iterations: int = 100, chunk_size: int = 20_000) -> AbilityEstimate:
    """Maximum a posteriori theta under a normal(prior_mean, prior_sd) prior.

    Solves sum_j (x_j - P_j) P_j' / (P_j (1 - P_j)) - (theta - mean) / sd^2 = 0;
    se = 1 / sqrt(I(theta) + 1 / sd^2) with I the test information.
    """
    return _mode_estimates(responses, items, subsets, "map", prior_mean, prior_sd, bound, tol, max_iterations, chunk_size)


def ml_estimate(responses, items: ItemParameters, *, subsets=None, bound: float = 6.0, tol: float = 1e-8,
                max_iterations: int = 100, chunk_size: int = 20_000) -> AbilityEstimate:
    """Maximum likelihood theta, se = 1 / sqrt(I(theta)).

    The estimate is the maximiser over [-bound, bound]: an all-correct pattern
    (and, for the 1PL/2PL, an all-wrong one) has no finite maximum, so it gets
    +bound (-bound) and the SE at that point. A row with no items presented gets
    NaN.
    """
    return _mode_estimates(responses, items, subsets, "ml", 0.0, 1.0, bound, tol, max_iterations, chunk_size)


def wle_estimate(responses, items: ItemParameters, *, subsets=None, bound: float = 6.0, tol: float = 1e-8,
                 max_iterations: int = 100, chunk_size: int = 20_000) -> AbilityEstimate:
    """Warm's (1989) weighted likelihood estimate, se = 1 / sqrt(I(theta)).

    Solves score(theta) + J(theta) / (2 I(theta)) = 0 with
    J = sum_j P_j' P_j'' / (P_j (1 - P_j)); finite for extreme patterns under the
    1PL/2PL, otherwise bounded to [-bound, bound] like ``ml_estimate``.
    """
    return _mode_estimates(responses, items, subsets, "wle", 0.0, 1.0, bound, tol, max_iterations, chunk_size)


def summed_score_likelihood(theta: np.ndarray, items: ItemParameters) -> np.ndarray:
    """P(number correct = s | theta) by the Lord-Wingersky recursion, shape (n_items + 1, n_theta)."""
    p = probability(theta, items)
    dist = np.zeros((items.n_items + 1, p.shape[0]))
    dist[0] = 1.0
    # The recursion adds one item at a time, each step an array operation over all
    # scores and nodes; it is sequential by nature.
    for count, p_item in enumerate(p.T, start=1):
        dist[1 : count + 1] = dist[1 : count + 1] * (1.0 - p_item) + dist[:count] * p_item
        dist[0] *= 1.0 - p_item
    return dist


@dataclass(frozen=True)
class SummedScoreTable:
    """Summed-score EAP conversion table; each array has shape (n_items + 1,).

    score: 0..n_items; theta: E(theta | score); se: SD(theta | score);
    probability: the model's marginal probability of each score.
    """

    score: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    probability: np.ndarray


def sum_score_eap(items: ItemParameters, *, prior_mean: float = 0.0, prior_sd: float = 1.0,
                  n_points: int = 61, bound: float = 6.0) -> SummedScoreTable:
    """EAP[theta | number correct] for every summed score (Thissen & Wainer 2001).

    With L_s(theta) from the Lord-Wingersky recursion and prior weights w_q:
    theta_s = sum_q x_q L_s(x_q) w_q / sum_q L_s(x_q) w_q.
    """
    nodes, weights = normal_quadrature(n_points, bound, prior_mean, prior_sd)
    joint = summed_score_likelihood(nodes, items) * weights
    marginal = joint.sum(axis=1)
    mean = joint @ nodes / marginal
    sd = np.sqrt(np.maximum(joint @ nodes**2 / marginal - mean**2, 0.0))
    return SummedScoreTable(np.arange(items.n_items + 1), mean, sd, marginal)


def marginal_reliability(items: ItemParameters, *, prior_mean: float = 0.0, prior_sd: float = 1.0,
                         n_points: int = 1000, bound: float = 6.0) -> float:
    """Marginal reliability of the test (Thissen & Wainer 2001; mirt's ``marginal_rxx``).

    rho = integral of s^2 I(theta) / (s^2 I(theta) + 1) over the N(prior_mean, s^2) density
    (s = prior_sd), i.e. the reliability at theta, s^2 / (s^2 + 1 / I(theta)), averaged
    over the population; with s = 1 it is mirt's integrand I / (I + 1). Summed over
    ``n_points`` equally spaced nodes on prior_mean +- bound * s.
    """
    nodes, weights = normal_quadrature(n_points, bound, prior_mean, prior_sd)
    from engine.models import test_information  # models imports nothing from here

    info = test_information(nodes, items) * prior_sd**2
    return float(weights @ (info / (info + 1.0)))


def empirical_reliability(estimate: AbilityEstimate) -> np.ndarray | float:
    """var(theta_hat) / (var(theta_hat) + mean(se^2)) over examinees (mirt's ``empirical_rxx``).

    For EAP estimates with their posterior SDs; per subset for (n, n_subsets) estimates.
    Rows with a NaN estimate are left out.
    """
    theta, se = np.asarray(estimate.theta, dtype=float), np.asarray(estimate.se, dtype=float)
    variance = np.nanvar(theta, axis=0, ddof=1)
    error = np.nanmean(np.where(np.isnan(theta), np.nan, se**2), axis=0)
    out = variance / (variance + error)
    return float(out) if np.ndim(out) == 0 else out
