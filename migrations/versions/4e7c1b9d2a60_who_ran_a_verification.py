"""who ran a verification: the actor of each link, so a re-check by support is told apart

Revision ID: 4e7c1b9d2a60
Revises: 8b4f2d6a1c3e
Create Date: 2026-12-08 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4e7c1b9d2a60'
down_revision = '8b4f2d6a1c3e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('verification', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('actor', sa.String(length=320), nullable=True))


def downgrade():
    with op.batch_alter_table('verification', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('actor')
