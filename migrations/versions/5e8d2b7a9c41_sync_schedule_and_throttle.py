"""sync schedule and tenant throttle

Revision ID: 5e8d2b7a9c41
Revises: e5a7b9c1d3f2
Create Date: 2026-12-06 06:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e8d2b7a9c41'
down_revision = 'e5a7b9c1d3f2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sync_schedule',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'sync_throttle',
        sa.Column('configuration_id', sa.Integer(), nullable=False),
        sa.Column('strikes', sa.Integer(), nullable=False),
        sa.Column('since', sa.DateTime(), nullable=False),
        sa.Column('paused_until', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['configuration_id'], ['configuration.id']),
        sa.PrimaryKeyConstraint('configuration_id'),
    )


def downgrade():
    op.drop_table('sync_throttle')
    op.drop_table('sync_schedule')
