"""The end user's pages say what happened in plain words, in the institution's time and
with its service desk, keep nothing of one person for the next at a shared computer, and
(when the institution wants it) e-mail a user who must connect again."""

import email
import email.policy
import re
import time
from datetime import datetime

import pytest

from portal import connections, invitations, reminders
from portal.extensions import db
from portal.models import (
    Configuration,
    Connection,
    ConnectionStatus,
    Institution,
    Notification,
    SyncJob,
    Verification,
)
from tests.conftest import CSRF, SCALE_OUT, sign_in_staff
from tests.hostile import INJECTIONS

SLUG = "contoso-university"
ADELE = "adele.vance@contoso.edu"
CONNECT_AGAIN = '<button type="submit" class="button primary">Connect again</button>'
SYNC_NOW = ">Sync now</button>"


@pytest.fixture
def portal(make_app):
    """An approved delegated configuration; nothing here talks to Microsoft."""
    app = make_app()
    with app.app_context():
        institution = invitations.create_institution(
            "Contoso University", "managed", "it@contoso.edu", "test"
        )
        configuration = institution.configuration
        configuration.method, configuration.status = "delegated", "approved"
        configuration.tenant_id, configuration.client_id = "contoso.edu", "5b2f8c39-7a1e"
        db.session.commit()
    return app


def connection(app, **fields) -> int:
    """Adele's connection with these fields; returns its ID."""
    with app.app_context():
        configuration = db.session.query(Configuration).one()
        row = Connection(
            configuration=configuration,
            user_object_id="00000000-0000-0000-0000-00000000ade1",
            upn=ADELE,
            display_name="Adele Vance",
            calendar_id="cal",
            calendar_name="MyTimetable",
            **fields,
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def browser(app, connection_id: int, language: str = "en"):
    """A browser whose session names the connection (as after signing in)."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    with client.session_transaction() as session:
        session["connection_id"] = connection_id
    return client


def institution_settings(app, **fields) -> None:
    with app.app_context():
        institution = db.session.query(Institution).one()
        for name, value in fields.items():
            setattr(institution, name, value)
        db.session.commit()


# The headline for each connection status and last outcome: its words, and its notice.
CONNECTED_WORDS = {
    None: ("The first synchronisation has not run yet", "notice-info"),
    "ok": ("Connected and up to date.", "notice-success"),
    "unchanged": ("Connected and up to date.", "notice-success"),
    "partial": ("Connected, but some events are missing.", "notice-warning"),
    "failed": ("Connected, but the last synchronisation failed.", "notice-error"),
    "throttled": ("Connected, but delayed.", "notice-warning"),
    "something new": ("Connected, but the last synchronisation failed.", "notice-error"),
}


@pytest.mark.parametrize("outcome", list(CONNECTED_WORDS))
@pytest.mark.parametrize("status", list(ConnectionStatus))
def test_the_status_words_match_the_connection_and_its_last_run(portal, status, outcome):
    last = {"last_sync_at": datetime(2026, 7, 1, 10), "last_sync_outcome": outcome}
    page = browser(portal, connection(portal, status=status, **last)).get(f"/connect/{SLUG}/status")
    assert page.status_code == 200
    text = page.text
    if status == ConnectionStatus.NEEDS_RECONNECT:
        words, notice = "Not updating: connect again.", "notice-error"
    elif status in connections.ENDED:  # ended, or a mailbox Microsoft no longer lets in
        words, notice = "Disconnected.", "notice-info"
    else:
        words, notice = CONNECTED_WORDS[outcome]
    assert words in text and f'class="notice {notice}"' in text
    # A green notice only for a connection that works and whose last run did all it had to.
    green = status == ConnectionStatus.CONNECTED and outcome in ("ok", "unchanged")
    assert ("notice-success" in text) == green
    # Connect again is the main button exactly when the sign-in must be given again.
    reconnect = status != ConnectionStatus.CONNECTED
    assert (CONNECT_AGAIN in text) == reconnect
    assert (SYNC_NOW in text) == (not reconnect)


def test_connect_again_goes_straight_to_microsoft_with_the_address(portal):
    client = browser(portal, connection(portal, status=ConnectionStatus.NEEDS_RECONNECT))
    page = client.get(f"/connect/{SLUG}/status").text
    form = page[page.index(f'action="/connect/{SLUG}/sign-in"') :].split("</form>")[0]
    assert f'name="login_hint" value="{ADELE}"' in form and "Connect again" in form


def test_a_failed_run_names_who_refused_and_gives_the_desk_its_ids(portal):
    ids = [["request-id", "7d0f0e4a-1111-4c2d-9d3e-000000000001"], ["date", "2026-07-01T10:00:00"]]
    graph_failure = connection(
        portal,
        last_sync_at=datetime(2026, 7, 1, 10),
        last_sync_outcome="failed",
        last_error="ErrorAccessDenied: Microsoft Graph refused access to the mailbox",
        last_error_code="ErrorAccessDenied",
        last_error_ids=ids,
    )
    page = browser(portal, graph_failure).get(f"/connect/{SLUG}/status").text
    assert "Microsoft did not accept the update of your calendar." in page
    details = page[page.index("<details") : page.index("</details>")]
    assert "Details for the IT service desk" in details
    assert "<code>ErrorAccessDenied</code>" in details
    for name, value in ids:
        assert f"<dt>{name}</dt><dd><code>{value}</code></dd>" in details
    assert "01 Jul 2026 10:00:00" in details  # the time in UTC, as Microsoft's logs have it


def test_a_feed_failure_says_the_timetable_could_not_be_read(portal):
    feed_failure = connection(
        portal,
        last_sync_at=datetime(2026, 7, 1, 10),
        last_sync_outcome="failed",
        last_error="The timetable feed answered HTTP 500.",
    )
    page = browser(portal, feed_failure).get(f"/connect/{SLUG}/status").text
    assert "MyTimetable could not read your timetable." in page
    assert "HTTP 500" in page[page.index("<details") : page.index("</details>")]


def test_no_details_part_without_a_problem(portal):
    fine = connection(portal, last_sync_at=datetime(2026, 7, 1, 10), last_sync_outcome="ok")
    assert "<details" not in browser(portal, fine).get(f"/connect/{SLUG}/status").text


@pytest.mark.parametrize(
    ("zone", "language", "shown"),
    [
        ("Europe/Amsterdam", "en", "01 Jul 2026 12:00 (Amsterdam time)"),
        ("Europe/Amsterdam", "nl", "01 jul 2026 12:00 (tijd in Amsterdam)"),
        ("America/New_York", "nl", "01 jul 2026 06:00 (tijd in New York)"),
        (None, "nl-NL,nl;q=0.9", "01 jul 2026 12:00 (tijd in Amsterdam)"),
        (None, "nl-BE", "01 jul 2026 12:00 (tijd in Brussel)"),
        (None, "en-GB", "01 Jul 2026 11:00 (London time)"),
        (None, "en-US,en;q=0.8", "01 Jul 2026 10:00 (UTC time)"),
        (None, "", "01 Jul 2026 10:00 (UTC time)"),
        ("Not/A_Zone", "nl", "01 jul 2026 12:00 (tijd in Amsterdam)"),  # set before checks
    ],
)
def test_times_are_in_the_institutions_time_zone(portal, zone, language, shown):
    institution_settings(portal, time_zone=zone)
    synced = connection(
        portal, last_sync_at=datetime(2026, 7, 1, 10), last_sync_outcome="unchanged"
    )
    client = browser(portal, synced, language)
    with portal.app_context():
        db.session.add(SyncJob(connection_id=synced, reason="sync now"))
        db.session.commit()
    page = client.get(f"/connect/{SLUG}/status").text
    assert shown in page
    # No time shown in UTC beside the zone's (a CSRF token may spell "UTC" by chance).
    words = re.sub(r'value="[^"]*"', "", page).replace("(UTC time)", "").replace("Tijd (UTC)", "")
    assert not re.search(r"\bUTC\b", words)


@pytest.mark.parametrize(
    ("value", "href"),
    [
        ("https://help.contoso.edu/timetable?lang=en&x=1", "https://help.contoso.edu/timetable?lang=en&amp;x=1"),
        ("servicedesk@contoso.edu", "mailto:servicedesk@contoso.edu"),
        ("javascript:alert(1)", None),  # never a link, even if it reached the database
        ('https://x.example/" onmouseover="alert(1)', None),
        (None, None),
    ],
)  # fmt: skip
def test_the_footer_points_to_the_institutions_service_desk(portal, value, href):
    institution_settings(portal, service_desk=value)
    for path in (f"/connect/{SLUG}", f"/connect/{SLUG}/status"):
        page = browser(portal, connection(portal) if "status" in path else 0).get(path).text
        footer = page[page.index('<footer class="site-footer">') :]
        if href:
            assert (
                f'<a href="{href}">Contact the IT service desk of Contoso University</a>' in footer
            )
        else:
            assert "<a " not in footer and "Ask your institution's IT service desk." in footer
        with portal.app_context():
            db.session.query(Connection).delete()
            db.session.commit()


def test_no_previous_address_on_a_shared_computer(portal):
    client = browser(portal, connection(portal, last_sync_outcome="ok"))
    start = client.get(f"/connect/{SLUG}")
    assert ADELE not in start.text and "Adele" not in start.text
    assert "Someone connected their calendar in this browser before" in start.text
    for page in (start, client.get(f"/connect/{SLUG}/status")):
        assert page.headers["Cache-Control"] == "no-store"
    # "Not you?": this browser forgets the connection, under a new session ID.
    before = client.get_cookie("portal_session").value
    token = CSRF.search(start.text).group(1)
    out = client.post(f"/connect/{SLUG}/sign-out", data={"csrf_token": token})
    assert out.status_code == 302 and out.location.endswith(f"/connect/{SLUG}")
    assert client.get_cookie("portal_session").value != before
    after = client.get(f"/connect/{SLUG}").text
    assert "Someone connected" not in after and ADELE not in after
    assert "no longer shows your synchronisation" in after
    assert client.get(f"/connect/{SLUG}/status").status_code == 302
    with portal.app_context():  # the synchronisation itself carries on
        assert db.session.query(Connection).one().status == ConnectionStatus.CONNECTED


def test_a_link_for_someone_else_forgets_the_previous_person(portal):
    client = browser(portal, connection(portal))
    page = client.get(f"/connect/{SLUG}?login_hint=megan.bowen@contoso.edu").text
    assert "Someone connected" not in page and ADELE not in page
    assert client.get(f"/connect/{SLUG}/status").status_code == 302
    # ... while a link for the same person keeps it (case does not matter in addresses)
    client = browser(portal, connection_id(portal))
    assert (
        "Someone connected"
        in client.get(f"/connect/{SLUG}?login_hint=Adele.Vance@contoso.edu").text
    )
    assert client.get(f"/connect/{SLUG}/status").status_code == 200


def connection_id(app) -> int:
    with app.app_context():
        return db.session.query(Connection).one().id


def test_after_disconnecting_nothing_of_the_person_stays(portal):
    client = browser(portal, connection(portal))
    with client.session_transaction() as session:
        session["sign_in"] = {"purpose": "connect", "flow": {"login_hint": ADELE}}
    token = CSRF.search(client.get(f"/connect/{SLUG}/status").text).group(1)
    gone = client.post(f"/connect/{SLUG}/disconnect", data={"csrf_token": token})
    assert "Disconnected" in gone.text and gone.headers["Cache-Control"] == "no-store"
    with client.session_transaction() as session:
        assert "connection_id" not in session and "sign_in" not in session
    start = client.get(f"/connect/{SLUG}").text
    assert ADELE not in start and "Someone connected" not in start


def sign_in_stops_working(app, connection_id: int) -> Connection:
    """Microsoft refuses Adele's stored sign-in, as ``tokens.user_token`` finds it."""
    from portal import tokens
    from portal.microsoft import identity
    from portal.microsoft.errors import MicrosoftError

    def refused(*args, **kwargs):
        raise MicrosoftError(
            "50173",
            "The provided grant has expired due to it being revoked.",
            trace=[("Trace ID", "0b5c1d7e-0000-4a2b-8c3d-000000000001")],
        )

    original = identity.user_token
    identity.user_token = refused
    try:
        with app.app_context():
            row = db.session.get(Connection, connection_id)
            with pytest.raises(MicrosoftError):
                tokens.user_token(row)
            db.session.refresh(row)
            db.session.expunge(row)
            return row
    finally:
        identity.user_token = original


def signed_in_connection(app, **fields) -> int:
    from portal import security

    with app.app_context():
        sealed = security.encrypt(b"{}")
    return connection(app, token_cache_encrypted=sealed, **fields)


def test_no_reconnect_email_unless_the_institution_asks(portal):
    row = sign_in_stops_working(portal, signed_in_connection(portal))
    assert row.status == ConnectionStatus.NEEDS_RECONNECT and row.last_error_code == "50173"
    assert row.last_error_ids == [["Trace ID", "0b5c1d7e-0000-4a2b-8c3d-000000000001"]]
    with portal.app_context():
        assert db.session.query(Notification).count() == 0


def test_the_reconnect_email_goes_to_the_user_once_in_their_language(portal):
    institution_settings(portal, reconnect_email=True)
    connection_id = signed_in_connection(portal, language="nl")
    sign_in_stops_working(portal, connection_id)
    sign_in_stops_working(portal, connection_id)  # already waiting: no second e-mail
    with portal.app_context():
        message = db.session.query(Notification).one()
        assert message.recipient == ADELE
        assert message.subject == (
            "Koppel opnieuw om je rooster in Outlook te houden (Contoso University)"
        )
        assert message.body.startswith("Hallo Adele Vance,")
        assert f"http://localhost/connect/{SLUG}\n" in message.body


@pytest.mark.parametrize("hostile", INJECTIONS)
def test_the_reconnect_email_keeps_hostile_names_out_of_its_headers(make_app, inbox, hostile):
    if "\x00" in hostile and SCALE_OUT:
        pytest.skip("PostgreSQL text holds no NUL byte (the console refuses control characters)")
    app = make_app(SMTP_URL=inbox.url)
    with app.app_context():
        institution = invitations.create_institution(
            f"Contoso {hostile}\r\nBcc: victim@evil.example", "managed", "it@contoso.edu", "t"
        )
        institution.reconnect_email = True
        row = Connection(
            configuration=institution.configuration,
            upn=ADELE,
            display_name=f"{hostile}\nBcc: victim@evil.example",
            language="en",
        )
        db.session.add(row)
        db.session.flush()
        reminders.ask_to_reconnect(row)
        db.session.commit()
    deadline = time.time() + 5
    while not inbox.messages and time.time() < deadline:
        time.sleep(0.05)
    assert inbox.messages, "the message was not sent"
    envelope = inbox.messages[0]
    assert envelope.rcpt_tos == [ADELE]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["To"] == ADELE
    assert message.get_all("Bcc") is None
    subject = str(message["Subject"])
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("Connect again to keep your timetable in Outlook (Contoso")
    body = message.get_content()
    assert "Bcc: victim@evil.example" in body.replace("\n", " ")  # as text, in the body only


@pytest.mark.parametrize(
    ("zone", "desk", "error"),
    [
        ("Europe/Amsterdam", "https://help.contoso.edu/", None),
        ("", "servicedesk@contoso.edu", None),
        ("europe/amsterdam", "", "Enter a time zone from the IANA list"),
        ("../../etc/passwd", "", "Enter a time zone from the IANA list"),
        ("Mars/Olympus", "", "Enter a time zone from the IANA list"),
        ("UTC", "javascript:alert(1)", "Enter a web address starting with https://"),
        ("UTC", "https://help.contoso.edu/ x", "Enter a web address starting with https://"),
        ("UTC", "https://help\n.contoso.edu/", "Enter a web address starting with https://"),
        ("UTC", "not an address", "Enter a web address starting with https://"),
    ],
)
def test_support_sets_the_time_zone_and_service_desk(portal, zone, desk, error):
    from portal import staff

    password = "Tulip-Harbour-Quiet-Lantern-42"
    with portal.app_context():
        staff.create_staff("support@example.com", password)
        db.session.commit()
        institution_id = db.session.query(Institution).one().id
    client = portal.test_client()
    assert sign_in_staff(client, "support@example.com", password).status_code == 302
    path = f"/support/institutions/{institution_id}"
    token = CSRF.search(client.get(path).text).group(1)
    data = {"csrf_token": token, "time_zone": zone, "service_desk": desk, "reconnect_email": "y"}
    response = client.post(path, data=data)
    with portal.app_context():
        institution = db.session.query(Institution).one()
        if error:
            assert response.status_code == 400 and error in response.text
            assert institution.time_zone is None and not institution.reconnect_email
        else:
            assert response.status_code == 302
            assert institution.time_zone == (zone or None)
            assert institution.service_desk == (desk or None)
            assert institution.reconnect_email


def test_verification_evidence_shows_in_dutch_and_old_rows_still_show(portal):
    from portal import verification

    with portal.app_context():
        configuration = db.session.query(Configuration).one()
        run = verification._Run(configuration)
        run.passed(verification.APPLICATION, "application", client_id="5b2f8c39")
        run.passed(verification.MAILBOX, "calendars", mailbox=ADELE, names="Calendar, Birthdays")
        run.skipped(verification.SCOPE, "no_group")
        db.session.add(
            Verification(
                configuration=configuration,
                run_id=run.run_id,
                kind="tenant_found",
                outcome="passed",
                evidence="contoso.edu is tenant 9188040d, issuer https://login.example/",
            )
        )
        db.session.commit()

    def shown_in(language: str) -> tuple[list[str], list[str]]:
        with portal.test_request_context(headers={"Accept-Language": language}):
            links = db.session.query(Configuration).one().latest_run()
            return [link.evidence for link in links], [
                verification.evidence_text(link) for link in links
            ]

    stored, shown = shown_in("nl")
    _, english = shown_in("en")
    assert (
        stored[:3]
        == english[:3]
        == [
            "Application 5b2f8c39 is registered.",
            f"Read the calendars of {ADELE}: Calendar, Birthdays.",
            "No security group: the app may reach every mailbox.",
        ]
    )
    assert shown == [
        "Toepassing 5b2f8c39 is geregistreerd.",
        f"Agenda's van {ADELE} gelezen: Calendar, Birthdays.",
        "Geen beveiligingsgroep: de app kan elke mailbox bereiken.",
        "contoso.edu is tenant 9188040d, issuer https://login.example/",  # stored before
    ]


def test_every_evidence_message_has_dutch_with_the_same_values(portal):
    from flask_babel import gettext

    from portal import verification

    with portal.test_request_context(headers={"Accept-Language": "nl"}):
        for key, message in verification.EVIDENCE.items():
            dutch = gettext(message)
            assert dutch != message, key
            names = re.findall(r"%\((\w+)\)s", message)
            assert sorted(re.findall(r"%\((\w+)\)s", dutch)) == sorted(names), key
