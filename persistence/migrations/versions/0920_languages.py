"""languages: the booking's language and the candidate's name in kana

Revision ID: 0920
Revises: 0910
Create Date: 2026-12-01 13:50:00

A booking records the language its candidate chose (the sitting is shown in it); a
candidate's name is read aloud from its kana reading (フリガナ) at identity checks.
Both are empty for rows made before.
"""
import sqlalchemy as sa
from alembic import op

from persistence.migrations.rebuilds import table_rebuilds

revision = '0920'
down_revision = '0910'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bookings") as table:
        table.add_column(sa.Column("language", sa.String(8), nullable=True))
    with op.batch_alter_table("candidates") as table:
        table.add_column(sa.Column("name_kana", sa.String(128), nullable=True))


def downgrade() -> None:
    with table_rebuilds():
        with op.batch_alter_table("candidates") as table:
            table.drop_column("name_kana")
        with op.batch_alter_table("bookings") as table:
            table.drop_column("language")
