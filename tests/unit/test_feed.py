"""The timetable feed: iCalendar read into occurrences, and the feed fetched over HTTP."""

import dataclasses
import re
import socket
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from portal.config import feed_networks
from portal.microsoft import graph
from portal.sync import feed

FEEDS = Path(__file__).parent / "feeds"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


TERM = (utc(2026, 11, 1), utc(2027, 1, 1))
AUTUMN_TO_SPRING = (utc(2026, 10, 1), utc(2027, 5, 1))


def occurrences(name: str, window=TERM) -> list[feed.Occurrence]:
    return feed.parse((FEEDS / name).read_bytes(), *window)


def starts(name: str, uid: str, window=TERM) -> list[datetime]:
    return [o.start for o in occurrences(name, window) if o.uid == uid]


def keys(name: str, window=TERM) -> set[str]:
    return {o.key for o in occurrences(name, window)}


def only(name: str, uid: str, window=TERM) -> feed.Occurrence:
    (occurrence,) = (o for o in occurrences(name, window) if o.uid == uid)
    return occurrence


def calendar(*event_lines: str) -> bytes:
    """A one-event calendar, for the malformed feeds too small to deserve a file."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "BEGIN:VEVENT", *event_lines, "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR", ""]).encode()


# Time zones


def test_an_amsterdam_lecture_stays_at_nine_local_after_the_october_change():
    assert starts("dst.ics", "lecture-autumn@example.org", AUTUMN_TO_SPRING) == [
        utc(2026, 10, 20, 7),
        utc(2026, 10, 27, 8),
    ]


def test_an_amsterdam_lecture_stays_at_nine_local_after_the_march_change():
    assert starts("dst.ics", "lecture-spring@example.org", AUTUMN_TO_SPRING) == [
        utc(2027, 3, 23, 8),
        utc(2027, 3, 30, 7),
    ]


@pytest.mark.parametrize(
    ("uid", "first", "second"),
    [
        ("utc-autumn@example.org", utc(2026, 10, 20, 9), utc(2026, 10, 27, 9)),
        ("utc-spring@example.org", utc(2027, 3, 23, 9), utc(2027, 3, 30, 9)),
    ],
)
def test_a_utc_event_keeps_its_utc_time_across_a_dst_change(uid, first, second):
    assert starts("dst.ics", uid, AUTUMN_TO_SPRING) == [first, second]


def test_start_and_end_are_aware_datetimes_in_utc():
    for occurrence in occurrences("dst.ics", AUTUMN_TO_SPRING):
        assert occurrence.start.tzinfo is UTC
        assert occurrence.end.tzinfo is UTC


def test_a_time_zone_defined_by_the_feeds_vtimezone_is_honoured():
    campus = only("timezones.ics", "campus-time@example.org")
    assert (campus.start, campus.end) == (utc(2026, 11, 2, 6), utc(2026, 11, 2, 7))


def test_an_iana_tzid_without_a_vtimezone_is_honoured():
    london = only("timezones.ics", "london@example.org", (utc(2026, 7, 1), utc(2026, 7, 2)))
    assert london.start == utc(2026, 7, 1, 8)


def test_a_floating_time_is_taken_as_utc():
    assert only("timezones.ics", "floating@example.org").start == utc(2026, 11, 2, 9)


# All-day events


def test_an_all_day_event_runs_from_midnight_utc_to_the_next_midnight():
    open_day = only("all_day.ics", "open-day@example.org")
    assert open_day.all_day
    assert (open_day.start, open_day.end) == (utc(2026, 11, 2), utc(2026, 11, 3))


def test_a_multi_day_event_ends_at_midnight_after_its_last_day():
    exam_week = only("all_day.ics", "exam-week@example.org")
    assert (exam_week.start, exam_week.end) == (utc(2026, 11, 9), utc(2026, 11, 12))


def test_an_all_day_event_without_dtend_lasts_one_day():
    holiday = only("all_day.ics", "holiday@example.org")
    assert (holiday.start, holiday.end) == (utc(2026, 11, 25), utc(2026, 11, 26))


def test_a_timed_event_is_not_all_day():
    assert not only("timezones.ics", "floating@example.org").all_day


def test_an_all_day_event_whose_dtend_equals_dtstart_lasts_one_day():
    # Holiday feeds write one-day events so; Graph refuses an all-day event shorter than a day.
    eve = only("holidays.ics", "st-nicholas@example.org")
    assert (eve.start, eve.end, eve.all_day) == (utc(2026, 12, 5), utc(2026, 12, 6), True)


def test_each_occurrence_of_a_recurring_zero_length_all_day_event_lasts_one_day():
    window = (utc(2025, 12, 1), utc(2027, 12, 31))
    christmas = [o for o in occurrences("holidays.ics", window) if o.uid.startswith("christmas")]
    assert [(o.start, o.end) for o in christmas] == [
        (utc(2025, 12, 25), utc(2025, 12, 26)),
        (utc(2026, 12, 25), utc(2026, 12, 26)),
        (utc(2027, 12, 25), utc(2027, 12, 26)),
    ]


def test_an_all_day_event_of_several_days_keeps_its_end():
    winter_break = only(
        "holidays.ics", "winter-break@example.org", (utc(2026, 12, 1), utc(2027, 2, 1))
    )
    assert (winter_break.start, winter_break.end) == (utc(2026, 12, 21), utc(2027, 1, 2))


# Free or busy


def test_a_transparent_event_shows_as_free():
    assert only("transparent.ics", "open-day@example.org").show_as == "free"
    assert graph.event_body(only("transparent.ics", "open-day@example.org"))["showAs"] == "free"


def test_every_occurrence_of_a_transparent_recurring_event_shows_as_free():
    office_hours = [o for o in occurrences("transparent.ics") if o.uid == "office-hour@example.org"]
    assert [o.show_as for o in office_hours] == ["free", "free"]


@pytest.mark.parametrize("uid", ["lecture@example.org", "seminar@example.org"])
def test_an_opaque_event_or_one_without_transp_shows_as_busy(uid):
    assert graph.event_body(only("transparent.ics", uid))["showAs"] == "busy"


# Recurrence and keys


def test_a_recurring_event_is_keyed_by_uid_and_original_start_in_utc():
    assert keys("weekly.ics") == {
        "statistics@example.org|20261102T080000Z",
        "statistics@example.org|20261116T080000Z",
        "statistics@example.org|20261123T080000Z",
        "statistics@example.org|20261204T120000Z",
    }


def test_a_single_event_is_keyed_by_uid_alone():
    assert keys("version1.ics") == {"chemistry@example.org|", "physics@example.org|"}


def test_an_exdate_leaves_that_occurrence_out():
    assert utc(2026, 11, 9, 8) not in starts("weekly.ics", "statistics@example.org")


def test_an_rdate_adds_an_occurrence():
    assert utc(2026, 12, 4, 12) in starts("weekly.ics", "statistics@example.org")


def test_a_moved_occurrence_has_its_new_time_and_place_under_its_original_key():
    moved = {o.key: o for o in occurrences("weekly.ics")}["statistics@example.org|20261116T080000Z"]
    assert (moved.start, moved.end) == (utc(2026, 11, 17, 13), utc(2026, 11, 17, 14, 45))
    assert moved.location == "Room 2.14"


def test_a_change_to_this_and_future_occurrences_keeps_one_key_per_original_start():
    tutorials = occurrences("this_and_future.ics")
    assert [(o.key, o.start) for o in tutorials] == [
        ("tutorial@example.org|20261102T080000Z", utc(2026, 11, 2, 8)),
        ("tutorial@example.org|20261109T080000Z", utc(2026, 11, 9, 10)),
        ("tutorial@example.org|20261116T080000Z", utc(2026, 11, 16, 10)),
    ]


def test_summary_description_location_and_categories_are_read():
    first = occurrences("weekly.ics")[0]
    assert first.uid == "statistics@example.org"
    assert first.subject == "Statistics 1"
    assert first.body == "Lecturer: Dr. Jansen\nBring a calculator."
    assert first.location == "Room 1.01"
    assert first.categories == ("Lecture", "Statistics")


def test_missing_text_properties_read_as_empty():
    chemistry = only("version1.ics", "chemistry@example.org")
    assert (chemistry.body, chemistry.location, chemistry.categories) == ("", "", ())


def test_occurrences_are_sorted_by_start_then_key():
    found = occurrences("dst.ics", AUTUMN_TO_SPRING)
    assert found == sorted(found, key=lambda o: (o.start, o.key))
    assert [o.start for o in found[:2]] == [utc(2026, 10, 20, 7), utc(2026, 10, 20, 9)]


# Cancellations and removals


def test_a_cancelled_occurrence_is_left_out():
    assert starts("cancelled.ics", "algebra@example.org") == [
        utc(2026, 11, 3, 8),
        utc(2026, 11, 17, 8),
    ]


def test_a_cancelled_single_event_is_left_out():
    assert starts("cancelled.ics", "excursion@example.org") == []


def test_a_cancelled_recurring_event_is_left_out_entirely():
    assert starts("cancelled.ics", "seminar@example.org") == []


def test_an_event_removed_from_the_feed_is_missing_from_the_next_version():
    before, after = occurrences("version1.ics"), occurrences("version2.ics")
    assert {o.key for o in before} - {o.key for o in after} == {"physics@example.org|"}
    assert [o for o in before if o.uid == "chemistry@example.org"] == after


# The window


@pytest.mark.parametrize(
    ("uid", "included"),
    [
        ("ends-at-window-start@example.org", False),
        ("across-window-start@example.org", True),
        ("starts-at-window-start@example.org", True),
        ("across-window-end@example.org", True),
        ("starts-at-window-end@example.org", False),
        ("day-before-window@example.org", False),
        ("last-day-of-window@example.org", True),
    ],
)
def test_the_window_holds_what_overlaps_it_start_inclusive_end_exclusive(uid, included):
    window = (utc(2026, 11, 1), utc(2026, 11, 8))
    assert (f"{uid}|" in keys("boundaries.ics", window)) is included


def through_the_expansion(data: bytes) -> bytes:
    """The same feed with every event made part of a series (an EXDATE that excludes
    nothing), so that recurring-ical-events expands it rather than the single-event path."""
    changed = re.sub(rb"BEGIN:VEVENT(\r?\n)", rb"BEGIN:VEVENT\1EXDATE:19000101T000000Z\1", data)
    assert changed != data
    return changed


def read_both_ways(data: bytes, window) -> tuple[list, list]:
    """The feed's occurrences as read, and as read with every event expanded by the
    library; a UID derived from the content (which the EXDATE changes) left out of both."""

    def comparable(occurrences):
        return sorted(
            (dataclasses.replace(o, key="", uid="") if o.uid_derived else o for o in occurrences),
            key=repr,
        )

    expanded = feed.parse(through_the_expansion(data), *window)
    return comparable(feed.parse(data, *window)), comparable(expanded)


SHAPES = [
    ("DTSTART:20261103T090000Z", "DURATION:PT1H30M"),
    ("DTSTART:20261103T090000Z",),  # no end: it ends when it starts (RFC 5545, 3.6.1)
    ("DTSTART;VALUE=DATE:20261103",),  # no end: the whole day
    ("DTSTART:20261101T000000Z", "DTEND:20261101T000000Z"),  # nothing long, at the start
    ("DTSTART:20261231T230000Z", "DTEND:20270101T000000Z"),  # ends as the window ends
    ("DTSTART:20270101T000000Z", "DTEND:20270101T010000Z"),  # starts as the window ends
    ("DTSTART:20261103T100000Z", "DTEND:20261103T090000Z"),  # ends before it starts
    ("DTSTART;TZID=Europe/Amsterdam:20261103T090000", "DTEND:20261103T100000Z"),
    ("DTSTART:20261103T090000", "DTEND:20261103T100000"),  # floating
]


@pytest.mark.parametrize("lines", SHAPES)
def test_a_single_event_reads_as_the_libraries_expansion_reads_it(lines):
    as_single, expanded = read_both_ways(calendar("UID:s@example.org", *lines), TERM)
    assert as_single == expanded


@pytest.mark.parametrize("path", sorted(FEEDS.glob("*.ics")), ids=lambda path: path.name)
@pytest.mark.parametrize("window", [TERM, AUTUMN_TO_SPRING, (utc(2026, 11, 1), utc(2026, 11, 8))])
def test_every_feed_reads_as_it_does_when_the_library_expands_every_event(path, window):
    """Single events skip recurring-ical-events' expansion (``feed._expand``); what they
    come to must not change."""
    as_read, expanded = read_both_ways(path.read_bytes(), window)
    assert as_read == expanded


# Repeated UIDs


def test_a_repeated_uid_keeps_the_revision_with_the_highest_sequence():
    assert only("duplicates.ics", "rescheduled@example.org").start == utc(2026, 11, 2, 13)


def test_a_repeated_uid_with_equal_sequence_keeps_the_last_revision():
    assert only("duplicates.ics", "repeated@example.org").subject == "Repeated lecture (last)"


def test_keys_are_unique():
    for name in ("duplicates.ics", "weekly.ics", "this_and_future.ics"):
        found = occurrences(name)
        assert len({o.key for o in found}) == len(found)


# Feeds that cannot be used


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><body>Please sign in</body></html>",
        b"",
        b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n",
    ],
    ids=["html", "empty", "event-without-calendar"],
)
def test_data_that_is_not_an_icalendar_file_is_refused(data):
    with pytest.raises(feed.FeedError) as raised:
        feed.parse(data, *TERM)
    assert raised.value.reason == "The timetable feed is not an iCalendar file."


@pytest.mark.parametrize(
    "event_lines",
    [
        ("UID:a", "DTSTART:2026110"),
        ("UID:a", "DTSTART:20261102T080000Z", "RRULE:COUNT=3"),
    ],
    ids=["malformed-date", "rrule-without-freq"],
)
def test_an_event_that_cannot_be_read_makes_the_feed_unusable(event_lines):
    with pytest.raises(feed.FeedError) as raised:
        feed.parse(calendar(*event_lines), *TERM)
    assert raised.value.reason.startswith("The timetable feed has an event that cannot be read: ")


def test_an_event_with_two_starts_makes_the_feed_unusable():
    data = calendar("UID:a", "DTSTART:20261102T080000Z", "DTSTART:20261103T080000Z")
    with pytest.raises(feed.FeedError) as raised:
        feed.parse(data, *TERM)
    assert raised.value.reason == "The timetable feed has an event with more than one DTSTART."


def test_an_event_without_start_is_skipped():
    assert feed.parse(calendar("UID:a"), *TERM) == []


# Events without UID


def keyless(data: bytes, window=TERM) -> list[feed.Occurrence]:
    return [o for o in feed.parse(data, *window) if o.uid_derived]


def test_events_without_uid_are_kept_with_a_key_derived_from_their_content():
    found = keyless((FEEDS / "no_uid.ics").read_bytes())
    assert sorted(o.subject for o in found) == [
        "Statistics 1",
        "Statistics 1",
        "Study group",
        "Study group",
        "Tutorial",
        "Tutorial",
        "Tutorial",
    ]
    assert len({o.key for o in found}) == len(found)
    assert not only("no_uid.ics", "with-uid@example.org").uid_derived


def test_the_occurrences_of_a_recurring_event_without_uid_share_its_derived_uid():
    tutorials = [o for o in occurrences("no_uid.ics") if o.subject == "Tutorial"]
    assert len({o.uid for o in tutorials}) == 1
    assert [o.start for o in tutorials] == [
        utc(2026, 11, 3, 10),
        utc(2026, 11, 10, 10),
        utc(2026, 11, 17, 10),
    ]


def test_a_derived_key_is_the_same_in_every_run_even_when_dtstamp_changes():
    data = (FEEDS / "no_uid.ics").read_bytes()
    regenerated = data.replace(b"DTSTAMP:20261101T063000Z", b"DTSTAMP:20261102T063012Z")
    assert {o.key: o.content_hash() for o in keyless(data)} == {
        o.key: o.content_hash() for o in keyless(regenerated)
    }


def test_a_derived_key_does_not_depend_on_the_order_of_events_or_properties():
    first = calendar("DTSTART:20261102T080000Z", "SUMMARY:Exam", "LOCATION:Hall")
    reordered = calendar("LOCATION:Hall", "SUMMARY:Exam", "DTSTART:20261102T080000Z")
    assert [o.key for o in feed.parse(first, *TERM)] == [
        o.key for o in feed.parse(reordered, *TERM)
    ]


def test_a_derived_key_changes_with_what_the_event_says():
    exam = calendar("DTSTART:20261102T080000Z", "SUMMARY:Exam")
    moved = calendar("DTSTART:20261102T090000Z", "SUMMARY:Exam")
    assert feed.parse(exam, *TERM)[0].key != feed.parse(moved, *TERM)[0].key


# Occurrence


LECTURE = feed.Occurrence(
    key="statistics@example.org|20261102T080000Z",
    uid="statistics@example.org",
    subject="Statistics 1",
    body="Lecturer: Dr. Jansen",
    location="Room 1.01",
    start=utc(2026, 11, 2, 8),
    end=utc(2026, 11, 2, 9, 45),
    all_day=False,
    categories=("Lecture", "Statistics"),
)


def test_content_hash_is_the_same_in_every_run_and_process():
    # Pinned: a different hash for the same content would rewrite every stored event.
    assert LECTURE.content_hash() == (
        "59560cab718dee506413f2de3c781569521b75dfc888f1baf250a5a153e57c1d"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("uid", "statistics-2@example.org"),
        ("subject", "Statistics 2"),
        ("body", "Lecturer: Dr. de Vries"),
        ("location", "Room 2.14"),
        ("start", utc(2026, 11, 2, 9)),
        ("end", utc(2026, 11, 2, 10)),
        ("all_day", True),
        ("categories", ("Lecture",)),
    ],
)
def test_content_hash_changes_when_a_field_changes(field, value):
    changed = dataclasses.replace(LECTURE, **{field: value})
    assert changed.content_hash() != LECTURE.content_hash()


def test_content_hash_changes_when_an_event_becomes_free():
    free = dataclasses.replace(LECTURE, show_as=feed.ShowAs.FREE)
    assert free.content_hash() != LECTURE.content_hash()


def test_content_hash_ignores_the_key():
    moved_key = dataclasses.replace(LECTURE, key="statistics@example.org|20261109T080000Z")
    assert moved_key.content_hash() == LECTURE.content_hash()


def test_graph_event_is_the_body_graph_takes_for_an_event():
    assert graph.event_body(LECTURE) == {
        "subject": "Statistics 1",
        "body": {"contentType": "text", "content": "Lecturer: Dr. Jansen"},
        "start": {"dateTime": "2026-11-02T08:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-02T09:45:00", "timeZone": "UTC"},
        "isAllDay": False,
        "location": {"displayName": "Room 1.01"},
        "categories": ["Lecture", "Statistics"],
        "showAs": "busy",
        "isReminderOn": False,
    }


def test_graph_event_for_an_all_day_event_runs_from_midnight_to_midnight():
    event = graph.event_body(only("all_day.ics", "exam-week@example.org"))
    assert event["isAllDay"] is True
    assert event["start"] == {"dateTime": "2026-11-09T00:00:00", "timeZone": "UTC"}
    assert event["end"] == {"dateTime": "2026-11-12T00:00:00", "timeZone": "UTC"}


# The feed's address and window


@pytest.mark.parametrize(
    ("template", "upn", "url"),
    [
        (
            "https://rooster.example.org/ical?user={upn}",
            "j.devries@example.org",
            "https://rooster.example.org/ical?user=j.devries@example.org",
        ),
        (
            "https://rooster.example.org/ical/{email}",
            "j.devries@example.org",
            "https://rooster.example.org/ical/j.devries@example.org",
        ),
        (
            "https://rooster.example.org/ical?user={upn}",
            "an+ne de@example.org",
            "https://rooster.example.org/ical?user=an%2Bne%20de@example.org",
        ),
        (
            "https://rooster.example.org/ical?token=abc",
            "j.devries@example.org",
            "https://rooster.example.org/ical?token=abc",
        ),
    ],
    ids=["upn", "email", "quoted", "no-placeholder"],
)
def test_feed_url_fills_in_the_persons_address(template, upn, url):
    assert feed.feed_url(template, upn) == url


def test_default_window_runs_from_two_weeks_back_to_26_weeks_ahead_from_midnight_utc():
    assert feed.default_window(utc(2026, 11, 10, 15, 30)) == (utc(2026, 10, 27), utc(2027, 5, 11))


def test_default_window_counts_days_in_utc():
    just_after_midnight_in_amsterdam = datetime(
        2026, 11, 10, 0, 30, tzinfo=ZoneInfo("Europe/Amsterdam")
    )
    assert feed.default_window(just_after_midnight_in_amsterdam)[0] == utc(2026, 10, 26)


def test_default_window_takes_a_naive_now_as_utc():
    assert feed.default_window(datetime(2026, 11, 10, 15, 30)) == feed.default_window(
        utc(2026, 11, 10, 15, 30)
    )


def test_default_window_without_now_is_around_today():
    start, end = feed.default_window()
    now = datetime.now(UTC)
    assert start.tzinfo is UTC and end.tzinfo is UTC
    assert start < now < end


# Fetching


ETAG = '"v1"'
LAST_MODIFIED = "Mon, 02 Nov 2026 08:00:00 GMT"
LIMIT = 5 * 1024 * 1024


class FeedServer(BaseHTTPRequestHandler):
    """Serves the feeds of the fetch tests; ``release`` lets the slow ones finish."""

    protocol_version = "HTTP/1.1"
    release = threading.Event()
    seen_headers: list = []

    def log_message(self, format, *args):
        """Quiet: the tests read answers, not the server's log."""

    def do_GET(self):
        self.seen_headers.append(dict(self.headers))
        route = {
            "/feed.ics": self.feed,
            "/unchanged.ics": self.unchanged,
            "/page.html": self.page,
            "/huge.ics": self.huge,
            "/announced-huge.ics": self.announced_huge,
            "/slow.ics": self.slow,
            "/stalled.ics": self.stalled,
            "/trickle.ics": self.trickle,
        }.get(self.path)
        try:
            if route is None:
                self.answer(404, b"Not found", "text/plain")
            else:
                route()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it is meant to

    def answer(self, status, body, content_type, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def start_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def feed(self):
        validators = [("ETag", ETAG), ("Last-Modified", LAST_MODIFIED)]
        if self.headers.get("If-None-Match") == ETAG:
            self.answer(304, b"", "text/calendar", validators)
        else:
            body = (FEEDS / "version1.ics").read_bytes()
            self.answer(200, body, "text/calendar", validators)

    def unchanged(self):
        self.answer(304, b"", "text/calendar")

    def page(self):
        self.answer(200, b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html")

    def huge(self):
        self.start_chunked()
        for _ in range(LIMIT // (1024 * 1024) + 1):
            self.chunk(b"X" * 1024 * 1024)
        self.chunk(b"")

    def announced_huge(self):
        self.send_response(200)
        self.send_header("Content-Length", str(LIMIT + 1))
        self.send_header("Connection", "close")
        self.end_headers()

    def slow(self):
        self.release.wait(5)
        self.answer(200, (FEEDS / "version1.ics").read_bytes(), "text/calendar")

    def stalled(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"BEGIN:VCALENDAR\r\n")
        self.release.wait(5)

    def trickle(self):
        self.start_chunked()
        self.chunk(b"BEGIN:VCALENDAR\r\n")
        while not self.release.wait(0.1):
            self.chunk(b"X-TRICKLE:1\r\n")


@pytest.fixture
def server():
    """The base URL of a FeedServer on 127.0.0.1."""
    FeedServer.release = threading.Event()
    FeedServer.seen_headers = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FeedServer)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    FeedServer.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def session():
    """The fetch's settings of the tests: the feed servers listen on 127.0.0.1."""
    return {"allowed_networks": feed_networks("127.0.0.0/8")}


def fetch(session, url, **kwargs):
    return feed.fetch(url, window_start=TERM[0], window_end=TERM[1], **session, **kwargs)


def fetch_error(session, url, **kwargs) -> str:
    with pytest.raises(feed.FeedError) as raised:
        fetch(session, url, **kwargs)
    return raised.value.reason


def test_fetch_returns_the_occurrences_and_the_validators(server, session):
    result = fetch(session, f"{server}/feed.ics")
    assert [o.key for o in result.occurrences] == ["chemistry@example.org|", "physics@example.org|"]
    assert (result.etag, result.last_modified) == (ETAG, LAST_MODIFIED)


def test_fetch_sends_the_validators_of_the_previous_fetch(server, session):
    fetch(session, f"{server}/feed.ics", etag=ETAG, last_modified=LAST_MODIFIED)
    (headers,) = FeedServer.seen_headers
    assert (headers["If-None-Match"], headers["If-Modified-Since"]) == (ETAG, LAST_MODIFIED)


def test_an_unchanged_feed_gives_no_occurrences_and_keeps_its_validators(server, session):
    result = fetch(session, f"{server}/feed.ics", etag=ETAG)
    assert result == feed.FeedResult(None, ETAG, LAST_MODIFIED)


def test_a_304_without_validators_keeps_the_ones_sent(server, session):
    result = fetch(session, f"{server}/unchanged.ics", etag=ETAG, last_modified=LAST_MODIFIED)
    assert result == feed.FeedResult(None, ETAG, LAST_MODIFIED)


def test_an_error_status_is_reported(server, session):
    assert fetch_error(session, f"{server}/missing.ics") == "The timetable feed answered HTTP 404."


def test_a_body_that_is_not_icalendar_is_refused(server, session):
    reason = fetch_error(session, f"{server}/page.html")
    assert reason == "The timetable feed is not an iCalendar file."


def test_a_feed_past_the_size_limit_is_refused_while_it_streams(server, session):
    assert fetch_error(session, f"{server}/huge.ics") == "The timetable feed is larger than 5 MB."


def test_a_feed_announced_past_the_size_limit_is_refused_before_it_is_read(server, session):
    reason = fetch_error(session, f"{server}/announced-huge.ics", max_bytes=1024)
    assert reason == "The timetable feed is larger than 1 KB."


def test_a_server_that_does_not_answer_in_time_is_reported(server, session):
    reason = fetch_error(session, f"{server}/slow.ics", timeout=0.5)
    assert reason == "The timetable feed did not answer within 0.5 seconds."


def test_a_body_that_stops_arriving_is_reported_as_too_slow(server, session):
    reason = fetch_error(session, f"{server}/stalled.ics", timeout=0.5)
    assert reason == "The timetable feed did not answer within 0.5 seconds."


def test_a_body_that_keeps_trickling_in_past_the_timeout_is_reported_as_too_slow(server, session):
    reason = fetch_error(session, f"{server}/trickle.ics", timeout=0.5)
    assert reason == "The timetable feed did not answer within 0.5 seconds."


def test_an_unreachable_server_is_reported(session):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    reason = fetch_error(session, f"http://127.0.0.1:{closed_port}/feed.ics")
    assert reason == "The timetable feed could not be reached."
