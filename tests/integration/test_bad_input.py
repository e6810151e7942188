"""No bad value in any field, forged token or garbled callback gets a 500 or a stack trace."""

import io

import pytest

from portal.extensions import db
from portal.models import Configuration, Institution

NASTY = [
    "",
    " ",
    "a" * 5000,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "\x00",
    "💥" * 10,
    "../../etc/passwd",
    "%00%0d%0a",
    "72f988bf-86f1-41af-91ab-2d7cd011db47\n",
]
FORMS = {
    "/setup/method": ["method", "cloud"],
    "/setup/certificate/generate": ["validity"],
    "/setup/certificate/pfx": ["password", "confirm"],
    "/setup/register": ["outlook_categories"],
    "/setup/tenant": ["tenant_id", "client_id", "security_group_email", "group_scope_method"],
    "/setup/verify": ["test_mailbox", "outside_mailbox"],
}


@pytest.fixture
def far_wizard(wizard, invitation):
    """An on-premises wizard that has reached every step."""
    wizard.open(invitation["on_premises"])
    wizard.to_tenant()
    wizard.enter_tenant("example.edu", "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d")
    return wizard


@pytest.mark.parametrize("path", sorted(FORMS))
@pytest.mark.parametrize("value", NASTY)
def test_forms_answer_bad_values_with_a_4xx_or_a_page(far_wizard, path, value):
    data = dict.fromkeys(FORMS[path], value)
    response = far_wizard.post(path, data)
    assert response.status_code < 500
    if response.mimetype == "text/html":
        assert "Traceback" not in response.text


def test_bad_tenant_input_leaves_the_saved_values_alone(app, far_wizard):
    far_wizard.post("/setup/tenant", {"tenant_id": "<bad>", "client_id": "x"})
    with app.app_context():
        config = (
            db.session.query(Configuration)
            .join(Institution)
            .filter_by(name="Example College")
            .one()
        )
        assert (config.tenant_id, config.client_id) == (
            "example.edu",
            "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d",
        )


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?code=abc",
        "?state=forged&code=abc",
        "?error=access_denied&error_description=AADSTS65004%3A+declined&state=x",
        "?admin_consent=True&tenant=not-a-guid&state=x",
        "?state=%00%ff&code=" + "x" * 5000,
        "?error=&error_description=&state=",
    ],
)
def test_garbled_callbacks_restart_cleanly(far_wizard, query):
    response = far_wizard.client.get(f"/connect/callback{query}")
    assert response.status_code == 400
    assert "could not be completed" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/setup/certificate.exe",
        "/setup/scripts/other.ps1",
        "/setup/i/" + "x" * 3000,
        "/setup/i/%00",
        "/setup/nothing",
    ],
)
def test_unknown_paths_are_404(far_wizard, path):
    assert far_wizard.client.get(path).status_code == 404


@pytest.mark.parametrize("path", ["/setup/method", "/setup/tenant", "/setup/verify/sign-in"])
def test_missing_csrf_token_is_a_400_page(far_wizard, path):
    response = far_wizard.client.post(path, data={"method": "application"})
    assert response.status_code == 400
    assert "This page has expired" in response.text


def test_oversized_body_is_refused(far_wizard):
    response = far_wizard.client.post("/setup/tenant", data={"tenant_id": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413


def _saved_tenant(app):
    with app.app_context():
        config = (
            db.session.query(Configuration)
            .join(Institution)
            .filter_by(name="Example College")
            .one()
        )
        return config.tenant_id, config.client_id, config.test_mailbox


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/setup/tenant", "tenant_id"),
        ("/setup/tenant", "client_id"),
        ("/setup/verify", "test_mailbox"),
    ],
)
def test_a_file_in_a_text_field_is_ignored(app, far_wizard, path, name):
    before = _saved_tenant(app)
    upload = (io.BytesIO(b"x@example.edu"), "x.txt")
    response = far_wizard.client.post(path, data={"csrf_token": far_wizard.csrf(), name: upload})
    assert response.status_code < 500
    assert _saved_tenant(app) == before


def test_a_json_body_is_no_form(app, far_wizard):
    before = _saved_tenant(app)
    response = far_wizard.client.post(
        "/setup/tenant",
        json={"tenant_id": 5, "client_id": ["x"]},
        headers={"X-CSRFToken": far_wizard.csrf()},
    )
    assert response.status_code < 500
    assert _saved_tenant(app) == before


def test_an_overlong_error_code_in_microsofts_answer_still_fits_its_column(app, far_wizard):
    """The error in a sign-in answer is text from the browser's address bar: PostgreSQL
    refuses one longer than the 60-character column (a 500) where SQLite keeps it."""
    from portal import verification
    from portal.microsoft.errors import MicrosoftError
    from portal.models import Verification

    with app.app_context():
        config = db.session.query(Configuration).join(Institution).first()
        config.method = "delegated"
        refused = MicrosoftError("x" * 300, "forged")
        verification.finish_delegated_checks(config, "run-1", refused, "t")
        stored = db.session.query(Verification).filter_by(run_id="run-1").one()
        assert stored.error_code == "x" * 60
