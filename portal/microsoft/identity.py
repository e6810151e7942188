"""Sign-in and tokens through Microsoft's identity platform: the only module importing msal.

- Sign-ins and end users' tokens use a ``ConfidentialClientApplication`` made for the
  request with that user's own token cache (a cache holds one person's tokens and lives,
  encrypted, in the database). All of them share one MSAL ``http_cache`` per process, so a
  tenant's OpenID metadata is fetched once per process, not per request.
- Live verification makes a fresh one with fresh caches: MSAL serves client-credentials
  tokens from its cache and remembers HTTP 400 answers for a minute, and an administrator
  who has just uploaded the certificate or granted consent must see the answer of now.
"""

import base64
import json
import re
import threading
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlencode

import msal
import requests
from flask import current_app

from .. import security
from ..models import Certificate, Configuration
from . import http
from .clouds import Cloud, cloud, overridden
from .errors import (
    MicrosoftError,
    code_from_description,
    entra_trace,
    first_line,
    from_token_response,
)

EXTENSION = "portal.microsoft.identity"

# MSAL recommends form_post, but a cross-site POST back does not carry the SameSite=Lax
# session cookie that holds the flow; query mode keeps it, and the code is single-use and
# bound to PKCE. The filter is set once here: catch_warnings() is not thread-safe.
warnings.filterwarnings("ignore", message="response_mode='form_post'", category=UserWarning)
DELEGATED_SCOPES = ("Calendars.ReadWrite", "User.Read")
# Asked for too when events are shown in colour: making the mailbox's Outlook categories
# (outlookuser-post-mastercategories.md). A refresh asks for DELEGATED_SCOPES only and gets
# a token for every Graph permission the user granted (v2-oauth2-auth-code-flow.md).
COLOUR_SCOPE = "MailboxSettings.ReadWrite"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


@dataclass
class _Shared:
    """What the MSAL applications of one process share: MSAL's HTTP cache (OpenID
    metadata among it), and which authorities have been read into it already."""

    http_cache: dict = field(default_factory=dict)
    warm: set = field(default_factory=set)
    app_only: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def init_app(app) -> None:
    """Give the application the HTTP cache its MSAL applications share."""
    app.extensions[EXTENSION] = _Shared()


@dataclass(frozen=True)
class AppRegistration:
    """The app registration the portal signs in as: which cloud and tenant, the
    application (client) ID, and the certificate it proves itself with."""

    cloud: Cloud
    tenant: str
    client_id: str
    certificate: Certificate | None
    # A credential given in the settings (a secret, or MSAL's private key and certificate
    # dict) instead of a certificate from the database: the vendor's sign-in app.
    client_credential: str | dict | None = field(default=None, repr=False)

    @property
    def authority(self) -> str:
        """The authority URL of the registration's tenant."""
        return authority(self.cloud, self.tenant)


def registration(
    configuration: Configuration, certificate: Certificate | None = None
) -> AppRegistration:
    """The configuration's app registration; ``certificate`` stands in for its own (a
    new certificate checked before it replaces the old)."""
    return AppRegistration(
        cloud(configuration.cloud),
        configuration.tenant_id,
        configuration.client_id,
        certificate or configuration.certificate,
    )


def authority(cloud: Cloud, tenant: str) -> str:
    """The authority URL of ``tenant`` in ``cloud``."""
    return f"{cloud.authority_host}/{tenant}"


def _credential(certificate: Certificate | None) -> dict:
    if certificate is None:
        raise MicrosoftError("no_certificate", "The configuration has no certificate yet.")
    return {
        "private_key": security.decrypt(certificate.private_key_encrypted).decode(),
        "public_certificate": certificate.public_pem,
    }


def _build(
    app: AppRegistration,
    token_cache: msal.SerializableTokenCache | None = None,
    shared: bool = False,
):
    try:
        return msal.ConfidentialClientApplication(
            app.client_id,
            client_credential=app.client_credential or _credential(app.certificate),
            authority=app.authority,
            http_client=http.session(),
            instance_discovery=False if overridden() else None,
            token_cache=token_cache,
            http_cache=current_app.extensions[EXTENSION].http_cache if shared else None,
        )
    except ValueError as exc:
        # MSAL reads the tenant's metadata in its constructor and raises ValueError
        # when it cannot; the endpoint's own error code says why.
        raise discover_tenant_error(app.cloud, app.tenant) from exc
    except requests.RequestException as exc:
        raise MicrosoftError("unreachable", str(exc)) from exc


def _application(app: AppRegistration, token_cache: msal.SerializableTokenCache | None = None):
    """An application for one request and one user, on the process's shared HTTP cache.

    The first application of an authority is built under a lock, so that concurrent
    first requests wait for one metadata fetch instead of each making their own.
    """
    shared: _Shared = current_app.extensions[EXTENSION]
    key = (app.cloud.authority_host, app.tenant.lower())
    if key in shared.warm:
        return _build(app, token_cache, shared=True)
    with shared.lock:
        application = _build(app, token_cache, shared=True)
        shared.warm.add(key)
        return application


@dataclass(frozen=True)
class TenantInfo:
    """A tenant as Microsoft's OpenID metadata describes it."""

    guid: str
    issuer: str


def discover_tenant(cloud: Cloud, tenant: str) -> TenantInfo:
    """Read the tenant's OpenID metadata; raise ``MicrosoftError`` (90002) if unknown."""
    url = f"{authority(cloud, tenant)}/v2.0/.well-known/openid-configuration"
    try:
        response = http.session().get(url)
    except requests.RequestException as exc:
        raise MicrosoftError("unreachable", str(exc)) from exc
    try:
        body = response.json()
    except ValueError as exc:
        raise MicrosoftError(
            "unreachable", f"Unexpected answer (HTTP {response.status_code}) from {url}"
        ) from exc
    if response.status_code != 200:
        error = from_token_response(body)
        error.status = response.status_code
        raise error
    issuer = body.get("issuer", "")
    match = _GUID.search(issuer)
    return TenantInfo(guid=match.group(0).lower() if match else tenant, issuer=issuer)


def discover_tenant_error(cloud: Cloud, tenant: str) -> MicrosoftError:
    """The error Microsoft gives for a tenant whose metadata cannot be read."""
    try:
        discover_tenant(cloud, tenant)
    except MicrosoftError as exc:
        return exc
    return MicrosoftError("unknown", f"Could not read the metadata of tenant {tenant}.")


def _claims(jwt: str) -> dict:
    """The claims of a token Microsoft just issued to us over TLS (no signature check:
    the token is for Graph, which checks it; we only read what was granted)."""
    try:
        payload = jwt.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def app_token(app: AppRegistration, fresh: bool = False) -> str:
    """An app-only Graph token for synchronising, from a per-process application whose
    token cache serves it until it nears expiry (``fresh`` asks Microsoft anyway).

    One thread at a time asks each application, so that the threads of a worker that
    starts together wait for one token instead of each signing an assertion for its own.
    """
    shared: _Shared = current_app.extensions[EXTENSION]
    if app.certificate is None:
        raise MicrosoftError("no_certificate", "The configuration has no certificate yet.")
    key = (
        app.cloud.authority_host,
        app.tenant.lower(),
        app.client_id.lower(),
        app.certificate.sha256_thumbprint,
    )
    with shared.lock:
        if key not in shared.app_only:
            shared.app_only[key] = (_build(app, shared=True), threading.Lock())
        application, app_lock = shared.app_only[key]
    with app_lock:
        if fresh:
            # A list first: removing from the cache while searching it changes the dict.
            cache = application.token_cache
            for token in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(token)
        try:
            result = application.acquire_token_for_client([app.cloud.graph_default_scope])
        except requests.RequestException as exc:
            raise MicrosoftError("unreachable", str(exc)) from exc
    if "access_token" not in result:
        raise from_token_response(result)
    return result["access_token"]


@dataclass(frozen=True)
class AppToken:
    """An app-only access token and what it grants."""

    access_token: str
    roles: tuple[str, ...]
    service_principal_id: str | None


def client_credentials_token(app: AppRegistration) -> AppToken:
    """A fresh app-only Graph token by the client credentials flow with the certificate."""
    application = _build(app)
    try:
        result = application.acquire_token_for_client([app.cloud.graph_default_scope])
    except requests.RequestException as exc:
        raise MicrosoftError("unreachable", str(exc)) from exc
    if "access_token" not in result:
        raise from_token_response(result)
    claims = _claims(result["access_token"])
    return AppToken(
        access_token=result["access_token"],
        roles=tuple(claims.get("roles") or ()),
        service_principal_id=claims.get("oid"),
    )


def begin_sign_in(
    app: AppRegistration,
    redirect_uri: str,
    login_hint: str | None = None,
    prompt: str | None = None,
    colours: bool = False,
) -> dict:
    """Start the authorization code flow (PKCE, state, nonce); ``colours`` asks for
    ``COLOUR_SCOPE`` as well.

    Returns MSAL's flow dict: keep it whole in the server-side session and send the
    browser to its ``auth_uri``.
    """
    return _application(app).initiate_auth_code_flow(
        app.cloud.graph_scopes(DELEGATED_SCOPES + ((COLOUR_SCOPE,) if colours else ())),
        redirect_uri=redirect_uri,
        login_hint=login_hint or None,
        prompt=prompt,
        response_mode="query",
    )


@dataclass(frozen=True)
class SignIn:
    """A completed sign-in: who, in which tenant, what was granted, and the user's token
    cache (serialized MSAL cache holding the refresh token: encrypt it before storing)."""

    access_token: str
    scopes: tuple[str, ...]
    object_id: str
    username: str
    display_name: str
    tenant_guid: str
    token_cache: str = field(repr=False)


def _redeem(
    app: AppRegistration,
    flow: dict | None,
    callback_args: dict,
    cache: msal.SerializableTokenCache,
) -> dict:
    """Redeem the callback of an authorization code ``flow`` into ``cache``; MSAL's result
    with an access token, or ``MicrosoftError``."""
    if not flow:
        raise MicrosoftError("state_mismatch", "No sign-in was started in this browser.")
    try:
        result = _application(app, cache).acquire_token_by_auth_code_flow(flow, dict(callback_args))
    except ValueError as exc:  # state mismatch, or neither code nor error
        raise MicrosoftError("state_mismatch", "The sign-in could not be matched.") from exc
    except RuntimeError as exc:  # id_token nonce mismatch
        raise MicrosoftError("state_mismatch", "The sign-in's nonce did not match.") from exc
    except requests.RequestException as exc:
        raise MicrosoftError("unreachable", str(exc)) from exc
    if "access_token" not in result:
        raise from_token_response(result)
    return result


def finish_sign_in(
    app: AppRegistration,
    flow: dict | None,
    callback_args: dict,
    expected_tenant: str | None = None,
) -> SignIn:
    """Redeem the callback of a flow from ``begin_sign_in``; raise ``MicrosoftError``,
    also (``tenant_mismatch``) when the account is not of ``expected_tenant`` (a GUID)."""
    cache = msal.SerializableTokenCache()
    result = _redeem(app, flow, callback_args, cache)
    claims = result.get("id_token_claims") or {}
    tenant_guid = (claims.get("tid") or "").lower()
    if expected_tenant and tenant_guid != expected_tenant.lower():
        raise MicrosoftError(
            "tenant_mismatch",
            f"{claims.get('preferred_username', 'The account')} belongs to tenant {tenant_guid}.",
        )
    scopes = tuple(s.rsplit("/", 1)[-1] for s in (result.get("scope") or "").split())
    return SignIn(
        access_token=result["access_token"],
        scopes=scopes,
        object_id=claims.get("oid", ""),
        username=claims.get("preferred_username", ""),
        display_name=claims.get("name", ""),
        tenant_guid=tenant_guid,
        token_cache=cache.serialize(),
    )


# The directory roles whose holders may administer MyTimetable's connection to their tenant
# (register or change an app and grant consent for it), by role template ID as the ``wids``
# claim names them (Microsoft Entra built-in roles, permissions-reference.md, "All roles").
ADMINISTRATOR_ROLES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
}


def sign_in_registration(cloud: Cloud, tenant_guid: str, client_id: str, credential):
    """The vendor's multi-tenant sign-in app, with the authority of one tenant (never
    ``common`` or ``organizations``: only that tenant's accounts can sign in)."""
    if not _GUID.fullmatch(tenant_guid or ""):
        raise MicrosoftError("tenant_mismatch", "The configuration's tenant GUID is not known.")
    return AppRegistration(cloud, tenant_guid, client_id, None, client_credential=credential)


def begin_administrator_sign_in(app: AppRegistration, redirect_uri: str) -> dict:
    """Start an administrator's sign-in that proves who they are and which directory
    roles they hold: only ``User.Read`` is asked for (MSAL adds the OpenID scopes), and
    the account is always chosen anew."""
    return _application(app).initiate_auth_code_flow(
        app.cloud.graph_scopes(("User.Read",)),
        redirect_uri=redirect_uri,
        prompt="select_account",
        response_mode="query",
    )


@dataclass(frozen=True)
class Administrator:
    """An administrator of a tenant, proven by their ID token."""

    username: str
    object_id: str
    tenant_guid: str
    roles: tuple[str, ...]  # names of the administrator roles held


def finish_administrator_sign_in(
    app: AppRegistration, flow: dict | None, callback_args: dict
) -> Administrator:
    """Redeem an administrator's sign-in and check the ID token: its ``tid`` must be the
    registration's tenant, and its ``wids`` must name one of ``ADMINISTRATOR_ROLES``.

    ``wids`` is in the token only when the app's manifest sets ``groupMembershipClaims``
    to ``DirectoryRole`` or ``All`` (access-token-claims-reference.md, ``wids``): without
    it the roles cannot be read, which is refused (``no_roles_claim``), never taken as
    "no role". No token is kept: MSAL's cache for this flow is thrown away.
    """
    result = _redeem(app, flow, callback_args, msal.SerializableTokenCache())
    claims = result.get("id_token_claims") or {}
    username = claims.get("preferred_username") or claims.get("upn") or "The account"
    tenant_guid = (claims.get("tid") or "").lower()
    if tenant_guid != app.tenant.lower():
        raise MicrosoftError("tenant_mismatch", f"{username} belongs to tenant {tenant_guid}.")
    wids = claims.get("wids")
    if not isinstance(wids, list):
        raise MicrosoftError(
            "no_roles_claim", "The ID token has no wids claim: set groupMembershipClaims."
        )
    assigned = {str(role).lower() for role in wids}
    held = tuple(name for role, name in ADMINISTRATOR_ROLES.items() if role in assigned)
    if not held:
        raise MicrosoftError("not_administrator", f"{username} holds none of the roles.")
    return Administrator(username, claims.get("oid", ""), tenant_guid, held)


@dataclass(frozen=True)
class UserToken:
    """An access token for a signed-in user, and the cache if MSAL changed it."""

    access_token: str
    token_cache: str | None = field(repr=False)


def user_token(app: AppRegistration, token_cache: str, fresh: bool = False) -> UserToken:
    """A delegated Graph token from the user's cache, refreshed silently when needed.

    ``fresh`` redeems the refresh token even though the cached access token has not yet
    expired by MSAL's clock: Graph refused it (revoked, or lapsed early). Raises
    ``MicrosoftError`` when the refresh token no longer works (revoked consent, password
    reset, 90 days unused): the user must sign in again.
    """
    cache = msal.SerializableTokenCache()
    cache.deserialize(token_cache)
    application = _application(app, cache)
    accounts = application.get_accounts()
    if not accounts:
        raise MicrosoftError("invalid_grant", "No sign-in is stored for this user.")
    try:
        result = application.acquire_token_silent_with_error(
            app.cloud.graph_scopes(DELEGATED_SCOPES), accounts[0], force_refresh=fresh
        )
    except requests.RequestException as exc:
        raise MicrosoftError("unreachable", str(exc)) from exc
    if not result:
        raise MicrosoftError("invalid_grant", "The stored sign-in has no usable token.")
    if "access_token" not in result:
        raise from_token_response(result)
    return UserToken(result["access_token"], cache.serialize() if cache.has_state_changed else None)


def admin_consent_url(app: AppRegistration, redirect_uri: str, state: str) -> str:
    """The v2 admin consent endpoint, asking for the permissions configured on the app."""
    query = urlencode(
        {
            "client_id": app.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": app.cloud.graph_default_scope,
        }
    )
    return f"{app.authority}/v2.0/adminconsent?{query}"


def finish_admin_consent(
    app: AppRegistration, args: dict, expected_state: str | None, expected_tenant: str
) -> str:
    """Check an admin consent callback; return the consenting tenant's GUID.

    Microsoft's v2 endpoint also sets ``admin_consent=True`` on failures, so ``error``
    is read first; then state and tenant are compared with what was sent. The answer
    names the tenant by GUID: a domain the administrator typed (``expected_tenant``) is
    resolved to its GUID first, or any tenant's consent would pass for it.
    """
    if args.get("error"):
        code = code_from_description(args.get("error_description")) or args["error"]
        raise MicrosoftError(
            code, first_line(args.get("error_description")), trace=entra_trace(args)
        )
    if not expected_state or args.get("state") != expected_state:
        raise MicrosoftError("state_mismatch", "The consent answer was not for this page.")
    if str(args.get("admin_consent", "")).lower() != "true":
        raise MicrosoftError("65001", "Microsoft did not confirm admin consent.")
    tenant = (args.get("tenant") or "").lower()
    if not _GUID.fullmatch(tenant):
        raise MicrosoftError("tenant_mismatch", f"Consent was granted in tenant {tenant!r}.")
    expected = (
        expected_tenant.lower()
        if _GUID.fullmatch(expected_tenant)
        else discover_tenant(app.cloud, expected_tenant).guid
    )
    if tenant != expected:
        raise MicrosoftError("tenant_mismatch", f"Consent was granted in tenant {tenant!r}.")
    return tenant
