"""sync refusals and events without uid

Revision ID: 5e1f3a7c9b20
Revises: dafe38e3c33a
Create Date: 2026-12-06 03:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1f3a7c9b20'
down_revision = 'dafe38e3c33a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sync_refusal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=600), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=True),
    sa.Column('refused_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connection.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('connection_id', 'key')
    )
    with op.batch_alter_table('sync_refusal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_refusal_connection_id'), ['connection_id'], unique=False)

    with op.batch_alter_table('connection', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feed_events_without_uid', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('connection', schema=None) as batch_op:
        batch_op.drop_column('feed_events_without_uid')

    with op.batch_alter_table('sync_refusal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_refusal_connection_id'))

    op.drop_table('sync_refusal')
