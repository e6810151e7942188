"""Outlook category colours: an institution's mapping, and per connection the master
categories known to the mailbox and when Microsoft refused them

Revision ID: 7b3e9a4c2d15
Revises: 3c9d5f1e7a20
Create Date: 2026-12-07 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7b3e9a4c2d15'
down_revision = '3c9d5f1e7a20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('institution', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('category_colours', sa.JSON(), nullable=True))
    with op.batch_alter_table('connection', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('master_categories', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('categories_refused_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('connection', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('categories_refused_at')
        batch_op.drop_column('master_categories')
    with op.batch_alter_table('institution', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('category_colours')
