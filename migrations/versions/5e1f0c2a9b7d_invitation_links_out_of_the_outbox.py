"""invitation links out of the outbox

Revision ID: 5e1f0c2a9b7d
Revises: 5e1f3a7c9b20
Create Date: 2026-12-06 03:30:00.000000

Rotation e-mails kept their invitation link (a key to the institution's configuration) in
the outbox. The portal no longer stores one (``notifications.queue``); the links kept
before are replaced by a note here. They cannot come back: the downgrade changes nothing.
"""
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1f0c2a9b7d'
down_revision = '5e1f3a7c9b20'
branch_labels = None
depends_on = None

LINK = re.compile(r"\S*/setup/i/\S+")
NOTE = "[The invitation link is not kept here: support can make a new one.]"


def upgrade():
    notification = sa.table(
        'notification', sa.column('id', sa.Integer), sa.column('body', sa.Text)
    )
    bind = op.get_bind()
    kept = bind.execute(
        sa.select(notification.c.id, notification.c.body).where(
            notification.c.body.like('%/setup/i/%')
        )
    ).all()
    for row in kept:
        bind.execute(
            notification.update()
            .where(notification.c.id == row.id)
            .values(body=LINK.sub(NOTE, row.body))
        )


def downgrade():
    pass
