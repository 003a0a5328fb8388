"""centre states: status checks, one booking per candidate, sign-ins, time added

- CHECK constraints keep the status columns of slots, bookings and sittings to their
  enums' values (centers.models.SlotStatus, BookingStatus; delivery.models.SittingStatus).
- ``bookings.program_code`` (existing rows: the default program) and a partial unique
  index: one booking not yet taken up ('booked') per candidate and program. Before it is
  built, bookings of days gone by still 'booked' become 'no_show' (the day report counted
  them so already), and where a candidate holds more than one upcoming 'booked' booking
  (left by the booking race this revision's code fixes) all but the first made are
  cancelled; their ids are printed.
- Every slot's counter is counted again from the bookings holding a place: a no-show now
  gives its place back, as the booking service does from this revision on.
- ``sittings.added_minutes``: the minutes proctors have added, for the program's cap.
- ``sign_ins``: the server's half of staff and applicant sessions.

On SQLite the status checks rebuild three tables that others refer to, so foreign keys
are switched off around the rebuild (as SQLite's documentation prescribes for table
changes) and checked afterwards.

Revision ID: 0900
Revises: 0400
Create Date: 2026-12-01 09:00:00
"""
import sqlalchemy as sa
from alembic import op

import persistence
from persistence.migrations.rebuilds import table_rebuilds

revision = '0900'
down_revision = '0400'
branch_labels = None
depends_on = None

BOOKING_STATUSES = "'booked', 'checked_in', 'cancelled', 'no_show'"
SITTING_STATUSES = "'waiting', 'in_progress', 'paused', 'finished', 'ended'"
SLOT_STATUSES = "'open', 'closed'"
DEFAULT_PROGRAM = "it-passport"


def upgrade() -> None:
    with table_rebuilds():
        with op.batch_alter_table('bookings', schema=None) as batch_op:
            batch_op.add_column(sa.Column('program_code', sa.String(length=32), nullable=False,
                                          server_default=DEFAULT_PROGRAM))
        with op.batch_alter_table('sittings', schema=None) as batch_op:
            batch_op.add_column(sa.Column('added_minutes', sa.Integer(), nullable=False, server_default='0'))

        # Bookings of days gone by that were never taken up: no-shows.
        op.execute("""UPDATE bookings SET status = 'no_show', seat_id = NULL
                      WHERE status = 'booked' AND slot_id IN (SELECT id FROM slots WHERE date < CURRENT_DATE)""")
        # A candidate's extra upcoming bookings, left by the booking race: all but the first made are cancelled.
        extra = op.get_bind().execute(sa.text("""
            SELECT b.id, b.candidate_id FROM bookings b
            WHERE b.status = 'booked' AND EXISTS (
                SELECT 1 FROM bookings first WHERE first.candidate_id = b.candidate_id AND first.status = 'booked'
                  AND first.program_code = b.program_code AND first.id < b.id)""")).fetchall()
        if extra:
            print(f"0900: cancelled {len(extra)} extra booking(s) of candidates who held more than one: "
                  + ", ".join(f"booking {booking} (candidate {candidate})" for booking, candidate in extra))
            op.get_bind().execute(sa.text("UPDATE bookings SET status = 'cancelled', seat_id = NULL, "
                                          "cancelled_at = CURRENT_TIMESTAMP WHERE id IN :ids")
                                  .bindparams(sa.bindparam("ids", expanding=True)), {"ids": [e[0] for e in extra]})
        op.execute("""UPDATE slots SET booked = (SELECT COUNT(*) FROM bookings
                      WHERE bookings.slot_id = slots.id AND bookings.status IN ('booked', 'checked_in'))""")

        with op.batch_alter_table('slots', schema=None) as batch_op:
            batch_op.create_check_constraint('status', f"status IN ({SLOT_STATUSES})")
        with op.batch_alter_table('bookings', schema=None) as batch_op:
            batch_op.create_check_constraint('status', f"status IN ({BOOKING_STATUSES})")
        with op.batch_alter_table('sittings', schema=None) as batch_op:
            batch_op.create_check_constraint('status', f"status IN ({SITTING_STATUSES})")
        op.create_index('uq_bookings_candidate_program', 'bookings', ['candidate_id', 'program_code'], unique=True,
                        sqlite_where=sa.text("status = 'booked'"), postgresql_where=sa.text("status = 'booked'"))

        op.create_table('sign_ins',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('candidate_id', sa.Integer(), nullable=True),
        sa.Column('created_at', persistence.base.UTCDateTime(), nullable=False),
        sa.Column('seen_at', persistence.base.UTCDateTime(), nullable=False),
        sa.CheckConstraint('(staff_id IS NULL) <> (candidate_id IS NULL)', name=op.f('ck_sign_ins_one_account')),
        sa.ForeignKeyConstraint(['candidate_id'], ['candidates.id'], name=op.f('fk_sign_ins_candidate_id_candidates')),
        sa.ForeignKeyConstraint(['staff_id'], ['staff_accounts.id'], name=op.f('fk_sign_ins_staff_id_staff_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_ins'))
        )
        with op.batch_alter_table('sign_ins', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_sign_ins_candidate_id'), ['candidate_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_sign_ins_seen_at'), ['seen_at'], unique=False)
            batch_op.create_index(batch_op.f('ix_sign_ins_staff_id'), ['staff_id'], unique=False)


def downgrade() -> None:
    with table_rebuilds():
        with op.batch_alter_table('sign_ins', schema=None) as batch_op:
            batch_op.drop_index(batch_op.f('ix_sign_ins_staff_id'))
            batch_op.drop_index(batch_op.f('ix_sign_ins_seen_at'))
            batch_op.drop_index(batch_op.f('ix_sign_ins_candidate_id'))
        op.drop_table('sign_ins')
        op.drop_index('uq_bookings_candidate_program', table_name='bookings')
        with op.batch_alter_table('sittings', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_sittings_status'), type_='check')
            batch_op.drop_column('added_minutes')
        with op.batch_alter_table('bookings', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_bookings_status'), type_='check')
            batch_op.drop_column('program_code')
        with op.batch_alter_table('slots', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_slots_status'), type_='check')
