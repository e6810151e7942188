"""The administrator's journey in the order it is walked: the start page, the group decision
before the instructions it changes, results that never look current after a change, and
error summaries that take the focus."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import (
    OTHER_CLIENT,
    choose_method,
    enter_ids,
    open_link,
    walk_to_tenant,
)

pytestmark = pytest.mark.e2e

REGISTER = "Register MyTimetable in Microsoft Entra ID"


def to_register(page, link, method_label, group=None):
    open_link(page, link)
    choose_method(page, method_label, group)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name=REGISTER)).to_be_visible()


def step_titles(page) -> list[str]:
    return page.locator("ol.instructions > li > h2").all_inner_texts()


def pass_every_check(world, page):
    """Walk to step 5 with application permissions for all calendars, consent granted, and
    run the checks: every one passes."""
    world.registration.admin_consented = True
    walk_to_tenant(page, world.links["managed"], "Application permissions")
    enter_ids(page)
    page.get_by_label("Test mailbox").fill("adele.vance@contoso.edu")
    page.get_by_role("button", name="Run the checks").click()
    expect(page.get_by_text("Every check passed")).to_be_visible()


def test_the_start_page_says_who_how_long_and_what_then_starts_step_1(world, page, screenshot):
    open_link(page, world.links["managed"], start=False)
    expect(page).to_have_url(re.compile(r"/setup/start$"))
    expect(page.get_by_role("heading", name="Who should do this")).to_be_visible()
    roles = page.locator("table.roles")
    for role in ("Privileged Role Administrator", "Exchange Administrator", "Cloud Application"):
        expect(roles).to_contain_text(role)
    expect(page.get_by_role("heading", name="How long it takes")).to_be_visible()
    expect(page.get_by_role("heading", name="What to have at hand")).to_be_visible()
    expect(page.locator(".stepper")).to_have_count(0)
    screenshot("start-managed")
    assert_accessible(page, "start-managed")
    page.get_by_role("button", name="Start now").click()
    expect(page.get_by_role("heading", name="How may MyTimetable reach calendars?")).to_be_visible()


def test_an_administrator_under_way_is_not_sent_through_the_start_page_again(world, page):
    walk_to_tenant(page, world.links["managed"], "Application permissions")
    open_link(page, world.links["managed"], start=False)
    expect(page).to_have_url(re.compile(r"/setup/tenant$"))


def test_step_1_asks_about_the_group_only_for_application_permissions(world, page, screenshot):
    open_link(page, world.links["managed"])
    question = page.get_by_role("group", name=re.compile("which calendars may MyTimetable reach"))
    expect(question).to_be_hidden()
    page.get_by_label("Application permissions").check()
    expect(question).to_be_visible()
    how = page.get_by_role("group", name="How to limit access to the group")
    expect(how).to_be_hidden()
    page.get_by_label("Only the members of one mail-enabled security group").check()
    expect(how).to_be_visible()
    expect(page.get_by_label("RBAC for Applications")).to_be_checked()
    screenshot("step1-method-group")
    assert_accessible(page, "step1-method-group")
    page.get_by_label("Delegated permissions").check()
    expect(question).to_be_hidden()


def test_all_calendars_get_admin_consent_and_no_group_steps(world, page, screenshot):
    to_register(page, world.links["managed"], "Application permissions")
    titles = step_titles(page)
    assert "Grant admin consent" in titles and "Add the API permissions" in titles
    assert "Limit access to the security group" not in titles
    assert titles.index("Add the API permissions") < titles.index("Grant admin consent")
    expect(page.get_by_text("New-ManagementRoleAssignment")).to_have_count(0)
    screenshot("step3-register-all-calendars")
    page.get_by_role("button", name=re.compile("I have registered the app")).click()
    expect(page.get_by_label("Tenant ID")).to_be_visible()
    expect(page.get_by_label("Mail-enabled security group")).to_have_count(0)


def test_a_group_with_rbac_never_asks_for_tenant_wide_consent(world, page, screenshot):
    to_register(page, world.links["managed"], "Application permissions", group="rbac")
    titles = step_titles(page)
    assert "Grant admin consent" not in titles and "Add the API permissions" not in titles
    assert "Add no calendar permission in Entra" in titles
    assert titles[-2:] == ["Limit access to the security group", "Note the two IDs"]
    expect(page.locator(".instructions")).not_to_contain_text("New-ApplicationAccessPolicy")
    expect(page.locator(".instructions")).not_to_contain_text("revoke")
    screenshot("step3-register-group-rbac")
    assert_accessible(page, "step3-register-group-rbac")
    page.get_by_role("button", name=re.compile("I have registered the app")).click()
    expect(page.get_by_label("Mail-enabled security group")).to_be_visible()
    expect(page.get_by_label("RBAC for Applications")).to_have_count(0)  # asked in step 1


def test_a_group_with_an_access_policy_grants_consent_then_narrows_it(world, page):
    to_register(page, world.links["managed"], "Application permissions", group="access_policy")
    titles = step_titles(page)
    consent = titles.index("Grant admin consent")
    assert titles.index("Limit access to the security group") == consent + 1
    expect(page.locator(".instructions")).to_contain_text("New-ApplicationAccessPolicy")
    expect(page.locator(".instructions")).not_to_contain_text("New-ManagementRoleAssignment")


def test_delegated_permissions_show_no_group_steps(world, page):
    to_register(page, world.links["managed"], "Delegated permissions")
    titles = step_titles(page)
    assert "Limit access to the security group" not in titles
    assert "Grant admin consent" not in titles and "Choose how users consent" in titles


def test_results_from_before_a_change_are_marked_and_block_the_submission(world, page, screenshot):
    pass_every_check(world, page)
    verify_step = page.locator(".stepper li").nth(4)
    page.get_by_role("link", name="Tenant and application").first.click()
    expect(verify_step).to_contain_text("(done)")
    enter_ids(page, client=OTHER_CLIENT)
    expect(page.locator(".badge-stale").first).to_have_text("Checked before your last change")
    expect(page.locator(".badge-stale")).to_have_count(6)
    expect(page.get_by_text("These results were checked before your last change")).to_be_visible()
    expect(page.get_by_text("Every check passed")).to_have_count(0)
    screenshot("step5-verify-stale")
    assert_accessible(page, "step5-verify-stale")

    page.goto(page.url.replace("/setup/verify", "/setup/review"))
    expect(verify_step.get_by_role("link")).not_to_contain_text("(done)")
    submit = page.get_by_role("button", name="Submit")
    expect(submit).to_be_disabled()
    expect(submit).to_have_attribute("aria-describedby", "submit-why")
    expect(page.locator("#submit-why")).to_contain_text("every check in step 5 has passed")
    expect(page.locator(".review .badge-stale").first).to_be_visible()
    screenshot("step6-review-stale")

    page.get_by_role("link", name=re.compile("Verify")).first.click()
    page.get_by_role("button", name="Check again").click()
    expect(page.locator(".badge-stale")).to_have_count(0)
    expect(page.locator(".link-failed")).to_contain_text("AADSTS700016")  # the new client ID


def test_saving_unchanged_values_keeps_results_and_a_new_group_makes_them_old(world, page):
    pass_every_check(world, page)
    page.get_by_role("link", name=re.compile("Tenant and application")).first.click()
    page.get_by_role("button", name="Save and continue").click()  # nothing changed
    expect(page.get_by_text("Every check passed")).to_be_visible()
    page.get_by_label("Test mailbox").fill("megan.bowen@contoso.edu")
    page.get_by_role("button", name="Check again").click()
    expect(page.get_by_text("Every check passed")).to_be_visible()  # a new run, current

    page.get_by_role("link", name=re.compile("Method")).first.click()
    choose_method(page, "Application permissions", group="rbac")  # a group now
    expect(page.locator(".stepper li").nth(4).get_by_role("link")).to_have_count(0)
    page.get_by_role("link", name=re.compile("Tenant and application")).first.click()
    page.get_by_label("Mail-enabled security group").fill("mytimetable@contoso.edu")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.locator(".badge-stale").first).to_be_visible()
    expect(page.get_by_label("Mailbox outside the group")).to_be_visible()


def test_a_failure_to_fix_on_step_5_has_no_link_to_step_5(world, page):
    world.registration.admin_consented = True
    world.registration.policy_mailboxes = {"megan.bowen@contoso.edu"}
    walk_to_tenant(page, world.links["managed"], "Application permissions", group="access_policy")
    enter_ids(page, group="mytimetable@contoso.edu")
    page.get_by_label("Test mailbox").fill("alex.wilber@contoso.edu")
    page.get_by_label("Mailbox outside the group").fill("megan.bowen@contoso.edu")
    page.get_by_role("button", name="Run the checks").click()
    failure = page.locator(".link-failed")
    expect(failure).to_contain_text("outside the security group")
    expect(failure.get_by_role("link")).to_have_count(0)


def test_step_1_error_summary_takes_the_focus_and_links_to_the_question(world, page, screenshot):
    open_link(page, world.links["managed"])
    page.get_by_role("button", name="Save and continue").click()
    expect(page).to_have_title(re.compile(r"^Error: Step 1"))
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary).to_have_attribute("role", "alert")
    expect(summary.get_by_role("heading", name="There is a problem")).to_be_visible()
    screenshot("step1-method-error")
    assert_accessible(page, "step1-method-error")
    summary.get_by_role("link", name="Choose how MyTimetable may reach calendars.").click()
    expect(page.locator("#method-0")).to_be_focused()

    page.get_by_label("Application permissions").check()
    page.get_by_role("button", name="Save and continue").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    link = summary.get_by_role("link", name=re.compile("Choose all calendars"))
    link.click()
    expect(page.locator("#mailbox_scope-0")).to_be_focused()


def test_step_4_error_summary_lists_each_field_in_error(world, page, screenshot):
    walk_to_tenant(page, world.links["managed"], "Application permissions", group="rbac")
    page.get_by_label("Tenant ID").fill("not a tenant")
    page.get_by_label("Application (client) ID").fill("1234")
    page.get_by_role("button", name="Save and continue").click()
    expect(page).to_have_title(re.compile(r"^Error: Step 4"))
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_count(3)  # tenant, client ID, group
    expect(page.get_by_text("Please correct the fields marked below")).to_have_count(0)
    screenshot("step4-tenant-error-summary")
    summary.get_by_role("link", name=re.compile("is a GUID")).click()
    expect(page.get_by_label("Application (client) ID")).to_be_focused()
