"""Outlook categories (colours): when a configuration shows its timetable in colour, the
sync makes the mailbox's master categories for the feed's categories, once, and again only
for a category that is new; without MailboxSettings.ReadWrite the events are synchronised
all the same, uncoloured, and the refusal is kept once."""

from datetime import timedelta

import pytest

from portal import provisioning
from portal.extensions import db
from portal.models import Configuration, Connection, Institution, utcnow
from portal.sync import colours, engine
from tests.integration.test_sync import ADELE, lessons

SETTINGS = "MailboxSettings.ReadWrite"
LIST = "graph:list_master_categories"
CREATE = "graph:create_master_category"


def ics(*events: tuple[str, object, str, str]) -> str:
    """A VCALENDAR with one-hour UTC events (uid, start, subject, categories)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//MyTimetable//Test//EN"]
    for uid, start, subject, categories in events:
        end = start + timedelta(hours=1)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            f"DTSTAMP:{start:%Y%m%dT%H%M%SZ}",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
            f"DTEND:{end:%Y%m%dT%H%M%SZ}",
            f"SUMMARY:{subject}",
            *([f"CATEGORIES:{categories}"] if categories else []),
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def timetable(*categories: str) -> str:
    """One lesson per category given (in that order)."""
    return ics(
        *[
            (uid, start, subject, category)
            for (uid, start, subject), category in zip(
                lessons(len(categories)), categories, strict=True
            )
        ]
    )


@pytest.fixture
def make_coloured(make_app, standins, feed_server, configure):
    """An approved application configuration with Adele's mailbox provisioned, showing
    events in colour (``coloured``) with the app granted MailboxSettings.ReadWrite
    (``granted``)."""

    def make(coloured=True, granted=True):
        app = make_app(**standins.settings())
        configure(
            app,
            feed_url_template=f"{feed_server.url}/ical?user={{upn}}",
            outlook_categories=coloured,
        )
        standins.registration.policy_mailboxes = None
        if granted:
            standins.registration.application_permissions.add(SETTINGS)
        with app.app_context():
            configuration = db.session.query(Configuration).one()
            assert provisioning.provision(configuration, [ADELE], "test").added == [ADELE]
            app.config["test.connection_id"] = db.session.query(Connection).one().id
        return app

    return make


def sync(app):
    with app.app_context():
        connection = db.session.get(Connection, app.config["test.connection_id"])
        return engine.run(connection, sleep=lambda seconds: None)


def connection(app) -> Connection:
    with app.app_context():
        row = db.session.get(Connection, app.config["test.connection_id"])
        db.session.expunge(row)
        return row


def master(standins) -> dict[str, str]:
    """Adele's master categories: name -> colour."""
    return {c["displayName"]: c["color"] for c in standins.directory.master_categories(ADELE)}


def category_requests(standins) -> tuple[int, int]:
    return standins.directory.counters[LIST], standins.directory.counters[CREATE]


def test_the_feeds_categories_are_made_once_each_in_its_colour(
    make_coloured, standins, feed_server
):
    app = make_coloured()
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam", "lecture", "Werkcollege")

    result = sync(app)

    assert (result.outcome, result.created) == ("ok", 4)
    made = master(standins)
    assert (made["Lecture"], made["Exam"], made["Werkcollege"]) == ("preset7", "preset0", "preset1")
    assert "lecture" not in made  # the same category, whatever its case
    assert category_requests(standins) == (1, 3)  # one listing, then one batch of three
    assert connection(app).master_categories == ["Lecture", "Exam", "Werkcollege"]
    events = standins.directory.events(ADELE, connection(app).calendar_id)
    assert sorted(c for e in events for c in e["categories"]) == sorted(
        ["Lecture", "Exam", "lecture", "Werkcollege"]
    )


def test_a_later_run_with_known_categories_asks_graph_nothing_about_them(
    make_coloured, standins, feed_server
):
    app = make_coloured()
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam")
    sync(app)
    before = category_requests(standins), standins.directory.counters["graph:http"]
    feed_server.calendars[ADELE] = timetable("Exam", "Lecture")  # every event changes

    result = sync(app)

    assert result.updated == 2
    assert category_requests(standins) == before[0]
    assert standins.directory.counters["graph:http"] - before[1] == result.requests == 1


def test_a_new_category_on_a_later_run_makes_exactly_one_request(
    make_coloured, standins, feed_server
):
    app = make_coloured()
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam")
    sync(app)
    listed, created = category_requests(standins)
    http = standins.directory.counters["graph:http"]
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam", "Guest lecture")

    result = sync(app)

    assert result.created == 1
    assert category_requests(standins) == (listed, created + 1)
    assert standins.directory.counters["graph:http"] - http == 2  # the event's batch, and this
    assert master(standins)["Guest lecture"] == colours.colour("Guest lecture")
    assert connection(app).master_categories == ["Lecture", "Exam", "Guest lecture"]


def test_a_category_the_mailbox_has_keeps_its_own_colour(make_coloured, standins, feed_server):
    app = make_coloured()
    adele = standins.directory.user_by_upn(ADELE)
    standins.directory.add_master_category(adele, "LECTURE", "preset8")  # made in Outlook
    feed_server.calendars[ADELE] = timetable("Lecture", "Blue category", "Exam")

    sync(app)

    made = master(standins)
    assert made["LECTURE"] == "preset8" and "Lecture" not in made
    assert (made["Exam"], made["Blue category"]) == ("preset0", "preset7")  # Outlook's own
    assert category_requests(standins) == (1, 1)  # Exam alone is made


def test_a_category_made_in_outlook_meanwhile_counts_as_made(make_coloured, standins, feed_server):
    app = make_coloured()
    feed_server.calendars[ADELE] = timetable("Lecture")
    sync(app)
    adele = standins.directory.user_by_upn(ADELE)
    standins.directory.add_master_category(adele, "Exam", "preset9")
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam")

    result = sync(app)

    assert result.outcome == "ok"
    assert master(standins)["Exam"] == "preset9"  # 409: left as the person made it
    assert connection(app).master_categories == ["Lecture", "Exam"]


def test_the_institutions_own_colours_come_first(make_coloured, standins, feed_server):
    app = make_coloured()
    with app.app_context():
        institution = db.session.query(Institution).one()
        institution.category_colours = {"LECTURE": "preset22", "Open day": "none"}
        db.session.commit()
    feed_server.calendars[ADELE] = timetable("Lecture", "Open day", "Exam")

    sync(app)

    made = master(standins)
    assert (made["Lecture"], made["Open day"], made["Exam"]) == ("preset22", "none", "preset0")


def test_without_colours_no_category_request_is_made(make_coloured, standins, feed_server):
    app = make_coloured(coloured=False)
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam")

    result = sync(app)

    assert (result.outcome, result.created) == ("ok", 2)
    assert category_requests(standins) == (0, 0)
    assert connection(app).master_categories is None


def test_colours_chosen_later_are_made_at_the_next_run_though_the_feed_is_unchanged(
    make_coloured, standins, feed_server
):
    app = make_coloured(coloured=False)
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam")
    sync(app)
    with app.app_context():
        db.session.query(Configuration).one().outlook_categories = True
        db.session.commit()

    result = sync(app)

    assert (result.outcome, result.created, result.updated) == ("ok", 0, 0)
    assert category_requests(standins) == (1, 2)
    assert master(standins)["Exam"] == "preset0"
    assert sync(app).outcome == "unchanged"  # and from then on "not modified" again


def test_without_the_permission_events_sync_uncoloured_and_the_refusal_is_kept_once(
    make_coloured, standins, feed_server, caplog
):
    app = make_coloured(granted=False)
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam")

    result = sync(app)

    assert (result.outcome, result.created, result.failed) == ("ok", 2, 0)
    assert result.error is None and result.errors == []
    events = standins.directory.events(ADELE, connection(app).calendar_id)
    assert sorted(c for e in events for c in e["categories"]) == ["Exam", "Lecture"]
    assert "Lecture" not in master(standins)
    refused = connection(app)
    assert refused.categories_refused_at is not None and refused.master_categories is None
    assert category_requests(standins) == (1, 0)

    feed_server.calendars[ADELE] = timetable("Lecture", "Exam", "Seminar")
    assert sync(app).created == 1
    assert category_requests(standins) == (1, 0)  # not asked again on every run
    assert connection(app).categories_refused_at == refused.categories_refused_at
    logged = [r for r in caplog.records if "refused connection" in r.getMessage()]
    assert len(logged) == 1


def test_the_refusal_is_asked_again_once_the_configuration_changes(
    make_coloured, standins, feed_server
):
    app = make_coloured(granted=False)
    feed_server.calendars[ADELE] = timetable("Lecture")
    sync(app)
    standins.registration.application_permissions.add(SETTINGS)  # granted in Entra
    with app.app_context():  # the administrator runs the checks again, say
        configuration = db.session.query(Configuration).one()
        configuration.verified_at = utcnow()
        db.session.commit()
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam")

    result = sync(app)

    assert result.outcome == "ok"
    assert connection(app).categories_refused_at is None
    assert {"Lecture", "Exam"} <= set(master(standins))


def test_the_refusal_is_asked_again_after_a_week(make_coloured, standins, feed_server):
    app = make_coloured(granted=False)
    feed_server.calendars[ADELE] = timetable("Lecture")
    sync(app)
    with app.app_context():
        row = db.session.get(Connection, app.config["test.connection_id"])
        row.categories_refused_at = utcnow() - engine.CATEGORIES_RETRY - timedelta(minutes=1)
        db.session.commit()
    feed_server.calendars[ADELE] = timetable("Lecture", "Exam")

    sync(app)

    assert category_requests(standins) == (2, 0)  # asked, and refused again
    assert connection(app).categories_refused_at > utcnow() - timedelta(minutes=1)
