"""The synchronisation engine against the Graph stand-in and a timetable feed on 127.0.0.1."""

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from portal import provisioning
from portal.extensions import db
from portal.microsoft import graph
from portal.models import Configuration, Connection, SyncItem, SyncJob, SyncRefusal, utcnow
from portal.sync import engine, feed, jobs

ADELE = "adele.vance@contoso.edu"


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        """No request log in test output."""


class FeedServer:
    """MyTimetable's iCalendar feed: per-user calendars, with an ETag and 304s."""

    def __init__(self):
        self.calendars: dict[str, str] = {}
        self.status = 200
        self.requests = 0
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # A short poll interval keeps shutdown() quick at the end of each test.
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def app(self, environ, start_response):
        request = Request(environ)
        self.requests += 1
        if self.status != 200:
            return Response("gone", status=self.status)(environ, start_response)
        body = self.calendars.get(request.args.get("user", ""), "")
        etag = f'"{abs(hash(body))}"'
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})(environ, start_response)
        response = Response(body, mimetype="text/calendar", headers={"ETag": etag})
        return response(environ, start_response)


def ics(*events: tuple[str, datetime, str]) -> str:
    """A VCALENDAR with one-hour UTC events (uid, start, subject)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//MyTimetable//Test//EN"]
    for uid, start, subject in events:
        end = start + timedelta(hours=1)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            f"DTSTAMP:{start:%Y%m%dT%H%M%SZ}",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
            f"DTEND:{end:%Y%m%dT%H%M%SZ}",
            f"SUMMARY:{subject}",
            "LOCATION:Room 1.01",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def lessons(count: int, prefix: str = "lesson") -> list[tuple[str, datetime, str]]:
    base = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return [
        (f"{prefix}-{n}@mytimetable", base + timedelta(days=n // 4, hours=n % 4), f"Lecture {n}")
        for n in range(count)
    ]


@pytest.fixture
def make_mailbox(make_app, standins, feed_server, configure):
    """Make an approved application configuration with Adele's mailbox provisioned, on an
    application with extra settings."""

    def make(**settings):
        app = make_app(**standins.settings(), **settings)
        configure(app, feed_url_template=f"{feed_server.url}/ical?user={{upn}}")
        standins.registration.policy_mailboxes = None
        with app.app_context():
            configuration = db.session.query(Configuration).one()
            outcome = provisioning.provision(configuration, [ADELE], "test")
            assert outcome.added == [ADELE]
            app.config["test.connection_id"] = db.session.query(Connection).one().id
        return app

    return make


@pytest.fixture
def mailbox(make_mailbox):
    """An approved application configuration with Adele's mailbox provisioned."""
    return make_mailbox()


def sync(app, sleep=lambda seconds: None, **kwargs):
    with app.app_context():
        connection = db.session.get(Connection, app.config["test.connection_id"])
        return engine.run(connection, sleep=sleep, **kwargs)


def calendar_events(standins, app):
    with app.app_context():
        calendar_id = db.session.get(Connection, app.config["test.connection_id"]).calendar_id
    return standins.directory.events(ADELE, calendar_id)


def test_first_sync_writes_every_event_in_batches(mailbox, standins, feed_server):
    feed_server.calendars[ADELE] = ics(*lessons(45))
    result = sync(mailbox)
    assert (result.outcome, result.created, result.failed) == ("ok", 45, 0)
    assert result.requests <= 45 // 20 + 1 + 2  # three batches and the repair listing
    # Each batch one dependsOn sequence (json-batching.md: fully sequential or fully
    # parallel), so the mailbox sees one write at a time, never more than its limit of four.
    assert standins.directory.max_concurrency[ADELE] == 1
    events = calendar_events(standins, mailbox)
    assert sorted(e["subject"] for e in events) == sorted(f"Lecture {n}" for n in range(45))
    with mailbox.app_context():
        connection = db.session.get(Connection, mailbox.config["test.connection_id"])
        assert connection.event_count == 45 and connection.last_created == 45


def test_unchanged_timetable_writes_nothing(mailbox, standins, feed_server):
    feed_server.calendars[ADELE] = ics(*lessons(10))
    sync(mailbox)
    before = standins.directory.counters["graph"]
    result = sync(mailbox)
    assert result.outcome == "unchanged" and result.requests == 0
    assert standins.directory.counters["graph"] == before


def test_changes_become_one_update_one_delete_one_create(mailbox, standins, feed_server):
    events = lessons(5)
    feed_server.calendars[ADELE] = ics(*events)
    sync(mailbox)
    moved = (events[0][0], events[0][1] + timedelta(hours=2), events[0][2])
    feed_server.calendars[ADELE] = ics(
        moved, *events[1:4], ("new@mytimetable", events[4][1], "Exam")
    )
    result = sync(mailbox)
    assert (result.created, result.updated, result.deleted) == (1, 1, 1)
    subjects = sorted(e["subject"] for e in calendar_events(standins, mailbox))
    assert subjects == ["Exam", "Lecture 0", "Lecture 1", "Lecture 2", "Lecture 3"]


def test_a_lesson_deleted_in_outlook_or_dropped_and_restored_comes_back_once(
    mailbox, standins, feed_server
):
    events = lessons(3)
    feed_server.calendars[ADELE] = ics(*events)
    sync(mailbox)
    adele = standins.directory.user_by_upn(ADELE)
    deleted = next(e for e in calendar_events(standins, mailbox) if e["subject"] == "Lecture 0")
    standins.directory.delete_event(adele, deleted["id"])  # by the person, in Outlook
    moved = (events[0][0], events[0][1] + timedelta(hours=1), events[0][2])
    feed_server.calendars[ADELE] = ics(moved, events[1])  # Lecture 2 dropped
    sync(mailbox)
    feed_server.calendars[ADELE] = ics(moved, *events[1:])  # and restored
    sync(mailbox)
    subjects = sorted(e["subject"] for e in calendar_events(standins, mailbox))
    assert subjects == ["Lecture 0", "Lecture 1", "Lecture 2"]
    again = next(e for e in calendar_events(standins, mailbox) if e["subject"] == "Lecture 0")
    assert again["id"] != deleted["id"]


def test_only_the_configured_window_is_kept_in_the_calendar(make_mailbox, standins, feed_server):
    app = make_mailbox(SYNC_DAYS_BACK=0, SYNC_WEEKS_AHEAD=1)
    soon, later = lessons(1, "soon")[0], lessons(1, "later")[0]
    later = (later[0], later[1] + timedelta(weeks=3), "Lecture in three weeks")
    feed_server.calendars[ADELE] = ics(soon, later)
    assert sync(app).created == 1
    assert [e["subject"] for e in calendar_events(standins, app)] == [soon[2]]


def test_a_users_own_events_are_left_alone(mailbox, standins, feed_server):
    feed_server.calendars[ADELE] = ics(*lessons(3))
    sync(mailbox)
    with mailbox.app_context():
        calendar_id = db.session.get(Connection, mailbox.config["test.connection_id"]).calendar_id
    user = standins.directory.user_by_upn(ADELE)
    start = datetime.now(UTC) + timedelta(days=2)
    end = start + timedelta(hours=1)
    standins.directory.add_event(
        user,
        calendar_id,
        {
            "subject": "Dentist",
            "start": {"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
            "end": {"dateTime": f"{end:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
        },
    )
    feed_server.calendars[ADELE] = ics()
    result = sync(mailbox)
    assert result.deleted == 3
    assert [e["subject"] for e in calendar_events(standins, mailbox)] == ["Dentist"]


def test_throttling_storm_ends_with_exactly_the_feeds_events(mailbox, standins, feed_server):
    feed_server.calendars[ADELE] = ics(*lessons(5))
    standins.directory.throttle(ADELE, times=4, retry_after=0)  # the first run's listing
    assert sync(mailbox).outcome == "ok"
    events = lessons(30)
    feed_server.calendars[ADELE] = ics(
        *[(uid, start, f"{subject} (moved)") for uid, start, subject in events]
    )
    standins.directory.throttle(ADELE, times=12, retry_after=0)
    standins.directory.throttle(ADELE, times=3, retry_after=0, status=503)
    # A throttled round sends no further batch, so each of the 15 answers costs a round.
    result = sync(mailbox, policy=graph.RetryPolicy(attempts=20))
    assert result.outcome == "ok", (result.error, result.errors)
    assert (result.created, result.updated) == (25, 5)
    subjects = [e["subject"] for e in calendar_events(standins, mailbox)]
    assert len(subjects) == 30 and all(s.endswith("(moved)") for s in subjects)
    assert standins.directory.max_concurrency[ADELE] <= 4


def test_lost_bookkeeping_is_repaired_without_duplicates(mailbox, standins, feed_server):
    feed_server.calendars[ADELE] = ics(*lessons(25))
    sync(mailbox)
    with mailbox.app_context():  # a crash after the writes, before the bookkeeping
        connection = db.session.get(Connection, mailbox.config["test.connection_id"])
        doomed = db.session.query(SyncItem).filter_by(connection_id=connection.id).limit(20).all()
        for item in doomed:
            db.session.delete(item)
        connection.last_sync_outcome = "failed"
        db.session.commit()
    result = sync(mailbox)
    assert result.outcome == "ok"
    events = calendar_events(standins, mailbox)
    assert len(events) == 25
    with mailbox.app_context():
        assert db.session.query(SyncItem).count() == 25


def test_a_doubled_event_found_by_the_repair_goes_and_its_original_is_still_updated(
    mailbox, standins, feed_server
):
    events = lessons(3)
    feed_server.calendars[ADELE] = ics(*events)
    sync(mailbox)
    [first, *_] = calendar_events(standins, mailbox)
    twin = {k: v for k, v in first.items() if k != "transactionId"}  # made without one
    user = standins.directory.user_by_upn(ADELE)
    with mailbox.app_context():  # a second copy, left by an unfinished run
        connection = db.session.get(Connection, mailbox.config["test.connection_id"])
        standins.directory.add_event(user, connection.calendar_id, twin)
        connection.last_sync_outcome = "failed"
        db.session.commit()
    uid, start, subject = next(e for e in events if e[2] == first["subject"])
    feed_server.calendars[ADELE] = ics((uid, start, f"{subject} (moved)"), *events[1:])

    result = sync(mailbox)

    assert (result.outcome, result.deleted, result.updated) == ("ok", 1, 1), result.errors
    subjects = [f"{subject} (moved)"] + [s for _, _, s in events[1:]]
    assert_exactly(mailbox, standins, subjects)


def test_broken_feed_fails_the_run_and_changes_nothing(mailbox, standins, feed_server):
    feed_server.calendars[ADELE] = ics(*lessons(4))
    sync(mailbox)
    feed_server.status = 404
    result = sync(mailbox)
    assert result.outcome == "failed" and "404" in result.error
    assert len(calendar_events(standins, mailbox)) == 4
    with mailbox.app_context():
        connection = db.session.get(Connection, mailbox.config["test.connection_id"])
        assert connection.last_sync_outcome == "failed" and "404" in connection.last_error


def test_waiting_jobs_run_in_process(mailbox, standins, feed_server):
    mailbox.config["REDIS_URL"] = None  # the embedded default, also in the scale-out pass
    feed_server.calendars[ADELE] = ics(*lessons(2))
    with mailbox.app_context():
        assert jobs.run_waiting(sleep=lambda s: None) == 1  # the first sync queued at provisioning
        assert jobs.run_waiting() == 0
    assert len(calendar_events(standins, mailbox)) == 2
    result = mailbox.test_cli_runner().invoke(args=["sync", "run", "--once"])
    assert result.exit_code == 0 and "1 synchronisation(s) run." in result.output


def test_a_runner_killed_mid_run_loses_nothing_and_doubles_nothing(
    mailbox, standins, feed_server, tmp_path
):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ENCRYPTION_KEY

    feed_server.calendars[ADELE] = ics(*lessons(60))
    standins.directory.mailbox_latency = 0.4  # so that the kill lands between batches
    env = {
        **os.environ,
        "PORTAL_ENV": "production",
        "PORTAL_SECRET_KEY": "test-secret-key-not-for-production",
        "PORTAL_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PORTAL_DATABASE_URL": mailbox.config["SQLALCHEMY_DATABASE_URI"],
        "PORTAL_AUTHORITY_HOST": standins.identity.url,
        "PORTAL_GRAPH_ENDPOINT": standins.graph.url,
        "PORTAL_CA_BUNDLE": str(standins.pki.bundle_path),
        "PORTAL_FEED_ALLOWED_NETWORKS": "127.0.0.0/8",  # the feed server's
        "FLASK_APP": "wsgi.py",
    }
    env.pop("PORTAL_REDIS_URL", None)
    runner = subprocess.Popen(
        [sys.executable, "-m", "flask", "sync", "run", "--once", "--every", "0"],
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline and not calendar_events(standins, mailbox):
        time.sleep(0.05)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    # Graph, like its stand-in, carries out the rest of a batch whose caller is gone; the job
    # is taken up again only once it is abandoned (PORTAL_SYNC_LOCK_SECONDS later), long after
    # that batch is done. Taking it up at once, as below, must wait for that batch too, or its
    # late creates land after the repair listed the calendar.
    settle(standins, calm=1.0)  # waves of that batch take 0.4 s each
    written_before_kill = len(calendar_events(standins, mailbox))
    assert 0 < written_before_kill < 60

    standins.directory.mailbox_latency = 0
    with mailbox.app_context():
        from portal.models import SyncJob

        job = db.session.query(SyncJob).one()
        assert job.started_at is not None and job.finished_at is None  # abandoned
        job.started_at = job.started_at - timedelta(hours=1)
        db.session.commit()
        assert jobs.run_waiting(sleep=lambda s: None) == 1
    events = calendar_events(standins, mailbox)
    assert len(events) == 60
    assert len({e["subject"] for e in events}) == 60


def settle(standins, seconds: float = 10, calm: float = 0.0) -> None:
    """Wait until the stand-in has finished the requests it held (their late answers); with
    ``calm``, until none has run on the mailbox for that long (a batch's waves follow one
    another with no request running for a moment between them)."""
    deadline = time.monotonic() + seconds
    calm_since = time.monotonic()
    while time.monotonic() < deadline:
        if standins.directory.in_flight(ADELE):
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= calm:
            return
        time.sleep(0.02)


def assert_exactly(app, standins, subjects: list[str]) -> None:
    """The calendar holds one event per subject, each recorded once in the bookkeeping."""
    events = calendar_events(standins, app)
    assert sorted(e["subject"] for e in events) == sorted(subjects)
    with app.app_context():
        recorded = {item.event_id for item in db.session.query(SyncItem)}
    assert recorded == {e["id"] for e in events}


def test_answers_lost_to_timeouts_are_sent_again_without_doubling(
    make_mailbox, standins, feed_server
):
    mailbox = make_mailbox(HTTP_TIMEOUT=0.5)
    feed_server.calendars[ADELE] = ics(*lessons(5))
    standins.directory.hold(ADELE, seconds=1.5)  # the first run's listing answers too late
    assert sync(mailbox).outcome == "ok"
    events = lessons(45)
    feed_server.calendars[ADELE] = ics(
        *[(uid, start, f"{subject} (moved)") for uid, start, subject in events[:5]], *events[5:]
    )
    # The first batch: five updates, then a create that is made but whose answer is lost.
    standins.directory.hold(ADELE, seconds=1.5, after=5)
    # Later, a create held before it runs, made when the portal has given up on it.
    standins.directory.hold(ADELE, seconds=1.5, applied=False, after=14)
    result = sync(mailbox)
    settle(standins)
    assert (result.outcome, result.created, result.updated) == ("ok", 40, 5), result.errors
    subjects = [f"{subject} (moved)" for _, _, subject in events[:5]]
    assert_exactly(mailbox, standins, subjects + [subject for _, _, subject in events[5:]])
    with mailbox.app_context():
        connection = db.session.get(Connection, mailbox.config["test.connection_id"])
        assert (connection.status, connection.last_sync_outcome) == ("connected", "ok")


def test_a_graph_that_never_answers_fails_the_run_and_keeps_the_connection(
    make_mailbox, standins, feed_server
):
    mailbox = make_mailbox(HTTP_TIMEOUT=0.2)
    feed_server.calendars[ADELE] = ics(*lessons(3))
    standins.directory.hold(ADELE, seconds=0.4, times=engine.RETRY_POLICY.attempts)
    result = sync(mailbox)
    settle(standins)
    assert result.outcome == "failed" and "unreachable" in result.error
    with mailbox.app_context():
        connection = db.session.get(Connection, mailbox.config["test.connection_id"])
        assert (connection.status, connection.last_sync_outcome) == ("connected", "failed")
    assert sync(mailbox).outcome == "ok"  # the next run, with Graph back, does the work
    assert_exactly(mailbox, standins, [subject for _, _, subject in lessons(3)])


@pytest.mark.parametrize("after", [0, 7], ids=["whole batch refused", "mid-batch"])
def test_an_app_token_that_lapses_mid_run_is_replaced(mailbox, standins, feed_server, after):
    feed_server.calendars[ADELE] = ics(*lessons(5))
    assert sync(mailbox).outcome == "ok"
    feed_server.calendars[ADELE] = ics(*lessons(45))
    issued = standins.directory.counters["token:client_credentials"]
    standins.directory.expire_access_tokens(after=after)
    result = sync(mailbox)
    assert (result.outcome, result.created) == ("ok", 40), result.errors
    assert standins.directory.counters["token:client_credentials"] == issued + 1
    assert_exactly(mailbox, standins, [subject for _, _, subject in lessons(45)])


@pytest.fixture
def delegated_mailbox(make_app, standins, feed_server, configure):
    """A delegated configuration to which Adele connected through the sign-in pages."""
    from tests.integration.test_connect import EndUser

    app = make_app(**standins.settings())
    configure(
        app,
        method="delegated",
        name="Contoso University",
        tenant_guid=standins.TENANT_GUID,
        feed_url_template=f"{feed_server.url}/ical?user={{upn}}",
    )
    assert EndUser(app, standins).connect(ADELE).status_code == 302
    with app.app_context():
        app.config["test.connection_id"] = db.session.query(Connection).one().id
    return app


@pytest.mark.parametrize("after", [0, 7], ids=["whole batch refused", "mid-batch"])
def test_a_delegated_token_that_lapses_mid_run_is_refreshed(
    delegated_mailbox, standins, feed_server, after
):
    feed_server.calendars[ADELE] = ics(*lessons(5))
    assert sync(delegated_mailbox).outcome == "ok"
    feed_server.calendars[ADELE] = ics(*lessons(45))
    refreshed = standins.directory.counters["token:refresh_token"]
    # MSAL still holds the access token as valid for an hour: only Graph knows it lapsed.
    standins.directory.expire_access_tokens(after=after)
    result = sync(delegated_mailbox)
    assert (result.outcome, result.created) == ("ok", 40), result.errors
    assert standins.directory.counters["token:refresh_token"] == refreshed + 1
    assert_exactly(delegated_mailbox, standins, [subject for _, _, subject in lessons(45)])
    with delegated_mailbox.app_context():
        assert db.session.query(Connection).one().status == "connected"


def vevent(uid: str, summary: str, *lines: str) -> str:
    """One VEVENT of a feed, its time properties given as iCalendar lines."""
    return "\r\n".join(
        ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20270901T000000Z", *lines, f"SUMMARY:{summary}"]
        + ["END:VEVENT"]
    )


def vcalendar(*events: str) -> str:
    header = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//MyTimetable//Test//EN\r\n"
    return header + "\r\n".join(events) + "\r\nEND:VCALENDAR\r\n"


AMS = "TZID=Europe/Amsterdam"
# Summer time in Amsterdam ends on Sunday 31 October 2027 at 03:00 CEST (01:00 UTC).
AUTUMN_FEED = [
    vevent(
        "algebra@mytimetable",
        "Algebra",
        f"DTSTART;{AMS}:20271018T090000",
        f"DTEND;{AMS}:20271018T104500",
        "RRULE:FREQ=WEEKLY;COUNT=5",
        f"EXDATE;{AMS}:20271108T090000",
    ),
    vevent(
        "algebra@mytimetable",
        "Algebra (moved)",
        f"RECURRENCE-ID;{AMS}:20271025T090000",
        f"DTSTART;{AMS}:20271026T140000",
        f"DTEND;{AMS}:20271026T154500",
    ),
    vevent(
        "night@mytimetable",
        "Night lab",
        f"DTSTART;{AMS}:20271031T013000",
        f"DTEND;{AMS}:20271031T043000",
    ),
    vevent("exam@mytimetable", "Online exam", "DTSTART:20271031T090000Z", "DTEND:20271031T110000Z"),
    vevent(
        "open-day@mytimetable",
        "Open day",
        "DTSTART;VALUE=DATE:20271102",
        "DTEND;VALUE=DATE:20271103",
    ),
    vevent(
        "seminar@mytimetable",
        "Seminar",
        "DTSTART:20271103T100000Z",
        "DTEND:20271103T110000Z",
        "STATUS:CANCELLED",
    ),
]
TUTORIAL = ("tutorial@mytimetable", "Tutorial")
GUEST = vevent(
    "guest@mytimetable", "Guest lecture", "DTSTART:20271027T150000Z", "DTEND:20271027T160000Z"
)
LAB = ("lab@mytimetable", "Lab", f"DTSTART;{AMS}:20271029T100000", f"DTEND;{AMS}:20271029T120000")


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def instants(events: list[dict]) -> set[tuple[str, datetime, datetime]]:
    """(subject, start, end) of each event, its times as UTC instants."""
    from tests.standins.events import time_zone

    def instant(value: dict) -> datetime:
        local = datetime.fromisoformat(value["dateTime"][:19])
        return local.replace(tzinfo=time_zone(value["timeZone"])).astimezone(UTC)

    return {(e["subject"], instant(e["start"]), instant(e["end"])) for e in events}


def test_a_feed_across_the_october_change_lands_at_the_right_instants_and_changes_minimally(
    mailbox, standins, feed_server, monkeypatch
):
    window = (datetime(2027, 10, 1, tzinfo=UTC), datetime(2027, 12, 1, tzinfo=UTC))
    monkeypatch.setattr(feed, "default_window", lambda now=None, **span: window)
    tutorial = vevent(*TUTORIAL, f"DTSTART;{AMS}:20271028T130000", f"DTEND;{AMS}:20271028T140000")
    feed_server.calendars[ADELE] = vcalendar(*AUTUMN_FEED, tutorial, GUEST, vevent(*LAB))

    first = sync(mailbox)

    assert (first.outcome, first.created) == ("ok", 10), first.errors
    timed = {
        ("Algebra", utc("20271018T0700Z"), utc("20271018T0845Z")),  # CEST, UTC+2
        ("Algebra (moved)", utc("20271026T1200Z"), utc("20271026T1345Z")),
        ("Algebra", utc("20271101T0800Z"), utc("20271101T0945Z")),  # CET, UTC+1
        ("Algebra", utc("20271115T0800Z"), utc("20271115T0945Z")),  # 8 November: EXDATE
        ("Night lab", utc("20271030T2330Z"), utc("20271031T0330Z")),  # four hours, not three
        ("Online exam", utc("20271031T0900Z"), utc("20271031T1100Z")),
        ("Guest lecture", utc("20271027T1500Z"), utc("20271027T1600Z")),
        ("Lab", utc("20271029T0800Z"), utc("20271029T1000Z")),
    }
    events = calendar_events(standins, mailbox)
    assert instants(events) == timed | {
        ("Tutorial", utc("20271028T1100Z"), utc("20271028T1200Z")),
        ("Open day", utc("20271102T0000Z"), utc("20271103T0000Z")),
    }
    [open_day] = [e for e in events if e["subject"] == "Open day"]
    assert open_day["isAllDay"] is True
    assert open_day["start"]["dateTime"].startswith("2027-11-02T00:00:00")
    assert open_day["end"]["dateTime"].startswith("2027-11-03T00:00:00")
    assert open_day["start"]["timeZone"] == open_day["end"]["timeZone"]
    assert not any(e["isAllDay"] for e in events if e is not open_day)

    # Between the runs the tutorial moves a week on, the guest lecture is dropped and the
    # lab is cancelled.
    moved = vevent(*TUTORIAL, f"DTSTART;{AMS}:20271104T130000", f"DTEND;{AMS}:20271104T140000")
    cancelled = vevent(*LAB, "SEQUENCE:1", "STATUS:CANCELLED")
    feed_server.calendars[ADELE] = vcalendar(*AUTUMN_FEED, moved, cancelled)
    before = {e["id"]: e["changeKey"] for e in events}
    counters = dict(standins.directory.counters)

    second = sync(mailbox)

    assert (second.created, second.updated, second.deleted) == (0, 1, 2)
    writes = {
        name: standins.directory.counters[name] - counters.get(name, 0)
        for name in ("graph:create_event", "graph:update_event", "graph:delete_event")
    }
    assert writes == {"graph:create_event": 0, "graph:update_event": 1, "graph:delete_event": 2}
    events = calendar_events(standins, mailbox)
    assert instants(events) == timed - {
        ("Guest lecture", utc("20271027T1500Z"), utc("20271027T1600Z")),
        ("Lab", utc("20271029T0800Z"), utc("20271029T1000Z")),
    } | {
        ("Tutorial", utc("20271104T1200Z"), utc("20271104T1300Z")),  # CET now
        ("Open day", utc("20271102T0000Z"), utc("20271103T0000Z")),
    }
    untouched = [e for e in events if e["subject"] != "Tutorial"]
    assert len(untouched) == 7
    assert all(before[e["id"]] == e["changeKey"] for e in untouched)


# Real-world feeds


WRITES = ("graph:create_event", "graph:update_event", "graph:delete_event")


def writes(standins) -> int:
    """How many creates, updates and deletes Graph has been sent (refused ones too)."""
    return sum(standins.directory.counters[name] for name in WRITES)


def day(offset: int) -> date:
    return datetime.now(UTC).date() + timedelta(days=offset)


def all_day(uid: str, summary: str, first: date, end: date, *lines: str) -> str:
    return vevent(
        uid, summary, f"DTSTART;VALUE=DATE:{first:%Y%m%d}", f"DTEND;VALUE=DATE:{end:%Y%m%d}", *lines
    )


def connection_of(app) -> Connection:
    return db.session.get(Connection, app.config["test.connection_id"])


def console_page(app) -> str:
    """The support console's page of the mailbox's configuration, as a staff member sees it."""
    from tests.integration.conftest import PASSWORD, Console

    email = "support@mytimetable.example"
    runner = app.test_cli_runner()
    runner.invoke(args=["staff", "create", email], input=f"{PASSWORD}\n{PASSWORD}\n")
    console = Console(app.test_client())
    assert console.sign_in(email).status_code == 302
    with app.app_context():
        configuration_id = connection_of(app).configuration_id
    return console.client.get(f"/support/configurations/{configuration_id}").text


def test_a_transparent_event_is_written_as_free_and_an_opaque_one_as_busy(
    mailbox, standins, feed_server
):
    feed_server.calendars[ADELE] = vcalendar(
        all_day("open-day@mytimetable", "Open day", day(1), day(2), "TRANSP:TRANSPARENT"),
        vevent(
            "lecture@mytimetable",
            "Lecture",
            f"DTSTART:{day(2):%Y%m%d}T090000Z",
            f"DTEND:{day(2):%Y%m%d}T100000Z",
            "TRANSP:OPAQUE",
        ),
    )

    assert sync(mailbox).outcome == "ok"

    shown = {e["subject"]: e["showAs"] for e in calendar_events(standins, mailbox)}
    assert shown == {"Open day": "free", "Lecture": "busy"}


def test_an_all_day_event_whose_dtend_equals_dtstart_is_written_as_one_day(
    mailbox, standins, feed_server
):
    feed_server.calendars[ADELE] = vcalendar(
        all_day("holiday@mytimetable", "Public holiday", day(3), day(3))
    )

    result = sync(mailbox)

    assert (result.outcome, result.created, result.failed) == ("ok", 1, 0), result.errors
    [holiday] = calendar_events(standins, mailbox)
    assert holiday["isAllDay"] is True
    assert holiday["start"]["dateTime"].startswith(f"{day(3):%Y-%m-%d}T00:00:00")
    assert holiday["end"]["dateTime"].startswith(f"{day(4):%Y-%m-%d}T00:00:00")


def without_uid(summary: str, stamp: str, *lines: str) -> str:
    """A VEVENT as some feeds write it: no UID, and a DTSTAMP of the export's time."""
    return "\r\n".join(
        ["BEGIN:VEVENT", f"DTSTAMP:{stamp}", *lines, f"SUMMARY:{summary}", "END:VEVENT"]
    )


def keyless_feed(stamp: str) -> str:
    at = f"{day(1):%Y%m%d}"
    return vcalendar(
        without_uid("Statistics", stamp, f"DTSTART:{at}T080000Z", f"DTEND:{at}T094500Z"),
        without_uid(
            "Tutorial",
            stamp,
            f"DTSTART:{at}T100000Z",
            f"DTEND:{at}T110000Z",
            "RRULE:FREQ=WEEKLY;COUNT=3",
        ),
        all_day("", "Holiday", day(5), day(5)).replace("UID:\r\n", ""),
        vevent("lecture@mytimetable", "Lecture", f"DTSTART:{at}T130000Z", f"DTEND:{at}T140000Z"),
    )


def test_events_without_uid_are_synced_and_synced_again_without_a_write(
    mailbox, standins, feed_server, caplog
):
    feed_server.calendars[ADELE] = keyless_feed("20270901T000000Z")

    first = sync(mailbox)

    assert (first.outcome, first.created) == ("ok", 6), first.errors
    subjects = sorted(e["subject"] for e in calendar_events(standins, mailbox))
    assert subjects == ["Holiday", "Lecture", "Statistics", "Tutorial", "Tutorial", "Tutorial"]
    with mailbox.app_context():
        assert connection_of(mailbox).feed_events_without_uid == 3
        assert db.session.query(SyncItem).count() == 6

    # The feed is exported again: every DTSTAMP is new, and so is the feed's ETag.
    feed_server.calendars[ADELE] = keyless_feed("20271001T120000Z")
    before = writes(standins)

    second = sync(mailbox)

    assert (second.outcome, second.created, second.updated, second.deleted) == ("ok", 0, 0, 0)
    assert writes(standins) == before
    noted = [r for r in caplog.records if "without a UID" in r.getMessage()]
    assert len(noted) == 1  # noted once, not on every run
    assert "3 events in its timetable feed have no UID" in console_page(mailbox)


def test_the_note_of_events_without_uid_goes_once_the_feed_gives_them_one(
    mailbox, standins, feed_server
):
    feed_server.calendars[ADELE] = keyless_feed("20270901T000000Z")
    sync(mailbox)
    feed_server.calendars[ADELE] = ics(*lessons(2))

    sync(mailbox)

    with mailbox.app_context():
        assert connection_of(mailbox).feed_events_without_uid == 0
    assert "have no UID" not in console_page(mailbox)


TOO_SHORT = (
    "Your request can't be completed. The duration of an event marked as All day must be at "
    "least 24 hours."
)


def test_an_occurrence_graph_refuses_is_recorded_and_sent_again_only_once_it_changes(
    mailbox, standins, feed_server
):
    events = lessons(30)
    standins.directory.refuse_subject("Lecture 0", "ErrorInvalidRequest", TOO_SHORT)
    feed_server.calendars[ADELE] = ics(*events)  # Lecture 0 heads the first batch's sequence
    waits = []

    first = sync(mailbox, sleep=waits.append)

    assert (first.outcome, first.created, first.failed) == ("partial", 29, 1), first.errors
    assert waits == []  # its followers were refused only for depending on it: no need to wait
    with mailbox.app_context():
        [refusal] = db.session.query(SyncRefusal).all()
        assert refusal.key == f"{events[0][0]}|"
        assert (refusal.status, refusal.code, refusal.message) == (
            400,
            "ErrorInvalidRequest",
            TOO_SHORT,
        )
        assert refusal.subject == "Lecture 0"
    page = console_page(mailbox)
    assert "Lecture 0" in page and "ErrorInvalidRequest" in page
    assert "must be at least 24 hours" in page

    before = writes(standins)
    for _ in range(3):  # a full read of the feed after the partial run, then "not modified"
        again = sync(mailbox, sleep=waits.append)
        assert (again.created, again.updated, again.deleted, again.failed) == (0, 0, 0, 0)
    assert writes(standins) == before
    assert waits == []

    # Graph would take it now, but nothing tells the portal so: the feed has not changed.
    standins.directory.accept_subject("Lecture 0")
    with mailbox.app_context():
        connection_of(mailbox).last_sync_outcome = "failed"  # the whole feed is read again
        db.session.commit()
    assert sync(mailbox).created == 0 and writes(standins) == before

    uid, start, subject = events[0]
    feed_server.calendars[ADELE] = ics((uid, start + timedelta(hours=1), subject), *events[1:])
    changed = sync(mailbox)

    assert (changed.outcome, changed.created, changed.failed) == ("ok", 1, 0)
    assert writes(standins) == before + 1
    assert_exactly(mailbox, standins, [subject for _, _, subject in events])
    with mailbox.app_context():
        assert db.session.query(SyncRefusal).count() == 0
    assert "ErrorInvalidRequest" not in console_page(mailbox)


def test_a_refused_update_leaves_the_event_as_it_was_and_is_not_sent_again(
    mailbox, standins, feed_server
):
    events = lessons(3)
    feed_server.calendars[ADELE] = ics(*events)
    sync(mailbox)
    uid, start, _ = events[1]
    standins.directory.refuse_subject("Renamed", "ErrorInvalidRequest", "Cannot be saved.")
    feed_server.calendars[ADELE] = ics(events[0], (uid, start, "Renamed"), events[2])

    refused = sync(mailbox)
    before = writes(standins)
    again = sync(mailbox)

    assert (refused.outcome, refused.updated, refused.failed) == ("partial", 0, 1)
    assert (again.updated, again.failed) == (0, 0) and writes(standins) == before
    assert_exactly(mailbox, standins, [subject for _, _, subject in events])

    # Back as it was written: nothing to send, and nothing refused any more.
    feed_server.calendars[ADELE] = ics(*events)
    assert sync(mailbox).updated == 0 and writes(standins) == before
    with mailbox.app_context():
        assert db.session.query(SyncRefusal).count() == 0


def test_the_engine_waits_at_least_retry_after_and_sends_no_batch_into_a_throttle(
    mailbox, standins, feed_server
):
    feed_server.calendars[ADELE] = ics(*lessons(5))
    assert sync(mailbox).outcome == "ok"
    events = lessons(30)  # 5 updates and 25 creates: two batches
    feed_server.calendars[ADELE] = ics(*[(u, s, f"{t} (moved)") for u, s, t in events])
    standins.directory.throttle(ADELE, times=3, retry_after=3)
    timeline, waits = [], []

    def sleep(seconds):
        waits.append(seconds)
        timeline.append("wait")

    result = sync(mailbox, sleep=sleep, before_batch=lambda: timeline.append("batch"))

    assert (result.outcome, result.created, result.updated) == ("ok", 25, 5)
    # Each throttled batch is followed by a wait, not by the round's other batch.
    assert timeline == ["batch", "wait"] * 3 + ["batch", "batch"]
    assert len(waits) == 3 and all(3 <= w <= engine.RETRY_POLICY.longest_wait for w in waits)


def test_a_retry_after_beyond_the_policy_reschedules_the_job_instead_of_waiting(
    mailbox, standins, feed_server
):
    mailbox.config["REDIS_URL"] = None  # the embedded runner
    feed_server.calendars[ADELE] = ics(*lessons(3))
    standins.directory.throttle(ADELE, times=1, retry_after=600)
    waits = []
    with mailbox.app_context():
        assert jobs.run_waiting(sleep=waits.append) == 1
        assert waits == []  # no worker held for ten minutes
        [done, again] = db.session.query(SyncJob).order_by(SyncJob.id).all()
        assert done.outcome == "throttled"
        assert again.reason == "throttled" and again.started_at is None
        assert timedelta(seconds=590) < again.not_before - utcnow() <= timedelta(seconds=600)
        connection = db.session.get(Connection, mailbox.config["test.connection_id"])
        assert connection.last_sync_outcome == "throttled"
        assert "600 s (Retry-After)" in connection.last_error
        assert jobs.run_waiting(sleep=waits.append) == 0  # not due yet
        again_id = again.id
    assert calendar_events(standins, mailbox) == []
    page = console_page(mailbox)
    assert "Microsoft asked to wait" in page and "600 s (Retry-After)" in page

    with mailbox.app_context():
        db.session.get(SyncJob, again_id).not_before = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert jobs.run_waiting(sleep=waits.append) == 1
    assert len(calendar_events(standins, mailbox)) == 3
