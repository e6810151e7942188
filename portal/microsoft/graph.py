"""Microsoft Graph requests: the only module that builds one."""

from dataclasses import dataclass
from urllib.parse import quote

import requests

from . import http
from .clouds import Cloud
from .errors import MicrosoftError


@dataclass(frozen=True)
class Calendar:
    """A calendar in a mailbox, as far as the portal cares."""

    id: str
    name: str
    owner: str
    can_edit: bool


def _raise_for_error(response: requests.Response) -> None:
    if response.ok:
        return
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = error.get("code") or f"HTTP{response.status_code}"
    message = error.get("message") or response.reason or ""
    failure = MicrosoftError(code, message, status=response.status_code)
    failure.retry_after = _seconds(response.headers.get("Retry-After"))
    raise failure


def _send(cloud: Cloud, access_token: str, method: str, path: str, body=None) -> dict:
    try:
        response = http.session().request(
            method,
            f"{cloud.graph_endpoint}/v1.0{path}",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            json=body,
        )
    except requests.RequestException as exc:
        raise MicrosoftError("unreachable", str(exc)) from exc
    _raise_for_error(response)
    return response.json() if response.content else {}


def _get(cloud: Cloud, access_token: str, path: str) -> dict:
    return _send(cloud, access_token, "GET", path)


def _mailbox_path(mailbox: str | None) -> str:
    return "/me" if mailbox is None else f"/users/{quote(mailbox, safe='@')}"


def list_calendars(cloud: Cloud, access_token: str, mailbox: str | None = None) -> list[Calendar]:
    """The calendars of ``mailbox`` (a UPN or object ID), or of the signed-in user."""
    body = _get(
        cloud, access_token, f"{_mailbox_path(mailbox)}/calendars?$select=id,name,owner,canEdit"
    )
    return [_calendar(c) for c in body.get("value", [])]


def _calendar(c: dict) -> Calendar:
    return Calendar(
        id=c.get("id", ""),
        name=c.get("name", ""),
        owner=(c.get("owner") or {}).get("address", ""),
        can_edit=bool(c.get("canEdit")),
    )


def ensure_calendar(
    cloud: Cloud, access_token: str, name: str, mailbox: str | None = None
) -> tuple[Calendar, bool]:
    """The mailbox's calendar called ``name``, made if missing; (calendar, made now)."""
    escaped = name.replace("'", "''")
    found = _get(
        cloud,
        access_token,
        f"{_mailbox_path(mailbox)}/calendars?$filter=name eq '{quote(escaped)}'"
        "&$select=id,name,owner,canEdit",
    ).get("value", [])
    for calendar in found:
        if calendar.get("name") == name:
            return _calendar(calendar), False
    made = _send(cloud, access_token, "POST", f"{_mailbox_path(mailbox)}/calendars", {"name": name})
    return _calendar(made), True


def delete_calendar(
    cloud: Cloud, access_token: str, calendar_id: str, mailbox: str | None = None
) -> None:
    """Remove a calendar and its events; one already gone counts as removed."""
    try:
        _send(
            cloud,
            access_token,
            "DELETE",
            f"{_mailbox_path(mailbox)}/calendars/{quote(calendar_id, safe='')}",
        )
    except MicrosoftError as error:
        if error.code not in ("ErrorItemNotFound", "ResourceNotFound"):
            raise


@dataclass(frozen=True)
class Member:
    """A user in a group."""

    id: str
    upn: str
    name: str


def group_members(cloud: Cloud, access_token: str, group_email: str) -> list[Member]:
    """The user members (direct and nested) of the group with this e-mail address."""
    escaped = group_email.replace("'", "''")
    groups = _get(
        cloud, access_token, f"/groups?$filter=mail eq '{quote(escaped)}'&$select=id,mail"
    ).get("value", [])
    if not groups:
        raise MicrosoftError("GroupNotFound", f"No group has the address {group_email}.", 404)
    path = f"/groups/{groups[0]['id']}/transitiveMembers?$select=id,userPrincipalName,displayName"
    members: list[Member] = []
    while path:
        page = _get(cloud, access_token, path)
        members += [
            Member(m.get("id", ""), m.get("userPrincipalName", ""), m.get("displayName", ""))
            for m in page.get("value", [])
            if m.get("@odata.type", "#microsoft.graph.user") == "#microsoft.graph.user"
            and m.get("userPrincipalName")
        ]
        next_link = page.get("@odata.nextLink")
        path = next_link.split("/v1.0", 1)[1] if next_link else None
    return members


BATCH_LIMIT = 20


@dataclass(frozen=True)
class BatchAnswer:
    """One sub-request's answer in a JSON batch."""

    id: str
    status: int
    body: dict
    retry_after: float | None


def batch(cloud: Cloud, access_token: str, requests_: list[dict]) -> list[BatchAnswer]:
    """Send up to 20 requests as one JSON batch; each answer keeps its own status.

    Each request is ``{"id", "method", "url" (relative to /v1.0), "body"?, "dependsOn"?}``.
    A 429 or 5xx for the batch as a whole raises ``MicrosoftError`` with ``retry_after``.
    """
    if len(requests_) > BATCH_LIMIT:
        raise ValueError("a JSON batch holds at most 20 requests")
    payload = {
        "requests": [
            {**r, "headers": {"Content-Type": "application/json"}} if "body" in r else r
            for r in requests_
        ]
    }
    try:
        response = http.session().post(
            f"{cloud.graph_endpoint}/v1.0/$batch",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            json=payload,
        )
    except requests.RequestException as exc:
        raise MicrosoftError("unreachable", str(exc)) from exc
    if response.status_code in (429, 503, 504):
        error = MicrosoftError(
            "TooManyRequests", "Microsoft Graph asked to slow down.", response.status_code
        )
        error.retry_after = _seconds(response.headers.get("Retry-After"))
        raise error
    _raise_for_error(response)
    answers = []
    for item in response.json().get("responses", []):
        headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
        answers.append(
            BatchAnswer(
                id=str(item.get("id")),
                status=int(item.get("status", 500)),
                body=item.get("body") or {},
                retry_after=_seconds(headers.get("retry-after")),
            )
        )
    return answers


def _seconds(value) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def tagged_events(
    cloud: Cloud, access_token: str, prefix: str, calendar_id: str, property_id: str
) -> tuple[list[tuple[str, str]], int]:
    """(event ID, property value) of the calendar's events that carry the extended
    property, and how many requests it took."""
    escaped = property_id.replace("'", "''")
    # Every event of the (portal's own) calendar, with the property where it has one: the
    # documented $expand form; the events without it are the user's and are passed over.
    path = (
        f"{prefix}/calendars/{quote(calendar_id, safe='')}/events"
        f"?$expand=singleValueExtendedProperties($filter=id eq '{quote(escaped)}')"
        "&$select=id&$top=100"
    )
    found, pages = [], 0
    while path:
        page = _get(cloud, access_token, path)
        pages += 1
        for event in page.get("value", []):
            for prop in event.get("singleValueExtendedProperties") or []:
                found.append((event.get("id", ""), prop.get("value", "")))
        next_link = page.get("@odata.nextLink")
        path = next_link.split("/v1.0", 1)[1] if next_link else None
    return found, pages
