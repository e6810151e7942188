"""E-mails to administrators (and end users): kept in an outbox, and sent through SMTP
when configured.

The action that causes a message never waits for, or fails with, its delivery: the
message is stored with the action's transaction and, once that transaction has committed,
sent from a background thread; the outbox shows what was sent, what failed and why.
"""

import smtplib
import ssl
import threading
from contextlib import contextmanager
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.orm import Session

from .extensions import db
from .models import Institution, Notification, utcnow


@contextmanager
def in_language(institution: Institution):
    """Text made inside is in the language of the institution's administrator."""
    with force_locale(institution.language or "en"):
        yield


# Where a message's text takes its link: the object replacement character, which no text has.
LINK = "\N{OBJECT REPLACEMENT CHARACTER}"


def queue(
    institution: Institution,
    subject: str,
    body: str,
    link: str | None = None,
    recipient: str | None = None,
) -> Notification:
    """Add a message for the institution's administrator (or ``recipient``) to the current
    transaction.

    ``link`` (an invitation link, which is a key to the institution's configuration)
    takes the place of ``LINK`` in the e-mail sent, and only there: the body kept in the
    outbox says it was left out, so that neither the database nor the outbox holds a key.
    Without SMTP nothing is sent, and support makes a new link to forward with the text.
    """
    kept = body.replace(
        LINK, _("[The invitation link is not kept here: support can make a new one.]")
    )
    notification = Notification(
        institution=institution,
        recipient=recipient or institution.contact_email,
        subject=subject,
        body=kept,
    )
    db.session.add(notification)
    if current_app.config.get("SMTP_URL"):
        db.session.flush()
        sent = body.replace(LINK, link) if link else kept
        db.session.info.setdefault("notifications_to_send", []).append((notification.id, sent))
    return notification


# The name of the threads that send messages (for a thread dump, and for tests to wait on).
DELIVERY_THREAD = "notification-delivery"


@event.listens_for(Session, "after_commit")
def _send_committed(session):
    """Send what the committed transaction queued; before the commit it might not exist.
    The text sent travels in memory only, from the action to the thread that sends it."""
    queued = session.info.pop("notifications_to_send", None)
    if queued:
        app = current_app._get_current_object()
        for notification_id, body in queued:
            threading.Thread(
                target=_deliver,
                args=(app, notification_id, body),
                name=DELIVERY_THREAD,
                daemon=True,
            ).start()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session):
    session.info.pop("notifications_to_send", None)


def _deliver(app, notification_id: int, body: str) -> None:
    with app.app_context():
        notification = db.session.get(Notification, notification_id)
        try:
            send(app.config["SMTP_URL"], app.config["MAIL_FROM"], notification, body)
        except (OSError, smtplib.SMTPException) as error:
            notification.error = f"{type(error).__name__}: {error}"[:2000]
        else:
            notification.sent_at, notification.error = utcnow(), None
        db.session.commit()


def send(url: str, sender: str, notification: Notification, body: str | None = None) -> None:
    """Send one message to ``smtp://`` or ``smtps://user:password@host:port``; ``body``,
    when given, is the text with the link the kept one leaves out (see ``queue``)."""
    parts = urlsplit(url)
    message = EmailMessage()
    message["From"], message["To"] = sender, notification.recipient
    message["Subject"] = notification.subject
    message.set_content(body or notification.body)
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    context = ssl.create_default_context()
    connect = smtplib.SMTP_SSL if secure else smtplib.SMTP
    options = {"context": context} if secure else {}
    with connect(parts.hostname, port, timeout=10, **options) as smtp:
        if not secure and parts.query == "starttls":
            smtp.starttls(context=context)
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(message)
