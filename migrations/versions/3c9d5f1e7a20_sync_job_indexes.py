"""indexes on when sync jobs were taken and finished

Revision ID: 3c9d5f1e7a20
Revises: 4a8d2e6f1b93
Create Date: 2026-12-06 10:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '3c9d5f1e7a20'
down_revision = '4a8d2e6f1b93'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_job', schema=None, recreate='never') as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_job_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_job_finished_at'), ['finished_at'], unique=False)


def downgrade():
    with op.batch_alter_table('sync_job', schema=None, recreate='never') as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_job_finished_at'))
        batch_op.drop_index(batch_op.f('ix_sync_job_started_at'))
