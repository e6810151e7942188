"""Live verification against the stand-ins, through the same settings production uses
to point at another host: RBAC scopes, metadata caching, delegated sign-in answers."""

from urllib.parse import parse_qs, urlsplit

import pytest

from portal import certificates, invitations, verification
from portal.extensions import db
from portal.microsoft import identity
from portal.microsoft.clouds import cloud
from portal.models import Configuration

ADELE, MEGAN, ALEX = "adele.vance@contoso.edu", "megan.bowen@contoso.edu", "alex.wilber@contoso.edu"


@pytest.fixture
def portal(make_app, standins, configure):
    """The portal pointed at the stand-ins, with a draft configuration of the demo tenant."""
    app = make_app(**standins.settings())
    app.config["configuration_id"] = configure(
        app, status="draft", consented=False, verified_at=None, test_mailbox=ADELE
    )
    return app


def verify(app, **changes):
    with app.app_context():
        config = db.session.get(Configuration, app.config["configuration_id"])
        for name, value in changes.items():
            setattr(config, name, value)
        verification.run_application_checks(config, "test")
        return config.verified_at is not None, [
            (v.kind, v.outcome, v.error_code) for v in config.latest_run()
        ]


GROUP = {
    "security_group_email": "mytimetable@contoso.edu",
    "group_scope_method": "rbac",
    "outside_mailbox": ALEX,
}


def test_rbac_scope_without_tenant_wide_consent_verifies(portal, standins):
    standins.registration.policy_mailboxes = None
    standins.registration.rbac_mailboxes = {ADELE, MEGAN}
    verified, links = verify(portal, **GROUP)
    assert verified, links
    assert links[-1] == ("scope_enforced", "passed", None)


def test_rbac_with_tenant_wide_consent_is_caught_before_the_scope_means_nothing(portal, standins):
    standins.registration.policy_mailboxes = None
    standins.registration.rbac_mailboxes = {ADELE, MEGAN}
    standins.registration.admin_consented = True
    verified, links = verify(portal, **GROUP)
    assert not verified
    assert links[-1] == ("permission_granted", "failed", "rbac_tenant_wide")


def test_scope_not_enforced_is_reported(portal, standins):
    standins.registration.admin_consented = True
    standins.registration.policy_mailboxes = None  # the PowerShell was never run
    verified, links = verify(portal, **{**GROUP, "group_scope_method": "access_policy"})
    assert not verified
    assert links[-1] == ("scope_enforced", "failed", "scope_not_enforced")


def test_checks_after_a_fix_see_the_new_state_at_once(portal, standins):
    """No cached token or cached 400 answer hides the administrator's fix."""
    uploaded = list(standins.registration.certificates)
    standins.registration.certificates.clear()
    assert verify(portal)[1][-1] == ("certificate_accepted", "failed", "700027")
    standins.registration.certificates.extend(uploaded)
    assert verify(portal)[1][-1] == ("permission_granted", "failed", "no_roles")
    standins.registration.admin_consented = True
    assert verify(portal)[0]


def test_sign_ins_share_one_msal_application_and_fetch_metadata_once(portal, standins):
    with portal.test_request_context():
        config = db.session.get(Configuration, portal.config["configuration_id"])
        before = standins.directory.counters.get("openid-configuration", 0)
        flows = [
            identity.begin_sign_in(
                identity.registration(config), "http://localhost/connect/callback"
            )
            for _ in range(5)
        ]
        assert standins.directory.counters["openid-configuration"] - before == 1
        assert len({f["state"] for f in flows}) == 5
        query = parse_qs(urlsplit(flows[0]["auth_uri"]).query)
        assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
        assert query["redirect_uri"] == ["http://localhost/connect/callback"]
        assert urlsplit(flows[0]["auth_uri"]).netloc == urlsplit(standins.identity.url).netloc


def test_admin_consent_answers_are_checked(portal, standins):
    guid, domain = standins.TENANT_GUID, standins.TENANT
    good = {"admin_consent": "True", "tenant": guid, "state": "s1", "scope": "x/.default"}
    failures = [
        ({**good, "state": "other"}, "state_mismatch"),
        ({**good, "tenant": "00000000-0000-0000-0000-000000000000"}, "tenant_mismatch"),
        (
            {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
                "admin_consent": "True",
                "state": "s1",
            },
            "65004",
        ),
    ]
    with portal.app_context():
        app = identity.AppRegistration(cloud("worldwide"), domain, "c", None)
        for expected in (guid, domain):  # the GUID, or the domain the administrator typed
            assert identity.finish_admin_consent(app, good, "s1", expected) == guid
            for args, code in failures:
                with pytest.raises(identity.MicrosoftError) as caught:
                    identity.finish_admin_consent(app, args, "s1", expected)
                assert caught.value.code == code


def test_unreachable_microsoft_is_a_clear_failure_not_a_crash(make_app, standins):
    app = make_app(
        **{**standins.settings(), "AUTHORITY_HOST": "https://127.0.0.1:9", "HTTP_TIMEOUT": 2}
    )
    with app.app_context():
        certificate = certificates.create_vendor_certificate(365, "test")
        institution = invitations.create_institution("Contoso", "managed", "a@x.edu", "test")
        config = institution.configuration
        config.method, config.certificate = "application", certificate
        config.tenant_id, config.client_id, config.test_mailbox = (
            "contoso.edu",
            standins.CLIENT,
            ADELE,
        )
        verification.run_application_checks(config, "test")
        assert [(v.kind, v.error_code) for v in config.latest_run()] == [
            ("tenant_found", "unreachable")
        ]


# Graph's resource identifier is what is asked for, wherever its requests are sent


@pytest.mark.parametrize(
    ("key", "resource"),
    [
        ("worldwide", "https://graph.microsoft.com"),
        ("usgov", "https://graph.microsoft.us"),
        ("usgov_dod", "https://dod-graph.microsoft.us"),
        ("china", "https://microsoftgraph.chinacloudapi.cn"),
    ],
)
def test_scopes_name_the_clouds_graph_resource_not_the_overridden_host(portal, key, resource):
    with portal.test_request_context():
        where = cloud(key)
        assert where.graph_endpoint == portal.config["GRAPH_ENDPOINT"]
        assert where.graph_default_scope == f"{resource}/.default"
        assert where.graph_scopes(identity.DELEGATED_SCOPES) == [
            f"{resource}/Calendars.ReadWrite",
            f"{resource}/User.Read",
        ]
        app = identity.AppRegistration(where, "contoso.edu", "c", None)
        consent = identity.admin_consent_url(app, "https://r/cb", "s")
        assert parse_qs(urlsplit(consent).query)["scope"] == [f"{resource}/.default"]


def test_app_only_token_is_asked_for_graphs_identifier(portal, standins):
    """The stand-in, as Entra, answers AADSTS500011 for any other resource."""
    standins.registration.admin_consented = True
    verified, links = verify(portal)
    assert verified, links
    assert ("permission_granted", "passed", None) in links


def test_a_tenant_in_another_cloud_is_aadsts500011_under_the_permission_link(portal, standins):
    standins.registration.admin_consented = True
    verified, links = verify(portal, cloud="usgov")
    assert not verified
    assert links[-3:] == [
        ("application_found", "passed", None),
        ("certificate_accepted", "skipped", None),
        ("permission_granted", "failed", "500011"),
    ]


def test_delegated_sign_in_asks_for_graph_by_its_identifier(portal, standins):
    with portal.test_request_context():
        config = db.session.get(Configuration, portal.config["configuration_id"])
        flow = identity.begin_sign_in(
            identity.registration(config), "http://localhost/connect/callback"
        )
        scopes = parse_qs(urlsplit(flow["auth_uri"]).query)["scope"][0].split()
        assert "https://graph.microsoft.com/Calendars.ReadWrite" in scopes
        assert not [s for s in scopes if s.startswith(standins.graph.url)]


@pytest.mark.parametrize(
    ("method", "scopes"),
    [
        ("application", "https://graph.microsoft.com/.default"),
        ("delegated", "https://graph.microsoft.com/.default offline_access"),
    ],
)
def test_on_premises_properties_name_graphs_identifier(portal, standins, method, scopes):
    from portal import export
    from tests.javaproperties import read

    with portal.test_request_context():
        config = db.session.get(Configuration, portal.config["configuration_id"])
        config.method = method
        properties = dict(read(export.mytimetable_properties(config)))
        assert properties["office365.scopes"] == scopes


FOLLOWING = {**GROUP, "group_scope_method": "access_policy", "follow_group": True}


def test_following_the_group_checks_that_the_token_may_read_its_members(portal, standins):
    standins.registration.admin_consented = True
    verified, links = verify(portal, **FOLLOWING)
    assert not verified
    assert links[-1] == ("group_readable", "failed", "no_group_role")
    standins.registration.application_permissions.add("GroupMember.Read.All")
    verified, links = verify(portal)
    assert verified, links
    assert links[-1] == ("group_readable", "passed", None)
    with portal.app_context():
        link = db.session.get(Configuration, portal.config["configuration_id"]).latest_run()[-1]
        assert verification.evidence_text(link) == (
            "Read 3 members of mytimetable@contoso.edu (application permission "
            "GroupMember.Read.All)."
        )


def test_following_a_group_microsoft_does_not_know_fails_at_its_link(portal, standins):
    standins.registration.admin_consented = True
    standins.registration.application_permissions.add("Group.Read.All")
    verified, links = verify(portal, **{**FOLLOWING, "security_group_email": "nobody@contoso.edu"})
    assert not verified and links[-1] == ("group_readable", "failed", "GroupNotFound")


def test_following_with_rbac_needs_only_the_group_permission_in_entra(portal, standins):
    standins.registration.policy_mailboxes = None
    standins.registration.rbac_mailboxes = {ADELE, MEGAN}
    standins.registration.application_permissions = {"GroupMember.Read.All"}
    standins.registration.admin_consented = True
    verified, links = verify(portal, **{**FOLLOWING, "group_scope_method": "rbac"})
    assert verified, links
    assert [kind for kind, _, _ in links][-3:] == [
        "mailbox_reachable",
        "scope_enforced",
        "group_readable",
    ]


def test_without_following_the_chain_reads_no_group(portal, standins):
    standins.registration.admin_consented = True  # no group permission granted
    verified, links = verify(portal, **{**GROUP, "group_scope_method": "access_policy"})
    assert verified and "group_readable" not in [kind for kind, _, _ in links]


def test_choosing_to_follow_makes_an_earlier_run_old(portal, standins):
    standins.registration.admin_consented = True
    assert verify(portal, **{**GROUP, "group_scope_method": "access_policy"})[0]
    with portal.app_context():
        config = db.session.get(Configuration, portal.config["configuration_id"])
        assert not verification.checked_before_change(config, config.latest_run())
        config.follow_group = True
        assert verification.checked_before_change(config, config.latest_run())
