"""mailbox scope asked in step 1; the values each verification run checked

Revision ID: 4a8d2e6f1b93
Revises: 5e2b7d90c4a1
Create Date: 2026-12-06 06:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4a8d2e6f1b93'
down_revision = '5e2b7d90c4a1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('configuration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mailbox_scope', sa.String(length=10), nullable=True))
    with op.batch_alter_table('verification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inputs', sa.String(length=64), nullable=True))
    # Until now a group address entered in step 4 was the choice: keep what it meant.
    op.execute(
        "UPDATE configuration SET mailbox_scope = CASE"
        " WHEN security_group_email IS NOT NULL AND security_group_email <> '' THEN 'group'"
        " ELSE 'all' END"
        " WHERE method = 'application'"
    )


def downgrade():
    # Before, a stored address meant the limit: drop those that "all calendars" set aside.
    op.execute("UPDATE configuration SET security_group_email = NULL WHERE mailbox_scope = 'all'")
    with op.batch_alter_table('verification', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('inputs')
    with op.batch_alter_table('configuration', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('mailbox_scope')
