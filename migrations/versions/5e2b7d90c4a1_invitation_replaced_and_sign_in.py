"""invitation: replaced by a newer link, or made by an administrator's Microsoft sign-in

Revision ID: 5e2b7d90c4a1
Revises: 4d8b2e6f1a37
Create Date: 2026-12-06 07:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e2b7d90c4a1'
down_revision = '4d8b2e6f1a37'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('replaced', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column('signed_in_as', sa.String(length=320), nullable=True))


def downgrade():
    with op.batch_alter_table('invitation', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('signed_in_as')
        batch_op.drop_column('replaced')
