"""Writes the betamax cassettes for the integration tests on Microsoft's real endpoints.

Microsoft cannot be reached from the build machines, so these cassettes are not
recordings: each body follows a response documented by Microsoft (the OpenID metadata of
a v2.0 authority, the token endpoint's success and error shapes with AADSTS codes, Graph's
calendar list and error object). The tenant, users and tokens are fictitious: the access
token is a JWT with a dummy signature, readable but not verifiable, as the portal only
reads its claims. Run ``python tests/cassettes/make_cassettes.py`` after changing this.
"""

import base64
import json
from pathlib import Path

HERE = Path(__file__).parent
TENANT = "contoso.onmicrosoft.com"
TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
CLIENT_ID = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"
SP_ID = "3b1a7d52-8f43-4e2b-9a61-0c5d9e7f1a24"
LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
RECORDED_AT = "2026-11-25T10:00:00"
TRACE = "\r\nTrace ID: 0b1e5f5c-4e1d-4a8e-9f6b-2d7c3a4b5c00\r\nCorrelation ID: 7c9e6679-7425-40de-944b-e07fc1f90ae7\r\nTimestamp: 2026-11-25 10:00:00Z"  # noqa: E501


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def access_token(**claims) -> str:
    header = {"typ": "JWT", "alg": "RS256", "x5t": "fictitious", "kid": "fictitious"}
    body = {
        "aud": GRAPH,
        "iss": f"https://sts.windows.net/{TENANT_ID}/",
        "iat": 1795600000,
        "nbf": 1795600000,
        "exp": 1795603899,
        "app_displayname": "MyTimetable",
        "appid": CLIENT_ID,
        "idtyp": "app",
        "oid": SP_ID,
        "sub": SP_ID,
        "tid": TENANT_ID,
        "ver": "1.0",
        **claims,
    }
    parts = [json.dumps(header).encode(), json.dumps(body).encode(), b"fictitious-signature"]
    return ".".join(b64url(p) for p in parts)


def interaction(method: str, uri: str, status: int, body: dict, message: str = "") -> dict:
    return {
        "request": {
            "body": {"encoding": "utf-8", "string": ""},
            "headers": {"Accept": ["application/json"]},
            "method": method,
            "uri": uri,
        },
        "response": {
            "body": {"encoding": "utf-8", "string": json.dumps(body)},
            "headers": {
                "Content-Type": ["application/json; charset=utf-8"],
                "Cache-Control": ["no-store, no-cache"],
            },
            "status": {"code": status, "message": message or {200: "OK"}.get(status, "")},
            "url": uri,
        },
        "recorded_at": RECORDED_AT,
    }


def openid_configuration(tenant: str = TENANT) -> dict:
    base = f"{LOGIN}/{TENANT_ID}"
    return interaction(
        "GET",
        f"{LOGIN}/{tenant}/v2.0/.well-known/openid-configuration",
        200,
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{LOGIN}/{TENANT_ID}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{LOGIN}/{TENANT_ID}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{GRAPH}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "oid"],
            "kerberos_endpoint": f"{LOGIN}/{TENANT_ID}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        },
    )


def aadsts(error: str, code: int, text: str) -> dict:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {text}{TRACE}",
        "error_codes": [code],
        "timestamp": "2026-11-25 10:00:00Z",
        "trace_id": "0b1e5f5c-4e1d-4a8e-9f6b-2d7c3a4b5c00",
        "correlation_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "error_uri": f"{LOGIN}/error?code={code}",
    }


def instance_discovery() -> dict:
    """MSAL asks for the cloud's aliases after a token request fails."""
    return interaction(
        "GET",
        f"{LOGIN}/common/discovery/instance?api-version=1.1&authorization_endpoint="
        "https%3A%2F%2Flogin.microsoftonline.com%2Fcommon%2Foauth2%2Fauthorize",
        200,
        {
            "tenant_discovery_endpoint": f"{LOGIN}/common/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [
                {
                    "preferred_network": "login.microsoftonline.com",
                    "preferred_cache": "login.windows.net",
                    "aliases": [
                        "login.microsoftonline.com",
                        "login.windows.net",
                        "login.microsoft.com",
                        "sts.windows.net",
                    ],
                },
                {
                    "preferred_network": "login.microsoftonline.us",
                    "preferred_cache": "login.microsoftonline.us",
                    "aliases": ["login.microsoftonline.us", "login.usgovcloudapi.net"],
                },
                {
                    "preferred_network": "login.chinacloudapi.cn",
                    "preferred_cache": "login.partner.microsoftonline.cn",
                    "aliases": ["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
                },
            ],
        },
    )


def token(status: int, body: dict) -> dict:
    return interaction("POST", f"{LOGIN}/{TENANT_ID}/oauth2/v2.0/token", status, body)


def calendars(mailbox: str, name: str) -> dict:
    return interaction(
        "GET",
        f"{GRAPH}/v1.0/users/{mailbox}/calendars?$select=id,name,owner,canEdit",
        200,
        {
            "@odata.context": f"{GRAPH}/v1.0/$metadata#users('{mailbox}')/calendars(id,name,owner,canEdit)",  # noqa: E501
            "value": [
                {
                    "@odata.etag": 'W/"fictitious"',
                    "id": "AAMkAGI2TGuLAAA=",
                    "name": "Calendar",
                    "canEdit": True,
                    "owner": {"name": name, "address": mailbox},
                }
            ],
        },
    )


def graph_error(mailbox: str, status: int, code: str, message: str) -> dict:
    return interaction(
        "GET",
        f"{GRAPH}/v1.0/users/{mailbox}/calendars?$select=id,name,owner,canEdit",
        status,
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": "2026-11-25T10:00:00",
                    "request-id": "5f3c8a2e-1b4d-4c6e-8f7a-9b0c1d2e3f40",
                    "client-request-id": "5f3c8a2e-1b4d-4c6e-8f7a-9b0c1d2e3f40",
                },
            }
        },
    )


GRANTED = token(
    200,
    {
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access_token(roles=["Calendars.ReadWrite"]),
    },
)
RAOP = "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."  # noqa: E501

CASSETTES = {
    "application_verified": [
        openid_configuration(),
        GRANTED,
        calendars("adele.vance@contoso.edu", "Adele Vance"),
        graph_error("alex.wilber@contoso.edu", 403, "ErrorAccessDenied", RAOP),
    ],
    "tenant_not_found": [
        interaction(
            "GET",
            f"{LOGIN}/nonexistent.example/v2.0/.well-known/openid-configuration",
            400,
            aadsts(
                "invalid_tenant",
                90002,
                "Tenant 'nonexistent.example' not found. Check to make sure you have the "
                "correct tenant ID and are signing into the correct cloud. Check with your "
                "subscription administrator, this may happen if there are no active "
                "subscriptions for the tenant.",
            ),
            "Bad Request",
        )
    ],
    "application_not_found": [
        openid_configuration(),
        token(
            400,
            aadsts(
                "unauthorized_client",
                700016,
                f"Application with identifier '{CLIENT_ID}' was not found in the directory "
                "'Contoso'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You "
                "may have sent your authentication request to the wrong tenant.",
            ),
        ),
        instance_discovery(),
    ],
    "certificate_not_uploaded": [
        openid_configuration(),
        token(
            401,
            aadsts(
                "invalid_client",
                700027,
                "Client assertion failed signature validation. [Reason - The key was not "
                "found., Thumbprint of key used by client: 'FICTITIOUS', Please visit the "
                "Azure Portal, Graph Explorer or directly use MS Graph to see configured "
                f"keys for app Id '{CLIENT_ID}'.]",
            ),
        ),
        instance_discovery(),
    ],
    "no_admin_consent": [
        openid_configuration(),
        token(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": access_token(),
            },
        ),
    ],
    "mailbox_outside_policy": [
        openid_configuration(),
        GRANTED,
        graph_error("alex.wilber@contoso.edu", 403, "ErrorAccessDenied", RAOP),
    ],
    "unlicensed_mailbox": [
        openid_configuration(),
        GRANTED,
        graph_error(
            "guest@contoso.edu",
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        ),
    ],
}


def main() -> None:
    for name, interactions in CASSETTES.items():
        cassette = {"http_interactions": interactions, "recorded_with": "betamax/0.9.0"}
        (HERE / f"{name}.json").write_text(json.dumps(cassette, indent=2) + "\n")
        print(f"wrote {name}.json")


if __name__ == "__main__":
    main()
