"""Item calibration by marginal maximum likelihood with EM (Bock & Aitkin, 1981).

The latent distribution is normal on a fixed grid of ``n_points`` equally spaced
nodes over [-bound, bound] (mirt's default: 61 nodes on [-6, 6]). Each EM cycle:

E-step  w_iq = L_i(x_q) pi_q / sum_q' L_i(x_q') pi_q'   (posterior weight of node q)
        r_jq = sum_i x_ij w_iq,   n_jq = sum_i presented_ij w_iq   (expected counts)
M-step  for every item at once, Fisher scoring on
        sum_q r_jq log P_j(x_q) + (n_jq - r_jq) log(1 - P_j(x_q)) + log prior_j

Items are worked in the parametrisation (log a, d = -a b, logit c), which keeps
a > 0 and 0 < c < 1 and makes the M-step well conditioned (mirt estimates the
same slope-intercept form). EM is accelerated with SQUAREM (Varadhan & Roland,
2008, scheme S3): two EM steps give r = F(x) - x and v = F(F(x)) - 2 F(x) + x, the
extrapolation x + 2 s r + s^2 v with s = |r| / |v| is stabilised by one more EM
step and kept only if the objective did not fall.

Convergence: the largest change of log a, d or c of any item in one EM step,
divided by (1 - rate) with rate EM's linear convergence rate estimated from two
successive EM steps, is below ``tol`` (default 1e-4). That quotient estimates the
distance still to go; mirt's TOL bounds the step alone, which for a slow EM
(rate near 1) stops earlier. c rather than logit c is judged, because near c = 0
logit c can drift far with no change of the model; the latent mean and log SD, when
estimated, must have settled too. Standard errors come by default from the observed
information, the exact negative Hessian of the marginal log-likelihood by Louis'
identity (the matrix mirt's default ``SE.type = 'Oakes'`` computes), or on request from
the cross-product of the examinees' marginal score vectors (``'crossprod'``); both add
the curvature of the priors, and parameters at a bound of their range are held fixed.
"""
from __future__ import annotations

import contextlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, cast

import numpy as np

from engine.ability import normal_quadrature
from engine.models import EPSILON, ItemParameters, probability
from engine.responses import ResponseData, as_response_data

MODELS = ("rasch", "2pl", "3pl", "4pl")
# Models with a lower (c) and an upper (d) asymptote to estimate.
_GUESSING = ("3pl", "4pl")
SE_METHODS = ("observed", "crossprod")
# Bounds on the working parameters: a in [0.01, 20], |d| <= 40, c in [6e-6, 0.9],
# the 4PL's upper asymptote in [0.5, 1 - 6e-6].
_LOWER = np.array([math.log(0.01), -40.0, -12.0, 0.0])
_UPPER = np.array([math.log(20.0), 40.0, math.log(0.9 / 0.1), 12.0])
# The smallest latent SD EM will estimate with anchors (see EM.latent_m_step).
MIN_LATENT_SD = 0.05
# Beyond these an estimate is reported as probably not identified.
_SUSPECT_A = (0.05, 10.0)
_SUSPECT_B = 8.0


@dataclass(frozen=True)
class Priors:
    """Priors on item parameters (None means flat); estimates are then posterior modes.

    a_lognormal: (meanlog, sdlog) of log a; b_normal: (mean, sd) of b;
    c_beta: (alpha, beta) of c. BILOG-MG's default for a four-option item is
    c_beta = (6, 16) (mean near 1/4, 20 pseudo-observations). upper_beta: (alpha,
    beta) of the 4PL's upper asymptote, e.g. (16, 2) (mode near .94).
    """

    a_lognormal: tuple[float, float] | None = None
    b_normal: tuple[float, float] | None = None
    c_beta: tuple[float, float] | None = None
    upper_beta: tuple[float, float] | None = None


@dataclass(frozen=True)
class FixedItems:
    """Anchor items held at known parameters: ``columns`` (int array) of the response matrix."""

    columns: np.ndarray
    items: ItemParameters

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", np.asarray(self.columns, dtype=np.int64))
        if self.columns.shape != (self.items.n_items,):
            raise ValueError("FixedItems needs one column index per item")


@dataclass(frozen=True)
class Calibration:
    """The result of ``calibrate``.

    items: all items, fixed ones included; se: standard errors of a, b, c (0 for a
    parameter not estimated, e.g. c of a 2PL or any parameter of a fixed item);
    se_intercept: (n_items,) SE of the intercept d = -a b (mirt's slope-intercept form).
    item_converged: (n_items,) False for an item whose last EM change exceeded
    tol, whose estimate is non-finite, or that looks not identified;
    item_messages: the reason for each such item ('' otherwise).
    latent_mean, latent_sd: the ability distribution on the items' scale
    (0 and 1 unless estimated, i.e. with fixed anchor items); latent_se their SEs.
    se_method: 'observed' (the negative Hessian of the marginal log-likelihood,
    mirt's default SE.type = 'Oakes' gives the same matrix) or 'crossprod'.
    at_bound: (n_items, 4) True where a, the intercept d, c or the 4PL's upper
    asymptote of a free item sits at the bound of its range (a in [0.01, 20],
    |d| <= 40, c in [6e-6, 0.9], upper in [0.5, 1 - 6e-6]); such a
    parameter is held fixed for the SEs and its own SE is NaN.
    information_condition: condition number of the information matrix (parameters at
    a bound left out) scaled to a unit diagonal; warnings: e.g. a near-singular one.
    not_estimable: (n_items,) True for a free item with no responses, or with every
    response correct (or every one wrong): it is left out of the estimation, its
    parameters and SEs are NaN, item_converged False and item_messages say why.
    n_examinees counts the examinees with at least one response;
    examinees_without_responses the others (they add nothing to the likelihood).
    """

    model: str
    items: ItemParameters
    se: ItemParameters
    se_intercept: np.ndarray
    log_likelihood: float
    n_parameters: int
    n_examinees: int
    iterations: int
    converged: bool
    item_converged: np.ndarray
    item_messages: tuple[str, ...]
    latent_mean: float = 0.0
    latent_sd: float = 1.0
    fixed: np.ndarray | None = field(default=None)
    se_method: str = "observed"
    latent_se: tuple[float, float] = (0.0, 0.0)
    information_condition: float = float("nan")
    at_bound: np.ndarray | None = field(default=None)
    warnings: tuple[str, ...] = ()
    latent_estimated: bool = False
    not_estimable: np.ndarray | None = field(default=None)
    examinees_without_responses: int = 0

    def bound_report(self) -> list[tuple[int, str]]:
        """(item column, description) of every estimated parameter at a bound of its range."""
        names = ("a", "d (intercept)", "c", "upper asymptote")
        out: list[tuple[int, str]] = []
        if self.at_bound is None:
            return out
        for j, column in zip(*np.nonzero(self.at_bound)):
            value = (self.items.a[j], self.items.intercept[j], self.items.c[j], self.items.upper_array[j])[column]
            out.append((int(j), f"{names[column]} = {value:.3g} at the bound of its range; held there for the SEs"))
        return out

    @property
    def aic(self) -> float:
        return -2.0 * self.log_likelihood + 2.0 * self.n_parameters

    @property
    def bic(self) -> float:
        return -2.0 * self.log_likelihood + math.log(self.n_examinees) * self.n_parameters


class _Layout:
    """Packs the free parameters of a model into one vector (SQUAREM works on it).

    Per free item: log a (unless one slope is shared), d, and logit c for the 3PL;
    then the shared log a (Rasch/1PL), then the latent mean and log sd if estimated.
    """

    def __init__(self, model: str, n_free: int, estimate_latent: bool):
        self.model, self.n_free, self.estimate_latent = model, n_free, estimate_latent
        self.k = {"3pl": 3, "4pl": 4}.get(model, 2)  # working parameters per item
        self.shared_slope = model == "rasch" and n_free > 0
        self.per_item = self.k - (1 if self.shared_slope else 0)
        self.size = n_free * self.per_item + (1 if self.shared_slope else 0) + (2 if estimate_latent else 0)

    def pack(self, work: np.ndarray, latent: tuple[float, float]) -> np.ndarray:
        """work: (n_free, k) working parameters -> vector."""
        parts = [work[:, 1:].ravel() if self.shared_slope else work.ravel()]
        if self.shared_slope:
            parts.append(work[:1, 0])
        if self.estimate_latent:
            parts.append(np.array([latent[0], math.log(latent[1])]))
        return np.concatenate(parts)

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        n_item_values = self.n_free * self.per_item
        work = np.empty((self.n_free, self.k))
        if self.shared_slope:
            work[:, 1:] = x[:n_item_values].reshape(self.n_free, self.per_item)
            work[:, 0] = x[n_item_values]
            n_item_values += 1
        else:
            work[:] = x[:n_item_values].reshape(self.n_free, self.k)
        latent = (0.0, 1.0)
        if self.estimate_latent:
            latent = (float(x[n_item_values]), float(math.exp(x[n_item_values + 1])))
        return work, latent

    def natural(self, x: np.ndarray) -> np.ndarray:
        """x with logit c replaced by c: convergence is judged on (log a, d, c), since
        near c = 0 a large move of logit c is no change of the model."""
        if self.model not in _GUESSING:
            return x
        out = x.copy()
        n_item_values = self.n_free * self.per_item
        table = out[:n_item_values].reshape(self.n_free, self.per_item)
        table[:, 2:] = 1.0 / (1.0 + np.exp(-table[:, 2:]))  # c (and the 4PL's upper asymptote)
        return out

    def latent_change(self, dx: np.ndarray) -> float:
        """Largest absolute change of the latent mean and log SD in a difference of packed vectors."""
        return float(np.max(np.abs(dx[-2:]))) if self.estimate_latent else 0.0

    def item_change(self, dx: np.ndarray) -> np.ndarray:
        """Largest absolute change per free item, (n_free,), of a difference of natural()."""
        n_item_values = self.n_free * self.per_item
        change = np.abs(dx[:n_item_values]).reshape(self.n_free, self.per_item).max(axis=1)
        if self.shared_slope:
            change = np.maximum(change, abs(dx[n_item_values]))
        return change


def _asymptotes(work: np.ndarray, model: str, keep_dims: bool = False):
    """(c, upper) of working parameters (0 and 1 where the model does not estimate them),
    each (n,) or, with keep_dims, (n, 1)."""
    n = work.shape[0]
    c = 1.0 / (1.0 + np.exp(-work[:, 2])) if model in _GUESSING else np.zeros(n)
    upper = 1.0 / (1.0 + np.exp(-work[:, 3])) if model == "4pl" else np.ones(n)
    return (c[:, None], upper[:, None]) if keep_dims else (c, upper)


def _to_items(work: np.ndarray, model: str) -> ItemParameters:
    a = np.exp(work[:, 0])
    c, upper = _asymptotes(work, model)
    return ItemParameters(a, -work[:, 1] / a, c, upper if model == "4pl" else None)


def _to_work(items: ItemParameters, model: str) -> np.ndarray:
    work = np.column_stack([np.log(items.a), -items.a * items.b])
    if model in _GUESSING:
        c = np.clip(items.c, 1e-4, 0.9)
        work = np.column_stack([work, np.log(c / (1 - c))])
    if model == "4pl":
        upper = np.clip(np.ones(items.n_items) if items.d is None else items.d, 0.51, 1 - 1e-4)
        work = np.column_stack([work, np.log(upper / (1 - upper))])
    return work


def _curves(work: np.ndarray, nodes: np.ndarray, model: str):
    """P (n_free, Q) and dP/d(working parameters) (n_free, Q, k)."""
    a = np.exp(work[:, :1])
    s = 1.0 / (1.0 + np.exp(-(a * nodes + work[:, 1:2])))
    c, upper = _asymptotes(work, model, keep_dims=True)
    p = c + (upper - c) * s
    ds = (upper - c) * s * (1.0 - s)
    derivs = [ds * a * nodes, ds]
    if model in _GUESSING:
        derivs.append((1.0 - s) * c * (1.0 - c))
    if model == "4pl":
        derivs.append(s * upper * (1.0 - upper))
    return np.clip(p, EPSILON, 1 - EPSILON), np.stack(derivs, axis=2)


def _prior_terms(work: np.ndarray, priors: Priors | None, model: str):
    """Log prior per item (n,), its gradient (n, k) and curvature (n, k, k) in working parameters.

    With one shared slope (Rasch) the prior on a enters once, not once per item.
    """
    n, k = work.shape
    a_share = 1.0 / max(n, 1) if model == "rasch" else 1.0
    value = np.zeros(n)
    grad = np.zeros((n, k))
    curv = np.zeros((n, k, k))
    if priors is None:
        return value, grad, curv
    if priors.a_lognormal is not None:
        mu, sd = priors.a_lognormal
        la = work[:, 0]
        # lognormal density of a, written in log a: -(la - mu)^2 / (2 sd^2) - la.
        value += a_share * (-0.5 * ((la - mu) / sd) ** 2 - la)
        grad[:, 0] += a_share * (-(la - mu) / sd**2 - 1.0)
        curv[:, 0, 0] += a_share / sd**2
    if priors.b_normal is not None:
        mu, sd = priors.b_normal
        a = np.exp(work[:, 0])
        b = -work[:, 1] / a
        value += -0.5 * ((b - mu) / sd) ** 2
        db = np.column_stack([-b, -1.0 / a])  # d b / d(log a, d)
        grad[:, :2] += (-(b - mu) / sd**2)[:, None] * db
        curv[:, :2, :2] += db[:, :, None] * db[:, None, :] / sd**2
    if priors.upper_beta is not None and model == "4pl":
        alpha, beta = priors.upper_beta
        u = 1.0 / (1.0 + np.exp(-work[:, 3]))
        value += (alpha - 1) * np.log(u) + (beta - 1) * np.log1p(-u)
        grad[:, 3] += (alpha - 1) * (1 - u) - (beta - 1) * u
        curv[:, 3, 3] += (alpha + beta - 2) * u * (1 - u)
    if priors.c_beta is not None and model in _GUESSING:
        alpha, beta = priors.c_beta
        c = 1.0 / (1.0 + np.exp(-work[:, 2]))
        value += (alpha - 1) * np.log(c) + (beta - 1) * np.log1p(-c)
        grad[:, 2] += (alpha - 1) * (1 - c) - (beta - 1) * c
        curv[:, 2, 2] += (alpha + beta - 2) * c * (1 - c)
    return value, grad, curv


# Above this many response cells the EM iterations use float32.
_FLOAT32_CELLS = 2_000_000


class _EM:
    """The E-step and M-step over fixed data (one instance per calibration)."""

    def __init__(self, data: ResponseData, layout: _Layout, nodes, priors, fixed_loglik, chunk_size):
        self.layout, self.nodes, self.priors = layout, nodes, priors
        self.model = layout.model
        self.data, self.chunk_size = data, chunk_size
        # Large problems run their EM iterations in float32 (twice the speed; the
        # counts are weighted sums accurate to ~1e-6 relative, far below tol); the
        # reported log-likelihood and the SEs always come from a float64 pass.
        # Small ones, cheap anyway, stay in float64 so that a tight tol is reachable.
        self.dtype = np.float32 if data.n_examinees * data.n_items > _FLOAT32_CELLS else np.float64
        self.blocks = list(data.blocks(chunk_size, self.dtype))
        self.fixed_loglik = fixed_loglik  # float64 (n, Q) per block, or None
        self.fixed_loglik32 = None if fixed_loglik is None else [f.astype(self.dtype) for f in fixed_loglik]
        self.e_steps = 0
        self.pool: ThreadPoolExecutor | None = None

    def log_weights(self, latent):
        mean, sd = latent
        logw = -0.5 * ((self.nodes - mean) / sd) ** 2
        return logw - np.logaddexp.reduce(logw)

    def _tables(self, work, latent):
        p, _ = _curves(work, self.nodes, self.model)
        return np.log(p), np.log1p(-p), self.log_weights(latent)

    @staticmethod
    def _posterior(block, log_p, log_q, logw, fixed):
        """Posterior weights (n, Q) of one block and its part of the marginal log-likelihood."""
        post = block.node_log_likelihood(log_p, log_q)
        if fixed is not None:
            post += fixed
        post += logw.astype(post.dtype)
        top = post.max(axis=1, keepdims=True)
        post -= top
        np.exp(post, out=post)
        total = post.sum(axis=1, keepdims=True)
        post /= total
        return post, float(np.sum(np.log(total), dtype=np.float64) + np.sum(top, dtype=np.float64))

    def posteriors(self, work, latent):
        """Yield (block, posterior) in float64 over fresh blocks, and set ``self.loglik``.

        Used once at the estimates, for the reported log-likelihood and the SEs.
        """
        log_p, log_q, logw = self._tables(work, latent)
        self.loglik = 0.0
        blocks = self.data.blocks(self.chunk_size, np.float64)
        for index, block in enumerate(blocks):
            fixed = None if self.fixed_loglik is None else self.fixed_loglik[index]
            post, part = self._posterior(block, log_p, log_q, logw, fixed)
            self.loglik += part
            yield block, post

    def e_step(self, work, latent):
        """Marginal log-likelihood, expected counts (n_free, Q) twice, and node masses (Q,).

        Blocks run on a small thread pool: the products and ufuncs release the GIL.
        """
        self.e_steps += 1
        log_p, log_q, logw = self._tables(work, latent)

        def one(index):
            block = self.blocks[index]
            fixed = None if self.fixed_loglik32 is None else self.fixed_loglik32[index]
            post, part = self._posterior(block, log_p, log_q, logw, fixed)
            r, n = block.expected_counts(post)
            return part, np.asarray(r, dtype=np.float64), np.asarray(n, dtype=np.float64), post.sum(axis=0, dtype=np.float64)

        results = list(self.pool.map(one, range(len(self.blocks)))) if self.pool else [one(i) for i in range(len(self.blocks))]
        self.loglik = sum(r[0] for r in results)
        correct = sum(r[1] for r in results)
        presented = sum(r[2] for r in results)
        node_mass = sum(r[3] for r in results)
        return self.loglik, correct, presented, node_mass

    def objective(self, loglik, work):
        return loglik + float(_prior_terms(work, self.priors, self.model)[0].sum())

    def _item_objective(self, work, correct, presented):
        p, _ = _curves(work, self.nodes, self.model)
        value = np.sum(correct * np.log(p) + (presented - correct) * np.log1p(-p), axis=1)
        return value + _prior_terms(work, self.priors, self.model)[0]

    def m_step(self, work, correct, presented, max_steps: int = 25):
        """Fisher scoring on every item's expected complete-data log posterior at once.

        A parameter at its bound whose step points outward is held there (the
        others solve the reduced system), and steps are halved for any item
        whose objective would fall, so each M-step never lowers the objective.
        Items leave the iteration once they move less than 1e-8 (all together
        when one slope is shared).
        """
        work = work.copy()
        k = work.shape[1]
        lower, upper = _LOWER[:k], _UPPER[:k]
        current = self._item_objective(work, correct, presented)
        active = np.arange(work.shape[0])
        for _ in range(max_steps):
            w, r, n = work[active], correct[active], presented[active]
            p, dp = _curves(w, self.nodes, self.model)
            resid = (r - n * p) / (p * (1.0 - p))
            grad = (resid[:, None, :] @ dp)[:, 0]
            info = ((n / (p * (1.0 - p)))[:, :, None] * dp).transpose(0, 2, 1) @ dp
            _, prior_grad, prior_curv = _prior_terms(w, self.priors, self.model)
            grad += prior_grad
            info += prior_curv
            held = ((w <= lower + 1e-12) & (grad < 0)) | ((w >= upper - 1e-12) & (grad > 0))
            if self.layout.shared_slope:
                held[:, 0] = False
            grad[held] = 0.0
            info[held[:, :, None] | held[:, None, :]] = 0.0
            info += (held[:, :, None] & np.eye(k, dtype=bool)) + 1e-9 * np.eye(k)
            if self.layout.shared_slope:
                step = _arrow_solve(info, grad)
            else:
                step = np.linalg.solve(info, grad[:, :, None])[:, :, 0]
            # Shrink the whole step (not each component) so that it stays an ascent
            # direction when the information is nearly singular (c near 0).
            step /= np.maximum(1.0, np.abs(step).max(axis=1, keepdims=True))
            old = current[active]
            if self.layout.shared_slope:
                # The shared slope couples all items: halve for the total objective.
                for _ in range(10):
                    trial = np.clip(w + step, lower, upper)
                    value = self._item_objective(trial, r, n)
                    if value.sum() >= old.sum() - 1e-10:
                        break
                    step = 0.5 * step
            else:
                trial = np.clip(w + step, lower, upper)
                value = self._item_objective(trial, r, n)
                for attempt in range(30):
                    worse = value < old - 1e-10
                    if not worse.any():
                        break
                    if attempt == 15:
                        # Newton-type steps keep failing: fall back to gradient ascent.
                        scale = np.abs(grad[worse]).max(axis=1, keepdims=True) + 1e-300
                        step[worse] = grad[worse] / scale
                    else:
                        step[worse] *= 0.5
                    trial[worse] = np.clip(w[worse] + step[worse], lower, upper)
                    value[worse] = self._item_objective(trial[worse], r[worse], n[worse])
                keep = value >= old - 1e-10
                trial[~keep] = w[~keep]
                value[~keep] = old[~keep]
            moved = np.abs(trial - w).max(axis=1)
            work[active], current[active] = trial, value
            if self.layout.shared_slope:
                active = active if moved.max(initial=0.0) >= 1e-8 else active[:0]
            else:
                active = active[moved >= 1e-8]
            if active.size == 0:
                break
        return work

    def latent_m_step(self, node_mass):
        total = node_mass.sum()
        mean = float(node_mass @ self.nodes / total)
        sd = float(np.sqrt(node_mass @ (self.nodes - mean) ** 2 / total))
        # A handful of examinees can pile the posterior mass on one node, sending the SD to 0
        # (and its log to -inf); floor it so EM finishes and the report says what went wrong.
        return mean, max(sd, MIN_LATENT_SD)

    def update(self, x):
        """One EM step: returns F(x) and the objective at x."""
        work, latent = self.layout.unpack(x)
        loglik, correct, presented, node_mass = self.e_step(work, latent)
        objective = self.objective(loglik, work)
        new_work = self.m_step(work, correct, presented)
        new_latent = self.latent_m_step(node_mass) if self.layout.estimate_latent else latent
        return self.layout.pack(new_work, new_latent), objective


def _arrow_solve(info: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Newton step for one shared log-slope (column 0) and per-item intercepts.

    The joint information has an arrow shape: a full row/column for the shared
    slope and a diagonal over intercepts, solved by the Schur complement.
    """
    h_aa = info[:, 0, 0].sum()
    h_ad = info[:, 0, 1]
    h_dd = info[:, 1, 1]
    g_a = grad[:, 0].sum()
    g_d = grad[:, 1]
    step_a = (g_a - np.sum(h_ad * g_d / h_dd)) / (h_aa - np.sum(h_ad**2 / h_dd))
    step = np.empty_like(grad)
    step[:, 0] = step_a
    step[:, 1] = (g_d - h_ad * step_a) / h_dd
    return step


def _start_values(data: ResponseData, model: str, free: np.ndarray, priors: Priors | None) -> np.ndarray:
    """Classical starting values: b and a from each item's proportion correct and its
    biserial correlation with the examinees' proportion-correct score, through the
    normal-ogive relations a' = r / sqrt(1 - r^2), b = -Phi^-1(p) / r (a = 1.702 a')."""
    from scipy.special import ndtri  # imported late, slow to load

    n_correct, n_presented = data.item_counts()
    p = np.clip((n_correct[free] + 0.5) / (n_presented[free] + 1.0), 0.02, 0.98)
    c = np.zeros_like(p)
    upper = np.ones_like(p)
    if model == "4pl":
        upper = np.full_like(p, 0.98)
    if model in _GUESSING:
        if priors is not None and priors.c_beta is not None:
            c0 = priors.c_beta[0] / sum(priors.c_beta)
        else:
            c0 = 0.15
        c = np.minimum(c0, 0.5 * p)
    s = np.clip((p - c) / (upper - c), 0.02, 0.98)
    point_biserial = data.item_score_correlation()[free]
    z = ndtri(p)
    biserial = point_biserial * np.sqrt(p * (1 - p)) / (np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi))
    r = np.clip(np.nan_to_num(biserial, nan=0.5), 0.15, 0.9)
    a = 1.702 * r / np.sqrt(1 - r**2)
    if model == "rasch" and a.size:
        a = np.full_like(a, np.exp(np.mean(np.log(a))))
    b = -ndtri(s) / r
    work = np.column_stack([np.log(a), -a * b])
    if model in _GUESSING:
        work = np.column_stack([work, np.log(c / (1 - c))])
    if model == "4pl":
        work = np.column_stack([work, np.log(upper / (1 - upper))])
    return work


def calibrate(
    responses,
    model: str = "2pl",
    *,
    fixed: FixedItems | None = None,
    priors: Priors | None = None,
    start: ItemParameters | None = None,
    estimate_latent: bool | None = None,
    n_points: int = 61,
    bound: float = 6.0,
    tol: float = 1e-4,
    max_iterations: int = 2000,
    accelerate: bool = True,
    standard_errors: bool = True,
    se_method: str = "observed",
    chunk_size: int = 20_000,
    threads: int | None = None,
    callback: Callable[[int, float, float], None] | None = None,
) -> Calibration:
    """Marginal maximum likelihood (or posterior mode, with priors) item estimates by EM.

    responses: dense (n_examinees, n_items) with -1 for not presented, or a
        SparseResponses for an incomplete design (never densified).
    model: 'rasch' (one common slope a, equivalent to mirt's Rasch with a = 1 and
        a free latent variance a^2), '2pl', '3pl' or '4pl' (upper asymptote d < 1,
        estimated in logit d like mirt's 'u').
    fixed: anchor items held at their parameters; the other items are estimated
        on the anchors' scale, and then the latent mean and SD are estimated too
        (fixed-parameter calibration of pretest items).
    priors: ``Priors``; None gives maximum likelihood, as mirt's default.
    start: optional starting parameters for all items (default: classical
        starting values from p-values and biserial correlations).
    estimate_latent: estimate the latent mean and SD (default: only with anchors).
    tol, max_iterations: stop when no item's log a, d or c is estimated to be more
        than tol from its optimum (see the module docstring), or after
        max_iterations E-steps.
    threads: E-step blocks run on this many threads (default: the CPU count for
        sparse data, 1 for dense data, whose products BLAS already spreads).
    callback(e_steps, log_likelihood, max_change): called after every EM cycle,
        e.g. for a progress display.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if se_method not in SE_METHODS:
        raise ValueError(f"se_method must be one of {SE_METHODS}, got {se_method!r}")
    data = as_response_data(responses)
    n_items = data.n_items
    is_fixed = np.zeros(n_items, dtype=bool)
    if fixed is not None:
        is_fixed[fixed.columns] = True
    # An item nobody was presented, or that everybody (nobody) answered correctly, has no
    # finite maximum: it is left out and reported as not estimable.
    item_correct, item_presented = data.item_counts()
    not_estimable = ~is_fixed & ((item_presented == 0) | (item_correct == 0) | (item_correct == item_presented))
    free = np.flatnonzero(~is_fixed & ~not_estimable)
    if free.size == 0 and fixed is None:
        raise ValueError("no item can be estimated: every item has no responses, or all of them correct or all wrong")
    if estimate_latent is None:
        estimate_latent = fixed is not None
    if estimate_latent and fixed is None:
        raise ValueError("the latent mean and SD can only be estimated against fixed anchor items")
    layout = _Layout(model, free.size, estimate_latent)
    nodes, _ = normal_quadrature(n_points, bound)

    fixed_loglik = None
    if fixed is not None:
        fixed_p = np.clip(probability(nodes, fixed.items), EPSILON, 1 - EPSILON)
        log_p, log_q = np.log(fixed_p).T, np.log1p(-fixed_p).T
        fixed_data = data.select_items(fixed.columns)
        fixed_loglik = [b.node_log_likelihood(log_p, log_q) for b in fixed_data.blocks(chunk_size)]
    free_data = data.select_items(free) if fixed is not None or not_estimable.any() else data
    em = _EM(free_data, layout, nodes, priors, fixed_loglik, chunk_size)

    if start is not None:
        work = _to_work(start.subset(free), model)
        if model == "rasch" and free.size:
            work[:, 0] = np.mean(work[:, 0])
    else:
        work = _start_values(data, model, free, priors)
    x = layout.pack(work, (0.0, 1.0))

    if threads is None:
        # Sparse products run single-threaded in scipy, so blocks go in parallel;
        # dense products are already spread over the cores by BLAS.
        threads = (os.cpu_count() or 1) if data.sparse else 1
    with ThreadPoolExecutor(threads) if threads > 1 else contextlib.nullcontext() as pool:
        em.pool = pool
        x, converged, change = _squarem(em, x, tol, max_iterations, accelerate, callback)
        em.pool = None

    work, latent = layout.unpack(x)
    items_free = _to_items(work, model)
    all_items = _merge(n_items, free, items_free, fixed)
    # A float64 pass at the estimates gives the reported log-likelihood (and the SEs).
    se_d = np.zeros(n_items)
    at_bound = np.zeros((n_items, 4), dtype=bool)
    at_bound[free, : layout.k] = _bound_mask(work)
    if model == "rasch":
        at_bound[free, 0] = at_bound[free[0], 0] if free.size else False
    latent_se = (0.0, 0.0)
    condition = float("nan")
    warnings: list[str] = []
    used_method = se_method if standard_errors else "none"
    if standard_errors:
        information = _information(em, work, latent, layout, se_method)
        used_method = information.method
        se_free = _se_to_abc(work, information.cov, model)
        se_d[free] = np.sqrt(np.maximum(information.cov[:, 1, 1], 0.0))
        if information.latent_cov is not None:
            mean_var, log_sd_var = np.diag(information.latent_cov)
            latent_se = (float(np.sqrt(max(mean_var, 0.0))), float(latent[1] * np.sqrt(max(log_sd_var, 0.0))))
        condition = information.condition
        if not information.positive_definite:
            warnings.append("the information matrix is not positive definite: the model is probably not "
                            "identified by these data; standard errors are not reliable")
        elif condition > CONDITION_WARNING:
            warnings.append(f"the information matrix is near singular (condition number {condition:.2g}): "
                            "standard errors are not reliable")
    else:
        for _ in em.posteriors(work, latent):
            pass
        se_free = ItemParameters(np.zeros(free.size), np.zeros(free.size), np.zeros(free.size))
    se_all = _merge(n_items, free, se_free, None)
    item_converged, messages = _item_report(items_free, change, converged, tol, free, n_items)
    if not_estimable.any():
        messages = list(messages)
        nan = np.where(not_estimable, np.nan, 1.0)
        all_items = ItemParameters(all_items.a * nan, all_items.b * nan, all_items.c * nan,
                                   None if all_items.d is None else all_items.d * nan)
        se_all = ItemParameters(se_all.a * nan, se_all.b * nan, se_all.c * nan,
                                None if se_all.d is None else se_all.d * nan)
        se_d = se_d * nan
        item_converged = item_converged & ~not_estimable
        for j in np.flatnonzero(not_estimable):  # the few items at fault, to be named
            if item_presented[j] == 0:
                messages[j] = "no responses: not estimable"
            else:
                which = "correctly" if item_correct[j] == item_presented[j] else "wrongly"
                messages[j] = (f"all {int(item_presented[j])} examinees answered it {which}: no finite difficulty, "
                               "not identified; not estimable")
        messages = tuple(messages)
    examinee_presented = data.number_correct()[1]
    without_responses = int(np.sum(examinee_presented == 0))

    n_parameters = layout.size
    n_answering = data.n_examinees - without_responses
    if n_answering < 5 * n_parameters:
        warnings.append(f"{n_answering} examinees for {n_parameters} parameters: far too few for stable "
                        "estimates (a few hundred per item is usual); treat every estimate as not identified")
    return Calibration(
        model=model, items=all_items, se=se_all, se_intercept=se_d, log_likelihood=em.loglik, n_parameters=n_parameters,
        n_examinees=data.n_examinees - without_responses, iterations=em.e_steps, converged=converged,
        item_converged=item_converged, item_messages=messages,
        latent_mean=latent[0], latent_sd=latent[1], fixed=is_fixed, se_method=used_method,
        latent_se=latent_se, information_condition=condition, at_bound=at_bound, warnings=tuple(warnings),
        latent_estimated=estimate_latent, not_estimable=not_estimable, examinees_without_responses=without_responses,
    )


def _item_report(items: ItemParameters, change, converged, tol, free, n_items):
    """(item_converged (n_items,), message per item) for the free items' estimates."""
    moving = np.zeros(free.size, dtype=bool) if converged else change >= tol
    finite = np.isfinite(items.a) & np.isfinite(items.b)
    odd_a = finite & ((items.a < _SUSPECT_A[0]) | (items.a > _SUSPECT_A[1]))
    odd_b = finite & ~odd_a & (np.abs(items.b) > _SUSPECT_B)
    flagged = moving | ~finite | odd_a | odd_b
    ok = np.ones(n_items, dtype=bool)
    ok[free[flagged]] = False
    messages = [""] * n_items
    for position in np.flatnonzero(flagged):  # the few items at fault, to be named
        reasons = []
        if moving[position]:
            reasons.append(f"still moving: about {change[position]:.2g} from its optimum (tol {tol:g})")
        if not finite[position]:
            reasons.append("non-finite estimate")
        if odd_a[position]:
            reasons.append(f"slope a = {items.a[position]:.3g} outside [{_SUSPECT_A[0]}, {_SUSPECT_A[1]}]; "
                           "probably not identified")
        if odd_b[position]:
            reasons.append(f"difficulty b = {items.b[position]:.3g} beyond +-{_SUSPECT_B:g}; probably not identified")
        messages[free[position]] = "; ".join(reasons)
    return ok, tuple(messages)


def _squarem(em: _EM, x, tol, max_iterations, accelerate, callback):
    """EM steps, SQUAREM-accelerated: returns (x, converged, last change per free item)."""
    converged = False
    change = np.full(em.layout.n_free, np.inf)
    step_max = 1.0
    rate = 0.0  # EM's linear convergence rate, estimated from two successive steps
    while em.e_steps < max_iterations:
        x1, objective0 = em.update(x)
        dx = em.layout.natural(x1) - em.layout.natural(x)
        # A step of size s at rate r leaves about s r / (1 - r) to go: judge that,
        # not the step, so a slow EM does not stop far from the optimum.
        change = em.layout.item_change(dx) / (1.0 - rate)
        # The latent mean and log SD must have settled too, not only the items.
        max_change = max(float(np.max(change, initial=0.0)), em.layout.latent_change(dx) / (1.0 - rate))
        if callback is not None:
            callback(em.e_steps, em.loglik, max_change)
        if max_change < tol:
            x, converged = x1, True
            break
        if not accelerate or em.e_steps + 2 > max_iterations:
            x = x1
            continue
        x2, objective1 = em.update(x1)
        r, v = x1 - x, x2 - 2 * x1 + x
        r_norm = float(np.sqrt(r @ r))
        rate = min(float(np.sqrt((x2 - x1) @ (x2 - x1))) / r_norm, 0.99) if r_norm > 0 else 0.0
        v_norm = float(np.sqrt(v @ v))
        s = float(np.sqrt(r @ r)) / v_norm if v_norm > 0 else 1.0
        s = min(max(s, 1.0), step_max)
        if s == step_max:
            step_max *= 4.0
        extrapolated = x + 2 * s * r + s * s * v
        candidate, objective_ext = em.update(extrapolated)
        # float32 E-steps carry ~1e-7 relative noise in the objective.
        slack = 1e-8 + (1e-7 * abs(objective1) if em.dtype == np.float32 else 0.0)
        if np.isfinite(objective_ext) and objective_ext >= objective1 - slack and np.all(np.isfinite(candidate)):
            x = candidate
        else:
            x = x2
            step_max = max(1.0, step_max / 4.0)

    return x, converged, change


def _merge(n_items, free, free_items: ItemParameters, fixed: FixedItems | None) -> ItemParameters:
    a, b, c, upper = np.zeros(n_items), np.zeros(n_items), np.zeros(n_items), np.ones(n_items)
    a[free], b[free], c[free] = free_items.a, free_items.b, free_items.c
    upper[free] = free_items.upper
    four = free_items.d is not None
    if fixed is not None:
        a[fixed.columns], b[fixed.columns], c[fixed.columns] = fixed.items.a, fixed.items.b, fixed.items.c
        upper[fixed.columns] = fixed.items.upper
        four = four or fixed.items.d is not None
    return ItemParameters(a, b, c, upper if four else None)


# Above this many item parameters the information is kept item by item.
_FULL_COVARIANCE_LIMIT = 600
# The full observed information needs sum_i w_iq x_ij x_il for every node and item
# pair (n Q J^2 products, 1.2e10 for 20,000 x 100 on 61 nodes); above this many the
# full cross-product information is used instead (it differs from the observed one by
# O(N^-1/2) relatively, and N is then large), and ``Calibration.se_method`` says so.
_FULL_OBSERVED_PRODUCTS = 2.5e10
# Scaled to a unit diagonal, an information matrix with a larger condition number
# than this is reported as near singular (its inverse is then mostly rounding).
CONDITION_WARNING = 1e8


@dataclass(frozen=True)
class _Information:
    """What the SE step hands back: per-item covariance blocks and diagnostics.

    cov: (n_free, k, k) covariance of each free item's working parameters (NaN in
    the rows of parameters held at a bound); latent_cov: (2, 2) of (mean, log sd)
    or None; at_bound: (n_free, k) bool; condition: the condition number of the
    information matrix of the parameters not at a bound, scaled to a unit
    diagonal; positive_definite: False when that matrix is not.
    """

    cov: np.ndarray
    latent_cov: np.ndarray | None
    at_bound: np.ndarray
    condition: float
    positive_definite: bool
    method: str = "observed"


def _second_derivatives(work: np.ndarray, nodes: np.ndarray, model: str) -> np.ndarray:
    """d^2 P / d(working parameters)^2, (n_free, Q, k, k), for (log a, d[, logit c[, logit u]]).

    With P = c + (u - c) s, z = a x + d, s = logistic(z), s' = s (1 - s), s'' = s' (1 - 2 s):
    P_aa = (u - c) (s'' (a x)^2 + s' a x), P_ad = (u - c) s'' a x, P_dd = (u - c) s'',
    P_ac = -c (1 - c) s' a x, P_dc = -c (1 - c) s', P_cc = (1 - s) c (1 - c) (1 - 2 c),
    P_au = u (1 - u) s' a x, P_du = u (1 - u) s', P_uu = s u (1 - u) (1 - 2 u), P_cu = 0.
    """
    a = np.exp(work[:, :1])
    s = 1.0 / (1.0 + np.exp(-(a * nodes + work[:, 1:2])))
    c, u = _asymptotes(work, model, keep_dims=True)
    s1 = s * (1.0 - s)
    s2 = s1 * (1.0 - 2.0 * s)
    ax = a * nodes
    k = work.shape[1]
    out = np.zeros(work.shape[:1] + (nodes.size, k, k))
    out[:, :, 0, 0] = (u - c) * (s2 * ax**2 + s1 * ax)
    out[:, :, 0, 1] = out[:, :, 1, 0] = (u - c) * s2 * ax
    out[:, :, 1, 1] = (u - c) * s2
    if model == "4pl":  # logit of the upper asymptote u
        out[:, :, 0, 3] = out[:, :, 3, 0] = u * (1 - u) * s1 * ax
        out[:, :, 1, 3] = out[:, :, 3, 1] = u * (1 - u) * s1
        out[:, :, 3, 3] = s * u * (1 - u) * (1 - 2 * u)
    if model in _GUESSING:
        out[:, :, 0, 2] = out[:, :, 2, 0] = -c * (1 - c) * s1 * ax
        out[:, :, 1, 2] = out[:, :, 2, 1] = -c * (1 - c) * s1
        out[:, :, 2, 2] = (1 - s) * c * (1 - c) * (1 - 2 * c)
    return out


def _latent_scores(nodes: np.ndarray, latent) -> tuple[np.ndarray, np.ndarray]:
    """Score (Q, 2) and Hessian (Q, 2, 2) of log pi_q in (mean, log sd).

    pi_q = exp(-u_q^2 / 2) / Z with u_q = (x_q - mean) / sd, normalised over the grid:
    d(-u^2/2) = (u / sd, u^2), d^2(-u^2/2) = [[-1/sd^2, -2u/sd], [-2u/sd, -2u^2]],
    minus the pi-weighted mean (and, for the Hessian, covariance) of those.
    """
    mean, sd = latent
    u = (nodes - mean) / sd
    w = np.exp(-0.5 * u**2)
    w /= w.sum()
    raw = np.column_stack([u / sd, u**2])
    raw_hess = np.empty((nodes.size, 2, 2))
    raw_hess[:, 0, 0] = -1.0 / sd**2
    raw_hess[:, 0, 1] = raw_hess[:, 1, 0] = -2.0 * u / sd
    raw_hess[:, 1, 1] = -2.0 * u**2
    centred = raw - w @ raw
    cov = np.einsum("q,qa,qb->ab", w, centred, centred)
    return centred, raw_hess - np.einsum("q,qab->ab", w, raw_hess) - cov


def _node_products(post: np.ndarray, indicators: np.ndarray, dtype, negligible: float = 1e-9) -> np.ndarray:
    """sum_i post_iq z_ij z_il for every node q and column pair: (Q, m, m).

    indicators z: (n, m), e.g. the correct indicators, or those and the presented
    ones side by side. Rows are sorted by their posterior mean, so that the
    examinees with weight above ``negligible`` at node q (posteriors are unimodal
    in practice) form one contiguous run; each node costs one symmetric rank-k
    update (BLAS syrk) over its run only. Weights below ``negligible`` change the
    sums by less than that fraction of a single examinee's term.
    """
    from scipy.linalg import blas  # imported late, slow to load

    syrk = blas.ssyrk if dtype == np.float32 else blas.dsyrk
    n, n_nodes = post.shape
    m = indicators.shape[1]
    out = np.zeros((n_nodes, m, m))
    if m == 0 or n == 0:
        return out
    order = np.argsort(post @ np.arange(n_nodes), kind="stable")
    post, indicators = post[order], indicators[order].astype(dtype)
    heavy = post > negligible
    for q in range(n_nodes):
        rows = np.flatnonzero(heavy[:, q])
        if rows.size == 0:
            continue
        run = slice(rows[0], rows[-1] + 1)
        scaled = indicators[run] * np.sqrt(post[run, q]).astype(dtype)[:, None]
        upper = syrk(1.0, scaled.T, trans=0)  # scaled^T scaled, upper triangle
        out[q] = np.triu(upper) + np.triu(upper, 1).T
    return out


def _complete_data_hessian(work, nodes, model, correct, presented) -> np.ndarray:
    """Hessian of sum_q r_jq log P_jq + (n_jq - r_jq) log(1 - P_jq) per item, (n_free, k, k).

    sum_q [e_q d2P_q + f_q dP_q dP_q^T] with e = (r - n P) / (P (1 - P)) and
    f = d e / dP = -(n P (1 - P) + (r - n P) (1 - 2 P)) / (P (1 - P))^2.
    """
    p, dp = _curves(work, nodes, model)
    pq = p * (1.0 - p)
    e = (correct - presented * p) / pq
    f = -(presented * pq + (correct - presented * p) * (1.0 - 2.0 * p)) / pq**2
    d2p = _second_derivatives(work, nodes, model)
    return np.einsum("jq,jqab->jab", e, d2p) + np.einsum("jq,jqa,jqb->jab", f, dp, dp)


def _bound_mask(work: np.ndarray) -> np.ndarray:
    """(n_free, k) True where a working parameter sits at its bound (1e-6 inside counts)."""
    k = work.shape[1]
    return (work <= _LOWER[:k] + 1e-6) | (work >= _UPPER[:k] - 1e-6)


def _free_map(layout: _Layout, n_full: int) -> np.ndarray | None:
    """T (n_full, layout.size) with full = T free: per-item parameters from the packed
    vector (the shared slope of the Rasch model fills every item's log a); None if identity."""
    if not layout.shared_slope:
        return None
    n_free, k = layout.n_free, layout.k
    t = np.zeros((n_full, layout.size))
    item = np.arange(n_free)
    t[item * k, n_free * (k - 1)] = 1.0
    for column in range(1, k):
        t[item * k + column, item * (k - 1) + column - 1] = 1.0
    if layout.estimate_latent:
        t[n_full - 2, layout.size - 2] = t[n_full - 1, layout.size - 1] = 1.0
    return t


def _invert_information(info: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """Covariance (NaN rows/columns for ``held``), scaled condition number, positive definiteness."""
    keep = np.flatnonzero(~held)
    cov = np.full(info.shape, np.nan)
    if keep.size == 0:
        return cov, 1.0, True
    sub = info[np.ix_(keep, keep)]
    sub = 0.5 * (sub + sub.T)
    diag = np.diag(sub)
    scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
    eig = np.linalg.eigvalsh(sub * scale[:, None] * scale[None, :])
    positive = bool(eig[0] > 0 and np.all(diag > 0))
    condition = float(eig[-1] / eig[0]) if positive else math.inf
    try:
        inverse = np.linalg.inv(sub)
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(sub)
    cov[np.ix_(keep, keep)] = inverse
    return cov, condition, positive


def _information(em: _EM, work, latent, layout: _Layout, method: str) -> _Information:
    """Covariance of the estimates from the observed or the cross-product information.

    With g_i the gradient of examinee i's marginal log-likelihood, Louis' (1982)
    identity gives the observed information (the negative Hessian of the marginal
    log-likelihood, equal to what Oakes' (1999) identity gives):

        I_obs = sum_i g_i g_i^T - sum_i E_i[s_i s_i^T] - E[H_complete] + prior curvature

    where s_i(x_q) is the complete-data score of examinee i at node q (items and, if
    estimated, the latent mean and log sd), E_i the posterior mean over nodes, and
    E[H_complete] the Hessian of the expected complete-data log-likelihood (from the
    expected counts r_jq, n_jq). The item-pair blocks of sum_i E_i[s_i s_i^T] need
    C11[q, j, l] = sum_i w_iq x_ij x_il (and, with missing responses, the same with
    presented indicators), one product per chunk of examinees.
    ``method='crossprod'`` keeps only sum_i g_i g_i^T (+ priors): mirt's
    SE.type = 'crossprod'. Parameters at a bound are held fixed (their rows and
    columns are dropped before inverting). Up to ``_FULL_COVARIANCE_LIMIT``
    parameters the whole matrix is inverted (the observed one while C11 needs at most
    ``_FULL_OBSERVED_PRODUCTS`` products, else the cross-product one, as the returned
    ``method`` says); beyond, each item's own block is, which ignores the covariances
    between items' estimates (and the latent parameters).
    """
    n_free, k = work.shape
    nodes = em.nodes
    n_nodes = nodes.size
    observed = method == "observed"
    p, dp = _curves(work, nodes, em.model)
    a_tab = dp / (p * (1 - p))[:, :, None]  # (n_free, Q, k)
    b_tab = dp / (1 - p)[:, :, None]
    with_latent = layout.estimate_latent
    n_full = n_free * k + (2 if with_latent else 0)
    n_examinees = em.data.n_examinees
    complete = not em.data.sparse and bool(np.all(cast(np.ndarray, em.data.source) >= 0))
    products = n_examinees * n_nodes * n_free**2 * (1 if complete else 4)
    full = layout.size <= _FULL_COVARIANCE_LIMIT
    if full and observed and products > _FULL_OBSERVED_PRODUCTS:
        observed, method = False, "crossprod"
    product_dtype = np.float64 if products <= 2e9 else np.float32
    held_items = _bound_mask(work)
    if layout.shared_slope:
        held_items[:, 0] = held_items[0, 0]
    _, _, prior_curv = _prior_terms(work, em.priors, em.model)
    lat_score, lat_hess = _latent_scores(nodes, latent) if with_latent else (None, None)

    tables = np.concatenate([a_tab.transpose(1, 2, 0), b_tab.transpose(1, 2, 0)], axis=1).reshape(n_nodes, -1)
    tables32 = tables.astype(np.float32)
    r = np.zeros((n_free, n_nodes))
    n = np.zeros((n_free, n_nodes))
    mass = np.zeros(n_nodes)
    if full:
        xpd = np.zeros((n_full, n_full))
        c11 = np.zeros((n_nodes, n_free, n_free)) if observed else None
        c10 = np.zeros((n_nodes, n_free, n_free)) if observed and not complete else None
        c00 = np.zeros((n_nodes, n_free, n_free)) if observed and not complete else None
    else:
        xpd = np.zeros((n_free, k, k))
    for block, post in em.posteriors(work, latent):
        rb, nb = block.expected_counts(post)
        r += rb
        n += nb
        mass += post.sum(axis=0)
        if not full:
            xpd += _item_block_crossproduct(block, post, tables, k, n_free)
            continue
        correct, presented = block.indicators()
        # The score vectors and their cross-product are formed in float32 (SEs to ~1e-6
        # relative), accumulated over blocks in float64.
        proj = (post.astype(np.float32) @ tables32).reshape(block.n, 2, k, n_free)
        correct32, presented32 = correct.astype(np.float32), presented.astype(np.float32)
        g = correct32[:, None, :] * proj[:, 0] - presented32[:, None, :] * proj[:, 1]  # (n, k, n_free)
        flat = g.transpose(0, 2, 1).reshape(block.n, -1)
        if with_latent:
            flat = np.concatenate([flat, (post @ lat_score).astype(np.float32)], axis=1)
        xpd += (flat.T @ flat).astype(np.float64)
        if observed and complete:
            c11 += _node_products(post, correct, product_dtype)
        elif observed:
            both = _node_products(post, np.concatenate([correct, presented], axis=1), product_dtype)
            c11 += both[:, :n_free, :n_free]
            c10 += both[:, :n_free, n_free:]
            c00 += both[:, n_free:, n_free:]

    if observed:
        hessian_items = _complete_data_hessian(work, nodes, em.model, r, n)
        # Diagonal blocks of sum_i E_i[s_ij s_ij^T]: x^2 = x, so they need only r and n.
        outer_items = (np.einsum("jq,jqa,jqb->jab", r, a_tab - b_tab, a_tab - b_tab)
                       + np.einsum("jq,jqa,jqb->jab", n - r, b_tab, b_tab))
    if not full:
        info = xpd + prior_curv
        if observed:
            info = info - outer_items - hessian_items
        cov = np.full((n_free, k, k), np.nan)
        conditions, positive = [], True
        for j in range(n_free):  # small k x k blocks, one per item of a large bank
            cov[j], condition, ok = _invert_information(info[j], held_items[j])
            conditions.append(condition)
            positive &= ok
        return _Information(cov, None, held_items, float(max(conditions, default=1.0)), positive, method)

    info = xpd
    item_index = np.arange(n_free * k).reshape(n_free, k)
    info[item_index[:, :, None], item_index[:, None, :]] += prior_curv
    if observed:
        aq, bq = a_tab.transpose(1, 0, 2), b_tab.transpose(1, 0, 2)  # (Q, n_free, k)
        assert c11 is not None  # allocated above when full and observed
        if complete:
            c10 = np.broadcast_to(r.T[:, :, None], c11.shape)
            c00 = np.broadcast_to(mass[:, None, None], c11.shape)
        assert c10 is not None and c00 is not None  # allocated above unless complete, then broadcast
        outer = (np.einsum("qja,qlb,qjl->jalb", aq, aq, c11) - np.einsum("qja,qlb,qjl->jalb", aq, bq, c10)
                 - np.einsum("qja,qlb,qlj->jalb", bq, aq, c10) + np.einsum("qja,qlb,qjl->jalb", bq, bq, c00))
        outer = outer.reshape(n_free * k, n_free * k)
        # The diagonal blocks by the exact x^2 = x form (C11's diagonal is r, up to rounding).
        outer[item_index[:, :, None], item_index[:, None, :]] = outer_items
        info[: n_free * k, : n_free * k] -= outer
        info[item_index[:, :, None], item_index[:, None, :]] -= hessian_items
        if with_latent:
            assert lat_score is not None and lat_hess is not None  # computed above when with_latent
            cross = np.einsum("qb,jq,jqa->jab", lat_score, r, a_tab) - np.einsum("qb,jq,jqa->jab", lat_score, n, b_tab)
            info[: n_free * k, n_free * k:] -= cross.reshape(n_free * k, 2)
            info[n_free * k:, : n_free * k] -= cross.reshape(n_free * k, 2).T
            info[n_free * k:, n_free * k:] -= (np.einsum("q,qa,qb->ab", mass, lat_score, lat_score)
                                               + np.einsum("q,qab->ab", mass, lat_hess))
    held_full = np.concatenate([held_items.ravel(), np.zeros(2 if with_latent else 0, dtype=bool)])
    t = _free_map(layout, n_full)
    if t is not None:
        info = t.T @ info @ t
        held = (t.T @ held_full.astype(float)) > 0
    else:
        held = held_full
    cov, condition, positive = _invert_information(info, held)
    if t is not None:
        cov = t @ np.nan_to_num(cov) @ t.T
        cov[held_full, :] = np.nan
        cov[:, held_full] = np.nan
    item_cov = cov[item_index[:, :, None], item_index[:, None, :]]
    latent_cov = cov[n_free * k:, n_free * k:] if with_latent else None
    return _Information(item_cov, latent_cov, held_items, condition, positive, method)


def _item_block_crossproduct(block, post, tables, k, n_free, max_cells: int = 8_000_000) -> np.ndarray:
    """sum_i g_ij g_ij^T for every item j of one block, (n_free, k, k).

    Responses are grouped by item, so that each item's projections w_i . A_j are
    one batched (responses of j x Q) @ (Q x 2k) product over the examinees who
    answered it, items taken a group at a time to bound memory.
    """
    rows, items, correct = block.triplets()
    order = np.argsort(items, kind="stable")
    rows, items, correct = rows[order], items[order], correct[order]
    counts = np.bincount(items, minlength=n_free)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    width = int(counts.max(initial=0))
    out = np.zeros((n_free, k, k))
    if width == 0:
        return out
    slot = np.arange(items.size) - starts[items]
    # (n_free, Q, 2k): A then B of each item, for the batched products.
    per_item = tables.reshape(tables.shape[0], 2 * k, n_free).transpose(2, 0, 1).astype(np.float32)
    post32 = post.astype(np.float32)
    group = max(1, max_cells // (width * post.shape[1]))
    for first in range(0, n_free, group):
        last = min(first + group, n_free)
        take = (items >= first) & (items < last)
        index = np.zeros((last - first, width), dtype=np.int64)
        x = np.zeros((last - first, width), dtype=np.float32)
        mask = np.zeros((last - first, width), dtype=np.float32)
        local = items[take] - first
        index[local, slot[take]] = rows[take]
        x[local, slot[take]] = correct[take]
        mask[local, slot[take]] = 1.0
        proj = post32[index] @ per_item[first:last]  # (group, width, 2k)
        g = x[:, :, None] * proj[:, :, :k] - mask[:, :, None] * proj[:, :, k:]
        out[first:last] = (g.transpose(0, 2, 1) @ g).astype(np.float64)
    return out


def _se_to_abc(work, cov, model) -> ItemParameters:
    """Delta method from (log a, d, logit c) to (a, b, c)."""
    n, k = work.shape
    a = np.exp(work[:, 0])
    b = -work[:, 1] / a
    jac = np.zeros((n, 4, k))
    jac[:, 0, 0] = a
    jac[:, 1, 0] = -b
    jac[:, 1, 1] = -1.0 / a
    c, upper = _asymptotes(work, model)
    if model in _GUESSING:
        jac[:, 2, 2] = c * (1 - c)
    if model == "4pl":
        jac[:, 3, 3] = upper * (1 - upper)
    var = np.einsum("nik,nkl,nil->ni", jac, np.nan_to_num(cov), jac)
    se = np.sqrt(np.maximum(var, 0.0))
    held = np.isnan(np.diagonal(cov, axis1=1, axis2=2))
    se[held[:, 0], 0] = np.nan
    se[held[:, 0] | held[:, 1], 1] = np.nan
    if model in _GUESSING:
        se[held[:, 2], 2] = np.nan
    if model == "4pl":
        se[held[:, 3], 3] = np.nan
    return ItemParameters(se[:, 0], se[:, 1], se[:, 2], se[:, 3] if model == "4pl" else None)
