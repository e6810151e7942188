"""Browser tests: the portal served on 127.0.0.1 in a thread, driven by Debian's Chromium."""

import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import WSGIRequestHandler, make_server

from portal import certificates, invitations
from portal.extensions import db
from portal.models import Certificate, Configuration, Institution

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        """Keep test output to what failed, not every request."""


class LiveServer:
    """A WSGI application served on a free loopback port in a daemon thread."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run."""
    with sync_playwright() as playwright:
        # Assertions wait as long as actions do: a page behind a password check takes
        # seconds on a busy two-core machine, past expect()'s 5-second default.
        expect.set_options(timeout=15_000)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser profile (cookies, storage) per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot under test-artifacts/screenshots/ to look at."""

    def take(name: str, of=None):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (of or page).screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


TENANT = "contoso.onmicrosoft.com"
TENANT_GUID = "9188040d-6c67-4c5b-b112-36a304b66dad"
CLIENT = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"
OTHER_CLIENT = "0d9b8c7a-6f5e-4d3c-2b1a-000000000001"


class World:
    """The portal, the stand-ins and the demo tenant of one test."""

    def __init__(self, make_app, standins):
        self.standins = standins
        self.identity = standins.identity
        self.app = make_app(**standins.settings())
        self.portal = LiveServer(self.app)
        self.app.config["EXTERNAL_URL"] = self.portal.url
        with self.app.app_context():
            self.vendor_pem = certificates.create_vendor_certificate(365, "test").public_pem
            self.links = {}
            for name, hosting in (
                ("Example University", "managed"),
                ("Example College", "on_premises"),
            ):
                institution = invitations.create_institution(name, hosting, "a@x.edu", "test")
                self.links[hosting] = invitations.issue_invitation(institution, "test")
            db.session.commit()
        self.registration = standins.seed(
            [self.vendor_pem], [f"{self.portal.url}/connect/callback"]
        )
        self.portal.start()

    def upload_generated_certificate(self, institution: str) -> None:
        """Do what the administrator does in Entra: upload the generated certificate."""
        with self.app.app_context():
            config = (
                db.session.query(Configuration).join(Institution).filter_by(name=institution).one()
            )
            certificate = db.session.get(Certificate, config.certificate_id)
            self.registration.certificates.append(certificate.public_pem)


@pytest.fixture
def world(make_app, standins):
    world = World(make_app, standins)
    yield world
    world.portal.stop()


def open_link(page, link, button="Open the setup wizard", *, start=True):
    """Open an invitation link and confirm on the page it shows, as an administrator does;
    on the start page a wizard not yet begun opens at, press its start button too
    (``start=False`` stays there)."""
    page.goto(link)
    confirm = page.get_by_role("button", name=button)
    confirm.click()
    # The click starts a navigation; the next key press must reach the page it loads, not
    # the confirmation page still on screen (a Tab there once focused its next control).
    expect(confirm).to_have_count(0)
    page.wait_for_load_state()
    if start and page.url.endswith("/setup/start"):
        begin = page.locator(".start-button")
        begin.click()
        expect(begin).to_have_count(0)
        page.wait_for_load_state()


def choose_method(page, method_label, group=None):
    """Step 1: the method and, for application permissions, all calendars or one group
    (``group``: "rbac" or "access_policy")."""
    page.get_by_label(method_label).check()
    if method_label == "Application permissions":
        if group is None:
            page.get_by_label("All calendars in the tenant").check()
        else:
            page.get_by_label("Only the members of one mail-enabled security group").check()
            label = {"rbac": "RBAC for Applications", "access_policy": "Application access"}
            page.get_by_label(label[group]).check()
    page.get_by_role("button", name="Save and continue").click()


def walk_to_tenant(page, link, method_label, *, generate=False, group=None):
    open_link(page, link)
    choose_method(page, method_label, group)
    if generate:
        page.get_by_role("button", name="Make the certificate").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name=re.compile("I have registered the app")).click()
    expect(page.get_by_role("heading", name="Tenant and application")).to_be_visible()


def enter_ids(page, tenant=TENANT, client=CLIENT, group=""):
    page.get_by_label("Tenant ID").fill(tenant)
    page.get_by_label("Application (client) ID").fill(client)
    if group:  # asked when step 1 chose a group (walk_to_tenant's group)
        page.get_by_label("Mail-enabled security group").fill(group)
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("heading", name="Verify the connection")).to_be_visible()


def enrol_authenticator(page, look=None) -> str:
    """On the enrolment page of a first sign-in: type the code for the key the page shows
    (as an authenticator app would compute it) and leave the recovery codes page for the
    console. Returns the key. ``look``: see ``sign_in_to_console``."""
    import pyotp

    expect(page.get_by_role("heading", name="Add an authenticator app")).to_be_visible()
    if look:
        look(page, "support-enrol")
        page.get_by_label("Code from the app").fill("000000")
        page.get_by_role("button", name="Confirm and sign in").click()
        look(page, "support-enrol-refused")
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    if look:
        look(page, "support-recovery-codes")
    page.get_by_role("link", name="I have saved them: go to the console").click()
    expect(page.get_by_role("heading", name="Configurations")).to_be_visible()
    return secret


def sign_in_to_console(page, url: str, email: str, password: str, look=None) -> str:
    """Sign a new staff member in to the support console at ``url``, enrolling their
    authenticator; returns its key.

    With ``look`` (``look(page, name)``, an accessibility or a narrow-screen check), the
    walk also meets a wrong password and a wrong code, and each page on the way is looked
    at: the sign-in form, the refused password, enrolment, the refused code and the
    recovery codes."""
    page.goto(f"{url}/support/")
    if look:
        look(page, "support-sign-in")
        page.get_by_label("E-mail address").fill(email)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        look(page, "support-sign-in-refused")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    return enrol_authenticator(page, look)
