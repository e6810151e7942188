"""The identity stand-in's directory roles and multi-tenant apps, against Microsoft's
documents: ``wids`` only with groupMembershipClaims DirectoryRole or All
(access-token-claims-reference.md), manifest values Entra refuses refused
(reference-app-manifest.md), a single-tenant app unknown in other tenants (AADSTS700016)."""

import pytest

from tests.standins.demo import CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID
from tests.standins.directory import AppRegistration
from tests.standins.identity import WORLDWIDE_GRAPH
from tests.standins_selftest.helpers import REDIRECT_URI, callback

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
DEFAULT_USER_ROLE = "b79fbf4d-3ef9-4689-8143-76b194e85509"
SIGN_IN_CLIENT = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
ADMIN = "admin@contoso.edu"


@pytest.fixture
def sign_in_app(directory, credential):
    """A multi-tenant app registered in Fabrikam, used in Contoso."""
    return directory.add_app(
        AppRegistration(
            client_id=SIGN_IN_CLIENT,
            tenant_id=FABRIKAM_TENANT_ID,
            display_name="Sign-in",
            certificates=[credential.cert_pem],
            redirect_uris=[REDIRECT_URI],
            delegated_permissions={"User.Read"},
            sign_in_audience="AzureADMultipleOrgs",
        )
    )


def id_token_claims(make_msal, browser, tenant=CONTOSO_TENANT_ID, login=ADMIN) -> dict:
    app = make_msal(tenant=tenant, client_id=SIGN_IN_CLIENT)
    flow = app.initiate_auth_code_flow([f"{WORLDWIDE_GRAPH}/User.Read"], redirect_uri=REDIRECT_URI)
    query = browser.sign_in(flow["auth_uri"], login, "idBtn_Accept")
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert "id_token_claims" in result, result
    return result["id_token_claims"]


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        (None, False),
        ("None", False),
        ("SecurityGroup", False),
        ("ApplicationGroup", False),
        ("DirectoryRole", True),
        ("All", True),
    ],
)
def test_wids_only_with_directory_role_or_all(
    directory, sign_in_app, make_msal, browser, standins, claims, expected
):
    directory.user_by_upn(ADMIN).directory_roles = {GLOBAL_ADMINISTRATOR}
    sign_in_app.set_group_membership_claims(claims)
    token = id_token_claims(make_msal, browser)
    assert ("wids" in token) is expected
    if expected:
        assert token["wids"] == sorted([GLOBAL_ADMINISTRATOR, DEFAULT_USER_ROLE])
        assert token["tid"] == CONTOSO_TENANT_ID


def test_a_member_without_roles_has_only_the_default_user_role(
    directory, sign_in_app, make_msal, browser, standins
):
    sign_in_app.set_group_membership_claims("DirectoryRole")
    assert id_token_claims(make_msal, browser)["wids"] == [DEFAULT_USER_ROLE]


@pytest.mark.parametrize("value", ["directoryrole", "Roles", ""])
def test_the_manifest_refuses_other_group_membership_claims(sign_in_app, value):
    with pytest.raises(ValueError, match="groupMembershipClaims"):
        sign_in_app.set_group_membership_claims(value)


def test_the_manifest_refuses_an_unknown_sign_in_audience():
    with pytest.raises(ValueError, match="signInAudience"):
        AppRegistration("id", CONTOSO_TENANT_ID, "x", sign_in_audience="Everyone")


def test_a_single_tenant_app_is_unknown_in_another_tenant(
    directory, sign_in_app, make_msal, browser, standins
):
    sign_in_app.sign_in_audience = "AzureADMyOrg"
    app = make_msal(tenant=CONTOSO_TENANT_ID, client_id=SIGN_IN_CLIENT)
    flow = app.initiate_auth_code_flow([f"{WORLDWIDE_GRAPH}/User.Read"], redirect_uri=REDIRECT_URI)
    page = browser.open(flow["auth_uri"])
    assert page.status_code == 400 and "AADSTS700016" in page.text


def test_a_user_of_another_tenant_is_refused_even_for_a_multi_tenant_app(
    directory, sign_in_app, make_msal, browser, standins
):
    app = make_msal(tenant=CONTOSO_TENANT_ID, client_id=SIGN_IN_CLIENT)
    flow = app.initiate_auth_code_flow([f"{WORLDWIDE_GRAPH}/User.Read"], redirect_uri=REDIRECT_URI)
    page = browser.press(browser.open(flow["auth_uri"]), "idSIButton9", login="guest@fabrikam.com")
    assert "50020" in callback(page)["error_description"]
