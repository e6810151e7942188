"""Application permissions: mailboxes are added to the synchronisation without user action.

Each mailbox gets its MyTimetable calendar through the app-only token and a Connection
with no stored user token (the client credentials flow serves every mailbox). A mailbox
Microsoft refuses (outside the access policy, no mailbox, unknown user) is reported with
the reason; the others go ahead.
"""

import re
from dataclasses import dataclass, field

from sqlalchemy import func, select

from .connections import CALENDAR_NAME
from .extensions import db
from .microsoft import graph, identity
from .microsoft.clouds import cloud
from .microsoft.errors import MicrosoftError, advice_for
from .models import Configuration, Connection, ConnectionStatus, record
from .sync import jobs
from .validators import ADDRESS

MAX_MAILBOXES = 5000


@dataclass
class Outcome:
    """What became of a provisioning request."""

    added: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # upn, code, why


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
        existing = db.session.scalar(
            select(Connection).where(
                Connection.configuration_id == configuration.id,
                func.lower(Connection.upn) == upn.lower(),
            )
        )
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
            continue
        connection = existing or Connection(configuration=configuration, upn=upn)
        db.session.add(connection)
        connection.calendar_id, connection.calendar_name = calendar.id, calendar.name
        connection.status, connection.last_error = ConnectionStatus.CONNECTED, None
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


def group_upns(configuration: Configuration) -> list[str]:
    """The user principal names of the configuration's security group's members."""
    where = cloud(configuration.cloud)
    token = identity.client_credentials_token(identity.registration(configuration)).access_token
    return [m.upn for m in graph.group_members(where, token, configuration.group)]


def mailboxes(configuration: Configuration) -> list[Connection]:
    """The configuration's connections, by address."""
    return list(
        db.session.scalars(
            select(Connection)
            .where(Connection.configuration_id == configuration.id)
            .order_by(Connection.upn)
        )
    )
