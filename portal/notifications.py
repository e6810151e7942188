"""E-mails to administrators: kept in an outbox, and sent through SMTP when configured.

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
from sqlalchemy import event
from sqlalchemy.orm import Session

from .extensions import db
from .models import Institution, Notification, utcnow


@contextmanager
def in_language(institution: Institution):
    """Text made inside is in the language of the institution's administrator."""
    with force_locale(institution.language or "en"):
        yield


def queue(institution: Institution, subject: str, body: str) -> Notification:
    """Add a message for the institution's administrator to the current transaction."""
    notification = Notification(
        institution=institution, recipient=institution.contact_email, subject=subject, body=body
    )
    db.session.add(notification)
    if current_app.config.get("SMTP_URL"):
        db.session.flush()
        db.session.info.setdefault("notifications_to_send", []).append(notification.id)
    return notification


@event.listens_for(Session, "after_commit")
def _send_committed(session):
    """Send what the committed transaction queued; before the commit it might not exist."""
    ids = session.info.pop("notifications_to_send", None)
    if ids:
        app = current_app._get_current_object()
        for notification_id in ids:
            threading.Thread(target=_deliver, args=(app, notification_id), daemon=True).start()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session):
    session.info.pop("notifications_to_send", None)


def _deliver(app, notification_id: int) -> None:
    with app.app_context():
        notification = db.session.get(Notification, notification_id)
        try:
            send(app.config["SMTP_URL"], app.config["MAIL_FROM"], notification)
        except (OSError, smtplib.SMTPException) as error:
            notification.error = f"{type(error).__name__}: {error}"[:2000]
        else:
            notification.sent_at, notification.error = utcnow(), None
        db.session.commit()


def send(url: str, sender: str, notification: Notification) -> None:
    """Send one message to ``smtp://`` or ``smtps://user:password@host:port``."""
    parts = urlsplit(url)
    message = EmailMessage()
    message["From"], message["To"] = sender, notification.recipient
    message["Subject"] = notification.subject
    message.set_content(notification.body)
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
