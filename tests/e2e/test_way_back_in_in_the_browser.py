"""An administrator whose invitation link has expired gets back in: a fresh link by
e-mail to the registered address, or a Microsoft sign-in as an administrator of the tenant.
Microsoft is the stand-in on 127.0.0.1; e-mail goes to an SMTP server on 127.0.0.1."""

import re
import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from portal import config, security
from portal.extensions import db
from portal.models import Certificate, Configuration, Institution, Invitation, utcnow
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import CLIENT, TENANT, TENANT_GUID
from tests.standins.directory import AppRegistration, Tenant

pytestmark = pytest.mark.e2e

SIGNIN_CLIENT = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
VENDOR_TENANT = "4a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
ADMIN, ADELE = "admin@contoso.edu", "adele.vance@contoso.edu"
WIDTHS = (1366, 390)


@pytest.fixture
def expired(world, inbox, tmp_path):
    """Example University's approved configuration of the demo tenant, whose link has
    expired; SMTP, support's contact and the vendor's sign-in app are set up."""
    certificate, key = security.generate_certificate("MyTimetable sign-in", "MyTimetable", 30)
    path = tmp_path / "sign-in.pem"
    path.write_bytes(key + certificate.encode())
    directory = world.standins.directory
    directory.add_tenant(Tenant(id=VENDOR_TENANT, domains=["mtt.example"], display_name="MTT"))
    directory.add_app(
        AppRegistration(
            client_id=SIGNIN_CLIENT,
            tenant_id=VENDOR_TENANT,
            display_name="MyTimetable administrator sign-in",
            certificates=[certificate],
            redirect_uris=[f"{world.portal.url}/connect/callback"],
            delegated_permissions={"User.Read"},
            sign_in_audience="AzureADMultipleOrgs",
            group_membership_claims="DirectoryRole",
        )
    )
    directory.user_by_upn(ADMIN).directory_roles = {GLOBAL_ADMINISTRATOR}
    # Adele consented to the sign-in app before (User.Read); the administrator consents now.
    directory.record_user_consent(directory.user_by_upn(ADELE), SIGNIN_CLIENT)
    world.app.config.update(
        SMTP_URL=inbox.url,
        SUPPORT_CONTACT=config.support_contact(
            "support@mytimetable.example, https://mytimetable.example/help"
        ),
        **config.sign_in_app(
            {"PORTAL_SIGNIN_CLIENT_ID": SIGNIN_CLIENT, "PORTAL_SIGNIN_CERTIFICATE": str(path)}
        ),
    )
    with world.app.app_context():
        configuration = (
            db.session.query(Configuration)
            .join(Institution)
            .filter_by(name="Example University")
            .one()
        )
        configuration.method, configuration.status = "application", "approved"
        configuration.tenant_id, configuration.tenant_guid = TENANT, TENANT_GUID
        configuration.client_id, configuration.verified_at = CLIENT, utcnow()
        configuration.step_reached = 6
        configuration.certificate = Certificate.current_vendor()
        for invitation in db.session.query(Invitation):
            invitation.expires_at = utcnow() - timedelta(days=40)
        db.session.commit()
    return world.links["managed"]


def look(page, screenshot, name):
    """Screenshots at both widths, no horizontal scrolling on a phone, no serious axe
    violations."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(f"{name}-{width}")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), width
        assert_accessible(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_administrator_gets_back_in_after_the_link_expired(
    world, expired, inbox, page, screenshot
):
    page.goto(expired)
    expect(page.get_by_role("heading", name="This invitation link has expired")).to_be_visible()
    expect(page.get_by_text("a\N{BULLET}\N{BULLET}\N{BULLET}@x.edu")).to_have_count(1)
    expect(
        page.get_by_role("main").get_by_role("link", name="support@mytimetable.example")
    ).to_be_visible()
    look(page, screenshot, "way-back-expired")

    # A fresh link, to the registered address only.
    page.get_by_role("button", name="E-mail me a fresh link").click()
    expect(page.get_by_text("A new link is on its way to a\N{BULLET}")).to_be_visible()
    look(page, screenshot, "way-back-fresh-link-sent")
    deadline = time.time() + 10
    while not inbox.messages and time.time() < deadline:
        time.sleep(0.1)
    assert [message.rcpt_tos for message in inbox.messages] == [["a@x.edu"]]
    fresh = re.search(r"http://127\.0\.0\.1:\d+/setup/i/[\w-]+", inbox.messages[0].content.decode())
    assert fresh is not None

    # Someone without an administrator role is refused.
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.locator("input[name=login]").fill(ADELE)
    page.locator("#idSIButton9").click()
    expect(page.get_by_role("heading", name="The setup wizard did not open")).to_be_visible()
    look(page, screenshot, "way-back-sign-in-refused")

    # The tenant's Global Administrator gets into the wizard.
    page.goto(expired)
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.locator("input[name=login]").fill(ADMIN)
    page.locator("#idSIButton9").click()
    page.locator("#idBtn_Accept").click()
    expect(page.get_by_role("heading", name="The connection is active")).to_be_visible()

    # The fresh link from the e-mail opens the wizard too.
    page.context.clear_cookies()
    page.goto(fresh.group(0))
    expect(page.get_by_role("button", name="Open the setup wizard")).to_be_visible()


def test_a_revoked_link_shows_supports_contact_only(world, expired, page, screenshot):
    with world.app.app_context():
        for invitation in db.session.query(Invitation):
            invitation.revoked_at = utcnow()
        db.session.commit()
    page.goto(expired)
    expect(page.get_by_role("heading", name="This invitation link was revoked")).to_be_visible()
    expect(page.get_by_role("button", name="E-mail me a fresh link")).to_have_count(0)
    expect(
        page.get_by_role("main").get_by_role("link", name="https://mytimetable.example/help")
    ).to_be_visible()
    look(page, screenshot, "way-back-revoked")
    page.get_by_role("link", name="Nederlands").click()
    page.goto(expired)
    expect(page.get_by_role("heading", name="Deze uitnodigingslink is ingetrokken")).to_be_visible()
    look(page, screenshot, "way-back-revoked-nl")
