"""Candidates of a slot logging in at the same instant, as real concurrent clients on PostgreSQL.

Each login assembles a form and counts its items' exposure in the same transaction; forms
share most of the bank, so logins compete for the same counters. They must queue, not
deadlock (the first load run lost a third of its logins to deadlocks), and every count must land.
"""
from __future__ import annotations

import numpy as np
from sqlalchemy import func, select

from delivery import sittings
from delivery.models import Sitting, SittingItem
from itembank.assembly_models import ItemExposure
from persistence import session_factory
from tests.helpers import booked_candidate
from tests.test_booking_concurrency import postgresql_only, race  # noqa: F401 (a fixture)

LOGINS = 12


def test_simultaneous_logins_each_get_a_form_and_count_every_exposure(postgresql_only, engine, session, program,
                                                                      clock):
    people = [booked_candidate(session, program, clock.now) for _ in range(LOGINS)]
    exposures_before = session.scalar(select(func.coalesce(func.sum(ItemExposure.scored + ItemExposure.pretest), 0)))
    sessions = session_factory(engine)

    def log_in(n: int) -> int:
        with sessions() as own:
            sitting, _token = sittings.candidate_login(own, program, people[n].admission_code,
                                                       people[n].date_of_birth, clock.now, np.random.default_rng(n),
                                                       seat_token=people[n].seat_token)
            own.commit()
            return sitting.id

    outcomes = race(LOGINS, log_in)
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    session.expire_all()
    ids = set(outcomes)
    assert len(ids) == LOGINS
    assert session.scalar(select(func.count(Sitting.id)).where(Sitting.id.in_(ids))) == LOGINS
    items = session.scalar(select(func.count()).select_from(SittingItem).where(SittingItem.sitting_id.in_(ids)))
    assert items == LOGINS * program.items_per_sitting
    exposures_after = session.scalar(select(func.sum(ItemExposure.scored + ItemExposure.pretest)))
    assert exposures_after - exposures_before == items
