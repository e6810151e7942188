"""End users connect through Microsoft's sign-in (the stand-in), as a browser would."""

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis

from portal.extensions import db
from portal.models import Configuration, Connection, SyncJob
from tests.standins_selftest.helpers import Browser, CASession

SLUG = "contoso-university"
ADELE, MEGAN = "adele.vance@contoso.edu", "megan.bowen@contoso.edu"


@pytest.fixture
def portal(make_app, standins, configure):
    """An approved delegated configuration of the demo tenant, with the stand-ins."""
    app = make_app(**standins.settings())
    configure(
        app,
        method="delegated",
        consented=False,
        name="Contoso University",
        tenant_guid=standins.TENANT_GUID,
    )
    return app


class EndUser:
    """One person's browser: the portal's test client plus Microsoft's pages."""

    def __init__(self, app, standins):
        self.client = app.test_client()
        self.microsoft = Browser(CASession(standins.pki.bundle_path))

    def start(self, hint=""):
        page = self.client.get(f"/connect/{SLUG}" + (f"?login_hint={hint}" if hint else ""))
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
        response = self.client.post(
            f"/connect/{SLUG}/sign-in", data={"csrf_token": token, "login_hint": hint}
        )
        assert response.status_code == 302
        return response.location

    def connect(self, login, *buttons, hint=""):
        auth_uri = self.start(hint)
        page = self.microsoft.press(self.microsoft.open(auth_uri), "idSIButton9", login=login)
        for button in buttons:
            page = self.microsoft.press(page, button)
        assert page.status_code == 302, page.text
        return self.client.get(
            urlsplit(page.headers["Location"]).path + "?" + urlsplit(page.headers["Location"]).query
        )


def test_connect_stores_an_encrypted_sign_in_makes_the_calendar_and_queues_a_sync(portal, standins):
    standins.registration.admin_consented = True
    user = EndUser(portal, standins)
    response = user.connect(ADELE)
    assert response.status_code == 302 and response.location.endswith(f"/connect/{SLUG}/status")
    status = user.client.get(response.location)
    assert (
        "Adele Vance" in status.text
        and "MyTimetable" in status.text
        and "first sync" in status.text
    )
    with portal.app_context():
        connection = db.session.query(Connection).one()
        assert connection.upn == ADELE and connection.status == "connected"
        assert b"refresh_token" not in connection.token_cache_encrypted
        assert db.session.query(SyncJob).filter_by(connection_id=connection.id).count() == 1
    names = [c["name"] for c in standins.directory.calendars(standins.directory.user_by_upn(ADELE))]
    assert names.count("MyTimetable") == 1

    again = EndUser(portal, standins).connect(ADELE)  # reconnecting reuses the calendar
    assert again.status_code == 302
    names = [c["name"] for c in standins.directory.calendars(standins.directory.user_by_upn(ADELE))]
    assert names.count("MyTimetable") == 1
    with portal.app_context():
        assert db.session.query(Connection).count() == 1


def test_the_database_and_session_store_hold_no_token_in_clear_text(portal, standins, tmp_path):
    standins.registration.admin_consented = True
    issued = []
    original = standins.directory.sign

    def recording_sign(claims, **options):
        token = original(claims, **options)
        issued.append(token)
        return token

    standins.directory.sign = recording_sign
    EndUser(portal, standins).connect(ADELE)
    with portal.app_context():
        rows = [
            repr(row).encode()
            for table in db.metadata.sorted_tables
            for row in db.session.execute(table.select())
        ]
        db.session.remove()
        db.engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("portal.db*")) + b"".join(rows)
    if portal.config["REDIS_URL"]:  # the sessions, in the scale-out pass
        store = redis.Redis.from_url(portal.config["REDIS_URL"])
        raw += b"".join(store.dump(key) or b"" for key in store.scan_iter())
    refresh_tokens = list(standins.directory._refresh_tokens)
    assert issued and refresh_tokens
    for token in issued + refresh_tokens:
        assert token.encode() not in raw
        assert token.split(".")[-1].encode() not in raw


def test_login_hint_is_passed_to_microsoft(portal, standins):
    auth_uri = EndUser(portal, standins).start(hint=MEGAN)
    assert dict(parse_qsl(urlsplit(auth_uri).query))["login_hint"] == MEGAN


@pytest.mark.parametrize("colours", [False, True])
def test_the_sign_in_asks_for_mailbox_settings_only_when_events_are_coloured(
    portal, standins, colours
):
    with portal.app_context():
        db.session.query(Configuration).one().outlook_categories = colours
        db.session.commit()
    scope = dict(parse_qsl(urlsplit(EndUser(portal, standins).start()).query))["scope"]
    asked = {s.removeprefix("https://graph.microsoft.com/") for s in scope.split()}
    assert {"Calendars.ReadWrite", "User.Read"} <= asked
    assert ("MailboxSettings.ReadWrite" in asked) is colours


@pytest.mark.parametrize(
    ("setup", "login", "buttons", "words", "status"),
    [
        ("user_consent", ADELE, ("idBtn_Back",), "You did not give permission", 400),
        (
            "default_policy",
            ADELE,
            ("idBtn_Back",),
            "An administrator must approve MyTimetable first",
            400,
        ),
        ("consented", "guest@fabrikam.com", (), "That account is not from Contoso University", 400),
    ],
)
def test_every_unhappy_answer_gets_a_clear_page(
    portal, standins, setup, login, buttons, words, status
):
    tenant = standins.directory.find_tenant(standins.TENANT)
    tenant.user_consent_allowed = setup == "user_consent"
    standins.registration.admin_consented = setup == "consented"
    response = EndUser(portal, standins).connect(login, *buttons)
    assert response.status_code == status
    assert words in response.text
    with portal.app_context():
        assert db.session.query(Connection).count() == 0


def test_admin_approval_page_gives_the_text_to_forward(portal, standins):
    response = EndUser(portal, standins).connect(ADELE, "idBtn_Back")
    assert "AADSTS90094" in response.text
    details = response.text[response.text.index("<details") : response.text.index("</details>")]
    for name in ("Trace ID", "Correlation ID", "Timestamp"):
        assert f"<dt>{name}</dt><dd><code>" in details  # from the redirect's description
    assert f"http://localhost/connect/{SLUG}/organisation-consent" in response.text


def test_user_consent_when_the_tenant_allows_it(portal, standins):
    standins.directory.find_tenant(standins.TENANT).user_consent_allowed = True
    response = EndUser(portal, standins).connect(ADELE, "idBtn_Accept")
    assert response.location.endswith("/status")


@pytest.mark.parametrize("query", ["?code=x&state=forged", "?state=&error=access_denied", ""])
def test_stale_forged_or_replayed_callbacks_restart_from_the_connect_page(portal, standins, query):
    user = EndUser(portal, standins)
    user.start()
    response = user.client.get(f"/connect/callback{query}")
    assert response.status_code == 400
    assert "Please start again" in response.text or "could not be completed" in response.text


def test_replayed_code_is_refused(portal, standins):
    standins.registration.admin_consented = True
    user = EndUser(portal, standins)
    auth_uri = user.start()
    page = user.microsoft.press(user.microsoft.open(auth_uri), "idSIButton9", login=ADELE)
    location = page.headers["Location"]
    path = urlsplit(location).path + "?" + urlsplit(location).query
    assert user.client.get(path).status_code == 302
    replay = user.client.get(path)
    assert replay.status_code == 400


def test_sync_now_and_disconnect_removing_the_calendar(portal, standins):
    standins.registration.admin_consented = True
    user = EndUser(portal, standins)
    status_url = user.connect(ADELE).location
    page = user.client.get(status_url)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    synced = user.client.post(
        f"/connect/{SLUG}/sync", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Synchronisation requested" in synced.text
    gone = user.client.post(
        f"/connect/{SLUG}/disconnect", data={"csrf_token": token, "remove_calendar": "y"}
    )
    assert "Disconnected" in gone.text and "was removed from Outlook" in gone.text
    assert "My Apps" in gone.text
    # the switcher cannot send the browser back to the disconnect form's address
    switch = f'href="/language/nl?next=/connect/{SLUG}"'
    assert switch in gone.text
    assert user.client.get(f"/language/nl?next=/connect/{SLUG}").location == f"/connect/{SLUG}"
    names = [c["name"] for c in standins.directory.calendars(standins.directory.user_by_upn(ADELE))]
    assert "MyTimetable" not in names
    with portal.app_context():
        connection = db.session.query(Connection).one()
        assert connection.token_cache_encrypted is None and connection.status == "disconnected"
    assert user.client.get(status_url).status_code == 302


def test_two_users_at_once_never_see_each_other(portal, standins):
    standins.registration.admin_consented = True
    adele, megan = EndUser(portal, standins), EndUser(portal, standins)
    adele_uri, megan_uri = adele.start(), megan.start()
    adele_page = adele.microsoft.press(adele.microsoft.open(adele_uri), "idSIButton9", login=ADELE)
    megan_page = megan.microsoft.press(megan.microsoft.open(megan_uri), "idSIButton9", login=MEGAN)
    for user, page, name in (
        (megan, megan_page, "Megan Bowen"),
        (adele, adele_page, "Adele Vance"),
    ):
        location = urlsplit(page.headers["Location"])
        status = user.client.get(f"{location.path}?{location.query}", follow_redirects=True)
        assert name in status.text
    assert "Megan" not in adele.client.get(f"/connect/{SLUG}/status").text
    assert "Adele" not in megan.client.get(f"/connect/{SLUG}/status").text
    # A callback carried into the other browser is refused: its state is not in that session.
    swapped = urlsplit(adele_page.headers["Location"])
    assert megan.client.get(f"{swapped.path}?{swapped.query}").status_code == 400


def test_connect_page_is_not_offered_before_approval(portal):
    with portal.app_context():
        db.session.query(Connection).delete()
        from portal.models import Configuration

        db.session.query(Configuration).one().status = "submitted"
        db.session.commit()
    assert portal.test_client().get(f"/connect/{SLUG}").status_code == 404
    assert portal.test_client().get("/connect/no-such-school").status_code == 404


def test_revoked_sign_in_asks_to_reconnect_and_reconnecting_restores_it(
    portal, standins, monkeypatch
):
    import tests.standins.identity as entra

    monkeypatch.setattr(entra, "TOKEN_LIFETIME", 60)  # MSAL refreshes tokens this short-lived
    standins.registration.admin_consented = True
    user = EndUser(portal, standins)
    status_url = user.connect(ADELE).location
    page = user.client.get(status_url)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    assert (
        "Synchronisation requested"
        in user.client.post(
            f"/connect/{SLUG}/sync", data={"csrf_token": token}, follow_redirects=True
        ).text
    )  # a silent refresh works

    standins.directory.revoke_refresh_tokens(ADELE)  # password reset
    page = user.client.post(
        f"/connect/{SLUG}/sync", data={"csrf_token": token}, follow_redirects=True
    )
    assert "sign-in has expired" in page.text and "Not updating: connect again" in page.text
    with portal.app_context():
        connection = db.session.query(Connection).one()
        assert connection.status == "needs_reconnect" and connection.last_error == "AADSTS50173"
        ids = dict(connection.last_error_ids)
        assert set(ids) == {"Trace ID", "Correlation ID", "Timestamp"}
        assert connection.token_cache_encrypted is not None and connection.calendar_id
    assert ids["Trace ID"] in page.text and ids["Correlation ID"] in page.text

    assert user.connect(ADELE, hint=ADELE).location.endswith("/status")
    with portal.app_context():
        connection = db.session.query(Connection).one()
        assert connection.status == "connected" and connection.last_error is None


def test_the_status_and_connect_pages_write_nothing(portal, standins):
    from tests.integration.test_request_path import statements

    standins.registration.admin_consented = True
    # Flask-Session deletes expired sessions on about one request in 1,000, whatever the
    # page: that housekeeping is not the page writing, so it is kept out of this count.
    store = getattr(portal.session_interface, "inner", portal.session_interface)
    store.cleanup_n_requests = None
    user = EndUser(portal, standins)
    status = user.connect(ADELE).location
    user.client.get(status)
    for page in (status, f"/connect/{SLUG}"):
        with statements(portal) as sent:
            assert user.client.get(page).status_code == 200
        assert sent and set(sent) == {"SELECT"}


def test_a_connection_shows_only_on_its_own_institutions_status_page(portal, standins):
    from portal import invitations

    standins.registration.admin_consented = True
    user = EndUser(portal, standins)
    status = user.connect(ADELE).location
    with portal.app_context():
        other = invitations.create_institution("Fabrikam College", "managed", "a@f.edu", "t")
        db.session.commit()
        other_slug = other.slug
    assert "Adele" in user.client.get(status).text
    elsewhere = user.client.get(f"/connect/{other_slug}/status")
    assert elsewhere.status_code == 302
    assert elsewhere.location.endswith(f"/connect/{other_slug}")
    assert user.client.get("/connect/no-such-school/status").status_code == 404
    assert "Adele" in user.client.get(status).text


def test_a_forged_callback_leaves_the_real_sign_in_waiting(portal, standins):
    standins.registration.admin_consented = True
    user = EndUser(portal, standins)
    page = user.microsoft.press(user.microsoft.open(user.start()), "idSIButton9", login=ADELE)
    assert user.client.get("/connect/callback?code=forged&state=forged").status_code == 400
    location = urlsplit(page.headers["Location"])
    response = user.client.get(f"{location.path}?{location.query}")
    assert response.status_code == 302 and response.location.endswith(f"/connect/{SLUG}/status")


def test_signing_in_gives_the_browser_a_new_session_id(portal, standins):
    standins.registration.admin_consented = True
    victim = EndUser(portal, standins)
    victim.client.get(f"/connect/{SLUG}")
    planted = victim.client.get_cookie("portal_session").value
    assert victim.connect(ADELE).location.endswith("/status")
    assert victim.client.get_cookie("portal_session").value != planted
    attacker = portal.test_client()
    attacker.set_cookie("portal_session", planted)
    response = attacker.get(f"/connect/{SLUG}/status")
    assert response.status_code == 302 and "Adele" not in response.text


def test_organisation_consent_from_another_tenant_is_refused_when_a_domain_was_typed(
    make_app, standins, configure
):
    from tests.standins.directory import AppRegistration

    app = make_app(**standins.settings())
    configure(app, method="delegated", consented=False, name="Contoso University")
    fabrikam = standins.directory.find_tenant("fabrikam.onmicrosoft.com")
    # the same multi-tenant application, with a service principal in Fabrikam too
    standins.directory.add_app(
        AppRegistration(
            client_id=standins.CLIENT,
            tenant_id=fabrikam.id,
            display_name="MyTimetable Office 365",
            redirect_uris=["http://localhost/connect/callback"],
            delegated_permissions={"Calendars.ReadWrite", "User.Read"},
        )
    )
    admin = EndUser(app, standins)
    page = admin.client.get(f"/connect/{SLUG}/organisation-consent")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    consent_url = admin.client.post(
        f"/connect/{SLUG}/organisation-consent", data={"csrf_token": token}
    ).location
    assert f"/{standins.TENANT}/v2.0/adminconsent" in consent_url
    # Fabrikam's administrator answers a request sent to their own tenant instead
    standins.directory.user_by_upn("guest@fabrikam.com").is_admin = True
    elsewhere = consent_url.replace(f"/{standins.TENANT}/", "/fabrikam.onmicrosoft.com/")
    page = admin.microsoft.press(
        admin.microsoft.open(elsewhere), "idBtn_Accept", login="guest@fabrikam.com"
    )
    location = urlsplit(page.headers["Location"])
    assert dict(parse_qsl(location.query))["tenant"] == fabrikam.id
    response = admin.client.get(f"{location.path}?{location.query}")
    assert response.status_code == 400
    assert "was not granted" in response.text


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        ("http://10.0.0.1/ical?user={upn}", "on a local or private network"),
        ("http://169.254.169.254/latest/meta-data/", "on a local or private network"),
        ("http://127.0.0.1:{closed}/ical?user={upn}", "could not be reached."),
    ],
)
def test_an_end_user_sees_a_feed_that_cannot_be_fetched_in_plain_words(
    portal, standins, feed, message
):
    from portal.models import Configuration
    from portal.sync import engine

    standins.registration.admin_consented = True
    user = EndUser(portal, standins)
    user.connect(ADELE)
    with portal.app_context():
        configuration = db.session.query(Configuration).one()
        configuration.feed_url_template = feed.replace("{closed}", str(_closed_port()))
        db.session.commit()
        assert engine.run(db.session.query(Connection).one()).outcome == "failed"
    page = user.client.get(f"/connect/{SLUG}/status").text
    assert message in page
    for technical in ("Errno", "Connection refused", "10.0.0.1", "169.254", "urllib3", "HTTP"):
        assert technical not in page
