"""The queue of synchronisations to run, kept in the database.

A job is recorded in the same transaction as what asked for it (a new connection, *Sync
now*), so a request never asks for a sync that is then lost. At most one job per
connection waits at a time: asking again while one waits changes nothing.
"""

from sqlalchemy import select, update

from ..extensions import db
from ..models import Connection, SyncJob, utcnow


def enqueue(connection: Connection, reason: str) -> SyncJob:
    """Ask for a synchronisation of ``connection``, unless one is already waiting."""
    waiting = db.session.scalar(
        select(SyncJob).where(SyncJob.connection_id == connection.id, SyncJob.started_at.is_(None))
    )
    if waiting is not None:
        return waiting
    job = SyncJob(connection_id=connection.id, reason=reason)
    db.session.add(job)
    return job


def waiting(connection: Connection) -> SyncJob | None:
    """The job waiting for ``connection``, if any."""
    return db.session.scalar(
        select(SyncJob).where(SyncJob.connection_id == connection.id, SyncJob.started_at.is_(None))
    )


def claim_next() -> SyncJob | None:
    """Take the oldest waiting job; a job another runner took first is skipped."""
    while True:
        job = db.session.scalar(
            select(SyncJob).where(SyncJob.started_at.is_(None)).order_by(SyncJob.id).limit(1)
        )
        if job is None:
            return None
        claimed = db.session.execute(
            update(SyncJob)
            .where(SyncJob.id == job.id, SyncJob.started_at.is_(None))
            .values(started_at=utcnow())
        ).rowcount
        db.session.commit()
        if claimed:
            db.session.refresh(job)
            return job


def run_waiting(limit: int | None = None, sleep=None) -> int:
    """Run waiting jobs in this process (the embedded default); return how many ran."""
    from . import engine

    done = 0
    while limit is None or done < limit:
        job = claim_next()
        if job is None:
            break
        connection = db.session.get(Connection, job.connection_id)
        if connection is None or connection.status != "connected":
            job.outcome = "skipped"
        else:
            result = engine.run(connection, **({"sleep": sleep} if sleep else {}))
            job.outcome = result.outcome
        job.finished_at = utcnow()
        db.session.commit()
        done += 1
    return done


def enqueue_all(reason: str = "scheduled") -> int:
    """Queue every connected connection (the periodic refresh)."""
    count = 0
    for connection in db.session.scalars(select(Connection).filter_by(status="connected")):
        enqueue(connection, reason)
        count += 1
    db.session.commit()
    return count
