"""What login throttling adds to a sign-in.

Prints, in one process on one database, the best time of:
  1. the password check alone (werkzeug's scrypt, N = 2^15): the baseline, what every
     staff or registered-candidate sign-in pays anyway;
  2. the throttle's check (one indexed SELECT over the attempt's three keys);
  3. counting a failure (three rows upserted and locked, in one transaction);
and the throttle's share of a failed sign-in. The candidate's hot path is not a sign-in
and does none of this.

Run: .venv/bin/python benchmarks/login_throttle.py [--database URL] [--repeat N]
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from werkzeug.security import check_password_hash, generate_password_hash  # noqa: E402

from delivery import throttle  # noqa: E402
from persistence import create_database_engine, session_factory, upgrade_database  # noqa: E402


def best_of(function, repeat: int) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by other jobs on the machine)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    engine = create_database_engine(url)
    upgrade_database(engine)
    sessions = session_factory(engine)
    policy = throttle.ThrottlePolicy()
    now = dt.datetime.now(dt.timezone.utc)
    stored = generate_password_hash("the-right-password")

    def password_check():
        check_password_hash(stored, "a-wrong-password")

    def attempt():
        return throttle.Attempt("staff", f"bench-{uuid.uuid4().hex[:8]}", f"203.0.113.{uuid.uuid4().int % 250 + 1}")

    def check():
        with sessions() as session:
            throttle.check(session, attempt(), now)

    def failure():
        with sessions() as session:
            throttle.failed(session, policy, attempt(), now)
            session.commit()

    baseline = best_of(password_check, max(5, args.repeat // 3))
    checked = best_of(check, args.repeat)
    failed = best_of(failure, args.repeat)
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"backend {engine.dialect.name}")
    print(f"password check (scrypt, baseline): {baseline * 1000:8.2f} ms  (1x)")
    print(f"throttle check:                    {checked * 1000:8.2f} ms  ({checked / baseline:.3f}x)")
    print(f"counting a failure:                {failed * 1000:8.2f} ms  ({failed / baseline:.3f}x)")
    print(f"throttle share of a failed sign-in: {(checked + failed) / (baseline + checked + failed):.1%}")


if __name__ == "__main__":
    main()
