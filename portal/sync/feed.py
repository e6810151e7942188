"""A person's MyTimetable iCalendar feed, fetched and read into the occurrences to write.

MyTimetable publishes each person's timetable as an iCalendar feed. This module fetches it
(conditionally, so an unchanged feed costs one small answer), expands recurring events into
single occurrences within a time window and gives each occurrence a key that stays the same
from one run to the next, so the sync can tell new, changed and removed lectures apart.
"""

import enum
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import icalendar
import recurring_ical_events
from recurring_ical_events.util import time_span_contains_event

from ..microsoft import graph
from . import fetching

NOT_ICALENDAR = "The timetable feed is not an iCalendar file."
_SINGLE_VALUED = (
    "UID",
    "DTSTART",
    "DTEND",
    "DURATION",
    "RECURRENCE-ID",
    "SEQUENCE",
    "STATUS",
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
)
# What a feed generator changes on every export without the event changing: left out of the
# content a key is derived from for an event without UID.
# What makes an event part of a series, expanded by recurring-ical-events (RFC 5545, 3.8.5).
_SERIES = ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")
_EXPORT_STAMPS = {"DTSTAMP", "LAST-MODIFIED", "CREATED", "SEQUENCE"}
_PROPERTY_NAME = re.compile(r"[^:;]*")
# Begins a derived UID. A feed could give an event such a UID itself, but only to confuse
# its own events with one another.
_DERIVED_UID_PREFIX = "no-uid-"


class ShowAs(enum.StrEnum):
    """How Outlook shows the time of an event to the person and to those who plan with them:
    iCalendar's TRANSP:TRANSPARENT is free time (RFC 5545, 3.8.2.7), anything else busy."""

    FREE = "free"
    BUSY = "busy"


@dataclass(frozen=True)
class Occurrence:
    """One lecture, exam or other event on one day, as it goes into the Outlook calendar."""

    key: str
    uid: str
    subject: str
    body: str
    location: str
    start: datetime
    end: datetime
    all_day: bool
    categories: tuple[str, ...]
    show_as: ShowAs = ShowAs.BUSY
    # The feed gave the event no UID: ``uid`` is derived from the event's content.
    uid_derived: bool = False

    def content_hash(self) -> str:
        """A fingerprint of everything shown in Outlook, to tell whether the event changed."""
        # JSON in a fixed order, not hash(): the fingerprint is stored and compared by later
        # runs in other processes, where Python's string hashing is salted differently.
        content = [
            self.uid,
            self.subject,
            self.body,
            self.location,
            self.start.isoformat(),
            self.end.isoformat(),
            self.all_day,
            list(self.categories),
        ]
        # Busy is what every event was written as before the feed's TRANSP was read: left
        # out, so that the events written then keep their fingerprint and are not rewritten.
        if self.show_as != ShowAs.BUSY:
            content.append(self.show_as)
        encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    def request_hash(self) -> str:
        """A fingerprint of the event as it is sent to Graph: a write Graph refused is sent
        again only once this differs."""
        encoded = json.dumps(graph.event_body(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


@dataclass
class FeedResult:
    """What one fetch of the feed gave; ``occurrences`` is None when it had not changed."""

    occurrences: list[Occurrence] | None
    etag: str | None
    last_modified: str | None


class FeedError(Exception):
    """The feed cannot be used; ``reason`` says why in words a person understands."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def feed_url(template: str, upn: str) -> str:
    """The feed address of the person signing in as ``upn``.

    ``{upn}`` and ``{email}`` in the institution's template both stand for the address.
    """
    # '@' stays as typed: RFC 3986 allows it in a path and a query, and a feed server looks
    # the person up by the address as it is written.
    quoted = quote(upn, safe="@")
    return template.replace("{upn}", quoted).replace("{email}", quoted)


def default_window(
    now: datetime | None = None, days_back: int = 14, weeks_ahead: int = 26
) -> tuple[datetime, datetime]:
    """The span the sync keeps in the calendar: by default two weeks back to 26 weeks ahead
    (``PORTAL_SYNC_DAYS_BACK`` and ``PORTAL_SYNC_WEEKS_AHEAD``).

    Both ends are midnight UTC, so runs on the same day agree on the window. A naive ``now``
    is taken to be UTC, as the portal's stored timestamps are.
    """
    now = _as_utc(now or datetime.now(UTC))
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_back), today + timedelta(weeks=weeks_ahead)


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    window_start: datetime,
    window_end: datetime,
    timeout: float = 10,
    max_bytes: int = 5 * 1024 * 1024,
    allowed_networks: Iterable[fetching.Network] = (),
) -> FeedResult:
    """Fetch the feed at ``url`` and read the occurrences in [window_start, window_end).

    ``etag`` and ``last_modified`` are the validators of the previous fetch; when the server
    says the feed has not changed since, the result has no occurrences. The whole fetch has
    ``timeout`` seconds; local and private addresses are refused unless in
    ``allowed_networks`` (see ``fetching``). Raises FeedError when the feed cannot be
    fetched or read.
    """
    headers = {"Accept": "text/calendar"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        answer = fetching.get(
            url,
            headers,
            timeout=timeout,
            max_bytes=max_bytes,
            allowed=allowed_networks,
        )
    except fetching.FetchError as error:
        raise FeedError(error.reason) from error
    if answer.status == 304:
        # A 304 need not repeat the validators; the ones sent are then still current.
        return FeedResult(
            None,
            answer.headers.get("ETag", etag),
            answer.headers.get("Last-Modified", last_modified),
        )
    if answer.status != 200:
        raise FeedError(f"The timetable feed answered HTTP {answer.status}.")
    return FeedResult(
        parse(answer.body, window_start, window_end),
        answer.headers.get("ETag"),
        answer.headers.get("Last-Modified"),
    )


def parse(data: bytes, window_start: datetime, window_end: datetime) -> list[Occurrence]:
    """The occurrences in the iCalendar ``data`` that overlap [window_start, window_end).

    Recurring events are expanded (RRULE, RDATE, EXDATE, moved occurrences); cancelled events
    and cancelled occurrences are left out. An event without UID gets one derived from its
    content (``uid_derived``). The result is sorted by start, then key. Naive window ends are
    taken as UTC. Raises FeedError when ``data`` is not iCalendar or an event in it cannot be
    read.
    """
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as error:
        raise FeedError(NOT_ICALENDAR) from error
    if calendar.name != "VCALENDAR":
        raise FeedError(NOT_ICALENDAR)
    _keep_usable_revisions(calendar)
    try:
        occurrences = _expand(calendar, _as_utc(window_start), _as_utc(window_end))
    except Exception as error:
        # A feed comes from outside, and icalendar, recurring-ical-events and dateutil read
        # values lazily without validating them first: a malformed value surfaces as whatever
        # it breaks (ValueError for a bad date, TypeError for an RRULE without FREQ, OSError
        # for a TZID naming a folder of tzdata). Any of them makes the feed unusable.
        raise FeedError(f"The timetable feed has an event that cannot be read: {error}") from error
    return sorted(occurrences, key=lambda occurrence: (occurrence.start, occurrence.key))


def _expand(
    calendar: icalendar.Calendar, window_start: datetime, window_end: datetime
) -> list[Occurrence]:
    """The calendar's occurrences in the window, cancelled ones left out, one per key.

    Only series go through recurring-ical-events' expansion. A single event (no RRULE,
    RDATE, EXDATE or RECURRENCE-ID, and no other event of its UID that has them), which is
    how MyTimetable writes every lecture, is its own one occurrence: its span and whether
    the window holds it come from the library's own ``EventAdapter`` and
    ``time_span_contains_event``, as they would in the expansion, without the series and the
    copy of the event the expansion makes for each occurrence (over half of a feed's reading).
    """
    recurring: set[str] = set()  # their occurrences' keys name their original start
    series: set[str] = set()
    moved_by: dict[tuple[str, str], timedelta] = {}
    for event in calendar.walk("VEVENT"):
        if any(name in event for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
            recurring.add(str(event["UID"]))
        if any(name in event for name in _SERIES):
            series.add(str(event["UID"]))
        if _this_and_future(event):
            shift = recurring_ical_events.EventAdapter(event).move_recurrences_by
            moved_by[(str(event["UID"]), _utc_stamp(event["RECURRENCE-ID"].dt))] = shift
    spans = []
    series_only = []  # what the expansion is left with
    for component in calendar.subcomponents:
        if component.name != "VEVENT" or str(component["UID"]) in series:
            series_only.append(component)
            continue
        start, end = recurring_ical_events.EventAdapter(component).span
        if time_span_contains_event(window_start, window_end, start, end):
            spans.append((component, start, end))
    calendar.subcomponents = series_only
    spans += [
        (component, component["DTSTART"].dt, component["DTEND"].dt)
        for component in recurring_ical_events.of(calendar).between(window_start, window_end)
    ]
    by_key: dict[str, Occurrence] = {}
    for component, start, end in spans:
        if str(component.get("STATUS", "")).upper() == "CANCELLED":
            continue
        occurrence = _occurrence(component, start, end, recurring, moved_by)
        by_key[occurrence.key] = occurrence
    return list(by_key.values())


def _keep_usable_revisions(calendar: icalendar.Calendar) -> None:
    """Drop events without DTSTART, and all but the newest revision of a repeated UID; give
    events without UID one derived from their content.

    Raises FeedError for an event that repeats a property it may have only once.
    """
    for component in calendar.walk("VEVENT"):
        for name in _SINGLE_VALUED:
            # icalendar gives a repeated property as a list, which the rest cannot read.
            if isinstance(component.get(name), list):
                raise FeedError(f"The timetable feed has an event with more than one {name}.")
    # Without a start an event cannot be placed in a calendar: RFC 5545 requires it.
    events = [
        component
        for component in calendar.subcomponents
        if component.name == "VEVENT" and "DTSTART" in component
    ]
    _derive_missing_uids([event for event in events if "UID" not in event])
    # The same UID twice without RECURRENCE-ID means revisions of one event: the highest
    # SEQUENCE is the newest (RFC 5545); among equals the later one, as feeds are appended.
    newest = {}
    for event in events:
        uid = str(event["UID"])
        if "RECURRENCE-ID" not in event and (
            uid not in newest or _sequence(event) >= _sequence(newest[uid])
        ):
            newest[uid] = event
    kept = {
        id(event)
        for event in events
        if "RECURRENCE-ID" in event or newest.get(str(event["UID"])) is event
    }
    calendar.subcomponents = [
        component
        for component in calendar.subcomponents
        if component.name != "VEVENT" or id(component) in kept
    ]


def _derive_missing_uids(events: list[icalendar.Event]) -> None:
    """Give each event a UID derived from what it says, so that it is recognised on the next
    run: the same event keeps its UID while its content stays the same.

    RFC 5545 requires a UID, but some feeds leave it out. What an export changes every time
    (DTSTAMP and the like) is left out; the order of properties does not count. Identical
    events are numbered in the order the feed lists them, so none is lost.
    """
    seen: dict[str, int] = {}
    for event in events:
        lines = sorted(
            str(line)
            for line in event.content_lines()
            if _PROPERTY_NAME.match(line)[0].upper() not in _EXPORT_STAMPS
        )
        digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
        seen[digest] = seen.get(digest, 0) + 1
        ordinal = f"-{seen[digest]}" if seen[digest] > 1 else ""
        event.add("UID", f"{_DERIVED_UID_PREFIX}{digest}{ordinal}")


def _uid_derived(component: icalendar.Event) -> bool:
    return str(component.get("UID", "")).startswith(_DERIVED_UID_PREFIX)


def _sequence(event: icalendar.Event) -> int:
    try:
        return int(event.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        return 0


def _this_and_future(event: icalendar.Event) -> bool:
    recurrence_id = event.get("RECURRENCE-ID")
    return recurrence_id is not None and recurrence_id.params.get("RANGE") == "THISANDFUTURE"


def _occurrence(
    component: icalendar.Event,
    first: date | datetime,
    last: date | datetime,
    recurring: set[str],
    moved_by: dict[tuple[str, str], timedelta],
) -> Occurrence:
    """The Occurrence of a single event, or of one expanded component of
    recurring-ical-events, from ``first`` to ``last``."""
    uid = str(component["UID"])
    all_day = not isinstance(first, datetime)
    if all_day and _to_utc(last) <= _to_utc(first):
        # Holiday feeds often give a one-day event a DTEND equal to its DTSTART. An all-day
        # event lasts at least its day, as one with a DATE start and no end does (RFC 5545,
        # 3.6.1); Graph refuses a shorter one.
        last = first + timedelta(days=1)
    recurrence_id = ""
    if uid in recurring:
        # recurring-ical-events sets RECURRENCE-ID to the original start of each occurrence,
        # except after a RANGE=THISANDFUTURE change: there every later occurrence carries the
        # change's RECURRENCE-ID, and its original start is its start less the shift.
        recurrence_id = _utc_stamp(component["RECURRENCE-ID"].dt)
        if _this_and_future(component):
            shift = moved_by[(uid, recurrence_id)]
            recurrence_id = _utc_stamp(first - shift)
    return Occurrence(
        key=f"{uid}|{recurrence_id}",
        uid=uid,
        subject=str(component.get("SUMMARY", "")),
        body=str(component.get("DESCRIPTION", "")),
        location=str(component.get("LOCATION", "")),
        start=_to_utc(first),
        end=_to_utc(last),
        all_day=all_day,
        categories=tuple(str(category) for category in component.categories),
        show_as=ShowAs.FREE
        if str(component.get("TRANSP", "")).upper() == "TRANSPARENT"
        else ShowAs.BUSY,
        uid_derived=_uid_derived(component),
    )


def _to_utc(value: date | datetime) -> datetime:
    """A DTSTART or DTEND value as an aware UTC datetime."""
    if not isinstance(value, datetime):
        # All-day events keep their calendar date: midnight UTC, which Graph takes as
        # the whole day when isAllDay is set with the UTC time zone.
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    # Floating times (no TZID, no Z) are taken as UTC: a feed that leaves out the time zone
    # gives nothing better to go on, and recurring-ical-events already compares them with
    # the UTC window as UTC, so the window and the occurrence agree.
    return _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _utc_stamp(value: date | datetime) -> str:
    return _to_utc(value).strftime("%Y%m%dT%H%M%SZ")
