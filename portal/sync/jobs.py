"""The queue of synchronisations to run.

A job is recorded in the database in the same transaction as what asked for it (a new
connection, *Sync now*), so a request never asks for a sync that is then lost; at most one
job per connection waits at a time. The embedded default runs waiting jobs in-process
(``flask sync run``). With ``PORTAL_REDIS_URL`` set, each job is also pushed, once its
transaction has committed, to an RQ queue on Redis, and ``flask sync worker`` processes on
any number of machines run them; a Redis lock per connection makes sure that one mailbox
is never synchronised by two workers at once.

The database, not Redis, is the record of what must run, so nothing wedges on Redis:

- A push that fails (Redis down) fails neither the request nor the job: the job waits.
- ``sweep`` (each worker every ``SWEEP_SECONDS``, and each pass of ``flask sync run``)
  pushes again each waiting job that no queue holds (never pushed, lost from the queue, or
  ended without claiming it), and puts back a claimed job whose worker died (its lock
  expired). Each job's RQ job has an ID made from the job's, so the check is one lookup and
  a job pushed again replaces its own RQ job.
- The lock is renewed while the run lasts (``MailboxLock``), so a long run keeps its
  mailbox; a run that can no longer be sure of its lock stops writing.
- A run Graph throttled for longer than the sync may wait queues the next job with
  ``not_before`` (the time Graph asked for): no runner claims it earlier, and it reaches RQ
  through the sweeper once it is due.
"""

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import redis
from flask import Flask, current_app
from redis.exceptions import LockError, RedisError
from rq import Queue
from rq.exceptions import DequeueTimeout
from sqlalchemy import bindparam, delete, event, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from .. import metrics
from ..extensions import db
from ..models import Connection, ConnectionStatus, SyncJob, SyncSchedule, utcnow
from . import SyncOutcome, engine, throttle

log = logging.getLogger(__name__)

# A job that no runner has taken yet (the status page joins on it too).
WAITING = SyncJob.started_at.is_(None)

QUEUE = "portal-sync"
# A job younger than this may still be on its way to the queue (its commit is pushing it).
GRACE = timedelta(seconds=60)
SWEEP_SECONDS = 60
# RQ's default (180 s) would cut a large mailbox's first run short; the lock, renewed, is
# what keeps a second worker away, and every request of a run has its own timeout.
RUN_TIMEOUT = 3600
# A request to Redis that cannot connect gives up after this long, so a page that asks for a
# sync answers even when Redis is unreachable.
CONNECT_TIMEOUT = 5
# How long the RQ worker waits on an empty queue before it looks at its stop flag again.
POP_SECONDS = 5
# An answer from Redis that has not come after this long means the connection is gone. It
# must outlast the worker's wait on an empty queue: redis-py 8 reads with a 5-second timeout
# unless told otherwise, which ended an idle worker with a TimeoutError after 5 seconds.
READ_TIMEOUT = POP_SECONDS + 10


class LockLost(Exception):
    """The mailbox's lock may have expired and be another worker's: the run stops writing."""


def lock_seconds() -> int:
    """How long a mailbox's lock lasts unless renewed (``PORTAL_SYNC_LOCK_SECONDS``)."""
    return current_app.config["SYNC_LOCK_SECONDS"]


def enqueue(connection: Connection, reason: str, not_before: datetime | None = None) -> SyncJob:
    """Ask for a synchronisation of ``connection`` (not before ``not_before``, if given),
    unless one is already waiting; a waiting one then waits until ``not_before`` too."""
    already = waiting(connection)
    if already is not None:
        if not_before is not None and (already.not_before or not_before) <= not_before:
            already.not_before = not_before
        return already
    job = SyncJob(connection_id=connection.id, reason=reason, not_before=not_before)
    db.session.add(job)
    # A job for later is pushed by the sweeper once it is due, not held by RQ till then.
    if current_app.config.get("REDIS_URL") and not_before is None:
        db.session.flush()
        db.session.info.setdefault("sync_jobs_to_push", []).append(job.id)
    return job


def _due():
    """The jobs that may run now: those not asked to wait, or whose wait is over."""
    return or_(SyncJob.not_before.is_(None), SyncJob.not_before <= utcnow())


def queue() -> Queue:
    """The RQ queue of synchronisations on the configured Redis."""
    connection = redis.Redis.from_url(
        current_app.config["REDIS_URL"],
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=READ_TIMEOUT,
    )
    return Queue(QUEUE, connection=connection)


def rq_job_id(job_id: int) -> str:
    """The ID of a job's RQ job: one per job, so that a job pushed again replaces it."""
    return f"sync-{job_id}"


def _push(rq_queue: Queue, job_id: int) -> None:
    rq_queue.enqueue(run_job, job_id, job_id=rq_job_id(job_id), job_timeout=RUN_TIMEOUT)


@event.listens_for(Session, "after_commit")
def _push_committed(session):
    """Hand committed jobs to RQ; before the commit a worker could not see them."""
    ids = session.info.pop("sync_jobs_to_push", None)
    if not ids:
        return
    try:
        rq_queue = queue()
        for job_id in ids:
            _push(rq_queue, job_id)
    except RedisError as error:
        # The jobs are committed and wait; the sweeper pushes them once Redis answers.
        log.warning(
            "Synchronisation(s) %s not pushed to the queue (%s: %s); the sweeper pushes them.",
            ", ".join(rq_job_id(job_id) for job_id in ids),
            type(error).__name__,
            error,
        )


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session):
    session.info.pop("sync_jobs_to_push", None)


def _lock_name(connection_id: int) -> str:
    return f"portal:sync:lock:{connection_id}"


class MailboxLock:
    """The lock that keeps every other worker off a mailbox, renewed while the run lasts.

    A thread extends it every third of its lifetime. ``check`` (before each batch the run
    writes) raises ``LockLost`` once the lock is another's or may have expired (renewals
    failed for that long): a run that cannot be sure of its mailbox stops writing.
    """

    def __init__(self, client: redis.Redis, connection_id: int, seconds: int):
        self.seconds = seconds
        # Not thread-local: the renewing thread extends with the token the run took.
        self._lock = client.lock(_lock_name(connection_id), timeout=seconds, thread_local=False)
        self._held_until = 0.0
        self._lost = False
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name="sync-lock", daemon=True)

    def acquire(self) -> bool:
        """Take the lock unless another worker holds it, and start renewing it."""
        asked = time.monotonic()
        if not self._lock.acquire(blocking=False):
            return False
        self._held_until = asked + self.seconds
        self._renewer.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            asked = time.monotonic()
            try:
                self._lock.extend(self.seconds, replace_ttl=True)
            except LockError:  # it expired; another worker may hold it now
                self._lost = True
                return
            except RedisError:  # no answer: try again; check() counts the time left
                continue
            self._held_until = asked + self.seconds

    def check(self) -> None:
        """Raise ``LockLost`` unless the lock is surely still this run's."""
        if self._lost or time.monotonic() >= self._held_until:
            raise LockLost

    def release(self) -> None:
        """Stop renewing and free the mailbox (unless it is another worker's by now)."""
        self._stop.set()
        if self._renewer.is_alive():
            self._renewer.join(timeout=self.seconds)
        # Expired, or Redis is away: either way the lock lapses by itself.
        with contextlib.suppress(LockError, RedisError):
            self._lock.release()


def run_job(job_id: int) -> str:
    """An RQ job: synchronise one connection, unless another worker holds its lock."""
    job = db.session.get(SyncJob, job_id)
    if job is None or job.started_at is not None:
        return "already done"
    paused_until = throttle.job_paused_until(job)
    if paused_until is not None:
        # Graph slows the whole tenant down: the job waits for the end of the pause (the
        # sweeper pushes it again then), and this worker moves on to other jobs.
        db.session.execute(
            update(SyncJob).where(SyncJob.id == job_id, WAITING).values(not_before=paused_until)
        )
        db.session.commit()
        return "tenant throttled; retried later"
    lock = MailboxLock(queue().connection, job.connection_id, lock_seconds())
    if not lock.acquire():
        # The mailbox is being synchronised elsewhere: the sweeper pushes this job again.
        return "locked; retried later"
    try:
        claimed_at = _claim(job_id)
        if claimed_at is None:
            return "already done or not due"
        return run_claimed(job_id, claimed_at, still_mine=lock.check)
    except LockLost:
        db.session.rollback()
        metrics.job_ended("lock_lost")
        log.warning("Synchronisation %s stopped: its mailbox lock was lost.", rq_job_id(job_id))
        return SyncOutcome.LOCK_LOST
    finally:
        lock.release()


def _claim(job_id: int, *conditions) -> datetime | None:
    """Take the job if it still waits and is due (and meets ``conditions``); the time it
    was taken, or None."""
    claimed_at = utcnow()
    claimed = db.session.execute(
        update(SyncJob)
        .where(SyncJob.id == job_id, WAITING, _due(), *conditions)
        .values(started_at=claimed_at)
    ).rowcount
    db.session.commit()
    return claimed_at if claimed else None


def run_claimed(job_id: int, claimed_at: datetime, still_mine=engine.carry_on, sleep=None) -> str:
    """Synchronise the connection of a job this runner claimed, record the outcome on the
    job and return it (both runners, in-process and RQ, run jobs through this).

    ``still_mine`` raises when the runner can no longer be sure the mailbox is its own
    (checked before each batch and before the outcome is recorded). A run Graph throttled
    for longer than the retry policy allows queues a job for the time Graph asked for.
    """
    job = db.session.get(SyncJob, job_id)
    connection = db.session.get(Connection, job.connection_id)
    if connection is None or connection.status != ConnectionStatus.CONNECTED:
        outcome = SyncOutcome.SKIPPED
    else:
        options = {"sleep": sleep} if sleep else {}
        result = engine.run(connection, before_batch=still_mine, **options)
        outcome = result.outcome
        if outcome == SyncOutcome.THROTTLED:
            enqueue(
                connection, SyncOutcome.THROTTLED, not_before=result.retry_at.replace(tzinfo=None)
            )
    still_mine()
    # Only this run's claim is marked done: a sweeper may have handed the job on.
    db.session.execute(
        update(SyncJob)
        .where(SyncJob.id == job_id, SyncJob.started_at == claimed_at)
        .values(outcome=outcome, finished_at=utcnow())
    )
    db.session.commit()
    metrics.job_ended(outcome)
    return outcome


_WAITING_FOR = select(SyncJob).where(SyncJob.connection_id == bindparam("connection_id"), WAITING)


def waiting(connection: Connection) -> SyncJob | None:
    """The job waiting for ``connection``, if any."""
    return db.session.scalar(_WAITING_FOR, {"connection_id": connection.id})


def _held(rq_queue: Queue) -> set[str]:
    """The IDs of the RQ jobs that RQ holds: queued, or running on a live worker (reading
    the running ones also lets RQ fail those whose worker died)."""
    return set(rq_queue.job_ids) | set(rq_queue.started_job_registry.get_job_ids())


def _push_again(rq_queue: Queue, job_id: int) -> None:
    rq_job = rq_queue.fetch_job(rq_job_id(job_id))
    if rq_job is not None:
        rq_job.delete()  # what is left of it: finished, failed, or its worker's, now dead
    _push(rq_queue, job_id)


def sweep() -> int:
    """Push again every job that would otherwise never run; return how many.

    A claimed, unfinished job whose mailbox lock has expired lost its worker mid-run: it
    waits again. A job waiting for longer than ``GRACE`` that RQ neither queues nor runs is
    pushed again. Two sweepers at once may both push a job; it still runs once, since a
    worker claims it first.
    """
    rq_queue = queue()
    cutoff = utcnow() - GRACE
    abandoned = db.session.execute(
        select(SyncJob.id, SyncJob.connection_id, SyncJob.started_at).where(
            SyncJob.started_at < cutoff, SyncJob.finished_at.is_(None)
        )
    ).all()
    released = set()
    for job_id, connection_id, started_at in abandoned:
        if rq_queue.connection.exists(_lock_name(connection_id)):
            continue  # its worker renews the lock: still running
        released.add(job_id)
        db.session.execute(
            update(SyncJob)
            .where(SyncJob.id == job_id, SyncJob.started_at == started_at)
            .values(started_at=None)
        )
    db.session.commit()
    held = _held(rq_queue)
    pushed = 0
    due = select(SyncJob.id).where(WAITING, _due(), SyncJob.queued_at < cutoff)
    for job_id in db.session.scalars(due):
        if job_id in released or rq_job_id(job_id) not in held:
            _push_again(rq_queue, job_id)
            pushed += 1
    return pushed


def periodically(app: Flask, stop: threading.Event, name: str, work) -> threading.Thread:
    """Call ``work()`` every ``SWEEP_SECONDS``, in an application context of a background
    thread of this worker process named ``name``, until ``stop`` is set. While Redis or the
    database is away, a round is skipped and the next one tries again."""

    def rounds():
        while not stop.wait(SWEEP_SECONDS):
            with app.app_context():
                try:
                    work()
                except (RedisError, SQLAlchemyError) as error:
                    db.session.rollback()
                    log.warning("%s skipped a round (%s).", name, type(error).__name__)

    thread = threading.Thread(target=rounds, name=name, daemon=True)
    thread.start()
    return thread


def sweep_periodically(app: Flask, stop: threading.Event, every: int = 0) -> threading.Thread:
    """Sweep every ``SWEEP_SECONDS`` in a background thread of this worker process, until
    ``stop`` is set; queue every connection once it is due (``every`` minutes apart, unless
    0), if no other runner did first."""

    def sweeping():
        queued = schedule(every) if every else None
        if queued is not None:
            log.info("%d synchronisation(s) queued for the workers.", queued)
        if pushed := sweep():
            log.info("%d synchronisation(s) pushed again.", pushed)

    return periodically(app, stop, "sync-sweeper", sweeping)


def release_abandoned() -> int:
    """Put back jobs whose in-process runner died mid-run (started long ago, never
    finished); the embedded default has no lock to tell."""
    cutoff = utcnow() - timedelta(seconds=lock_seconds())
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


def _mailbox_free():
    """No other run of the job's connection is under way (the embedded default's stand-in for
    the Redis lock: one mailbox is never synchronised by two of its threads at once)."""
    running = aliased(SyncJob)
    return ~(
        select(running.id)
        .where(
            running.connection_id == SyncJob.connection_id,
            running.started_at.isnot(None),
            running.finished_at.is_(None),
        )
        .exists()
    )


def claim_next() -> tuple[int, datetime] | None:
    """Take the oldest waiting job that is due, whose mailbox no other run holds and whose
    tenant Graph has not paused: (its ID, when it was taken); a job another runner took
    first is skipped."""
    while True:
        job_id = db.session.scalar(
            select(SyncJob.id)
            .where(WAITING, _due(), _mailbox_free(), throttle.not_paused())
            .order_by(SyncJob.id)
            .limit(1)
        )
        if job_id is None:
            db.session.commit()
            return None
        claimed_at = _claim(job_id, _mailbox_free(), throttle.not_paused())
        if claimed_at is not None:
            return job_id, claimed_at


class Runner:
    """Runs synchronisations in up to ``PORTAL_SYNC_CONCURRENCY`` threads of this process:
    many mailboxes in flight at once, since each spends most of its time waiting for Graph.

    Each run has its own thread, application context and so database session (nothing of
    the database is shared between threads); every thread sends its requests through the
    application's one HTTP session, whose pool keeps a connection per thread to each host.
    Both runners use it: ``run_waiting`` (in-process) and ``work`` (the RQ worker).
    """

    def __init__(self, app: Flask, concurrency: int | None = None):
        self.app = app
        self.concurrency = concurrency or app.config["SYNC_CONCURRENCY"]
        self._free = threading.BoundedSemaphore(self.concurrency)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sync")

    def take_slot(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds) until fewer than ``concurrency`` runs are under
        way; True once a slot is this caller's, to ``start`` a run in or to ``give_back``."""
        return self._free.acquire(timeout=timeout)

    def give_back(self) -> None:
        """Return a slot that was not used."""
        self._free.release()

    def start(self, function, *args) -> None:
        """Run ``function(*args)`` in a thread of the pool, in its own application context;
        its slot is given back when it ends."""

        def run():
            try:
                with self.app.app_context():
                    function(*args)
            except Exception:
                log.exception("A synchronisation run failed.")
            finally:
                self._free.release()

        self._pool.submit(run)

    def wait(self) -> None:
        """Wait until every run started has ended, and end the threads."""
        self._pool.shutdown(wait=True)


def run_waiting(limit: int | None = None, sleep=None, concurrency: int | None = None) -> int:
    """Run the waiting jobs that are due in this process (the embedded default), up to
    ``concurrency`` (``PORTAL_SYNC_CONCURRENCY``) at once; return how many ran once all
    have ended."""
    release_abandoned()
    runner = Runner(current_app._get_current_object(), concurrency)
    started = 0
    try:
        while limit is None or started < limit:
            runner.take_slot()
            claimed = claim_next()
            if claimed is None:
                runner.give_back()
                break
            runner.start(run_claimed, *claimed, engine.carry_on, sleep)
            started += 1
    finally:
        runner.wait()
    return started


def work(app: Flask, stop: threading.Event, burst: bool = False) -> int:
    """The RQ worker of ``flask sync worker``: take jobs from the queue and run each
    (``run_job``, with its mailbox lock) in a ``Runner`` thread, up to
    ``PORTAL_SYNC_CONCURRENCY`` at once, until ``stop`` is set (or, with ``burst``, the
    queue is empty); return how many it took once all have ended.

    RQ's own workers run one job at a time per process (``SimpleWorker``) or fork one
    process per job: neither keeps many mailboxes in flight in one process. This takes the
    job IDs off the same queue (RQ's ``Queue.lpop``, a Redis BLPOP) and leaves the rest as
    it was: jobs are pushed, swept and locked as before, and the database records each run.
    """
    rq_queue = queue()
    runner = Runner(app)
    taken = 0
    try:
        while not stop.is_set():
            if not runner.take_slot(timeout=1):
                continue
            try:
                popped = Queue.lpop(
                    [rq_queue.key], None if burst else POP_SECONDS, connection=rq_queue.connection
                )
            except DequeueTimeout:
                popped = None
            if popped is None:
                runner.give_back()
                if burst:
                    break
                continue
            rq_id = popped[1].decode() if isinstance(popped[1], bytes) else popped[1]
            runner.start(_run_popped, rq_queue, rq_id)
            taken += 1
    finally:
        runner.wait()
    return taken


def _run_popped(rq_queue: Queue, rq_id: str) -> None:
    """Run the job an RQ job ID names, then remove what RQ keeps of it (a sweep pushes the
    job again if it still waits)."""
    job_id = int(rq_id.removeprefix("sync-"))
    try:
        run_job(job_id)
    finally:
        with contextlib.suppress(RedisError):
            rq_job = rq_queue.fetch_job(rq_id)
            if rq_job is not None and rq_job.get_position() is None:
                rq_job.delete()


# Jobs pushed to Redis in one round trip when every connection is queued at once.
PUSH_CHUNK = 1000
# How long a finished job's row is kept (for an operator's questions about the last day);
# every period would otherwise add a row per connection for good.
FINISHED_KEPT = timedelta(days=1)
PERIODIC = "periodic"  # the SyncSchedule row of the periodic sync of every connection


def take_turn(name: str, every_minutes: int) -> bool:
    """Whether this runner takes the turn of the periodic task ``name`` (due every
    ``every_minutes``): True for the one whose conditional update moves the task's
    ``due_at`` on, so a task runs once per period however many runners ask, on however
    many machines (the database makes one of them win)."""
    now = utcnow()
    table = SyncSchedule.__table__
    taken = db.session.execute(
        update(table)
        .where(table.c.name == name, table.c.due_at <= now)
        .values(due_at=now + timedelta(minutes=every_minutes))
    ).rowcount
    if not taken and db.session.get(SyncSchedule, name) is None:
        try:
            with db.session.begin_nested():  # two first runners at once: one row wins
                db.session.add(SyncSchedule(name=name, due_at=now))
        except IntegrityError:
            pass
        db.session.commit()
        return take_turn(name, every_minutes)
    db.session.commit()
    return bool(taken)


def due_now(name: str) -> None:
    """Make the periodic task ``name`` due at once: the next runner to ask takes it (in
    the caller's transaction)."""
    table = SyncSchedule.__table__
    db.session.execute(update(table).where(table.c.name == name).values(due_at=utcnow()))


def schedule(every_minutes: int) -> int | None:
    """Queue every connection if the periodic sync is due (``every_minutes`` apart): how
    many were queued, or None when it was not due or another runner took it
    (``take_turn``). The runner that queues them also deletes the jobs that finished more
    than ``FINISHED_KEPT`` ago.
    """
    if not take_turn(PERIODIC, every_minutes):
        return None
    db.session.execute(delete(SyncJob).where(SyncJob.finished_at < utcnow() - FINISHED_KEPT))
    db.session.commit()
    return enqueue_all()


def enqueue_all(reason: str = "scheduled") -> int:
    """Queue every connected connection that has no job waiting (the periodic refresh), in
    one statement however many there are, and push the new jobs to RQ in pipelines."""
    stamp = utcnow()
    already = select(SyncJob.id).where(SyncJob.connection_id == Connection.id, WAITING).exists()
    connected = select(Connection.id, literal(reason), literal(stamp)).where(
        Connection.status == ConnectionStatus.CONNECTED, ~already
    )
    ids = list(
        db.session.scalars(
            insert(SyncJob)
            .from_select(["connection_id", "reason", "queued_at"], connected)
            .returning(SyncJob.id)
        )
    )
    db.session.commit()
    if ids and current_app.config.get("REDIS_URL"):
        try:
            _push_many(queue(), ids)
        except RedisError as error:
            log.warning(
                "%d periodic synchronisation(s) not pushed to the queue (%s: %s); the "
                "sweeper pushes them.",
                len(ids),
                type(error).__name__,
                error,
            )
    return len(ids)


def _push_many(rq_queue: Queue, job_ids: list[int]) -> None:
    for start in range(0, len(job_ids), PUSH_CHUNK):
        with rq_queue.connection.pipeline() as pipe:
            rq_queue.enqueue_many(
                [
                    Queue.prepare_data(
                        run_job, (job_id,), job_id=rq_job_id(job_id), timeout=RUN_TIMEOUT
                    )
                    for job_id in job_ids[start : start + PUSH_CHUNK]
                ],
                pipeline=pipe,
            )
            pipe.execute()
