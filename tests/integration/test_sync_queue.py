"""Synchronisations on a real queue: RQ on Redis, with a lock per mailbox."""

import os
import re
import threading
import time
from datetime import timedelta

import pytest
import redis
from rq import Queue

from portal import provisioning
from portal.extensions import db
from portal.models import Configuration, Connection, SyncJob, utcnow
from portal.sync import jobs
from tests.integration.test_sync import ADELE, ics, lessons, settle

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def make_queued(make_app, standins, feed_server, configure):
    """Make an application configuration on Redis (with extra settings); provisioning Adele
    queued her first sync."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()

    def make(**settings):
        app = make_app(**standins.settings(), REDIS_URL=REDIS_URL, **settings)
        feed_server.calendars[ADELE] = ics(*lessons(7))
        configure(app, feed_url_template=f"{feed_server.url}/ical?user={{upn}}")
        standins.registration.policy_mailboxes = None
        with app.app_context():
            provisioning.provision(db.session.query(Configuration).one(), [ADELE], "test")
        return app, client

    yield make
    client.flushdb()


@pytest.fixture
def queued(make_queued):
    """An application configuration on Redis; provisioning Adele queued her first sync."""
    return make_queued()


def work(app):
    """What ``flask sync worker --burst`` does after its sweep: run what is queued."""
    with app.app_context():
        jobs.work(app, threading.Event(), burst=True)


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


CLOSED_PORT_URL = "redis://:not-to-be-logged@127.0.0.1:1/14"  # nothing listens on port 1


def rq_id(app) -> str:
    """The RQ job ID of the connection's waiting synchronisation."""
    with app.app_context():
        return f"sync-{db.session.query(SyncJob).filter(jobs.WAITING).one().id}"


def age(app, seconds: int = 3600) -> None:
    """Make every job older than the sweeper's grace period."""
    with app.app_context():
        for job in db.session.query(SyncJob):
            job.queued_at -= timedelta(seconds=seconds)
            if job.started_at is not None:
                job.started_at -= timedelta(seconds=seconds)
        db.session.commit()


def test_a_failed_push_keeps_the_job_waiting_and_the_sweeper_pushes_it_later(queued, caplog):
    app, client = queued
    work(app)  # the first sync
    app.config["REDIS_URL"] = CLOSED_PORT_URL  # Redis is down while the job is asked for
    with app.app_context():
        connection = db.session.query(Connection).one()
        jobs.enqueue(connection, "sync now")
        db.session.commit()  # no error
        waiting = db.session.query(SyncJob).filter(jobs.WAITING).one()
        assert waiting.reason == "sync now"
    assert f"sync-{waiting.id}" in caplog.text and "not-to-be-logged" not in caplog.text
    app.config["REDIS_URL"] = REDIS_URL  # Redis is back
    with app.app_context():
        assert jobs.queue().count == 0
        assert jobs.sweep() == 0  # within the grace period the commit may still be pushing
    age(app)
    with app.app_context():
        assert jobs.sweep() == 1
        assert jobs.queue().job_ids == [f"sync-{waiting.id}"]
    work(app)
    with app.app_context():
        assert db.session.get(SyncJob, waiting.id).outcome == "unchanged"


def test_sync_now_while_the_queue_is_down_answers_requested(make_app, standins, configure, caplog):
    from tests.integration.test_connect import SLUG, EndUser

    redis.Redis.from_url(REDIS_URL).flushdb()
    app = make_app(**standins.settings(), REDIS_URL=REDIS_URL)
    configure(
        app,
        method="delegated",
        name="Contoso University",
        tenant_guid=standins.TENANT_GUID,
    )
    standins.registration.admin_consented = True
    user = EndUser(app, standins)
    status_url = user.connect(ADELE).location
    with app.app_context():
        db.session.query(SyncJob).update(
            {"started_at": utcnow(), "finished_at": utcnow(), "outcome": "ok"}
        )
        db.session.commit()
        jobs.queue().empty()
    page = user.client.get(status_url)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    # The sessions' Redis still answers; the queue's does not.
    app.config["REDIS_URL"] = CLOSED_PORT_URL
    answer = user.client.post(f"/connect/{SLUG}/sync", data={"csrf_token": token})
    assert answer.status_code == 302
    page = user.client.get(answer.location)
    assert "Synchronisation requested" in page.text
    with app.app_context():
        assert db.session.query(SyncJob).filter(jobs.WAITING).one().reason == "sync now"
    assert "not pushed to the queue" in caplog.text and "not-to-be-logged" not in caplog.text
    app.config["REDIS_URL"] = REDIS_URL
    age(app)
    with app.app_context():
        assert jobs.sweep() == 1 and jobs.queue().count == 1
    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.mark.parametrize("how", ["deleted", "removed from the queue"])
def test_an_rq_job_lost_before_it_was_claimed_is_pushed_again(queued, how):
    app, client = queued
    with app.app_context():
        rq_queue = jobs.queue()
        if how == "deleted":
            rq_queue.fetch_job(rq_id(app)).delete()
        else:
            rq_queue.remove(rq_id(app))
        assert rq_queue.count == 0
    age(app)
    with app.app_context():
        assert jobs.sweep() == 1
        assert jobs.sweep() == 0  # the queue holds it now
        assert jobs.queue().job_ids == [rq_id(app)]
    work(app)
    with app.app_context():
        assert db.session.query(SyncJob).one().outcome == "ok"


def test_the_sweeper_leaves_alone_jobs_the_queue_holds(queued):
    app, client = queued
    age(app)
    with app.app_context():
        assert jobs.sweep() == 0
        assert jobs.queue().count == 1


def test_a_job_claimed_by_a_worker_that_died_is_taken_up_again(queued):
    app, client = queued
    with app.app_context():
        job = db.session.query(SyncJob).one()
        job.started_at = utcnow()  # claimed; its worker died, its lock expired
        db.session.commit()
        jobs.queue().empty()
    age(app)
    with app.app_context():
        assert jobs.sweep() == 1
    work(app)
    with app.app_context():
        job = db.session.query(SyncJob).one()
        assert job.outcome == "ok" and job.finished_at is not None


def test_a_worker_outwaits_an_empty_queue_and_still_takes_the_next_job(queued):
    """A worker waits on an empty queue POP_SECONDS at a time. redis-py 8 reads with a
    5-second socket timeout unless told otherwise, and the worker ended with a TimeoutError
    on its first quiet 5 seconds: idle for longer than that, it must still be there."""
    app, client = queued
    with app.app_context():
        jobs.queue().empty()
    stop, failures = threading.Event(), []

    def working():
        try:
            with app.app_context():
                jobs.work(app, stop)
        except Exception as error:  # noqa: BLE001 - the failure under test
            failures.append(error)

    worker = threading.Thread(target=working)
    worker.start()
    try:
        time.sleep(jobs.POP_SECONDS + 1.5)
        assert worker.is_alive(), failures
        age(app)
        with app.app_context():
            assert jobs.sweep() == 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with app.app_context():
                if db.session.query(SyncJob).one().outcome == "ok":
                    break
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not failures
    with app.app_context():
        assert db.session.query(SyncJob).one().outcome == "ok"


def test_a_worker_sweeps_before_it_works(queued):
    app, client = queued
    with app.app_context():
        jobs.queue().empty()
    age(app)
    result = app.test_cli_runner().invoke(args=["sync", "worker", "--burst"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.query(SyncJob).one().outcome == "ok"


def test_a_working_worker_sweeps_every_minute(queued, monkeypatch):
    app, client = queued
    monkeypatch.setattr(jobs, "SWEEP_SECONDS", 0.05)
    with app.app_context():
        jobs.queue().empty()
    age(app)
    stop = threading.Event()
    sweeper = jobs.sweep_periodically(app, stop)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not Queue(jobs.QUEUE, connection=client).count:
            time.sleep(0.02)
    finally:
        stop.set()
        sweeper.join()
    with app.app_context():
        assert jobs.queue().job_ids == [rq_id(app)]


def test_the_periodic_pass_sweeps(queued):
    app, client = queued
    with app.app_context():
        jobs.queue().empty()
    age(app)
    result = app.test_cli_runner().invoke(args=["sync", "run", "--once", "--every", "0"])
    assert result.exit_code == 0 and "1 synchronisation(s) pushed again" in result.output
    with app.app_context():
        assert jobs.queue().count == 1


def test_the_periodic_pass_carries_on_while_redis_is_down(queued, caplog):
    app, client = queued
    with app.app_context():
        db.session.query(SyncJob).update({"started_at": utcnow(), "finished_at": utcnow()})
        db.session.commit()
    app.config["REDIS_URL"] = CLOSED_PORT_URL
    result = app.test_cli_runner().invoke(args=["sync", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 synchronisation(s) queued" in result.output
    assert "Redis did not answer" in result.output
    assert "not pushed to the queue" in caplog.text and "not-to-be-logged" not in caplog.text
    with app.app_context():
        assert db.session.query(SyncJob).filter(jobs.WAITING).one().reason == "scheduled"


def long_run(app, standins, feed_server):
    """Make the first sync last about 4.5 s: 60 lessons, 3 batches of 5 waves of 0.3 s."""
    feed_server.calendars[ADELE] = ics(*lessons(60))
    standins.directory.mailbox_latency = 0.3
    outcome = []

    def run():
        with app.app_context():
            outcome.append(jobs.run_job(db.session.query(SyncJob).one().id))

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not standins.directory.in_flight(ADELE):
        time.sleep(0.01)
    return runner, outcome


def test_a_run_longer_than_the_lock_is_not_taken_over(make_queued, standins, feed_server):
    app, client = make_queued(SYNC_LOCK_SECONDS=2)
    with app.app_context():
        connection_id = db.session.query(Connection).one().id
    runner, outcome = long_run(app, standins, feed_server)
    time.sleep(2.5)  # longer than the lock would last unrenewed
    assert runner.is_alive()
    assert not client.lock(f"portal:sync:lock:{connection_id}").acquire(blocking=False)
    age(app, seconds=120)
    with app.app_context():
        assert jobs.sweep() == 0  # the running job is not taken from its worker
        assert db.session.query(SyncJob).one().started_at is not None
    runner.join(timeout=30)
    assert outcome == ["ok"]
    events = standins.directory.events(ADELE, calendar_id(app))
    assert len(events) == 60 and len({e["subject"] for e in events}) == 60


def test_a_run_that_lost_its_lock_stops_writing(make_queued, standins, feed_server):
    app, client = make_queued(SYNC_LOCK_SECONDS=2)
    with app.app_context():
        connection_id = db.session.query(Connection).one().id
    runner, outcome = long_run(app, standins, feed_server)
    # Another worker holds the mailbox now (the lock expired while this one stalled).
    client.set(f"portal:sync:lock:{connection_id}", "another worker's token", ex=60)
    runner.join(timeout=30)
    assert outcome == ["lock lost"]
    settle(standins)
    assert len(standins.directory.events(ADELE, calendar_id(app))) < 60
    with app.app_context():
        job = db.session.query(SyncJob).one()
        assert job.finished_at is None and job.outcome is None  # left to the new holder


def calendar_id(app) -> str:
    with app.app_context():
        return db.session.query(Connection).one().calendar_id


def test_a_throttled_run_queues_its_next_job_for_when_graph_asked_and_not_sooner(queued, standins):
    app, client = queued
    standins.directory.throttle(ADELE, times=1, retry_after=600)
    work(app)
    with app.app_context():
        [done, later] = db.session.query(SyncJob).order_by(SyncJob.id).all()
        assert done.outcome == "throttled" and later.not_before > utcnow()
        assert jobs.queue().count == 0  # not held by RQ for ten minutes
        later_id = later.id
    age(app)  # queued long ago, and still not due
    with app.app_context():
        assert jobs.sweep() == 0
        assert jobs.run_job(later_id) == "already done or not due"
        assert db.session.get(SyncJob, later_id).started_at is None

        db.session.get(SyncJob, later_id).not_before = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert jobs.sweep() == 1
    work(app)
    with app.app_context():
        assert db.session.get(SyncJob, later_id).outcome == "ok"
        assert db.session.query(Connection).one().event_count == 7
