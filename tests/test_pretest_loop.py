"""The pretest loop end to end: sittings through the real delivery code, a calibration run, approval."""
from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest
from scipy.stats import chi2 as stats_chi2
from sqlalchemy import select

from centers.demo import ensure_demo_centre
from delivery.pretest import gather_responses
from itembank import calibration, lifecycle
from itembank.bank import entry, pool
from itembank.content import unpack
from itembank.models import Item, ItemVersion
from itembank.sample import load_sample_bank, sample_items
from persistence import session_factory, upgrade_database
from tests.pretest_simulation import fast_sqlite_engine, simulate_sittings

PSY = {"actor": "psychometrician", "actor_role": "psychometrician"}
# Responses per pretest item: at 800 the SE of b is 0.1 to 0.15 for a typical item,
# so a 3.5 SE tolerance is a few tenths, and all sixteen a/b checks pass by
# chance with probability above 0.99 (the seed is fixed, so the run is repeatable).
N_SITTINGS = 800


@pytest.fixture
def stretch(tmp_path, program):
    engine = fast_sqlite_engine(f"sqlite:///{tmp_path / 'pretest.sqlite3'}")
    upgrade_database(engine)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with session_factory(engine)() as session:
        load_sample_bank(session, program)
        ensure_demo_centre(session)
        session.commit()
        # Keep one pretest item per blueprint pretest slot, so that every sitting answers all of them.
        kept = []
        for field in program.fields:
            codes = sorted(i.code for i in pool(session, "pretest") if i.field == field.code)
            kept += codes[: field.pretest]
            for code in codes[field.pretest:]:
                lifecycle.move(session, program, code, "reviewed", now=now, reason="held back for the test", **PSY)
        session.commit()
        truth = {raw["id"]: (raw["a"], raw["b"], raw["c"]) for raw in sample_items()}
        started = time.perf_counter()
        simulate_sittings(engine, session, program, truth, n=N_SITTINGS, now=now, rng=np.random.default_rng(20261126))
        elapsed = time.perf_counter() - started
        yield session, now, kept, truth, elapsed
    engine.dispose()


@pytest.mark.slow
def test_a_calibration_run_recovers_the_pretest_items_and_approval_makes_them_operational(stretch, program):
    session, now, kept, truth, elapsed = stretch
    print(f"\n{N_SITTINGS} sittings through login/start/answers/finish in {elapsed:.1f} s")
    data = gather_responses(session)
    assert data.n_sittings == N_SITTINGS and data.pretest_slot.sum() == len(kept) == 8

    later = now + dt.timedelta(hours=2)
    run = calibration.run_pretest_calibration(session, program, data, now=later, **PSY)
    session.commit()
    assert run.converged and run.n_sittings == N_SITTINGS
    assert {e.item.code for e in run.items} == set(kept)
    # The sample's candidates were drawn from N(0.25, 1.1) on the operational scale.
    assert abs(run.latent_mean - 0.25) < 0.1 and abs(run.latent_sd - 1.1) < 0.1
    for e in run.items:
        a, b, c = truth[e.item.code]
        assert e.n_responses == N_SITTINGS
        assert abs(e.b - b) < 3.5 * e.se_b + 0.05, (e.item.code, e.b, b, e.se_b)
        assert abs(e.a - a) < 3.5 * e.se_a + 0.05, (e.item.code, e.a, a, e.se_a)
        assert abs(e.c - c) < 0.15
        stats = e.statistics
        assert 0 < stats["p_value"] < 1 and stats["point_biserial"] > 0.1
        # The key is not in the stored statistics (they are kept in clear): it is the calibrated version's.
        key = unpack(session.get(ItemVersion, e.item_version_id).content).key
        assert "key" not in stats["distractors"] and stats["distractors"]["point_biserial"][key] > 0
        assert set(stats["dif"]) == {"occupation", "company_type", "region"}
        assert len(stats["icc"]["observed"]) == 10
        # S-X2 on imputed complete data: computed, with degrees of freedom to spare.
        assert stats["fit"]["df"] > 5 and stats["fit"]["sx2"] >= 0 and 0 <= stats["fit"]["p"] <= 1
    # The responses come from the model, so misfit is rare: p < .001 for none of the 8 items.
    assert all(e.statistics["fit"]["p"] > 0.001 for e in run.items), [e.statistics["fit"] for e in run.items]
    errors = np.array([e.b - truth[e.item.code][1] for e in run.items])
    se = np.array([e.se_b for e in run.items])
    # No systematic shift (a c prior off the bank's guessing level would move every b one way):
    # the mean error is within 3.5 of its standard error.
    assert abs(errors.mean()) < 3.5 * np.sqrt(np.sum(se**2)) / len(se), (errors, se)
    # The errors are as large as their standard errors say, no larger: sum (error / se)^2 is
    # chi-square with 8 df, under its 99.9th percentile (26.1) unless the SEs are too small.
    assert np.sum((errors / se) ** 2) < stats_chi2.ppf(0.999, len(se)), (errors, se)

    for code in kept:
        calibration.approve(session, program, run.id, code, now=later, note="fits", **PSY)
    session.commit()
    for code in kept:
        found = entry(session, code)
        e = next(x for x in run.items if x.item.code == code)
        assert found.item.status == "operational"
        assert found.version.parameter_source == "calibration" and found.version.calibration_run_id == run.id
        assert (found.version.a, found.version.b, found.version.c) == (e.a, e.b, e.c)
        assert found.version.n_responses == N_SITTINGS and found.version.se_b == e.se_b
        assert found.version.version == 2 and found.item.history[-1].calibration_run_id == run.id
    # The old version, the one candidates saw, is still there and readable.
    first = session.scalar(select(Item).where(Item.code == kept[0])).versions[0]
    assert first.version == 1 and first.parameter_source == "synthetic"
