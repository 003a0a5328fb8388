"""security: enrolled seat PCs, candidates' personal data and amended keys encrypted at rest

Revision ID: 0930_security
Revises: 0920
Create Date: 2026-12-01 14:30:00

- ``seat_enrolments``: the PCs a proctor enrolled as seats of their centre (centers.seats).
- ``candidates``: name, name_kana, date_of_birth and email become text columns holding
  AES-GCM ciphertext under the personal-data key (persistence.personal); ``email_hash``, a
  keyed hash of the normalised address, replaces the unique index on the address. Every
  existing row is encrypted here; the downgrade decrypts them again. Both need the key
  (``CBT_PERSONAL_DATA_KEY`` or ``personal-data.key`` in ``CBT_KEY_DIR``, created by the
  upgrade if missing).
- ``scoring_amendments.key``: the corrected key is encrypted under the content keys.
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

from persistence.personal import lookup_hash, open_sealed, personal_key, seal

revision = '0930_security'
down_revision = '0930_centre_names'
branch_labels = None
depends_on = None

PERSONAL = ("name", "name_kana", "date_of_birth", "email")


def _date_text(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]


def upgrade() -> None:
    op.create_table(
        "seat_enrolments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("seat_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("link_hash", sa.String(64), nullable=True),
        sa.Column("link_expires_at", sa.DateTime(), nullable=True),
        sa.Column("enrolled_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["centre_id"], ["centres.id"], name=op.f("fk_seat_enrolments_centre_id_centres")),
        sa.ForeignKeyConstraint(["seat_id"], ["seats.id"], name=op.f("fk_seat_enrolments_seat_id_seats")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_enrolments")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_seat_enrolments_token_hash")),
        sa.UniqueConstraint("link_hash", name=op.f("uq_seat_enrolments_link_hash")),
    )
    op.create_index(op.f("ix_seat_enrolments_centre_id"), "seat_enrolments", ["centre_id"])
    op.create_index(op.f("ix_seat_enrolments_seat_id"), "seat_enrolments", ["seat_id"])

    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("candidates") as table:
        table.drop_constraint("uq_candidates_email", type_="unique")
        for column in PERSONAL:
            table.alter_column(column, type_=sa.Text(), existing_nullable=column in ("name_kana", "email"),
                               postgresql_using=f"{column}::text" if postgres else None)
        table.add_column(sa.Column("email_hash", sa.String(64), nullable=True))
        table.create_unique_constraint("uq_candidates_email_hash", ["email_hash"])

    bind = op.get_bind()
    key = personal_key()
    candidates = sa.table("candidates", sa.column("id"), *(sa.column(c) for c in PERSONAL), sa.column("email_hash"))
    rows = bind.execute(sa.select(candidates.c.id, *(candidates.c[c] for c in PERSONAL))).all()
    for row in rows:
        values = dict(zip(PERSONAL, row[1:]))
        values["date_of_birth"] = _date_text(values["date_of_birth"])
        email = values["email"]
        sealed = {c: (seal(str(v), key) if v is not None else None) for c, v in values.items()}
        sealed["email_hash"] = lookup_hash(email.strip().lower(), key) if email else None
        bind.execute(candidates.update().where(candidates.c.id == row[0]).values(**sealed))

    amendments = sa.table("scoring_amendments", sa.column("id"), sa.column("key"))
    keys = bind.execute(sa.select(amendments.c.id, amendments.c.key).where(amendments.c.key.is_not(None))).all()
    with op.batch_alter_table("scoring_amendments") as table:
        table.alter_column("key", type_=sa.String(128), existing_nullable=True,
                           postgresql_using="key::text" if postgres else None)
    if keys:
        from itembank.content import seal_value

        for amendment_id, value in keys:
            bind.execute(amendments.update().where(amendments.c.id == amendment_id)
                         .values(key=seal_value(int(value))))


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    amendments = sa.table("scoring_amendments", sa.column("id"), sa.column("key"))
    keys = bind.execute(sa.select(amendments.c.id, amendments.c.key).where(amendments.c.key.is_not(None))).all()
    if keys:
        from itembank.content import open_value

        for amendment_id, stored in keys:
            bind.execute(amendments.update().where(amendments.c.id == amendment_id)
                         .values(key=str(open_value(stored))))
    with op.batch_alter_table("scoring_amendments") as table:
        table.alter_column("key", type_=sa.Integer(), existing_nullable=True,
                           postgresql_using="key::integer" if postgres else None)

    key = personal_key()
    # The date goes to a new column: SQLite would cast the text to a number on the way back to DATE.
    with op.batch_alter_table("candidates") as table:
        table.add_column(sa.Column("date_of_birth_plain", sa.Date(), nullable=True))
    candidates = sa.table("candidates", sa.column("id"), *(sa.column(c) for c in PERSONAL),
                          sa.column("date_of_birth_plain", sa.Date()))
    for row in bind.execute(sa.select(candidates.c.id, *(candidates.c[c] for c in PERSONAL))).all():
        plain = {c: (open_sealed(v, key) if v is not None else None) for c, v in zip(PERSONAL, row[1:])}
        born = plain.pop("date_of_birth")
        plain["date_of_birth_plain"] = dt.date.fromisoformat(born) if born else None
        bind.execute(candidates.update().where(candidates.c.id == row[0]).values(**plain))
    with op.batch_alter_table("candidates") as table:
        table.drop_constraint("uq_candidates_email_hash", type_="unique")
        table.drop_column("email_hash")
        table.drop_column("date_of_birth")
        for column, kind in (("name", sa.String(128)), ("name_kana", sa.String(128)), ("email", sa.String(256))):
            table.alter_column(column, type_=kind, existing_nullable=column != "name",
                               postgresql_using=f"{column}::varchar" if postgres else None)
        table.create_unique_constraint("uq_candidates_email", ["email"])
    with op.batch_alter_table("candidates") as table:
        table.alter_column("date_of_birth_plain", new_column_name="date_of_birth", existing_type=sa.Date(),
                           nullable=False)
    op.drop_index(op.f("ix_seat_enrolments_seat_id"), table_name="seat_enrolments")
    op.drop_index(op.f("ix_seat_enrolments_centre_id"), table_name="seat_enrolments")
    op.drop_table("seat_enrolments")
