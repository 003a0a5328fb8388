"""What encryption at rest costs the candidate's GET /api/sitting (100 items decrypted per call).

Prints, in one process on one database:
  1. unpack() of 100 stored versions (AES-256-GCM + JSON) against json.loads of the
     same 100 items in clear (the baseline: what the walking skeleton did);
  2. the whole GET /api/sitting of a started sitting through the Flask app, and the
     share of it spent decrypting.

Run: .venv/bin/python benchmarks/sitting_content.py [--repeat N]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select  # noqa: E402

from centers.demo import ensure_demo_centre  # noqa: E402
from delivery.models import Sitting, SittingItem  # noqa: E402
from delivery.web import create_app  # noqa: E402
from itembank.content import to_dict, unpack  # noqa: E402
from itembank.models import ItemVersion  # noqa: E402
from itembank.program import load_program  # noqa: E402
from itembank.sample import load_sample_bank  # noqa: E402
from persistence import create_database_engine, session_factory, upgrade_database  # noqa: E402
from tests.helpers import booked_candidate, login_candidate, start_sitting  # noqa: E402


def best_of(function, repeat: int) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by the other engineers' jobs)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    program = load_program()
    with tempfile.TemporaryDirectory() as folder:
        engine = create_database_engine(f"sqlite:///{folder}/bench.sqlite3")
        upgrade_database(engine)
        with session_factory(engine)() as session:
            load_sample_bank(session, program)
            ensure_demo_centre(session)
            session.commit()
            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            booked = booked_candidate(session, program, now)
        app = create_app({"ENGINE": engine, "SECRET_KEY": "bench", "TESTING": True, "CLOCK": lambda: now})
        client = app.test_client()
        login_candidate(client, booked)
        start_sitting(client)
        with session_factory(engine)() as session:
            sitting = session.scalar(select(Sitting).where(Sitting.booking_id == booked.booking_id))
            ids = [i.item_version_id for i in session.scalars(select(SittingItem).where(
                SittingItem.sitting_id == sitting.id))]
            stored = [v.content for v in session.scalars(select(ItemVersion).where(ItemVersion.id.in_(ids)))]
        clear = [json.dumps(to_dict(unpack(s)), ensure_ascii=False, sort_keys=True) for s in stored]

        decrypt = best_of(lambda: [unpack(s) for s in stored], args.repeat)
        baseline = best_of(lambda: [json.loads(c) for c in clear], args.repeat)
        request = best_of(lambda: client.get("/api/sitting"), max(20, args.repeat // 10))
        assert client.get("/api/sitting").status_code == 200
        engine.dispose()

    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}")
    print(f"items per call                       {len(stored)}")
    print(f"decrypt + parse 100 items (unpack)   {decrypt * 1e3:8.3f} ms")
    print(f"parse 100 items in clear (baseline)  {baseline * 1e3:8.3f} ms   ratio {decrypt / baseline:5.2f}x")
    print(f"whole GET /api/sitting (SQLite)      {request * 1e3:8.3f} ms   decryption share "
          f"{(decrypt - baseline) / request:6.1%}")


if __name__ == "__main__":
    main()
