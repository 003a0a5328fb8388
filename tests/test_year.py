"""A simulated year through booking, delivery and scoring: the spec's mix, statistics, reproduction."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from centers.demo import ensure_demo_centre
from delivery.statistics import operation_report
from delivery.year import IT_SHARE_OF_WORKING, NO_SHOW_RATE, WORKING_SHARE, simulate_year
from itembank.sample import load_sample_bank
from persistence import session_factory, upgrade_database
from tests.pretest_simulation import fast_sqlite_engine

CANDIDATES = 400


def within(observed: float, expected: float, n: int, z: float = 4.0) -> bool:
    """Within z binomial standard errors: the tolerance is the sampling error of n draws."""
    return abs(observed - expected) <= z * math.sqrt(expected * (1 - expected) / n)


@pytest.mark.slow
def test_a_simulated_year_gives_the_specs_mix_and_reproducible_scores(tmp_path, program):
    engine = fast_sqlite_engine(f"sqlite:///{tmp_path / 'year.sqlite3'}")
    upgrade_database(engine)
    with session_factory(engine)() as session:
        load_sample_bank(session, program)
        ensure_demo_centre(session)
        session.commit()
        first_day = dt.date(2026, 4, 1)
        report = simulate_year(engine, session, program, candidates=CANDIDATES, first_day=first_day,
                               rng=np.random.default_rng(2019))

        assert report.applicants == CANDIDATES
        assert within(1 - report.sittings / report.applicants, NO_SHOW_RATE, report.applicants)
        # The score each candidate saw at the end equals a batch rescore of the whole year.
        assert report.reproduction.results == report.sittings
        assert report.reproduction.all_identical, report.reproduction.mismatched_result_ids
        assert report.reproduction.largest_theta_difference < 1e-9

        year = operation_report(session, program, since=first_day, until=first_day + dt.timedelta(days=365))
        s = year.summary
        assert (s.applicants, s.examinees) == (report.applicants, report.sittings)
        assert within(s.working_share, WORKING_SHARE, s.examinees)
        assert within(s.it_share_of_working, IT_SHARE_OF_WORKING, round(s.examinees * s.working_share))
        # Pass rates: the spec's 62.8 % and 50.1 %, up to sampling and measurement error.
        assert abs(s.pass_rate_working - 0.628) < 0.12 and abs(s.pass_rate_students - 0.501) < 0.12
        assert s.pass_rate_working > s.pass_rate_students
        assert 18 < s.average_age_of_passers < 45
        months = year.breakdowns["month"]
        assert len(months.keys) >= 12 and months.sittings.sum() == s.examinees
        assert year.breakdowns["region"].sittings.sum() == s.examinees
        assert year.distribution[1].sum() == s.examinees
    engine.dispose()
