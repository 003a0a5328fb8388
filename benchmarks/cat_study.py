"""Design study of issue 20: pre-assembled forms, LOFT and CAT on the same pool and the same candidates.

The sample program (itembank/programs/it-passport.toml) on a synthetic pool of 5,000
operational items (itembank.synthetic: the sample program's pool, enemy pairs among 2 %),
``--candidates`` simulated candidates drawn from the scoring prior, each sitting twice
(for decision consistency), every sitting scored by the program's own rule
(scoring.batch.score_sheet: EAP for the total and each field, the 0-1000 scale, total
>= 600 and every field >= 300). Designs:

* forms: ``--forms`` parallel forms (MILP, the program's overlap and exposure caps), one
  drawn at random per sitting;
* loft: the program's LOFT (targets at the cuts, tolerance, eligibility, randomesque);
* cat-fixed: shadow-test CAT, the blueprint's 32/18/42 items;
* cat-ci: variable length, a field block ends when the confidence interval excludes the
  total's cut and the field's (or the total is a clear fail), between the blueprint's
  category minimums (14/10/22) and its counts;
* cat-se: variable length, ends when SE(theta) reaches LOFT's CSEM at the total cut
  in this study (the same precision at the cut), same minimums and maximums.

The CATs share ``--cat-exposure`` (default 0.25) as their exposure target, with
eligibility conditional on five ability classes and counts fading at 0.999 (a window of
about 1,000 sittings). Prints the table; ``--json PATH`` keeps every report.

    .venv/bin/python benchmarks/cat_study.py [--candidates 500] [--designs forms,loft,cat-fixed,cat-ci,cat-se]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import time

import numpy as np

from engine.adaptive import CatSettings, simulate_cat
from engine.assembly import (
    LoftPool,
    assemble_forms,
    assemble_loft,
    exposure_eligibility,
)
from engine.design import Cut, simulate_design
from itembank.assembly import blueprint_for, cut_points, exposure_rates, targets_for
from itembank.program import load_program
from itembank.synthetic import synthetic_pool
from scoring.batch import AnswerSheet, VersionTable, score_sheet
from scoring.rules import rule_of_program

DESIGNS = ("forms", "loft", "cat-fixed", "cat-ci", "cat-se")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--forms", type=int, default=10)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--cat-exposure", type=float, default=0.25)
    parser.add_argument("--concurrent", type=int, default=20, help="CAT sittings in progress at once")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    designs = [d for d in args.designs.split(",") if d]
    unknown = set(designs) - set(DESIGNS)
    if unknown:
        parser.error(f"unknown designs {sorted(unknown)}; choose among {', '.join(DESIGNS)}")

    program = load_program()
    settings = program.assembly
    rule = rule_of_program(program)
    rng = np.random.default_rng(args.seed)
    pool = synthetic_pool(program, args.items, rng)
    blueprint = blueprint_for(program)
    targets = targets_for(program, pool)
    cuts = tuple(Cut(name, theta, field) for name, theta, field in cut_points(program))
    table = VersionTable.of_items(pool.items)
    item_fields = np.array(program.field_codes)[pool.field]
    scale = (program.scale.slope, program.scale.intercept)

    def score(responses: np.ndarray):
        scores = score_sheet(rule, table, AnswerSheet.of_responses(responses, item_fields))
        return scores.theta, scores.passed

    theta = rng.normal(rule.settings.prior_mean, rule.settings.prior_sd, args.candidates)
    cat_common = {"exposure_target": args.cat_exposure, "exposure_classes": (-0.84, -0.25, 0.25, 0.84),
                  "exposure_fading": 0.999, "prior_mean": rule.settings.prior_mean,
                  "prior_sd": rule.settings.prior_sd, "randomesque": 1}
    print(f"pool: {pool.size} synthetic items, {len(pool.enemy_groups)} enemy pairs; {args.candidates} candidates x 2 "
          f"sittings; cuts: " + ", ".join(f"{c.name} (theta {c.theta:.3f})" for c in cuts)
          + f"; load average {os.getloadavg()[0]:.1f}")
    reports = {}
    for design in designs:
        started = time.perf_counter()
        generator = np.random.default_rng(args.seed + 1)  # the same responses' randomness for every design
        if design in ("forms", "loft"):
            assemble = (forms_assembler(pool, blueprint, targets, settings, args.forms, rng) if design == "forms"
                        else loft_assembler(pool, blueprint, targets, settings))
            reports[design] = simulate_design(design, pool, assemble, score, targets, cuts, theta, generator,
                                              tolerance=settings.tolerance, exposure_target=settings.max_exposure,
                                              field_names=program.field_codes, scale=scale)
        else:
            if design == "cat-fixed":
                cat = CatSettings(**cat_common)
            elif design == "cat-ci":
                cat = CatSettings(stopping="ci", confidence=0.95, **cat_common)
            else:
                reference = reports.get("loft")
                se = (reference["cuts"][cuts[0].name]["csem_mean"] / scale[0]) if reference else 0.25
                cat = CatSettings(stopping="se", se_target=round(se, 4), **cat_common)
            reports[design] = simulate_cat(design, pool, blueprint, cat, score, targets, cuts, theta, generator,
                                           concurrent=args.concurrent, tolerance=settings.tolerance,
                                           field_names=program.field_codes, scale=scale)
            reports[design]["cat_settings"] = {"stopping": cat.stopping, "se_target": cat.se_target,
                                               "confidence": cat.confidence, "exposure_target": cat.exposure_target}
        reports[design]["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(f"  {design}: {reports[design]['wall_seconds']} s", flush=True)

    print_table(reports, cuts, scale, args.candidates)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(reports, handle, indent=1)
    print(f"measured {dt.datetime.now():%Y-%m-%d %H:%M}, load average {os.getloadavg()[0]:.1f}")


def forms_assembler(pool, blueprint, targets, settings, n_forms, rng):
    """Pre-assembled forms as delivery.design_studies makes them; each sitting draws one at random."""
    made = assemble_forms(pool, blueprint, targets, n_forms, tolerance=settings.tolerance,
                          max_overlap=settings.overlap_items(blueprint.n_items),
                          max_uses=max(1, math.floor(settings.max_exposure * n_forms + 1e-9)), rng=rng)
    return lambda generator, counts, sittings: made[int(generator.integers(len(made)))]


def loft_assembler(pool, blueprint, targets, settings):
    """The program's LOFT as the login runs it: eligibility from the exposure so far."""
    prepared = LoftPool.prepare(pool, blueprint, targets)
    before = np.zeros(pool.size, dtype=np.int64)

    def loft(generator, counts, sittings):
        eligibility = exposure_eligibility(exposure_rates(counts, sittings, before), settings.max_exposure,
                                           settings.exposure_margin)
        return assemble_loft(prepared, generator, tolerance=settings.tolerance, eligibility=eligibility,
                             randomesque=settings.randomesque)
    return loft


def print_table(reports: dict, cuts: tuple[Cut, ...], scale: tuple[float, float], candidates: int) -> None:
    total = cuts[0].name
    loft_length = reports["loft"]["length"]["mean"] if "loft" in reports else None
    n = 2 * candidates
    print()
    print("| design | scored items: mean (min-max) | vs LOFT | CSEM at total cut, candidates near it | "
          "CSEM at total cut, all | accuracy (+- SE) | consistency | false pass / false fail | "
          "field decisions: lowest accuracy | exposure max / p99 / target | pool used | overlap mean / p95 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for design, r in reports.items():
        c, e, o, length = r["classification"], r["exposure"], r["overlap"], r["length"]
        fields = [v["accuracy"] for name, v in c["cuts"].items() if name != total]
        fewer = "" if loft_length is None else f"{length['mean'] / loft_length - 1:+.0%}"
        near = r["cuts"][total]["csem_near_mean"]
        se = math.sqrt(c["accuracy"] * (1 - c["accuracy"]) / n)
        print(f"| {design} | {length['mean']:.1f} ({length['min']}-{length['max']}) | {fewer} | "
              f"{near:.1f} | {r['cuts'][total]['csem_mean']:.1f} | {c['accuracy']:.3f} (+- {se:.3f}) | "
              f"{c['consistency']:.3f} | {c['false_pass']:.3f} / {c['false_fail']:.3f} | {min(fields):.3f} | "
              f"{e['max']:.3f} / {e['p99']:.3f} / {e['target']:.2f} | {e['share_used']:.0%} | "
              f"{o['mean']:.3f} / {o['p95']:.3f} |")
    grid = np.array(next(iter(reports.values()))["grid_theta"])
    show = [k for k, t in enumerate(grid) if round(t, 2) in (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)]
    print()
    print("CSEM at the candidate's own ability (scale points; 1 / sqrt(I(theta)) of the items given), by true theta:")
    print("| design | " + " | ".join(f"theta {grid[k]:+.1f} (scale {scale[1] + scale[0] * grid[k]:.0f})"
                                      for k in show) + " |")
    print("|---|" + "---|" * len(show))
    for design, r in reports.items():
        print(f"| {design} | " + " | ".join("-" if r["csem_at_ability"][k] is None else f"{r['csem_at_ability'][k]:.1f}"
                                            for k in show) + " |")
    print()
    for design, r in reports.items():
        extra = ""
        if "steps" in r:
            extra = (f", {r['steps']['ms_per_sitting_step']} ms per sitting-step in batches of "
                     f"{r['steps']['concurrent']}, relaxed steps {r['steps']['relaxed']}, settings {r['cat_settings']}")
        print(f"{design}: fields mean {r['length']['fields_mean']}, RMSE total {r['classification']['rmse_total_scale']:.1f} "
              f"scale points, wall {r['wall_seconds']} s{extra}")


if __name__ == "__main__":
    main()
