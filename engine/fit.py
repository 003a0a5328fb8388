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
from typing import cast

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


@dataclass(frozen=True)
class LimitedInformationFit:
    """M2 (Maydeu-Olivares & Joe, 2006) with its df, p-value, RMSEA (and its 90% interval)
    and SRMSR (root mean square of the residual item correlations)."""

    statistic: float
    df: int
    p_value: float
    rmsea: float
    rmsea_interval: tuple[float, float]
    srmsr: float


def m2(responses, calibration, *, n_points: int = 61, bound: float = 6.0) -> LimitedInformationFit:
    """Limited-information fit of a ``Calibration`` to complete dichotomous responses.

    With e the observed minus model first- and second-order margins (p_j and p_jk,
    j < k; J + J (J - 1) / 2 of them), Xi their model covariance (from the model's
    moments up to order four, E[x_j x_k x_l x_m] = sum_q w_q prod P over the distinct
    items) and Delta their derivatives with respect to the estimated parameters,

        M2 = N e' (Xi^-1 - Xi^-1 Delta (Delta' Xi^-1 Delta)^-1 Delta' Xi^-1) e,

    df = number of margins - number of estimated parameters (those at a bound not
    counted), RMSEA = sqrt(max(M2 - df, 0) / (df (N - 1))) with a 90% interval from the
    noncentral chi-square, as mirt's ``M2(type = "M2")``. Rows with a missing
    response are left out. Xi has (J (J + 1) / 2)^2 entries: meant for tests of up to a
    few dozen items (100 items: a 5,050 x 5,050 matrix, a few seconds).
    """
    from scipy.special import chdtr, chdtrc, chndtr  # imported late; scipy.stats would add ~1.5 s

    from engine.calibration import _curves, _latent_scores, _to_work

    dense = check_responses(responses.to_dense() if isinstance(responses, SparseResponses) else responses)
    usable = ~calibration.not_estimable if calibration.not_estimable is not None else np.ones(dense.shape[1], bool)
    columns = np.flatnonzero(usable)
    x = dense[:, columns]
    x = x[(x >= 0).all(axis=1)].astype(np.float64)
    n, n_items = x.shape
    items = calibration.items.subset(columns)
    nodes, weights = normal_quadrature(n_points, bound)
    mean, sd = calibration.latent_mean, calibration.latent_sd
    log_w = -0.5 * ((nodes - mean) / sd) ** 2
    weights = np.exp(log_w - np.logaddexp.reduce(log_w))
    model = calibration.model
    work = _to_work(items, model)
    p, dp = _curves(work, nodes, model)  # (J, Q), (J, Q, k)
    pairs = np.array([(j, k) for j in range(n_items) for k in range(j + 1, n_items)], dtype=np.int64).reshape(-1, 2)
    # Margins as sets of items: incidence (U, J) and their products over nodes (U, Q).
    incidence = np.zeros((n_items + len(pairs), n_items))
    incidence[np.arange(n_items), np.arange(n_items)] = 1.0
    incidence[n_items + np.arange(len(pairs)), pairs[:, 0]] = 1.0
    incidence[n_items + np.arange(len(pairs)), pairs[:, 1]] = 1.0
    log_p = np.log(p)
    log_m = incidence @ log_p  # (U, Q)
    m = np.exp(log_m)
    model_margins = m @ weights
    observed = np.concatenate([x.mean(axis=0), (x[:, pairs[:, 0]] * x[:, pairs[:, 1]]).mean(axis=0)])
    residual = observed - model_margins
    # E[y_u y_v] = sum_q w_q prod over the union of the two sets: m_u m_v / prod over the intersection.
    second = np.zeros((len(m), len(m)))
    for q in range(n_points):  # one U x U matrix per node
        shared = (incidence * log_p[:, q]) @ incidence.T
        second += weights[q] * np.exp(log_m[:, q][:, None] + log_m[:, q][None, :] - shared)
    xi = second - np.outer(model_margins, model_margins)

    # Delta: d margins / d estimated parameters (working parametrisation).
    fixed = calibration.fixed if calibration.fixed is not None else np.zeros(calibration.items.n_items, bool)
    free = ~fixed[columns]
    at_bound = calibration.at_bound[columns, : work.shape[1]] if calibration.at_bound is not None else None
    # dm_u / d theta_(j, a) = m_u dP_j,a / P_j for j in the set u.
    blocks = []
    for a in range(work.shape[1]):
        d_log = dp[:, :, a] / p  # (J, Q)
        deriv = (incidence[:, :, None] * m[:, None, :] * d_log[None]) @ weights  # (U, J)
        blocks.append(deriv)
    delta = np.stack(blocks, axis=2)  # (U, J, k)
    keep = np.broadcast_to(free[:, None], delta.shape[1:]).copy()
    if at_bound is not None:
        keep &= ~at_bound
    if model == "rasch":
        shared_slope = delta[:, free, 0].sum(axis=1, keepdims=True)
        columns_delta = [delta[:, :, 1][:, keep[:, 1]], shared_slope] if free.any() else [delta[:, :, 1][:, keep[:, 1]]]
    else:
        columns_delta = [delta.reshape(len(m), -1)[:, keep.ravel()]]
    if calibration.latent_estimated:
        score, _ = _latent_scores(nodes, (mean, sd))
        columns_delta.append((m * weights) @ score)
    delta = np.concatenate(columns_delta, axis=1)
    xi_inv_delta = np.linalg.solve(xi, delta)
    xi_inv_e = np.linalg.solve(xi, residual)
    middle = np.linalg.solve(delta.T @ xi_inv_delta, xi_inv_delta.T @ residual)
    statistic = float(n * (residual @ xi_inv_e - (delta.T @ xi_inv_e) @ middle))
    df = int(len(m) - delta.shape[1])
    p_value = float(chdtrc(df, statistic)) if df > 0 else float("nan")
    rmsea = float(np.sqrt(max(statistic - df, 0.0) / (df * (n - 1)))) if df > 0 else float("nan")

    def noncentrality(level):
        # lambda with P(chi2(df, lambda) <= M2) = level (decreasing in lambda), by
        # bisection; 0 if even lambda = 0 leaves less than level.
        if df <= 0 or chdtr(df, statistic) < level:
            return 0.0
        low, high = 0.0, max(10.0 * statistic, 100.0)
        for _ in range(200):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if chndtr(statistic, df, middle) > level else (low, middle)
        return 0.5 * (low + high)

    interval = cast(tuple[float, float], tuple(float(np.sqrt(noncentrality(level) / (df * (n - 1)))) if df > 0
                                               else float("nan") for level in (0.95, 0.05)))
    # SRMSR: residual correlations of the item pairs.
    pj = model_margins[:n_items]
    model_corr = (model_margins[n_items:] - pj[pairs[:, 0]] * pj[pairs[:, 1]]) / np.sqrt(
        pj[pairs[:, 0]] * (1 - pj[pairs[:, 0]]) * pj[pairs[:, 1]] * (1 - pj[pairs[:, 1]]))
    observed_corr = np.corrcoef(x, rowvar=False)[pairs[:, 0], pairs[:, 1]]
    srmsr = float(np.sqrt(np.mean((observed_corr - model_corr) ** 2)))
    return LimitedInformationFit(statistic, df, p_value, rmsea, interval, srmsr)
