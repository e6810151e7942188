"""The plan: what to write, given the feed, what the portal wrote and what Graph refused."""

import dataclasses
from datetime import UTC, datetime

from portal.sync import feed, plan

LECTURE = feed.Occurrence(
    key="statistics@example.org|",
    uid="statistics@example.org",
    subject="Statistics 1",
    body="",
    location="Room 1.01",
    start=datetime(2026, 11, 2, 8, tzinfo=UTC),
    end=datetime(2026, 11, 2, 9, tzinfo=UTC),
    all_day=False,
    categories=(),
)
MOVED = dataclasses.replace(LECTURE, location="Room 2.14")
KEY = LECTURE.key


def written(occurrence=LECTURE) -> dict[str, plan.Written]:
    return {KEY: plan.Written("AAMkA1", occurrence.content_hash())}


def test_an_unchanged_feed_needs_no_write():
    made = plan.make([LECTURE], written())
    assert (made.creates, made.updates, made.deletes, made.held) == ([], [], [], [])


def test_a_refused_create_is_held_while_the_request_would_be_the_same():
    made = plan.make([LECTURE], {}, {KEY: LECTURE.request_hash()})
    assert (made.creates, made.held, made.cleared) == ([], [KEY], [])


def test_a_refused_create_goes_again_once_the_occurrence_changes():
    made = plan.make([MOVED], {}, {KEY: LECTURE.request_hash()})
    assert (made.creates, made.held, made.cleared) == ([MOVED], [], [KEY])


def test_a_refused_update_is_held_and_goes_again_once_the_occurrence_changes_again():
    refused = {KEY: MOVED.request_hash()}
    held = plan.make([MOVED], written(), refused)
    again = plan.make([dataclasses.replace(MOVED, subject="Statistics 2")], written(), refused)
    assert (held.updates, held.held) == ([], [KEY])
    assert ([o.subject for o, _ in again.updates], again.cleared) == (["Statistics 2"], [KEY])


def test_a_refusal_is_cleared_once_the_occurrence_is_back_as_it_was_written():
    made = plan.make([LECTURE], written(), {KEY: MOVED.request_hash()})
    assert (made.updates, made.held, made.cleared) == ([], [], [KEY])


def test_a_refusal_of_an_occurrence_gone_from_the_feed_is_cleared():
    made = plan.make([], {}, {KEY: LECTURE.request_hash()})
    assert made.cleared == [KEY]


def test_a_refused_removal_is_held_while_the_occurrence_stays_away():
    held = plan.make([], written(), {KEY: plan.REMOVAL})
    back = plan.make([LECTURE], written(), {KEY: plan.REMOVAL})
    assert (held.deletes, held.held) == ([], [KEY])
    assert (back.deletes, back.updates, back.cleared) == ([], [], [KEY])


def test_the_request_hash_follows_what_is_sent_to_graph():
    free = dataclasses.replace(LECTURE, show_as=feed.ShowAs.FREE)
    assert free.request_hash() != LECTURE.request_hash()
    assert dataclasses.replace(LECTURE, key="other|").request_hash() == LECTURE.request_hash()
