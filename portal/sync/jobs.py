"""The queue of synchronisations to run.

A job is recorded in the database in the same transaction as what asked for it (a new
connection, *Sync now*), so a request never asks for a sync that is then lost; at most one
job per connection waits at a time. The embedded default runs waiting jobs in-process
(``flask sync run``). With ``PORTAL_REDIS_URL`` set, each job is also pushed, once its
transaction has committed, to an RQ queue on Redis, and ``flask sync worker`` processes on
any number of machines run them; a Redis lock per connection makes sure that one mailbox
is never synchronised by two workers at once.
"""

from datetime import timedelta

import redis
from flask import current_app
from rq import Queue
from sqlalchemy import bindparam, event, select, update
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Connection, SyncJob, utcnow

# A job that no runner has taken yet (the status page joins on it too).
WAITING = SyncJob.started_at.is_(None)

QUEUE = "portal-sync"
LOCK_SECONDS = 15 * 60


def enqueue(connection: Connection, reason: str) -> SyncJob:
    """Ask for a synchronisation of ``connection``, unless one is already waiting."""
    already = waiting(connection)
    if already is not None:
        return already
    job = SyncJob(connection_id=connection.id, reason=reason)
    db.session.add(job)
    if current_app.config.get("REDIS_URL"):
        db.session.flush()
        db.session.info.setdefault("sync_jobs_to_push", []).append(job.id)
    return job


def queue() -> Queue:
    """The RQ queue of synchronisations on the configured Redis."""
    connection = redis.Redis.from_url(current_app.config["REDIS_URL"])
    return Queue(QUEUE, connection=connection)


@event.listens_for(Session, "after_commit")
def _push_committed(session):
    """Hand committed jobs to RQ; before the commit a worker could not see them."""
    ids = session.info.pop("sync_jobs_to_push", None)
    if ids:
        rq_queue = queue()
        for job_id in ids:
            rq_queue.enqueue(run_job, job_id, job_id=f"sync-{job_id}-{utcnow():%H%M%S%f}")


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session):
    session.info.pop("sync_jobs_to_push", None)


def run_job(job_id: int) -> str:
    """An RQ job: synchronise one connection, unless another worker holds its lock."""
    from . import engine

    job = db.session.get(SyncJob, job_id)
    if job is None or job.started_at is not None:
        return "already done"
    lock = queue().connection.lock(
        f"portal:sync:lock:{job.connection_id}", timeout=LOCK_SECONDS, blocking=False
    )
    if not lock.acquire(blocking=False):
        # The mailbox is being synchronised elsewhere: try again a little later.
        retry = current_app.config.get("SYNC_LOCK_RETRY_SECONDS", 30)
        queue().enqueue_in(timedelta(seconds=retry), run_job, job_id)
        return "locked; retried later"
    try:
        claimed = db.session.execute(
            update(SyncJob).where(SyncJob.id == job_id, WAITING).values(started_at=utcnow())
        ).rowcount
        db.session.commit()
        if not claimed:
            return "already done"
        connection = db.session.get(Connection, job.connection_id)
        job = db.session.get(SyncJob, job_id)
        if connection is None or connection.status != "connected":
            job.outcome = "skipped"
        else:
            job.outcome = engine.run(connection).outcome
        job.finished_at = utcnow()
        db.session.commit()
        return job.outcome
    finally:
        lock.release()


_WAITING_FOR = select(SyncJob).where(SyncJob.connection_id == bindparam("connection_id"), WAITING)


def waiting(connection: Connection) -> SyncJob | None:
    """The job waiting for ``connection``, if any."""
    return db.session.scalar(_WAITING_FOR, {"connection_id": connection.id})


def release_abandoned() -> int:
    """Put back jobs whose runner died mid-run (started long ago, never finished)."""
    cutoff = utcnow() - timedelta(seconds=LOCK_SECONDS)
    released = db.session.execute(
        update(SyncJob)
        .where(
            SyncJob.started_at.isnot(None),
            SyncJob.finished_at.is_(None),
            SyncJob.started_at < cutoff,
        )
        .values(started_at=None)
    ).rowcount
    db.session.commit()
    return released


def claim_next() -> SyncJob | None:
    """Take the oldest waiting job; a job another runner took first is skipped."""
    while True:
        job = db.session.scalar(select(SyncJob).where(WAITING).order_by(SyncJob.id).limit(1))
        if job is None:
            return None
        claimed = db.session.execute(
            update(SyncJob).where(SyncJob.id == job.id, WAITING).values(started_at=utcnow())
        ).rowcount
        db.session.commit()
        if claimed:
            db.session.refresh(job)
            return job


def run_waiting(limit: int | None = None, sleep=None) -> int:
    """Run waiting jobs in this process (the embedded default); return how many ran."""
    from . import engine

    release_abandoned()
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
