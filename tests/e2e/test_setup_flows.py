"""Administrators walk the whole wizard in headless Chromium, verified live against the
stand-ins of Microsoft's identity platform and Graph on 127.0.0.1."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.models import Configuration, Institution
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import CLIENT, OTHER_CLIENT, TENANT_GUID, enter_ids, walk_to_tenant
from tests.javaproperties import read

pytestmark = pytest.mark.e2e


def test_managed_application_with_security_group_verifies_and_submits(world, page, screenshot):
    world.registration.admin_consented = True
    world.registration.policy_mailboxes = {"adele.vance@contoso.edu", "megan.bowen@contoso.edu"}
    walk_to_tenant(page, world.links["managed"], "Application permissions", group="access_policy")
    enter_ids(page, group="mytimetable@contoso.edu")

    page.get_by_label("Test mailbox").fill("adele.vance@contoso.edu")
    page.get_by_label("Mailbox outside the group").fill("alex.wilber@contoso.edu")
    page.get_by_role("button", name="Run the checks").click()
    expect(page.get_by_text("Every check passed")).to_be_visible()
    chain = page.locator(".chain .link-passed .link-title")
    expect(chain).to_have_count(6)
    expect(page.get_by_text("outside mytimetable@contoso.edu, was refused")).to_be_visible()
    screenshot("step5-verify-application-passed")
    assert_accessible(page, "step5-verify-application-passed")

    page.get_by_role("link", name="Continue").last.click()
    expect(page.get_by_role("heading", name="Review and finish")).to_be_visible()
    screenshot("step6-review-managed")
    assert_accessible(page, "step6-review-managed")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name="Submitted – thank you")).to_be_visible()
    with world.app.app_context():
        assert (
            db.session.query(Configuration)
            .join(Institution)
            .filter_by(name="Example University")
            .one()
            .status
            == "submitted"
        )


def test_failing_checks_name_the_cause_and_the_step_to_go_back_to(world, page, screenshot):
    walk_to_tenant(page, world.links["managed"], "Application permissions")
    enter_ids(page, client=OTHER_CLIENT)
    page.get_by_label("Test mailbox").fill("adele.vance@contoso.edu")
    page.get_by_role("button", name="Run the checks").click()
    failure = page.locator(".link-failed")
    expect(failure).to_contain_text("Application found in the tenant")
    expect(failure).to_contain_text("AADSTS700016")
    expect(failure).to_contain_text("The application was not found in this tenant.")
    screenshot("step5-verify-application-not-found")
    assert_accessible(page, "step5-verify-application-not-found")
    failure.get_by_role("link", name="Go to step 4: Tenant and application").click()

    enter_ids(page, client=CLIENT)
    world.registration.certificates.clear()  # the certificate was never uploaded
    page.get_by_role("button", name="Check again").click()
    failure = page.locator(".link-failed")
    expect(failure).to_contain_text("Certificate accepted")
    expect(failure).to_contain_text("AADSTS700027")
    expect(failure.get_by_role("link", name="Go to step 2: Certificate")).to_be_visible()

    world.registration.certificates.append(world.vendor_pem)
    page.get_by_role("link", name="Tenant and application").first.click()
    enter_ids(page, tenant="nonexistent.example")
    page.get_by_role("button", name="Check again").click()
    expect(page.locator(".link-failed")).to_contain_text("AADSTS90002")
    expect(page.locator(".link-unchecked")).to_have_count(5)


def test_token_without_permission_and_mailbox_outside_policy_are_explained(world, page):
    walk_to_tenant(page, world.links["managed"], "Application permissions", group="access_policy")
    enter_ids(page, group="mytimetable@contoso.edu")
    page.get_by_label("Test mailbox").fill("alex.wilber@contoso.edu")
    page.get_by_label("Mailbox outside the group").fill("megan.bowen@contoso.edu")
    page.get_by_role("button", name="Run the checks").click()
    expect(page.locator(".link-failed")).to_contain_text("Calendars.ReadWrite permission granted")
    expect(page.locator(".link-failed")).to_contain_text("Grant admin consent")

    world.registration.admin_consented = True
    world.registration.policy_mailboxes = {"megan.bowen@contoso.edu"}
    page.get_by_role("button", name="Check again").click()
    failure = page.locator(".link-failed")
    expect(failure).to_contain_text("Mailbox reachable")
    expect(failure).to_contain_text("outside the security group")
    expect(failure).to_contain_text("ErrorAccessDenied")


def test_on_premises_application_verifies_and_downloads_the_configuration(world, page, screenshot):
    world.registration.admin_consented = True
    walk_to_tenant(page, world.links["on_premises"], "Application permissions", generate=True)
    world.upload_generated_certificate("Example College")
    enter_ids(page, tenant=TENANT_GUID)
    page.get_by_label("Test mailbox").fill("adele.vance@contoso.edu")
    page.get_by_role("button", name="Run the checks").click()
    expect(page.get_by_text("Every check passed")).to_be_visible()
    expect(page.locator(".link-skipped")).to_contain_text("Access limited to the security group")

    page.get_by_role("link", name="Continue").last.click()
    screenshot("step6-review-on-premises")
    assert_accessible(page, "step6-review-on-premises")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the MyTimetable configuration").click()
    text = Path(download.value.path()).read_text()
    properties = dict(read(text))
    assert properties["office365.method"] == "application"
    assert properties["office365.tenantId"] == TENANT_GUID
    assert properties["office365.clientId"] == CLIENT
    assert properties["office365.authority"] == f"{world.identity.url}/{TENANT_GUID}"
    assert properties["office365.scopes"] == "https://graph.microsoft.com/.default"
    assert properties["office365.certificate.keyFile"] == "mytimetable-example-college.pfx"
    assert "PRIVATE" not in text


def test_delegated_admin_signs_in_grants_consent_and_submits(world, page, screenshot):
    walk_to_tenant(page, world.links["managed"], "Delegated permissions")
    enter_ids(page)
    screenshot("step5-verify-delegated")
    assert_accessible(page, "step5-verify-delegated")

    # Microsoft's default policy: users cannot consent; a colleague who is no
    # administrator is stopped at approval (application-consent-experience.md).
    page.get_by_role("button", name="Sign in with Microsoft and check").click()
    page.locator("input[name=login]").fill("megan.bowen@contoso.edu")
    page.locator("#idSIButton9").click()
    page.locator("#idBtn_Back").click()
    page.wait_for_url(re.compile(r"/setup/verify$"))
    failure = page.locator(".link-failed")
    expect(failure).to_contain_text("Administrator signed in and consented")
    expect(failure).to_contain_text("AADSTS90094")

    # One flow: grant at Microsoft, straight on to the sign-in, back to one result.
    page.get_by_role("button", name="Grant for the whole organisation").click()
    page.locator("input[name=login]").fill("admin@contoso.edu")
    page.locator("#idBtn_Accept").click()
    page.locator("input[name=login]").fill("admin@contoso.edu")
    page.locator("#idSIButton9").click()
    page.wait_for_url(re.compile(r"/setup/verify$"))
    assert world.registration.admin_consented
    expect(page.get_by_text("Every check passed")).to_be_visible()
    expect(page.locator(".notice")).to_have_count(1)
    expect(page.get_by_text("admin@contoso.edu signed in through the redirect URI")).to_be_visible()
    screenshot("step5-verify-delegated-passed")
    assert_accessible(page, "step5-verify-delegated-passed")
    page.get_by_role("link", name="Continue").last.click()
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name="Submitted – thank you")).to_be_visible()


def test_delegated_sign_in_from_another_tenant_is_explained(world, page):
    world.registration.admin_consented = True
    walk_to_tenant(page, world.links["managed"], "Delegated permissions")
    enter_ids(page)
    page.get_by_role("button", name="Sign in with Microsoft and check").click()
    page.locator("input[name=login]").fill("guest@fabrikam.com")
    page.locator("#idSIButton9").click()
    page.wait_for_url(re.compile(r"/setup/verify$"))
    failure = page.locator(".link-failed")
    expect(failure).to_contain_text("AADSTS50020")
    expect(failure).to_contain_text("belongs to another tenant")


def test_declined_admin_consent_is_explained(world, page):
    walk_to_tenant(page, world.links["managed"], "Delegated permissions")
    enter_ids(page)
    page.get_by_role("button", name="Grant for the whole organisation").click()
    page.locator("input[name=login]").fill("admin@contoso.edu")
    page.locator("#idBtn_Back").click()
    page.wait_for_url(re.compile(r"/setup/verify$"))
    expect(page.locator(".link-failed")).to_contain_text("AADSTS65004")
    expect(page.locator(".notice")).to_have_count(1)
    expect(page.locator(".notice-error")).to_contain_text("The chain breaks")
    assert not world.registration.admin_consented


def test_on_premises_delegated_verifies_by_sign_in_and_downloads_the_configuration(world, page):
    world.registration.admin_consented = True
    walk_to_tenant(page, world.links["on_premises"], "Delegated permissions", generate=True)
    world.upload_generated_certificate("Example College")
    enter_ids(page)
    page.get_by_role("button", name="Sign in with Microsoft and check").click()
    page.locator("input[name=login]").fill("megan.bowen@contoso.edu")
    page.locator("#idSIButton9").click()
    page.wait_for_url(re.compile(r"/setup/verify$"))
    expect(page.get_by_text("Every check passed")).to_be_visible()
    page.get_by_role("link", name="Continue").last.click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the MyTimetable configuration").click()
    properties = dict(read(Path(download.value.path()).read_text()))
    assert properties["office365.method"] == "delegated"
    assert properties["office365.scopes"] == "https://graph.microsoft.com/.default offline_access"
