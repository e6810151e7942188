"""End users connect their calendar in headless Chromium; an administrator provisions
mailboxes. Microsoft is the stand-in on 127.0.0.1."""

import re

import pytest
from playwright.sync_api import expect

import tests.standins.identity as entra
from portal.extensions import db
from portal.models import Certificate, Configuration, Institution, utcnow
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import CLIENT, TENANT, TENANT_GUID, open_link

pytestmark = pytest.mark.e2e

ADELE, MEGAN = "adele.vance@contoso.edu", "megan.bowen@contoso.edu"


def approve(world, method="delegated", **extra):
    with world.app.app_context():
        config = (
            db.session.query(Configuration)
            .join(Institution)
            .filter_by(name="Example University")
            .one()
        )
        config.method, config.status, config.verified_at = method, "approved", utcnow()
        config.tenant_id, config.tenant_guid, config.client_id = TENANT, TENANT_GUID, CLIENT
        config.step_reached = 6
        config.certificate = Certificate.current_vendor()
        for name, value in extra.items():
            setattr(config, name, value)
        db.session.commit()
    return f"{world.portal.url}/connect/example-university"


def sign_in(page, login, *buttons):
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.locator("input[name=login]").fill(login)
    page.locator("#idSIButton9").click()
    for button in buttons:
        page.locator(f"#{button}").click()


def test_user_declines_then_connects_reconnects_after_revocation_and_disconnects(
    world, page, screenshot, monkeypatch
):
    monkeypatch.setattr(entra, "TOKEN_LIFETIME", 60)  # so that MSAL refreshes on Sync now
    world.standins.directory.find_tenant(TENANT).user_consent_allowed = True
    connect_url = approve(world)
    page.goto(f"{connect_url}?login_hint={ADELE}")
    expect(page.get_by_text(f"as {ADELE}")).to_be_visible()
    screenshot("connect-start")
    assert_accessible(page, "connect-start")

    sign_in(page, ADELE, "idBtn_Back")
    expect(page.get_by_role("heading", name="You did not give permission")).to_be_visible()
    assert_accessible(page, "connect-declined")
    page.get_by_role("link", name="Try again").click()
    sign_in(page, ADELE, "idBtn_Accept")
    expect(page).to_have_url(re.compile(r"/status$"))
    expect(page.get_by_text("Adele Vance")).to_be_visible()
    expect(page.get_by_text("first sync")).to_be_visible()
    screenshot("connect-status")
    assert_accessible(page, "connect-status")

    world.standins.directory.revoke_refresh_tokens(ADELE)
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_text("Not updating: connect again.")).to_be_visible()
    screenshot("connect-needs-reconnecting")
    assert_accessible(page, "connect-needs-reconnecting")
    page.get_by_role("button", name="Connect again").click()  # straight to Microsoft
    expect(page.locator("input[name=login]")).to_have_value(ADELE)
    page.locator("#idSIButton9").click()
    expect(page).to_have_url(re.compile(r"/status$"))
    expect(page.get_by_text("Not updating: connect again.")).to_have_count(0)
    expect(page.get_by_role("button", name="Sync now")).to_be_visible()

    page.get_by_label("Also remove the MyTimetable calendar from Outlook").check()
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("heading", name="Disconnected")).to_be_visible()
    expect(page.get_by_text("was removed from Outlook")).to_be_visible()
    screenshot("connect-disconnected")
    assert_accessible(page, "connect-disconnected")


def test_admin_approval_required_then_granted_for_the_organisation(world, page, screenshot):
    connect_url = approve(world)
    page.goto(connect_url)
    sign_in(page, MEGAN, "idBtn_Back")
    expect(
        page.get_by_role("heading", name="An administrator must approve MyTimetable first")
    ).to_be_visible()
    screenshot("connect-admin-approval")
    assert_accessible(page, "connect-admin-approval")
    forwarded = page.locator("#forward").inner_text()
    consent_page = re.search(r"(http://\S+/organisation-consent)", forwarded).group(1)

    page.goto(consent_page)
    page.get_by_role("button", name="Approve at Microsoft").click()
    page.locator("input[name=login]").fill("admin@contoso.edu")
    page.locator("#idBtn_Accept").click()
    expect(page.get_by_role("heading", name="Approved for everyone")).to_be_visible()
    assert_accessible(page, "connect-organisation-approved")

    page.goto(connect_url)
    sign_in(page, MEGAN)
    expect(page.get_by_text("Megan Bowen")).to_be_visible()


def test_two_users_in_separate_browsers_never_see_each_other(world, browser):
    world.registration.admin_consented = True
    connect_url = approve(world)
    contexts = [browser.new_context(ignore_https_errors=True) for _ in range(2)]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.goto(connect_url)
        page.get_by_role("button", name="Sign in with Microsoft").click()
    for page, login in zip(pages, (ADELE, MEGAN), strict=True):
        page.locator("input[name=login]").fill(login)
    for page in pages:
        page.locator("#idSIButton9").click()
    expect(pages[0].get_by_text("Adele Vance")).to_be_visible()
    expect(pages[1].get_by_text("Megan Bowen")).to_be_visible()
    pages[0].reload()
    pages[1].reload()
    assert "Megan" not in pages[0].content() and "Adele" not in pages[1].content()
    for context in contexts:
        context.close()


def test_administrator_provisions_a_list_with_one_bad_address(world, page, screenshot):
    world.registration.admin_consented = True
    approve(world, method="application", security_group_email="mytimetable@contoso.edu",
            group_scope_method="access_policy")  # fmt: skip
    open_link(page, world.links["managed"])
    page.get_by_role("link", name="Add the mailboxes to synchronise").click()
    page.get_by_label("Mailboxes (one address per line)").fill(
        f"{ADELE}\n{MEGAN}\nalex.wilber@contoso.edu"
    )
    page.get_by_role("button", name="Add these mailboxes").click()
    expect(page.get_by_text("Added 2, 1 refused.")).to_be_visible()
    refused = page.locator("table.refused")
    expect(refused).to_contain_text("alex.wilber@contoso.edu")
    expect(refused).to_contain_text("outside the security group")
    screenshot("provision-mailboxes")
    assert_accessible(page, "provision-mailboxes")
