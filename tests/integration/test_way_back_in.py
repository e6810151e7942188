"""A way back into the wizard after the invitation link ran out: a fresh link e-mailed to
the registered address, or a Microsoft sign-in as an administrator of the tenant."""

import re
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from portal import config, invitations, security
from portal.extensions import db
from portal.models import AuditEvent, Institution, Invitation, Notification, utcnow
from tests.conftest import CSRF
from tests.standins.directory import AppRegistration, Tenant
from tests.standins_selftest.helpers import Browser, CASession

SIGNIN_CLIENT = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
VENDOR_TENANT = "4a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
# permissions-reference.md, "All roles"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
CLOUD_APPLICATION_ADMINISTRATOR = "158c047a-c907-4556-b7ef-446551a6b5f7"
HELPDESK_ADMINISTRATOR = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
ADMIN, ADELE, GUEST = "admin@contoso.edu", "adele.vance@contoso.edu", "guest@fabrikam.com"
CONTACT = "it@contoso.edu"
SUPPORT = {"email": "support@mytimetable.example", "url": "https://mytimetable.example/help"}


@pytest.fixture
def sign_in_app(standins, tmp_path):
    """The vendor's multi-tenant sign-in app in its own tenant, with a certificate; the
    portal's settings for it."""
    certificate, key = security.generate_certificate("MyTimetable sign-in", "MyTimetable", 30)
    path = tmp_path / "sign-in.pem"
    path.write_bytes(key + certificate.encode())
    standins.directory.add_tenant(
        Tenant(id=VENDOR_TENANT, domains=["mytimetable.onmicrosoft.com"], display_name="MTT")
    )
    registration = standins.directory.add_app(
        AppRegistration(
            client_id=SIGNIN_CLIENT,
            tenant_id=VENDOR_TENANT,
            display_name="MyTimetable administrator sign-in",
            certificates=[certificate],
            redirect_uris=["http://localhost/connect/callback"],
            delegated_permissions={"User.Read"},
            sign_in_audience="AzureADMultipleOrgs",
            group_membership_claims="DirectoryRole",
        )
    )
    settings = config.sign_in_app(
        {"PORTAL_SIGNIN_CLIENT_ID": SIGNIN_CLIENT, "PORTAL_SIGNIN_CERTIFICATE": str(path)}
    )
    return registration, settings


@pytest.fixture
def portal(make_app, standins, configure, sign_in_app, inbox):
    """An approved configuration of the demo tenant whose only link has expired; SMTP, the
    sign-in app and support's contact are set up. ``portal.config["link"]`` is its path."""
    app = make_app(
        **standins.settings(),
        **sign_in_app[1],
        SMTP_URL=inbox.url,
        SUPPORT_CONTACT=SUPPORT,
    )
    configure(app, name="Contoso University", tenant_guid=standins.TENANT_GUID)
    app.config["link"] = expired_link(app)
    for upn, roles in ((ADMIN, {GLOBAL_ADMINISTRATOR}), (ADELE, {HELPDESK_ADMINISTRATOR})):
        user = standins.directory.user_by_upn(upn)
        user.directory_roles = roles
        standins.directory.record_user_consent(user, SIGNIN_CLIENT)
    return app


def expired_link(app, name="Contoso University") -> str:
    with app.app_context():
        institution = db.session.query(Institution).filter_by(name=name).one()
        link = invitations.issue_invitation(institution, "test")
        for row in db.session.query(Invitation):
            row.expires_at = utcnow() - timedelta(days=1)
        db.session.commit()
    return urlsplit(link).path


def page_and_token(client, path):
    page = client.get(path)
    match = CSRF.search(page.text)
    return page, match.group(1) if match else None


def audit(app, action):
    with app.app_context():
        return [e.detail for e in db.session.query(AuditEvent).filter_by(action=action)]


# (a) A fresh link, to the registered address only


def test_expired_page_offers_a_fresh_link_to_the_masked_registered_address(portal):
    page, _ = page_and_token(portal.test_client(), portal.config["link"])
    assert page.status_code == 410
    assert "E-mail me a fresh link" in page.text
    assert "i\N{BULLET}\N{BULLET}\N{BULLET}@contoso.edu" in page.text
    assert CONTACT not in page.text


def test_fresh_link_goes_to_the_registered_address_only(portal, inbox):
    client = portal.test_client()
    path = portal.config["link"]
    _, token = page_and_token(client, path)
    # A visitor's own address in the form is ignored: there is no field for it.
    answer = client.post(
        f"{path}/fresh-link", data={"csrf_token": token, "email": "attacker@evil.example"}
    )
    assert answer.status_code == 303
    follow = client.get(answer.location)
    assert "A new link is on its way to i\N{BULLET}\N{BULLET}\N{BULLET}@contoso.edu" in follow.text
    deadline = time.time() + 5
    while not inbox.messages and time.time() < deadline:
        time.sleep(0.05)
    assert [m.rcpt_tos for m in inbox.messages] == [[CONTACT]]
    sent = inbox.messages[0].content.decode()
    link = re.search(r"http://localhost/setup/i/[\w-]+", sent).group(0)
    with portal.app_context():
        # The outbox keeps the text without the link; the link opens the wizard.
        kept = db.session.query(Notification).one()
        assert kept.recipient == CONTACT and urlsplit(link).path not in kept.body
        assert invitations.resolve(urlsplit(link).path.rsplit("/", 1)[1]).institution.name
    assert audit(portal, "fresh_link_sent")
    assert client.get(urlsplit(link).path).status_code == 200


def test_without_smtp_no_fresh_link_is_offered(make_app, standins, configure):
    app = make_app(**standins.settings(), SUPPORT_CONTACT=SUPPORT)
    configure(app, name="Contoso University")
    path = expired_link(app)
    client = app.test_client()
    page, _ = page_and_token(client, path)
    assert "E-mail me a fresh link" not in page.text
    assert "Ask MyTimetable support for a new invitation link" in page.text
    _, token = page_and_token(client, "/support/sign-in")  # any form's token
    assert client.post(f"{path}/fresh-link", data={"csrf_token": token}).status_code == 404


def test_fresh_links_are_rate_limited_per_link(portal):
    portal.config["FRESH_LINK_LIMIT"] = "2 per hour"
    client = portal.test_client()
    path = portal.config["link"]
    _, token = page_and_token(client, path)
    statuses = [
        client.post(f"{path}/fresh-link", data={"csrf_token": token}).status_code for _ in range(3)
    ]
    assert statuses == [303, 303, 429]


def test_fresh_links_are_rate_limited_per_address_whichever_link_asks(portal):
    portal.config["FRESH_LINK_LIMIT"] = "1 per hour"
    client = portal.test_client()
    first = portal.config["link"]
    with portal.app_context():
        institution = db.session.query(Institution).one()
        second = urlsplit(invitations.issue_invitation(institution, "test")).path
        for row in db.session.query(Invitation):
            row.expires_at = utcnow() - timedelta(days=1)
        db.session.commit()
    _, token = page_and_token(client, second)
    assert client.post(f"{second}/fresh-link", data={"csrf_token": token}).status_code == 303
    assert client.post(f"{first}/fresh-link", data={"csrf_token": token}).status_code == 429


def test_fresh_link_needs_the_pages_csrf_token(portal):
    answer = portal.test_client().post(f"{portal.config['link']}/fresh-link")
    assert answer.status_code == 400


def test_revoked_link_gets_supports_contact_and_no_way_back(portal):
    with portal.app_context():
        for row in db.session.query(Invitation):
            row.revoked_at, row.replaced = utcnow(), False
        db.session.commit()
    client = portal.test_client()
    path = portal.config["link"]
    page, _ = page_and_token(client, path)
    _, token = page_and_token(client, "/support/sign-in")  # the page has no form
    assert page.status_code == 410 and "This invitation link was revoked" in page.text
    assert "E-mail me a fresh link" not in page.text and "Sign in with Microsoft" not in page.text
    assert 'href="mailto:support@mytimetable.example"' in page.text
    assert 'href="https://mytimetable.example/help"' in page.text
    form = {"csrf_token": token}
    assert client.post(f"{path}/fresh-link", data=form).status_code == 404
    assert client.post(f"{path}/sign-in", data=form).status_code == 404


def test_an_older_link_gets_no_way_back_once_support_revoked_the_newest(portal):
    with portal.app_context():
        institution = db.session.query(Institution).one()
        newest = urlsplit(invitations.issue_invitation(institution, "test")).path
        row = invitations.resolve(newest.rsplit("/", 1)[1])
        row.revoked_at = utcnow()
        db.session.commit()
    page = portal.test_client().get(portal.config["link"])
    assert "E-mail me a fresh link" not in page.text


def test_replaced_link_offers_the_way_back(portal):
    with portal.app_context():
        for row in db.session.query(Invitation):
            row.expires_at = utcnow() + timedelta(days=1)
        invitations.issue_invitation(db.session.query(Institution).one(), "support")
        db.session.commit()
    page = portal.test_client().get(portal.config["link"])
    assert "This invitation link has been replaced" in page.text
    assert "E-mail me a fresh link" in page.text


@pytest.mark.parametrize("path", ["/setup/i/not-a-real-token", "/setup/method"])
def test_unknown_and_missing_links_show_supports_contact(portal, path):
    page = portal.test_client().get(path)
    assert page.status_code == 404 and "support@mytimetable.example" in page.text


# (b) Microsoft sign-in as an administrator of the configuration's tenant


class Administrator:
    """A browser on the expired link's page and at Microsoft's."""

    def __init__(self, app, standins):
        self.app, self.client = app, app.test_client()
        self.microsoft = Browser(CASession(standins.pki.bundle_path))

    def sign_in(self, login):
        path = self.app.config["link"]
        _, token = page_and_token(self.client, path)
        answer = self.client.post(f"{path}/sign-in", data={"csrf_token": token})
        assert answer.status_code == 303, answer.text
        page = self.microsoft.press(
            self.microsoft.open(answer.location), "idSIButton9", login=login
        )
        if "idBtn_Accept" in page.text:
            page = self.microsoft.press(page, "idBtn_Accept")
        assert page.status_code == 302, page.text
        back = urlsplit(page.headers["Location"])
        return self.client.get(f"{back.path}?{back.query}")


def test_sign_in_asks_the_configurations_tenant_for_user_read_only(portal, standins):
    from urllib.parse import parse_qs

    client = portal.test_client()
    path = portal.config["link"]
    page, token = page_and_token(client, path)
    assert "Sign in with Microsoft" in page.text
    location = client.post(f"{path}/sign-in", data={"csrf_token": token}).location
    assert urlsplit(location).path.startswith(f"/{standins.TENANT_GUID}/oauth2/v2.0/authorize")
    query = parse_qs(urlsplit(location).query)
    assert query["client_id"] == [SIGNIN_CLIENT]
    scopes = set(query["scope"][0].split())
    assert scopes - {"openid", "profile", "offline_access"} == {
        "https://graph.microsoft.com/User.Read"
    }


def test_global_administrator_of_the_tenant_opens_the_wizard(portal, standins):
    administrator = Administrator(portal, standins)
    assert administrator.client.get("/setup/method").status_code == 404  # no wizard yet
    answer = administrator.sign_in(ADMIN)
    assert answer.status_code == 302 and answer.location.endswith("/setup/")
    assert administrator.client.get("/setup/review").status_code == 200
    assert audit(portal, "wizard_opened_by_sign_in") == [
        f"Global Administrator in tenant {standins.TENANT_GUID}"
    ]
    with portal.app_context():
        event = db.session.query(AuditEvent).filter_by(action="wizard_opened_by_sign_in").one()
        assert event.actor == f"{ADMIN} (Microsoft sign-in)"
        # The expired link stays expired; the sign-in made no link of its own.
        assert invitations.resolve_any(portal.config["link"].rsplit("/", 1)[1]).expired


def test_cloud_application_administrator_is_accepted(portal, standins):
    standins.directory.user_by_upn(ADMIN).directory_roles = {CLOUD_APPLICATION_ADMINISTRATOR}
    answer = Administrator(portal, standins).sign_in(ADMIN)
    assert answer.status_code == 302


def test_sign_in_starts_a_new_session(portal, standins):
    administrator = Administrator(portal, standins)
    administrator.client.get(portal.config["link"])  # the page's form puts a session in place
    cookie = portal.config["SESSION_COOKIE_NAME"]
    before = administrator.client.get_cookie(cookie).value
    administrator.sign_in(ADMIN)
    assert administrator.client.get_cookie(cookie).value != before


def test_an_account_without_an_administrator_role_is_refused(portal, standins):
    administrator = Administrator(portal, standins)
    answer = administrator.sign_in(ADELE)
    assert answer.status_code == 403
    assert "none of the Microsoft Entra roles" in answer.text
    assert "support@mytimetable.example" in answer.text
    assert administrator.client.get("/setup/method").status_code == 404
    assert audit(portal, "administrator_sign_in_refused")


def test_an_account_of_another_tenant_is_refused(portal, standins):
    guest = standins.directory.user_by_upn(GUEST)
    guest.directory_roles = {GLOBAL_ADMINISTRATOR}
    administrator = Administrator(portal, standins)
    path = portal.config["link"]
    _, token = page_and_token(administrator.client, path)
    location = administrator.client.post(f"{path}/sign-in", data={"csrf_token": token}).location
    page = administrator.microsoft.press(
        administrator.microsoft.open(location), "idSIButton9", login=GUEST
    )
    back = urlsplit(page.headers["Location"])  # Entra refuses it: AADSTS50020
    answer = administrator.client.get(f"{back.path}?{back.query}")
    assert answer.status_code == 403 and "AADSTS50020" in answer.text
    assert administrator.client.get("/setup/method").status_code == 404


def test_a_token_of_another_tenant_is_refused(portal, standins, monkeypatch):
    """Should an ID token name another tenant (the authority always names the
    configuration's, so Entra never issues one), the portal still refuses it."""
    from portal.microsoft import identity

    issued = identity.msal.ClientApplication.acquire_token_by_auth_code_flow

    def other_tenant(self, *args, **kwargs):
        result = issued(self, *args, **kwargs)
        result["id_token_claims"]["tid"] = VENDOR_TENANT
        return result

    monkeypatch.setattr(
        identity.msal.ClientApplication, "acquire_token_by_auth_code_flow", other_tenant
    )
    answer = Administrator(portal, standins).sign_in(ADMIN)
    assert answer.status_code == 403 and "different tenant" in answer.text


def test_without_the_wids_claim_the_sign_in_is_refused(portal, standins, sign_in_app):
    sign_in_app[0].set_group_membership_claims(None)
    answer = Administrator(portal, standins).sign_in(ADMIN)
    assert answer.status_code == 403
    assert "did not say which roles" in answer.text


def test_sign_in_is_not_offered_without_the_sign_in_app(make_app, standins, configure):
    app = make_app(**standins.settings())
    configure(app, name="Contoso University", tenant_guid=standins.TENANT_GUID)
    page = app.test_client().get(expired_link(app))
    assert "Sign in with Microsoft" not in page.text


def test_sign_in_is_not_offered_before_the_tenant_was_verified(make_app, standins, configure):
    app = make_app(**standins.settings(), SIGNIN_CLIENT_ID=SIGNIN_CLIENT, SIGNIN_CREDENTIAL="x")
    configure(app, name="Contoso University", tenant_guid=None)
    page = app.test_client().get(expired_link(app))
    assert "Sign in with Microsoft" not in page.text


# Settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", {}),
        ("support@mytimetable.example", {"email": "support@mytimetable.example"}),
        (
            "https://mytimetable.example/help, support@mytimetable.example",
            {"url": "https://mytimetable.example/help", "email": "support@mytimetable.example"},
        ),
    ],
)
def test_support_contact_setting(value, expected):
    assert config.support_contact(value) == expected


@pytest.mark.parametrize(
    "value",
    ["javascript:alert(1)", "http://plain.example", "a@b, c@d", "not an address", "<a>@x"],
)
def test_support_contact_setting_refuses_what_it_cannot_show(value):
    with pytest.raises(config.ConfigurationError):
        config.support_contact(value)


@pytest.mark.parametrize(
    "env",
    [
        {"PORTAL_SIGNIN_CLIENT_ID": SIGNIN_CLIENT},
        {"PORTAL_SIGNIN_CLIENT_SECRET": "s"},
        {
            "PORTAL_SIGNIN_CLIENT_ID": SIGNIN_CLIENT,
            "PORTAL_SIGNIN_CLIENT_SECRET": "s",
            "PORTAL_SIGNIN_CERTIFICATE": "/nonexistent.pem",
        },
        {"PORTAL_SIGNIN_CLIENT_ID": SIGNIN_CLIENT, "PORTAL_SIGNIN_CERTIFICATE": "/nonexistent"},
    ],
)
def test_sign_in_app_settings_must_be_whole(env):
    with pytest.raises(config.ConfigurationError):
        config.sign_in_app(env)


def test_sign_in_app_is_off_when_unset():
    assert config.sign_in_app({}) == {"SIGNIN_CLIENT_ID": None, "SIGNIN_CREDENTIAL": None}


def test_a_link_that_expires_mid_session_points_to_the_links_page(portal, standins):
    administrator = Administrator(portal, standins)
    administrator.sign_in(ADMIN)
    with portal.app_context():
        for row in db.session.query(Invitation):
            row.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    page = administrator.client.get("/setup/review")
    assert page.status_code == 410
    assert "Open the invitation link from your e-mail again" in page.text


@pytest.mark.parametrize(
    "name",
    [
        "O\u2019Brien \u2018College\u2019 <script>alert(1)</script>",
        '"; Start-Process calc; "',
        "Example Bcc: x@evil.example",
    ],
)
def test_the_fresh_link_e_mail_carries_a_hostile_institution_name_as_text(portal, inbox, name):
    import email
    from email import policy

    with portal.app_context():
        db.session.query(Institution).one().name = name
        db.session.commit()
    client = portal.test_client()
    path = portal.config["link"]
    _, token = page_and_token(client, path)
    assert client.post(f"{path}/fresh-link", data={"csrf_token": token}).status_code == 303
    deadline = time.time() + 5
    while not inbox.messages and time.time() < deadline:
        time.sleep(0.05)
    message = email.message_from_bytes(inbox.messages[0].content, policy=policy.default)
    assert message["Subject"].strip() == f"MyTimetable: a new link to set up Office 365 for {name}"
    assert message["Bcc"] is None and inbox.messages[0].rcpt_tos == [CONTACT]
    assert name in message.get_content()


def test_every_page_footer_gives_supports_contact_once_it_is_set(make_app):
    plain = make_app().test_client().get("/support/sign-in").text
    assert "Questions? Contact MyTimetable support." in plain
    page = make_app(SUPPORT_CONTACT=SUPPORT).test_client().get("/support/sign-in").text
    footer = page.split('class="site-footer"')[1]
    assert 'href="mailto:support@mytimetable.example">support@mytimetable.example</a>' in footer
    assert 'href="https://mytimetable.example/help">https://mytimetable.example/help</a>' in footer
