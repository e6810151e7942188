"""Verification against Microsoft's real endpoints, replayed from betamax cassettes.

No setting overrides the hosts here: this is the production code path, talking to
login.microsoftonline.com and graph.microsoft.com, with answers as Microsoft documents them.
"""

from pathlib import Path

import pytest
from betamax import Betamax

from portal import certificates, invitations, verification
from portal.extensions import db
from portal.microsoft import http
from portal.models import Configuration

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"
CLIENT_ID = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"


@pytest.fixture
def replay(app):
    """Run the portal's Microsoft session from a named cassette, recording nothing."""
    session = app.extensions[http.EXTENSION]
    recorder = Betamax(session, cassette_library_dir=str(CASSETTES))

    def use(name: str):
        return recorder.use_cassette(
            name,
            record="none",
            match_requests_on=["method", "uri"],
            allow_playback_repeats=True,
        )

    return use


@pytest.fixture
def configuration(app):
    """A managed institution's application-permissions configuration, ready to verify."""
    with app.app_context():
        certificate = certificates.create_vendor_certificate(365, "test")
        institution = invitations.create_institution("Contoso", "managed", "a@x.edu", "test")
        config = institution.configuration
        config.method, config.cloud, config.certificate = "application", "worldwide", certificate
        config.tenant_id, config.client_id = "contoso.onmicrosoft.com", CLIENT_ID
        config.test_mailbox = "adele.vance@contoso.edu"
        db.session.commit()
        return config.id


def verify(app, configuration_id, **changes) -> dict:
    with app.app_context():
        config = db.session.get(Configuration, configuration_id)
        for name, value in changes.items():
            setattr(config, name, value)
        verification.run_application_checks(config, "test")
        return {
            "verified": config.verified_at is not None,
            "tenant_guid": config.tenant_guid,
            "links": [(v.kind, v.outcome, v.error_code) for v in config.latest_run()],
            "evidence": {v.kind: v.evidence for v in config.latest_run()},
        }


def test_application_with_a_security_group_verifies_end_to_end(app, replay, configuration):
    with replay("application_verified"):
        result = verify(
            app,
            configuration,
            security_group_email="mytimetable@contoso.edu",
            group_scope_method="access_policy",
            outside_mailbox="alex.wilber@contoso.edu",
        )
    assert result["verified"]
    assert result["tenant_guid"] == "9188040d-6c67-4c5b-b112-36a304b66dad"
    assert [kind for kind, outcome, _ in result["links"] if outcome == "passed"] == [
        "tenant_found",
        "application_found",
        "certificate_accepted",
        "permission_granted",
        "mailbox_reachable",
        "scope_enforced",
    ]
    assert "Calendars.ReadWrite" in result["evidence"]["permission_granted"]
    assert "[RAOP]" in result["evidence"]["scope_enforced"]


@pytest.mark.parametrize(
    ("cassette", "changes", "broken", "code"),
    [
        ("tenant_not_found", {"tenant_id": "nonexistent.example"}, "tenant_found", "90002"),
        ("application_not_found", {}, "application_found", "700016"),
        ("certificate_not_uploaded", {}, "certificate_accepted", "700027"),
        ("no_admin_consent", {}, "permission_granted", "no_roles"),
        (
            "mailbox_outside_policy",
            {"test_mailbox": "alex.wilber@contoso.edu", "security_group_email": "g@contoso.edu",
             "group_scope_method": "access_policy", "outside_mailbox": "x@contoso.edu"},
            "mailbox_reachable",
            "ErrorAccessDenied/policy",
        ),
        ("unlicensed_mailbox", {"test_mailbox": "guest@contoso.edu"}, "mailbox_reachable",
         "MailboxNotEnabledForRESTAPI"),
    ],
)  # fmt: skip
def test_chain_stops_at_the_first_broken_link(
    app, replay, configuration, cassette, changes, broken, code
):
    with replay(cassette):
        result = verify(app, configuration, **changes)
    assert not result["verified"]
    kind, outcome, error = result["links"][-1]
    assert (kind, outcome, error) == (broken, "failed", code)
    assert all(outcome == "passed" for _, outcome, _ in result["links"][:-1])
