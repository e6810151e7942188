"""Every page works on a phone and at 200 % zoom: no horizontal scrolling at 320 and 390 px
wide, nor at 683 px (a 1366 px screen zoomed to 200 %), in English and in Dutch; and axe
finds nothing serious or critical at 390 px nor at 1280 px, in either language.

The pages are those test_accessibility.py reaches, put in the same states by the same walks
(every_page.py). A page that answers a GET is checked in both languages (the switcher's
cookie, then a reload); a page that answers a form (a refused sign-in, the enrolment steps,
the expired form) in English only.
"""

import pytest
from playwright.sync_api import expect

from portal.i18n import COOKIE
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import CLIENT, TENANT, open_link, sign_in_to_console
from tests.e2e.every_page import (
    PASSWORD,
    STAFF,
    configure,
    make_api_key,
    submitted_for_review,
    walk_console_confirmations,
    walk_end_user_pages,
    walk_home_and_error_pages,
    walk_mailboxes,
    walk_results,
    walk_rotation,
    walk_wizard,
)

pytestmark = pytest.mark.e2e

WIDTHS = (320, 390, 683)
AXE_WIDTH = 390
OVERFLOW = """() => {
  const width = window.innerWidth;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
    + (typeof e.className === "string" && e.className ? "." + e.className.replace(/ /g, ".") : "");
  const wide = [...document.querySelectorAll("body, body *")]
    .filter((e) => e.getBoundingClientRect().right > width + 1
      || e.scrollWidth > e.clientWidth + 1)
    .map((e) => `${name(e)} (${Math.round(e.getBoundingClientRect().right)}/${e.scrollWidth})`);
  return {scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 8)};
}"""


def fits(page, name: str) -> None:
    """At each width: no horizontal scrolling; at 390 px and at a laptop's 1280 px, axe's
    serious and critical rules."""
    # A page reached by a click may still be loading its stylesheet: measured without it,
    # any page is too wide.
    page.wait_for_load_state()
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        found = page.evaluate(OVERFLOW)
        assert found["scroll"] <= found["width"], (
            f"{name} at {width} px scrolls sideways ({found['scroll']} px wide): {found['wide']}"
        )
        if width == AXE_WIDTH:
            assert_accessible(page, f"{name} at {width} px")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert_accessible(page, f"{name} at 1280 px")


def set_language(page, code: str) -> None:
    url = page.url.split("/", 3)
    page.context.add_cookies([{"name": COOKIE, "value": code, "url": "/".join(url[:3])}])


def check(page, url: str | None, name: str, status: int = 200) -> None:
    """Open ``url`` (or keep the page as it is) and check it in English, then in Dutch."""
    if url is not None:
        response = page.goto(url)
        assert response.status == status, f"{url} answered {response.status}"
    fits(page, f"{name} (en)")
    set_language(page, "nl")
    try:
        response = page.reload()
        assert response.status == status
        expect(page.locator("html")).to_have_attribute("lang", "nl")
        fits(page, f"{name} (nl)")
    finally:
        set_language(page, "en")
        page.reload()


@pytest.mark.parametrize("hosting", ["managed", "on_premises"])
@pytest.mark.parametrize("method", ["application", "delegated"])
def test_wizard_steps_fit(world, page, hosting, method):
    walk_wizard(world, page, hosting, method, check)


def test_stepper_says_which_step_on_a_phone(world, page, screenshot):
    configure(world, "managed", method="application", tenant_id=TENANT, client_id=CLIENT,
              step_reached=3)  # fmt: skip
    open_link(page, world.links["managed"])
    page.goto(f"{world.portal.url}/setup/register")
    stepper = page.get_by_role("navigation", name="Setup steps")
    page.set_viewport_size({"width": 390, "height": 800})
    expect(stepper.get_by_text("Step 3 of 6")).to_be_visible()
    expect(stepper.get_by_role("list")).to_be_hidden()
    screenshot("narrow-register-390")
    page.set_viewport_size({"width": 1366, "height": 900})
    expect(stepper.get_by_text("Step 3 of 6")).to_be_hidden()
    expect(stepper.get_by_role("list")).to_be_visible()
    set_language(page, "nl")
    page.reload()
    page.set_viewport_size({"width": 390, "height": 800})
    expect(page.locator(".stepper-compact")).to_contain_text("Stap 3 van 6")
    expect(page.locator(".stepper-compact")).to_be_visible()


def test_end_user_pages_fit(world, page):
    walk_end_user_pages(world, page, check)


def test_console_pages_fit(world, page, screenshot):
    submitted_for_review(world)
    check(page, f"{world.portal.url}/support/", "support-sign-in")  # in Dutch too
    sign_in_to_console(page, world.portal.url, STAFF, PASSWORD, fits)
    check(page, None, "support-queue")
    page.set_viewport_size({"width": 390, "height": 800})
    # the console's navigation wraps inside the header, every link on screen
    for name in ("Queue", "Institutions", "Certificates", "Outbox"):
        link = page.get_by_role("navigation", name="Console").get_by_role("link", name=name)
        expect(link).to_be_in_viewport()
    expect(page.get_by_role("navigation", name="Language")).to_be_in_viewport()
    screenshot("narrow-support-queue-390")
    for width in (683, 1366):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(f"narrow-support-queue-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Example University").click()
    check(page, None, "support-configuration-submitted")
    configuration = page.url
    for name in ("institutions", "certificates", "outbox"):
        check(page, f"{world.portal.url}/support/{name}", f"support-{name}")
        page.set_viewport_size({"width": 390, "height": 800})
        screenshot(f"narrow-support-{name}-390")
        page.set_viewport_size({"width": 1280, "height": 900})
    walk_console_confirmations(world, page, configuration, check)
    make_api_key(world, page)
    fits(page, "support-api-key-made")
    check(page, page.url, "support-api-keys")
    page.set_viewport_size({"width": 390, "height": 800})
    screenshot("narrow-support-api-keys-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.context.clear_cookies()  # a later sign-in asks for the app's code
    page.goto(f"{world.portal.url}/support/")
    page.get_by_label("E-mail address").fill(STAFF)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Support console")).to_be_visible()
    check(page, page.url, "support-second-factor")


def test_mailboxes_page_fits(world, page):
    walk_mailboxes(world, page, check, fits)


def shooting(screenshot):
    """``check``, with screenshots at a phone's and a laptop's width first (a reload would
    lose the flashed notice), to look at."""

    def check_and_shoot(page, url, name, status=200):
        if url is not None:
            page.goto(url)
        for width in (390, 1366):
            page.set_viewport_size({"width": width, "height": 900})
            screenshot(f"narrow-{name}-{width}")
        check(page, None, name, status)

    return check_and_shoot


def test_pages_with_results_fit(world, page, screenshot):
    walk_results(world, page, shooting(screenshot))


def test_rotation_page_fits(world, page, screenshot):
    walk_rotation(world, page, shooting(screenshot))


def test_home_and_error_pages_fit(world, page):
    walk_home_and_error_pages(world, page, check, fits)


def test_copy_button_announces_copied(world, page):
    configure(world, "managed", method="application", tenant_id=TENANT, client_id=CLIENT,
              step_reached=3)  # fmt: skip
    open_link(page, world.links["managed"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{world.portal.url}/setup/register")
    status = page.locator("#copy-status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_attribute("role", "status")
    page.get_by_role("button", name="Copy permission name").first.click()
    expect(status).to_have_text("Copied")
