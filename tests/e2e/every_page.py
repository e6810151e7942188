"""The portal's pages, each put in the state that shows it and walked once for the two
modules that look at every page: test_accessibility.py (axe) and test_narrow_screens.py
(phone widths and 200 % zoom, in English and Dutch).

A walk is told how to look at a page:

- ``check(page, url, name, status=200)`` opens ``url`` (``None``: keeps the page on
  screen), expects ``status``, and looks at the page;
- ``look(page, name)`` looks at the page on screen without loading it again: a page that
  answers a form, which a reload would post again.
"""

from playwright.sync_api import expect

from portal import certificates, invitations, rotation, staff, verification
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
from tests.e2e.conftest import (
    CLIENT,
    TENANT,
    TENANT_GUID,
    enter_ids,
    open_link,
    sign_in_to_console,
    walk_to_tenant,
)

INSTITUTION = {"managed": "Example University", "on_premises": "Example College"}
STEPS = ("method", "certificate", "register", "tenant", "verify", "review")
STAFF = "support@mytimetable.example"
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


def walk_wizard(world, page, hosting: str, method: str, check) -> None:
    """The start page and every step of a configuration filled in up to its review, then
    the review once it is submitted (on premises: exported)."""
    configure(world, hosting, method=method, tenant_id=TENANT, tenant_guid=TENANT_GUID,
              client_id=CLIENT, step_reached=6, verified_at=utcnow(),
              security_group_email="mytimetable@contoso.edu")  # fmt: skip
    open_link(page, world.links[hosting])
    check(page, f"{world.portal.url}/setup/start", f"start-{hosting}")
    for step in STEPS:
        check(page, f"{world.portal.url}/setup/{step}", f"{step}-{hosting}-{method}")
    finished = "exported" if hosting == "on_premises" else "submitted"
    configure(world, hosting, status=finished, submitted_at=utcnow(), exported_at=utcnow())
    check(page, f"{world.portal.url}/setup/review", f"review-{finished}-{method}")


def walk_end_user_pages(world, page, check) -> None:
    """An end user's pages: unavailable before approval, automatic connection, the start of
    a delegated connection and its organisation consent, and a stale callback."""
    connect = f"{world.portal.url}/connect/example-university"
    check(page, connect, "connect-unavailable", status=404)
    configure(world, "managed", method="application", status="approved", tenant_id=TENANT,
              tenant_guid=TENANT_GUID, client_id=CLIENT, step_reached=6)  # fmt: skip
    check(page, connect, "connect-automatic")
    configure(world, "managed", method="delegated")
    check(page, f"{connect}?login_hint=adele.vance@contoso.edu", "connect-start")
    check(page, f"{connect}/organisation-consent", "connect-organisation-consent")
    check(page, f"{world.portal.url}/connect/callback?state=x&code=y", "connect-stale", 400)


def submitted_for_review(world) -> None:
    """A staff member (``STAFF``, ``PASSWORD``) not yet signed in, and Example University's
    configuration submitted for review."""
    with world.app.app_context():
        staff.create_staff(STAFF, PASSWORD)
        db.session.commit()
    configure(world, "managed", method="application", status="submitted", tenant_id=TENANT,
              tenant_guid=TENANT_GUID, client_id=CLIENT, step_reached=6,
              submitted_at=utcnow())  # fmt: skip


def walk_console_confirmations(world, page, configuration: str, check) -> None:
    """The console's confirmation pages, signed in: approval refused (no feed address yet)
    for the configuration at ``configuration``, a rotation, a new link."""
    check(page, f"{configuration}/approve/confirm", "support-approve-refused", status=409)
    check(page, f"{world.portal.url}/support/certificates/rotation/start/confirm",
          "support-confirm-rotation")  # fmt: skip
    page.goto(f"{world.portal.url}/support/institutions")
    page.get_by_role("button", name="New link for Example University").click()
    expect(page.get_by_role("button", name="Yes, make a new link")).to_be_visible()
    check(page, None, "support-confirm-new-link")


def make_api_key(world, page) -> None:
    """Make Example University's API key on the console, signed in; the page shows it."""
    page.goto(f"{world.portal.url}/support/institutions")
    page.get_by_role("link", name="API keys for Example University").click()
    page.get_by_label("Name of the key").fill("MyTimetable production")
    page.get_by_role("button", name="Make the key").click()
    expect(page.get_by_text("New API key")).to_be_visible()


def walk_home_and_error_pages(world, page, check, look) -> None:
    """The home page, a page not found, and a sign-in posted with an expired CSRF token."""
    check(page, world.portal.url, "home")
    check(page, f"{world.portal.url}/no-such-page", "not-found", status=404)
    page.goto(f"{world.portal.url}/support/")
    page.locator("input[name=csrf_token]").evaluate("input => { input.value = 'stale'; }")
    page.get_by_label("E-mail address").fill(STAFF)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="This page has expired")).to_be_visible()
    look(page, "csrf-expired")


def walk_mailboxes(world, page, check, look) -> None:
    """The administrator's mailboxes page of an approved configuration following its group,
    with a mailbox in each state and the group's passes (one failed, one refused a member,
    one held), and the confirmation of removing a mailbox."""
    configure(world, "managed", method="application", status="approved", tenant_id=TENANT,
              tenant_guid=TENANT_GUID, client_id=CLIENT, step_reached=6, verified_at=utcnow(),
              security_group_email="mytimetable@contoso.edu", follow_group=True)  # fmt: skip
    with world.app.app_context():
        config = (
            db.session.query(Configuration).join(Institution).filter_by(name=INSTITUTION["managed"])
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
    look(page, "mailboxes-remove")
    # Support's side of the same mailboxes: searched, and the removal's confirmation.
    with world.app.app_context():
        staff.create_staff(STAFF, PASSWORD)
        db.session.commit()
    page.context.clear_cookies()
    sign_in_to_console(page, world.portal.url, STAFF, PASSWORD)
    page.get_by_role("link", name=INSTITUTION["managed"]).click()
    page.get_by_label("Search by address").fill("contoso")
    page.get_by_role("button", name="Search", exact=True).click()
    check(page, None, "support-mailboxes")
    page.locator("input[name=connection]").first.check()
    page.get_by_role("button", name="Remove selected").click()
    expect(page.get_by_role("heading", name="Remove 1 mailbox?")).to_be_visible()
    look(page, "support-mailboxes-remove")


def walk_results(world, page, check) -> None:
    """Step 5 once the checks have run (a chain of results, the mailbox outside the group
    refused as it should be), then, signed in to the console, the submitted
    configuration's page with those results and the institution's settings page."""
    world.registration.admin_consented = True
    world.registration.policy_mailboxes = {"adele.vance@contoso.edu"}
    walk_to_tenant(page, world.links["managed"], "Application permissions", group="access_policy")
    enter_ids(page, group="mytimetable@contoso.edu")
    page.get_by_label("Test mailbox").fill("adele.vance@contoso.edu")
    page.get_by_label("Mailbox outside the group").fill("alex.wilber@contoso.edu")
    page.get_by_role("button", name="Run the checks").click()
    expect(page.get_by_text("outside mytimetable@contoso.edu, was refused")).to_be_visible()
    check(page, f"{world.portal.url}/setup/verify", "verify-with-results")
    page.get_by_role("link", name="Continue").last.click()
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name="Submitted – thank you")).to_be_visible()
    with world.app.app_context():
        staff.create_staff(STAFF, PASSWORD)
        db.session.commit()
    page.context.clear_cookies()
    sign_in_to_console(page, world.portal.url, STAFF, PASSWORD)
    page.get_by_role("link", name=INSTITUTION["managed"]).click()
    check(page, page.url, "support-configuration-with-results")
    page.goto(f"{world.portal.url}/support/institutions")
    page.get_by_role("link", name=f"Settings for {INSTITUTION['managed']}").click()
    check(page, page.url, "support-institution-settings")


def walk_rotation(world, page, check) -> None:
    """The administrator's page for a certificate rotation of an approved configuration
    that has passed its checks: support has started the rotation and the new certificate
    waits to be added; its check refused (not uploaded yet), with the results; accepted, and
    MyTimetable uses it; then the configuration's review, its checks run again with it."""
    world.registration.admin_consented = True
    configure(world, "managed", method="application", status="approved", tenant_id=TENANT,
              tenant_guid=TENANT_GUID, client_id=CLIENT, step_reached=6,
              test_mailbox="adele.vance@contoso.edu")  # fmt: skip
    with world.app.app_context():
        config = (
            db.session.query(Configuration).join(Institution).filter_by(name=INSTITUTION["managed"])
        ).one()
        verification.run_application_checks(config, "test")
        new_pem = rotation.start(STAFF).public_pem
        link = invitations.issue_invitation(config.institution, STAFF)  # as in the e-mail
        db.session.commit()
    open_link(page, f"{link}?to=rotation")
    check(page, f"{world.portal.url}/setup/rotation", "rotation-waiting")
    page.get_by_role("button", name="Check the new certificate").click()
    expect(page.get_by_text("does not accept the new certificate yet")).to_be_visible()
    check(page, None, "rotation-refused")
    world.registration.certificates.append(new_pem)  # the administrator uploads it in Entra
    page.get_by_role("button", name="Check the new certificate").click()
    expect(page.get_by_role("heading", name="MyTimetable uses the new certificate")).to_be_visible()
    check(page, None, "rotation-switched")
    page.get_by_role("link", name="Back to the configuration").click()
    check(page, None, "rotation-back-to-review")
