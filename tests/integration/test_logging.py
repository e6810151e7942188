"""The portal's log: JSON lines in production, readable lines in development, a request ID
on every line of a request, in its answer and on its error page; what sign-ins,
verifications and synchronisations did; and never a secret, through a whole flow."""

import email
import io
import json
import logging
import re
import time

import pyotp
import pytest

from portal import invitations, staff
from portal.extensions import db
from portal.logs import PortalHandler
from portal.models import Connection, Notification
from portal.sync import engine
from tests.conftest import CSRF, Wizard, sign_in_staff, totp_code
from tests.integration.test_connect import ADELE, EndUser
from tests.integration.test_sync import ics, lessons

STAFF_EMAIL, STAFF_PASSWORD = "support@mytimetable.example", "ochre-lantern-quietly-87-harbour"


@pytest.fixture
def captured(monkeypatch):
    """What the portal's handler writes, as a function returning the text so far.

    Every logger is enabled first: the tests' migration (Alembic's logging configuration)
    disabled those that existed then, which would hide their lines from the test."""

    def capture():
        stream = io.StringIO()
        for logger in logging.root.manager.loggerDict.values():
            if isinstance(logger, logging.Logger):
                monkeypatch.setattr(logger, "disabled", False)
        handlers = [h for h in logging.getLogger().handlers if isinstance(h, PortalHandler)]
        assert len(handlers) == 1, handlers
        handlers[0].setStream(stream)
        monkeypatch.setattr(handlers[0], "stream", stream)  # restored after the test
        return stream.getvalue

    return capture


def _log_on_request(app):
    @app.get("/test/log")
    def log_something():
        app.logger.info("Something happened.")
        return "ok"


def test_production_writes_json_lines_with_the_request_id(make_app, captured):
    app = make_app(LOG_FORMAT="json")
    _log_on_request(app)
    text = captured()
    response = app.test_client().get("/test/log")
    lines = [json.loads(line) for line in text().splitlines()]
    line = next(line for line in lines if line["message"] == "Something happened.")
    assert line["level"] == "INFO" and line["logger"] == "portal" and line["time"]
    assert line["request_id"] == response.headers["X-Request-ID"]


def test_development_writes_readable_lines_with_the_request_id(make_app, captured):
    app = make_app(PORTAL_ENV="development", LOG_FORMAT="text")
    _log_on_request(app)
    text = captured()
    response = app.test_client().get("/test/log")
    request_id = response.headers["X-Request-ID"]
    assert re.search(rf"INFO +\[{request_id}\] portal: Something happened\.$", text(), re.M)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("0f8c2b0e-6f4e-4c5e-9a57-2d1a0c8f6b11", True),
        ("a3c9e1f0b2d84e6f9a1b2c3d4e5f6a7b", True),
        ("short", False),
        ("x" * 200, False),
        ("<script>alert(1)</script>", False),
        ("abc def ghi jkl", False),
    ],
)
def test_a_well_formed_incoming_request_id_is_kept_anything_else_replaced(app, given, kept):
    answered = app.test_client().get("/", headers={"X-Request-ID": given}).headers["X-Request-ID"]
    assert (answered == given) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", answered)


def test_each_request_has_its_own_id(client):
    assert client.get("/").headers["X-Request-ID"] != client.get("/").headers["X-Request-ID"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/no-such-page"), ("PUT", "/")])
def test_error_pages_show_the_reference_to_quote(client, method, path):
    response = client.open(path, method=method)
    assert response.status_code in (404, 405)
    assert f"Reference: {response.headers['X-Request-ID']}" in response.text


def test_an_unexpected_error_is_logged_with_the_reference_its_page_shows(make_app, captured):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/test/broken")
    def broken():
        raise RuntimeError("a bug")

    text = captured()
    response = app.test_client().get("/test/broken")
    request_id = response.headers["X-Request-ID"]
    assert response.status_code == 500 and f"Reference: {request_id}" in response.text
    line = json.loads(next(line for line in text().splitlines() if "a bug" in line))
    assert line["level"] == "ERROR" and line["request_id"] == request_id


def test_the_expired_form_page_shows_the_reference(client):
    response = client.post("/support/sign-in", data={"email": "a@b.c", "password": "x"})
    assert response.status_code == 400
    assert f"Reference: {response.headers['X-Request-ID']}" in response.text


def test_staff_sign_ins_are_logged_failures_as_warnings(app, captured):
    with app.app_context():
        staff.create_staff(STAFF_EMAIL, STAFF_PASSWORD)
        db.session.commit()
    text = captured()
    refused = sign_in_staff(app.test_client(), STAFF_EMAIL, "wrong-" + STAFF_PASSWORD)
    assert refused.status_code == 401
    assert sign_in_staff(app.test_client(), STAFF_EMAIL, STAFF_PASSWORD).status_code == 302
    log = text()
    assert re.search(r"WARNING.*Staff sign-in refused", log)
    assert re.search(rf"INFO.*Staff member {re.escape(STAFF_EMAIL)} signed in", log)


def test_a_whole_flow_logs_no_secret(make_app, standins, configure, feed_server, inbox, captured):
    """The wizard to a verification against the stand-ins, a staff sign-in, an end user's
    connection and a synchronisation, logged at DEBUG: no token, key, password, TOTP secret
    or code, invitation token or e-mail body is in the log."""
    app = make_app(
        **standins.settings(),
        SMTP_URL=inbox.url,
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="text",
    )
    configure(
        app,
        method="delegated",
        consented=True,
        name="Contoso University",
        tenant_guid=standins.TENANT_GUID,
        feed_url_template=f"{feed_server.url}/ical?user={{upn}}",
    )
    feed_server.calendars[ADELE] = ics(*lessons(6))
    assertions, issued = [], []

    @standins.identity.app.before_request
    def record_assertion():
        from flask import request

        if request.form.get("client_assertion"):
            assertions.append(request.form["client_assertion"])

    sign = standins.directory.sign

    def recording_sign(claims, **options):
        issued.append(sign(claims, **options))
        return issued[-1]

    standins.directory.sign = recording_sign
    text = captured()

    # The administrator: an invitation, the wizard, the checks, the submission (an e-mail).
    with app.app_context():
        institution = invitations.create_institution(
            "Example University", "managed", "it@example.edu", "test"
        )
        link = invitations.issue_invitation(institution, "test")
        db.session.commit()
    wizard = Wizard(app.test_client())
    wizard.open(link)
    wizard.to_tenant("application")
    wizard.enter_tenant(standins.TENANT, standins.CLIENT)
    assert wizard.post("/setup/verify", {"test_mailbox": ADELE}).status_code == 302
    assert wizard.post("/setup/submit").location.endswith("/setup/review")
    with app.app_context():
        bodies = [n.body for n in db.session.query(Notification)]

    # Support: a wrong password, an enrolment, a sign-in with a code.
    with app.app_context():
        staff.create_staff(STAFF_EMAIL, STAFF_PASSWORD)
        db.session.commit()
    wrong_password = "not-the-" + STAFF_PASSWORD
    sign_in_staff(app.test_client(), STAFF_EMAIL, wrong_password)
    enrolled_at = time.time()
    enrolling = app.test_client()
    assert sign_in_staff(enrolling, STAFF_EMAIL, STAFF_PASSWORD).status_code == 302
    with app.app_context():
        secret = staff.totp_secret(staff.find(STAFF_EMAIL))
    code = totp_code(app, STAFF_EMAIL)
    again = app.test_client()
    token = CSRF.search(again.get("/support/sign-in").text).group(1)
    step = again.post(
        "/support/sign-in",
        data={"csrf_token": token, "email": STAFF_EMAIL, "password": STAFF_PASSWORD},
    )
    token = CSRF.search(again.get(step.location).text).group(1)
    assert again.post(step.location, data={"csrf_token": token, "code": code}).status_code == 302

    # An end user connects; their timetable is synchronised.
    assert EndUser(app, standins).connect(ADELE).status_code == 302
    with app.app_context():
        connection = db.session.query(Connection).filter_by(upn=ADELE).one()
        assert engine.run(connection, sleep=lambda seconds: None).outcome == "ok"

    log = text()
    deadline = time.monotonic() + 10  # the e-mail is sent by a thread after the commit
    while not inbox.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    bodies += [
        email.message_from_bytes(envelope.content).get_payload(decode=True).decode()
        for envelope in inbox.messages
    ]
    secrets = {
        "invitation token": link.rsplit("/", 1)[1],
        "staff password": STAFF_PASSWORD,
        "mistyped password": wrong_password,
        "TOTP secret": secret,
        "encryption key": app.config["ENCRYPTION_KEYS"],
        "session signing key": app.config["SECRET_KEY"],
    }
    secrets |= {f"client assertion {n}": value for n, value in enumerate(assertions)}
    secrets |= {f"token {n}": value for n, value in enumerate(issued)}
    secrets |= {f"token signature {n}": value.split(".")[-1] for n, value in enumerate(issued)}
    secrets |= {f"refresh token {n}": v for n, v in enumerate(standins.directory._refresh_tokens)}
    secrets |= {
        f"e-mail line {n}": line.strip()
        for n, body in enumerate(bodies)
        for line in body.splitlines()
        if len(line.strip()) > 30
    }
    assert assertions and issued and standins.directory._refresh_tokens and bodies
    leaked = [name for name, value in secrets.items() if value in log]
    enrolment_codes = [
        pyotp.TOTP(secret).at(enrolled_at, counter_offset=offset) for offset in (-1, 0, 1)
    ]
    codes = [code, *enrolment_codes, *enrolling.recovery_codes]
    leaked += [f"code {value}" for value in codes if re.search(rf"(?<![\w-]){value}(?![\w-])", log)]
    assert not leaked, leaked
    # and what happened is there, at INFO
    for done in ("Staff member", "Verification of", "End user signed in", "Sync of connection"):
        assert re.search(rf"INFO .*{done}", log), done
    assert re.search(r"WARNING .*Staff sign-in refused", log)
