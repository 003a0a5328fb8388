"""forms, exposure, design studies, option order

Revision ID: 0300
Revises: 0004
Create Date: 2026-11-27 00:16:37.701514
"""
import sqlalchemy as sa
from alembic import op

import persistence

revision = '0300'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('design_studies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', persistence.base.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('pool', sa.String(length=200), nullable=False),
    sa.Column('n_candidates', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_design_studies'))
    )
    op.create_table('forms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('program_code', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('batch', sa.String(length=32), nullable=False),
    sa.Column('created_at', persistence.base.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('published_at', persistence.base.UTCDateTime(), nullable=True),
    sa.Column('published_by', sa.String(length=64), nullable=True),
    sa.Column('retired_at', persistence.base.UTCDateTime(), nullable=True),
    sa.Column('retired_by', sa.String(length=64), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.Column('information', sa.JSON(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_forms')),
    sa.UniqueConstraint('code', name=op.f('uq_forms_code'))
    )
    with op.batch_alter_table('forms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_forms_batch'), ['batch'], unique=False)
        batch_op.create_index(batch_op.f('ix_forms_status'), ['status'], unique=False)

    op.create_table('item_exposure',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('scored', sa.Integer(), nullable=False),
    sa.Column('pretest', sa.Integer(), nullable=False),
    sa.Column('sittings_before', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_exposure_item_id_items')),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_item_exposure'))
    )
    op.create_table('form_items',
    sa.Column('form_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('item_version_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=32), nullable=False),
    sa.Column('category', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['form_id'], ['forms.id'], name=op.f('fk_form_items_form_id_forms')),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_form_items_item_id_items')),
    sa.ForeignKeyConstraint(['item_version_id'], ['item_versions.id'], name=op.f('fk_form_items_item_version_id_item_versions')),
    sa.PrimaryKeyConstraint('form_id', 'position', name=op.f('pk_form_items'))
    )
    with op.batch_alter_table('form_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_form_items_item_id'), ['item_id'], unique=False)

    with op.batch_alter_table('sitting_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('option_order', sa.String(length=32), nullable=True))

    with op.batch_alter_table('sittings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('form_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_sittings_form_id_forms'), 'forms', ['form_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('sittings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sittings_form_id_forms'), type_='foreignkey')
        batch_op.drop_column('form_id')

    with op.batch_alter_table('sitting_items', schema=None) as batch_op:
        batch_op.drop_column('option_order')

    with op.batch_alter_table('form_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_form_items_item_id'))

    op.drop_table('form_items')
    op.drop_table('item_exposure')
    with op.batch_alter_table('forms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_forms_status'))
        batch_op.drop_index(batch_op.f('ix_forms_batch'))

    op.drop_table('forms')
    op.drop_table('design_studies')
