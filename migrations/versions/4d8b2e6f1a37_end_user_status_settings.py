"""end users' status: institution time zone, service desk, reconnect e-mail; Microsoft's
trace IDs on connections; verification evidence as a message and its values

Revision ID: 4d8b2e6f1a37
Revises: 5e8d2b7a9c41
Create Date: 2026-12-06 06:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4d8b2e6f1a37'
down_revision = '5e8d2b7a9c41'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE (recreate='never'): on SQLite a recreated table cannot be dropped
    # while other tables' rows refer to it, with foreign keys enforced.
    with op.batch_alter_table('institution', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('service_desk', sa.String(length=320), nullable=True))
        batch_op.add_column(
            sa.Column('reconnect_email', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table('connection', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('last_error_code', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('last_error_ids', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
    with op.batch_alter_table('verification', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('evidence_key', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('evidence_params', sa.JSON(), nullable=True))


def downgrade():
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as in upgrade.
    with op.batch_alter_table('verification', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('evidence_params')
        batch_op.drop_column('evidence_key')
    with op.batch_alter_table('connection', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('language')
        batch_op.drop_column('last_error_ids')
        batch_op.drop_column('last_error_code')
    with op.batch_alter_table('institution', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('reconnect_email')
        batch_op.drop_column('service_desk')
        batch_op.drop_column('time_zone')
