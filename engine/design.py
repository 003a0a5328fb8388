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

Everything is arrays: the sittings' forms are an indicator matrix (sittings x pool),
so the information of every form at every grid point is one sparse product.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import sparse

from engine.assembly import InformationTarget, Pool
from engine.models import item_information, probability
from engine.responses import MISSING

__all__ = ["Scorer", "Assembler", "simulate_design"]

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
    n_fields = len(field_names)
    counts = np.zeros(pool.size, dtype=np.int64)
    started = time.perf_counter()
    forms = []
    for s in range(2 * n):
        form = np.asarray(assemble(rng, counts, s), dtype=np.int64)
        forms.append(form)
        counts[form] += 1
    assembly_seconds = time.perf_counter() - started
    sittings = 2 * n
    length = len(forms[0])
    indicator = sparse.csr_array((np.ones(sum(len(f) for f in forms)), np.concatenate(forms),
                                  np.r_[0, np.cumsum([len(f) for f in forms])]), shape=(sittings, pool.size))

    # Responses: each sitting answers its own form's items only (the rest is -1, not presented).
    true = np.r_[theta, theta]
    responses = np.full((sittings, pool.size), MISSING, dtype=np.int8)
    for s, form in enumerate(forms):
        p = probability(true[s:s + 1], pool.items.subset(form))[0]
        responses[s, form] = rng.random(len(form)) < p
    started = time.perf_counter()
    estimate, passed = score(responses)
    scoring_seconds = time.perf_counter() - started

    slope, intercept = scale
    grid = np.linspace(-3.0, 3.0, 25) if grid is None else np.asarray(grid, dtype=float)
    info = item_information(grid, pool.items)  # (n_grid, n_pool)
    csem = {}
    scopes = [("total", np.ones(pool.size, dtype=bool))] + [(field_names[f], pool.field == f) for f in range(n_fields)]
    for label, in_scope in scopes:
        form_info = indicator @ (info * in_scope).T  # (sittings, n_grid)
        csem[label] = (slope / np.sqrt(form_info)).mean(axis=0).tolist()

    at_cuts = {}
    for cut in cuts:
        in_scope = np.ones(pool.size, dtype=bool) if cut.field is None else pool.field == cut.field
        values = indicator @ (item_information(np.array([cut.theta]), pool.items)[0] * in_scope)
        se = slope / np.sqrt(values)
        at_cuts[cut.name] = {"theta": cut.theta, "scale": intercept + slope * cut.theta,
                             "csem_mean": float(se.mean()), "csem_max": float(se.max())}

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
        "pool_items": int(pool.size),
        "sorted": np.sort(rates)[::-1][:min(pool.size, 400)].round(5).tolist(),
    }

    pairs = min(overlap_pairs, sittings * (sittings - 1) // 2)
    first_index = rng.integers(0, sittings, pairs)
    second_index = (first_index + rng.integers(1, sittings, pairs)) % sittings
    shared = np.asarray(indicator[first_index].multiply(indicator[second_index]).sum(axis=1)).ravel() / length
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

    return {
        "design": name, "candidates": n, "sittings": sittings, "items_per_form": int(length),
        "distinct_forms": int(len({f.tobytes() for f in forms})),
        "grid_theta": grid.tolist(), "grid_scale": (intercept + slope * grid).tolist(), "csem": csem,
        "cuts": at_cuts, "classification": classification, "exposure": exposure, "overlap": overlap,
        "information": information, "tolerance": tolerance,
        "seconds": {"assembly": round(assembly_seconds, 3), "scoring": round(scoring_seconds, 3),
                    "assembly_per_sitting_ms": round(1000 * assembly_seconds / sittings, 3)},
    }
