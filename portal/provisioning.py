"""Application permissions: mailboxes are added to the synchronisation without user action.

Each mailbox gets its MyTimetable calendar through the app-only token and a Connection
with no stored user token (the client credentials flow serves every mailbox). A mailbox
Microsoft refuses (outside the access policy, no mailbox, unknown user) is reported with
the reason; the others go ahead.
"""

import re
from dataclasses import dataclass, field
from enum import StrEnum

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import delete, func, select

from . import review
from .connections import CALENDAR_NAME
from .extensions import db
from .microsoft import graph, identity
from .microsoft.clouds import cloud
from .microsoft.errors import MicrosoftError, advice_for
from .models import (
    Configuration,
    Connection,
    ConnectionStatus,
    SyncItem,
    SyncRefusal,
    record,
    utcnow,
)
from .paging import Page, paginate
from .refusals import Refusal, out_of_reach, refusal
from .sync import jobs
from .validators import ADDRESS

MAX_MAILBOXES = 5000


@dataclass
class Outcome:
    """What became of a provisioning request."""

    added: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # upn, code, why
    reasons: dict[str, Refusal] = field(default_factory=dict)  # upn -> reason, for the API


def parse_list(text: str) -> tuple[list[str], list[str]]:
    """Addresses in pasted or uploaded text (one per line, or separated by , ; or spaces);
    returns (addresses, what was not an address)."""
    addresses, rejected, seen = [], [], set()
    for item in re.split(r"[\s,;]+", text or ""):
        item = item.strip().strip('"').strip("'")
        if not item:
            continue
        if not ADDRESS.match(item):
            rejected.append(item[:100])
        elif item.lower() not in seen:
            seen.add(item.lower())
            addresses.append(item)
    return addresses, rejected


def provision(configuration: Configuration, upns: list[str], actor: str) -> Outcome:
    """Add these mailboxes to the synchronisation."""
    where = cloud(configuration.cloud)
    token = identity.client_credentials_token(identity.registration(configuration)).access_token
    outcome = Outcome()
    for upn in upns[:MAX_MAILBOXES]:
        existing = find(configuration, upn)
        if existing is not None and existing.status == ConnectionStatus.CONNECTED:
            outcome.already.append(upn)
            continue
        try:
            calendar, _ = graph.ensure_calendar(where, token, CALENDAR_NAME, mailbox=upn)
        except MicrosoftError as error:
            if error.code == "unreachable":
                raise
            limited = error.code == "ErrorAccessDenied" and configuration.group
            why = advice_for("ErrorAccessDenied/policy" if limited else error.code).cause
            outcome.refused.append((upn, error.display_code or error.code, why))
            outcome.reasons[upn] = refusal(configuration, error.code)
            state = out_of_reach(configuration, error.code)
            if existing is not None and state is not None:
                # Still out of reach, perhaps for another reason now.
                existing.status = state
                existing.last_error = f"{error.display_code or error.code}: {why}"
                existing.last_error_code = error.code
            continue
        connection = existing or Connection(configuration=configuration, upn=upn)
        db.session.add(connection)
        connection.calendar_id, connection.calendar_name = calendar.id, calendar.name
        connection.status, connection.last_error = ConnectionStatus.CONNECTED, None
        connection.last_error_code = connection.last_error_ids = None
        db.session.flush()
        jobs.enqueue(connection, "first sync")
        outcome.added.append(upn)
    record(
        configuration.institution,
        actor,
        "mailboxes_provisioned",
        f"{len(outcome.added)} added, {len(outcome.already)} already, "
        f"{len(outcome.refused)} refused",
    )
    db.session.commit()
    return outcome


def find(configuration: Configuration, upn: str) -> Connection | None:
    """The configuration's connection for this address (in any state), if there is one."""
    return db.session.scalar(
        select(Connection)
        .where(
            Connection.configuration_id == configuration.id,
            func.lower(Connection.upn) == upn.lower(),
        )
        .order_by(Connection.id)
        .limit(1)
    )


class Removed(StrEnum):
    """What ending a mailbox's synchronisation took out of the mailbox."""

    EVENTS = "events"  # the events the portal wrote; the calendar and the rest stay
    CALENDAR = "calendar"  # the portal's calendar, with everything in it
    NOTHING = "nothing"  # nothing could be removed (Microsoft refused, or already ended)


@dataclass
class Removal:
    """What became of a request to end a mailbox's synchronisation."""

    removed: Removed
    events_removed: int = 0
    code: str | None = None  # Microsoft's code when it refused the removal


# Removing is done in one request: it waits briefly for Graph, never minutes.
REMOVAL_POLICY = graph.RetryPolicy(attempts=4, longest_wait=10.0)


class _AppTokens:
    """The application's token for a removal (``graph.Tokens``), and its request count."""

    def __init__(self, configuration: Configuration):
        self.registration = identity.registration(configuration)
        self.requests = 0
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            self._token = identity.app_token(self.registration)
        return self._token

    def refused(self, token: str) -> None:
        self._token = identity.app_token(self.registration, fresh=True)


def _remove_portal_events(where, tokens: _AppTokens, connection: Connection) -> int:
    """Delete the events of the connection's calendar that carry the portal's mark; the
    events someone else put there stay. Returns how many went."""
    found, _ = graph.retried(
        lambda token: graph.marked_events(where, token, connection.upn, connection.calendar_id),
        tokens,
        tokens,
        REMOVAL_POLICY,
    )
    gone: list[str] = []
    refused: list[MicrosoftError] = []

    def settle(event_id: str, answer: graph.BatchAnswer) -> bool:
        if answer.status in (204, 404):  # 404: removed already
            gone.append(event_id)
            return True
        if answer.status in graph.RETRYABLE or answer.status in (401, graph.FAILED_DEPENDENCY):
            return False
        error = answer.body.get("error") or {}
        code = error.get("code") or f"HTTP{answer.status}"
        refused.append(MicrosoftError(code, error.get("message") or "", answer.status))
        return True

    unsettled = graph.send_batches(
        where,
        tokens,
        [event_id for event_id, _ in found],
        lambda event_id: graph.delete_event(connection.upn, event_id),
        settle,
        tally=tokens,
        policy=REMOVAL_POLICY,
    )
    if refused:
        raise refused[0]
    if unsettled:
        raise MicrosoftError(
            "TooManyRequests", f"{len(unsettled)} of the portal's events are still there.", 503
        )
    return len(gone)


def deprovision(
    configuration: Configuration, connection: Connection, remove_calendar: bool, actor: str
) -> Removal:
    """End a mailbox's synchronisation, taking out of it only what the portal wrote: its
    events (``remove_calendar`` False) or its calendar. When Microsoft refuses (the mailbox
    left the group, lost its mailbox or is gone), the synchronisation ends all the same
    and the refusal's code comes back; a Graph that cannot be reached raises, and the
    synchronisation goes on."""
    if connection.status == ConnectionStatus.DISCONNECTED:
        return Removal(Removed.NOTHING)
    where = cloud(configuration.cloud)
    removal = Removal(Removed.NOTHING)
    if connection.calendar_id:
        tokens = _AppTokens(configuration)
        try:
            if remove_calendar:
                graph.retried(
                    lambda token: graph.delete_calendar(
                        where, token, connection.calendar_id, mailbox=connection.upn
                    ),
                    tokens,
                    tokens,
                    REMOVAL_POLICY,
                )
                removal = Removal(Removed.CALENDAR)
            else:
                removal = Removal(Removed.EVENTS, _remove_portal_events(where, tokens, connection))
        except graph.Throttled:
            raise
        except MicrosoftError as error:
            if graph.transient(error):
                raise
            removal = Removal(Removed.NOTHING, code=error.display_code or error.code)
    if removal.removed != Removed.NOTHING:
        for table in (SyncItem, SyncRefusal):
            db.session.execute(delete(table).where(table.connection_id == connection.id))
    if removal.removed == Removed.CALENDAR:
        connection.calendar_id = connection.calendar_name = None
    connection.status = ConnectionStatus.DISCONNECTED
    connection.updated_at = utcnow()
    record(
        configuration.institution,
        actor,
        "mailbox_removed",
        f"{connection.upn}: {removal.removed}"
        + (f" ({removal.events_removed} events)" if removal.removed == Removed.EVENTS else "")
        + (f", Microsoft refused: {removal.code}" if removal.code else ""),
    )
    db.session.commit()
    return removal


def group_upns(configuration: Configuration) -> list[str]:
    """The user principal names of the configuration's security group's members."""
    where = cloud(configuration.cloud)
    token = identity.client_credentials_token(identity.registration(configuration)).access_token
    return [m.upn for m in graph.group_members(where, token, configuration.group)]


MAILBOXES_PER_PAGE = 50


def _matching(configuration: Configuration, search: str = ""):
    """The configuration's connections whose address contains ``search``, by address."""
    query = select(Connection).where(Connection.configuration_id == configuration.id)
    if search.strip():
        query = query.where(
            func.lower(Connection.upn).contains(search.strip().lower(), autoescape=True)
        )
    return query.order_by(func.lower(Connection.upn), Connection.id)


def mailboxes(configuration: Configuration, search: str = "") -> list[Connection]:
    """The configuration's connections (those whose address contains ``search``), by
    address."""
    return list(db.session.scalars(_matching(configuration, search)))


def mailbox_page(
    configuration: Configuration, search: str = "", page: int = 1, per_page=MAILBOXES_PER_PAGE
) -> Page:
    """A page of the configuration's connections whose address contains ``search``."""
    return paginate(_matching(configuration, search), page, per_page)


EXPORT_FIELDS = [
    "address",
    "state",
    "last_sync_at",
    "last_sync_outcome",
    "events",
    "last_problem",
    "microsoft_code",
]


def export_csv(configuration: Configuration, search: str = "") -> str:
    """The configuration's mailboxes as CSV (every cell quoted, formulas defused)."""
    rows = [
        {
            "address": c.upn,
            "state": c.status,
            "last_sync_at": c.last_sync_at.isoformat() if c.last_sync_at else "",
            "last_sync_outcome": c.last_sync_outcome or "",
            "events": str(c.event_count),
            "last_problem": c.last_error or "",
            "microsoft_code": c.last_error_code or "",
        }
        for c in mailboxes(configuration, search)
    ]
    return review.csv_text(EXPORT_FIELDS, rows)


def removable(configuration: Configuration, ids: list[int]) -> list[Connection]:
    """Those of ``ids`` that are the configuration's connections still synchronised or
    held out of reach (not ended already), by address."""
    if not ids:
        return []
    return list(
        db.session.scalars(
            _matching(configuration).where(
                Connection.id.in_(ids), Connection.status != ConnectionStatus.DISCONNECTED
            )
        )
    )


@dataclass
class Removals:
    """What became of a request to end several mailboxes' synchronisation."""

    removed: list[tuple[str, Removal]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # Graph did not answer: still synced

    def messages(self) -> list[tuple[str, str]]:
        """What to tell the person who removed them, as (message, category) pairs."""
        said = []
        if self.removed:
            said.append(
                (
                    ngettext(
                        "Removed %(num)d mailbox: its synchronisation has ended.",
                        "Removed %(num)d mailboxes: their synchronisation has ended.",
                        len(self.removed),
                    ),
                    "success",
                )
            )
        refused = [upn for upn, removal in self.removed if removal.code]
        if refused:
            said.append(
                (
                    _(
                        "Microsoft refused to let the portal clean up %(addresses)s (the "
                        "mailbox has gone or is outside the group): nothing was taken out of it.",
                        addresses=", ".join(refused),
                    ),
                    "warning",
                )
            )
        if self.failed:
            said.append(
                (
                    _(
                        "Microsoft did not answer in time for %(addresses)s: still "
                        "synchronised. Try again in a few minutes.",
                        addresses=", ".join(self.failed),
                    ),
                    "error",
                )
            )
        return said


def remove(
    configuration: Configuration, connections: list[Connection], remove_calendar: bool, actor
) -> Removals:
    """End these mailboxes' synchronisation (``deprovision``, each audited)."""
    outcome = Removals()
    for connection in connections:
        upn = connection.upn
        try:
            outcome.removed.append(
                (upn, deprovision(configuration, connection, remove_calendar, actor))
            )
        except MicrosoftError:
            db.session.rollback()
            outcome.failed.append(upn)
    return outcome
