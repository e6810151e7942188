"""Synchronisations on a real queue: RQ on Redis, with a lock per mailbox."""

import os

import pytest
import redis
from rq import SimpleWorker

from portal import provisioning
from portal.extensions import db
from portal.models import Configuration, Connection, SyncJob
from portal.sync import jobs
from tests.integration.test_sync import ADELE, ics, lessons

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def queued(make_app, standins, feed_server, configure):
    """An application configuration on Redis; provisioning Adele queued her first sync."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    app = make_app(**standins.settings(), REDIS_URL=REDIS_URL, SYNC_LOCK_RETRY_SECONDS=0)
    feed_server.calendars[ADELE] = ics(*lessons(7))
    configure(app, feed_url_template=f"{feed_server.url}/ical?user={{upn}}")
    standins.registration.policy_mailboxes = None
    with app.app_context():
        provisioning.provision(db.session.query(Configuration).one(), [ADELE], "test")
    yield app, client
    client.flushdb()


def work(app):
    with app.app_context():
        rq_queue = jobs.queue()
        SimpleWorker([rq_queue], connection=rq_queue.connection).work(burst=True)


def test_committed_jobs_reach_the_queue_and_a_worker_runs_them(queued, standins):
    app, client = queued
    with app.app_context():
        assert jobs.queue().count == 1
    work(app)
    with app.app_context():
        job = db.session.query(SyncJob).one()
        assert job.outcome == "ok" and job.finished_at is not None
        connection = db.session.query(Connection).one()
        assert connection.event_count == 7
    assert len(standins.directory.events(ADELE, connection.calendar_id)) == 7


def test_a_locked_mailbox_is_not_synchronised_twice(queued):
    app, client = queued
    with app.app_context():
        connection_id = db.session.query(Connection).one().id
    lock = client.lock(f"portal:sync:lock:{connection_id}", timeout=60)
    assert lock.acquire(blocking=False)
    with app.app_context():
        job_id = db.session.query(SyncJob).one().id
        assert jobs.run_job(job_id) == "locked; retried later"
        assert db.session.get(SyncJob, job_id).started_at is None
    lock.release()
    with app.app_context():
        assert jobs.run_job(job_id) == "ok"
        assert jobs.run_job(job_id) == "already done"


def test_rolled_back_jobs_are_not_pushed(queued):
    app, client = queued
    with app.app_context():
        connection = db.session.query(Connection).one()
        jobs.queue().empty()
        db.session.query(SyncJob).delete()
        db.session.commit()
        jobs.enqueue(connection, "sync now")
        db.session.rollback()
        assert jobs.queue().count == 0


def test_sync_run_only_queues_when_workers_do_the_work(queued):
    app, client = queued
    result = app.test_cli_runner().invoke(args=["sync", "run", "--once"])
    assert result.exit_code == 0 and "queued for the workers" in result.output
    with app.app_context():
        assert db.session.query(SyncJob).filter(SyncJob.started_at.isnot(None)).count() == 0
