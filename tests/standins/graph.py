"""Stand-in for the parts of Microsoft Graph v1.0 the portal uses: users and calendars.

Bearer tokens are checked against the directory's signing key. App-only tokens act on any
mailbox of their tenant that their ``roles`` and the app's access policy allow; delegated
tokens act on the signed-in user's own mailbox within their ``scp``. Errors have Graph's
shape, ``{"error": {"code", "message", "innerError"}}``, with Exchange's codes where
Exchange is the one answering (calendars).
"""

import datetime
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import jwt
from flask import Flask, g, jsonify, request

from .directory import Directory, User
from .identity import GRAPH_APP_ID, WORLDWIDE_GRAPH

READ_CALENDARS = {"Calendars.Read", "Calendars.ReadWrite"}
WRITE_CALENDARS = {"Calendars.ReadWrite"}
READ_OWN_PROFILE = {"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All"}
READ_USERS = {"User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All"}
ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
ACCESS_DENIED = "Access is denied. Check credentials and try again."
POLICY_DENIED = (
    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy "
    "settings."
)


class GraphError(Exception):
    """A Graph error response."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class Caller:
    """Who a valid access token speaks for."""

    tenant_id: str
    client_id: str
    object_id: str
    app_only: bool
    permissions: set[str]


def create_graph_app(directory: Directory) -> Flask:
    """The Graph stand-in as a Flask application over ``directory``."""
    app = Flask(__name__)

    @app.before_request
    def count_and_trace():
        g.request_id = str(uuid.uuid4())
        directory.count("graph")
        if request.endpoint:
            directory.count(f"graph:{request.endpoint}")

    @app.after_request
    def headers(response):
        response.headers["request-id"] = g.get("request_id", "")
        response.headers["client-request-id"] = _client_request_id()
        if response.mimetype == "application/json":
            response.headers["Content-Type"] = ODATA_JSON
        return response

    @app.errorhandler(GraphError)
    def graph_error(error: GraphError):
        body = {
            "error": {
                "code": error.code,
                "message": error.message,
                "innerError": {
                    "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": g.get("request_id", ""),
                    "client-request-id": _client_request_id(),
                },
            }
        }
        response = jsonify(body)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = (
                'Bearer realm="", authorization_uri='
                '"https://login.microsoftonline.com/common/oauth2/authorize", '
                f'client_id="{GRAPH_APP_ID}"'
            )
        return response, error.status

    @app.errorhandler(404)
    def unknown_segment(_):
        segment = request.path.rstrip("/").rsplit("/", 1)[-1]
        return graph_error(
            GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        )

    @app.errorhandler(405)
    def unsupported_method(_):
        return graph_error(
            GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        )

    @app.get("/v1.0/me", defaults={"who": None})
    @app.get("/v1.0/users/<who>")
    def user(who: str | None):
        caller = _caller(directory)
        target = _user_object(directory, caller, who)
        return jsonify(
            {
                "@odata.context": f"{_base_url()}/v1.0/$metadata#users/$entity",
                "businessPhones": [],
                "displayName": target.display_name,
                "givenName": target.display_name.split(" ")[0],
                "jobTitle": None,
                "mail": target.upn if target.has_mailbox else None,
                "mobilePhone": None,
                "officeLocation": None,
                "preferredLanguage": "en-US",
                "surname": target.display_name.split(" ")[-1],
                "userPrincipalName": target.upn,
                "id": target.object_id,
            }
        )

    @app.get("/v1.0/me/calendars", defaults={"who": None})
    @app.get("/v1.0/users/<who>/calendars")
    def list_calendars(who: str | None):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, READ_CALENDARS)
        return jsonify(
            {
                "@odata.context": _calendars_context(who, caller),
                "value": directory.calendars(owner),
            }
        )

    @app.post("/v1.0/me/calendars", defaults={"who": None})
    @app.post("/v1.0/users/<who>/calendars")
    def create_calendar(who: str | None):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, WRITE_CALENDARS)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise GraphError(
                400, "ErrorInvalidParameter", "The value of the parameter 'Name' is empty."
            )
        calendar = directory.add_calendar(owner, name)
        if calendar is None:
            raise GraphError(
                409, "ErrorFolderExists", "A folder with the specified name already exists."
            )
        context = f"{_calendars_context(who, caller)}/$entity"
        return jsonify({"@odata.context": context, **calendar}), 201

    return app


def _caller(directory: Directory) -> Caller:
    """The caller named by the request's bearer token; 401 unless the token is valid."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    if token.count(".") != 2:
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            "CompactToken parsing failed with error code: 80049217",
        )
    audiences = [directory.base_url_graph or WORLDWIDE_GRAPH, WORLDWIDE_GRAPH, GRAPH_APP_ID]
    try:
        claims = directory.decode(token, audiences)
    except jwt.ExpiredSignatureError:
        message = "Lifetime validation failed, the token is expired."
        raise GraphError(401, "InvalidAuthenticationToken", message) from None
    except jwt.InvalidAudienceError:
        message = "Access token validation failure. Invalid audience."
        raise GraphError(401, "InvalidAuthenticationToken", message) from None
    except jwt.InvalidTokenError:
        message = "Access token validation failure."
        raise GraphError(401, "InvalidAuthenticationToken", message) from None
    app_only = "scp" not in claims
    permissions = set(claims.get("roles", [])) if app_only else set(claims["scp"].split())
    return Caller(
        claims["tid"], claims.get("appid", ""), claims.get("oid", ""), app_only, permissions
    )


def _target(directory: Directory, caller: Caller, who: str | None) -> User | None:
    """The user a path names: ``me`` (``who`` is None) or, by object ID or UPN, a user of
    the caller's tenant."""
    if who is None:
        if caller.app_only:
            message = "/me request is only valid with delegated authentication flow."
            raise GraphError(400, "BadRequest", message)
        return directory.user(caller.object_id)
    user = directory.user(who) or directory.user_by_upn(who)
    return user if user and user.tenant_id == caller.tenant_id else None


def _mailbox(directory: Directory, caller: Caller, who: str | None, needed: set[str]) -> User:
    """The mailbox the caller may act on, as Exchange decides."""
    owner = _target(directory, caller, who)
    registration = directory.app(caller.tenant_id, caller.client_id) if caller.app_only else None
    rbac = registration.rbac_mailboxes if registration else None
    rbac_grant = rbac is not None and owner is not None and owner.upn.lower() in rbac
    if not caller.permissions & needed and not rbac_grant:
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    if owner is None:
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{who or 'me'}' is invalid.")
    if not caller.app_only and owner.object_id != caller.object_id:
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    if caller.app_only and not rbac_grant:
        policy = registration.policy_mailboxes if registration else None
        if policy is not None and owner.upn.lower() not in policy:
            raise GraphError(403, "ErrorAccessDenied", POLICY_DENIED)
    if not owner.has_mailbox:
        raise GraphError(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    return owner


def _user_object(directory: Directory, caller: Caller, who: str | None) -> User:
    """The user object the caller may read, as the directory decides."""
    target = _target(directory, caller, who)
    own = target is not None and not caller.app_only and target.object_id == caller.object_id
    if not caller.permissions & (READ_OWN_PROFILE if own else READ_USERS):
        message = "Insufficient privileges to complete the operation."
        raise GraphError(403, "Authorization_RequestDenied", message)
    if target is None:
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{who or 'me'}' does not exist or one of its queried reference-property "
            "objects are not present.",
        )
    return target


def _calendars_context(who: str | None, caller: Caller) -> str:
    key = quote(who if who is not None else caller.object_id, safe="")
    return f"{_base_url()}/v1.0/$metadata#users('{key}')/calendars"


def _base_url() -> str:
    return request.host_url.rstrip("/")


def _client_request_id() -> str:
    return request.headers.get("client-request-id") or g.get("request_id", "")
