"""The stand-ins behave as Microsoft documents, driven by the real MSAL as the portal is."""

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests

from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_CLIENT_ID
from tests.standins.identity import (
    GRAPH_APP_ID,
    GRAPH_DEFAULT,
    RESPONSE_MODES,
    WORLDWIDE_GRAPH,
)
from tests.standins.tls import SYSTEM_CA_BUNDLE
from tests.standins_selftest.helpers import (
    REDIRECT_URI,
    Browser,
    CASession,
    callback,
    form_post,
    make_credential,
)

# MSAL 1.39 recommends form_post; the portal keeps query mode for its SameSite=Lax cookie.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")

ADELE = "adele.vance@contoso.edu"
ADELE_ID = "6e7b768e-07e2-4810-8459-485f84f8f204"
ROOT = Path(__file__).resolve().parents[2]


def demo_app(directory):
    return directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID)


def graph_scopes(standins, *names):
    return [f"{WORLDWIDE_GRAPH}/{name}" for name in names or ("Calendars.ReadWrite", "User.Read")]


def app_only_token(make_msal, standins) -> dict:
    result = make_msal().acquire_token_for_client([GRAPH_DEFAULT])
    assert "access_token" in result, result
    return result


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def sign_in(app, browser: Browser, standins, login: str = ADELE, *buttons, scopes=None):
    """Run the authorization code flow to the callback: (flow, callback query)."""
    flow = app.initiate_auth_code_flow(
        scopes or graph_scopes(standins), redirect_uri=REDIRECT_URI, login_hint=login
    )
    return flow, browser.sign_in(flow["auth_uri"], login, *buttons)


def user_tokens(app, browser, standins, login: str = ADELE, scopes=None) -> dict:
    flow, query = sign_in(app, browser, standins, login, scopes=scopes)
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert "access_token" in result, result
    return result


def graph(http, standins, path: str, token: str | None, method: str = "GET", **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request(method, f"{standins.graph.url}/v1.0{path}", headers=headers, **kwargs)


# Discovery and keys


def test_discovery_names_the_tenant_guid_whichever_domain_was_asked(http, standins):
    document = http.get(
        f"{standins.identity.url}/CONTOSO.edu/v2.0/.well-known/openid-configuration"
    ).json()

    prefix = f"{standins.identity.url}/{CONTOSO_TENANT_ID}"
    assert document["issuer"] == f"{prefix}/v2.0"
    assert document["authorization_endpoint"] == f"{prefix}/oauth2/v2.0/authorize"
    assert document["token_endpoint"] == f"{prefix}/oauth2/v2.0/token"
    assert document["jwks_uri"] == f"{prefix}/discovery/v2.0/keys"
    assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
    # the rest of v2-protocols-oidc.md's sample response
    assert document["subject_types_supported"] == ["pairwise"]
    assert document["userinfo_endpoint"].endswith("/oidc/userinfo")
    assert set(RESPONSE_MODES) <= set(document["response_modes_supported"])


def test_unknown_tenant_discovery_is_aadsts90002(http, standins):
    response = http.get(
        f"{standins.identity.url}/nowhere.example/v2.0/.well-known/openid-configuration"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant 'nowhere.example' not found.")
    assert "\r\nTrace ID: " in body["error_description"]
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=90002"


def test_msal_refuses_an_unknown_tenant(make_msal):
    with pytest.raises(ValueError):
        make_msal(tenant="nowhere.example")


def test_msal_fetches_discovery_once_per_application(directory, make_msal, standins):
    app = make_msal()
    app.acquire_token_for_client([GRAPH_DEFAULT])
    app.acquire_token_for_client([GRAPH_DEFAULT])

    assert directory.counters["openid-configuration"] == 1
    assert directory.counters["token"] == 1  # the second answer came from MSAL's cache


def test_keys_verify_issued_tokens(http, directory, make_msal, standins):
    token = app_only_token(make_msal, standins)["access_token"]
    jwks = http.get(f"{standins.identity.url}/{CONTOSO_TENANT_ID}/discovery/v2.0/keys").json()

    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=WORLDWIDE_GRAPH)
    assert claims["tid"] == CONTOSO_TENANT_ID


def test_bundle_trusts_the_stand_ins_and_keeps_the_system_cas(pki, make_msal):
    bundle = pki.bundle_path.read_text()
    assert bundle.endswith(pki.ca_path.read_text())
    if SYSTEM_CA_BUNDLE.exists():
        assert bundle.startswith(SYSTEM_CA_BUNDLE.read_text())
    with CASession(pki.bundle_path) as session:
        app = make_msal(http_client=session)
        assert app.authority.token_endpoint.endswith("/oauth2/v2.0/token")


def test_certificate_is_valid_for_localhost_too(http, standins):
    port = standins.identity.url.rsplit(":", 1)[1]
    response = http.get(f"https://localhost:{port}/contoso.edu/discovery/v2.0/keys")
    assert response.status_code == 200


# Client credentials


def test_app_token_carries_roles_after_admin_consent(directory, make_msal, standins):
    demo_app(directory).admin_consented = True

    result = app_only_token(make_msal, standins)

    assert result["token_type"] == "Bearer"
    claims = claims_of(result["access_token"])
    assert claims["roles"] == ["Calendars.ReadWrite"]
    assert claims["aud"] == WORLDWIDE_GRAPH
    assert claims["iss"] == f"https://sts.windows.net/{CONTOSO_TENANT_ID}/"
    assert claims["appid"] == DEMO_CLIENT_ID
    assert claims["idtyp"] == "app"
    assert claims["oid"] == demo_app(directory).service_principal_id


def test_graph_token_is_a_v1_token(make_msal, standins):
    """access-token-claims-reference.md: v1.0 tokens carry appid and appidacr ("2" for a
    certificate) and x5t in the header; azp and azpacr are v2.0-only claims."""
    token = app_only_token(make_msal, standins)["access_token"]

    claims = claims_of(token)
    assert claims["ver"] == "1.0"
    assert claims["appidacr"] == "2"
    assert "azp" not in claims and "azpacr" not in claims
    header = jwt.get_unverified_header(token)
    assert header["x5t"] == header["kid"]


def test_app_token_has_no_roles_claim_without_consent(make_msal, standins):
    claims = claims_of(app_only_token(make_msal, standins)["access_token"])
    assert "roles" not in claims


def test_sha1_thumbprint_credential_works(make_msal, standins, credential):
    app = make_msal(client_credential=credential.with_thumbprint())
    result = app.acquire_token_for_client([GRAPH_DEFAULT])
    assert "access_token" in result, result


def test_certificate_not_uploaded_is_aadsts700027(make_msal, standins, stranger_credential):
    app = make_msal(client_credential=stranger_credential.with_certificate())

    result = app.acquire_token_for_client([GRAPH_DEFAULT])

    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert "The key was not found." in result["error_description"]


def test_thumbprint_of_another_certificate_is_aadsts700027(
    make_msal, standins, stranger_credential
):
    app = make_msal(client_credential=stranger_credential.with_thumbprint())
    result = app.acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error_codes"] == [700027]
    assert stranger_credential.sha1.upper() in result["error_description"]


def test_registered_thumbprint_with_the_wrong_key_is_aadsts7000274(
    make_msal, standins, credential, stranger_credential
):
    forged = {"private_key": stranger_credential.key_pem, "thumbprint": credential.sha1}
    result = make_msal(client_credential=forged).acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error_codes"] == [7000274]


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": time.time() - 3600}, 700024),  # expired: not within its valid time range
        ({"iss": "00000000-0000-0000-0000-000000000001"}, 50048),  # iss is not sub
        (
            {
                "iss": "00000000-0000-0000-0000-000000000001",
                "sub": "00000000-0000-0000-0000-000000000001",
            },
            700021,  # another application's identifier
        ),
        ({"aud": "https://login.microsoftonline.com/contoso.edu/oauth2/v2.0/token"}, 50027),
    ],
)
def test_client_assertion_claims_are_checked(make_msal, standins, claims, code):
    """certificate-credentials.md: aud the token endpoint, iss = sub = the client ID, exp."""
    result = make_msal(client_claims=claims).acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [code]


def test_a_client_assertion_may_be_sent_again(http, standins, credential):
    """MSAL reuses one assertion (one jti) for minutes: Entra takes it more than once."""
    url = f"{standins.identity.url}/{CONTOSO_TENANT_ID}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "scope": GRAPH_DEFAULT,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": credential.assertion(url, DEMO_CLIENT_ID),
    }
    assert http.post(url, data=form).status_code == 200
    assert http.post(url, data=form).status_code == 200


def test_token_endpoint_errors_carry_the_documented_fields(http, standins):
    """reference-error-codes.md: error, error_description, error_codes, timestamp,
    trace_id, correlation_id, error_uri; an unknown tenant is invalid_request 90002."""
    response = http.post(
        f"{standins.identity.url}/nowhere.example/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID},
        headers={"client-request-id": "4c1e3d6e-1f5c-4f0e-9b8a-2d7c5e3f1a0b"},
    )

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["error"] == "invalid_request"
    assert body["error_codes"] == [90002]
    assert body["correlation_id"] == "4c1e3d6e-1f5c-4f0e-9b8a-2d7c5e3f1a0b"
    assert body["error_description"].endswith(f"Timestamp: {body['timestamp']}")


def test_unsupported_grant_type_is_aadsts70003(http, standins, credential):
    url = f"{standins.identity.url}/{CONTOSO_TENANT_ID}/oauth2/v2.0/token"
    response = http.post(
        url,
        data={
            "grant_type": "password",
            "client_id": DEMO_CLIENT_ID,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": credential.assertion(url, DEMO_CLIENT_ID),
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert response.json()["error_codes"] == [70003]


def test_unknown_client_is_aadsts700016(make_msal, standins):
    app = make_msal(client_id="00000000-0000-0000-0000-000000000001")
    result = app.acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]
    assert "was not found in the directory 'Contoso'" in result["error_description"]


def test_client_secret_is_aadsts7000215(make_msal, standins):
    result = make_msal(client_credential="a secret").acquire_token_for_client([GRAPH_DEFAULT])
    assert result["error_codes"] == [7000215]


def test_client_credentials_need_a_default_scope(make_msal, standins):
    result = make_msal().acquire_token_for_client([f"{WORLDWIDE_GRAPH}/Calendars.ReadWrite"])
    assert result["error"] == "invalid_scope"
    assert result["error_codes"] == [1002012]


@pytest.mark.parametrize(
    "resource",
    [
        "https://graph.microsoft.us",  # another cloud's Graph
        "https://graph.microsoft.com.evil.example",
        "HOST",  # where the stand-in serves Graph: a host is not a resource identifier
    ],
)
def test_client_credentials_for_another_resource_are_aadsts500011(make_msal, standins, resource):
    resource = standins.graph.url if resource == "HOST" else resource
    result = make_msal().acquire_token_for_client([f"{resource}/.default"])
    assert result["error"] == "invalid_resource"
    assert result["error_codes"] == [500011]
    assert f"The resource principal named {resource} was not found" in result["error_description"]


@pytest.mark.parametrize("resource", ["https://graph.microsoft.com", GRAPH_APP_ID])
def test_app_only_token_is_for_graphs_resource_identifier(make_msal, standins, resource):
    result = make_msal().acquire_token_for_client([f"{resource}/.default"])
    assert claims_of(result["access_token"])["aud"] == WORLDWIDE_GRAPH


# Authorization code flow


def test_sign_in_with_admin_consent_gives_user_tokens(directory, make_msal, browser, standins):
    demo_app(directory).admin_consented = True
    app = make_msal()

    result = user_tokens(app, browser, standins)

    assert result["id_token_claims"]["preferred_username"] == ADELE
    assert result["id_token_claims"]["aud"] == DEMO_CLIENT_ID
    assert result["client_info"]
    assert result["refresh_token"]
    assert set(result["scope"].split()) == set(graph_scopes(standins))
    access = claims_of(result["access_token"])
    assert access["scp"] == "Calendars.ReadWrite User.Read"
    assert access["oid"] == ADELE_ID
    assert "roles" not in access
    [account] = app.get_accounts()
    assert account["home_account_id"] == f"{ADELE_ID}.{CONTOSO_TENANT_ID}"


def test_id_token_is_a_v2_token_for_the_app(directory, make_msal, browser, standins):
    """id-token-claims-reference.md: aud the client ID, iss ends in /v2.0 (the discovery
    document's issuer), tid, oid, ver 2.0, the request's nonce; x5t only in v1.0 tokens."""
    demo_app(directory).admin_consented = True
    app = make_msal()
    flow, query = sign_in(app, browser, standins)

    result = app.acquire_token_by_auth_code_flow(flow, query)

    claims = result["id_token_claims"]
    assert claims["iss"] == f"{standins.identity.url}/{CONTOSO_TENANT_ID}/v2.0"
    assert claims["aud"] == DEMO_CLIENT_ID
    assert (claims["tid"], claims["oid"], claims["ver"]) == (CONTOSO_TENANT_ID, ADELE_ID, "2.0")
    assert claims["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert "x5t" not in jwt.get_unverified_header(result["id_token"])


def test_fragment_mode_puts_the_code_in_the_fragment(directory, make_msal, browser, standins):
    """v2-oauth2-auth-code-flow.md, response_mode: fragment is "supported if requesting
    only a code"."""
    demo_app(directory).admin_consented = True
    flow = make_msal().initiate_auth_code_flow(
        graph_scopes(standins), redirect_uri=REDIRECT_URI, response_mode="fragment"
    )

    page = browser.press(browser.open(flow["auth_uri"]), "idSIButton9", login=ADELE)

    location = urlsplit(page.headers["Location"])
    assert location.query == ""
    answer = dict(parse_qsl(location.fragment))
    assert answer["state"] == flow["state"]
    assert answer["code"]


def test_unsupported_response_mode_is_aadsts70007(make_msal, browser, standins):
    flow = make_msal().initiate_auth_code_flow(graph_scopes(standins), redirect_uri=REDIRECT_URI)
    query = callback(browser.open(flow["auth_uri"] + "&response_mode=web_message"))
    assert query["error_description"].startswith("AADSTS70007: ")
    assert query["state"] == flow["state"]


def test_prompt_none_without_a_session_is_login_required(make_msal, browser, standins):
    """v2-oauth2-auth-code-flow.md: prompt=none never shows a page; with nobody signed in,
    login_required (AADSTS50058, reference-error-codes.md)."""
    flow = make_msal().initiate_auth_code_flow(
        graph_scopes(standins), redirect_uri=REDIRECT_URI, prompt="none", login_hint=ADELE
    )
    query = callback(browser.open(flow["auth_uri"]))
    assert query["error"] == "login_required"
    assert query["error_description"].startswith("AADSTS50058: ")


def test_a_code_challenge_of_the_wrong_size_is_aadsts501491(make_msal, browser, standins):
    """RFC 7636: a challenge has 43 to 128 characters (reference-error-codes.md, 501491)."""
    flow = make_msal().initiate_auth_code_flow(graph_scopes(standins), redirect_uri=REDIRECT_URI)
    url, _, query = flow["auth_uri"].partition("?")
    params = dict(parse_qsl(query))
    params.update(code_challenge="short", code_challenge_method="plain")

    page = browser.session.get(url, params=params, allow_redirects=False)

    assert dict(parse_qsl(urlsplit(page.headers["Location"]).query))[
        "error_description"
    ].startswith("AADSTS501491: ")


@pytest.mark.parametrize(
    ("registered", "asked", "accepted"),
    [
        ("http://localhost:5000/cb", "http://localhost:61234/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:8080/cb", True),
        ("http://localhost:5000/cb", "http://localhost:5000/CB", False),  # case-sensitive
        ("https://portal.test/cb", "https://portal.test:8443/cb", False),  # not a loopback
    ],
)
def test_redirect_uris_match_exactly_but_for_a_loopback_port(
    directory, make_msal, browser, standins, registered, asked, accepted
):
    """reply-url.md: redirect URIs are case-sensitive; the port of a localhost one is
    ignored ("Localhost exceptions")."""
    demo_app(directory).redirect_uris.append(registered)
    flow = make_msal().initiate_auth_code_flow(graph_scopes(standins), redirect_uri=asked)

    page = browser.open(flow["auth_uri"])

    assert (page.status_code == 200) is accepted
    if not accepted:
        assert '<p id="error-code">AADSTS50011</p>' in page.text


def test_form_post_mode_posts_the_code_to_the_app(directory, make_msal, browser, standins):
    demo_app(directory).admin_consented = True
    app = make_msal()
    flow = app.initiate_auth_code_flow(
        graph_scopes(standins), redirect_uri=REDIRECT_URI, response_mode="form_post"
    )

    page = browser.press(browser.open(flow["auth_uri"]), "idSIButton9", login=ADELE)
    result = app.acquire_token_by_auth_code_flow(flow, form_post(page))

    assert "access_token" in result, result


def test_sign_in_page_is_prefilled_from_the_login_hint(make_msal, browser, standins):
    flow = make_msal().initiate_auth_code_flow(
        graph_scopes(standins), redirect_uri=REDIRECT_URI, login_hint=ADELE
    )
    page = browser.open(flow["auth_uri"])
    assert page.status_code == 200
    assert f'name="login" value="{ADELE}"' in page.text
    assert 'id="idSIButton9"' in page.text


def test_sign_in_for_graph_by_its_host_is_aadsts500011(make_msal, browser, standins):
    flow = make_msal().initiate_auth_code_flow(
        [f"{standins.graph.url}/Calendars.ReadWrite"], redirect_uri=REDIRECT_URI
    )
    query = callback(browser.open(flow["auth_uri"]))
    assert query["error"] == "invalid_resource"
    assert query["error_description"].startswith("AADSTS500011: ")


def test_unknown_username_shows_the_sign_in_page_again(make_msal, browser, standins):
    flow = make_msal().initiate_auth_code_flow(graph_scopes(standins), redirect_uri=REDIRECT_URI)
    page = browser.press(browser.open(flow["auth_uri"]), "idSIButton9", login="nobody@contoso.edu")
    assert page.status_code == 200
    assert "This username may be incorrect" in page.text


def test_user_consent_when_the_tenant_allows_it(directory, make_msal, browser, standins):
    directory.find_tenant(CONTOSO_TENANT_ID).user_consent_allowed = True
    app = make_msal()

    flow, query = sign_in(app, browser, standins, ADELE, "idBtn_Accept")
    result = app.acquire_token_by_auth_code_flow(flow, query)

    assert "access_token" in result, result
    assert DEMO_CLIENT_ID in directory.user_by_upn(ADELE).consented_clients


def test_declined_consent_is_aadsts65004(directory, make_msal, browser, standins):
    directory.find_tenant(CONTOSO_TENANT_ID).user_consent_allowed = True
    app = make_msal()

    flow, query = sign_in(app, browser, standins, ADELE, "idBtn_Back")
    result = app.acquire_token_by_auth_code_flow(flow, query)

    assert query["error_subcode"] == "cancel"
    assert result["error"] == "access_denied"
    assert result["error_description"].startswith("AADSTS65004: ")


def test_user_consent_blocked_needs_admin_approval_aadsts90094(make_msal, browser, standins):
    app = make_msal()

    flow, query = sign_in(app, browser, standins, ADELE, "idBtn_Back")
    result = app.acquire_token_by_auth_code_flow(flow, query)

    assert result["error"] == "access_denied"
    assert result["error_description"].startswith("AADSTS90094: ")


@pytest.mark.parametrize("for_organization", [False, True])
def test_an_administrator_may_consent_where_users_may_not(
    directory, make_msal, browser, standins, for_organization
):
    """application-consent-experience.md: an administrator is asked for consent even where
    users may not give it, and may tick "Consent on behalf of your organization"."""
    app = make_msal()
    flow = app.initiate_auth_code_flow(graph_scopes(standins), redirect_uri=REDIRECT_URI)
    page = browser.press(browser.open(flow["auth_uri"]), "idSIButton9", login="admin@contoso.edu")
    assert "Permissions requested" in page.text
    assert "Consent on behalf of your organization" in page.text

    fields = {"for_organization": "1"} if for_organization else {}
    result = app.acquire_token_by_auth_code_flow(
        flow, callback(browser.press(page, "idBtn_Accept", **fields))
    )

    assert "access_token" in result, result
    admin = directory.user_by_upn("admin@contoso.edu")
    assert (DEMO_CLIENT_ID in admin.consented_clients) is not for_organization
    # For the organisation: the delegated permissions asked for, for everyone (Adele signs
    # in without being asked), never the application permissions (no roles).
    assert not demo_app(directory).admin_consented
    if for_organization:
        assert "access_token" in user_tokens(make_msal(), browser, standins, ADELE)
    assert "roles" not in claims_of(app_only_token(make_msal, standins)["access_token"])


def test_need_admin_approval_page_offers_no_accept(make_msal, browser, standins):
    flow = make_msal().initiate_auth_code_flow(graph_scopes(standins), redirect_uri=REDIRECT_URI)
    page = browser.press(browser.open(flow["auth_uri"]), "idSIButton9", login=ADELE)
    assert "Need admin approval" in page.text
    assert "idBtn_Accept" not in page.text


def test_user_of_another_tenant_is_aadsts50020(directory, make_msal, browser, standins):
    demo_app(directory).admin_consented = True
    app = make_msal()

    flow, query = sign_in(app, browser, standins, "guest@fabrikam.com")
    result = app.acquire_token_by_auth_code_flow(flow, query)

    assert result["error"] == "invalid_request"
    assert result["error_description"].startswith("AADSTS50020: User account 'guest@fabrikam.com'")


def test_a_code_is_redeemed_once_aadsts54005(directory, make_msal, browser, standins):
    demo_app(directory).admin_consented = True
    app = make_msal()
    flow, query = sign_in(app, browser, standins)
    assert "access_token" in app.acquire_token_by_auth_code_flow(dict(flow), query)

    replayed = app.acquire_token_by_auth_code_flow(dict(flow), query)

    assert replayed["error"] == "invalid_grant"
    assert replayed["error_codes"] == [54005]


def test_redeeming_a_code_for_graphs_host_is_aadsts500011(
    directory, make_msal, browser, standins, http, credential
):
    """v2-oauth2-auth-code-flow.md: the scopes of a redemption name one resource by its
    identifier; a host is not one (reference-error-codes.md, 500011)."""
    demo_app(directory).admin_consented = True
    flow, query = sign_in(make_msal(), browser, standins)
    url = f"{standins.identity.url}/{CONTOSO_TENANT_ID}/oauth2/v2.0/token"

    response = http.post(
        url,
        data={
            "grant_type": "authorization_code",
            "client_id": DEMO_CLIENT_ID,
            "code": query["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": flow["code_verifier"],
            "scope": f"openid {standins.graph.url}/Calendars.ReadWrite",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": credential.assertion(url, DEMO_CLIENT_ID),
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_resource"
    assert response.json()["error_codes"] == [500011]


def test_wrong_pkce_verifier_is_aadsts501481(directory, make_msal, browser, standins):
    demo_app(directory).admin_consented = True
    app = make_msal()
    flow, query = sign_in(app, browser, standins)

    result = app.acquire_token_by_auth_code_flow({**flow, "code_verifier": "x" * 43}, query)

    assert result["error_codes"] == [501481]


def test_refresh_works_until_sessions_are_revoked(directory, make_msal, browser, standins):
    demo_app(directory).admin_consented = True
    app = make_msal()
    first = user_tokens(app, browser, standins)
    [account] = app.get_accounts()
    scopes = graph_scopes(standins)

    refreshed = app.acquire_token_silent(scopes, account, force_refresh=True)
    assert refreshed["access_token"] != first["access_token"]

    assert directory.revoke_refresh_tokens(ADELE) == 2
    failed = app.acquire_token_silent_with_error(scopes, account, force_refresh=True)
    assert failed["error"] == "invalid_grant"
    assert failed["error_codes"] == [50173]


def test_a_refresh_token_stays_valid_after_use(directory, make_msal, browser, standins):
    """v2-oauth2-auth-code-flow.md: "Refresh tokens aren't revoked when used to acquire new
    access tokens"; each answer brings a new one to keep."""
    demo_app(directory).admin_consented = True
    app = make_msal()
    first = user_tokens(app, browser, standins)
    scopes = graph_scopes(standins)

    refreshed = app.acquire_token_by_refresh_token(first["refresh_token"], scopes)
    again = app.acquire_token_by_refresh_token(first["refresh_token"], scopes)

    assert refreshed["refresh_token"] != first["refresh_token"]
    assert "access_token" in again, again


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"redirect_uri": "https://elsewhere.test/callback"}, 50011),
        ({"client_id": "00000000-0000-0000-0000-000000000001"}, 700016),
    ],
)
def test_authorize_errors_before_the_redirect_stay_on_entras_page(
    make_msal, browser, standins, change, code
):
    flow = make_msal().initiate_auth_code_flow(graph_scopes(standins), redirect_uri=REDIRECT_URI)
    url, _, query = flow["auth_uri"].partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    params.update(change)

    page = browser.session.get(url, params=params, allow_redirects=False)

    assert page.status_code == 400
    assert "Sorry, but we're having trouble signing you in." in page.text
    assert f'<p id="error-code">AADSTS{code}</p>' in page.text


def test_authorize_at_an_unknown_tenant_is_aadsts90002(browser, standins):
    page = browser.open(f"{standins.identity.url}/nowhere.example/oauth2/v2.0/authorize")
    assert '<p id="error-code">AADSTS90002</p>' in page.text


# Admin consent


def admin_consent_url(standins, **params):
    query = {
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "state": "12345",
        "scope": GRAPH_DEFAULT,
        **params,
    }
    request = requests.Request(
        "GET", f"{standins.identity.url}/contoso.edu/v2.0/adminconsent", params=query
    )
    return request.prepare().url


def test_admin_consent_accept_grants_the_app_its_roles(directory, make_msal, browser, standins):
    page = browser.open(admin_consent_url(standins))
    assert "Accept for your organization" in page.text

    query = callback(browser.press(page, "idBtn_Accept", login="admin@contoso.edu"))

    assert query == {
        "admin_consent": "True",
        "tenant": CONTOSO_TENANT_ID,
        "state": "12345",
        "scope": GRAPH_DEFAULT,
    }
    assert demo_app(directory).admin_consented
    assert claims_of(app_only_token(make_msal, standins)["access_token"])["roles"]


def test_admin_consent_to_named_scopes_grants_no_application_permission(
    directory, make_msal, browser, standins
):
    """v2-admin-consent.md: "In order to request app permissions, you must use the
    /.default value"; named scopes are granted, as delegated permissions, for everyone."""
    scope = " ".join(graph_scopes(standins))
    page = browser.open(admin_consent_url(standins, scope=scope))

    query = callback(browser.press(page, "idBtn_Accept", login="admin@contoso.edu"))

    assert query["admin_consent"] == "True" and query["scope"] == scope
    assert "roles" not in claims_of(app_only_token(make_msal, standins)["access_token"])
    assert "access_token" in user_tokens(make_msal(), browser, standins, ADELE)


def test_admin_consent_cancel_reports_aadsts65004(directory, browser, standins):
    query = callback(browser.press(browser.open(admin_consent_url(standins)), "idBtn_Back"))

    # v2-admin-consent.md, "Error response": error=consent_required, AADSTS65004.
    assert query["error"] == "consent_required"
    assert query["error_description"].startswith("AADSTS65004: ")
    assert query["admin_consent"] == "True"
    assert query["state"] == "12345"
    assert not demo_app(directory).admin_consented


def test_admin_consent_without_scope_is_aadsts90014(browser, standins):
    query = callback(browser.open(admin_consent_url(standins, scope="")))
    assert query["error"] == "invalid_request"
    assert query["error_description"].startswith("AADSTS90014: ")
    assert query["admin_consent"] == "True"  # on every answer of the admin consent flow


def test_only_an_administrator_grants_admin_consent(directory, browser, standins):
    """v2-oauth2-client-creds-grant-flow.md: "only a tenant administrator can sign in to
    complete the request"; anyone else needs admin approval (AADSTS90094)."""
    page = browser.press(browser.open(admin_consent_url(standins)), "idBtn_Accept", login=ADELE)
    assert "Need admin approval" in page.text
    assert "idBtn_Accept" not in page.text

    query = callback(browser.press(page, "idBtn_Back"))

    assert query["error"] == "access_denied"
    assert query["error_description"].startswith("AADSTS90094: ")
    assert query["admin_consent"] == "True"
    assert query["state"] == "12345"
    assert not demo_app(directory).admin_consented


def test_admin_consent_for_graphs_host_instead_of_its_identifier_is_aadsts650057(
    directory, browser, standins
):
    query = callback(
        browser.open(admin_consent_url(standins, scope=f"{standins.graph.url}/.default"))
    )
    assert query["error_description"].startswith("AADSTS650057: Invalid resource.")
    assert query["admin_consent"] == "True"
    assert "tenant" not in query
    assert not demo_app(directory).admin_consented


# Sign-out


@pytest.mark.parametrize(
    ("target", "redirected"),
    [(REDIRECT_URI, True), ("https://elsewhere.test/", False)],
)
def test_sign_out_returns_only_to_a_registered_redirect_uri(browser, standins, target, redirected):
    """v2-protocols-oidc.md: post_logout_redirect_uri must be a registered redirect URI;
    otherwise Microsoft's own signed-out page."""
    page = browser.session.get(
        f"{standins.identity.url}/contoso.edu/oauth2/v2.0/logout",
        params={"post_logout_redirect_uri": target},
        allow_redirects=False,
    )
    if redirected:
        assert page.headers["Location"] == target
    else:
        assert page.status_code == 200
        assert "You signed out of your account" in page.text


# Graph


def test_app_token_lists_the_calendars_of_a_mailbox_in_the_policy(
    directory, http, make_msal, standins
):
    demo_app(directory).admin_consented = True
    token = app_only_token(make_msal, standins)["access_token"]

    response = graph(http, standins, f"/users/{ADELE}/calendars", token)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith("/calendars")
    [calendar] = body["value"]
    assert calendar["isDefaultCalendar"] is True
    assert calendar["owner"] == {"name": "Adele Vance", "address": ADELE}
    assert directory.counters["graph:list_calendars"] == 1


def test_app_token_creates_a_calendar(directory, http, make_msal, standins):
    demo_app(directory).admin_consented = True
    token = app_only_token(make_msal, standins)["access_token"]
    path = f"/users/{ADELE_ID}/calendars"

    created = graph(http, standins, path, token, "POST", json={"name": "MyTimetable"})
    again = graph(http, standins, path, token, "POST", json={"name": "MyTimetable"})

    assert created.status_code == 201
    assert created.json()["name"] == "MyTimetable"
    assert again.status_code == 409
    names = [c["name"] for c in graph(http, standins, path, token).json()["value"]]
    assert names == ["Calendar", "MyTimetable"]


@pytest.mark.parametrize(
    ("consented", "mailbox", "status", "code", "message"),
    [
        (False, ADELE, 403, "ErrorAccessDenied", "Access is denied. Check credentials"),
        # auth-limit-mailbox-access.md, "Handling API errors".
        (True, "alex.wilber@contoso.edu", 403, "ErrorAccessDenied", "Access to OData is disabled."),
        (True, "nobody@contoso.edu", 404, "ErrorInvalidUser", "'nobody@contoso.edu' is invalid"),
        (True, "guest@fabrikam.com", 404, "ErrorInvalidUser", "is invalid"),
        # Exchange troubleshooting, KB 4462988.
        (True, "lee.gu@contoso.edu", 404, "MailboxNotEnabledForRESTAPI", "REST API is not yet"),
    ],
)
def test_app_token_calendar_errors(
    directory, http, make_msal, standins, consented, mailbox, status, code, message
):
    demo_app(directory).admin_consented = consented
    token = app_only_token(make_msal, standins)["access_token"]

    response = graph(http, standins, f"/users/{mailbox}/calendars", token)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert message in error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_bad_tokens_are_401(directory, http, standins):
    now = int(time.time())
    claims = {"tid": CONTOSO_TENANT_ID, "iat": now, "exp": now + 600, "roles": ["Calendars.Read"]}
    cases = {
        None: "Access token is empty.",
        "not-a-jwt": "CompactToken parsing failed",
        directory.sign({**claims, "aud": "https://elsewhere.test"}): "Invalid audience.",
        # the host Graph's requests reach is not its resource identifier
        directory.sign({**claims, "aud": standins.graph.url}): "Invalid audience.",
        directory.sign({**claims, "aud": WORLDWIDE_GRAPH, "exp": now - 600}): "expired",
        directory.sign({**claims, "aud": WORLDWIDE_GRAPH})[:-4] + "AAAA": "validation failure",
    }
    for token, message in cases.items():
        response = graph(http, standins, f"/users/{ADELE}/calendars", token)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "InvalidAuthenticationToken"
        assert message in error["message"], token


def test_delegated_token_reads_me_and_my_calendars(directory, http, make_msal, browser, standins):
    demo_app(directory).admin_consented = True
    token = user_tokens(make_msal(), browser, standins)["access_token"]

    me = graph(http, standins, "/me", token)
    calendars = graph(http, standins, "/me/calendars", token)
    other = graph(http, standins, "/users/megan.bowen@contoso.edu/calendars", token)

    assert me.json()["userPrincipalName"] == ADELE
    assert me.json()["id"] == ADELE_ID
    assert calendars.status_code == 200
    assert calendars.json()["value"][0]["name"] == "Calendar"
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "ErrorAccessDenied"


def test_delegated_token_without_calendar_scope_is_denied(
    directory, http, make_msal, browser, standins
):
    demo_app(directory).delegated_permissions = {"User.Read", "offline_access"}
    demo_app(directory).admin_consented = True
    result = user_tokens(make_msal(), browser, standins, scopes=graph_scopes(standins, "User.Read"))

    response = graph(http, standins, "/me/calendars", result["access_token"])

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ErrorAccessDenied"


def test_me_needs_a_delegated_token(directory, http, make_msal, standins):
    demo_app(directory).admin_consented = True
    token = app_only_token(make_msal, standins)["access_token"]
    assert graph(http, standins, "/me", token).status_code == 400


# Running by hand


def test_command_line_serves_the_demo_until_terminated(tmp_path):
    command = [sys.executable, "-m", "tests.standins", "--pki-dir", str(tmp_path)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            identity_line = process.stdout.readline()
            assert identity_line.startswith("Identity stand-in: https://127.0.0.1:"), identity_line
            authority = identity_line.split(": ", 1)[1].strip()
            session = CASession(tmp_path / "bundle.pem")
            with session:
                response = session.get(f"{authority}/v2.0/.well-known/openid-configuration")
            assert response.json()["issuer"].endswith(f"/{CONTOSO_TENANT_ID}/v2.0")
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=10)
    assert process.returncode == 0


def test_entra_page_uploads_a_certificate_and_grants_consent():
    """The hand-testing page changes the directory as Entra's portal would."""
    from tests.standins.demo import seed_demo
    from tests.standins.directory import Directory
    from tests.standins.entra import create_entra_app

    directory = Directory()
    ids = seed_demo(directory)
    client = create_entra_app(directory).test_client()
    registration = directory.app(ids["tenant_id"], ids["client_id"])
    cert_pem = make_credential("Uploaded by hand").cert_pem
    base = f"/{ids['tenant_id']}/{ids['client_id']}"
    assert client.post(f"{base}/certificates", data={"pem": cert_pem}).status_code == 302
    assert registration.certificates == [cert_pem]
    assert client.post(f"{base}/certificates", data={"pem": "nonsense"}).status_code == 400
    client.post(f"{base}/consent", data={"grant": "1"})
    assert registration.admin_consented
    assert "Revoke admin consent" in client.get("/").text


@pytest.mark.parametrize(
    ("uri", "accepted"),
    [
        ("https://portal.example.edu/connect/callback", True),
        ("http://localhost:5000/connect/callback", True),
        ("https://127.0.0.1:5000/connect/callback", True),
        ("http://portal.example.edu/connect/callback", False),  # http only for localhost
        ("http://127.0.0.1:5000/connect/callback", False),  # only through the manifest
        ("https://portal.example.edu/connect/callback;x", False),  # special character
        ("https://portal.example.edu/" + "a" * 250, False),  # over 256 characters
    ],
)
def test_entra_page_refuses_redirect_uris_entra_refuses(uri, accepted):
    """reply-url.md: https, or http for localhost; at most 256 characters; none of
    ! $ ' ( ) , ; — and http://127.0.0.1 not through the admin center's box."""
    from tests.standins.demo import seed_demo
    from tests.standins.directory import Directory
    from tests.standins.entra import create_entra_app

    directory = Directory()
    ids = seed_demo(directory)
    client = create_entra_app(directory).test_client()

    response = client.post(
        f"/{ids['tenant_id']}/{ids['client_id']}/redirect-uris", data={"uri": uri}
    )

    assert response.status_code == (302 if accepted else 400)
    registered = directory.app(ids["tenant_id"], ids["client_id"]).redirect_uris
    assert (uri in registered) is accepted
