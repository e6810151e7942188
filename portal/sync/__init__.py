"""Timetable feed to Outlook calendar: feed, plan, engine and the jobs that run them."""

import enum


class SyncOutcome(enum.StrEnum):
    """How a synchronisation run (and its job) ended; stored on the connection and the job,
    so the values never change."""

    OK = "ok"  # everything the feed holds is in the calendar
    UNCHANGED = "unchanged"  # the feed had not changed ("not modified")
    PARTIAL = "partial"  # some writes failed
    FAILED = "failed"  # the feed or Graph failed the whole run
    SKIPPED = "skipped"  # the connection was no longer connected when the job ran
    THROTTLED = "throttled"  # Graph asked to wait longer than a run may: queued for later
    LOCK_LOST = "lock lost"  # the mailbox's lock lapsed mid-run: the run stopped writing
