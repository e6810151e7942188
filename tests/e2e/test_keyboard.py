"""The administrator's wizard and the support console work with the keyboard alone: Tab,
Shift+Tab, Enter, Space and the arrow keys, never the mouse. Every element that takes focus
on the way shows a visible outline."""

import re

import pyotp
import pytest
from playwright.sync_api import expect

from portal import staff
from portal.extensions import db
from tests.e2e.conftest import CLIENT, TENANT, open_link

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"

# The focused element: the first line of its name, and whether its focus is drawn.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const label = el.labels && el.labels.length ? el.labels[0].innerText : "";
  const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
    || style.boxShadow !== "none";
  return {
    name: (el.getAttribute("aria-label") || label || el.innerText || el.value || "")
      .trim().split("\\n")[0],
    tag: el.tagName.toLowerCase(), id: el.id, ring: ring, checked: !!el.checked,
  };
}"""


def focused(page) -> dict | None:
    return page.evaluate(FOCUSED)


def tab_to(page, name, *, back: bool = False, limit: int = 80) -> dict:
    """Press Tab (or Shift+Tab) until the focused element is named ``name`` (a string to
    match exactly or a pattern), checking on the way that each focus is visible."""
    pattern = name if isinstance(name, re.Pattern) else re.compile(re.escape(name) + r"\Z")
    seen = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        element = focused(page)
        if element is None:
            continue
        assert element["ring"], f"no visible focus on {element} ({page.url})"
        if pattern.match(element["name"]):
            return element
        seen.append(element["name"][:40])
    raise AssertionError(f"{name!r} not reached by keyboard on {page.url}; focus went to {seen}")


def test_skip_link_is_the_first_tab_stop_and_moves_to_the_content(world, page, screenshot):
    open_link(page, world.links["managed"])
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert focused(page)["ring"]
    screenshot("keyboard-skip-link")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)")


def test_administrator_completes_the_wizard_and_support_approves_by_keyboard(
    world, page, browser, screenshot
):
    world.registration.admin_consented = True
    open_link(page, world.links["managed"])
    expect(page.get_by_role("heading", name="How may MyTimetable reach calendars?")).to_be_visible()

    # Step 1: the radios take one Tab stop; the arrow keys move the choice, Space makes it.
    first = tab_to(page, "Application permissions")
    assert first["tag"] == "input"
    screenshot("keyboard-focus-method")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_label("Delegated permissions")).to_be_checked()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Space")
    expect(page.get_by_label("Application permissions")).to_be_checked()
    # The group question appears under it: all calendars here.
    tab_to(page, "All calendars in the tenant")
    page.keyboard.press("Space")
    expect(page.get_by_label("All calendars in the tenant")).to_be_checked()
    tab_to(page, "Which fits you?")
    page.keyboard.press("Enter")
    expect(
        page.get_by_role("cell", name="Application, limited to a security group")
    ).to_be_visible()
    tab_to(page, "Save and continue")
    tab_to(page, "Application permissions", back=True)
    expect(page.get_by_label("Application permissions")).to_be_focused()
    tab_to(page, "Save and continue")
    page.keyboard.press("Enter")

    # Step 2 (managed hosting: MyTimetable's certificate) and step 3.
    expect(
        page.get_by_role("heading", name="The certificate MyTimetable signs in with")
    ).to_be_visible()
    tab_to(page, "Continue")
    page.keyboard.press("Enter")
    expect(
        page.get_by_role("heading", name="Register MyTimetable in Microsoft Entra ID")
    ).to_be_visible()
    tab_to(page, re.compile("I have registered the app"))
    page.keyboard.press("Enter")

    # Step 4: type the IDs; Enter in a field submits the form.
    expect(page.get_by_role("heading", name="Tenant and application")).to_be_visible()
    tab_to(page, "Tenant ID")
    page.keyboard.type(TENANT)
    tab_to(page, "Application (client) ID")
    page.keyboard.type(CLIENT)
    page.keyboard.press("Enter")

    # Step 5: the checks run against the stand-ins.
    expect(page.get_by_role("heading", name="Verify the connection")).to_be_visible()
    tab_to(page, "Test mailbox")
    page.keyboard.type("adele.vance@contoso.edu")
    tab_to(page, "Run the checks")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Every check passed")).to_be_visible()
    tab_to(page, "Continue to the review")
    page.keyboard.press("Enter")

    # Step 6: submit.
    expect(page.get_by_role("heading", name="Review and finish")).to_be_visible()
    tab_to(page, "Submit")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Submitted – thank you")).to_be_visible()

    # Support signs in and approves, by keyboard too.
    with world.app.app_context():
        staff.create_staff("support@mytimetable.example", PASSWORD)
        db.session.commit()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    support = context.new_page()
    support.goto(f"{world.portal.url}/support/")
    tab_to(support, "E-mail address")
    support.keyboard.type("support@mytimetable.example")
    tab_to(support, "Password")
    support.keyboard.type(PASSWORD)
    support.keyboard.press("Enter")
    expect(support.get_by_role("heading", name="Add an authenticator app")).to_be_visible()
    secret = support.locator("#totp-secret").inner_text()
    tab_to(support, "Code from the app")
    support.keyboard.type(pyotp.TOTP(secret).now())
    support.keyboard.press("Enter")
    expect(support.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    tab_to(support, "I have saved them: go to the console")
    support.keyboard.press("Enter")
    expect(support.get_by_role("heading", name="Configurations")).to_be_visible()
    tab_to(support, "Example University")
    screenshot("keyboard-focus-support-queue", of=support)
    support.keyboard.press("Enter")
    expect(support.get_by_role("heading", name="Example University")).to_be_visible()
    # The task list's link leads to what is missing: the timetable feed.
    tab_to(support, "Timetable feed address set")
    support.keyboard.press("Enter")
    expect(support).to_have_url(re.compile("#feed$"))
    tab_to(support, "Timetable feed address")
    support.keyboard.type("https://mytimetable.example.edu/ical?user={upn}")
    support.keyboard.press("Enter")
    expect(support.get_by_text("The timetable feed address was saved.")).to_be_visible()
    tab_to(support, "Approve")
    support.keyboard.press("Enter")
    expect(
        support.get_by_role("heading", name=re.compile("^Approve the configuration"))
    ).to_be_visible()
    tab_to(support, "Yes, approve")
    support.keyboard.press("Enter")
    expect(support.get_by_text("Approved:")).to_be_visible()
    context.close()

    page.reload()
    expect(page.get_by_role("heading", name="The connection is active")).to_be_visible()
