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
from engine.models import ItemParameters, probability
from engine.responses import check_responses, group_sums

MODEL_PARAMETERS = {"rasch": 1, "2pl": 2, "3pl": 3}


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


def sx2(responses: np.ndarray, items: ItemParameters, *, n_estimated: int | np.ndarray = 2,
        min_expected: float = 1.0, n_points: int = 61, bound: float = 6.0) -> ItemFit:
    """Orlando-Thissen S-X2 for every item of a complete response matrix.

    responses: (n_examinees, n_items) of 0/1; rows with an item not presented are
    left out, since summed scores need every item. n_estimated: parameters
    estimated per item (1 Rasch, 2 2PL, 3 3PL), subtracted from the df.
    """
    responses = check_responses(responses)
    responses = responses[(responses >= 0).all(axis=1)]
    n, n_items = responses.shape
    nodes, weights = normal_quadrature(n_points, bound)
    p = probability(nodes, items)

    total = summed_score_likelihood(nodes, items) @ weights  # (n_items + 1,)
    without = _leave_one_out_distributions(p)  # (item, score, node)
    # expected[j, k - 1] for k = 1 .. n_items - 1
    joint = np.einsum("qj,jsq,q->js", p, without[:, : n_items - 1], weights)
    expected = joint / total[1:n_items]

    scores = responses.sum(axis=1, dtype=np.int64)
    group_size = np.bincount(scores, minlength=n_items + 1)[1:n_items].astype(np.float64)  # N_k
    observed_correct = group_sums(scores, responses, n_items + 1)[1:n_items].T  # (item, group)

    n_estimated = np.broadcast_to(np.asarray(n_estimated), (n_items,))
    statistic = np.full(n_items, np.nan)
    df = np.zeros(n_items)
    # Merging sparse groups is a short sequential rule per item.
    for j, (exp_p, obs_c) in enumerate(zip(expected, observed_correct)):
        exp_cells = np.column_stack([group_size * (1 - exp_p), group_size * exp_p])
        obs_cells = np.column_stack([group_size - obs_c, obs_c])
        keep = group_size > 0
        exp_cells, obs_cells = _collapse(exp_cells[keep], obs_cells[keep], min_expected)
        statistic[j] = np.sum((obs_cells - exp_cells) ** 2 / exp_cells)
        df[j] = exp_cells.shape[0] - n_estimated[j]
    from scipy.special import chdtrc  # chi-square survival function; imported late, it is slow to load

    with np.errstate(invalid="ignore"):
        p_value = np.where(df > 0, chdtrc(np.maximum(df, 1), statistic), np.nan)
    return ItemFit(statistic, df, p_value)


def _collapse(expected: np.ndarray, observed: np.ndarray, min_expected: float):
    """Merge score groups (rows) until every expected cell reaches min_expected.

    The lowest offending group is merged into its neighbour: the first into the
    second, the last into the one before, a middle one into the neighbour with
    fewer observations.
    """
    expected, observed = expected.copy(), observed.copy()
    while expected.shape[0] > 1:
        small = np.flatnonzero((expected < min_expected).any(axis=1))
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
