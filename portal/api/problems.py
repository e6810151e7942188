"""The provisioning API's errors as RFC 9457 problem details (``application/problem+json``).

Each problem the portal names has a type URI under the API (``/api/v1/problems/<type>``,
where its description is served); an error that only its HTTP status describes has type
``about:blank`` and the status's phrase as title (RFC 9457, 4.2.1).
"""

from enum import StrEnum
from http import HTTPStatus

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"
PREFIX = "/api/"


class ProblemType(StrEnum):
    """The problems the API names."""

    UNAUTHORIZED = "unauthorized"
    NOT_APPLICATION = "not-application-permissions"
    NOT_APPROVED = "configuration-not-approved"
    INVALID_ADDRESS = "invalid-address"
    INVALID_REQUEST = "invalid-request"
    MAILBOX_NOT_FOUND = "mailbox-not-found"
    MAILBOX_REFUSED = "mailbox-refused"
    MAILBOX_NOT_SYNCHRONISED = "mailbox-not-synchronised"
    RATE_LIMITED = "rate-limited"
    MICROSOFT_UNAVAILABLE = "microsoft-unavailable"
    SIGN_IN_REFUSED = "microsoft-sign-in-refused"


# Title and description of each type: the title goes in every answer of the type; the
# description is what the type's URI serves.
DESCRIPTIONS: dict[ProblemType, tuple[str, str]] = {
    ProblemType.UNAUTHORIZED: (
        "No valid API key",
        "The request carries no API key in 'Authorization: Bearer <key>', or the key is "
        "unknown or was revoked. Support makes and revokes keys in the console.",
    ),
    ProblemType.NOT_APPLICATION: (
        "The institution uses delegated permissions",
        "Mailboxes are provisioned only with application permissions; with delegated "
        "permissions each user connects their own calendar.",
    ),
    ProblemType.NOT_APPROVED: (
        "The institution's configuration is not approved",
        "Mailboxes can be provisioned once support has approved the configuration.",
    ),
    ProblemType.INVALID_ADDRESS: (
        "Not a mailbox address",
        "The address is not a user principal name: a local part of letters, digits and "
        "' . - _ ! # ^ ~ (the characters Microsoft Entra allows), '@' and a domain name.",
    ),
    ProblemType.INVALID_REQUEST: (
        "The request is not valid",
        "A parameter or the body does not follow the OpenAPI document; 'errors' says which.",
    ),
    ProblemType.MAILBOX_NOT_FOUND: (
        "No such mailbox is provisioned",
        "The institution has no synchronisation for this address.",
    ),
    ProblemType.MAILBOX_REFUSED: (
        "Microsoft refused the mailbox",
        "Microsoft Graph refused the portal access to the mailbox. 'reason' says why: "
        "outside_group (outside the security group the app is limited to), no_mailbox (no "
        "Exchange Online mailbox: unlicensed, on-premises or guest), unknown_user (no such "
        "user in the tenant), access_denied (the app may not write calendars), other; "
        "'microsoft_code' is Microsoft's error code.",
    ),
    ProblemType.MAILBOX_NOT_SYNCHRONISED: (
        "The mailbox's synchronisation has ended",
        "Provision the mailbox again (PUT) before asking for a synchronisation.",
    ),
    ProblemType.RATE_LIMITED: (
        "Too many requests",
        "The API key made more requests than its limit allows; wait as 'Retry-After' says.",
    ),
    ProblemType.MICROSOFT_UNAVAILABLE: (
        "Microsoft could not be reached",
        "Microsoft's identity platform or Graph did not answer, or asked to wait; try "
        "again later ('Retry-After', when given).",
    ),
    ProblemType.SIGN_IN_REFUSED: (
        "Microsoft refused the portal's sign-in",
        "Microsoft refused the portal's sign-in for the institution (its certificate, or "
        "the administrator's consent); 'microsoft_code' says which. Support or the "
        "institution's administrator puts the configuration right; nothing was changed.",
    ),
}


def type_uri(kind: ProblemType) -> str:
    """The type's URI: absolute, on the portal's external address."""
    return f"{current_app.config['EXTERNAL_URL']}{PREFIX}v1/problems/{kind}"


def body(status: int, kind: ProblemType | None, detail: str = "", **extra) -> dict:
    """A problem details object."""
    problem = {
        "type": type_uri(kind) if kind else "about:blank",
        "title": DESCRIPTIONS[kind][0] if kind else HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        problem["detail"] = detail
    problem["instance"] = request.path
    return problem | extra


def response(status: int, kind: ProblemType | None, detail: str = "", headers=None, **extra):
    """A problem details answer."""
    answer = jsonify(body(status, kind, detail, **extra))
    answer.status_code = status
    answer.mimetype = MEDIA_TYPE
    answer.headers.update(headers or {})
    return answer


def wanted() -> bool:
    """True when the request is the API's, whose errors are problem details."""
    return request.path.startswith(PREFIX)


def from_http_exception(error: HTTPException):
    """An HTTP error raised in (or on the way to) the API as a problem details answer."""
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    if code == 429:
        return response(
            429,
            ProblemType.RATE_LIMITED,
            f"The limit is {error.description}.",
            headers=_headers(error),
        )
    if "messages" in data:  # webargs: the request did not follow the document
        return response(
            code,
            ProblemType.INVALID_REQUEST,
            "See 'errors' for what is wrong where.",
            headers=data.get("headers"),
            errors=data["messages"],
        )
    detail = "" if code >= 500 else (error.description or "")
    return response(code, None, detail, headers=_headers(error))


def _headers(error: HTTPException) -> dict:
    answer = error.get_response()
    return {name: value for name, value in answer.headers.items() if name == "Allow"}
