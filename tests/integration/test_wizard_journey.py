"""The administrator's journey on the server side: the start page, the group decision in
step 1 and what it changes in steps 3 and 4, results made old by a change, error summaries
and notices."""

import re

import pytest
from flask import flash, render_template

from portal import verification
from portal.extensions import db
from portal.models import Configuration, Institution, Verification

CLIENT = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"
OTHER_CLIENT = "0d9b8c7a-6f5e-4d3c-2b1a-000000000001"
ALL = {"method": "application", "mailbox_scope": "all", "cloud": "worldwide"}
RBAC = {**ALL, "mailbox_scope": "group", "group_scope_method": "rbac"}
POLICY = {**RBAC, "group_scope_method": "access_policy"}


def saved(app, name="Example University") -> Configuration:
    with app.app_context():
        institution = db.session.query(Institution).filter_by(name=name).one()
        config = db.session.get(Configuration, institution.configuration.id)
        _ = config.certificate
        return config


def walk(wizard, link, step_1: dict):
    wizard.open(link)
    wizard.post("/setup/method", step_1)
    wizard.post("/setup/certificate")
    return wizard.client.get("/setup/register").text


def instructions(page: str) -> list[str]:
    return re.findall(r"<li>\s*<h2>([^<]+)</h2>", page)


def test_the_start_page_is_for_a_wizard_not_begun_and_stays_readable(wizard, invitation):
    page = wizard.open(invitation["on_premises"])
    assert page.request.path == "/setup/start"
    assert "A password manager" in page.text  # on-premises makes its own key
    assert 'class="stepper"' not in page.text
    wizard.post("/setup/method", {"method": "delegated", "cloud": "worldwide"})
    assert wizard.client.get("/setup/").location.endswith("/setup/certificate")


def test_application_permissions_need_the_group_answer(app, wizard, invitation):
    wizard.open(invitation["managed"])
    page = wizard.post("/setup/method", {"method": "application", "cloud": "worldwide"})
    assert page.status_code == 400
    assert "<title>Error: Step 1" in page.text
    assert "data-error-summary" in page.text and 'href="#mailbox_scope-0"' in page.text
    assert "Choose all calendars, or only the members of one security group." in page.text
    assert saved(app).method is None


@pytest.mark.parametrize("scope", ["everyone", "x" * 400])
def test_an_unknown_group_answer_is_refused_with_a_message(app, wizard, invitation, scope):
    wizard.open(invitation["managed"])
    page = wizard.post("/setup/method", {**ALL, "mailbox_scope": scope})
    assert page.status_code == 400 and "Choose all calendars" in page.text
    limit = wizard.post("/setup/method", {**RBAC, "group_scope_method": scope})
    assert limit.status_code == 400 and "Choose how to limit access to the group." in limit.text


def test_delegated_permissions_forget_the_group_answer(app, wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.post("/setup/method", RBAC)
    assert saved(app).mailbox_scope == "group"
    wizard.post("/setup/method", {**RBAC, "method": "delegated"})
    assert saved(app).mailbox_scope is None and not saved(app).limited_to_group


def test_step_3_for_all_calendars_grants_consent_and_limits_nothing(wizard, invitation):
    steps = instructions(walk(wizard, invitation["managed"], ALL))
    assert "Grant admin consent" in steps and "Add the API permissions" in steps
    assert "Limit access to the security group" not in steps


def test_step_3_for_a_group_with_rbac_never_grants_tenant_wide_consent(wizard, invitation):
    page = walk(wizard, invitation["managed"], RBAC)
    steps = instructions(page)
    assert "Grant admin consent" not in steps and "Add the API permissions" not in steps
    assert "Add no calendar permission in Entra" in steps
    assert "Limit access to the security group" in steps
    assert "New-ManagementRoleAssignment" in page and "New-ApplicationAccessPolicy" not in page
    assert "Exchange Administrator" in page


def test_step_3_for_a_group_with_a_policy_grants_then_narrows(wizard, invitation):
    page = walk(wizard, invitation["managed"], POLICY)
    steps = instructions(page)
    assert steps.index("Limit access to the security group") > steps.index("Grant admin consent")
    assert "New-ApplicationAccessPolicy" in page and "New-ManagementRoleAssignment" not in page


def test_step_4_asks_for_the_group_only_when_chosen_and_then_requires_it(wizard, invitation):
    walk(wizard, invitation["managed"], ALL)
    wizard.post("/setup/register")
    assert 'name="security_group_email"' not in wizard.client.get("/setup/tenant").text
    wizard.post("/setup/method", RBAC)
    page = wizard.enter_tenant("example.edu", CLIENT)
    assert page.status_code == 400
    assert "Enter the group&#39;s e-mail address, or choose all calendars" in page.text
    assert 'href="#security_group_email"' in page.text
    assert "Please correct the fields marked below" not in page.text  # the old banner


def test_all_calendars_keeps_the_saved_address_but_stops_using_it(app, wizard, invitation):
    walk(wizard, invitation["managed"], RBAC)
    wizard.post("/setup/register")
    assert wizard.enter_tenant("example.edu", CLIENT, group="staff@example.edu").status_code == 302
    wizard.post("/setup/method", ALL)
    config = saved(app)
    assert config.security_group_email == "staff@example.edu" and config.group is None
    wizard.post("/setup/method", RBAC)
    assert saved(app).group == "staff@example.edu"
    assert saved(app).step_reached == 5  # the address is there: nothing to ask again


def test_a_group_chosen_late_sends_the_wizard_back_to_step_4(app, wizard, invitation):
    walk(wizard, invitation["managed"], ALL)
    wizard.post("/setup/register")
    wizard.enter_tenant("example.edu", CLIENT)
    assert saved(app).step_reached == 5
    wizard.post("/setup/method", RBAC)
    assert saved(app).step_reached == 4
    assert wizard.client.get("/setup/verify").location.endswith("/setup/tenant")


@pytest.fixture
def checked(make_app, standins):
    """The portal on the stand-ins, its managed wizard walked to a passing check."""
    from tests.conftest import Wizard, invitation_links

    app = make_app(**standins.settings())
    links = invitation_links(app)
    registration = standins.seed([], [])
    with app.app_context():
        from portal.models import Certificate

        registration.certificates.append(Certificate.current_vendor().public_pem)
    registration.admin_consented = True
    wizard = Wizard(app.test_client())
    wizard.open(links["managed"])
    wizard.to_tenant()
    wizard.enter_tenant(standins.TENANT, standins.CLIENT)
    page = wizard.post("/setup/verify", {"test_mailbox": "adele.vance@contoso.edu"}, follow=True)
    assert "Every check passed" in page.text, page.text
    return app, wizard, standins


def test_a_run_records_the_values_it_checked(checked):
    app, _, _ = checked
    config = saved(app)
    with app.app_context():
        config = db.session.get(Configuration, config.id)
        run = config.latest_run()
        assert {v.inputs for v in run} == {verification.fingerprint(config)}
        assert not verification.checked_before_change(config, run)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/setup/tenant", {"tenant_id": "9188040d-6c67-4c5b-b112-36a304b66dad"}),
        ("/setup/tenant", {"client_id": OTHER_CLIENT}),
        ("/setup/method", {**ALL, "cloud": "usgov"}),
        ("/setup/method", {"method": "delegated", "cloud": "worldwide"}),
    ],
)
def test_a_changed_value_makes_the_results_old_and_stops_the_submission(checked, path, data):
    app, wizard, standins = checked
    if path == "/setup/tenant":
        data = {"tenant_id": standins.TENANT, "client_id": standins.CLIENT, **data}
    wizard.post(path, data)
    assert saved(app).verified_at is None
    verify = wizard.client.get("/setup/verify").text
    assert "Checked before your last change" in verify and "Every check passed" not in verify
    review = wizard.client.get("/setup/review").text
    assert 'disabled aria-describedby="submit-why"' in review
    assert "Checked before your last change" in review
    page = wizard.post("/setup/submit", follow=True)
    assert page.request.path == "/setup/verify" and saved(app).status == "draft"


def test_saving_the_same_values_keeps_the_results_current(checked):
    app, wizard, standins = checked
    wizard.enter_tenant(standins.TENANT, standins.CLIENT)
    wizard.post("/setup/method", ALL)
    assert saved(app).verified_at is not None
    assert "Checked before your last change" not in wizard.client.get("/setup/verify").text


def test_a_new_certificate_makes_the_results_old(make_app, standins, wizard, invitation):
    app = wizard.client.application
    wizard.open(invitation["on_premises"])
    wizard.to_tenant()
    wizard.enter_tenant("example.edu", CLIENT)
    with app.app_context():
        config = db.session.get(Configuration, saved(app, "Example College").id)
        config.verified_at = config.created_at
        db.session.add(
            Verification(
                configuration=config, run_id="r", kind="tenant_found", outcome="passed",
                inputs=verification.fingerprint(config),
            )
        )  # fmt: skip
        db.session.commit()
    # (another validity: the tests keep one key per set of arguments)
    response = wizard.post("/setup/certificate/generate", {"validity": "730"}, follow=True)
    assert "A new certificate was made" in response.text, response.text
    config = saved(app, "Example College")
    assert config.verified_at is None
    with app.app_context():
        config = db.session.get(Configuration, config.id)
        assert verification.checked_before_change(config, config.latest_run())


def test_a_passed_run_from_before_fingerprints_counts_as_old_once_unverified(app, invitation):
    with app.app_context():
        config = db.session.query(Configuration).first()
        config.method = "delegated"
        for kind in ("tenant_found", "application_found", "certificate_accepted", "signed_in",
                     "permission_granted", "mailbox_reachable"):  # fmt: skip
            db.session.add(Verification(configuration=config, run_id="old", kind=kind,
                                        outcome="passed"))  # fmt: skip
        config.verified_at = config.created_at
        db.session.commit()
        assert not verification.checked_before_change(config, config.latest_run())
        config.verified_at = None
        assert verification.checked_before_change(config, config.latest_run())


def test_success_notices_never_stack(app):
    with app.test_request_context("/"):
        flash("First success.", "success")
        flash("Second success.", "success")
        flash("An error.", "error")
        page = render_template("base.html")
    assert page.count("notice-success") == 1 and "Second success." in page
    assert "An error." in page


def test_a_page_with_its_own_success_notice_shows_no_flashed_one(app):
    with app.test_request_context("/"):
        flash("Flashed success.", "success")
        page = render_template("base.html", own_success=True)
    assert "Flashed success." not in page
