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
    raise MicrosoftError(code, message, status=response.status_code)


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
