"""Every page of the portal passes axe-core's serious and critical rules.

The other browser tests check the pages they walk through; these tests reach the rest
directly, with the configuration put in the state that shows each page (the walks are in
every_page.py, shared with test_narrow_screens.py).
"""

import pytest
from playwright.sync_api import expect

from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import sign_in_to_console
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


def check(page, url: str | None, name: str, status: int = 200) -> None:
    """Open ``url`` (or keep the page as it is) and run axe on it."""
    if url is not None:
        response = page.goto(url)
        assert response.status == status, f"{url} answered {response.status}"
    assert_accessible(page, name)


@pytest.mark.parametrize("hosting", ["managed", "on_premises"])
@pytest.mark.parametrize("method", ["application", "delegated"])
def test_every_wizard_step_and_finished_state(world, page, hosting, method):
    walk_wizard(world, page, hosting, method, check)
    if hosting == "managed":
        configure(world, hosting, status="approved")
        check(page, f"{world.portal.url}/setup/review", f"review-approved-{method}")


def test_end_user_pages(world, page):
    walk_end_user_pages(world, page, check)


def test_mailboxes_page_and_its_removal_confirmation(world, page):
    walk_mailboxes(world, page, check, assert_accessible)


def test_pages_with_results(world, page):
    walk_results(world, page, check)


def test_support_console_pages(world, page):
    submitted_for_review(world)
    sign_in_to_console(page, world.portal.url, STAFF, PASSWORD, assert_accessible)
    assert_accessible(page, "support-queue")
    page.get_by_role("link", name="Example University").click()
    assert_accessible(page, "support-configuration-submitted")
    configuration = page.url
    for name in ("institutions", "certificates", "outbox"):
        check(page, f"{world.portal.url}/support/{name}", f"support-{name}")
    walk_console_confirmations(world, page, configuration, check)
    make_api_key(world, page)
    assert_accessible(page, "support-api-keys")
    page.context.clear_cookies()  # a later sign-in asks for the app's code
    page.goto(f"{world.portal.url}/support/")
    page.get_by_label("E-mail address").fill(STAFF)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Support console")).to_be_visible()
    assert_accessible(page, "support-second-factor")


def test_rotation_page(world, page):
    walk_rotation(world, page, check)


def test_home_and_error_pages(world, page):
    walk_home_and_error_pages(world, page, check, assert_accessible)
