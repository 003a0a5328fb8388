"""bank services: no answer key in the stored calibration statistics

Revision ID: 0910
Revises: 0400
Create Date: 2026-12-01 12:00:00

A pretest run used to keep each item's key in clear in its statistics
(``distractors.key``), which the native export also carried. The key belongs to the
item's encrypted content only: the review screen now reads it from there. This
takes it out of the runs already stored. No schema change.
"""
import sqlalchemy as sa
from alembic import op

revision = '0910'
down_revision = '0900'
branch_labels = None
depends_on = None

calibration_items = sa.table("calibration_items", sa.column("id", sa.Integer), sa.column("statistics", sa.JSON))


def _rewrite(change) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(calibration_items.c.id, calibration_items.c.statistics)).all()
    for row_id, statistics in rows:
        distractors = (statistics or {}).get("distractors") if isinstance(statistics, dict) else None
        if isinstance(distractors, dict) and change(distractors):
            connection.execute(calibration_items.update().where(calibration_items.c.id == row_id)
                               .values(statistics={**statistics, "distractors": distractors}))


def upgrade() -> None:
    def drop_key(distractors: dict) -> bool:
        return distractors.pop("key", None) is not None

    _rewrite(drop_key)


def downgrade() -> None:
    # The keys are not put back in clear; code before this revision reads -1 as "no option is the key".
    def placeholder(distractors: dict) -> bool:
        if "key" in distractors:
            return False
        distractors["key"] = -1
        return True

    _rewrite(placeholder)
