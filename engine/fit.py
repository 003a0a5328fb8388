"""Item fit: Orlando & Thissen's (2000, 2003) S-X2 on summed-score groups.

For item j and summed score k (1 .. n_items - 1) the model's proportion correct is

    E_jk = sum_q P_j(x_q) S^(-j)_{k-1}(x_q) w_q / sum_q S_k(x_q) w_q

with S_k the Lord-Wingersky probability of score k and S^(-j) the same without
item j. With N_k examinees at score k and O_jk their observed proportion correct,

    S-X2_j = sum_k N_k (O_jk - E_jk)^2 / (E_jk (1 - E_jk)),

after score groups with an expected cell (correct or wrong) below ``min_expected``
are merged with a neighbour (mirt's rule, ``mincell = 1``); df = number of groups
minus the item's estimated parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ability import normal_quadrature, summed_score_likelihood
from engine.models import EPSILON, ItemParameters, probability
from engine.responses import SparseResponses, check_responses, group_sums

MODEL_PARAMETERS = {"rasch": 1, "2pl": 2, "3pl": 3, "4pl": 4}


@dataclass(frozen=True)
class ItemFit:
    """S-X2 per item, each (n_items,): statistic, df, p_value (NaN where df < 1)."""

    statistic: np.ndarray
    df: np.ndarray
    p_value: np.ndarray

    def misfit(self, alpha: float = 0.05) -> np.ndarray:
        """Boolean (n_items,): p < alpha."""
        return np.nan_to_num(self.p_value, nan=1.0) < alpha


def _leave_one_out_distributions(p: np.ndarray) -> np.ndarray:
    """P(score = s | x_q) without item j for every j: (n_items, n_items, n_points).

    The Lord-Wingersky recursion runs for all n_items leave-one-out tests at once
    (row j treats item j as never answered correctly or wrongly, i.e. skips it).
    """
    n_points, n_items = p.shape
    dist = np.zeros((n_items, n_items, n_points))  # scores 0 .. n_items - 1
    dist[:, 0] = 1.0
    # Sequential over items by nature; each step updates every test and node at once.
    for position, p_item in enumerate(p.T):
        include = np.ones((n_items, 1))
        include[position] = 0.0  # in test `position` this item is left out
        right = p_item[None, :] * include
        wrong = 1.0 - right
        shifted = np.zeros_like(dist)
        shifted[:, 1:] = dist[:, :-1] * right[:, None, :]
        dist = dist * np.where(include[:, :, None] > 0, wrong[:, None, :], 1.0) + shifted
    return dist


def sx2(responses, items: ItemParameters, *, n_estimated: int | np.ndarray = 2, n_latent: int = 0,
        min_expected: float = 1.0, n_points: int = 61, bound: float = 6.0, latent_mean: float = 0.0,
        latent_sd: float = 1.0, imputations: int = 0, rng: np.random.Generator | int | None = None,
        columns: np.ndarray | None = None) -> ItemFit:
    """Orlando-Thissen S-X2 for every item.

    responses: (n_examinees, n_items) of 1/0/-1 or SparseResponses. With
    ``imputations`` = 0 only complete rows count, since summed scores need every
    item. With ``imputations`` = M > 0 (for incomplete designs, where no examinee
    sees every item) each missing cell is drawn M times from the model at a
    plausible value of the examinee's theta (see :func:`impute_responses`) and the
    statistic and df are the means over the M completed data sets, p from them
    (the plausible-value approach of mirt's ``itemfit(impute = M)``).
    latent_mean, latent_sd: the ability distribution on the items' scale (e.g. a
    fixed-anchor calibration's). n_estimated: parameters estimated per item
    (1 Rasch, 2 2PL, 3 3PL, 0 fixed), subtracted from the df; n_latent: parameters
    of the latent distribution estimated (the Rasch model's common slope, which
    stands for mirt's latent variance; the latent mean and SD of a fixed-anchor
    calibration), subtracted from every item's df as mirt does
    (:func:`degrees_of_freedom` gives both from a ``Calibration``). Where no df is
    left the statistic is NaN. columns: the items
    whose summed score is the test (default: all); the result has one entry per
    column. Imputation draws plausible values from every response given, so a
    large bank can be checked on a smaller test: the items of interest and the
    anchors seen most often (the leave-one-out tables cost n_items^3 nodes).
    """
    columns = np.arange(items.n_items) if columns is None else np.asarray(columns)
    test_items = items.subset(columns)
    nodes, weights = normal_quadrature(n_points, bound, latent_mean, latent_sd)
    expected = _expected_proportions(test_items, nodes, weights)
    n_estimated = np.broadcast_to(np.asarray(n_estimated), (items.n_items,))[columns]
    if imputations <= 0:
        complete = check_responses(responses.to_dense() if isinstance(responses, SparseResponses) else responses)
        complete = complete[:, columns]
        return _sx2_of(complete[(complete >= 0).all(axis=1)], expected, n_estimated, min_expected, n_latent)
    rng = np.random.default_rng(rng)
    fits = [_sx2_of(impute_responses(responses, items, rng, n_points=n_points, bound=bound,
                                     latent_mean=latent_mean, latent_sd=latent_sd)[:, columns],
                    expected, n_estimated, min_expected, n_latent) for _ in range(imputations)]
    statistic = np.mean([f.statistic for f in fits], axis=0)
    df = np.mean([f.df for f in fits], axis=0)
    return ItemFit(statistic, df, _p_values(statistic, df))


def degrees_of_freedom(calibration) -> tuple[np.ndarray, int]:
    """(n_estimated (n_items,), n_latent) of a ``Calibration`` for :func:`sx2`.

    Free items count their model's parameters less those held at a bound, fixed
    items 0; n_latent counts the Rasch model's common slope (mirt's latent
    variance) and an estimated latent mean and SD.
    """
    per_item = MODEL_PARAMETERS[calibration.model]
    n_estimated = np.where(calibration.fixed, 0, per_item)
    if calibration.at_bound is not None:
        n_estimated = n_estimated - np.where(calibration.fixed, 0, calibration.at_bound.sum(axis=1))
        if calibration.model == "rasch":
            n_estimated = n_estimated + np.where(calibration.fixed, 0, calibration.at_bound[:, 0])
    n_latent = (1 if calibration.model == "rasch" else 0) + (2 if calibration.latent_estimated else 0)
    return np.maximum(n_estimated, 0), n_latent


def impute_responses(responses, items: ItemParameters, rng: np.random.Generator, *, n_points: int = 61,
                     bound: float = 6.0, latent_mean: float = 0.0, latent_sd: float = 1.0) -> np.ndarray:
    """A complete (n_examinees, n_items) int8 matrix: observed cells kept, missing ones drawn.

    Each examinee's theta is drawn from their posterior on the quadrature grid
    (given every response they gave), jittered within its grid cell, and each
    missing response is 1 with probability P_j(theta).
    """
    dense = check_responses(responses.to_dense() if isinstance(responses, SparseResponses) else responses)
    nodes, weights = normal_quadrature(n_points, bound, latent_mean, latent_sd)
    p = np.clip(probability(nodes, items), EPSILON, 1 - EPSILON)
    correct, presented = (dense == 1).astype(np.float64), (dense >= 0).astype(np.float64)
    loglik = correct @ np.log(p).T + (presented - correct) @ np.log1p(-p).T + np.log(weights)
    posterior = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    cumulative = np.cumsum(posterior / posterior.sum(axis=1, keepdims=True), axis=1)
    node = (cumulative < rng.random((dense.shape[0], 1))).sum(axis=1).clip(0, n_points - 1)
    step = nodes[1] - nodes[0]
    theta = nodes[node] + rng.uniform(-step / 2, step / 2, dense.shape[0])
    drawn = (rng.random(dense.shape) < probability(theta, items)).astype(np.int8)
    return np.where(dense >= 0, dense, drawn)


def _expected_proportions(items: ItemParameters, nodes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """E[j, k - 1]: the model's proportion correct on item j at summed score k = 1 .. n_items - 1."""
    n_items = items.n_items
    p = probability(nodes, items)
    total = summed_score_likelihood(nodes, items) @ weights  # (n_items + 1,)
    without = _leave_one_out_distributions(p)  # (item, score, node)
    joint = np.einsum("qj,jsq,q->js", p, without[:, : n_items - 1], weights)
    return joint / total[1:n_items]


def _sx2_of(responses: np.ndarray, expected: np.ndarray, n_estimated: np.ndarray, min_expected: float,
            n_latent: int = 0) -> ItemFit:
    n_items = responses.shape[1]
    scores = responses.sum(axis=1, dtype=np.int64)
    group_size = np.bincount(scores, minlength=n_items + 1)[1:n_items].astype(np.float64)  # N_k
    observed_correct = group_sums(scores, responses, n_items + 1)[1:n_items].T  # (item, group)
    statistic = np.full(n_items, np.nan)
    df = np.zeros(n_items)
    # Merging sparse groups is a short sequential rule per item.
    for j, (exp_p, obs_c) in enumerate(zip(expected, observed_correct)):
        exp_cells = np.column_stack([group_size * (1 - exp_p), group_size * exp_p])
        obs_cells = np.column_stack([group_size - obs_c, obs_c])
        exp_cells, obs_cells = _collapse(exp_cells, obs_cells, min_expected)
        statistic[j] = np.sum((obs_cells - exp_cells) ** 2 / exp_cells)
        df[j] = exp_cells.shape[0] - n_estimated[j] - n_latent
    # As mirt: no degrees of freedom left, no statistic.
    statistic[df <= 0] = np.nan
    df = np.maximum(df, 0)
    return ItemFit(statistic, df, _p_values(statistic, df))


def _p_values(statistic: np.ndarray, df: np.ndarray) -> np.ndarray:
    from scipy.special import chdtrc  # chi-square survival function; imported late, it is slow to load

    with np.errstate(invalid="ignore"):
        return np.where(df > 0, chdtrc(np.maximum(df, 1), statistic), np.nan)


def _collapse(expected: np.ndarray, observed: np.ndarray, min_expected: float):
    """Merge score groups (rows of (n_groups, 2) tables) by mirt's rule (``collapseCells``).

    1. Groups with no examinee are dropped.
    2. Going up the scores, a group holding a single examinee is merged into the next
       one; if the highest group then holds a single examinee, into the one before.
    3. While some expected cell is below ``min_expected``, the lowest such group is
       merged into its neighbour: the first into the second, the last into the one
       before, a middle one into the neighbour with fewer observations (the lower
       one on a tie).
    """
    keep = observed.sum(axis=1) > 0
    expected, observed = expected[keep].copy(), observed[keep].copy()
    if expected.shape[0] > 1:
        single = np.zeros(expected.shape[0], dtype=bool)
        for row in range(expected.shape[0] - 1):  # sequential: a merge feeds the next group
            if observed[row].sum() == 1:
                single[row] = True
                expected[row + 1] += expected[row]
                observed[row + 1] += observed[row]
        expected, observed = expected[~single], observed[~single]
        if expected.shape[0] > 1 and observed[-1].sum() == 1:
            expected[-2] += expected[-1]
            observed[-2] += observed[-1]
            expected, observed = expected[:-1], observed[:-1]
    while expected.shape[0] > 1:
        small = np.flatnonzero(((expected < min_expected) & (expected != 0)).any(axis=1))
        if small.size == 0:
            break
        row = small[0]
        if row == 0:
            into = 1
        elif row == expected.shape[0] - 1:
            into = row - 1
        else:
            into = row - 1 if observed[row - 1].sum() <= observed[row + 1].sum() else row + 1
        expected[into] += expected[row]
        observed[into] += observed[row]
        expected = np.delete(expected, row, axis=0)
        observed = np.delete(observed, row, axis=0)
    return expected, observed
