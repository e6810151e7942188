"""The queue of synchronisations to run, kept in the database.

A job is recorded in the same transaction as what asked for it (a new connection, *Sync
now*), so a request never asks for a sync that is then lost. At most one job per
connection waits at a time: asking again while one waits changes nothing.
"""

from sqlalchemy import select

from ..extensions import db
from ..models import Connection, SyncJob


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
