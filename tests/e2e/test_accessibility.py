"""Every page of the portal passes axe-core's serious and critical rules.

The other browser tests check the pages they walk through; these tests reach the rest
directly, with the configuration put in the state that shows each page.
"""

import pytest
from playwright.sync_api import expect

from portal import certificates, staff
from portal.extensions import db
from portal.models import (
    Certificate,
    Configuration,
    Connection,
    ConnectionStatus,
    GroupPass,
    Institution,
    PassState,
    utcnow,
)
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import CLIENT, TENANT, TENANT_GUID, open_link, sign_in_to_console

pytestmark = pytest.mark.e2e

INSTITUTION = {"managed": "Example University", "on_premises": "Example College"}
STEPS = ("method", "certificate", "register", "tenant", "verify", "review")
PASSWORD = "correct horse battery staple"


def configure(world, hosting: str, **fields) -> None:
    """Put the institution's configuration in the state a page shows."""
    with world.app.app_context():
        config = (
            db.session.query(Configuration)
            .join(Institution)
            .filter_by(name=INSTITUTION[hosting])
            .one()
        )
        if config.certificate is None:
            if hosting == "managed":
                config.certificate = Certificate.current_vendor()
            else:
                certificates.generate_for(config.institution, 365, "test")
        for name, value in fields.items():
            setattr(config, name, value)
        db.session.commit()


def check(page, url: str, name: str, status: int = 200) -> None:
    response = page.goto(url)
    assert response.status == status, f"{url} answered {response.status}"
    assert_accessible(page, name)


@pytest.mark.parametrize("hosting", ["managed", "on_premises"])
@pytest.mark.parametrize("method", ["application", "delegated"])
def test_every_wizard_step_and_finished_state(world, page, hosting, method):
    configure(world, hosting, method=method, tenant_id=TENANT, tenant_guid=TENANT_GUID,
              client_id=CLIENT, step_reached=6, verified_at=utcnow(),
              security_group_email="mytimetable@contoso.edu")  # fmt: skip
    open_link(page, world.links[hosting])
    for step in STEPS:
        check(page, f"{world.portal.url}/setup/{step}", f"{step}-{hosting}-{method}")

    finished = "exported" if hosting == "on_premises" else "submitted"
    configure(world, hosting, status=finished, submitted_at=utcnow(), exported_at=utcnow())
    check(page, f"{world.portal.url}/setup/review", f"review-{finished}-{method}")
    if hosting == "managed":
        configure(world, hosting, status="approved")
        check(page, f"{world.portal.url}/setup/review", f"review-approved-{method}")


def test_end_user_pages(world, page):
    connect = f"{world.portal.url}/connect/example-university"
    check(page, connect, "connect-unavailable", status=404)
    configure(world, "managed", method="application", status="approved", tenant_id=TENANT,
              tenant_guid=TENANT_GUID, client_id=CLIENT, step_reached=6)  # fmt: skip
    check(page, connect, "connect-automatic")
    configure(world, "managed", method="delegated")
    check(page, f"{connect}?login_hint=adele.vance@contoso.edu", "connect-start")
    check(page, f"{connect}/organisation-consent", "connect-organisation-consent")
    check(page, f"{world.portal.url}/connect/callback?state=x&code=y", "connect-stale", 400)


def test_mailboxes_page_and_its_removal_confirmation(world, page):
    configure(world, "managed", method="application", status="approved", tenant_id=TENANT,
              tenant_guid=TENANT_GUID, client_id=CLIENT, step_reached=6, verified_at=utcnow(),
              security_group_email="mytimetable@contoso.edu", follow_group=True)  # fmt: skip
    with world.app.app_context():
        config = (
            db.session.query(Configuration).join(Institution).filter_by(name="Example University")
        ).one()
        for n, state in enumerate(ConnectionStatus):
            db.session.add(Connection(configuration=config, upn=f"t{n}@contoso.edu", status=state))
        # Group following: a pass that failed, one that refused a member, one held.
        db.session.add_all([
            GroupPass(configuration=config, state=PassState.FAILED,
                      error_code="Authorization_RequestDenied", error="Insufficient privileges"),
            GroupPass(configuration=config, state=PassState.DONE, members=3, added=1, refused=1,
                      refused_list=[["lee.gu@contoso.edu", "MailboxNotEnabledForRESTAPI"]]),
            GroupPass(configuration=config, state=PassState.HELD, members=10, held=21,
                      removal_limit=20, held_list=[{"id": 1, "upn": "t0@contoso.edu"}]),
        ])  # fmt: skip
        db.session.commit()
    open_link(page, world.links["managed"])
    check(page, f"{world.portal.url}/setup/mailboxes", "mailboxes")
    expect(page.get_by_text("would end 21 synchronisations")).to_be_visible()
    page.locator("input[name=connection]").first.check()
    page.get_by_role("button", name="Remove selected").click()
    expect(page.get_by_role("heading", name="Remove 1 mailbox?")).to_be_visible()
    assert_accessible(page, "mailboxes-remove")


def test_support_console_pages(world, page):
    with world.app.app_context():
        staff.create_staff("support@mytimetable.example", PASSWORD)
        db.session.commit()
    configure(world, "managed", method="application", status="submitted", tenant_id=TENANT,
              tenant_guid=TENANT_GUID, client_id=CLIENT, step_reached=6,
              submitted_at=utcnow())  # fmt: skip
    sign_in_to_console(
        page, world.portal.url, "support@mytimetable.example", PASSWORD, assert_accessible
    )
    assert_accessible(page, "support-queue")
    page.get_by_role("link", name="Example University").click()
    assert_accessible(page, "support-configuration-submitted")
    configuration = page.url
    for name in ("institutions", "certificates", "outbox"):
        check(page, f"{world.portal.url}/support/{name}", f"support-{name}")
    # the confirmation pages: approval refused (no feed address yet), a rotation, a new link
    check(page, f"{configuration}/approve/confirm", "support-approve-refused", status=409)
    check(page, f"{world.portal.url}/support/certificates/rotation/start/confirm",
          "support-confirm-rotation")  # fmt: skip
    page.goto(f"{world.portal.url}/support/institutions")
    page.get_by_role("button", name="New link for Example University").click()
    expect(page.get_by_role("button", name="Yes, make a new link")).to_be_visible()
    assert_accessible(page, "support-confirm-new-link")
    page.goto(f"{world.portal.url}/support/institutions")
    page.get_by_role("link", name="API keys for Example University").click()
    page.get_by_label("Name of the key").fill("MyTimetable production")
    page.get_by_role("button", name="Make the key").click()
    expect(page.get_by_text("New API key")).to_be_visible()
    assert_accessible(page, "support-api-keys")
    page.context.clear_cookies()  # a later sign-in asks for the app's code
    page.goto(f"{world.portal.url}/support/")
    page.get_by_label("E-mail address").fill("support@mytimetable.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Support console")).to_be_visible()
    assert_accessible(page, "support-second-factor")


def test_home_and_error_pages(world, page):
    check(page, world.portal.url, "home")
    check(page, f"{world.portal.url}/no-such-page", "not-found", status=404)
    page.goto(f"{world.portal.url}/support/")
    page.locator("input[name=csrf_token]").evaluate("input => { input.value = 'stale'; }")
    page.get_by_label("E-mail address").fill("support@mytimetable.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="This page has expired")).to_be_visible()
    assert_accessible(page, "csrf-expired")
