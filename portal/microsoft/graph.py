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


def _get(cloud: Cloud, access_token: str, path: str) -> dict:
    try:
        response = http.session().get(
            f"{cloud.graph_endpoint}/v1.0{path}",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
    except requests.RequestException as exc:
        raise MicrosoftError("unreachable", str(exc)) from exc
    _raise_for_error(response)
    return response.json()


def _mailbox_path(mailbox: str | None) -> str:
    return "/me" if mailbox is None else f"/users/{quote(mailbox, safe='@')}"


def list_calendars(cloud: Cloud, access_token: str, mailbox: str | None = None) -> list[Calendar]:
    """The calendars of ``mailbox`` (a UPN or object ID), or of the signed-in user."""
    body = _get(
        cloud, access_token, f"{_mailbox_path(mailbox)}/calendars?$select=id,name,owner,canEdit"
    )
    return [
        Calendar(
            id=c.get("id", ""),
            name=c.get("name", ""),
            owner=(c.get("owner") or {}).get("address", ""),
            can_edit=bool(c.get("canEdit")),
        )
        for c in body.get("value", [])
    ]
