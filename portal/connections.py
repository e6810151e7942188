"""End users' connections: the stored sign-in, the MyTimetable calendar, the sync's state.

The MSAL token cache (refresh token included) is kept encrypted in the database, never
in the cookie; when it stops working the connection asks its user to reconnect, and
nothing else is deleted.
"""

import logging
from enum import StrEnum

from flask_babel import get_locale
from sqlalchemy import select

from . import security, tokens
from .extensions import db
from .microsoft import graph, identity
from .microsoft.clouds import cloud
from .microsoft.errors import MicrosoftError
from .models import Configuration, Connection, ConnectionStatus, record, utcnow
from .sync import jobs

log = logging.getLogger(__name__)
CALENDAR_NAME = "MyTimetable"


def connect(configuration: Configuration, sign_in: identity.SignIn) -> Connection:
    """Store a user's sign-in, make or reuse their MyTimetable calendar, queue a sync."""
    calendar, _ = graph.ensure_calendar(
        cloud(configuration.cloud), sign_in.access_token, CALENDAR_NAME
    )
    connection = db.session.scalar(
        select(Connection).filter_by(
            configuration_id=configuration.id, user_object_id=sign_in.object_id
        )
    )
    if connection is None:
        connection = Connection(configuration=configuration, user_object_id=sign_in.object_id)
        db.session.add(connection)
    connection.upn = sign_in.username
    connection.display_name = sign_in.display_name
    connection.token_cache_encrypted = security.encrypt(sign_in.token_cache.encode())
    connection.calendar_id, connection.calendar_name = calendar.id, calendar.name
    connection.status, connection.last_error = ConnectionStatus.CONNECTED, None
    connection.last_error_code = connection.last_error_ids = None
    connection.categories_refused_at = None  # this sign-in may grant the categories
    connection.language = str(get_locale() or "en")
    db.session.flush()
    jobs.enqueue(connection, "first sync" if connection.last_sync_at is None else "reconnected")
    record(configuration.institution, sign_in.username, "user_connected", calendar.name)
    db.session.commit()
    log.info(
        "End user signed in to %s: connection %s, calendar %r, sync queued.",
        configuration.institution.slug,
        connection.id,
        calendar.name,
    )
    return connection


def sync_now(connection: Connection) -> None:
    """Ask for a synchronisation now (checking first that the sign-in still works)."""
    tokens.user_token(connection)
    jobs.enqueue(connection, "sync now")
    db.session.commit()


def disconnect(connection: Connection, remove_calendar: bool) -> bool:
    """Forget the user's tokens; optionally remove the MyTimetable calendar first.

    Returns whether the calendar was removed (it cannot be once the sign-in stopped
    working; the user then removes it in Outlook).
    """
    removed = False
    connected = connection.status == ConnectionStatus.CONNECTED
    if remove_calendar and connection.calendar_id and connected:
        try:
            graph.delete_calendar(
                cloud(connection.configuration.cloud),
                tokens.user_token(connection),
                connection.calendar_id,
            )
            removed = True
        except MicrosoftError:
            removed = False
    connection.token_cache_encrypted = None
    connection.status = ConnectionStatus.DISCONNECTED
    if removed:
        connection.calendar_id = connection.calendar_name = None
    record(
        connection.configuration.institution,
        connection.upn,
        "user_disconnected",
        "calendar removed" if removed else "calendar kept",
    )
    connection.updated_at = utcnow()
    db.session.commit()
    return removed


class Summary(StrEnum):
    """What a connection's status page says first: its state and its last run together,
    so that a failed synchronisation never shows as a plain "Connected"."""

    RECONNECT = "reconnect"  # the stored sign-in stopped working: connect again
    DISCONNECTED = "disconnected"
    NOT_YET = "not_yet"  # connected, never synchronised
    UP_TO_DATE = "up_to_date"
    PARTLY = "partly"  # some events could not be written
    DELAYED = "delayed"  # Microsoft asked to wait; the run comes back later
    FAILED = "failed"


_SUMMARIES = {
    None: Summary.NOT_YET,
    "ok": Summary.UP_TO_DATE,
    "unchanged": Summary.UP_TO_DATE,
    "partial": Summary.PARTLY,
    "throttled": Summary.DELAYED,
}


# States in which the portal no longer updates the calendar: ended, or a mailbox Microsoft
# no longer lets it reach (not retried).
ENDED = (
    ConnectionStatus.DISCONNECTED,
    ConnectionStatus.MAILBOX_NOT_FOUND,
    ConnectionStatus.OUTSIDE_GROUP,
)


def summary(connection: Connection) -> Summary:
    """The connection's state in one word for its user; an outcome not known here counts
    as failed."""
    if connection.status == ConnectionStatus.NEEDS_RECONNECT:
        return Summary.RECONNECT
    if connection.status in ENDED:
        return Summary.DISCONNECTED
    return _SUMMARIES.get(connection.last_sync_outcome, Summary.FAILED)
