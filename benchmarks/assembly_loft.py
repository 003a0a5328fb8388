"""LOFT speed: one form per sitting from a 5,000-item operational pool, as the login does it.

Prints p50/p99 per sitting for (1) the engine's assembly alone, (2) draw_form as the
login request runs it on a database holding the pool (bank stamp query, cached pool,
exposure counts, the selection, the pretest slots, the exposure UPDATEs, commit), and a
baseline in the same process: a plain random blueprint draw on the same arrays.

    .venv/bin/python benchmarks/assembly_loft.py [--items 5000] [--sittings 2000] [--database-url URL]
"""
from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time

import numpy as np

from engine.assembly import LoftPool, assemble_loft, exposure_eligibility
from itembank.assembly import blueprint_for, draw_form, exposure_rates, targets_for
from itembank.bank import add_item
from itembank.content import ItemContent
from itembank.program import load_program
from itembank.synthetic import synthetic_parameters, synthetic_pool
from persistence import create_database_engine, session_factory, upgrade_database


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):6.2f} ms  p99 {np.percentile(ms, 99):6.2f} ms  max {ms.max():6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--sittings", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    program = load_program()
    settings = program.assembly
    rng = np.random.default_rng(1)

    pool = synthetic_pool(program, args.items, rng)
    blueprint = blueprint_for(program)
    targets = targets_for(program, pool)
    prepared = LoftPool.prepare(pool, blueprint, targets)
    counts = np.zeros(pool.size)
    engine_times, baseline_times = [], []
    for s in range(args.sittings):
        started = time.perf_counter()
        rates = exposure_rates(counts, s, np.zeros(pool.size))
        eligibility = exposure_eligibility(rates, settings.max_exposure, settings.exposure_margin)
        form = assemble_loft(prepared, rng, tolerance=settings.tolerance, eligibility=eligibility,
                             randomesque=settings.randomesque)
        engine_times.append(time.perf_counter() - started)
        counts[form] += 1
        started = time.perf_counter()
        [rng.choice(np.flatnonzero(pool.field == f), size=int(n), replace=False)
         for f, n in enumerate(blueprint.field_counts)]
        baseline_times.append(time.perf_counter() - started)
    print(f"pool {args.items} items, {args.sittings} sittings, max exposure {counts.max() / args.sittings:.3f} "
          f"(target {settings.max_exposure})")
    print(f"engine LOFT (blueprint, enemies, targets, exposure)  {percentiles(engine_times)}")
    print(f"baseline: random blueprint draw, same arrays       {percentiles(baseline_times)}")
    print(f"ratio of p50: {np.median(engine_times) / np.median(baseline_times):.1f}x the random draw")

    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    engine = create_database_engine(url)
    upgrade_database(engine)
    sessions = session_factory(engine)
    drawn = synthetic_parameters(program, args.items, np.random.default_rng(2))
    started = time.perf_counter()
    with sessions() as session:
        for i in range(args.items):
            add_item(session, program, code=f"BENCH-{i:05d}", category=int(drawn.category[i]), status="operational",
                     content=ItemContent(stem=f"Item {i}", options=("a", "b", "c", "d"), key=int(drawn.key[i])),
                     parameters=(float(drawn.a[i]), float(drawn.b[i]), float(drawn.c[i])), parameter_source="synthetic")
        for i in range(40):
            add_item(session, program, code=f"BENCH-P{i:03d}", category=int(drawn.category[i]), status="pretest",
                     content=ItemContent(stem=f"Pretest {i}", options=("a", "b", "c", "d"), key=0))
        session.commit()
    print(f"database {engine.url.get_backend_name()}: {args.items} items loaded in {time.perf_counter() - started:.1f} s")
    request_times = []
    with sessions() as session:
        for s in range(min(args.sittings, 1000) + 1):
            started = time.perf_counter()
            draw_form(session, program, rng)
            session.commit()
            if s:  # the first login of a process reads the pool and the counts
                request_times.append(time.perf_counter() - started)
    print(f"draw_form as the login runs it (stamp, exposure, UPDATEs, commit)  {percentiles(request_times)}")
    print(f"measured {dt.datetime.now():%Y-%m-%d %H:%M}")


if __name__ == "__main__":
    main()
