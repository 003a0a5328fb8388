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
    _curves,
    _Layout,
    _prior_terms,
    _start_values,
    _to_items,
)
from engine.models import ItemParameters
from engine.responses import ResponseData, check_responses


@dataclass(frozen=True)
class MultipleGroupCalibration:
    """items: one ItemParameters per group (invariant items repeat); latent_mean,
    latent_sd: (G,) with group 0 at 0 and 1; free_items: (n_items,) bool."""

    model: str
    items: tuple[ItemParameters, ...]
    latent_mean: np.ndarray
    latent_sd: np.ndarray
    log_likelihood: float
    n_parameters: int
    iterations: int
    converged: bool
    free_items: np.ndarray


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


def calibrate_groups(responses, groups, model: str = "2pl", *, free_items=None, priors: Priors | None = None,
                     n_points: int = 61, bound: float = 6.0, tol: float = 1e-4,
                     max_iterations: int = 3000) -> MultipleGroupCalibration:
    """Marginal maximum likelihood over several groups with their own N(mean_g, sd_g^2).

    responses: dense (n_examinees, n_items) 1/0/-1; groups: (n_examinees,) integers
    0 .. G-1 (group 0 is the reference, N(0, 1)); free_items: optional boolean
    (n_items,) or integer columns of items estimated separately per group. Plain EM,
    stopped when no working parameter (log a, d, c) nor any group's mean or log SD
    moves by more than tol in an EM step.
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
    per_group = []
    for g in range(n_groups):
        take = np.where(group_of == -1, True, group_of == g)
        order = np.argsort(item_of[take], kind="stable")
        per_group.append(virtual_items.subset(np.flatnonzero(take)[order]))
    return MultipleGroupCalibration(model, tuple(per_group), mean, sd, loglik, layout.size + 2 * (n_groups - 1),
                                    iterations, converged, free)


def likelihood_ratio_dif(responses, groups, model: str = "2pl", *, items=None, priors: Priors | None = None,
                         tol: float = 1e-5, **options) -> LikelihoodRatioDIF:
    """LR test of DIF for each studied item (default: all) against the all-invariant model.

    The anchor for the latent means and SDs is every other item (invariant).
    """
    from scipy.special import chdtrc  # imported late, slow to load

    x = check_responses(responses)
    studied = np.arange(x.shape[1]) if items is None else np.asarray(items)
    base = calibrate_groups(x, groups, model, priors=priors, tol=tol, **options)
    n_groups = len(base.items)
    k = {"rasch": 1, "2pl": 2, "3pl": 3, "4pl": 4}[model]
    statistic = np.empty(studied.size)
    for position, j in enumerate(studied):  # one calibration per studied item
        fit = calibrate_groups(x, groups, model, free_items=np.array([j]), priors=priors, tol=tol, **options)
        statistic[position] = max(2.0 * (fit.log_likelihood - base.log_likelihood), 0.0)
    df = np.full(studied.size, (n_groups - 1) * k)
    return LikelihoodRatioDIF(studied, statistic, df, chdtrc(df, statistic))
