"""Multiple-group calibration and likelihood-ratio DIF.

Examinees belong to groups g = 0 .. G-1, each with its own normal ability
distribution: group 0 (the reference) is N(0, 1), which fixes the scale, and every
other group's mean and SD are estimated. Items are invariant (one set of parameters
for all groups) unless listed in ``free_items``, whose parameters are estimated in
each group separately. A free item is handled as G "virtual" items, item j in group g
answered only by group g's examinees, so the EM of ``engine.calibration`` carries
over: the E-step adds group g's log prior weights to its examinees' log-likelihoods,
the M-step is the same item-wise Fisher scoring on the expected counts, and each
group's mean and SD are the moments of its posterior node masses.

Standard errors: the observed information, the negative Hessian of the marginal
log-likelihood, by Louis' identity as for one group (``engine.calibration``),

    I_obs = sum_i g_i g_i^T - sum_i E_i[s_i s_i^T] - E[H_complete] + prior curvature,

where the complete-data score s_i(x_q) of examinee i in group g at node q has the
virtual items' parts (x_ij - P_jq) / (P_jq (1 - P_jq)) dP_jq / d(log a, d[, logit c])
for the items i was presented, and d log pi_gq / d(mean_g, log sd_g) for its own
group's latent parameters (groups 1 .. G-1; zero for the others); g_i = E_i[s_i].
The sums run over chunks of examinees as one matrix product per chunk
(n Q P^2 work for P parameters). Parameters at a bound are held fixed, as for one group.

Likelihood-ratio DIF (Thissen, Steinberg & Wainer, 1993; mirt's ``DIF`` with
``scheme = 'add'``): for each studied item, the model with that item free in every
group against the model with all items invariant,
LR = 2 (logL_free - logL_invariant) ~ chi-square with (G - 1) k df, k the item's
parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ability import normal_quadrature
from engine.calibration import (
    _EM,
    MODELS,
    Priors,
    _bound_mask,
    _complete_data_hessian,
    _curves,
    _free_map,
    _invert_information,
    _latent_scores,
    _Layout,
    _prior_terms,
    _se_to_abc,
    _start_values,
    _to_items,
)
from engine.models import ItemParameters
from engine.responses import ResponseData, check_responses


@dataclass(frozen=True)
class MultipleGroupCalibration:
    """items: one ItemParameters per group (invariant items repeat); latent_mean,
    latent_sd: (G,) with group 0 at 0 and 1; free_items: (n_items,) bool.

    se: one ItemParameters of standard errors per group (delta method from the working
    parameters; NaN for a parameter held at a bound); latent_mean_se, latent_sd_se:
    (G,), NaN for the reference group (fixed). covariance: (P, P) the inverse observed
    information of the working parameters in this order: (log a, d[, logit c[, logit
    u]]) of each invariant item in column order, then of each free item in column order
    for group 0, then group 1, ...; then (mean_g, log sd_g) for g = 1 .. G-1 (the
    Rasch model's one slope: its log a after the items' intercepts, as for one group).
    information_condition: its condition number at a unit diagonal; positive_definite.
    """

    model: str
    items: tuple[ItemParameters, ...]
    latent_mean: np.ndarray
    latent_sd: np.ndarray
    log_likelihood: float
    n_parameters: int
    iterations: int
    converged: bool
    free_items: np.ndarray
    se: tuple[ItemParameters, ...] | None = None
    latent_mean_se: np.ndarray | None = None
    latent_sd_se: np.ndarray | None = None
    covariance: np.ndarray | None = None
    information_condition: float = float("nan")
    positive_definite: bool = True


@dataclass(frozen=True)
class LikelihoodRatioDIF:
    """Per studied item, each (n_studied,): item columns, LR statistic, df, p_value."""

    items: np.ndarray
    statistic: np.ndarray
    df: np.ndarray
    p_value: np.ndarray


def _virtual_columns(responses: np.ndarray, groups: np.ndarray, free: np.ndarray, n_groups: int):
    """Responses with each free item split into one column per group (-1 elsewhere), and
    for every virtual column its item and group (-1: all groups)."""
    parts, item_of, group_of = [responses[:, ~free]], list(np.flatnonzero(~free)), [-1] * int((~free).sum())
    for g in range(n_groups):
        block = np.where((groups == g)[:, None], responses[:, free], -1).astype(np.int8)
        parts.append(block)
        item_of += list(np.flatnonzero(free))
        group_of += [g] * int(free.sum())
    return np.concatenate(parts, axis=1), np.array(item_of), np.array(group_of)


def _observed_information(work, mean, sd, model, nodes, correct, presented, groups, priors, layout,
                          chunk_size: int = 256):
    """Observed information of (virtual items' working parameters, (mean_g, log sd_g) for g >= 1),
    by Louis' identity (see the module docstring), and the mask of parameters held at a bound."""
    n_virtual, k = work.shape
    n_groups = mean.size
    n_items_full = n_virtual * k
    size = n_items_full + 2 * (n_groups - 1)
    p, dp = _curves(work, nodes, model)
    a_tab = dp / (p * (1 - p))[:, :, None]  # (J, Q, k)
    b_tab = dp / (1 - p)[:, :, None]
    lat = [_latent_scores(nodes, (mean[g], sd[g])) for g in range(n_groups)]  # score (Q, 2), Hessian (Q, 2, 2)
    log_w = -0.5 * ((nodes[None, :] - mean[:, None]) / sd[:, None]) ** 2
    log_w -= np.logaddexp.reduce(log_w, axis=1, keepdims=True)
    log_p, log_q = np.log(p), np.log1p(-p)
    gradient_outer = np.zeros((size, size))
    score_outer = np.zeros((size, size))
    r = np.zeros((n_virtual, nodes.size))
    n = np.zeros((n_virtual, nodes.size))
    mass = np.zeros((n_groups, nodes.size))
    for start in range(0, correct.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        x, m, gr = correct[rows], presented[rows], groups[rows]
        post = x @ (log_p - log_q) + m @ log_q + log_w[gr]
        post = np.exp(post - post.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)  # (c, Q)
        r += x.T @ post
        n += m.T @ post
        np.add.at(mass, gr, post)
        # s_iq: (c, Q, P)
        items = (x[:, None, :, None] * a_tab.transpose(1, 0, 2)[None]
                 - m[:, None, :, None] * b_tab.transpose(1, 0, 2)[None]).reshape(x.shape[0], nodes.size, n_items_full)
        latent = np.zeros((x.shape[0], nodes.size, 2 * (n_groups - 1)))
        for g in range(1, n_groups):  # a handful of groups
            mine = gr == g
            latent[mine, :, 2 * (g - 1):2 * g] = lat[g][0][None]
        scores = np.concatenate([items, latent], axis=2)
        g_i = np.einsum("cq,cqp->cp", post, scores)
        gradient_outer += g_i.T @ g_i
        weighted = scores * np.sqrt(post)[:, :, None]
        flat = weighted.reshape(-1, size)
        score_outer += flat.T @ flat
    hessian = np.zeros((size, size))
    blocks = _complete_data_hessian(work, nodes, model, r, n)  # (J, k, k)
    index = np.arange(n_items_full).reshape(n_virtual, k)
    hessian[index[:, :, None], index[:, None, :]] = blocks
    for g in range(1, n_groups):
        block = slice(n_items_full + 2 * (g - 1), n_items_full + 2 * g)
        hessian[block, block] = np.einsum("q,qab->ab", mass[g], lat[g][1])
    _, _, prior_curv = _prior_terms(work, priors, model)
    info = gradient_outer - score_outer - hessian
    info[index[:, :, None], index[:, None, :]] += prior_curv
    held = np.concatenate([_bound_mask(work).ravel(), np.zeros(2 * (n_groups - 1), dtype=bool)])
    if layout.shared_slope:
        held[index[:, 0]] = held[index[0, 0]]
    return info, held


def calibrate_groups(responses, groups, model: str = "2pl", *, free_items=None, priors: Priors | None = None,
                     n_points: int = 61, bound: float = 6.0, tol: float = 1e-4, max_iterations: int = 3000,
                     standard_errors: bool = True) -> MultipleGroupCalibration:
    """Marginal maximum likelihood over several groups with their own N(mean_g, sd_g^2).

    responses: dense (n_examinees, n_items) 1/0/-1; groups: (n_examinees,) integers
    0 .. G-1 (group 0 is the reference, N(0, 1)); free_items: optional boolean
    (n_items,) or integer columns of items estimated separately per group. Plain EM,
    stopped when no working parameter (log a, d, c) nor any group's mean or log SD
    moves by more than tol in an EM step. ``standard_errors``: the observed information
    at the estimates (see the module docstring; False skips it, e.g. inside DIF tests).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    x = check_responses(responses)
    groups = np.asarray(groups, dtype=np.int64)
    if groups.shape != (x.shape[0],) or groups.min() < 0:
        raise ValueError("groups must give every examinee a group 0 .. G-1")
    n_groups = int(groups.max()) + 1
    if np.bincount(groups, minlength=n_groups).min() == 0:
        raise ValueError("every group 0 .. G-1 needs examinees")
    free = np.zeros(x.shape[1], dtype=bool)
    if free_items is not None:
        free_items = np.asarray(free_items)
        free[free_items if free_items.dtype != bool else np.flatnonzero(free_items)] = True
    virtual, item_of, group_of = _virtual_columns(x, groups, free, n_groups)
    data = ResponseData(virtual)
    layout = _Layout(model, virtual.shape[1], False)
    nodes, _ = normal_quadrature(n_points, bound)
    em = _EM(data, layout, nodes, priors, None, max(1, x.shape[0]))
    work = _start_values(data, model, np.arange(virtual.shape[1]), priors)
    correct = (virtual == 1).astype(np.float64)
    presented = (virtual >= 0).astype(np.float64)
    member = (groups[:, None] == np.arange(n_groups)[None, :]).astype(np.float64)  # (n, G)
    mean, sd = np.zeros(n_groups), np.ones(n_groups)
    converged, iterations, loglik = False, 0, -np.inf
    while iterations < max_iterations:
        iterations += 1
        p, _ = _curves(work, nodes, model)
        log_p, log_q = np.log(p), np.log1p(-p)
        log_w = -0.5 * ((nodes[None, :] - mean[:, None]) / sd[:, None]) ** 2
        log_w -= np.logaddexp.reduce(log_w, axis=1, keepdims=True)
        post = correct @ (log_p - log_q) + presented @ log_q + log_w[groups]
        top = post.max(axis=1, keepdims=True)
        post = np.exp(post - top)
        total = post.sum(axis=1, keepdims=True)
        loglik = float(np.sum(np.log(total)) + np.sum(top))
        post /= total
        r, n = correct.T @ post, presented.T @ post
        new_work = em.m_step(work, r, n)
        mass = member.T @ post  # (G, Q)
        new_mean, new_sd = mean.copy(), sd.copy()
        new_mean[1:] = mass[1:] @ nodes / mass[1:].sum(axis=1)
        new_sd[1:] = np.sqrt(np.sum(mass[1:] * (nodes[None, :] - new_mean[1:, None]) ** 2, axis=1)
                             / mass[1:].sum(axis=1))
        change = max(float(np.max(np.abs(layout.natural(layout.pack(new_work, (0.0, 1.0)))
                                          - layout.natural(layout.pack(work, (0.0, 1.0)))), initial=0.0)),
                     float(np.max(np.abs(new_mean - mean), initial=0.0)),
                     float(np.max(np.abs(np.log(new_sd) - np.log(sd)), initial=0.0)))
        work, mean, sd = new_work, new_mean, new_sd
        if change < tol:
            converged = True
            break
    # The reported log-likelihood at the final estimates.
    p, _ = _curves(work, nodes, model)
    log_w = -0.5 * ((nodes[None, :] - mean[:, None]) / sd[:, None]) ** 2
    log_w -= np.logaddexp.reduce(log_w, axis=1, keepdims=True)
    log_post = correct @ (np.log(p) - np.log1p(-p)) + presented @ np.log1p(-p) + log_w[groups]
    loglik = float(np.sum(np.logaddexp.reduce(log_post, axis=1)))
    loglik += float(_prior_terms(work, priors, model)[0].sum()) if priors is not None else 0.0
    virtual_items = _to_items(work, model)
    per_group, columns = [], []
    for g in range(n_groups):
        take = np.where(group_of == -1, True, group_of == g)
        order = np.argsort(item_of[take], kind="stable")
        columns.append(np.flatnonzero(take)[order])
        per_group.append(virtual_items.subset(columns[-1]))
    extra: dict = {}
    if standard_errors:
        info, held = _observed_information(work, mean, sd, model, nodes, correct, presented, groups, priors, layout)
        k = work.shape[1]
        n_items_full = work.size
        # The Rasch model's shared slope: the information of the packed parameters (one log a).
        t_items = _free_map(layout, n_items_full)
        t = np.eye(info.shape[0])
        if t_items is not None:
            t = np.zeros((info.shape[0], t_items.shape[1] + 2 * (n_groups - 1)))
            t[:n_items_full, :t_items.shape[1]] = t_items
            t[n_items_full:, t_items.shape[1]:] = np.eye(2 * (n_groups - 1))
        packed_info = t.T @ info @ t
        packed_held = (t.T @ held.astype(float)) > 0
        packed_cov, condition, positive = _invert_information(packed_info, packed_held)
        cov = t @ np.nan_to_num(packed_cov) @ t.T
        cov[held, :] = np.nan
        cov[:, held] = np.nan
        index = np.arange(n_items_full).reshape(-1, k)
        item_cov = cov[index[:, :, None], index[:, None, :]]
        virtual_se = _se_to_abc(work, item_cov, model)
        latent = np.diag(cov)[n_items_full:]
        mean_se = np.r_[np.nan, np.sqrt(latent[0::2])]
        sd_se = np.r_[np.nan, sd[1:] * np.sqrt(latent[1::2])]  # delta method from log sd
        extra = dict(se=tuple(virtual_se.subset(c) for c in columns), latent_mean_se=mean_se, latent_sd_se=sd_se,
                     covariance=packed_cov, information_condition=condition, positive_definite=positive)
    return MultipleGroupCalibration(model, tuple(per_group), mean, sd, loglik, layout.size + 2 * (n_groups - 1),
                                    iterations, converged, free, **extra)


def likelihood_ratio_dif(responses, groups, model: str = "2pl", *, items=None, priors: Priors | None = None,
                         tol: float = 1e-5, **options) -> LikelihoodRatioDIF:
    """LR test of DIF for each studied item (default: all) against the all-invariant model.

    The anchor for the latent means and SDs is every other item (invariant).
    """
    from scipy.special import chdtrc  # imported late, slow to load

    x = check_responses(responses)
    studied = np.arange(x.shape[1]) if items is None else np.asarray(items)
    options.setdefault("standard_errors", False)
    base = calibrate_groups(x, groups, model, priors=priors, tol=tol, **options)
    n_groups = len(base.items)
    k = {"rasch": 1, "2pl": 2, "3pl": 3, "4pl": 4}[model]
    statistic = np.empty(studied.size)
    for position, j in enumerate(studied):  # one calibration per studied item
        fit = calibrate_groups(x, groups, model, free_items=np.array([j]), priors=priors, tol=tol, **options)
        statistic[position] = max(2.0 * (fit.log_likelihood - base.log_likelihood), 0.0)
    df = np.full(studied.size, (n_groups - 1) * k)
    return LikelihoodRatioDIF(studied, statistic, df, chdtrc(df, statistic))
