"""Stand-in for the Microsoft identity platform's v2.0 endpoints (Entra ID).

Serves what MSAL Python and a browser use: OpenID discovery, the signing keys, the token
endpoint (client credentials, authorization code with PKCE, refresh token; certificate
client assertions only), the sign-in and consent pages, admin consent and sign-out.
``{tenant}`` in a path is the tenant's GUID or any of its domains. Errors carry Microsoft's
AADSTS codes and shapes: JSON from the token endpoint, a redirect to the application once
the redirect URI is known to be registered, Microsoft's own error page before that.
The base URL comes from each request, so the app works on any host and port.

Each behaviour names the Microsoft document it follows (the identity platform's docs, by
file name in MicrosoftDocs/entra-docs: v2-oauth2-auth-code-flow.md, v2-admin-consent.md,
certificate-credentials.md, reference-error-codes.md, ...). Where a document is silent, the
comment says what the behaviour rests on instead (MSAL Python's source, a Microsoft SDK).
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
DEFAULT_USER_ROLE = "b79fbf4d-3ef9-4689-8143-76b194e85509"  # see TokenIssuer._id_token
TOKEN_LIFETIME = 3599  # expires_in of the documented answers (v2-oauth2-auth-code-flow.md)
CODE_LIFETIME = 600  # "they expire after about 10 minutes" (v2-oauth2-auth-code-flow.md)
CLOCK_SKEW = 300
# The ways a result may be sent back (v2-oauth2-auth-code-flow.md, response_mode).
RESPONSE_MODES = ("query", "fragment", "form_post")
FORM_FIELDS = ("login", "consent", "for_organization")  # the pages' own, not the request's
LOOPBACK = ("localhost", "127.0.0.1")
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
        # The fields of reference-error-codes.md ("Handling error codes in your
        # application"); error_description leads with the AADSTS code and ends with the
        # trace lines, as every documented example does.
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
        # Before the redirect URI is known to be registered nothing may go back to it
        # (v2-oauth2-auth-code-flow.md, redirect_uri; RFC 6749 4.1.2.1): Entra's own page.
        page = render_template("error.html", code=error.code, message=error.message, **_trace())
        return page, 400

    @app.get("/<tenant>/v2.0/.well-known/openid-configuration")
    def openid_configuration(tenant: str):
        # v2-protocols-oidc.md, "Fetch the OpenID configuration document": the fields of
        # the tenant's document, its endpoints named by the tenant's GUID whichever
        # domain was asked for; an unknown tenant is AADSTS90002 (reference-error-codes.md).
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
        # The jwks_uri of the discovery document (v2-protocols-oidc.md).
        directory.count("keys")
        _tenant(directory, tenant, "invalid_tenant")
        return jsonify(directory.jwks())

    @app.post("/<tenant>/oauth2/v2.0/token")
    def token(tenant: str):
        # The token endpoint (v2-oauth2-auth-code-flow.md, v2-oauth2-client-creds-grant-
        # flow.md): the tenant, then the client and its credential, then the grant.
        # Errors are JSON with the documented error strings: an unknown tenant
        # invalid_request 90002, an unknown app unauthorized_client 700016, a grant it
        # does not know unsupported_grant_type 70003 (reference-error-codes.md).
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
        # v2-oauth2-auth-code-flow.md, "Request an authorization code". Once the redirect
        # URI is known to be registered, every answer goes back to it in the response
        # mode asked for (query by default), with the request's state echoed (RFC 6749
        # 4.1.2), errors as error and error_description ("Error response").
        directory.count("authorize")
        params = request.values
        found, registration, redirect_uri = _sign_in_request(directory, tenant, params)
        state, response_mode = params.get("state"), params.get("response_mode", "query")
        if response_mode not in RESPONSE_MODES:
            # reference-error-codes.md: AADSTS70007 UnsupportedResponseMode.
            message = f"The app returned an unsupported value of response_mode '{response_mode}'."
            error = _error_result("invalid_request", 70007, message)
            return _reply(redirect_uri, "query", **error, state=state)

        def reply(**result):
            return _reply(redirect_uri, response_mode, **result, state=state)

        def reply_error(error: str, code: int, message: str, **extra):
            return reply(**_error_result(error, code, message), **extra)

        response_type = params.get("response_type")
        if not response_type:
            return reply_error("invalid_request", 900144, _missing("response_type"))
        if response_type != "code":
            # The apps here have no implicit grant or hybrid flow enabled: unsupported_response_
            # type, AADSTS700054 (v2-protocols-oidc.md "Enable ID tokens"; reference-error-
            # codes.md).
            message = f"response_type '{response_type}' is not enabled for the application."
            return reply_error("unsupported_response_type", 700054, message)
        if not params.get("scope"):
            return reply_error("invalid_request", 900144, _missing("scope"))
        challenge = params.get("code_challenge")
        if challenge is not None and not 43 <= len(challenge) <= 128:
            # RFC 7636 4.2 (43 to 128 characters); reference-error-codes.md: AADSTS501491
            # InvalidCodeChallengeMethodInvalidSize.
            message = "Invalid size of Code_Challenge parameter."
            return reply_error("invalid_request", 501491, message)
        try:
            scopes = requested_scopes(params["scope"])
        except ResourceError as error:
            message = _resource_not_found(str(error), found)
            return reply_error("invalid_resource", 500011, message)
        except ScopeError as error:
            return reply_error("invalid_scope", 70011, _invalid_scope(str(error)))

        if params.get("prompt") == "none":
            # prompt=none shows nothing; the stand-in keeps no single sign-on session, so
            # nobody is signed in: login_required, AADSTS50058 (v2-oauth2-auth-code-flow.md,
            # "Error codes for authorization endpoint errors"; reference-error-codes.md).
            message = "A silent sign-in request was sent but no user is signed in."
            return reply_error("login_required", 50058, message)

        form = {
            "action": request.path,
            "hidden": _carried(params),
            "app_name": registration.display_name,
        }
        if request.method == "GET":
            # login_hint pre-fills the username (v2-oauth2-auth-code-flow.md); without a
            # session every other prompt (login, select_account) shows the sign-in page.
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
            # reference-error-codes.md: AADSTS50020 UserUnauthorized, a user of another tenant.
            return reply_error("invalid_request", 50020, _foreign_user(user, found, registration))

        # Consent (v2-oauth2-auth-code-flow.md: "If the user hasn't consented ... it asks
        # the user to consent"; application-consent-experience.md): the consent page where
        # the tenant lets users consent, and for an administrator anywhere, with the "Consent
        # on behalf of your organization" box (off by default); "Need admin approval" for
        # anyone else.
        may_consent = found.user_consent_allowed or user.is_admin
        choice = request.form.get("consent")
        if choice == "cancel":
            # AADSTS65004 UserDeclinedConsent (reference-error-codes.md); error_subcode=cancel
            # is what MSAL.NET's AuthorizationResult reads as the user cancelling.
            message = "User declined to consent to access the app."
            return reply_error("access_denied", 65004, message, error_subcode="cancel")
        if choice == "return":
            # AADSTS90094 AdminConsentRequired (reference-error-codes.md).
            return reply_error("access_denied", 90094, "The grant requires admin permission.")
        if choice == "accept" and may_consent:
            if user.is_admin and request.form.get("for_organization"):
                # The delegated permissions asked for, for everyone; not the application
                # permissions, which only admin consent to /.default grants.
                directory.grant_for_organization(registration, _graph_permissions(scopes))
            else:
                directory.record_user_consent(user, registration.client_id)
        elif (
            not directory.has_consent(user, registration, _graph_permissions(scopes))
            or params.get("prompt") == "consent"
        ):
            form["hidden"].append(("login", user.upn))
            if may_consent:
                permissions = pages.describe([*_graph_permissions(scopes), *_oidc(scopes)])
                return render_template(
                    "consent.html",
                    login=user.upn,
                    permissions=permissions,
                    for_organization=user.is_admin,
                    **form,
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
                code_challenge=challenge,
                # "If excluded, code_challenge is assumed to be plaintext"
                # (v2-oauth2-auth-code-flow.md, code_challenge_method).
                code_challenge_method=params.get("code_challenge_method", "plain"),
            )
        )
        # "Successful response": code and state; session_state as Entra adds it (OpenID
        # Connect Session Management 1.0, which MSAL leaves alone).
        return reply(code=code, session_state=str(uuid.uuid4()))

    @app.route("/<tenant>/v2.0/adminconsent", methods=["GET", "POST"])
    def admin_consent(tenant: str):
        # v2-admin-consent.md: client_id, redirect_uri and scope required, state echoed.
        # Every answer, error or not, carries admin_consent=True ("Error response"), so an
        # application reads error first.
        directory.count("adminconsent")
        params = request.values
        found, registration, redirect_uri = _sign_in_request(directory, tenant, params)
        state, scope = params.get("state"), params.get("scope")

        def reply_error(error: str, code: int, message: str):
            result = _error_result(error, code, message)
            return _reply(redirect_uri, "query", **result, admin_consent="True", state=state)

        if not scope:
            # AADSTS90014 MissingRequiredField (reference-error-codes.md).
            message = (
                "The required field 'scope' is missing from the credential. "
                "Ensure that you have all the necessary parameters for the login request."
            )
            return reply_error("invalid_request", 90014, message)
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
            return reply_error("invalid_client", 650057, message)
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
        choice = request.form.get("consent")
        if choice == "return":
            # A user who is no administrator went back from "Need admin approval":
            # AADSTS90094 AdminConsentRequired (reference-error-codes.md).
            return reply_error("access_denied", 90094, "The grant requires admin permission.")
        if choice != "accept":
            # v2-admin-consent.md, "Error response": the documented example of a declined
            # admin consent, error consent_required with AADSTS65004.
            message = "The resource owner or authorization server denied the request."
            return reply_error("consent_required", 65004, message)
        login = request.form.get("login", "").strip()
        user = directory.user_by_upn(login) if login else None
        if user is None:
            return render_template("adminconsent.html", login=login, error=UNKNOWN_USERNAME, **form)
        if user.tenant_id != found.id:
            return reply_error("invalid_request", 50020, _foreign_user(user, found, registration))
        if not user.is_admin:
            # "Microsoft Entra ID enforces that only a tenant administrator can sign in to
            # complete the request" (v2-oauth2-client-creds-grant-flow.md, admin consent).
            form["hidden"].append(("login", user.upn))
            return render_template("approval.html", login=user.upn, **form)
        permissions = [item.rpartition("/")[2] for item in scope.split()]
        if ".default" in permissions:
            # /.default: every configured permission, application ones included.
            directory.grant_admin_consent(registration)
        else:
            # Named scopes are delegated permissions only: "In order to request app
            # permissions, you must use the /.default value" (v2-admin-consent.md).
            directory.grant_for_organization(registration, _graph_permissions(permissions))
        # "Successful response": admin_consent=True, the tenant's GUID, scope and state.
        return _reply(
            redirect_uri, "query", admin_consent="True", tenant=found.id, state=state, scope=scope
        )

    @app.route("/<tenant>/oauth2/v2.0/logout", methods=["GET", "POST"])
    def logout(tenant: str):
        # v2-protocols-oidc.md, "Send a sign-out request": GET or POST; the user goes to
        # post_logout_redirect_uri only if it is a redirect URI registered for the
        # application, and sees Microsoft's generic signed-out page otherwise.
        directory.count("logout")
        found = directory.find_tenant(tenant)
        if found is None:
            raise SignInError(90002, _tenant_not_found(tenant))
        target = request.values.get("post_logout_redirect_uri", "")
        if target and _registered_anywhere(directory, found, target):
            return redirect(target)
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
        """An app-only Graph token; ``roles`` only when an administrator consented
        (v2-oauth2-client-creds-grant-flow.md, "Get a token"; app-only-access-primer.md)."""
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            # AADSTS1002012, as Entra answers a client credentials scope without /.default
            # (the scope "should be the resource identifier ... affixed with .default").
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
        # "Successful response": token_type, expires_in, access_token (no scope, no
        # refresh token); ext_expires_in as Entra adds it.
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": self._access_token(claims),
        }

    def authorization_code(self, form) -> dict:
        """Redeem a code once, for the client, redirect URI and PKCE verifier it was issued to
        (v2-oauth2-auth-code-flow.md, "Redeem a code for an access token"; the codes of
        reference-error-codes.md: 54005 redeemed, 70008 expired, 500112 another reply
        address, 501481 verifier, 700005 another tenant, 9002313 malformed)."""
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
        self._requested(form)  # the scopes must name Graph, as at the authorize endpoint
        if not self.directory.redeem(grant):
            raise EntraError(400, "invalid_grant", 54005, _ALREADY_REDEEMED)
        user = self.directory.user(grant.user_id)
        granted = set(_graph_permissions(grant.scopes)) | self._tenant_wide_grant()
        return self._user_tokens(user, granted, set(_oidc(grant.scopes)), grant.nonce, form)

    def refresh_token(self, form) -> dict:
        """New tokens (and a new refresh token) for a refresh token that is not revoked
        (v2-oauth2-auth-code-flow.md, "Refresh the access token"): the old refresh token
        is not revoked by its use, the scopes asked for must have been granted (65001
        otherwise), a revoked grant is AADSTS50173 (reference-error-codes.md)."""
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
        requested = self._requested(form)
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

    def _requested(self, form) -> list[str]:
        """The scopes a redemption or refresh asks for: one resource, Graph, by its
        identifier (v2-oauth2-auth-code-flow.md, scope); 500011 for another resource,
        70011 for a malformed scope (reference-error-codes.md)."""
        try:
            return requested_scopes(form.get("scope", ""))
        except ResourceError as error:
            message = _resource_not_found(str(error), self.tenant)
            raise EntraError(400, "invalid_resource", 500011, message) from None
        except ScopeError as error:
            raise EntraError(400, "invalid_scope", 70011, _invalid_scope(str(error))) from None

    def _tenant_wide_grant(self) -> set[str]:
        """The delegated permissions an administrator granted for everyone: admin consent
        to /.default covers all the app's configured permissions, delegated and
        application alike (v2-admin-consent.md); otherwise those granted for everyone."""
        if not self.app.admin_consented:
            return set(self.app.organization_delegated)
        return set(_graph_permissions(self.app.delegated_permissions))

    def _user_tokens(self, user: User, granted: set, oidc: set, nonce, form) -> dict:
        permissions = sorted(granted)
        # A delegated v1.0 token's user claims (access-token-claims-reference.md: upn,
        # unique_name, amr and acr are v1.0 claims, preferred_username is not).
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
        # ("User.Read", as Entra answers a request for "User.Read") or with the resource,
        # as the documented answers to a request for https://graph.microsoft.com/mail.read
        # do (v2-oauth2-auth-code-flow.md, "Successful response"). MSAL finds a cached
        # token again only by the names it was given.
        qualified = any("/" in item for item in form.get("scope", "").split())
        prefix = f"{self.graph}/" if qualified else ""
        body = {
            "token_type": "Bearer",
            "scope": " ".join(f"{prefix}{name}" for name in permissions),
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": self._access_token(access),
        }
        # refresh_token only with offline_access, id_token only with openid
        # (v2-oauth2-auth-code-flow.md, "Successful response").
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
            # What MSAL asks for with client_info=1 and builds its account from
            # (msal/oauth2cli, MSAL Python's token cache): base64url {"uid", "utid"}.
            info = json.dumps({"uid": user.object_id, "utid": user.tenant_id}).encode()
            body["client_info"] = base64.urlsafe_b64encode(info).decode().rstrip("=")
        return body

    def _access_token(self, claims: dict) -> str:
        """A Graph access token: Graph takes v1.0 tokens (access-token-claims-reference.md:
        iss https://sts.windows.net/{tid}/, appid and appidacr "2" for a certificate,
        never the v2.0-only azp), for Graph's resource identifier."""
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
            "idp": issuer,
            "tid": self.tenant.id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
            **claims,
        }
        self.directory.issued_access_token(claims)
        return self.directory.sign(claims)

    def _id_token(self, user: User, nonce: str | None) -> str:
        """A v2.0 ID token (id-token-claims-reference.md): aud the client ID, iss the
        authority's {tid}/v2.0 as the discovery document's issuer, oid, tid, sub pairwise,
        preferred_username, name, ver 2.0, the nonce of the authorize request, no x5t."""
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
        if self.app.directory_roles_in_tokens:
            # wids: the role template IDs of the user's tenant-wide directory roles, only
            # when the app's manifest sets groupMembershipClaims to DirectoryRole or All
            # (access-token-claims-reference.md, wids; the claim is the same in ID tokens).
            # A member also holds the default user role b79fbf4d-...: no document lists it,
            # but Entra's tokens carry it (microsoftgraph/msgraph-sdk-powershell#1782).
            claims["wids"] = sorted({*user.directory_roles, DEFAULT_USER_ROLE})
        return self.directory.sign(claims, x5t=False)


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
    """Check the client's certificate assertion as Entra does (certificate-credentials.md:
    header x5t#S256 or x5t naming an uploaded certificate, aud the token endpoint, iss and
    sub the client ID, exp); the apps here have no secrets, so none is accepted.

    ``jti`` is not checked for reuse: MSAL Python, Microsoft's own client, sends the same
    assertion (same jti) for up to nine minutes (oauth2cli/assertion.py AutoRefresher), and
    no document says Entra refuses it. Nor is ``nbf`` required: MSAL sends none."""
    if form.get("client_secret"):
        # AADSTS7000215 (reference-error-codes.md): a secret, where the app has none.
        message = (
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            "the client secret value, not the client secret ID, for a secret added to app "
            f"'{app.client_id}'."
        )
        raise EntraError(401, "invalid_client", 7000215, message)
    assertion = form.get("client_assertion")
    if not assertion or form.get("client_assertion_type") != JWT_BEARER:
        # AADSTS7000218 (reference-error-codes.md).
        message = (
            "The request body must contain the following parameter: "
            "'client_assertion' or 'client_secret'."
        )
        raise EntraError(401, "invalid_client", 7000218, message)
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.DecodeError:
        # AADSTS50027 InvalidJwtToken (reference-error-codes.md): "token format isn't proper".
        raise EntraError(
            401, "invalid_client", 50027, "JWT token is invalid or malformed."
        ) from None
    certificate, thumbprint = _registered_certificate(app, header)
    if certificate is None:
        # AADSTS700027 (reference-error-codes.md): no uploaded certificate has the
        # thumbprint the header names.
        message = (
            "Client assertion failed signature validation. The certificate with identifier "
            "used to sign the client assertion is not registered on application. "
            f"[Reason - The key was not found., Thumbprint of key used by client: "
            f"'{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use "
            f"MS Graph to see configured keys for app Id '{app.client_id}'.]"
        )
        raise EntraError(401, "invalid_client", 700027, message)

    def rejected(code: int, reason: str):
        return EntraError(401, "invalid_client", code, reason)

    try:
        claims = jwt.decode(
            assertion,
            certificate.public_key(),
            algorithms=["RS256", "PS256"],
            leeway=CLOCK_SKEW,
            options={"verify_aud": False, "require": ["exp", "aud", "iss", "sub"]},
        )
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        # AADSTS700024, SignedAssertionInvalidTimeRange among the eSTS certificate errors
        # that Microsoft.Identity.Web lists (the reference table leaves it out).
        raise rejected(700024, "Client assertion is not within its valid time range.") from None
    except jwt.InvalidTokenError:
        # AADSTS7000274, as Microsoft.Identity.Web lists it among the certificate errors:
        # the certificate was found, the signature does not verify with it.
        raise rejected(
            7000274, "Key was found, but use of the key to verify the signature failed."
        ) from None
    # aud: the token endpoint, by the tenant's GUID or a domain (certificate-credentials.md
    # shows https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token).
    audiences = {f"{_base_url()}/{name}/oauth2/v2.0/token".lower() for name in tenant.domains}
    audiences |= {f"{_base_url()}/{tenant.id}/oauth2/v2.0/token".lower(), request.base_url.lower()}
    if str(claims["aud"]).lower() not in audiences:
        # AADSTS50027 InvalidJwtToken, "unexpected audience" (reference-error-codes.md).
        raise rejected(
            50027,
            f"JWT token is invalid or malformed. The audience '{claims['aud']}' of the client "
            f"assertion is not the token endpoint '{request.base_url}'.",
        )
    if str(claims["iss"]).lower() != str(claims["sub"]).lower():
        # AADSTS50048 SubjectMismatchesIssuer (reference-error-codes.md).
        raise rejected(50048, "Subject mismatches Issuer claim in the client assertion.")
    if str(claims["iss"]).lower() != app.client_id.lower():
        # AADSTS700021, as the Azure SDKs' troubleshooting guides quote it.
        raise rejected(
            700021, "Client assertion application identifier doesn't match 'client_id' parameter."
        )


def _registered_certificate(app: AppRegistration, header: dict):
    """The app's certificate whose thumbprint the assertion's header names, and that
    thumbprint in hex: ``x5t#S256`` the base64url SHA-256 thumbprint
    (certificate-credentials.md), or the legacy ``x5t`` SHA-1 one that MSAL sends with a
    thumbprint credential. MSAL pads them; Entra accepts either form."""
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
    """Whether the verifier answers the code's challenge, ``plain`` or ``S256`` (both
    supported: v2-oauth2-auth-code-flow.md; RFC 7636 4.6)."""
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
    if not _registered(registration, redirect_uri):
        # AADSTS50011 InvalidReplyTo (reference-error-codes.md), on Entra's own page.
        raise SignInError(
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the "
            f"redirect URIs configured for the application '{registration.client_id}'. Make "
            "sure the redirect URI sent in the request matches one added to your application "
            "in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn "
            "more about how to fix this.",
        )
    return found, registration, redirect_uri


def _registered(registration: AppRegistration, uri: str) -> bool:
    """Whether ``uri`` is one of the app's redirect URIs: an exact, case-sensitive match,
    except that the port of a loopback URI is ignored (reply-url.md, "Localhost
    exceptions")."""
    if uri in registration.redirect_uris:
        return True
    asked = urlsplit(uri)
    if asked.hostname not in LOOPBACK:
        return False
    return any(
        _without_port(urlsplit(registered)) == _without_port(asked)
        for registered in registration.redirect_uris
        if urlsplit(registered).hostname in LOOPBACK
    )


def _without_port(parts) -> tuple:
    return parts.scheme, parts.hostname, parts.path, parts.query


def _registered_anywhere(directory: Directory, tenant: Tenant, uri: str) -> bool:
    """Whether ``uri`` is a redirect URI of an application registered in the tenant."""
    with directory.lock:
        apps = [
            app for app in directory.apps.values() if app.tenant_id.lower() == tenant.id.lower()
        ]
    return any(_registered(app, uri) for app in apps)


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
    """Hand a result to the application (None values left out) as ``response_mode`` says
    (v2-oauth2-auth-code-flow.md): a redirect with a query string, with a fragment, or for
    ``form_post`` a page that posts it at once."""
    result = {name: value for name, value in result.items() if value is not None}
    if response_mode == "form_post":
        return render_template("formpost.html", action=redirect_uri, hidden=list(result.items()))
    if response_mode == "fragment":
        return redirect(urlunsplit(urlsplit(redirect_uri)._replace(fragment=urlencode(result))))
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
