"""Synchronising many mailboxes at once: the runner's threads against the Graph stand-in."""

import uuid

import pytest

from portal import provisioning
from portal.extensions import db
from portal.models import Configuration, Connection, SyncJob
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
