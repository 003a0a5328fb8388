"""Subscores that borrow strength from the other fields: multidimensional EAP and
augmented subscores.

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
subscores are the linear analogues: :func:`augmented_subscores`).

:func:`augmented_subscores` is Wainer et al.'s augmentation (Wainer, Vevea, Camacho,
Reeve, Rosa, Nelson, Swygert & Thissen 2001, in Thissen & Wainer, *Test Scoring*,
ch. 9): each field's score regressed on all the fields' scores, the multivariate
Kelley formula. :func:`field_correlation` estimates the fields' correlation that both
methods need from a sample's separate field EAPs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ability import AbilityEstimate
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


def augmented_subscores(scores: np.ndarray, se: np.ndarray, covariance: np.ndarray, mean: np.ndarray | None = None,
                        *, pooled: bool = False) -> MultidimensionalEstimate:
    """Augmented field scores: the best linear predictor of each field's ability from every field's score.

    scores: (n_examinees, F) field scores that estimate each field's ability without
    shrinkage (ML or WLE), se: (n_examinees, F) their standard errors; covariance:
    (F, F) Sigma, the covariance of the true field abilities in the population;
    mean: (F,) mu (default 0). The model is classical: x_i = tau_i + e_i with
    tau ~ (mu, Sigma) and errors uncorrelated across fields (the fields share no
    items), e_i ~ (0, D_i), D_i = diag(se_i^2). The augmented score and its error
    covariance are

        tau_hat_i = mu + Sigma (Sigma + D_i)^-1 (x_i - mu)
                  = (Sigma^-1 + D_i^-1)^-1 (Sigma^-1 mu + D_i^-1 x_i),
        Cov(tau_i | x_i) = (Sigma^-1 + D_i^-1)^-1,

    the normal posterior (a field with se = inf or a NaN score has D^-1 = 0 and is
    predicted from the others alone). ``pooled=True`` is Wainer et al.'s estimator:
    one error covariance for everyone, D = diag(mean_i se_if^2), so that
    tau_hat_i = mu + B (x_i - mu) with B = Sigma S_x^-1, S_x = Sigma + D the covariance
    of the observed scores, and the error covariance Sigma - B Sigma for every examinee.
    ``pooled=False`` (default) uses each examinee's own SEs, which matters where the
    test is imprecise (low scorers on a 3PL test). Every examinee at once:
    (n, F, F) batched solves.
    """
    x = np.atleast_2d(np.asarray(scores, dtype=float))
    errors = np.atleast_2d(np.asarray(se, dtype=float))
    sigma = np.atleast_2d(np.asarray(covariance, dtype=float))
    n_fields = sigma.shape[0]
    if x.shape != errors.shape or x.shape[1] != n_fields or sigma.shape != (n_fields, n_fields):
        raise ValueError(f"scores and se must be (n, {n_fields}) for a ({n_fields}, {n_fields}) covariance")
    if not np.allclose(sigma, sigma.T) or np.linalg.eigvalsh(sigma).min() <= 0:
        raise ValueError("covariance must be symmetric positive definite")
    mu = np.zeros(n_fields) if mean is None else np.asarray(mean, dtype=float)
    usable = np.isfinite(x) & np.isfinite(errors) & (errors > 0)
    error_precision = np.where(usable, 1.0 / np.where(usable, errors, 1.0) ** 2, 0.0)  # (n, F)
    if pooled:
        variance = np.array([np.mean(errors[usable[:, f], f] ** 2) if usable[:, f].any() else np.inf
                             for f in range(n_fields)])
        error_precision = np.where(usable, 1.0 / variance, 0.0)
    prior_precision = np.linalg.inv(sigma)
    posterior_precision = prior_precision[None] + error_precision[:, :, None] * np.eye(n_fields)[None]  # (n, F, F)
    cov = np.linalg.inv(posterior_precision)
    right = (prior_precision @ mu)[None] + error_precision * np.where(usable, x, 0.0)  # (n, F)
    theta = np.einsum("nfg,ng->nf", cov, right)
    se_out = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    return MultidimensionalEstimate(theta, se_out, cov)


def field_correlation(estimate: AbilityEstimate, *, maximum: float = 0.95) -> np.ndarray:
    """The fields' ability correlation from a sample's separate field EAPs, (F, F).

    estimate: separate EAPs of each field, theta and se (n_examinees, F). An EAP is
    approximately the ability shrunk by its reliability, theta_hat_f = r_f theta_f + e,
    so corr(theta_hat_f, theta_hat_g) = rho_fg sqrt(r_f r_g), and the disattenuated

        rho_fg = corr(theta_hat_f, theta_hat_g) / sqrt(r_f r_g),
        r_f = var(theta_hat_f) / (var(theta_hat_f) + mean(se_f^2))

    (r_f: the empirical reliability, mirt's ``empirical_rxx``). Correlations are capped
    at ``maximum``: sampling error pushes the estimate above 1 when the fields measure
    one ability, and a correlation at 1 leaves no field of its own.
    """
    theta = np.atleast_2d(np.asarray(estimate.theta, dtype=float))
    se = np.atleast_2d(np.asarray(estimate.se, dtype=float))
    keep = np.all(np.isfinite(theta) & np.isfinite(se), axis=1)
    if keep.sum() < 3:
        raise ValueError("field_correlation needs at least 3 examinees with finite estimates")
    theta, se = theta[keep], se[keep]
    variance = theta.var(axis=0)
    reliability = variance / (variance + np.mean(se**2, axis=0))
    observed = np.corrcoef(theta, rowvar=False)
    rho = observed / np.sqrt(np.outer(reliability, reliability))
    rho = np.clip(rho, -maximum, maximum)
    np.fill_diagonal(rho, 1.0)
    # Capping can leave a matrix that is not positive definite: raise its eigenvalues to
    # 1e-3 and restore the unit diagonal.
    values, vectors = np.linalg.eigh(rho)
    if values.min() < 1e-3:
        rho = (vectors * np.maximum(values, 1e-3)) @ vectors.T
        scale = np.sqrt(np.diag(rho))
        rho = rho / np.outer(scale, scale)
    return rho
