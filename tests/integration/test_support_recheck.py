"""Support runs the checks again for a delegated configuration: tenant, application and
certificate, then it stops, since only an administrator of the tenant can sign in for the
rest. One notion of verified for the wizard's stepper, step 6's submission, support's task
list and approval: a re-check that passed keeps the last complete run's evidence, one that
broke a link makes the configuration unverified everywhere, until the administrator signs
in and the whole chain passes again."""

import re

import pytest

from portal import invitations, review, staff
from portal.extensions import db
from portal.models import AuditEvent, Configuration
from tests.conftest import Wizard
from tests.integration.conftest import PASSWORD, Console
from tests.integration.test_consent_routes import ADMIN, Administrator

SUPPORT = "support@mytimetable.example"
STEPPER_VERIFY_DONE = re.compile(r'class="step step-done">\s*<a href="/setup/verify">')


@pytest.fixture
def portal(make_app, standins, configure):
    """The portal pointed at the stand-ins; ``portal.make(**fields)`` gives a draft
    delegated configuration of the demo tenant with a wizard open on it."""
    app = make_app(**standins.settings())

    def make():
        configuration_id = configure(
            app, method="delegated", status="draft", verified_at=None, step_reached=5
        )
        with app.app_context():
            configuration = db.session.get(Configuration, configuration_id)
            link = invitations.issue_invitation(configuration.institution, "test")
            staff.create_staff(SUPPORT, PASSWORD)
            db.session.commit()
        wizard = Wizard(app.test_client())
        wizard.open(link)
        console = Console(app.test_client())
        console.sign_in(SUPPORT)
        return wizard, console

    app.make = make
    return app


@pytest.fixture
def verified(portal, standins):
    """A delegated draft whose administrator signed in and passed the whole chain, and a
    staff member signed in to the console: (wizard, administrator, console)."""
    wizard, console = portal.make()
    administrator = Administrator(wizard, standins)
    sign_in_and_check(administrator)
    return wizard, administrator, console


def sign_in_and_check(administrator):
    start = administrator.wizard.post("/setup/verify/sign-in", page="/setup/verify")
    back = administrator.sign_in(start.location, login=ADMIN)
    assert back.location.endswith("/setup/verify")
    administrator.wizard.client.get(back.location)  # where the browser goes


def support_checks_again(app, console) -> Configuration:
    with app.app_context():
        configuration_id = db.session.query(Configuration).one().id
    answer = console.post(f"/support/configurations/{configuration_id}/verify")
    assert answer.status_code == 302
    return configuration_id


def tasks(app) -> dict[str, bool]:
    with app.app_context():
        return {t.key: t.done for t in review.readiness(db.session.query(Configuration).one())}


def chain_states(page: str) -> list[str]:
    return re.findall(r'<li class="link link-(\w+)', page)


def test_a_recheck_that_passed_keeps_the_configuration_verified_with_its_sign_in(portal, verified):
    wizard, _, console = verified
    support_checks_again(portal, console)

    step_5 = wizard.client.get("/setup/verify").text
    assert "Every check passed on" in step_5
    assert "MyTimetable support checked tenant, application and certificate again on" in step_5
    assert "they still pass, so there is nothing for you to do" in step_5
    # The re-checked links first, then the sign-in and the rest from the complete run.
    assert chain_states(step_5) == ["passed"] * 6
    assert "admin@contoso.edu signed in through the redirect URI" in step_5
    step_6 = wizard.client.get("/setup/review").text
    assert STEPPER_VERIFY_DONE.search(step_6)
    assert "MyTimetable support checked tenant" in step_6
    assert not re.search(r'<button type="submit" class="button primary" disabled', step_6)
    assert tasks(portal)["verified"]
    # The console's history says who ran each run: support's re-check, then the
    # administrator's complete run.
    with portal.app_context():
        configuration_id = db.session.query(Configuration).one().id
    history = console.client.get(f"/support/configurations/{configuration_id}").text
    history = history[history.index("Verification history") :]
    assert re.findall(r'<span class="muted">· by ([^<]+)</span>', history) == [
        SUPPORT,
        "administrator (invitation link)",
    ]
    with portal.app_context():
        trail = [(e.actor, e.detail) for e in db.session.query(AuditEvent).filter_by(
            action="verification_run")]  # fmt: skip
        assert (
            trail[-1][0] == SUPPORT
            and "passed tenant, application and certificate" in (trail[-1][1])
        )
    # It can be submitted and approved.
    assert wizard.post("/setup/submit", page="/setup/review").status_code == 302
    with portal.app_context():
        configuration = db.session.query(Configuration).one()
        configuration.feed_url_template = "https://mytimetable.example/feed/{upn}.ics"
        db.session.commit()
        configuration_id = configuration.id
    assert console.confirm(f"/support/configurations/{configuration_id}/approve").status_code == 302


def test_a_recheck_that_broke_a_link_makes_the_configuration_unverified_everywhere(
    portal, verified, standins
):
    wizard, _, console = verified
    standins.registration.certificates.clear()  # someone removed it from the app
    configuration_id = support_checks_again(portal, console)

    step_5 = wizard.client.get("/setup/verify").text
    assert "The chain breaks at <strong>Certificate accepted</strong>" in step_5
    assert "MyTimetable support checked tenant, application and certificate again on" in step_5
    assert "nothing for you to do" not in step_5
    assert chain_states(step_5) == ["passed", "passed", "failed"] + ["unchecked"] * 3
    step_6 = wizard.client.get("/setup/review").text
    assert not STEPPER_VERIFY_DONE.search(step_6)
    assert re.search(r'<button type="submit" class="button primary" disabled', step_6)
    refused = wizard.post("/setup/submit", page="/setup/review")
    assert refused.location.endswith("/setup/verify")
    assert not tasks(portal)["verified"]
    console_page = console.client.get(f"/support/configurations/{configuration_id}").text
    assert re.search(r"Latest verification passed</a>.*?</div>\s*<div[^>]*><strong class=\"tag "
                     r"tag-todo\">Not done", console_page, re.S)  # fmt: skip


def test_the_administrator_signing_in_again_completes_the_chain(portal, verified, standins):
    wizard, administrator, console = verified
    pem = list(standins.registration.certificates)
    standins.registration.certificates.clear()
    support_checks_again(portal, console)
    standins.registration.certificates.extend(pem)  # the administrator uploads it again

    sign_in_and_check(administrator)
    step_5 = wizard.client.get("/setup/verify").text
    assert "Every check passed on" in step_5 and "MyTimetable support checked" not in step_5
    assert chain_states(step_5) == ["passed"] * 6
    assert STEPPER_VERIFY_DONE.search(wizard.client.get("/setup/review").text)
    assert tasks(portal)["verified"]


def test_a_recheck_before_any_complete_run_asks_the_administrator_to_sign_in(portal, standins):
    wizard, console = portal.make()
    support_checks_again(portal, console)

    step_5 = wizard.client.get("/setup/verify").text
    assert "sign in as an administrator to complete the chain" in step_5
    assert chain_states(step_5) == ["passed"] * 3 + ["unchecked"] * 3
    assert wizard.client.get("/setup/review").location.endswith("/setup/verify")
    assert not tasks(portal)["verified"]


def test_a_sign_in_not_finished_leaves_the_complete_run_shown(portal, verified):
    wizard, _, _ = verified
    wizard.post("/setup/verify/sign-in", page="/setup/verify")  # and never comes back

    step_5 = wizard.client.get("/setup/verify").text
    assert "certificate were checked again on" in step_5 and "without the sign-in" in step_5
    assert "Every check passed on" in step_5 and chain_states(step_5) == ["passed"] * 6
