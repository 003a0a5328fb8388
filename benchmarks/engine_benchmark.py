"""Engine speed and recovery benchmark; prints each figure beside its baseline and target.

    .venv/bin/python benchmarks/engine_benchmark.py [--girth-timeout SECONDS] [--skip-girth]
        [--only engine|girth2pl|girth3pl|calibrate] [--repeat 3] [--replications 5]

``--only calibrate``: the `cbt calibrate` runs of 20,000 x 100 alone (2PL and 3PL, one
data set each, observed-information SEs against ``--se crossprod`` interleaved, no
girth), with the load average before and after.

Data, simulated once per figure and given to both programs: a ~ lognormal(0, .25),
b ~ N(0, 1), c ~ U(.1, .25) (3PL only), theta ~ N(0, 1).

girth runs from its own virtualenv (benchmarks/.girth-venv, numpy < 2.4, see
docs/benchmarks.md) through benchmarks/girth_runner.py; a girth run that passes
--girth-timeout is stopped and its time reported as a lower bound.
Every timing is the best of ``--repeat`` runs (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import engine
from engine import io

HERE = Path(__file__).resolve().parent
GIRTH_PYTHON = HERE / ".girth-venv" / "bin" / "python"
CBT = Path(sys.executable).parent / "cbt"


def simulate(n_examinees, n_items, model, seed):
    rng = np.random.default_rng(seed)
    items = engine.simulate_items(n_items, model, rng)  # the distributions above
    return items, engine.simulate_responses(rng.normal(size=n_examinees), items, rng)


def best_of(repeat, function):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result


def run(command, timeout=None):
    """Seconds of a whole process (None if it passed the timeout) and its stdout."""
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None, ""
    return time.perf_counter() - started, done.stdout


def rmse(estimate: engine.ItemParameters, truth: engine.ItemParameters):
    return {name: float(np.sqrt(np.mean((getattr(estimate, name) - getattr(truth, name)) ** 2)))
            for name in ("a", "b", "c")}


class Table:
    def __init__(self):
        self.rows = []

    def add(self, figure, ours, baseline, target, met):
        self.rows.append((figure, ours, baseline, target, "yes" if met else "NO"))
        print(f"  {figure}: {ours} | {baseline} | {target} | {'met' if met else 'NOT met'}", flush=True)

    def markdown(self):
        lines = ["| figure | engine | baseline | target | met |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def compare_girth_calibration(table, folder, model, args):
    """Whole `cbt calibrate` runs against girth on the same CSV files.

    Times come from the first data set; recovery RMSE is averaged over
    ``replications`` data sets (girth's 3PL is too slow for more than one), because
    on one data set two consistent estimators differ by chance.
    """
    replications = args.replications if model == "2pl" else 1
    ids = [f"I{j:03d}" for j in range(100)]
    ours_errors, girth_errors = [], []
    ours = girth_time = None
    for replication in range(replications):
        truth, x = simulate(20_000, 100, model, seed=(20 if model == "2pl" else 30) + 1000 * replication)
        responses = folder / f"responses_{model}_{replication}.csv"
        io.write_responses(responses, [f"E{i}" for i in range(len(x))], ids, x)
        ours_csv = folder / f"ours_{model}_{replication}.csv"
        times, crossprod_times = [], []
        for _ in range(args.repeat if replication == 0 else 1):
            times.append(run([str(CBT), "calibrate", str(responses), "--model", model, "--out", str(ours_csv),
                              "--quiet"])[0])
            if replication == 0:
                # The default SEs (observed information) against the cross-product ones,
                # interleaved so that a change of load hits both alike.
                crossprod_times.append(run([str(CBT), "calibrate", str(responses), "--model", model, "--se",
                                            "crossprod", "--out", str(folder / "crossprod.csv"), "--quiet"])[0])
        if replication == 0:
            ours, first = min(times), (responses, ours_csv)
            crossprod = min(crossprod_times)
            table.add(f"cbt calibrate {model.upper()} 20,000 x 100, observed-information SEs (default) "
                      "vs --se crossprod", f"{ours:.2f} s", f"crossprod {crossprod:.2f} s",
                      f"<= 1.5x: {ours / crossprod:.2f}x", ours / crossprod <= 1.5)
        ours_errors.append(rmse(io.read_parameters(ours_csv).items, truth))
        if args.skip_girth:
            continue
        girth_csv = folder / f"girth_{model}_{replication}.csv"
        seconds, _ = run([str(GIRTH_PYTHON), str(HERE / "girth_runner.py"), "calibrate", str(responses),
                          "--model", model, "--out", str(girth_csv)], timeout=args.girth_timeout)
        if replication == 0:
            girth_time = seconds
        if seconds is None:
            break
        girth_errors.append(rmse(io.read_parameters(girth_csv).items, truth))
    line = f"cbt calibrate {model.upper()} 20,000 x 100 (whole run from CSV)"
    keys = ("a", "b", "c") if model == "3pl" else ("a", "b")
    mean_ours = {k: float(np.mean([e[k] for e in ours_errors])) for k in keys}
    label = f"recovery RMSE {model.upper()} ({', '.join(keys)}; mean of {len(ours_errors)} data set(s))"
    if args.skip_girth:
        table.add(line, f"{ours:.2f} s", "girth skipped", "", False)
        return first
    target = 20 if model == "2pl" else 50
    if girth_time is None:
        timeout = args.girth_timeout
        table.add(line, f"{ours:.2f} s", f"girth > {timeout:.0f} s (stopped)",
                  f">= {target}x faster: > {timeout / ours:.0f}x", timeout / ours >= target)
        table.add(label, " / ".join(f"{mean_ours[k]:.4f}" for k in keys), "girth: no result", "no worse than girth",
                  False)
        return first
    ratio = girth_time / ours
    table.add(line, f"{ours:.2f} s", f"girth {girth_time:.1f} s", f">= {target}x faster: {ratio:.0f}x", ratio >= target)
    mean_girth = {k: float(np.mean([e[k] for e in girth_errors])) for k in keys}
    no_worse = all(mean_ours[k] <= mean_girth[k] for k in keys)
    table.add(label, " / ".join(f"{mean_ours[k]:.4f}" for k in keys),
              "girth " + " / ".join(f"{mean_girth[k]:.4f}" for k in keys), "no worse than girth", no_worse)
    return first


def compare_girth_eap(table, folder, responses, params_csv, args):
    table_in = io.read_responses(responses)
    items = io.read_parameters(params_csv).items
    ours, _ = best_of(args.repeat, lambda: engine.eap(table_in.responses, items))
    if args.skip_girth:
        table.add("EAP 3PL 20,000 x 100 (theta and SE)", f"{ours * 1000:.0f} ms", "girth skipped", "", False)
        return
    _, out = run([str(GIRTH_PYTHON), str(HERE / "girth_runner.py"), "eap", str(responses), "--params", str(params_csv)],
                 timeout=args.girth_timeout)
    girth = json.loads(out)["seconds"] if out else float("inf")
    ratio = girth / ours
    table.add("EAP 3PL 20,000 x 100 (function; ours also gives SEs)", f"{ours * 1000:.0f} ms",
              f"girth ability_3pl_eap {girth * 1000:.0f} ms", f">= 10x faster: {ratio:.0f}x", ratio >= 10)


def large_calibrations(table, args):
    for model, limit in (("3pl", 5.0), ("2pl", 3.0)):
        truth, x = simulate(100_000, 100, model, seed=40)
        priors = engine.Priors(c_beta=(6, 16)) if model == "3pl" else None
        seconds, result = best_of(args.repeat, lambda: engine.calibrate(x, model, priors=priors))
        error = rmse(result.items, truth)
        table.add(f"calibrate {model.upper()} 100,000 x 100 (API, with SEs; {result.iterations} E-steps)",
                  f"{seconds:.2f} s", f"RMSE a {error['a']:.3f}, b {error['b']:.3f}", f"< {limit:.0f} s",
                  seconds < limit)


SPARSE_CHILD = """
import json, resource, sys, time
import numpy as np
import engine
data = np.load(sys.argv[1])
x = engine.SparseResponses(data["indptr"], data["item"], data["correct"], 2000)
started = time.perf_counter()
result = engine.calibrate(x, "3pl", priors=engine.Priors(c_beta=(6, 16)))
seconds = time.perf_counter() - started
truth = data["a"], data["b"], data["c"]
rmse = [float(np.sqrt(np.mean((e - t) ** 2))) for e, t in zip((result.items.a, result.items.b, result.items.c), truth)]
print(json.dumps({"seconds": seconds, "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "iterations": result.iterations, "rmse": rmse, "converged": bool(result.converged)}))
"""


def sparse_design(table, folder, args):
    rng = np.random.default_rng(50)
    truth = engine.simulate_items(2000, "3pl", rng)
    design = engine.simulate_sparse_design(rng.normal(size=200_000), truth, 100, rng)
    path = folder / "sparse.npz"
    np.savez(path, indptr=design.indptr, item=design.item, correct=design.correct, a=truth.a, b=truth.b, c=truth.c)
    _, out = run([sys.executable, "-c", SPARSE_CHILD, str(path)])
    figures = json.loads(out)
    table.add(f"sparse 3PL: 200,000 examinees x 100 of 2,000 items ({figures['iterations']} E-steps, with SEs)",
              f"{figures['seconds']:.1f} s, peak RSS {figures['rss_gib']:.2f} GiB",
              "RMSE a/b/c " + " / ".join(f"{v:.3f}" for v in figures["rmse"]), "< 60 s within 4 GiB",
              figures["seconds"] < 60 and figures["rss_gib"] < 4)


def million_eap(table, args):
    items, x = simulate(1_000_000, 100, "3pl", seed=60)
    seconds, _ = best_of(args.repeat, lambda: engine.eap(x, items))
    right = np.ones((100, 61))
    product64, _ = best_of(args.repeat, lambda: x.astype(np.float64) @ right)
    product32, _ = best_of(args.repeat, lambda: x.astype(np.float32) @ right.astype(np.float32))
    table.add("EAP with SEs, 3PL, 1,000,000 x 100", f"{seconds:.2f} s",
              f"product (1e6 x 100) @ (100 x 61) from the int8 responses: float64 {product64:.2f} s, "
              f"float32 {product32:.2f} s",
              f"< 1 s; {seconds / product32:.1f}x the float32 product", seconds < 1.0)


def fixed_anchor(table, args):
    truth, x = simulate(20_000, 100, "3pl", seed=70)
    anchors = engine.FixedItems(np.arange(92), truth.subset(np.arange(92)))
    priors = engine.Priors(c_beta=(6, 16))
    seconds, result = best_of(args.repeat, lambda: engine.calibrate(x, "3pl", fixed=anchors, priors=priors))
    error = rmse(result.items.subset(np.arange(92, 100)), truth.subset(np.arange(92, 100)))
    table.add(f"fixed-anchor 3PL: 8 pretest vs 92 fixed, 20,000 examinees ({result.iterations} E-steps, with SEs)",
              f"{seconds * 1000:.0f} ms", f"pretest RMSE a {error['a']:.3f}, b {error['b']:.3f}", "< 1 s",
              seconds < 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--girth-timeout", type=float, default=1800.0)
    parser.add_argument("--skip-girth", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replications", type=int, default=5, help="2PL data sets for the RMSE comparison")
    parser.add_argument("--only", choices=["engine", "girth2pl", "girth3pl", "calibrate"], help="run one part only")
    args = parser.parse_args()
    if args.only == "calibrate":
        args.skip_girth, args.replications = True, 1
    if not GIRTH_PYTHON.exists() and not args.skip_girth:
        sys.exit(f"no girth environment at {GIRTH_PYTHON}; see docs/benchmarks.md or pass --skip-girth")
    print(f"engine benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    table = Table()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only in (None, "engine"):
            fixed_anchor(table, args)
            million_eap(table, args)
            large_calibrations(table, args)
            sparse_design(table, folder, args)
        if args.only in (None, "girth2pl", "calibrate"):
            compare_girth_calibration(table, folder, "2pl", args)
        if args.only in (None, "girth3pl", "calibrate"):
            responses, ours_csv = compare_girth_calibration(table, folder, "3pl", args)
            if not args.skip_girth:
                compare_girth_eap(table, folder, responses, ours_csv, args)
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print()
    print(table.markdown())


if __name__ == "__main__":
    main()
