"""Parallel forms: 20 forms from a 5,000-item synthetic pool under the sample program's settings.

Prints the time to assemble them (sequential MILPs, HiGHS) and each form's largest
relative deviation from the information targets at the cut points.

    .venv/bin/python benchmarks/assembly_forms.py [--items 5000] [--forms 20]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from engine.assembly import assemble_forms, form_information
from itembank.assembly import blueprint_for, targets_for
from itembank.program import load_program
from itembank.synthetic import synthetic_pool


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--forms", type=int, default=20)
    args = parser.parse_args()
    program = load_program()
    settings = program.assembly
    rng = np.random.default_rng(3)
    pool = synthetic_pool(program, args.items, rng)
    targets = targets_for(program, pool)
    scored = sum(f.scored for f in program.fields)
    max_uses = max(1, math.floor(settings.max_exposure * args.forms))
    started = time.perf_counter()
    forms = assemble_forms(pool, blueprint_for(program), targets, args.forms, tolerance=settings.tolerance,
                           max_overlap=settings.overlap_items(scored), max_uses=max_uses, rng=rng)
    seconds = time.perf_counter() - started
    wanted = np.array([t.information for t in targets])
    worst = [float(np.max(np.abs(form_information(pool, f, targets) / wanted - 1))) for f in forms]
    overlap = max(len(np.intersect1d(a, b)) for k, a in enumerate(forms) for b in forms[:k])
    print(f"{args.forms} forms of {scored} scored items from {args.items} items in {seconds:.1f} s "
          f"({seconds / args.forms:.2f} s per form)")
    print(f"largest deviation from a target on any form {max(worst):.2%} (tolerance {settings.tolerance:.0%}); "
          f"median form {np.median(worst):.2%}")
    print(f"largest overlap between two forms {overlap} items (limit {settings.overlap_items(scored)}); "
          f"items on at most {max_uses} forms")


if __name__ == "__main__":
    main()
