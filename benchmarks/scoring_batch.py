"""Benchmark: score a year-scale batch of sittings through the real scoring code.

250,000 sittings (two years at today's growth) of 92 scored items each, drawn from
a synthetic bank of 2,000 item versions, are scored by ``scoring.batch.score_sheet``:
the same function that scores each sitting at its end and every rescoring campaign.
The baseline, in the same process, is the arithmetic the scoring cannot avoid: the
sparse product of the answers with the log-probabilities at the quadrature nodes
(sittings x versions x nodes, for the total and three fields).

    .venv/bin/python benchmarks/scoring_batch.py [--sittings 250000]
"""
from __future__ import annotations

import argparse
import platform
import resource
import time

import numpy as np
from scipy import sparse

from itembank.program import load_program
from scoring.batch import AnswerSheet, VersionTable, score_sheet
from scoring.rules import rule_of_program


def synthetic_year(n_sittings: int, n_versions: int, rng: np.random.Generator):
    program = load_program()
    fields = np.array(program.field_codes)
    share = np.array([f.scored for f in program.fields], dtype=float)
    version_field = rng.choice(len(fields), size=n_versions, p=share / share.sum())
    table = VersionTable(
        version_id=np.arange(1, n_versions + 1),
        a=np.exp(rng.normal(0, 0.25, n_versions)), b=rng.normal(0, 1, n_versions), c=rng.uniform(0.1, 0.25, n_versions),
        key=rng.integers(0, 4, n_versions), withdrawn=np.zeros(n_versions, dtype=bool),
    )
    # Each sitting: the blueprint's count from each field, distinct items (a random start and a
    # stride coprime to the field's pool size walk the pool without repeats).
    columns = []
    for f, field in enumerate(program.fields):
        pool = np.flatnonzero(version_field == f)
        start = rng.integers(0, len(pool), n_sittings)[:, None]
        stride = rng.choice([s for s in range(1, 50) if np.gcd(s, len(pool)) == 1], n_sittings)[:, None]
        columns.append(pool[(start + stride * np.arange(field.scored)) % len(pool)])
    column = np.hstack(columns)  # (n_sittings, 92)
    theta = rng.normal(0.1, 1.0, n_sittings)
    a, b, c = table.a[column], table.b[column], table.c[column]
    right = rng.random(column.shape) < c + (1 - c) / (1 + np.exp(-a * (theta[:, None] - b)))
    key = table.key[column]
    chosen = np.where(right, key, (key + 1) % 4)
    chosen[rng.random(column.shape) < 0.02] = -1  # a few left unanswered
    sheet = AnswerSheet(
        n_sittings=n_sittings,
        sitting=np.repeat(np.arange(n_sittings), column.shape[1]),
        version_id=table.version_id[column].ravel(),
        field=fields[version_field[column]].ravel(),
        chosen=chosen.ravel(),
    )
    return program, table, sheet


def baseline(table: VersionTable, sheet: AnswerSheet, n_points: int, n_subsets: int) -> float:
    """The sparse product alone: answers x (log P, log Q) at every node of every subset."""
    column = np.searchsorted(table.version_id, sheet.version_id)
    correct = (sheet.chosen == table.key[column]).astype(np.int64)
    matrix = sparse.csr_matrix((np.ones(column.size, dtype=np.float32), 2 * column + correct,
                                np.arange(0, column.size + 1, column.size // sheet.n_sittings)),
                               shape=(sheet.n_sittings, 2 * len(table.version_id)))
    logs = np.random.default_rng(0).random((2 * len(table.version_id), n_subsets * n_points)).astype(np.float32)
    started = time.perf_counter()
    for start in range(0, sheet.n_sittings, 50_000):
        np.asarray(matrix[start : start + 50_000] @ logs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sittings", type=int, default=250_000)
    parser.add_argument("--versions", type=int, default=2_000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    program, table, sheet = synthetic_year(args.sittings, args.versions, rng)
    rule = rule_of_program(program)

    started = time.perf_counter()
    scores = score_sheet(rule, table, sheet)
    scoring = time.perf_counter() - started
    product = baseline(table, sheet, rule.settings.quadrature_points, 1 + len(rule.fields))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, "
          f"numpy {np.__version__}")
    print(f"{args.sittings:,} sittings x {sheet.version_id.size // args.sittings} scored items, "
          f"{args.versions:,} item versions, {rule.settings.quadrature_points} nodes, total + {len(rule.fields)} fields")
    print("| figure | seconds | per 1,000 sittings | x baseline |")
    print("|---|---|---|---|")
    print(f"| score_sheet (EAP, scale, pass rule) | {scoring:.2f} | {1000 * scoring / args.sittings:.1f} ms | "
          f"{scoring / product:.1f} |")
    print(f"| baseline: the sparse product alone | {product:.2f} | {1e6 * product / args.sittings:.1f} ms | 1.0 |")
    print(f"peak memory {peak:,.0f} MiB; pass rate {scores.passed.mean():.1%}; target: under 60 s")


if __name__ == "__main__":
    main()
