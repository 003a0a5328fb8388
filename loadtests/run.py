"""One command for the whole load run on this machine: ``python -m loadtests.run``.

1. A fresh PostgreSQL database with the sample bank, the centres and the population
   (``--candidates`` checked in for one slot across every centre, a proctor per centre,
   ``--applicants`` for a booking rush).
2. The serving stack (loadtests.stack): nginx in front of two gunicorn instances (two
   "hosts", workers sized to the cores) sharing it; every request goes through nginx, over
   plain HTTP by default (``--tls``: HTTPS, the load generator's handshakes included).
3. locust, headless, for a bounded time: the check-in logins spread over
   ``--login-window`` seconds, the synchronised start at the slot's minute, then
   ``--steady`` seconds of sitting (answers, marks, moves, clock, finish), the proctors'
   live boards and the booking rush throughout.
4. Answer saving flat out (``--save-users`` users, no think time) for ``--save-seconds``.
5. The bare baseline (loadtests.baseline) on the same gunicorn settings behind the same
   nginx: the same flat-out saving, and the same steady request mix.
The results table goes to stdout and to ``var/load/results-<time>.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from loadtests.baseline import create_table
from loadtests.stack import BASELINE_APP, REPO, Stack, drop_database, move_slot_start, prepare, recreate_database

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
ANSWER = "PUT /api/sitting/answers/[n]"
START = "start: click to first question"


def run_locust(*, hosts: list[str], env: dict, users: dict[str, int], seconds: float, log: Path,
               spawn_rate: int = 1000) -> list[tuple[float, str, float, int]]:
    """Run locust headless against ``hosts``; returns its request log (start, name, ms, failed)."""
    env = dict(env, LOAD_HOSTS=",".join(hosts), LOAD_REQUEST_LOG=str(log),
               LOAD_CANDIDATES=str(users.get("candidates", 0)), LOAD_PROCTORS=str(users.get("proctors", 0)),
               LOAD_APPLICANTS=str(users.get("applicants", 0)))
    classes = [name for name, key in (("Candidate", "candidates"), ("Proctor", "proctors"),
                                      ("Applicant", "applicants")) if users.get(key)]
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
               "-u", str(sum(users.values())), "-r", str(spawn_rate), "-t", f"{int(seconds)}s",
               "--stop-timeout", "5", "--host", hosts[0], "--loglevel", "WARNING", *classes]
    with open(log.with_suffix(".locust.txt"), "w") as out:
        subprocess.run(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    rows = []
    for line in log.read_text().splitlines():
        start, name, ms, failed = line.split("\t")
        rows.append((float(start), name, float(ms), int(failed)))
    return rows


def summarise(rows, first: float = -np.inf, last: float = np.inf) -> dict[str, dict]:
    """Per request name within [first, last): count, failures, rate and percentiles (ms)."""
    by_name: dict[str, list] = defaultdict(list)
    for start, name, ms, failed in rows:
        if first <= start < last:
            by_name[name].append((ms, failed))
    span = (min(last, max((r[0] for r in rows), default=0)) - max(first, min((r[0] for r in rows), default=0)))
    table = {}
    for name, values in sorted(by_name.items()):
        ms = np.array([v[0] for v in values])
        table[name] = {"count": len(ms), "failures": int(sum(v[1] for v in values)),
                       "rate": len(ms) / span if span > 0 else float("nan"),
                       "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
                       "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}
    return table


def markdown(title: str, table: dict[str, dict], seconds: float | None = None) -> str:
    lines = [f"#### {title}", "", "| request | count | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in table.items():
        lines.append(f"| {name} | {s['count']} | {s['failures']} | {s['rate']:.1f} | {s['p50']:.0f} | "
                     f"{s['p95']:.0f} | {s['p99']:.0f} | {s['max']:.0f} |")
    if seconds:  # the start's click-to-questions line is made of requests already counted
        requests = [s for name, s in table.items() if name != START]
        total = sum(s["count"] for s in requests)
        lines.append(f"| **all requests** | {total} | {sum(s['failures'] for s in requests)} | "
                     f"**{total / seconds:.0f}** | | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=3000)
    parser.add_argument("--applicants", type=int, default=200)
    parser.add_argument("--login-window", type=float, default=240.0, help="check-in logins spread over (s)")
    parser.add_argument("--reaction", type=float, default=60.0, help="Start clicks spread over (s): the slot's minute")
    parser.add_argument("--think", type=float, default=25.0, help="mean think time per question (s)")
    parser.add_argument("--clock-poll", type=float, default=15.0, help="the page's clock poll (s)")
    parser.add_argument("--board-poll", type=float, default=5.0, help="the proctor's board refresh (s)")
    parser.add_argument("--steady", type=float, default=120.0, help="sitting time measured after the start (s)")
    parser.add_argument("--save-users", type=int, default=48)
    parser.add_argument("--save-seconds", type=float, default=30.0)
    parser.add_argument("--database", default="cbt_load")
    parser.add_argument("--instances", type=int, default=2, help="gunicorn instances behind nginx")
    parser.add_argument("--first-port", type=int, default=8101, help="the instances' ports: this one and up")
    parser.add_argument("--http-port", type=int, default=8190, help="nginx's plain HTTP port")
    parser.add_argument("--https-port", type=int, default=8643, help="nginx's HTTPS port")
    parser.add_argument("--tls", action="store_true", help="through nginx over HTTPS (default: plain HTTP)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)

    out_dir = REPO / "var" / "load"
    out_dir.mkdir(parents=True, exist_ok=True)
    var_dir = out_dir / "var"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    report = [f"### Load run {stamp}", "",
              f"`python -m loadtests.run --candidates {args.candidates} --applicants {args.applicants} "
              f"--login-window {args.login_window:g} --reaction {args.reaction:g} --think {args.think:g} "
              f"--clock-poll {args.clock_poll:g} --board-poll {args.board_poll:g} --steady {args.steady:g}"
              f"{' --tls' if args.tls else ''}`; {os.cpu_count()} cores, locust on the same machine; "
              f"through nginx ({'HTTPS' if args.tls else 'HTTP'}) in front of {args.instances} gunicorn instances.", ""]

    url = recreate_database(args.database)
    started = time.time()
    # The slot's start is set once the servers are up; a placeholder an hour ahead until then.
    population = prepare(url, var_dir, candidates=args.candidates, applicants=args.applicants,
                         slot_starts_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    population_file = out_dir / "population.json"
    population.write(population_file)
    print(f"prepared {len(population.candidates)} candidates, {len(population.proctors)} proctors, "
          f"{len(population.applicants)} applicants in {time.time() - started:.0f} s", flush=True)

    polls = {"CBT_CLOCK_POLL_SECONDS": str(int(args.clock_poll)), "CBT_BOARD_POLL_SECONDS": str(int(args.board_poll))}

    def stack(app: str) -> Stack:
        return Stack(url, var_dir, out_dir, instances=args.instances, first_port=args.first_port,
                     http_port=args.http_port, https_port=args.https_port, app=app, redirect_http=args.tls,
                     env=polls)

    product = stack("delivery.web:create_app()")
    env = product.servers[0].env
    try:
        product.up()
        hosts = [product.front]
        spawn_seconds = (len(population.candidates) + len(population.proctors) + len(population.applicants)) / 1000
        start_at = time.time() + spawn_seconds + args.login_window + 20
        move_slot_start(url, dt.datetime.fromtimestamp(start_at, dt.timezone.utc))
        load_env = dict(env, LOAD_POPULATION=str(population_file), LOAD_MODE="sitting", LOAD_START_AT=str(start_at),
                        LOAD_LOGIN_WINDOW=str(args.login_window), LOAD_REACTION=str(args.reaction),
                        LOAD_THINK=str(args.think), LOAD_CLOCK_POLL=str(args.clock_poll),
                        LOAD_BOARD_POLL=str(args.board_poll),
                        LOAD_RUSH_AFTER=str(args.reaction + 10))
        end_at = start_at + args.reaction + args.steady
        print(f"sitting run: logins for {args.login_window:.0f} s, start at +{start_at - time.time():.0f} s, "
              f"then {args.steady:.0f} s of sitting", flush=True)
        rows = run_locust(hosts=hosts, env=load_env, seconds=end_at - time.time(),
                          users={"candidates": len(population.candidates), "proctors": len(population.proctors),
                                 "applicants": len(population.applicants)}, log=out_dir / f"sitting-{stamp}.tsv")
        steady_from = start_at + args.reaction + 5
        steady_seconds = end_at - 3 - steady_from
        report.append(markdown(f"Check-in: {len(population.candidates)} logins over {args.login_window:g} s, "
                               "proctors signing in and watching their boards", summarise(rows, last=start_at)))
        report.append(markdown(f"Synchronised start: {len(population.candidates)} candidates clicking Start within "
                               f"{args.reaction:g} s of the slot's start (and answering once started)",
                               summarise(rows, start_at, steady_from)))
        report.append(markdown(f"Steady sitting mix ({steady_seconds:.0f} s window after the start)",
                               summarise(rows, steady_from, end_at - 3), steady_seconds))

        # Answer saving flat out, against the product.
        save_env = dict(load_env, LOAD_MODE="save")
        save_rows = run_locust(hosts=hosts, env=save_env, seconds=args.save_seconds + 10,
                               users={"candidates": args.save_users}, log=out_dir / f"save-{stamp}.tsv")
        first_save = min((r[0] for r in save_rows if r[1] == ANSWER), default=0) + 5
        product_saves = summarise(save_rows, first_save, first_save + args.save_seconds)
        report.append(markdown(f"Answer saving flat out ({args.save_users} users, no think time)", product_saves))
    finally:
        product.down()

    # The bare baseline, on the same gunicorn settings behind the same nginx, and the same database server.
    create_table(url)
    baseline = stack(BASELINE_APP)
    try:
        baseline.up()
        hosts = [baseline.front]
        base_rows = run_locust(hosts=hosts, env=dict(save_env, LOAD_BASELINE="1"), seconds=args.save_seconds + 10,
                               users={"candidates": args.save_users}, log=out_dir / f"baseline-save-{stamp}.tsv")
        first_base = min((r[0] for r in base_rows), default=0) + 5
        baseline_saves = summarise(base_rows, first_base, first_base + args.save_seconds)
        report.append(markdown("Bare baseline, the same flat-out saving", baseline_saves))
        mix_start = time.time() + 5
        mix_env = dict(load_env, LOAD_BASELINE="1", LOAD_START_AT=str(mix_start), LOAD_RUSH_AFTER="0")
        mix_rows = run_locust(hosts=hosts, env=mix_env, seconds=args.reaction + args.steady + 5,
                              users={"candidates": len(population.candidates), "proctors": len(population.proctors)},
                              log=out_dir / f"baseline-mix-{stamp}.tsv")
        mix_from = mix_start + args.reaction + 5
        mix_seconds = mix_start + args.reaction + args.steady - 3 - mix_from
        report.append(markdown(f"Bare baseline, the same steady mix ({mix_seconds:.0f} s window)",
                               summarise(mix_rows, mix_from, mix_from + mix_seconds), mix_seconds))
    finally:
        baseline.down()
        if not args.keep:
            drop_database(args.database)

    ours = product_saves.get(ANSWER, {}).get("rate", 0.0)
    bare = sum(s["rate"] for s in baseline_saves.values())
    report.append(f"Answer saving: {ours:.0f}/s against the bare baseline's {bare:.0f}/s: "
                  f"**{ours / bare:.2f}** of it.\n" if bare else "The baseline recorded no requests.\n")
    text = "\n".join(report)
    (out_dir / f"results-{stamp}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
