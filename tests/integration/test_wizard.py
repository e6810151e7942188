"""The setup wizard through the test client: invitations, steps, resuming, downloads."""

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12

from portal.extensions import db
from portal.models import AuditEvent, Certificate, Configuration, Institution, Invitation, utcnow

CLIENT = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"


def configuration(app, name="Example University") -> Configuration:
    with app.app_context():
        institution = db.session.query(Institution).filter_by(name=name).one()
        saved = db.session.get(Configuration, institution.configuration.id)
        _ = saved.certificate  # loaded while the session is open
        return saved


def test_invitation_link_opens_the_start_page_whose_button_goes_to_step_1(wizard, invitation):
    page = wizard.open(invitation["managed"])
    assert page.request.path == "/setup/start"
    assert "Who should do this" in page.text and "Example University" in page.text
    assert "Privileged Role Administrator" in page.text and "Exchange Administrator" in page.text
    assert 'href="/setup/method"' in page.text and "Start now" in page.text
    step_1 = wizard.client.get("/setup/method")
    assert "How may MyTimetable reach calendars?" in step_1.text


def test_a_wizard_under_way_resumes_without_the_start_page(app, client, wizard, invitation):
    from tests.conftest import Wizard

    wizard.open(invitation["managed"])
    wizard.to_tenant()
    again = Wizard(app.test_client()).open(invitation["managed"])
    assert again.request.path == "/setup/tenant"
    start = wizard.client.get("/setup/start").text  # still there to read, then back to work
    assert "Continue where you left off" in start and "Start now" not in start


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/setup/i/not-a-real-token", 404, "This invitation link is not valid"),
        ("/setup/method", 404, "Open your invitation link first"),
        ("/setup/", 404, "Open your invitation link first"),
        ("/setup/review", 404, "Open your invitation link first"),
    ],
)
def test_missing_or_wrong_link_says_how_to_get_a_valid_one(client, path, status, words):
    page = client.get(path)
    assert page.status_code == status
    assert words in page.text
    assert "Ask MyTimetable support for a new invitation link" in page.text


def test_expired_link_says_so(app, client, invitation):
    with app.app_context():
        for row in db.session.query(Invitation):
            row.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    page = client.get(invitation["managed"].replace("http://localhost", ""))
    assert page.status_code == 410
    assert "This invitation link has expired" in page.text


def test_link_that_expires_mid_session_stops_the_wizard(app, wizard, invitation):
    wizard.open(invitation["managed"])
    with app.app_context():
        for row in db.session.query(Invitation):
            row.revoked_at = utcnow()
        db.session.commit()
    assert wizard.client.get("/setup/method").status_code == 410


def test_later_steps_cannot_be_skipped_to(wizard, invitation):
    wizard.open(invitation["managed"])
    page = wizard.client.get("/setup/verify")
    assert page.status_code == 302 and page.location.endswith("/setup/method")


def test_each_step_saves_the_draft_and_a_new_session_resumes_there(app, invitation, client):
    from tests.conftest import Wizard

    wizard = Wizard(client)
    wizard.open(invitation["managed"])
    wizard.to_tenant("delegated", "usgov")
    saved = configuration(app)
    assert (saved.method, saved.cloud, saved.step_reached) == ("delegated", "usgov", 4)
    assert saved.certificate is not None and saved.certificate.source == "vendor"

    fresh = Wizard(app.test_client())  # the browser was closed
    page = fresh.open(invitation["managed"])
    assert page.request.path == "/setup/tenant"
    assert "Tenant ID" in page.text and "Application (client) ID" in page.text


def test_wrong_input_keeps_what_was_typed_and_shows_the_message_beside_the_field(
    wizard, invitation
):
    wizard.open(invitation["managed"])
    wizard.to_tenant(group=True)
    page = wizard.enter_tenant("example edu", "not-a-guid", group="staff")
    assert page.status_code == 400
    assert 'value="example edu"' in page.text and 'value="not-a-guid"' in page.text
    assert (
        'id="tenant_id-error"' in page.text
        and 'aria-describedby="tenant_id-hint tenant_id-error"' in page.text
    )
    assert "The Application (client) ID is a GUID" in page.text
    assert "group&#39;s e-mail address" in page.text


def test_stepper_links_back_to_done_steps(wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant()
    page = wizard.client.get("/setup/tenant")
    for path in ("/setup/method", "/setup/certificate", "/setup/register"):
        assert f'href="{path}"' in page.text
    assert 'aria-current="step"' in page.text
    assert 'href="/setup/verify"' not in page.text


def test_managed_hosting_shows_the_vendor_certificate_public_part_only(wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.post(
        "/setup/method", {"method": "application", "mailbox_scope": "all", "cloud": "worldwide"}
    )
    page = wizard.client.get("/setup/certificate")
    assert "Thumbprint (SHA-1, as Microsoft Entra shows it)" in page.text
    assert "PRIVATE KEY" not in page.text
    cer = wizard.client.get("/setup/certificate.cer")
    assert cer.headers["Content-Disposition"].endswith('.cer"')
    x509.load_der_x509_certificate(cer.data)
    pem = wizard.client.get("/setup/certificate.pem")
    assert pem.data.startswith(b"-----BEGIN CERTIFICATE-----") and b"PRIVATE" not in pem.data
    assert wizard.client.post("/setup/certificate/pfx").status_code in (400, 404)


def test_on_premises_generates_a_certificate_and_a_password_protected_pfx(app, wizard, invitation):
    wizard.open(invitation["on_premises"])
    wizard.post(
        "/setup/method", {"method": "application", "mailbox_scope": "all", "cloud": "worldwide"}
    )
    wizard.post("/setup/certificate/generate", {"validity": "730"})
    saved = configuration(app, "Example College")
    assert saved.certificate.source == "generated"
    assert b"PRIVATE KEY" not in saved.certificate.private_key_encrypted

    short = wizard.post("/setup/certificate/pfx", {"password": "short", "confirm": "short"})
    assert short.status_code == 400 and "at least 12 characters" in short.text
    pfx = wizard.post(
        "/setup/certificate/pfx",
        {"password": "a long enough password", "confirm": "a long enough password"},
    )
    assert pfx.headers["Content-Disposition"].endswith('.pfx"')
    key, cert, _ = pkcs12.load_key_and_certificates(pfx.data, b"a long enough password")
    assert key.key_size == 3072
    assert cert.fingerprint(hashes.SHA1()).hex().upper() == saved.certificate.sha1_thumbprint


PFX = {"password": "a long enough password", "confirm": "a long enough password"}


def test_a_replaced_generated_key_is_deleted(app, wizard, invitation):
    wizard.open(invitation["on_premises"])
    wizard.post(
        "/setup/method", {"method": "application", "mailbox_scope": "all", "cloud": "worldwide"}
    )
    wizard.post("/setup/certificate/generate", {"validity": "730"})
    first = configuration(app, "Example College").certificate.id
    wizard.post("/setup/certificate/generate", {"validity": "365"})
    second = configuration(app, "Example College").certificate.id
    with app.app_context():
        assert db.session.get(Certificate, first) is None
        assert db.session.query(Certificate).filter_by(source="generated").one().id == second


def test_the_pfx_is_offered_only_until_the_configuration_is_exported(app, wizard, invitation):
    wizard.open(invitation["on_premises"])
    wizard.post(
        "/setup/method", {"method": "application", "mailbox_scope": "all", "cloud": "worldwide"}
    )
    wizard.post("/setup/certificate/generate", {"validity": "730"})
    assert wizard.post("/setup/certificate/pfx", PFX).status_code == 200
    with app.app_context():
        saved = db.session.query(Configuration).join(Institution).filter_by(name="Example College")
        exported = saved.one()
        exported.verified_at, exported.step_reached = utcnow(), 6
        exported.tenant_id = "contoso.edu"
        exported.client_id = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"
        db.session.commit()
    assert wizard.client.get("/setup/export").status_code == 200

    page = wizard.client.get("/setup/certificate")
    assert "Download private key (.pfx)" not in page.text
    assert "no longer offered" in page.text
    refused = wizard.post("/setup/certificate/pfx", PFX)
    assert refused.status_code == 410 and "no longer offered" in refused.text
    assert "application/x-pkcs12" not in refused.headers["Content-Type"]

    # a new certificate made after the export is offered until the next export
    wizard.post("/setup/certificate/generate", {"validity": "365"})
    assert wizard.post("/setup/certificate/pfx", PFX).status_code == 200


def test_register_step_shows_the_delegated_redirect_uri_and_permissions(wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.post("/setup/method", {"method": "delegated", "cloud": "worldwide"})
    wizard.post("/setup/certificate")
    page = wizard.client.get("/setup/register")
    assert "http://localhost/connect/callback" in page.text
    for permission in (
        "Calendars.ReadWrite",
        "User.Read",
        "offline_access",
        "MailboxSettings.ReadWrite",
    ):
        assert permission in page.text
    assert "microsoft-user-default-recommended" in page.text
    assert "Accounts in this organizational directory only" in page.text


@pytest.mark.parametrize(
    ("cloud", "portal"),
    [
        ("worldwide", "https://entra.microsoft.com"),
        ("usgov", "https://entra.microsoft.us"),
        ("china", "https://portal.azure.cn"),
    ],
)
def test_register_step_follows_the_chosen_cloud(wizard, invitation, cloud, portal):
    wizard.open(invitation["managed"])
    wizard.post(
        "/setup/method",
        {"method": "application", "mailbox_scope": "group", "group_scope_method": "rbac",
         "cloud": cloud},
    )  # fmt: skip
    wizard.post("/setup/certificate")
    page = wizard.client.get("/setup/register")
    assert portal in page.text
    assert "New-ManagementRoleAssignment" in page.text


def test_powershell_is_filled_in_with_the_institution_values(wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant("application", "china", group=True, scope="rbac")
    wizard.enter_tenant("example.edu", CLIENT, group="staff@example.edu")
    script = wizard.client.get("/setup/scripts/rbac.ps1").text
    assert f"$AppId = '{CLIENT}'" in script and "$Group = 'staff@example.edu'" in script
    assert "-ExchangeEnvironmentName 'O365China'" in script
    assert "Test-ServicePrincipalAuthorization" in script
    legacy = wizard.client.get("/setup/scripts/access-policy.ps1").text
    assert (
        f"New-ApplicationAccessPolicy -AppId '{CLIENT}' -PolicyScopeGroupId 'staff@example.edu'"
        in legacy
    )
    assert "-AccessRight RestrictAccess" in legacy and "Test-ApplicationAccessPolicy" in legacy


def test_changing_the_tenant_asks_to_verify_again(app, wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant()
    wizard.enter_tenant("example.edu", CLIENT)
    with app.app_context():
        saved = db.session.get(Configuration, configuration(app).id)
        saved.verified_at = utcnow()
        db.session.commit()
    wizard.enter_tenant("other.edu", CLIENT)
    assert configuration(app).verified_at is None


def test_submit_needs_a_passing_verification(wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant()
    wizard.enter_tenant("example.edu", CLIENT)
    page = wizard.post("/setup/submit", follow=True)
    assert page.request.path == "/setup/verify"
    assert "Verify the connection first" in page.text


def test_submitted_configuration_is_read_only_with_what_happens_next(app, wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.to_tenant()
    wizard.enter_tenant("example.edu", CLIENT)
    with app.app_context():
        saved = db.session.get(Configuration, configuration(app).id)
        saved.verified_at, saved.step_reached = utcnow(), 6
        db.session.commit()
    page = wizard.post("/setup/submit", follow=True)
    assert "Submitted – thank you" in page.text and "MyTimetable support reviews" in page.text
    assert configuration(app).status == "submitted"
    assert wizard.client.get("/setup/tenant").location.endswith("/setup/review")
    with app.app_context():
        actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
    assert "submitted" in actions


def test_forged_csrf_token_is_refused_without_saving(app, wizard, invitation):
    wizard.open(invitation["managed"])
    page = wizard.client.post(
        "/setup/method", data={"csrf_token": "forged", "method": "delegated", "cloud": "china"}
    )
    assert page.status_code == 400 and "This page has expired" in page.text
    assert configuration(app).method is None


def test_pages_carry_security_headers(client):
    page = client.get("/")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'self'
    assert page.headers["X-Content-Type-Options"] == "nosniff"
