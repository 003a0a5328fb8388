"""Design studies: simulated candidates through assembly and scoring, and the figures to choose a design by.

:func:`simulate_design` runs ``n`` simulated candidates, each sitting twice (two
independent sittings, for decision consistency), through an assembly design given as a
callable, simulates their responses from their true abilities, scores them with the
scorer the caller passes (the program's own scoring, from the layer that knows it), and
reports:

* conditional standard error of measurement along the ability scale,
  CSEM(theta) = 1 / sqrt(I_form(theta)), averaged over the sittings, for the total and
  each field, and its mean and worst value at the cut points;
* classification accuracy (the decision agrees with the one the true ability earns)
  and consistency (the candidate's two sittings agree), with false pass and false
  fail rates;
* item exposure: each pool item's share of sittings, its maximum and percentiles, and
  how many items exceed the target;
* pairwise overlap: the share of scored items two sittings have in common, over
  random pairs of sittings;
* the spread of test information at the cut points across the sittings' forms, and
  the share of forms within tolerance of each target.

and, for designs whose length or items follow the candidate (adaptive tests,
:func:`engine.adaptive.simulate_cat`), the test length, each cut's own decision and the
precision at the candidate's own ability. :func:`design_report` computes the figures from
the sittings, so every design is judged by the same code.

Everything is arrays: the sittings' forms are an indicator matrix (sittings x pool),
so the information of every form at every grid point is one sparse product.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from engine.assembly import InformationTarget, Pool
from engine.models import item_information, probability
from engine.responses import MISSING

__all__ = ["Assembler", "Cut", "Scorer", "design_report", "simulate_design"]

# assemble(rng, exposure_counts (n_pool,), sittings so far) -> pool indices of one form
Assembler = Callable[[np.random.Generator, np.ndarray, int], np.ndarray]
# score(responses (n, n_pool) with -1 not presented) -> (theta (n, 1 + n_fields), passed (n,))
Scorer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Cut:
    """A pass mark on the ability scale: for the total (field None) or one field."""

    name: str
    theta: float
    field: int | None = None


def simulate_design(name: str, pool: Pool, assemble: Assembler, score: Scorer, targets: tuple[InformationTarget, ...],
                    cuts: tuple[Cut, ...], theta: np.ndarray, rng: np.random.Generator, *, tolerance: float,
                    exposure_target: float, field_names: tuple[str, ...], scale: tuple[float, float] = (1.0, 0.0),
                    grid: np.ndarray | None = None, overlap_pairs: int = 2000) -> dict:
    """Run ``len(theta)`` candidates twice through ``assemble`` and ``score``; the report as plain data (JSON-ready).

    scale: (slope, intercept) to report standard errors and the grid in scale units.
    """
    theta = np.asarray(theta, dtype=float)
    n = len(theta)
    counts = np.zeros(pool.size, dtype=np.int64)
    started = time.perf_counter()
    forms = []
    for s in range(2 * n):
        form = np.asarray(assemble(rng, counts, s), dtype=np.int64)
        forms.append(form)
        counts[form] += 1
    assembly_seconds = time.perf_counter() - started

    # Responses: each sitting answers its own form's items only (the rest is -1, not presented).
    true = np.r_[theta, theta]
    responses = np.full((2 * n, pool.size), MISSING, dtype=np.int8)
    for s, form in enumerate(forms):
        p = probability(true[s:s + 1], pool.items.subset(form))[0]
        responses[s, form] = rng.random(len(form)) < p
    started = time.perf_counter()
    estimate, passed = score(responses)
    scoring_seconds = time.perf_counter() - started
    return design_report(name, pool, forms, estimate, passed, targets, cuts, theta, rng, tolerance=tolerance,
                         exposure_target=exposure_target, field_names=field_names, scale=scale, grid=grid,
                         overlap_pairs=overlap_pairs,
                         seconds={"assembly": round(assembly_seconds, 3), "scoring": round(scoring_seconds, 3),
                                  "assembly_per_sitting_ms": round(1000 * assembly_seconds / (2 * n), 3)})


def design_report(name: str, pool: Pool, forms: list[np.ndarray], estimate: np.ndarray, passed: np.ndarray,
                  targets: tuple[InformationTarget, ...], cuts: tuple[Cut, ...], theta: np.ndarray,
                  rng: np.random.Generator, *, tolerance: float, exposure_target: float,
                  field_names: tuple[str, ...], scale: tuple[float, float] = (1.0, 0.0),
                  grid: np.ndarray | None = None, overlap_pairs: int = 2000, seconds: dict | None = None) -> dict:
    """The figures of a design from its sittings: the report of :func:`simulate_design` (JSON-ready).

    forms: 2n arrays of pool indices, the scored items of each sitting (sitting i and
    n + i are the same candidate, true ability theta[i]); lengths may differ (adaptive
    tests). estimate: (2n, 1 + n_fields) the scored theta (total, then each field),
    passed: (2n,) the program's decision. Besides the figures listed in the module
    docstring: the test length, each cut's own decision (theta estimate against the
    cut's theta) and the precision at the candidates' own abilities,
    CSEM_s = 1 / sqrt(I_s(theta_s)) for sitting s, binned along the grid, with the
    empirical RMSE of the estimate in each bin (what adaptive tests are judged by).
    """
    theta = np.asarray(theta, dtype=float)
    n = len(theta)
    n_fields = len(field_names)
    forms = [np.asarray(f, dtype=np.int64) for f in forms]
    sittings = len(forms)
    lengths = np.array([len(f) for f in forms])
    counts = np.bincount(np.concatenate(forms), minlength=pool.size)
    indicator = sparse.csr_array((np.ones(lengths.sum()), np.concatenate(forms), np.r_[0, np.cumsum(lengths)]),
                                 shape=(sittings, pool.size))
    true = np.r_[theta, theta]

    slope, intercept = scale
    grid = np.linspace(-3.0, 3.0, 25) if grid is None else np.asarray(grid, dtype=float)
    info = item_information(grid, pool.items)  # (n_grid, n_pool)
    csem = {}
    scopes = [("total", np.ones(pool.size, dtype=bool))] + [(field_names[f], pool.field == f) for f in range(n_fields)]
    for label, in_scope in scopes:
        form_info = indicator @ (info * in_scope).T  # (sittings, n_grid)
        csem[label] = (slope / np.sqrt(form_info)).mean(axis=0).tolist()

    near_band = 0.25
    at_cuts = {}
    for cut in cuts:
        in_scope = np.ones(pool.size, dtype=bool) if cut.field is None else pool.field == cut.field
        values = indicator @ (item_information(np.array([cut.theta]), pool.items)[0] * in_scope)
        se = slope / np.sqrt(values)
        # An adaptive test is precise where the candidate is: what counts at a cut is the
        # sittings of the candidates near it.
        near = np.abs(true - cut.theta) <= near_band
        at_cuts[cut.name] = {"theta": cut.theta, "scale": intercept + slope * cut.theta,
                             "csem_mean": float(se.mean()), "csem_max": float(se.max()),
                             "csem_near_mean": float(se[near].mean()) if near.any() else None,
                             "near_sittings": int(near.sum())}

    # Precision at each candidate's own ability, binned along the grid.
    own_information = np.array([item_information(true[s:s + 1], pool.items.subset(form))[0].sum()
                                for s, form in enumerate(forms)])
    edges = np.r_[-np.inf, (grid[1:] + grid[:-1]) / 2, np.inf]
    bins = np.digitize(true, edges[1:-1])
    error = estimate[:, 0] - true
    csem_at_ability, rmse_at_ability, bin_sittings = [], [], []
    for g in range(len(grid)):
        mine = bins == g
        bin_sittings.append(int(mine.sum()))
        csem_at_ability.append(float((slope / np.sqrt(own_information[mine])).mean()) if mine.any() else None)
        rmse_at_ability.append(float(slope * np.sqrt(np.mean(error[mine] ** 2))) if mine.any() else None)

    truly_passes = np.ones(n, dtype=bool)
    for cut in cuts:
        truly_passes &= theta >= cut.theta  # one ability drives every field in this simulation
    first, second = passed[:n], passed[n:]
    classification = {
        "accuracy": float(np.mean(np.r_[first, second] == np.r_[truly_passes, truly_passes])),
        "consistency": float(np.mean(first == second)),
        "false_pass": float(np.mean(np.r_[first & ~truly_passes, second & ~truly_passes])),
        "false_fail": float(np.mean(np.r_[~first & truly_passes, ~second & truly_passes])),
        "true_pass_rate": float(truly_passes.mean()),
        "observed_pass_rate": float(np.r_[first, second].mean()),
        "rmse_total_scale": float(slope * np.sqrt(np.mean((estimate[:, 0] - true) ** 2))),
        # Each part of the rule on its own: the score (total or field) against its cut.
        "cuts": {cut.name: _decision_figures(estimate[:, 0 if cut.field is None else 1 + cut.field] >= cut.theta,
                                             theta >= cut.theta)
                 for cut in cuts},
    }

    rates = counts / sittings
    used = rates > 0
    exposure = {
        "target": exposure_target,
        "max": float(rates.max()),
        "p50": float(np.percentile(rates, 50)),
        "p90": float(np.percentile(rates, 90)),
        "p99": float(np.percentile(rates, 99)),
        "mean": float(rates.mean()),
        "above_target": int((rates > exposure_target).sum()),
        "unused": int((~used).sum()),
        "share_used": float(used.mean()),
        "pool_items": int(pool.size),
        "sorted": np.sort(rates)[::-1][:min(pool.size, 400)].round(5).tolist(),
    }

    pairs = min(overlap_pairs, sittings * (sittings - 1) // 2)
    first_index = rng.integers(0, sittings, pairs)
    second_index = (first_index + rng.integers(1, sittings, pairs)) % sittings
    # Shared items over the pair's mean length (the test length when every sitting has the same).
    shared = (np.asarray(indicator[first_index].multiply(indicator[second_index]).sum(axis=1)).ravel()
              / ((lengths[first_index] + lengths[second_index]) / 2))
    overlap = {"mean": float(shared.mean()), "p95": float(np.percentile(shared, 95)), "max": float(shared.max()),
               "pairs": int(pairs)}

    information = {}
    wanted = np.array([t.information for t in targets])
    for k, target in enumerate(targets):
        in_scope = np.ones(pool.size, dtype=bool) if target.field is None else pool.field == target.field
        values = indicator @ (item_information(np.array([target.theta]), pool.items)[0] * in_scope)
        deviation = values / wanted[k] - 1.0
        information[target.name] = {
            "target": float(target.information), "min": float(values.min()), "mean": float(values.mean()),
            "max": float(values.max()), "sd": float(values.std()),
            "worst_deviation": float(np.abs(deviation).max()),
            "within_tolerance": float(np.mean(np.abs(deviation) <= tolerance + 1e-9)),
            "values": np.quantile(values, np.linspace(0, 1, 41)).round(5).tolist(),
        }

    field_lengths = np.array([np.bincount(pool.field[f], minlength=n_fields) for f in forms])
    length = {"mean": float(lengths.mean()), "min": int(lengths.min()), "p10": float(np.percentile(lengths, 10)),
              "p50": float(np.percentile(lengths, 50)), "p90": float(np.percentile(lengths, 90)),
              "max": int(lengths.max()),
              "fields_mean": {field_names[f]: float(field_lengths[:, f].mean()) for f in range(n_fields)}}
    return {
        "design": name, "candidates": n, "sittings": sittings, "items_per_form": int(lengths[0]),
        "length": length,
        "distinct_forms": len({f.tobytes() for f in forms}),
        "grid_theta": grid.tolist(), "grid_scale": (intercept + slope * grid).tolist(), "csem": csem,
        "csem_at_ability": csem_at_ability, "rmse_at_ability": rmse_at_ability, "grid_sittings": bin_sittings,
        "cuts": at_cuts, "classification": classification, "exposure": exposure, "overlap": overlap,
        "information": information, "tolerance": tolerance, "seconds": seconds or {},
    }


def _decision_figures(decided: np.ndarray, truth: np.ndarray) -> dict:
    """Accuracy and consistency of one pass/fail decision over 2n sittings (i and n + i: one candidate)."""
    n = len(truth)
    both = np.r_[truth, truth]
    return {"accuracy": float(np.mean(decided == both)), "consistency": float(np.mean(decided[:n] == decided[n:])),
            "false_pass": float(np.mean(decided & ~both)), "false_fail": float(np.mean(~decided & both))}
