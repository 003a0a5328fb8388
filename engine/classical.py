"""Classical item statistics, distractor analysis and Mantel-Haenszel DIF.

Responses are (n_examinees, n_items) with 1 correct, 0 wrong, -1 not presented;
an item's statistics use the examinees it was presented to, and the total score
is the number correct over the items each examinee was presented.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.responses import check_responses, group_sums


@dataclass(frozen=True)
class ClassicalStatistics:
    """p_value, point_biserial (item vs total), item_rest (item vs total without the
    item) and n_presented, each (n_items,); kr20 is KR-20 over complete rows."""

    p_value: np.ndarray
    point_biserial: np.ndarray
    item_rest: np.ndarray
    n_presented: np.ndarray
    kr20: float


def _weighted_correlation(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Column-wise Pearson correlation of x[:, j] and y[:, j] over rows with w[:, j] = 1."""
    n = w.sum(axis=0)
    mx, my = (w * x).sum(axis=0) / n, (w * y).sum(axis=0) / n
    cov = (w * x * y).sum(axis=0) / n - mx * my
    vx = (w * x * x).sum(axis=0) / n - mx**2
    vy = (w * y * y).sum(axis=0) / n - my**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.sqrt(vx * vy)


def classical_statistics(responses: np.ndarray) -> ClassicalStatistics:
    """Proportion correct, point-biserial and item-rest correlations, KR-20.

    KR-20 = k / (k - 1) (1 - sum_j p_j q_j / var(X)) over examinees who were
    presented every item (NaN if none).
    """
    responses = check_responses(responses)
    presented = (responses >= 0).astype(np.float64)
    correct = (responses == 1).astype(np.float64)
    total = correct.sum(axis=1)
    n_presented = presented.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = correct.sum(axis=0) / n_presented
    totals = np.broadcast_to(total[:, None], correct.shape)
    point_biserial = _weighted_correlation(correct, totals, presented)
    item_rest = _weighted_correlation(correct, totals - correct, presented)
    complete = presented.all(axis=1)
    kr20 = float("nan")
    k = responses.shape[1]
    if complete.sum() > 1 and k > 1:
        x = correct[complete]
        p = x.mean(axis=0)
        variance = x.sum(axis=1).var()
        if variance > 0:
            kr20 = float(k / (k - 1) * (1 - np.sum(p * (1 - p)) / variance))
    return ClassicalStatistics(p_value, point_biserial, item_rest, n_presented, kr20)


@dataclass(frozen=True)
class DistractorAnalysis:
    """Per item and option, each (n_items, n_options): proportion of the examinees
    presented the item who chose the option, the mean total score of those who
    chose it, and the point-biserial of choosing it with the total score (the key
    should be positive, distractors negative)."""

    proportion: np.ndarray
    mean_total: np.ndarray
    point_biserial: np.ndarray


def distractor_analysis(choices: np.ndarray, key: np.ndarray, n_options: int = 4) -> DistractorAnalysis:
    """Option statistics from the chosen options.

    choices: (n_examinees, n_items) integers 0 .. n_options - 1 (the option
    chosen), -1 for not presented or omitted; key: (n_items,) the correct option.
    The total score is the number of keyed options chosen.
    """
    choices = np.asarray(choices)
    key = np.asarray(key)
    presented = (choices >= 0).astype(np.float64)
    total = (choices == key).sum(axis=1).astype(np.float64)
    totals = np.broadcast_to(total[:, None], choices.shape)
    n_items = choices.shape[1]
    proportion = np.empty((n_items, n_options))
    mean_total = np.empty((n_items, n_options))
    point_biserial = np.empty((n_items, n_options))
    with np.errstate(invalid="ignore", divide="ignore"):
        for option in range(n_options):
            chose = (choices == option).astype(np.float64)
            count = chose.sum(axis=0)
            proportion[:, option] = count / presented.sum(axis=0)
            mean_total[:, option] = total @ chose / count
            point_biserial[:, option] = _weighted_correlation(chose, totals, presented)
    return DistractorAnalysis(proportion, mean_total, point_biserial)


@dataclass(frozen=True)
class MantelHaenszelDIF:
    """Per item, each (n_items,): the common odds ratio alpha_MH (reference over
    focal), ETS delta D = -2.35 ln alpha_MH, its standard error, the MH chi-square
    (continuity corrected, 1 df) and p-value, and the ETS class 'A', 'B' or 'C'."""

    alpha: np.ndarray
    delta: np.ndarray
    se_delta: np.ndarray
    chi_square: np.ndarray
    p_value: np.ndarray
    ets_class: np.ndarray


def mantel_haenszel(responses: np.ndarray, focal: np.ndarray, *, matching: np.ndarray | None = None,
                    alpha: float = 0.05) -> MantelHaenszelDIF:
    """Mantel-Haenszel DIF of every item, examinees matched on the total score.

    focal: boolean (n_examinees,), True for the focal group, False for the
    reference group. matching: optional stratifying score (default: number
    correct, studied item included, as ETS does). In each stratum k with
    A/B the reference group's right/wrong and C/D the focal group's:
        alpha_MH = sum A D / N / sum B C / N,  D = -2.35 ln alpha_MH
    (negative D: the item is harder for the focal group). The SE of ln alpha_MH
    is Robins, Breslow & Greenland's (Phillips & Holland, 1987).
    ETS classes (Zwick, 2012): A if |D| < 1 or the MH chi-square is not
    significant at ``alpha``; C if |D| >= 1.5 and |D| is significantly above 1
    (|D| - 1 > z_{1-alpha/2} SE); B otherwise.
    """
    responses = check_responses(responses)
    focal = np.asarray(focal, dtype=bool)
    presented = (responses >= 0).astype(np.float64)
    correct = (responses == 1).astype(np.float64)
    score = correct.sum(axis=1).astype(np.int64) if matching is None else np.asarray(matching)
    _, stratum = np.unique(score, return_inverse=True)
    n_strata = stratum.max() + 1

    def table(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        # (n_strata, n_items) sums of `values` over the rows in each stratum.
        return group_sums(stratum, values * rows[:, None], n_strata)

    ref = ~focal
    a = table(ref, correct)
    b = table(ref, presented) - a
    c = table(focal, correct)
    d = table(focal, presented) - c
    total = a + b + c + d
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(total > 0, 1.0 / total, 0.0)
        r = np.sum(a * d * w, axis=0)
        s = np.sum(b * c * w, axis=0)
        odds = r / s
        delta = -2.35 * np.log(odds)
        # Robins-Breslow-Greenland variance of ln alpha_MH.
        u = np.sum((a + d) * a * d * w**2, axis=0)
        v = np.sum(((a + d) * b * c + (b + c) * a * d) * w**2, axis=0)
        t = np.sum((b + c) * b * c * w**2, axis=0)
        var_log = u / (2 * r**2) + v / (2 * r * s) + t / (2 * s**2)
        se_delta = 2.35 * np.sqrt(var_log)
        n_ref, n_foc = a + b, c + d
        m1, m0 = a + c, b + d
        expected_a = np.sum(n_ref * m1 * w, axis=0)
        var_a = np.sum(np.where(total > 1, n_ref * n_foc * m1 * m0 / (total**2 * (total - 1)), 0.0), axis=0)
        chi_square = (np.abs(a.sum(axis=0) - expected_a) - 0.5) ** 2 / var_a
    from scipy.special import chdtrc, ndtri  # imported late, slow to load

    p_value = chdtrc(1, chi_square)
    z = ndtri(1 - alpha / 2)
    size = np.abs(delta)
    ets = np.where((size < 1.0) | ~(p_value < alpha), "A",
                   np.where((size >= 1.5) & ((size - 1.0) / se_delta > z), "C", "B"))
    return MantelHaenszelDIF(odds, delta, se_delta, chi_square, p_value, ets)
