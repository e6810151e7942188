"""Synchronising many mailboxes at once: the runner's threads against the Graph stand-in."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select, update

from portal import invitations, provisioning
from portal.extensions import db
from portal.models import (
    Configuration,
    Connection,
    ConnectionStatus,
    SyncJob,
    SyncSchedule,
    SyncThrottle,
    utcnow,
)
from portal.sync import SyncOutcome, jobs
from tests.integration.test_sync import ics, lessons
from tests.standins.directory import User


def mailboxes(count: int, prefix: str = "student") -> list[str]:
    return [f"{prefix}{n:02}@contoso.edu" for n in range(count)]


@pytest.fixture
def make_university(make_app, standins, feed_server, configure):
    """An approved application configuration with ``count`` mailboxes provisioned (their
    first syncs queued), each with a timetable of ``events`` lessons."""

    def make(count: int, events: int = 25, **settings):
        app = make_app(**standins.settings(), **settings)
        configure(app, feed_url_template=f"{feed_server.url}/ical?user={{upn}}")
        standins.registration.policy_mailboxes = None
        upns = mailboxes(count)
        for upn in upns:
            standins.directory.add_user(User(str(uuid.uuid4()), upn, standins.TENANT_GUID, upn))
            feed_server.calendars[upn] = ics(*lessons(events))
        with app.app_context():
            outcome = provisioning.provision(db.session.query(Configuration).one(), upns, "test")
            assert len(outcome.added) == count
        return app

    return make


def test_sixteen_mailboxes_in_flight_never_put_more_than_four_requests_on_one(
    make_university, standins
):
    app = make_university(16, events=30)  # PORTAL_SYNC_CONCURRENCY's default: 16 at once
    # Each Graph answer takes a while, as the real service's do, and the first requests wait
    # until 16 mailboxes have one running; the stand-in answers a fifth request at once on a
    # mailbox 429 (Exchange's MailboxConcurrency limit).
    standins.directory.request_latency = 0.2
    standins.directory.gather_mailboxes = 16
    standins.directory.max_concurrency.clear()
    with app.app_context():
        assert jobs.run_waiting(sleep=lambda seconds: None) == 16
        outcomes = [job.outcome for job in db.session.query(SyncJob)]
        assert outcomes == [SyncOutcome.OK] * 16
        assert {c.event_count for c in db.session.query(Connection)} == {30}
    assert standins.directory.max_mailboxes_in_flight == 16
    assert max(standins.directory.max_concurrency.values()) <= 4


def finish_every_job(app):
    with app.app_context():
        db.session.execute(
            update(SyncJob)
            .where(SyncJob.finished_at.is_(None))
            .values(started_at=utcnow(), finished_at=utcnow(), outcome=SyncOutcome.OK)
        )
        db.session.commit()


def two_schedulers(app, every: int = 60) -> list:
    """Two runners asking, at the same moment, whether the periodic sync is due."""
    start, answers = threading.Barrier(2), []

    def scheduler():
        with app.app_context():
            start.wait()
            answers.append(jobs.schedule(every))

    runners = [threading.Thread(target=scheduler) for _ in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    return answers


def queued_per_connection(app) -> list[int]:
    with app.app_context():
        waiting = select(SyncJob.connection_id, func.count()).where(jobs.WAITING)
        return sorted(n for _, n in db.session.execute(waiting.group_by(SyncJob.connection_id)))


def test_two_schedulers_queue_each_connection_once_per_period(make_university):
    app = make_university(6, events=1)
    finish_every_job(app)  # the first syncs provisioning queued
    assert sorted(two_schedulers(app), key=str) == [6, None]
    assert queued_per_connection(app) == [1] * 6
    assert two_schedulers(app) == [None, None]  # the same period: nothing more
    finish_every_job(app)
    with app.app_context():  # the period has passed
        schedule = db.session.get(SyncSchedule, jobs.PERIODIC)
        schedule.due_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert sorted(two_schedulers(app), key=str) == [6, None]
    assert queued_per_connection(app) == [1] * 6


def test_the_runner_that_queues_a_period_deletes_jobs_finished_over_a_day_ago(make_university):
    app = make_university(3, events=1)
    finish_every_job(app)  # the first syncs, finished now: kept
    with app.app_context():
        old = utcnow() - jobs.FINISHED_KEPT - timedelta(minutes=1)
        connection_id = db.session.scalars(select(Connection.id)).first()
        finished = {"started_at": old, "finished_at": old, "outcome": SyncOutcome.OK}
        db.session.add_all(
            SyncJob(connection_id=connection_id, reason="scheduled", queued_at=old, **finished)
            for _ in range(5)
        )
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(SyncJob)) == 8
    assert sorted(two_schedulers(app), key=str) == [3, None]
    with app.app_context():
        finished_at = db.session.scalars(select(SyncJob.finished_at)).all()
        assert sorted(when is None for when in finished_at) == [False] * 3 + [True] * 3


def test_queuing_every_connection_takes_a_few_statements_however_many_there_are(
    make_university,
):
    app = make_university(1, events=1)
    finish_every_job(app)
    with app.app_context():
        configuration_id = db.session.query(Configuration).one().id
        rows = [
            {"configuration_id": configuration_id, "upn": f"u{n}@contoso.edu"}
            | {"status": ConnectionStatus.CONNECTED}
            for n in range(2000)
        ]
        db.session.execute(insert(Connection), rows)
        db.session.commit()
        statements = []
        listen = (db.engine, "before_cursor_execute")
        record = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(*listen, record)
        try:
            assert jobs.enqueue_all() == 2001
        finally:
            event.remove(*listen, record)
        if app.config["REDIS_URL"]:  # pushed to RQ too, a pipeline per thousand
            assert jobs.queue().count >= 2001
    assert len(statements) == 1  # one INSERT ... SELECT ... RETURNING
    assert queued_per_connection(app) == [1] * 2001


def second_tenant(app, standins, feed_server, count: int) -> list[str]:
    """Another institution, with its own configuration (a tenant of its own, as far as the
    portal can tell; the stand-in serves it from the same directory), and ``count``
    mailboxes provisioned: their first syncs queued after the first institution's."""
    upns = mailboxes(count, prefix="staff")
    for upn in upns:
        standins.directory.add_user(User(str(uuid.uuid4()), upn, standins.TENANT_GUID, upn))
        feed_server.calendars[upn] = ics(*lessons(5))
    with app.app_context():
        first = db.session.query(Configuration).one()
        institution = invitations.create_institution("Fabrikam", "managed", "it@x.edu", "test")
        other = institution.configuration
        for name in ("method", "certificate_id", "status", "tenant_id", "client_id"):
            setattr(other, name, getattr(first, name))
        other.verified_at, other.feed_url_template = first.verified_at, first.feed_url_template
        db.session.commit()
        assert len(provisioning.provision(other, upns, "test").added) == count
    return upns


def test_a_throttled_tenant_is_paused_while_another_tenant_keeps_syncing(
    make_university, standins, feed_server
):
    app = make_university(6, events=5)
    others = second_tenant(app, standins, feed_server, 6)
    for upn in mailboxes(6):  # Graph throttles the first tenant: every request, for a while
        standins.directory.throttle(upn, times=50, retry_after=2)
    waits = []

    def wait(seconds):  # a mailbox backing off: for a moment, not Graph's 2 s
        waits.append(seconds)
        time.sleep(0.1)

    with app.app_context():
        jobs.run_waiting(sleep=wait, concurrency=3)
        first, second = db.session.query(Configuration).order_by(Configuration.id).all()
        outcomes = {
            connection.upn: connection.last_sync_outcome
            for connection in db.session.query(Connection)
        }
        assert [outcomes[upn] for upn in others] == [SyncOutcome.OK] * 6
        # Each throttled mailbox backed off as Graph asked; once three of the tenant's runs
        # were throttled, the tenant paused: its runs under way stopped, to run again after
        # the pause, and its other mailboxes did not start.
        assert waits and all(seconds >= 2 for seconds in waits)
        paused = db.session.get(SyncThrottle, first.id).paused_until
        assert paused > utcnow()
        assert db.session.get(SyncThrottle, second.id) is None
        throttled = [SyncOutcome.THROTTLED] * 3
        assert [outcomes[upn] for upn in mailboxes(6)] == throttled + [None] * 3
        later = db.session.query(SyncJob).filter(jobs.WAITING).all()
        assert sorted(job.not_before or utcnow() for job in later)[-3:] == [paused] * 3
        # A runner's next pass leaves the paused tenant alone.
        assert jobs.run_waiting(sleep=wait) == 0


def test_a_worker_hands_back_the_job_of_a_paused_tenant(make_university):
    app = make_university(1, events=1)
    with app.app_context():
        configuration = db.session.query(Configuration).one()
        until = utcnow() + timedelta(minutes=2)
        db.session.add(SyncThrottle(configuration_id=configuration.id, paused_until=until))
        db.session.commit()
        job = db.session.query(SyncJob).one()
        assert jobs.run_job(job.id) == "tenant throttled; retried later"
        db.session.refresh(job)
        assert job.started_at is None and job.not_before == until
