"""sync job not before

Revision ID: 7c3e9a41d2f5
Revises: b86f43f856a0
Create Date: 2026-12-06 04:25:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c3e9a41d2f5'
down_revision = 'b86f43f856a0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_before', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('sync_job', schema=None) as batch_op:
        batch_op.drop_column('not_before')
