"""Stand-in for the Microsoft identity platform's v2.0 endpoints (Entra ID).

Serves what MSAL Python and a browser use: OpenID discovery, the signing keys, the token
endpoint (client credentials, authorization code with PKCE, refresh token; certificate
client assertions only), the sign-in and consent pages, admin consent and sign-out.
``{tenant}`` in a path is the tenant's GUID or any of its domains. Errors carry Microsoft's
AADSTS codes and shapes: JSON from the token endpoint, a redirect to the application once
the redirect URI is known to be registered, Microsoft's own error page before that.
The base URL comes from each request, so the app works on any host and port.
"""

import base64
import datetime
import hashlib
import json
import secrets
import time
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from flask import Flask, jsonify, redirect, render_template, request

from . import pages
from .directory import (
    AppRegistration,
    AuthorizationCode,
    Directory,
    RefreshToken,
    Tenant,
    User,
    pairwise_subject,
)

# Graph's resource identifier (application ID URI) in the worldwide cloud, and its app ID:
# the two names Entra knows Graph by, whatever host Graph's requests are sent to
# (Microsoft Graph national cloud deployments; v2-oauth2-client-creds-grant-flow.md).
WORLDWIDE_GRAPH = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCES = {WORLDWIDE_GRAPH, GRAPH_APP_ID}
GRAPH_DEFAULT = f"{WORLDWIDE_GRAPH}/.default"  # the client credentials scope for Graph
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}
TOKEN_LIFETIME = 3599
CODE_LIFETIME = 600
CLOCK_SKEW = 300
FORM_FIELDS = ("login", "consent")  # the pages' own fields, not the request's
UNKNOWN_USERNAME = (
    "This username may be incorrect. Make sure you typed it correctly. "
    "Otherwise, contact your admin."
)


class EntraError(Exception):
    """An AADSTS error answered as JSON, as the discovery and token endpoints do."""

    def __init__(self, status: int, error: str, code: int, message: str):
        super().__init__(f"AADSTS{code}: {message}")
        self.status, self.error, self.code, self.message = status, error, code, message


class SignInError(Exception):
    """An AADSTS error that Entra shows on its own page instead of redirecting."""

    def __init__(self, code: int, message: str):
        super().__init__(f"AADSTS{code}: {message}")
        self.code, self.message = code, message


class ScopeError(ValueError):
    """A requested scope names neither an OpenID scope nor a Graph permission."""


class ResourceError(ValueError):
    """A requested scope names a resource that is not a service principal in the tenant:
    Entra answers AADSTS500011 (reference-error-codes.md,
    InvalidResourceServicePrincipalNotFound)."""


def create_identity_app(directory: Directory) -> Flask:
    """The identity stand-in as a Flask application over ``directory``."""
    app = Flask(__name__)
    app.jinja_loader = pages.LOADER

    @app.errorhandler(EntraError)
    def json_error(error: EntraError):
        trace = _trace()
        body = {
            "error": error.error,
            "error_description": _description(error.code, error.message, trace),
            "error_codes": [error.code],
            "timestamp": trace["timestamp"],
            "trace_id": trace["trace_id"],
            "correlation_id": trace["correlation_id"],
            "error_uri": f"https://login.microsoftonline.com/error?code={error.code}",
        }
        return jsonify(body), error.status

    @app.errorhandler(SignInError)
    def error_page(error: SignInError):
        page = render_template("error.html", code=error.code, message=error.message, **_trace())
        return page, 400

    @app.get("/<tenant>/v2.0/.well-known/openid-configuration")
    def openid_configuration(tenant: str):
        directory.count("openid-configuration")
        found = _tenant(directory, tenant, "invalid_tenant")
        base = _base_url()
        prefix = f"{base}/{found.id}"
        graph = directory.base_url_graph or WORLDWIDE_GRAPH
        return jsonify(
            {
                "token_endpoint": f"{prefix}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{prefix}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{prefix}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{graph}/oidc/userinfo",
                "authorization_endpoint": f"{prefix}/oauth2/v2.0/authorize",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{prefix}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "cloud_instance_name",
                    "cloud_instance_host_name",
                    "cloud_graph_host_name",
                    "msgraph_host",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "acr",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "ver",
                    "at_hash",
                    "c_hash",
                    "email",
                ],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": urlsplit(graph).netloc,
                "rbac_url": "https://pas.windows.net",
            }
        )

    @app.get("/<tenant>/discovery/v2.0/keys")
    def keys(tenant: str):
        directory.count("keys")
        _tenant(directory, tenant, "invalid_tenant")
        return jsonify(directory.jwks())

    @app.post("/<tenant>/oauth2/v2.0/token")
    def token(tenant: str):
        directory.count("token")
        form = request.form
        found = _tenant(directory, tenant, "invalid_request")
        grant_type = _required(form, "grant_type")
        directory.count(f"token:{grant_type}")
        client_id = _required(form, "client_id")
        registration = directory.app(found.id, client_id)
        if registration is None:
            raise EntraError(400, "unauthorized_client", 700016, _app_not_found(client_id, found))
        _authenticate_client(found, registration, form)
        issuer = TokenIssuer(directory, found, registration)
        if grant_type == "client_credentials":
            return jsonify(issuer.client_credentials(form.get("scope", "")))
        if grant_type == "authorization_code":
            return jsonify(issuer.authorization_code(form))
        if grant_type == "refresh_token":
            return jsonify(issuer.refresh_token(form))
        raise EntraError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )

    @app.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"])
    def authorize(tenant: str):
        directory.count("authorize")
        params = request.values
        found, registration, redirect_uri = _sign_in_request(directory, tenant, params)
        state, response_mode = params.get("state"), params.get("response_mode", "query")

        def reply(**result):
            return _reply(redirect_uri, response_mode, **result, state=state)

        def reply_error(error: str, code: int, message: str, **extra):
            return reply(**_error_result(error, code, message), **extra)

        response_type = params.get("response_type")
        if not response_type:
            return reply_error("invalid_request", 900144, _missing("response_type"))
        if response_type != "code":
            message = f"response_type '{response_type}' is not enabled for the application."
            return reply_error("unsupported_response_type", 700054, message)
        if not params.get("scope"):
            return reply_error("invalid_request", 900144, _missing("scope"))
        try:
            scopes = requested_scopes(params["scope"])
        except ResourceError as error:
            message = _resource_not_found(str(error), found)
            return reply_error("invalid_resource", 500011, message)
        except ScopeError as error:
            return reply_error("invalid_scope", 70011, _invalid_scope(str(error)))

        form = {
            "action": request.path,
            "hidden": _carried(params),
            "app_name": registration.display_name,
        }
        if request.method == "GET":
            return render_template("signin.html", login=params.get("login_hint", ""), **form)
        login = request.form.get("login", "").strip()
        user = directory.user_by_upn(login) if login else None
        if user is None:
            error = (
                UNKNOWN_USERNAME
                if login
                else "Enter a valid email address, phone number, or Skype name."
            )
            return render_template("signin.html", login=login, error=error, **form)
        if user.tenant_id != found.id:
            return reply_error("invalid_request", 50020, _foreign_user(user, found, registration))

        choice = request.form.get("consent")
        if choice == "cancel":
            message = "User declined to consent to access the app."
            return reply_error("access_denied", 65004, message, error_subcode="cancel")
        if choice == "return":
            return reply_error("access_denied", 90094, "The grant requires admin permission.")
        if choice == "accept" and found.user_consent_allowed:
            directory.record_user_consent(user, registration.client_id)
        elif not directory.has_consent(user, registration) or params.get("prompt") == "consent":
            form["hidden"].append(("login", user.upn))
            if found.user_consent_allowed:
                permissions = pages.describe([*_graph_permissions(scopes), *_oidc(scopes)])
                return render_template(
                    "consent.html", login=user.upn, permissions=permissions, **form
                )
            return render_template("approval.html", login=user.upn, **form)

        code = directory.issue_code(
            AuthorizationCode(
                client_id=registration.client_id,
                tenant_id=found.id,
                user_id=user.object_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                nonce=params.get("nonce"),
                code_challenge=params.get("code_challenge"),
                code_challenge_method=params.get("code_challenge_method", "plain"),
            )
        )
        return _reply(
            redirect_uri, response_mode, code=code, state=state, session_state=str(uuid.uuid4())
        )

    @app.route("/<tenant>/v2.0/adminconsent", methods=["GET", "POST"])
    def admin_consent(tenant: str):
        directory.count("adminconsent")
        params = request.values
        found, registration, redirect_uri = _sign_in_request(directory, tenant, params)
        state, scope = params.get("state"), params.get("scope")
        if not scope:
            message = (
                "The required field 'scope' is missing from the credential. "
                "Ensure that you have all the necessary parameters for the login request."
            )
            error = _error_result("invalid_request", 90014, message)
            return _reply(redirect_uri, "query", **error, state=state)
        foreign = [
            item.rpartition("/")[0]
            for item in scope.split()
            if item.lower() not in OIDC_SCOPES
            and item.rpartition("/")[0].lower() not in GRAPH_RESOURCES
        ]
        if foreign:
            # v2-admin-consent.md: scope names the permissions configured on the app, by
            # their resource's identifier; a resource the app does not ask for is
            # AADSTS650057 (reference-error-codes.md, InvalidResource).
            message = (
                "Invalid resource. The client has requested access to a resource which isn't "
                "listed in the requested permissions in the client's application registration. "
                f"Client app ID: {registration.client_id}({registration.display_name}). "
                f"Resource value from request: {foreign[0]}."
            )
            error = _error_result("invalid_client", 650057, message)
            return _reply(redirect_uri, "query", **error, admin_consent="True", state=state)
        form = {
            "action": request.path,
            "hidden": _carried(params),
            "app_name": registration.display_name,
            "permissions": pages.describe(
                sorted(registration.application_permissions), pages.APPLICATION_DESCRIPTIONS
            )
            + pages.describe(sorted(registration.delegated_permissions)),
        }
        if request.method == "GET":
            return render_template("adminconsent.html", login=params.get("login_hint", ""), **form)
        if request.form.get("consent") != "accept":
            message = "User declined to consent to access the app."
            error = _error_result("access_denied", 65004, message)
            return _reply(redirect_uri, "query", **error, admin_consent="True", state=state)
        login = request.form.get("login", "").strip()
        user = directory.user_by_upn(login) if login else None
        if user is None:
            return render_template("adminconsent.html", login=login, error=UNKNOWN_USERNAME, **form)
        if user.tenant_id != found.id:
            error = _error_result(
                "invalid_request", 50020, _foreign_user(user, found, registration)
            )
            return _reply(redirect_uri, "query", **error, admin_consent="True", state=state)
        directory.grant_admin_consent(registration)
        return _reply(
            redirect_uri, "query", admin_consent="True", tenant=found.id, state=state, scope=scope
        )

    @app.get("/<tenant>/oauth2/v2.0/logout")
    def logout(tenant: str):
        directory.count("logout")
        if directory.find_tenant(tenant) is None:
            raise SignInError(90002, _tenant_not_found(tenant))
        if request.args.get("post_logout_redirect_uri"):
            return redirect(request.args["post_logout_redirect_uri"])
        return render_template("signedout.html")

    return app


class TokenIssuer:
    """Mints the token endpoint's answers for one authenticated client in one tenant."""

    def __init__(self, directory: Directory, tenant: Tenant, app: AppRegistration):
        self.directory, self.tenant, self.app = directory, tenant, app
        # Tokens for Graph carry its resource identifier as audience, never the host that
        # Graph's requests go to (access-tokens.md, the aud claim).
        self.graph = WORLDWIDE_GRAPH

    def client_credentials(self, scope: str) -> dict:
        """An app-only Graph token; ``roles`` only when an administrator consented."""
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise EntraError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        resource = scopes[0].removesuffix("/.default")
        if resource.lower() not in GRAPH_RESOURCES:
            # v2-oauth2-client-creds-grant-flow.md: the scope is the resource identifier of
            # the resource, affixed with .default; any other resource is unknown to Entra.
            raise EntraError(
                400, "invalid_resource", 500011, _resource_not_found(resource, self.tenant)
            )
        claims = {
            "idtyp": "app",
            "oid": self.app.service_principal_id,
            "sub": self.app.service_principal_id,
        }
        if self.app.admin_consented and self.app.application_permissions:
            claims["roles"] = sorted(self.app.application_permissions)
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": self._access_token(claims),
        }

    def authorization_code(self, form) -> dict:
        """Redeem a code once, for the client, redirect URI and PKCE verifier it was issued to."""
        grant = self.directory.code_grant(_required(form, "code"))
        if grant is None:
            raise EntraError(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if (
            grant.client_id.lower() != self.app.client_id.lower()
            or grant.tenant_id != self.tenant.id
        ):
            message = (
                "Provided Authorization Code is intended to use against other tenant, "
                "thus rejected."
            )
            raise EntraError(400, "invalid_grant", 700005, message)
        if grant.redeemed:
            raise EntraError(400, "invalid_grant", 54005, _ALREADY_REDEEMED)
        if time.time() - grant.issued_at > CODE_LIFETIME:
            raise EntraError(400, "invalid_grant", 70008, _EXPIRED_GRANT)
        if form.get("redirect_uri", "") != grant.redirect_uri:
            message = (
                f"The reply address '{form.get('redirect_uri', '')}' does not match the reply "
                f"address '{grant.redirect_uri}' provided when requesting Authorization code."
            )
            raise EntraError(400, "invalid_grant", 500112, message)
        if grant.code_challenge and not _pkce_matches(grant, form.get("code_verifier", "")):
            message = (
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request."
            )
            raise EntraError(400, "invalid_grant", 501481, message)
        if not self.directory.redeem(grant):
            raise EntraError(400, "invalid_grant", 54005, _ALREADY_REDEEMED)
        user = self.directory.user(grant.user_id)
        granted = set(_graph_permissions(grant.scopes)) | self._tenant_wide_grant()
        return self._user_tokens(user, granted, set(_oidc(grant.scopes)), grant.nonce, form)

    def refresh_token(self, form) -> dict:
        """New tokens (and a new refresh token) for a refresh token that is not revoked."""
        grant = self.directory.refresh_grant(_required(form, "refresh_token"))
        if grant is None or grant.client_id.lower() != self.app.client_id.lower():
            raise EntraError(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if grant.revoked:
            message = (
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed. The user might have changed or reset their password."
            )
            raise EntraError(400, "invalid_grant", 50173, message)
        try:
            requested = requested_scopes(form.get("scope", ""))
        except ResourceError as error:
            message = _resource_not_found(str(error), self.tenant)
            raise EntraError(400, "invalid_resource", 500011, message) from None
        except ScopeError as error:
            raise EntraError(400, "invalid_scope", 70011, _invalid_scope(str(error))) from None
        granted = set(_graph_permissions(grant.scopes)) | self._tenant_wide_grant()
        if not set(_graph_permissions(requested)) <= granted:
            message = (
                f"The user or administrator has not consented to use the application with ID "
                f"'{self.app.client_id}' named '{self.app.display_name}'. Send an interactive "
                "authorization request for this user and resource."
            )
            raise EntraError(400, "invalid_grant", 65001, message)
        user = self.directory.user(grant.user_id)
        oidc = set(_oidc(grant.scopes)) | set(_oidc(requested))
        return self._user_tokens(user, granted, oidc, None, form)

    def _tenant_wide_grant(self) -> set[str]:
        if not self.app.admin_consented:
            return set()
        return set(_graph_permissions(self.app.delegated_permissions))

    def _user_tokens(self, user: User, granted: set, oidc: set, nonce, form) -> dict:
        permissions = sorted(granted)
        access = {
            "idtyp": "user",
            "oid": user.object_id,
            "sub": pairwise_subject(user.object_id, self.app.client_id),
            "scp": " ".join(permissions),
            "upn": user.upn,
            "unique_name": user.upn,
            "name": user.display_name,
            "amr": ["pwd"],
            "acr": "1",
        }
        # Graph's permissions come back named as the request named them: by short name
        # ("User.Read", as Entra answers a request for "User.Read") or with the resource.
        # MSAL finds a cached token again only by the names it was given.
        qualified = any("/" in item for item in form.get("scope", "").split())
        prefix = f"{self.graph}/" if qualified else ""
        body = {
            "token_type": "Bearer",
            "scope": " ".join(f"{prefix}{name}" for name in permissions),
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": self._access_token(access),
        }
        if "offline_access" in oidc:
            body["refresh_token"] = self.directory.issue_refresh_token(
                RefreshToken(
                    client_id=self.app.client_id,
                    tenant_id=self.tenant.id,
                    user_id=user.object_id,
                    scopes=[*sorted(oidc), *permissions],
                )
            )
        if "openid" in oidc:
            body["id_token"] = self._id_token(user, nonce)
        if form.get("client_info"):
            info = json.dumps({"uid": user.object_id, "utid": user.tenant_id}).encode()
            body["client_info"] = base64.urlsafe_b64encode(info).decode().rstrip("=")
        return body

    def _access_token(self, claims: dict) -> str:
        now = int(time.time())
        issuer = f"https://sts.windows.net/{self.tenant.id}/"
        claims = {
            "aud": self.graph,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME + 1,
            "app_displayname": self.app.display_name,
            "appid": self.app.client_id,
            "appidacr": "2",
            "azp": self.app.client_id,
            "idp": issuer,
            "tid": self.tenant.id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
            **claims,
        }
        self.directory.issued_access_token(claims)
        return self.directory.sign(claims)

    def _id_token(self, user: User, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "aud": self.app.client_id,
            "iss": f"{_base_url()}/{self.tenant.id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME + 1,
            "name": user.display_name,
            "oid": user.object_id,
            "preferred_username": user.upn,
            "sub": pairwise_subject(user.object_id, self.app.client_id),
            "tid": self.tenant.id,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        if nonce is not None:
            claims["nonce"] = nonce  # echoed as received: MSAL sends the hash of its nonce
        return self.directory.sign(claims)


def requested_scopes(scope: str) -> list[str]:
    """The scopes of a delegated request: OpenID scopes as they are, Graph permissions by
    short name (``https://graph.microsoft.com/User.Read`` and ``User.Read`` alike: a scope
    without a resource is Graph's, permissions-reference.md / scopes-oidc.md).
    ``<graph>/.default`` stands for no particular permission: the tenant-wide grant then
    decides what the token carries. Raises ``ResourceError`` for a scope of any other
    resource (a host is not a resource identifier), ``ScopeError`` for a malformed one."""
    scopes = []
    for item in scope.split():
        if item.lower() in OIDC_SCOPES:
            scopes.append(item.lower())
            continue
        resource, _, name = item.rpartition("/")
        if not name:
            raise ScopeError(item)
        if resource and resource.lower() not in GRAPH_RESOURCES:
            raise ResourceError(resource)
        if name != ".default":
            scopes.append(name)
    return scopes


def _graph_permissions(scopes) -> list[str]:
    return [name for name in scopes if name not in OIDC_SCOPES]


def _oidc(scopes) -> list[str]:
    return [name for name in scopes if name in OIDC_SCOPES]


def _authenticate_client(tenant: Tenant, app: AppRegistration, form) -> None:
    """Check the client's certificate assertion as Entra does; secrets are not accepted."""
    if form.get("client_secret"):
        message = (
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            "the client secret value, not the client secret ID, for a secret added to app "
            f"'{app.client_id}'."
        )
        raise EntraError(401, "invalid_client", 7000215, message)
    assertion = form.get("client_assertion")
    if not assertion or form.get("client_assertion_type") != JWT_BEARER:
        message = (
            "The request body must contain the following parameter: "
            "'client_assertion' or 'client_secret'."
        )
        raise EntraError(401, "invalid_client", 7000218, message)
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.DecodeError:
        raise EntraError(
            401, "invalid_client", 50027, "JWT token is invalid or malformed."
        ) from None
    certificate, thumbprint = _registered_certificate(app, header)
    if certificate is None:
        message = (
            "Client assertion failed signature validation. The certificate with identifier "
            "used to sign the client assertion is not registered on application. "
            f"[Reason - The key was not found., Thumbprint of key used by client: "
            f"'{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use "
            f"MS Graph to see configured keys for app Id '{app.client_id}'.]"
        )
        raise EntraError(401, "invalid_client", 700027, message)

    def rejected(reason: str):
        return EntraError(401, "invalid_client", 7000274, reason)

    try:
        claims = jwt.decode(
            assertion,
            certificate.public_key(),
            algorithms=["RS256", "PS256"],
            leeway=CLOCK_SKEW,
            options={"verify_aud": False, "require": ["exp", "aud", "iss", "sub"]},
        )
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        raise rejected("Client assertion is not within its valid time range.") from None
    except jwt.InvalidTokenError:
        raise rejected(
            "Key was found, but use of the key to verify the signature failed."
        ) from None
    audiences = {f"{_base_url()}/{name}/oauth2/v2.0/token".lower() for name in tenant.domains}
    audiences |= {f"{_base_url()}/{tenant.id}/oauth2/v2.0/token".lower(), request.base_url.lower()}
    if str(claims["aud"]).lower() not in audiences:
        raise rejected(
            f"The audience claim of the client assertion '{claims['aud']}' does not match the "
            f"token endpoint '{request.base_url}'."
        )
    if {str(claims["iss"]).lower(), str(claims["sub"]).lower()} != {app.client_id.lower()}:
        raise rejected(
            "Client assertion application identifier doesn't match 'client_id' parameter."
        )


def _registered_certificate(app: AppRegistration, header: dict):
    """The app's certificate whose thumbprint the assertion's header names, and that
    thumbprint in hex. MSAL pads ``x5t``/``x5t#S256``; Entra accepts either form."""
    candidates = [
        (header[name], algorithm)
        for name, algorithm in (("x5t#S256", hashes.SHA256()), ("x5t", hashes.SHA1()))
        if isinstance(header.get(name), str)
    ]
    for sent, algorithm in candidates:
        for pem in app.certificates:
            certificate = x509.load_pem_x509_certificate(
                pem if isinstance(pem, bytes) else pem.encode()
            )
            expected = base64.urlsafe_b64encode(certificate.fingerprint(algorithm)).decode()
            if expected.rstrip("=") == sent.rstrip("="):
                return certificate, _hex(sent)
    return None, _hex(candidates[0][0]) if candidates else ""


def _hex(thumbprint: str) -> str:
    """A base64url thumbprint as the portal shows thumbprints: upper-case hex."""
    unpadded = thumbprint.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4)).hex().upper()
    except ValueError:
        return thumbprint


def _carried(params) -> list[tuple[str, str]]:
    """The request's parameters, carried through a page's form in hidden fields."""
    return [(name, value) for name, value in params.items(multi=True) if name not in FORM_FIELDS]


def _pkce_matches(grant: AuthorizationCode, verifier: str) -> bool:
    if grant.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        verifier = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return secrets.compare_digest(verifier.encode(), grant.code_challenge.encode())


def _sign_in_request(directory: Directory, tenant: str, params):
    """The tenant, app and redirect URI of a browser request; errors before the redirect
    URI is known to be registered are shown on Entra's own page, never redirected."""
    found = directory.find_tenant(tenant)
    if found is None:
        raise SignInError(90002, _tenant_not_found(tenant))
    client_id = params.get("client_id", "")
    if not client_id:
        raise SignInError(900144, _missing("client_id"))
    registration = directory.app(found.id, client_id)
    if registration is None:
        raise SignInError(700016, _app_not_found(client_id, found))
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in registration.redirect_uris:
        raise SignInError(
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the "
            f"redirect URIs configured for the application '{registration.client_id}'. Make "
            "sure the redirect URI sent in the request matches one added to your application "
            "in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn "
            "more about how to fix this.",
        )
    return found, registration, redirect_uri


def _tenant(directory: Directory, tenant: str, error: str) -> Tenant:
    found = directory.find_tenant(tenant)
    if found is None:
        raise EntraError(400, error, 90002, _tenant_not_found(tenant))
    return found


def _required(form, name: str) -> str:
    value = form.get(name)
    if not value:
        raise EntraError(400, "invalid_request", 900144, _missing(name))
    return value


def _error_result(error: str, code: int, message: str) -> dict:
    """The parameters of an OAuth error sent back to the application."""
    return {"error": error, "error_description": _description(code, message, _trace())}


def _reply(redirect_uri: str, response_mode: str, **result):
    """Hand a result to the application (None values left out): a redirect with a query
    string, or for ``response_mode=form_post`` a page that posts it at once."""
    result = {name: value for name, value in result.items() if value is not None}
    if response_mode == "form_post":
        return render_template("formpost.html", action=redirect_uri, hidden=list(result.items()))
    return redirect(_with_query(redirect_uri, **result))


def _with_query(uri: str, **params) -> str:
    """``uri`` with these query parameters added, URL-encoded."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _base_url() -> str:
    return request.host_url.rstrip("/")


def _trace() -> dict:
    return {
        "trace_id": str(uuid.uuid4()),
        "correlation_id": request.headers.get("client-request-id") or str(uuid.uuid4()),
        "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
    }


def _description(code: int, message: str, trace: dict) -> str:
    return (
        f"AADSTS{code}: {message}\r\nTrace ID: {trace['trace_id']}\r\n"
        f"Correlation ID: {trace['correlation_id']}\r\nTimestamp: {trace['timestamp']}"
    )


def _missing(name: str) -> str:
    return f"The request body must contain the following parameter: '{name}'."


def _invalid_scope(scope: str) -> str:
    return (
        "The provided request must include a 'scope' input parameter. The provided value for "
        f"the input parameter 'scope' is not valid. The scope {scope} is not valid."
    )


def _tenant_not_found(tenant: str) -> str:
    return (
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, "
        "this may happen if there are no active subscriptions for the tenant."
    )


def _resource_not_found(resource: str, tenant: Tenant) -> str:
    return (
        f"The resource principal named {resource} was not found in the tenant named "
        f"{tenant.display_name}. This can happen if the application has not been installed "
        "by the administrator of the tenant or consented to by any user in the tenant. You "
        "might have sent your authentication request to the wrong tenant."
    )


def _app_not_found(client_id: str, tenant: Tenant) -> str:
    return (
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{tenant.display_name}'. This can happen if the application has not been installed "
        "by the administrator of the tenant or consented to by any user in the tenant. You "
        "may have sent your authentication request to the wrong tenant."
    )


def _foreign_user(user: User, tenant: Tenant, app: AppRegistration) -> str:
    return (
        f"User account '{user.upn}' from identity provider "
        f"'https://sts.windows.net/{user.tenant_id}/' does not exist in tenant "
        f"'{tenant.display_name}' and cannot access the application '{app.client_id}'"
        f"({app.display_name}) in that tenant. The account needs to be added as an external "
        "user in the tenant first. Sign out and sign in again with a different Azure Active "
        "Directory user account."
    )


_ALREADY_REDEEMED = (
    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use "
    "an existing refresh token."
)
_EXPIRED_GRANT = (
    "The provided authorization code or refresh token has expired due to inactivity. Send a "
    "new interactive authorization request for this user and resource."
)
