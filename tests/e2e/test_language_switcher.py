"""The portal in Dutch in Chromium: a Dutch browser gets Dutch pages, the switcher works
without JavaScript and brings the browser back to the same page."""

import re

import pytest
from playwright.sync_api import expect

from portal import certificates, invitations
from portal.extensions import db
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import LiveServer, open_link

pytestmark = pytest.mark.e2e


@pytest.fixture
def portal(make_app):
    """The portal on a free port with a managed institution; yields (server, invitation)."""
    app = make_app()
    server = LiveServer(app)
    app.config["EXTERNAL_URL"] = server.url
    with app.app_context():
        certificates.create_vendor_certificate(365, "test")
        institution = invitations.create_institution(
            "Example University", "managed", "a@x.edu", "test"
        )
        link = invitations.issue_invitation(institution, "test")
        db.session.commit()
    server.start()
    yield server, link
    server.stop()


@pytest.fixture
def dutch_page(browser):
    """A browser whose language is Dutch (Accept-Language: nl-NL)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="nl-NL")
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


def test_a_dutch_browser_walks_the_wizard_in_dutch(portal, dutch_page, screenshot):
    server, link = portal
    page = dutch_page
    open_link(page, link, "Installatiewizard openen")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(
        page.get_by_role("heading", name="Hoe mag MyTimetable agenda's bereiken?")
    ).to_be_visible()
    assert_accessible(page, "nl-wizard-method")
    screenshot("nl-wizard-method", of=page)
    page.get_by_label("Gedelegeerde machtigingen").check()
    page.get_by_role("button", name="Opslaan en doorgaan").click()
    page.get_by_role("button", name="Doorgaan").click()
    expect(
        page.get_by_role("heading", name="Registreer MyTimetable in Microsoft Entra ID")
    ).to_be_visible()
    expect(page.get_by_text("Alleen accounts in deze organisatiemap")).to_be_visible()
    assert_accessible(page, "nl-wizard-register")
    screenshot("nl-wizard-register", of=page)

    # A copy button answers in the page's language, and says so to a screen reader too.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.get_by_role("button", name="omleidings-URI kopiëren").click()
    expect(page.get_by_role("button", name="omleidings-URI kopiëren")).to_have_text("Gekopieerd")
    expect(page.locator("#copy-status")).to_have_text("Gekopieerd")
    assert page.evaluate("navigator.clipboard.readText()") == f"{server.url}/connect/callback"


def test_the_switcher_changes_the_language_of_the_same_page(portal, page, screenshot):
    server, _ = portal
    page.goto(f"{server.url}/support/sign-in")
    expect(page.get_by_role("heading", name="Support console")).to_be_visible()
    page.get_by_role("navigation", name="Language").get_by_role("link", name="Nederlands").click()
    expect(page).to_have_url(f"{server.url}/support/sign-in")
    expect(page.get_by_role("heading", name="Ondersteuningsconsole")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    assert_accessible(page, "nl-support-sign-in")
    screenshot("nl-support-sign-in", of=page)
    page.get_by_role("navigation", name="Taal").get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Support console")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/support/sign-in$"))
