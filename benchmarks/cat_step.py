"""One CAT step from a 5,000-item operational pool: estimate, shadow test, choice.

Prints p50/p99 per step for, on the same synthetic pool of the sample program
(itembank.synthetic, the program's blueprint: 32/18/42 scored items, 23 middle
categories with bounds 2-8, enemy pairs) and the same simulated candidates:

1. the engine's step as the sitting runs it: exposure eligibility at the current
   estimate, ``next_item`` (shadow-test MILP over the blueprint, enemy sets and
   exposure), ``update`` (EAP for the total and the three fields), ``should_stop``;
   fixed length, and variable length (confidence-interval rule);
2. baselines in the same process: catsim's maximum-information step
   (``MaxInfoSelector.select`` + ``NumericalSearchEstimator.estimate``; no content
   constraints, no enemy sets) when catsim is installed, and the same step written in
   plain numpy (information over the pool, argmax over the unused items, engine EAP);
3. LOFT's whole-form assembly (``assemble_loft``), which builds all 92 items at login.

    .venv/bin/python benchmarks/cat_step.py [--items 5000] [--sittings 60]

catsim is not a project dependency: ``.venv/bin/pip install catsim`` to include it.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import time

import numpy as np

import engine
from engine.adaptive import (
    CatSettings,
    ExposureControl,
    close_field,
    draw_eligibility,
    eligible_at,
    next_item,
    record_sitting,
    should_stop,
    start,
    update,
)
from engine.assembly import LoftPool, assemble_loft, exposure_eligibility
from engine.design import Cut
from engine.models import item_information, probability
from itembank.assembly import blueprint_for, cut_points, targets_for
from itembank.program import load_program
from itembank.synthetic import synthetic_pool


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):6.2f} ms  p99 {np.percentile(ms, 99):6.2f} ms  max {ms.max():6.2f} ms"


def engine_steps(pool, blueprint, settings, cuts, thetas, rng) -> tuple[list[float], np.ndarray, int]:
    """Every step of every sitting, timed as the sitting's server runs it after an answer."""
    control = ExposureControl.start(pool.size, settings)
    times, lengths, relaxed = [], [], 0
    for theta in thetas:
        p = probability(np.array([theta]), pool.items)[0]
        drawn = draw_eligibility(control, rng)
        state = start(blueprint, settings)
        while True:
            started = time.perf_counter()
            choice = next_item(pool, blueprint, state, settings, eligible_at(control, drawn, state.theta), rng)
            chosen = time.perf_counter()
            response = int(rng.random() < p[choice.item])  # the candidate answers: not timed
            answered = time.perf_counter()
            state = update(pool, state, choice.item, response, settings)
            stop = should_stop(pool, blueprint, state, settings, cuts)
            times.append(chosen - started + time.perf_counter() - answered)
            relaxed += choice.relaxed
            if stop.field_complete:
                state = close_field(state)
            if stop.test_complete:
                break
        control = record_sitting(control, state, drawn)
        lengths.append(len(state.items))
    return times, np.array(lengths), relaxed


def numpy_steps(pool, thetas, length, rng) -> list[float]:
    """Maximum information without content constraints, in plain numpy with the engine's EAP."""
    times = []
    for theta in thetas:
        p = probability(np.array([theta]), pool.items)[0]
        used = np.zeros(pool.size, dtype=bool)
        items, responses, estimate = [], [], 0.0
        for _ in range(length):
            started = time.perf_counter()
            info = item_information(np.array([estimate]), pool.items)[0]
            info[used] = -1.0
            item = int(np.argmax(info))
            response = int(rng.random() < p[item])
            used[item] = True
            items.append(item)
            responses.append(response)
            estimate = float(engine.eap(np.array([responses], dtype=np.int8), pool.items.subset(np.array(items))).theta[0])
            times.append(time.perf_counter() - started)
    return times


def catsim_steps(pool, thetas, length, rng) -> list[float] | None:
    try:
        from catsim.estimation import NumericalSearchEstimator
        from catsim.item_bank import ItemBank
        from catsim.selection import MaxInfoSelector
    except ImportError:
        return None
    with contextlib.redirect_stdout(io.StringIO()):  # catsim prints an empty line when it builds a bank
        bank = ItemBank(np.c_[pool.items.a, pool.items.b, pool.items.c, np.ones(pool.size)])
    selector, estimator = MaxInfoSelector(), NumericalSearchEstimator()
    times = []
    for theta in thetas:
        p = probability(np.array([theta]), pool.items)[0]
        administered, responses, estimate = [], [], 0.0
        for _ in range(length):
            started = time.perf_counter()
            item = int(selector.select(item_bank=bank, administered_items=administered, est_theta=estimate))
            response = bool(rng.random() < p[item])
            administered.append(item)
            responses.append(response)
            estimate = float(estimator.estimate(item_bank=bank, administered_items=administered,
                                                response_vector=responses, est_theta=estimate))
            estimate = float(np.clip(estimate, -6, 6))
            times.append(time.perf_counter() - started)
    return times


def loft_forms(pool, blueprint, targets, settings, sittings, rng) -> list[float]:
    prepared = LoftPool.prepare(pool, blueprint, targets)
    counts = np.zeros(pool.size)
    times = []
    for s in range(sittings):
        started = time.perf_counter()
        eligibility = exposure_eligibility(counts / max(s, 20), settings.max_exposure, settings.exposure_margin)
        form = assemble_loft(prepared, rng, tolerance=settings.tolerance, eligibility=eligibility,
                             randomesque=settings.randomesque)
        times.append(time.perf_counter() - started)
        counts[form] += 1
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--sittings", type=int, default=60, help="sittings per engine design (92 steps each)")
    parser.add_argument("--baseline-sittings", type=int, default=20)
    args = parser.parse_args()
    program = load_program()
    rng = np.random.default_rng(1)
    pool = synthetic_pool(program, args.items, rng)
    blueprint = blueprint_for(program)
    targets = targets_for(program, pool)
    cuts = tuple(Cut(name, theta, field) for name, theta, field in cut_points(program))
    thetas = rng.normal(size=args.sittings)
    print(f"pool {pool.size} items, {len(pool.enemy_groups)} enemy groups; blueprint {blueprint.field_counts.tolist()} "
          f"scored items, {len(blueprint.category_names)} categories; load average {os.getloadavg()[0]:.1f}")

    common = {"exposure_target": 0.25, "exposure_classes": (-0.84, -0.25, 0.25, 0.84), "randomesque": 1}
    fixed_times, _, fixed_relaxed = engine_steps(pool, blueprint, CatSettings(**common), cuts, thetas, rng)
    print(f"engine CAT step, fixed length   ({len(fixed_times)} steps)       {percentiles(fixed_times)}  "
          f"(relaxed {fixed_relaxed})")
    ci_times, ci_lengths, ci_relaxed = engine_steps(pool, blueprint, CatSettings(stopping="ci", **common), cuts,
                                                    thetas, rng)
    print(f"engine CAT step, variable (ci)  ({len(ci_times)} steps, mean length {ci_lengths.mean():.1f})  "
          f"{percentiles(ci_times)}  (relaxed {ci_relaxed})")
    length = int(blueprint.n_items)
    base = thetas[:args.baseline_sittings]
    numpy_times = numpy_steps(pool, base, length, rng)
    print(f"baseline: numpy max-information step, no content constraints  {percentiles(numpy_times)}")
    catsim_times = catsim_steps(pool, base, length, rng)
    if catsim_times is None:
        print("baseline: catsim not installed (.venv/bin/pip install catsim)")
    else:
        import catsim
        print(f"baseline: catsim {catsim.__version__} MaxInfoSelector + NumericalSearchEstimator  "
              f"{percentiles(catsim_times)}")
    loft_times = loft_forms(pool, blueprint, targets, program.assembly, 200, rng)
    print(f"LOFT: one whole 92-item form (assemble_loft)  {percentiles(loft_times)}")
    p99 = np.percentile(fixed_times, 99) * 1000
    print(f"ratios of p50: CAT step / numpy step {np.median(fixed_times) / np.median(numpy_times):.1f}x"
          + ("" if catsim_times is None else
             f", CAT step / catsim step {np.median(fixed_times) / np.median(catsim_times):.2f}x")
          + f", CAT sitting (92 steps) / LOFT form {92 * np.median(fixed_times) / np.median(loft_times):.1f}x")
    print(f"target: step p99 under 50 ms: {'met' if p99 < 50 else 'not met'} ({p99:.1f} ms)")
    print(f"measured {dt.datetime.now():%Y-%m-%d %H:%M}, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
