"""centre names in English beside the Japanese

Revision ID: 0930_centre_names
Revises: 0925
Create Date: 2026-12-01 14:00:00

A centre's ``name`` is its Japanese name (札幌テストセンター); ``name_en`` the name English
readers see (Sapporo Test Centre). Empty for centres made before: they show ``name``.
"""
import sqlalchemy as sa
from alembic import op

revision = '0930_centre_names'
down_revision = '0925'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("centres") as table:
        table.add_column(sa.Column("name_en", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("centres") as table:
        table.drop_column("name_en")
