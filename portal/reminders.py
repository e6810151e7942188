"""The e-mail that asks an end user to connect again, when their institution wants it.

Sent once, when a connection's stored sign-in stops working (a password reset, consent
taken back): through the outbox of ``notifications``, to the connection's address, in the
language the user's connect pages were in. Off unless the institution turned it on.
"""

import logging
import unicodedata

from flask import current_app, has_request_context
from flask_babel import force_locale
from flask_babel import gettext as _

from . import notifications
from .models import Connection
from .urls import external
from .validators import ADDRESS

log = logging.getLogger(__name__)


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with every control character, line break and bidirectional override made
    a space, and runs of spaces made one: a value that may go into an e-mail header or a
    line of its text. Cut to ``limit`` characters."""
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text or ""
    )
    return " ".join(cleaned.split())[:limit]


def connect_address(slug: str) -> str:
    """The institution's connect page, as a link in an e-mail (also outside a request:
    a sync worker's)."""
    if has_request_context():
        return external("connect.start", slug=slug)
    adapter = current_app.url_map.bind("localhost")
    return current_app.config["EXTERNAL_URL"] + adapter.build("connect.start", {"slug": slug})


def ask_to_reconnect(connection: Connection) -> None:
    """Queue the e-mail asking the connection's user to connect again, if their
    institution asked for it and their address can take mail."""
    institution = connection.configuration.institution
    if not institution.reconnect_email:
        return
    if not ADDRESS.match(connection.upn or ""):
        log.info("Connection %s has no e-mail address to ask to reconnect.", connection.id)
        return
    name = one_line(institution.name)
    person = one_line(connection.display_name) or connection.upn
    with force_locale(connection.language or "en"):
        subject = _(
            "Connect again to keep your timetable in Outlook (%(institution)s)",
            institution=name,
        )
        body = _(
            "Hello %(person)s,\n\n"
            "MyTimetable can no longer update the MyTimetable calendar in your Outlook: your "
            "Microsoft sign-in stopped working (for example after a password change). Nothing "
            "was deleted.\n\n"
            "Connect again here, signing in as %(address)s:\n%(link)s\n\n"
            "You get this e-mail because %(institution)s asked MyTimetable to tell you.",
            person=person,
            address=connection.upn,
            link=connect_address(institution.slug),
            institution=name,
        )
    notifications.queue(institution, one_line(subject, 300), body, recipient=connection.upn)
