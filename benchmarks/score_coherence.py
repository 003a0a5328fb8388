"""Design study: which field-score method makes the total and the field scores make sense together.

    .venv/bin/python benchmarks/score_coherence.py [--candidates 4000] [--correlations 1.0,0.9,0.8] [--seed 18]

The sample program (itembank/programs/it-passport.toml) and the sample bank's operational
items (itembank/sample): every simulated candidate sits twice, each time a LOFT form of
the program's blueprint (32 strategy, 18 management, 42 technology scored items) assembled
by the program's own assembly settings (targets, tolerance, exposure control). True field
abilities are drawn N(0, R) with a common correlation rho between fields (one table per
rho: rho = 1 is the unidimensional model the bank was calibrated with); the total's true
ability is the fields' mean weighted by their item counts (which always lies within the
fields' range). Responses follow the 3PL with each item's bank parameters on its field's
ability. Each method scores the same responses:

* separate EAP / MAP / WLE: the program's scoring with method eap / map / wle (total on
  all items, each field on its own items): today's scoring is separate EAP;
* summed-score EAP: each sitting's own Lord-Wingersky table (its form is its own), for
  the total and each field;
* multidimensional EAP: the total by EAP, the fields by engine.multidimensional_eap with
  the fields' correlation estimated from the first sittings (engine.field_correlation:
  disattenuated separate EAPs, capped at 0.95), through the scoring service
  (field_method); and once more with the common correlation ``--stated`` (0.9), as a
  program file states it for years whatever the true correlation;
* augmented: the total by EAP, each field's WLE augmented by the others'
  (engine.augmented_subscores, Wainer et al.), same estimated correlation: with each
  sitting's own WLE SEs (the scoring service's field_method "augmented"), and with one
  pooled error variance per field (Wainer et al.'s estimator, the sample's mean se^2).

Figures (scale scores, slope 150, intercept 620):

* coherence: the share of sittings whose total is below every field score, and outside
  the fields' range [min, max], among low scorers (true total ability in the lowest
  decile) and among all;
* classification at the program's rule (total >= 600 and every field >= 300): accuracy
  against the true abilities' decision and consistency between a candidate's two
  sittings; the same at the total cut alone and at the field cuts (the three fields
  pooled), with the share of true field failures the field score catches;
* bias along the scale: mean (estimate - truth) of the field scores in bins of the true
  field ability, and the fields' RMSE, in scale points;
* lopsided candidates (one field truly at theta -2.5, below its pass mark, the others at
  +0.5): the share whose weak field score falls below the field minimum, per method (the
  correlations as stated, ``--stated``).
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np

import engine
from engine.assembly import LoftPool, Pool, assemble_loft, exposure_eligibility
from itembank.assembly import blueprint_for, cut_points, exposure_rates, targets_for
from itembank.program import load_program
from itembank.sample import sample_items
from scoring.batch import AnswerSheet, VersionTable, score_sheet
from scoring.rules import rule_of_program
from scoring.scale import to_scale

BINS = np.array([-np.inf, -2.0, -1.0, 0.0, 1.0, 2.0, np.inf])
BIN_NAMES = ("< -2", "-2..-1", "-1..0", "0..1", "1..2", "> 2")


def sample_pool(program) -> Pool:
    """The sample bank's operational items as an assembly pool (no database needed)."""
    field_index = {code: i for i, code in enumerate(program.field_codes)}
    category_index = {c.number: i for i, c in enumerate(program.categories)}
    items = [raw for raw in sample_items() if raw["status"] == "operational"]
    return Pool(
        engine.ItemParameters([i["a"] for i in items], [i["b"] for i in items], [i["c"] for i in items]),
        np.array([field_index[program.field_of_category(i["category"])] for i in items]),
        np.array([category_index[i["category"]] for i in items]),
    )


def loft_forms(program, pool: Pool, sittings: int, rng: np.random.Generator) -> np.ndarray:
    """(sittings, scored items) pool indices, sorted by field then index, one LOFT form per sitting."""
    settings = program.assembly
    prepared = LoftPool.prepare(pool, blueprint_for(program), targets_for(program, pool))
    counts = np.zeros(pool.size, dtype=np.int64)
    forms = []
    for s in range(sittings):
        rates = exposure_rates(counts, s, np.zeros(pool.size, dtype=np.int64))
        eligibility = exposure_eligibility(rates, settings.max_exposure, settings.exposure_margin)
        form = assemble_loft(prepared, rng, tolerance=settings.tolerance, eligibility=eligibility,
                             randomesque=settings.randomesque)
        counts[form] += 1
        forms.append(form[np.lexsort((form, pool.field[form]))])
    return np.array(forms)


def summed_score_eap(correct: np.ndarray, items: engine.ItemParameters, prior_mean: float, prior_sd: float,
                     n_points: int, bound: float, chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """EAP[theta | number correct] with each sitting's own Lord-Wingersky table.

    correct: (n, k) 0/1 of each sitting's k items; items: parameters of the same cells,
    flattened (n * k). The recursion runs over the k positions, every sitting at once.
    """
    n, k = correct.shape
    nodes, weights = engine.normal_quadrature(n_points, bound, prior_mean, prior_sd)
    a, b, c = (v.reshape(n, k) for v in (items.a, items.b, items.c))
    score = correct.sum(axis=1)
    theta, se = np.empty(n), np.empty(n)
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        p = c[rows, :, None] + (1 - c[rows, :, None]) / (1 + np.exp(-a[rows, :, None] * (nodes - b[rows, :, None])))
        dist = np.zeros((p.shape[0], k + 1, n_points))
        dist[:, 0] = 1.0
        for j in range(k):  # sequential by nature (one item at a time), every sitting and node at once
            shifted = dist[:, :j + 1] * p[:, j, None]
            dist[:, :j + 2] *= 1.0 - p[:, j, None]
            dist[:, 1:j + 2] += shifted
        like = dist[np.arange(p.shape[0]), score[rows]] * weights  # (chunk, Q)
        total = like.sum(axis=1)
        theta[rows] = like @ nodes / total
        se[rows] = np.sqrt(np.maximum(like @ nodes**2 / total - theta[rows] ** 2, 0.0))
    return theta, se


def figures(scale_scores: np.ndarray, theta_hat: np.ndarray, truth: np.ndarray, true_total: np.ndarray,
            cuts: np.ndarray, program, slope: float) -> dict:
    """The study's measures of one method. scale_scores, theta_hat: (2n, 1 + F); truth: (n, F) field
    abilities; true_total: (n,); cuts: (1 + F,) theta of the total's and each field's pass mark."""
    n = len(true_total)
    total, fields = scale_scores[:, 0], scale_scores[:, 1:]
    below = total < fields.min(axis=1)
    outside = below | (total > fields.max(axis=1))
    low = np.r_[true_total, true_total] <= np.quantile(true_total, 0.10)
    truth2 = np.r_[truth, truth]
    true_total2 = np.r_[true_total, true_total]
    rule = program.pass_rule
    passed = (total >= rule.total_minimum) & np.all(fields >= rule.field_minimum, axis=1)
    truly = (true_total2 >= cuts[0]) & np.all(truth2 >= cuts[1:], axis=1)
    total_pass, total_truth = total >= rule.total_minimum, true_total2 >= cuts[0]
    field_pass, field_truth = fields >= rule.field_minimum, truth2 >= cuts[1:]
    field_errors = (theta_hat[:, 1:] - truth2) * slope
    bins = np.digitize(truth2.ravel(), BINS[1:-1])
    bias = [float(field_errors.ravel()[bins == g].mean()) if np.any(bins == g) else np.nan
            for g in range(len(BIN_NAMES))]
    total_bins = np.digitize(true_total2, BINS[1:-1])
    total_error = (theta_hat[:, 0] - true_total2) * slope
    return {
        "below_all_low": below[low].mean(), "outside_low": outside[low].mean(), "outside_all": outside.mean(),
        "pass_accuracy": np.mean(passed == truly), "pass_consistency": np.mean(passed[:n] == passed[n:]),
        "false_pass": np.mean(passed & ~truly), "false_fail": np.mean(~passed & truly),
        "total_accuracy": np.mean(total_pass == total_truth),
        "total_consistency": np.mean(total_pass[:n] == total_pass[n:]),
        "field_accuracy": np.mean(field_pass == field_truth),
        "field_consistency": np.mean(field_pass[:n] == field_pass[n:]),
        "field_caught": np.mean(~field_pass[~field_truth]) if np.any(~field_truth) else np.nan,
        "field_false_fail": np.mean(~field_pass[field_truth]),
        "field_bias": bias, "field_rmse": float(np.sqrt(np.mean(field_errors**2))),
        "total_bias": [float(total_error[total_bins == g].mean()) if np.any(total_bins == g) else np.nan
                       for g in range(len(BIN_NAMES))],
        "total_rmse": float(np.sqrt(np.mean(total_error**2))),
    }


class Study:
    """The sample program, its pool and the LOFT forms, and every method's scores of given responses."""

    def __init__(self, args):
        self.program = program = load_program("it-passport")
        self.rule = rule_of_program(program)
        self.settings = self.rule.settings
        self.rng = np.random.default_rng(args.seed)
        self.pool = sample_pool(program)
        self.n_fields = len(program.fields)
        self.table = VersionTable.of_items(self.pool.items)
        self.codes = np.array(program.field_codes)
        self.cuts = np.array([theta for _, theta, _ in cut_points(program)])
        self.stated = np.full((self.n_fields, self.n_fields), args.stated)
        np.fill_diagonal(self.stated, 1.0)
        self.stated_value = args.stated

    def sittings(self, forms: np.ndarray, truth: np.ndarray):
        """Responses of the sittings with these forms by candidates of these field abilities (one row each)."""
        pool = self.pool
        cell_theta = truth[np.arange(len(forms))[:, None], pool.field[forms]]
        a, b, c = pool.items.a[forms], pool.items.b[forms], pool.items.c[forms]
        p = c + (1 - c) / (1 + np.exp(-a * (cell_theta - b)))
        correct = (self.rng.random(p.shape) < p).astype(np.int8)
        responses = np.full((len(forms), pool.size), engine.MISSING, dtype=np.int8)
        responses[np.arange(len(forms))[:, None], forms] = correct
        return correct, AnswerSheet.of_responses(responses, self.codes[pool.field])

    def scored(self, sheet, method: str, field_method: str = "separate", corr=None):
        settings = replace(self.settings, method=method, field_method=field_method,
                           field_correlation=None if corr is None else tuple(map(tuple, corr)))
        result = score_sheet(replace(self.rule, settings=settings), self.table, sheet)
        return result.scale, result.theta, result.se

    def every_method(self, forms, correct, sheet, estimated) -> dict:
        """{method: (scale (n, 1 + F), theta (n, 1 + F))}; ``estimated``: the fields' correlation."""
        s, n_fields = self.settings, self.n_fields
        results = {}
        eap_scale, eap_theta, _ = self.scored(sheet, "eap")
        results["separate EAP (today)"] = (eap_scale, eap_theta)
        results["separate MAP"] = self.scored(sheet, "map")[:2]
        wle_scale, wle_theta, wle_se = self.scored(sheet, "wle")
        results["separate WLE"] = (wle_scale, wle_theta)
        ss_theta = np.empty((len(forms), 1 + n_fields))
        cell_field = self.pool.field[forms[0]]
        scopes = [np.ones(forms.shape[1], dtype=bool)] + [cell_field == f for f in range(n_fields)]
        for k, scope in enumerate(scopes):  # every form has the blueprint's field counts in the same columns
            ss_theta[:, k], _ = summed_score_eap(correct[:, scope], self.pool.items.subset(forms[:, scope].ravel()),
                                                 s.prior_mean, s.prior_sd, s.quadrature_points, s.quadrature_range)
        results["summed-score EAP"] = (to_scale(ss_theta, self.program.scale), ss_theta)
        if estimated is not None:
            results["multidimensional EAP, estimated R"] = self.scored(sheet, "eap", "multidimensional_eap",
                                                                       estimated)[:2]
        # What a program file states once for years: a common correlation, whatever this year's truth.
        results[f"multidimensional EAP, R = {self.stated_value:g} stated"] = self.scored(
            sheet, "eap", "multidimensional_eap", self.stated)[:2]
        corr = self.stated if estimated is None else estimated
        results["augmented WLE, own SEs"] = self.scored(sheet, "eap", "augmented", corr)[:2]
        # Wainer et al.'s own estimator: one error variance per field (the sample's mean).
        pooled = engine.augmented_subscores(wle_theta[:, 1:], wle_se[:, 1:], corr * s.prior_sd**2,
                                            np.full(n_fields, s.prior_mean), pooled=True)
        pooled_theta = np.column_stack([eap_theta[:, 0], pooled.theta])
        results["augmented WLE, pooled SEs (Wainer)"] = (to_scale(pooled_theta, self.program.scale), pooled_theta)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=4000)
    parser.add_argument("--correlations", default="1.0,0.9,0.8")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--stated", type=float, default=0.9,
                        help="the common field correlation a program file states (one more multidimensional row)")
    parser.add_argument("--lopsided", type=int, default=1000, help="candidates per lopsided profile")
    args = parser.parse_args()
    started = time.perf_counter()
    study = Study(args)
    program, s, n_fields, rng = study.program, study.settings, study.n_fields, study.rng
    slope = program.scale.slope
    n = args.candidates
    print(f"score coherence study, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"program {program.code}, sample bank: {study.pool.size} operational items; {n} candidates x 2 LOFT "
          f"sittings", flush=True)
    forms = loft_forms(program, study.pool, 2 * n, rng)
    weights = np.array([f.scored for f in program.fields], dtype=float)
    weights /= weights.sum()
    print(f"forms assembled in {time.perf_counter() - started:.0f} s", flush=True)

    for rho in (float(v) for v in args.correlations.split(",")):
        correlation = np.full((n_fields, n_fields), rho)
        np.fill_diagonal(correlation, 1.0)
        truth = rng.multivariate_normal(np.full(n_fields, s.prior_mean), correlation * s.prior_sd**2, size=n,
                                        method="eigh")
        true_total = truth @ weights
        correct, sheet = study.sittings(forms, np.r_[truth, truth])
        # The fields' correlation as a program would estimate it: from last year's sittings
        # (here the first sittings), by separate field EAPs disattenuated.
        _, eap_theta, eap_se = study.scored(sheet, "eap")
        estimated = engine.field_correlation(engine.AbilityEstimate(eap_theta[:n, 1:], eap_se[:n, 1:]))
        results = study.every_method(forms, correct, sheet, estimated)
        measures = {name: figures(scale, theta, truth, true_total, study.cuts, program, slope)
                    for name, (scale, theta) in results.items()}
        off = estimated[~np.eye(n_fields, dtype=bool)]
        print(f"\n### True field correlation {rho:.2f} (estimated from the first sittings: "
              f"{off.min():.3f} to {off.max():.3f})\n")
        print("| method | total below every field, low decile | outside fields' range, low decile | "
              "outside, all | pass accuracy | pass consistency | false pass / false fail | total cut acc. / cons. | "
              "field cuts acc. / cons. | true field failures caught | true field passes failed | field RMSE | "
              "total RMSE |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, m in measures.items():
            print(f"| {name} | {m['below_all_low']:.1%} | {m['outside_low']:.1%} | {m['outside_all']:.1%} | "
                  f"{m['pass_accuracy']:.3f} | {m['pass_consistency']:.3f} | "
                  f"{m['false_pass']:.3f} / {m['false_fail']:.3f} | "
                  f"{m['total_accuracy']:.3f} / {m['total_consistency']:.3f} | "
                  f"{m['field_accuracy']:.4f} / {m['field_consistency']:.4f} | {m['field_caught']:.1%} | "
                  f"{m['field_false_fail']:.2%} | {m['field_rmse']:.1f} | {m['total_rmse']:.1f} |")
        print("\nBias of the field scores (scale points) by true field ability:\n")
        print("| method | " + " | ".join(BIN_NAMES) + " |")
        print("|---|" + "---|" * len(BIN_NAMES))
        for name, m in measures.items():
            print(f"| {name} | " + " | ".join(f"{v:+.1f}" for v in m["field_bias"]) + " |")
        print("\nBias of the total (scale points) by true total ability:\n")
        print("| method | " + " | ".join(BIN_NAMES) + " |")
        print("|---|" + "---|" * len(BIN_NAMES))
        for name, m in measures.items():
            print(f"| {name} | " + " | ".join(f"{v:+.1f}" for v in m["total_bias"]) + " |", flush=True)

    # Lopsided candidates: one field truly below its pass mark, the others well above the
    # total's; what the field minimum exists to catch, and what borrowing strength hides.
    weak_theta, strong_theta = -2.5, 0.5
    m = min(args.lopsided, len(forms))
    print(f"\n### Lopsided candidates: one field at theta {weak_theta} (scale "
          f"{program.scale.intercept + slope * weak_theta:.0f}, below the field minimum "
          f"{program.pass_rule.field_minimum}), the others at {strong_theta} "
          f"({program.scale.intercept + slope * strong_theta:.0f}); {m} sittings per profile\n")
    rows: dict[str, list[str]] = {}
    for weak in range(n_fields):
        truth = np.full((m, n_fields), strong_theta)
        truth[:, weak] = weak_theta
        correct, sheet = study.sittings(forms[:m], truth)
        for name, (scale, _) in study.every_method(forms[:m], correct, sheet, None).items():
            caught = np.mean(scale[:, 1 + weak] < program.pass_rule.field_minimum)
            passed = np.mean((scale[:, 0] >= program.pass_rule.total_minimum)
                             & np.all(scale[:, 1:] >= program.pass_rule.field_minimum, axis=1))
            rows.setdefault(name, []).append(f"{caught:.1%} ({scale[:, 1 + weak].mean():.0f}; passed {passed:.1%})")
    print("| method | " + " | ".join(f"weak {code}: caught (mean score; passed the rule)"
                                    for code in program.field_codes) + " |")
    print("|---|" + "---|" * n_fields)
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nwall time {time.perf_counter() - started:.0f} s, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
