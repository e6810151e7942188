"""Stand-in for the parts of Microsoft Graph v1.0 the portal uses: users, groups and their
members, calendars, events, Outlook's master categories, and JSON batching.

Bearer tokens are checked against the directory's signing key. App-only tokens act on any
mailbox of their tenant that their ``roles`` and the app's access policy allow; delegated
tokens act on the signed-in user's own mailbox within their ``scp``. Errors have Graph's
shape, ``{"error": {"code", "message", "innerError"}}``, with Exchange's codes where
Exchange is the one answering (calendars, events) and Entra's where the directory is
(users, groups). Requests to a mailbox can be throttled (``Directory.throttle``) and their
concurrency is measured (``Directory.max_concurrency``). A query option the stand-in does
not implement is answered 501 ``NotImplemented``.
"""

import math
import re
import time
from dataclasses import dataclass
from urllib.parse import quote

import jwt
from flask import Flask, Response, g, jsonify, request
from werkzeug.routing import BaseConverter

from .batch import MAILBOX_SLOTS, encode, run_batch
from .directory import Directory, Group, User, random_guid
from .events import (
    expanded_properties,
    extended_property_filter,
    new_event,
    patch_event,
    preferred_time_zone,
    render_event,
)
from .identity import GRAPH_APP_ID, WORLDWIDE_GRAPH
from .odata import (
    GraphError,
    client_request_id,
    equals_filter,
    error_body,
    only,
    page,
    pick,
    select,
    top,
)

READ_CALENDARS = {"Calendars.Read", "Calendars.ReadWrite"}
WRITE_CALENDARS = {"Calendars.ReadWrite"}
# The master categories' permission tables (outlookuser-list-mastercategories.md: Read;
# outlookuser-post-mastercategories.md: ReadWrite), ReadWrite including Read as its name says
# (permissions-reference.md: "read, update, create, and delete ... mailbox settings").
READ_MAILBOX_SETTINGS = {"MailboxSettings.Read", "MailboxSettings.ReadWrite"}
WRITE_MAILBOX_SETTINGS = {"MailboxSettings.ReadWrite"}
# outlookcategory.md: categoryColor is None or one of 25 pre-set constants, preset0..preset24.
CATEGORY_COLORS = ("none", *(f"preset{n}" for n in range(25)))
READ_OWN_PROFILE = {"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All"}
READ_USERS = {"User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All"}
READ_GROUPS = {
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
}
ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
ACCESS_DENIED = "Access is denied. Check credentials and try again."
# "Limiting application permissions to specific Exchange Online mailboxes"
# (auth-limit-mailbox-access.md), "Handling API errors".
POLICY_DENIED = "Access to OData is disabled."
INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."
ITEM_NOT_FOUND = "The specified object was not found in the store."
# throttling-limits.md gives the limit, not the answer; this is the answer Microsoft Q&A
# threads quote from Graph (e.g. question 1660054, "Send 4 requests at the same time, but
# still get 'Application is over its MailboxConcurrency limit.'").
OVER_CONCURRENCY = "Application is over its MailboxConcurrency limit."
# throttling.md's sample throttled response.
THROTTLED = ("TooManyRequests", "Please retry again later.")
GUID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)

__all__ = ["Caller", "GraphError", "create_graph_app"]


@dataclass
class Caller:
    """Who a valid access token speaks for."""

    tenant_id: str
    client_id: str
    object_id: str
    app_only: bool
    permissions: set[str]


class UserSegment(BaseConverter):
    """The two ways a Graph path names a user, ``me`` or ``users/{id | userPrincipalName}``:
    None for ``me``, else the id or UPN."""

    regex = r"me|users/[^/]+"
    part_isolating = False

    def to_python(self, value: str) -> str | None:
        return None if value == "me" else value.removeprefix("users/")

    def to_url(self, value: str | None) -> str:
        return "me" if value is None else f"users/{quote(value, safe='@')}"


def create_graph_app(directory: Directory) -> Flask:
    """The Graph stand-in as a Flask application over ``directory``."""
    app = Flask(__name__)
    app.url_map.converters["user"] = UserSegment
    app.json.sort_keys = False  # Graph lists properties in its own order, kept as built

    @app.before_request
    def count_and_trace():
        g.request_id = random_guid()
        directory.count("graph", *([f"graph:{request.endpoint}"] if request.endpoint else []))
        if request.environ.get(MAILBOX_SLOTS) is None:
            directory.count("graph:http")  # a request over the wire, not one inside a $batch

    @app.after_request
    def headers(response):
        if g.get("hold_answer"):
            time.sleep(g.hold_answer)  # the request has run; its answer comes late
        if request.environ.get(MAILBOX_SLOTS) is None:  # not a request inside a $batch
            items = len(g.get("batch_items", ()))
            latency = directory.request_latency + items * directory.batch_item_latency
            if latency:
                time.sleep(latency)
        response.headers["request-id"] = g.get("request_id", "")
        response.headers["client-request-id"] = client_request_id()
        if response.mimetype == "application/json":
            response.headers["Content-Type"] = ODATA_JSON
        if g.get("time_zone"):
            response.headers["Preference-Applied"] = f'outlook.timezone="{g.time_zone}"'
        return response

    @app.teardown_request
    def leave_mailboxes(_error):
        for owner in g.pop("mailboxes", []):
            directory.leave_mailbox(owner)

    # "Microsoft Graph error responses and resource types" (errors.md): one error object,
    # {"error": {"code", "message", "innerError"}}; 401 with WWW-Authenticate (RFC 6750).
    @app.errorhandler(GraphError)
    def graph_error(error: GraphError):
        response = jsonify(error_body(error.code, error.message))
        response.headers.update(error.headers)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = (
                'Bearer realm="", authorization_uri='
                '"https://login.microsoftonline.com/common/oauth2/authorize", '
                f'client_id="{GRAPH_APP_ID}"'
            )
        return response, error.status

    # An unknown path is Graph's 400 BadRequest "Resource not found for the segment" (as
    # Graph answers it; errors.md lists 400 for a malformed request).
    @app.errorhandler(404)
    def unknown_segment(_):
        segment = request.path.rstrip("/").rsplit("/", 1)[-1]
        return graph_error(
            GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        )

    # json-batching.md's sample response (request 4) shows Graph's 405 in these words.
    @app.errorhandler(405)
    def unsupported_method(_):
        return graph_error(
            GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        )

    # Users and groups (Entra ID)

    # "Get user" (user-get.md): User.Read for oneself, User.ReadBasic.All or more for others.
    @app.get("/v1.0/<user:who>")
    def user(who: str | None):
        caller = _caller(directory)
        target = _user_object(directory, caller, who)
        return jsonify(
            {
                "@odata.context": f"{_base_url()}/v1.0/$metadata#users/$entity",
                **_user_resource(target),
            }
        )

    # "List groups" (group-list.md); directory paging by $skiptoken, $top up to 999
    # (paging.md).
    @app.get("/v1.0/groups")
    def list_groups():
        caller = _caller(directory)
        _require(caller, READ_GROUPS)
        only("$filter", "$select", "$top", "$skiptoken")
        mail = equals_filter("mail")
        groups = directory.tenant_groups(caller.tenant_id)
        if mail is not None:
            groups = [group for group in groups if (group.mail or "").lower() == mail.lower()]
        resources = [pick(_group_resource(group), select()) for group in groups]
        items, next_link = page(resources, top(100, 999, "Request_UnsupportedQuery"), "$skiptoken")
        return jsonify(_collection(f"{_base_url()}/v1.0/$metadata#groups", items, next_link))

    # "Get group" (group-get.md).
    @app.get("/v1.0/groups/<group_id>")
    def group(group_id: str):
        caller = _caller(directory)
        _require(caller, READ_GROUPS)
        only("$select")
        target = _group(directory, caller, group_id)
        context = f"{_base_url()}/v1.0/$metadata#groups/$entity"
        return jsonify({"@odata.context": context, **pick(_group_resource(target), select())})

    # "List group members" and "List group transitive members" (group-list-members.md,
    # group-list-transitivemembers.md): GroupMember.Read.All or more, else 403
    # Authorization_RequestDenied, as json-batching.md's sample response shows it.
    @app.get("/v1.0/groups/<group_id>/members", defaults={"transitive": False})
    @app.get("/v1.0/groups/<group_id>/transitiveMembers", defaults={"transitive": True})
    def group_members(group_id: str, transitive: bool):
        caller = _caller(directory)
        _require(caller, READ_GROUPS)
        only("$select", "$top", "$skiptoken")
        target = _group(directory, caller, group_id)
        members = [
            pick(_directory_object(member), select(), ("@odata.type",))
            for member in directory.members(target, transitive)
        ]
        items, next_link = page(members, top(100, 999, "Request_UnsupportedQuery"), "$skiptoken")
        context = f"{_base_url()}/v1.0/$metadata#directoryObjects"
        return jsonify(_collection(context, items, next_link))

    # Calendars (Exchange)

    # "List calendars" (user-list-calendars.md).
    @app.get("/v1.0/<user:who>/calendars")
    def list_calendars(who: str | None):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, READ_CALENDARS)
        only("$filter", "$select")
        name = equals_filter("name")
        calendars = directory.calendars(owner)
        if name is not None:
            calendars = [c for c in calendars if c["name"].lower() == name.lower()]
        return jsonify(
            {
                "@odata.context": f"{_user_context(who, caller)}/calendars",
                "value": [pick(c, select(), ("id",)) for c in calendars],
            }
        )

    # "Create calendar" (user-post-calendars.md): 201 with the calendar. A second calendar
    # of the same name is 409 ErrorFolderExists, as Exchange answers (not in the document).
    @app.post("/v1.0/<user:who>/calendars")
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
        context = f"{_user_context(who, caller)}/calendars/$entity"
        return jsonify({"@odata.context": context, **calendar}), 201

    # "Get calendar" (calendar-get.md).
    @app.get("/v1.0/<user:who>/calendars/<calendar_id>")
    def get_calendar(who: str | None, calendar_id: str):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, READ_CALENDARS)
        only("$select")
        calendar = directory.calendar(owner, calendar_id)
        if calendar is None:
            raise GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)
        context = f"{_user_context(who, caller)}/calendars/$entity"
        return jsonify({"@odata.context": context, **pick(calendar, select(), ("id",))})

    # "Delete calendar" (calendar-delete.md): 204; Exchange keeps the default calendar.
    @app.delete("/v1.0/<user:who>/calendars/<calendar_id>")
    def delete_calendar(who: str | None, calendar_id: str):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, WRITE_CALENDARS)
        calendar = directory.calendar(owner, calendar_id)
        if calendar is None:
            raise GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)
        if calendar["isDefaultCalendar"]:
            raise GraphError(
                400, "ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted."
            )
        directory.delete_calendar(owner, calendar_id)
        return _no_content()

    # Events (Exchange)

    # "Create event" (user-post-events.md, calendar-post-events.md): 201 with the event; the
    # event resource type (event.md) for its properties and transactionId.
    @app.post("/v1.0/<user:who>/events", defaults={"calendar_id": None})
    @app.post("/v1.0/<user:who>/calendars/<calendar_id>/events")
    def create_event(who: str | None, calendar_id: str | None):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, WRITE_CALENDARS)
        time_zone = _preferred_time_zone()
        event = _not_refused(
            directory, new_event(request.get_json(silent=True), owner.display_name, owner.upn)
        )
        calendar_id = calendar_id or _default_calendar_id(directory, owner)
        created = directory.add_event(owner, calendar_id, event)
        if created is None:
            raise GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)
        key = quote(calendar_id, safe="")
        context = f"{_user_context(who, caller)}/calendars('{key}')/events/$entity"
        return jsonify({"@odata.context": context, **render_event(created[0], time_zone)}), 201

    # "List events" (user-list-events.md): times in UTC unless Prefer: outlook.timezone;
    # Outlook pages by $skip in @odata.nextLink (paging.md), 10 to a page unless $top.
    @app.get("/v1.0/<user:who>/events", defaults={"calendar_id": None})
    @app.get("/v1.0/<user:who>/calendars/<calendar_id>/events")
    def list_events(who: str | None, calendar_id: str | None):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, READ_CALENDARS)
        only("$filter", "$expand", "$select", "$top", "$skip")
        wanted = extended_property_filter(request.args.get("$filter"))
        expand = expanded_properties(request.args.get("$expand"))
        time_zone = _preferred_time_zone() or "UTC"
        calendar_id = calendar_id or _default_calendar_id(directory, owner)
        if directory.calendar(owner, calendar_id) is None:
            raise GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)
        events = [
            e for e in directory.calendar_events(owner, calendar_id) if not wanted or wanted(e)
        ]
        items, next_link = page(events, top(10, 1000), "$skip")
        value = [render_event(e, time_zone, expand, select()) for e in items]
        key = quote(calendar_id, safe="")
        context = f"{_user_context(who, caller)}/calendars('{key}')/events"
        return jsonify(_collection(context, value, next_link))

    # "Get event" (event-get.md); $expand of an extended property as
    # singlevaluelegacyextendedproperty-get.md shows it.
    @app.get("/v1.0/<user:who>/events/<event_id>", defaults={"calendar_id": None})
    @app.get("/v1.0/<user:who>/calendars/<calendar_id>/events/<event_id>")
    def get_event(who: str | None, calendar_id: str | None, event_id: str):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, READ_CALENDARS)
        only("$expand", "$select")
        expand = expanded_properties(request.args.get("$expand"))
        time_zone = _preferred_time_zone() or "UTC"
        event = directory.event(owner, event_id, calendar_id)
        if event is None:
            raise GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)
        context = f"{_user_context(who, caller)}/events/$entity"
        return jsonify(
            {"@odata.context": context, **render_event(event, time_zone, expand, select())}
        )

    # "Update event" (event-update.md): 200 with the event.
    @app.patch("/v1.0/<user:who>/events/<event_id>", defaults={"calendar_id": None})
    @app.patch("/v1.0/<user:who>/calendars/<calendar_id>/events/<event_id>")
    def update_event(who: str | None, calendar_id: str | None, event_id: str):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, WRITE_CALENDARS)
        time_zone = _preferred_time_zone()
        body = request.get_json(silent=True)
        event = directory.update_event(
            owner,
            event_id,
            lambda current: _not_refused(directory, patch_event(current, body)),
            calendar_id,
        )
        if event is None:
            raise GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)
        context = f"{_user_context(who, caller)}/events/$entity"
        return jsonify({"@odata.context": context, **render_event(event, time_zone)})

    # "Delete event" (event-delete.md): 204; a missing event is 404 ErrorItemNotFound.
    @app.delete("/v1.0/<user:who>/events/<event_id>", defaults={"calendar_id": None})
    @app.delete("/v1.0/<user:who>/calendars/<calendar_id>/events/<event_id>")
    def delete_event(who: str | None, calendar_id: str | None, event_id: str):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, WRITE_CALENDARS)
        if not directory.delete_event(owner, event_id, calendar_id):
            raise GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)
        return _no_content()

    # Outlook categories (Exchange)

    # "List Outlook categories" (outlookuser-list-mastercategories.md): the whole master list
    # in one collection; MailboxSettings.Read or more, else 403 ErrorAccessDenied as for any
    # mailbox permission missing (an application access policy limits these too:
    # auth-limit-mailbox-access.md).
    @app.get("/v1.0/<user:who>/outlook/masterCategories")
    def list_master_categories(who: str | None):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, READ_MAILBOX_SETTINGS)
        only("$select")
        value = [pick(c, select(), ("id",)) for c in directory.master_categories(owner)]
        context = f"{_user_context(who, caller)}/outlook/masterCategories"
        return jsonify({"@odata.context": context, "value": value})

    # "Create Outlook category" (outlookuser-post-mastercategories.md): 201 with the
    # category; MailboxSettings.ReadWrite. The outlookCategory resource (outlookcategory.md)
    # for its body; a name already in the list is 409 (errors.md: Conflict, code
    # nameAlreadyExists, "The specified item name already exists").
    @app.post("/v1.0/<user:who>/outlook/masterCategories")
    def create_master_category(who: str | None):
        caller = _caller(directory)
        owner = _mailbox(directory, caller, who, WRITE_MAILBOX_SETTINGS)
        name, color = _outlook_category(request.get_json(silent=True))
        category = directory.add_master_category(owner, name, color)
        if category is None:
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        context = f"{_user_context(who, caller)}/outlook/masterCategories/$entity"
        return jsonify({"@odata.context": context, **category}), 201

    # JSON batching

    # "Combine multiple HTTP requests using JSON batching" (json-batching.md): see batch.py.
    @app.post("/v1.0/$batch")
    def batch():
        _caller(directory)
        payload = request.get_json(silent=True)
        if isinstance(payload, dict) and isinstance(payload.get("requests"), list):
            g.batch_items = payload["requests"]  # each adds to the answer's latency
        authorization = request.headers["Authorization"]
        result = run_batch(app, directory, payload, authorization, request.host_url)
        return Response(encode(result), mimetype="application/json")

    return app


# Who is calling, and on what


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
    # A Graph token's audience is Graph's resource identifier or app ID, never the host the
    # request reached (access-tokens.md: the resource checks aud against its own identifiers).
    audiences = [WORLDWIDE_GRAPH, GRAPH_APP_ID]
    expired = "Lifetime validation failed, the token is expired."
    try:
        claims = directory.decode(token, audiences)
    except jwt.ExpiredSignatureError:
        raise GraphError(401, "InvalidAuthenticationToken", expired) from None
    except jwt.InvalidAudienceError:
        message = "Access token validation failure. Invalid audience."
        raise GraphError(401, "InvalidAuthenticationToken", message) from None
    except jwt.InvalidTokenError:
        message = "Access token validation failure."
        raise GraphError(401, "InvalidAuthenticationToken", message) from None
    if directory.access_token_lapsed(claims):
        raise GraphError(401, "InvalidAuthenticationToken", expired)
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
    user = directory.user_by_id_or_upn(who)
    return user if user and user.tenant_id == caller.tenant_id else None


def _mailbox(directory: Directory, caller: Caller, who: str | None, needed: set[str]) -> User:
    """The mailbox the caller may act on, as Exchange decides; the request then occupies it
    (see ``_occupy``). A token without one of the ``needed`` permissions (calendars, or
    mailbox settings) is 403 ErrorAccessDenied (the API documents' permission tables); an
    app held out by an application access policy is 403 ErrorAccessDenied "Access to OData
    is disabled." (auth-limit-mailbox-access.md), unless RBAC for Applications grants it
    the mailbox for that permission (Exchange's "Role Based Access Control for
    Applications", whose grants add to the Entra one); a user without an
    Exchange Online mailbox is 404 MailboxNotEnabledForRESTAPI (Exchange troubleshooting
    article KB 4462988, "REST API is not yet supported for this mailbox")."""
    owner = _target(directory, caller, who)
    registration = directory.app(caller.tenant_id, caller.client_id) if caller.app_only else None
    rbac = registration.rbac_mailboxes if registration else None
    rbac_grant = (
        rbac is not None
        and owner is not None
        and owner.upn.lower() in rbac
        and bool(needed & registration.rbac_permissions)
    )
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
            "REST API is not yet supported for this mailbox.",
        )
    _occupy(directory, owner, caller.client_id)
    return owner


def _occupy(directory: Directory, owner: User, client_id: str) -> None:
    """Count this request as running on the mailbox until it ends, or inside a ``$batch``
    until its whole wave has run (answered or not, since Graph dispatched them together).
    The Outlook service limits (throttling-limits.md: 10,000 requests in 10 minutes and 4
    at once, per app and mailbox) answer it 429 with ``Retry-After``, as does a throttle
    the test set (429 or 503); a hold the test set keeps it waiting before it runs or
    before it is answered."""
    running = directory.enter_mailbox(owner)
    wave = request.environ.get(MAILBOX_SLOTS)
    (wave if wave is not None else g.setdefault("mailboxes", [])).append(owner)
    directory.gather()
    hold = directory.take_hold(owner)
    if hold and hold.applied:
        g.hold_answer = hold.seconds
    elif hold:
        time.sleep(hold.seconds)
    throttle = directory.take_throttle(owner)
    if throttle:
        retry_after = {"Retry-After": f"{throttle.retry_after:g}"}
        raise GraphError(throttle.status, throttle.code, throttle.message, retry_after)
    wait = directory.admit_request(owner, client_id)
    if wait is not None:
        raise GraphError(429, *THROTTLED, {"Retry-After": str(max(1, math.ceil(wait)))})
    limit = directory.mailbox_concurrency_limit
    if limit is not None and running > limit:
        raise GraphError(429, "ApplicationThrottled", OVER_CONCURRENCY, {"Retry-After": "1"})
    if wave is None and directory.mailbox_latency:
        time.sleep(directory.mailbox_latency)


def _not_refused(directory: Directory, event: dict) -> dict:
    """The event, unless a fault injection (``Directory.refuse_subject``) refuses it 400."""
    refusal = directory.refusal(event)
    if refusal is not None:
        raise GraphError(400, *refusal)
    return event


def _outlook_category(body) -> tuple[str, str]:
    """The (displayName, color) of a new category's body (outlookcategory.md): a name, and
    one of the categoryColor constants, matched as OData matches enum members, ignoring
    case; without ``color``, the category has none (not in the document: the enum's
    ``None``). Other properties are refused as OData refuses them (RequestBodyRead)."""
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    for name in body:
        if name not in ("displayName", "color") and not name.startswith("@odata."):
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The property '{name}' does not exist on type 'microsoft.graph.outlookCategory'."
                " Make sure to only use property names that are defined by the type or mark the"
                " type as open type.",
            )
    display_name = body.get("displayName")
    if display_name is not None and not isinstance(display_name, str):
        message = "Cannot convert a primitive value to the expected type 'Edm.String'."
        raise GraphError(400, "RequestBodyRead", message)
    if not display_name or not display_name.strip():
        raise GraphError(
            400, "ErrorInvalidParameter", "The value of the parameter 'DisplayName' is empty."
        )
    color = body.get("color", "none")
    for member in CATEGORY_COLORS:
        if isinstance(color, str) and color.lower() == member:
            return display_name, member
    raise GraphError(400, "RequestBodyRead", f"Requested value '{color}' was not found.")


def _user_object(directory: Directory, caller: Caller, who: str | None) -> User:
    """The user object the caller may read, as the directory decides."""
    target = _target(directory, caller, who)
    own = target is not None and not caller.app_only and target.object_id == caller.object_id
    _require(caller, READ_OWN_PROFILE if own else READ_USERS)
    if target is None:
        raise _resource_not_found(who or "me")
    return target


def _group(directory: Directory, caller: Caller, group_id: str) -> Group:
    """A group of the caller's tenant, by object ID."""
    if not GUID.fullmatch(group_id):
        raise GraphError(400, "Request_BadRequest", f"Invalid object identifier '{group_id}'.")
    group = directory.group(group_id)
    if group is None or group.tenant_id.lower() != caller.tenant_id.lower():
        raise _resource_not_found(group_id)
    return group


def _require(caller: Caller, permissions: set[str]) -> None:
    if not caller.permissions & permissions:
        raise GraphError(403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)


def _resource_not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def _default_calendar_id(directory: Directory, owner: User) -> str:
    return next(c["id"] for c in directory.calendars(owner) if c["isDefaultCalendar"])


def _preferred_time_zone() -> str | None:
    """The zone ``Prefer: outlook.timezone`` asks event times in; Graph confirms it in
    ``Preference-Applied`` (event-get.md, user-list-events.md: "Support various time
    zones")."""
    g.time_zone = preferred_time_zone(", ".join(request.headers.getlist("Prefer")))
    return g.time_zone


# Resources


def _user_resource(user: User) -> dict:
    return {
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.display_name.split(" ")[0],
        "jobTitle": None,
        "mail": user.upn if user.has_mailbox else None,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": user.display_name.split(" ")[-1],
        "userPrincipalName": user.upn,
        "id": user.object_id,
    }


def _group_resource(group: Group) -> dict:
    nickname = (group.mail or "").split("@")[0] or re.sub(r"\W", "", group.display_name)
    return {
        "id": group.id,
        "deletedDateTime": None,
        "description": None,
        "displayName": group.display_name,
        "groupTypes": [],
        "mail": group.mail,
        "mailEnabled": group.mail_enabled,
        "mailNickname": nickname,
        "proxyAddresses": [f"SMTP:{group.mail}"] if group.mail else [],
        "securityEnabled": group.security_enabled,
        "visibility": None,
    }


def _directory_object(member: User | Group) -> dict:
    if isinstance(member, Group):
        return {"@odata.type": "#microsoft.graph.group", **_group_resource(member)}
    return {"@odata.type": "#microsoft.graph.user", **_user_resource(member)}


def _collection(context: str, items: list, next_link: str | None) -> dict:
    body = {"@odata.context": context}
    if next_link:
        body["@odata.nextLink"] = next_link
    return {**body, "value": items}


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def _user_context(who: str | None, caller: Caller) -> str:
    key = quote(who if who is not None else caller.object_id, safe="")
    return f"{_base_url()}/v1.0/$metadata#users('{key}')"


def _base_url() -> str:
    return request.host_url.rstrip("/")
