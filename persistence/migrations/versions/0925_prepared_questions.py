"""prepared questions: a sitting's questions rendered once, at login

Revision ID: 0925
Revises: 0920
Create Date: 2026-12-01 14:00:00

The 100 questions of a sitting are decrypted, put in the sitting's order and
rendered into the JSON the page reads when the candidate logs in at the seat
(during check-in); gzip-compressed and sealed under the content key. The start of
the slot then reads one row instead of decrypting a hundred. A sitting made before
has none: its questions are prepared on first read.
"""
import sqlalchemy as sa
from alembic import op

revision = '0925'
down_revision = '0920'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sitting_questions",
        sa.Column("sitting_id", sa.Integer, sa.ForeignKey("sittings.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("etag", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sitting_questions")
