"""An administrator submits, support returns it, the administrator fixes and resubmits,
support approves: in two browsers, with the audit trail checked at the end."""

import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from playwright.sync_api import expect

from portal import staff
from portal.extensions import db
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import TENANT_GUID, enter_ids, open_link, sign_in_to_console, walk_to_tenant

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


@pytest.fixture
def support_page(browser, world):
    with world.app.app_context():
        staff.create_staff("support@mytimetable.example", PASSWORD)
        db.session.commit()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in_to_console(page, world.portal.url, "support@mytimetable.example", PASSWORD)
    yield page
    context.close()


def submit_application_configuration(world, page):
    """The administrator walks the wizard for application permissions and submits."""
    world.registration.admin_consented = True
    walk_to_tenant(page, world.links["managed"], "Application permissions")
    enter_ids(page)
    verify_and_submit(page)


def verify_and_submit(page):
    page.get_by_label("Test mailbox").fill("adele.vance@contoso.edu")
    page.get_by_role("button", name=re.compile("Run the checks|Check again")).click()
    expect(page.get_by_text("Every check passed")).to_be_visible()
    page.get_by_role("link", name="Continue").last.click()
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name="Submitted – thank you")).to_be_visible()


def test_submit_return_fix_resubmit_approve(world, page, support_page, screenshot):
    submit_application_configuration(world, page)

    support = support_page
    support.reload()
    support.get_by_role("link", name="Example University").click()
    expect(support.get_by_text("Passed").first).to_be_visible()
    support.get_by_label("Message to the administrator").fill(
        "Please enter the Directory (tenant) ID as a GUID instead of the domain."
    )
    support.get_by_label("Reopen the wizard at").select_option("tenant")
    support.get_by_role("button", name="Return to the administrator").click()
    expect(support.get_by_text("Returned to the administrator")).to_be_visible()

    open_link(page, world.links["managed"])
    expect(page).to_have_url(re.compile(r"/setup/tenant$"))
    expect(page.locator(".review-message")).to_contain_text("as a GUID instead of the domain")
    screenshot("returned-for-changes")
    assert_accessible(page, "returned-for-changes")
    enter_ids(page, tenant=TENANT_GUID)
    verify_and_submit(page)

    support.get_by_role("link", name="Queue", exact=True).click()
    screenshot("support-queue", of=support)
    assert_accessible(support, "support-queue")
    support.get_by_role("link", name="Example University").click()
    # Approve waits for what is missing: the timetable feed, which support sets.
    expect(support.get_by_role("button", name="Approve")).to_be_disabled()
    expect(support.get_by_role("button", name="Approve")).to_have_accessible_description(
        re.compile("Not done yet: Timetable feed address set")
    )
    support.get_by_role("link", name="Timetable feed address set").click()
    support.get_by_label("Timetable feed address").fill(
        "https://mytimetable.example.edu/ical?user={upn}"
    )
    support.get_by_role("button", name="Save the feed address").click()
    support.get_by_role("button", name="Approve").click()
    expect(
        support.get_by_role("heading", name="Approve the configuration of Example University?")
    ).to_be_visible()
    screenshot("support-confirm-approve", of=support)
    assert_accessible(support, "support-confirm-approve")
    support.get_by_role("button", name="Yes, approve").click()
    expect(support.get_by_text("Approved:")).to_be_visible()
    trail = support.locator("ol.audit li strong").all_inner_texts()  # the newest first
    steps = [t for t in reversed(trail) if t in ("submitted", "returned", "approved")]
    assert steps == ["submitted", "returned", "submitted", "approved"]
    screenshot("support-configuration", of=support)
    assert_accessible(support, "support-configuration")

    open_link(page, world.links["managed"])
    expect(page.get_by_role("heading", name="The connection is active")).to_be_visible()


def test_certificate_rotation_round_trip(world, page, support_page, screenshot):
    submit_application_configuration(world, page)

    support = support_page
    support.get_by_role("link", name="Certificates").click()
    support.get_by_role("button", name="Start a rotation").click()
    expect(support.get_by_text("1 institution is asked")).to_be_visible()
    support.get_by_role("button", name="Yes, start the rotation").click()
    expect(support.get_by_text("Rotation started")).to_be_visible()
    support.get_by_role("link", name="Outbox").click()
    # the link goes out in the e-mail only (no SMTP here): support makes a new one to forward
    body = support.locator(".message-body").first
    expect(body).to_contain_text("The invitation link is not kept here")
    assert "/setup/i/" not in body.inner_text()
    support.get_by_role("navigation", name="Console").get_by_role(
        "link", name="Institutions"
    ).click()
    support.get_by_role("button", name="New link for Example University").click()
    support.get_by_role("button", name="Yes, make a new link").click()
    link = support.locator("[data-copy]").first.get_attribute("data-copy")

    open_link(page, link)
    page.get_by_role("link", name="Add it to your app registration").click()
    expect(page.get_by_role("heading", name="Add MyTimetable's new certificate")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download new certificate (.cer)").click()
    page.get_by_role("button", name="Check the new certificate").click()
    expect(page.get_by_text("does not accept the new certificate yet")).to_be_visible()
    screenshot("rotation-step")
    assert_accessible(page, "rotation-step")

    der = Path(download.value.path()).read_bytes()
    world.registration.certificates.append(
        x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()
    )
    page.get_by_role("button", name="Check the new certificate").click()
    expect(page.get_by_role("heading", name="MyTimetable uses the new certificate")).to_be_visible()

    support.get_by_role("link", name="Certificates").click()
    expect(support.locator("table strong", has_text="Yes")).to_be_visible()
    screenshot("support-certificates", of=support)
    assert_accessible(support, "support-certificates")
