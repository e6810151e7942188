"""The wizard in headless Chromium, as an administrator clicks through it (no Microsoft)."""

import re

import pytest
from playwright.sync_api import expect

from portal import certificates, invitations
from portal.extensions import db
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def portal(make_app):
    """The portal on a free port, with an on-premises and a managed institution."""
    server = None
    app = None

    def start():
        nonlocal server, app
        app = make_app()
        server = LiveServer(app)
        app.config["EXTERNAL_URL"] = server.url
        with app.app_context():
            certificates.create_vendor_certificate(365, "test")
            links = {}
            for name, hosting in (
                ("Example University", "managed"),
                ("Example College", "on_premises"),
            ):
                institution = invitations.create_institution(name, hosting, "a@x.edu", "test")
                links[hosting] = invitations.issue_invitation(institution, "test")
            db.session.commit()
        server.start()
        return server, links

    yield start
    if server:
        server.stop()


def test_wrong_link_shows_how_to_get_a_valid_one(page, portal, screenshot):
    server, _ = portal()
    page.goto(f"{server.url}/setup/i/garbled-link")
    expect(page.get_by_role("heading", name="This invitation link is not valid")).to_be_visible()
    screenshot("invitation-invalid")
    assert_accessible(page, "invitation-invalid")


def test_administrator_walks_to_the_tenant_step_and_fixes_bad_input(page, portal, screenshot):
    server, links = portal()
    page.goto(links["on_premises"])
    heading = page.get_by_role("heading", name="Set up MyTimetable for Example College")
    expect(heading).to_be_visible()
    screenshot("invitation-confirm")
    assert_accessible(page, "invitation-confirm")
    page.get_by_role("button", name="Open the setup wizard").click()
    expect(page).to_have_url(re.compile(r"/setup/start$"))
    screenshot("start")
    assert_accessible(page, "start")
    page.get_by_role("button", name="Start now").click()
    expect(page).to_have_url(re.compile(r"/setup/method$"))
    screenshot("step1-method")
    assert_accessible(page, "step1-method")
    page.get_by_text("Which fits you?").click()
    page.get_by_label("Delegated permissions").check()
    page.get_by_role("button", name="Save and continue").click()

    expect(
        page.get_by_role("heading", name="The certificate MyTimetable signs in with")
    ).to_be_visible()
    page.get_by_role("button", name="Make the certificate").click()
    expect(page.get_by_text("Thumbprint (SHA-1, as Microsoft Entra shows it)")).to_be_visible()
    page.get_by_label("Password for the .pfx file").fill("correct horse battery staple")
    page.get_by_label("Repeat the password").fill("correct horse battery staple")
    with page.expect_download() as pfx:
        page.get_by_role("button", name="Download private key (.pfx)").click()
    assert pfx.value.suggested_filename == "mytimetable-example-college.pfx"
    screenshot("step2-certificate-on-premises")
    assert_accessible(page, "step2-certificate-on-premises")
    page.get_by_role("button", name="Continue").click()

    expect(
        page.get_by_role("heading", name="Register MyTimetable in Microsoft Entra ID")
    ).to_be_visible()
    expect(page.get_by_text(f"{server.url}/connect/callback").first).to_be_visible()
    screenshot("step3-register-delegated")
    assert_accessible(page, "step3-register-delegated")
    page.get_by_role("button", name=re.compile("I have registered the app")).click()

    page.get_by_label("Tenant ID").fill("not a tenant")
    page.get_by_label("Application (client) ID").fill("1234")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.locator("#tenant_id-error")).to_contain_text("Enter the Directory (tenant) ID")
    expect(page.locator("#client_id-error")).to_contain_text("is a GUID")
    expect(page.get_by_label("Tenant ID")).to_have_value("not a tenant")
    screenshot("step4-tenant-errors")
    assert_accessible(page, "step4-tenant-errors")

    page.go_back()
    expect(page).to_have_url(re.compile(r"/setup/(tenant|register)$"))
    page.get_by_role("link", name=re.compile("Method")).first.click()
    expect(page.get_by_label("Delegated permissions")).to_be_checked()
