"""group following: the choice, what leavers lose, followed mailboxes, the passes

Revision ID: 8b4f2d6a1c3e
Revises: 7b3e9a4c2d15
Create Date: 2026-12-07 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8b4f2d6a1c3e'
down_revision = '7b3e9a4c2d15'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('configuration', schema=None, recreate='never') as batch_op:
        batch_op.add_column(
            sa.Column('follow_group', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                'leaver_removal', sa.String(length=10), server_default='events', nullable=False
            )
        )
    with op.batch_alter_table('connection', schema=None, recreate='never') as batch_op:
        batch_op.add_column(
            sa.Column('followed', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        'group_pass',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('configuration_id', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('members', sa.Integer(), nullable=False),
        sa.Column('added', sa.Integer(), nullable=False),
        sa.Column('removed', sa.Integer(), nullable=False),
        sa.Column('refused', sa.Integer(), nullable=False),
        sa.Column('held', sa.Integer(), nullable=False),
        sa.Column('removal_limit', sa.Integer(), nullable=True),
        sa.Column('refused_list', sa.JSON(), nullable=True),
        sa.Column('held_list', sa.JSON(), nullable=True),
        sa.Column('error_code', sa.String(length=100), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('decided_by', sa.String(length=320), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['configuration_id'], ['configuration.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('group_pass', schema=None, recreate='never') as batch_op:
        batch_op.create_index(
            batch_op.f('ix_group_pass_configuration_id'), ['configuration_id'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_group_pass_started_at'), ['started_at'], unique=False)


def downgrade():
    with op.batch_alter_table('group_pass', schema=None, recreate='never') as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_pass_started_at'))
        batch_op.drop_index(batch_op.f('ix_group_pass_configuration_id'))
    op.drop_table('group_pass')
    with op.batch_alter_table('connection', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('followed')
    with op.batch_alter_table('configuration', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('leaver_removal')
        batch_op.drop_column('follow_group')
