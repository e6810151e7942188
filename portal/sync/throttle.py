"""Graph's throttling at the tenant's scale.

Graph limits requests per mailbox (4 at once, 10,000 in 10 minutes) and also per app per
tenant (throttling-limits.md). A 429 for one mailbox backs that mailbox off: its run waits
as the retry policy says, or, asked to wait longer, ends "throttled" and its job is queued
again for then. When Graph throttles runs of several of a tenant's mailboxes within a short
while (``STRIKES`` within ``WINDOW``), the tenant as a whole is paused: its runs under way
stop at their next throttled answer and are queued again for the end of the pause, and no
runner starts a run of its mailboxes before then, so the runners spend the time on other
tenants' jobs instead of waiting. The count and the pause live in the database
(``SyncThrottle``), so every runner on every machine sees them.
"""

from datetime import datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Connection, SyncJob, SyncThrottle, utcnow

WINDOW = timedelta(seconds=60)
STRIKES = 3  # throttled runs of one tenant within WINDOW that pause the tenant
SHORTEST_PAUSE = timedelta(seconds=30)


def strike(configuration_id: int, retry_after: float | None) -> datetime | None:
    """Count a run of the tenant's mailboxes that Graph throttled (asking to wait
    ``retry_after`` seconds, if it said); return the end of the tenant's pause, if it is
    paused now (by this strike or an earlier one)."""
    now = utcnow()
    table = SyncThrottle.__table__
    fresh = table.c.since < now - WINDOW
    counted = db.session.execute(
        update(table)
        .where(table.c.configuration_id == configuration_id)
        .values(
            strikes=case((fresh, 1), else_=table.c.strikes + 1),
            since=case((fresh, now), else_=table.c.since),
        )
    ).rowcount
    if not counted:
        try:
            with db.session.begin_nested():  # two first strikes at once: one row wins
                db.session.add(SyncThrottle(configuration_id=configuration_id, strikes=0))
        except IntegrityError:
            pass
        db.session.commit()
        return strike(configuration_id, retry_after)
    strikes, paused_until = db.session.execute(
        select(table.c.strikes, table.c.paused_until).where(
            table.c.configuration_id == configuration_id
        )
    ).one()
    if strikes >= STRIKES:
        pause = max(SHORTEST_PAUSE, timedelta(seconds=retry_after or 0))
        paused_until = max(paused_until or now, now + pause)
        db.session.execute(
            update(table)
            .where(table.c.configuration_id == configuration_id)
            .values(strikes=0, since=now, paused_until=paused_until)
        )
    db.session.commit()
    return paused_until if paused_until and paused_until > now else None


def paused_until(configuration_id: int) -> datetime | None:
    """The end of the tenant's pause, if it is paused now."""
    until = db.session.scalar(
        select(SyncThrottle.paused_until).where(SyncThrottle.configuration_id == configuration_id)
    )
    return until if until and until > utcnow() else None


def job_paused_until(job: SyncJob) -> datetime | None:
    """The end of the pause of the tenant whose mailbox the job synchronises, if paused."""
    configuration_id = db.session.scalar(
        select(Connection.configuration_id).where(Connection.id == job.connection_id)
    )
    return paused_until(configuration_id) if configuration_id is not None else None


def not_paused():
    """A condition on ``SyncJob``: its mailbox's tenant is not paused."""
    return ~(
        select(SyncThrottle.configuration_id)
        .join(Connection, Connection.configuration_id == SyncThrottle.configuration_id)
        .where(Connection.id == SyncJob.connection_id, SyncThrottle.paused_until > utcnow())
        .exists()
    )
