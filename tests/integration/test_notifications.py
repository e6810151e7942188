"""E-mail to administrators: through SMTP when configured; never blocking the action."""

import socket
import time

from portal import invitations, review
from portal.extensions import db
from portal.models import Configuration, Notification, Status, utcnow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def submit(app) -> int:
    with app.app_context():
        institution = invitations.create_institution("Example", "managed", "it@example.edu", "t")
        config = institution.configuration
        config.method, config.verified_at = "application", utcnow()
        db.session.commit()
        review.submitted(config, "administrator")
        return config.id


def wait_for(app, check, seconds=5):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with app.app_context():
            notification = db.session.query(Notification).one()
            if check(notification):
                return notification
        time.sleep(0.05)
    raise AssertionError("the message was not handled in time")


def test_message_goes_out_through_smtp(make_app, inbox):
    app = make_app(SMTP_URL=inbox.url)
    submit(app)
    notification = wait_for(app, lambda n: n.sent_at is not None)
    assert notification.error is None
    assert inbox.messages[0].rcpt_tos == ["it@example.edu"]
    assert b"submitted" in inbox.messages[0].content


def test_unreachable_smtp_server_does_not_break_the_action(make_app):
    app = make_app(SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    config_id = submit(app)
    notification = wait_for(app, lambda n: n.error is not None)
    assert "ConnectionRefusedError" in notification.error and notification.sent_at is None
    with app.app_context():
        assert db.session.get(Configuration, config_id).status == "submitted"


def test_every_queued_message_is_sent_once_committed_rotation_included(make_app, inbox):
    from portal import certificates, rotation

    app = make_app(SMTP_URL=inbox.url)
    with app.app_context():
        institution = invitations.create_institution("Example", "managed", "it@example.edu", "t")
        institution.configuration.certificate = certificates.create_vendor_certificate(365, "t")
        institution.configuration.status = Status.SUBMITTED  # a rotation asks only these
        db.session.commit()
        rotation.start("support")
    notification = wait_for(app, lambda n: n.sent_at is not None)
    assert "new certificate" in notification.subject
    assert inbox.messages[0].rcpt_tos == ["it@example.edu"]


def test_a_rolled_back_message_is_not_sent(make_app, inbox):
    from portal import notifications

    app = make_app(SMTP_URL=inbox.url)
    with app.app_context():
        institution = invitations.create_institution("Example", "managed", "it@example.edu", "t")
        db.session.commit()
        notifications.queue(institution, "Never", "sent")
        db.session.rollback()
        db.session.commit()
    time.sleep(0.3)
    assert inbox.messages == []
