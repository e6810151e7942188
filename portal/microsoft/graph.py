"""Microsoft Graph requests: the only module that builds one.

Besides the calls made one at a time, it builds the requests that write a mailbox's
events (their bodies, URLs, ``transactionId`` and the extended property that marks an
event as the portal's) and sends them in JSON batches under a ``RetryPolicy``
(``send_batches``).
"""

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar
from urllib.parse import quote

import requests

from .. import metrics
from . import http
from .clouds import Cloud
from .errors import MicrosoftError, graph_trace


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
    trace = graph_trace(error if isinstance(error, dict) else {}, response.headers)
    failure = MicrosoftError(code, message, status=response.status_code, trace=trace)
    failure.retry_after = retry_after(response.headers.get("Retry-After"))
    raise failure


def _request(cloud: Cloud, access_token: str, method: str, path: str, body=None):
    """Send one HTTP request to Graph: every Graph request goes out here, and its answer's
    status is counted (``portal.metrics``)."""
    try:
        response = http.session().request(
            method,
            f"{cloud.graph_endpoint}/v1.0{path}",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            json=body,
        )
    except requests.RequestException as exc:
        metrics.graph_answered(None)
        raise MicrosoftError("unreachable", str(exc)) from exc
    metrics.graph_answered(response.status_code, retry_after(response.headers.get("Retry-After")))
    return response


def _send(cloud: Cloud, access_token: str, method: str, path: str, body=None) -> dict:
    response = _request(cloud, access_token, method, path, body)
    _raise_for_error(response)
    return response.json() if response.content else {}


def _get(cloud: Cloud, access_token: str, path: str) -> dict:
    return _send(cloud, access_token, "GET", path)


def mailbox_path(mailbox: str | None) -> str:
    """The path of ``mailbox`` (a UPN or object ID), or of the signed-in user's (None)."""
    return "/me" if mailbox is None else f"/users/{quote(mailbox, safe='@')}"


def list_calendars(cloud: Cloud, access_token: str, mailbox: str | None = None) -> list[Calendar]:
    """The calendars of ``mailbox`` (a UPN or object ID), or of the signed-in user."""
    body = _get(
        cloud, access_token, f"{mailbox_path(mailbox)}/calendars?$select=id,name,owner,canEdit"
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
        f"{mailbox_path(mailbox)}/calendars?$filter=name eq '{quote(escaped)}'"
        "&$select=id,name,owner,canEdit",
    ).get("value", [])
    for calendar in found:
        if calendar.get("name") == name:
            return _calendar(calendar), False
    made = _send(cloud, access_token, "POST", f"{mailbox_path(mailbox)}/calendars", {"name": name})
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
            f"{mailbox_path(mailbox)}/calendars/{quote(calendar_id, safe='')}",
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
    # Directory paging takes pages of up to 999 (paging.md): a large group in few requests.
    path = (
        f"/groups/{groups[0]['id']}/transitiveMembers"
        "?$select=id,userPrincipalName,displayName&$top=999"
    )
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


def master_categories(cloud: Cloud, access_token: str, mailbox: str | None) -> list[str]:
    """The names in the mailbox's master list of categories
    (outlookuser-list-mastercategories.md; MailboxSettings.Read or more)."""
    body = _get(cloud, access_token, f"{mailbox_path(mailbox)}/outlook/masterCategories")
    return [str(c.get("displayName", "")) for c in body.get("value", [])]


def create_master_category(mailbox: str | None, name: str, color: str) -> dict:
    """A batch request that adds a category in one of Outlook's preset colours to the
    mailbox's master list (outlookuser-post-mastercategories.md; MailboxSettings.ReadWrite).
    A name the list has already is answered 409."""
    return {
        "method": "POST",
        "url": f"{mailbox_path(mailbox)}/outlook/masterCategories",
        "body": {"displayName": name, "color": color},
    }


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
    response = _request(cloud, access_token, "POST", "/$batch", payload)
    if response.status_code in (429, 503, 504):
        error = MicrosoftError(
            "TooManyRequests", "Microsoft Graph asked to slow down.", response.status_code
        )
        error.retry_after = retry_after(response.headers.get("Retry-After"))
        raise error
    _raise_for_error(response)
    answers = []
    for item in response.json().get("responses", []):
        headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
        answer = BatchAnswer(
            id=str(item.get("id")),
            status=int(item.get("status", 500)),
            body=item.get("body") or {},
            retry_after=retry_after(headers.get("retry-after")),
        )
        metrics.graph_batch_answered(answer.status, answer.retry_after)
        answers.append(answer)
    return answers


def retry_after(value, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from ``now``: it is either a number of seconds or
    an HTTP date (RFC 9110, 10.2.3); None when absent or unreadable."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an obsolete date form without a zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def marked_events(
    cloud: Cloud, access_token: str, mailbox: str | None, calendar_id: str
) -> tuple[list[tuple[str, str]], int]:
    """(event ID, key) of the calendar's events that carry the portal's extended property
    (``PROPERTY_ID``), and how many requests it took."""
    escaped = PROPERTY_ID.replace("'", "''")
    # Every event of the (portal's own) calendar, with the property where it has one: the
    # documented $expand form; the events without it are the user's and are passed over.
    path = (
        f"{mailbox_path(mailbox)}/calendars/{quote(calendar_id, safe='')}/events"
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


# Writing a mailbox's events.

# The single-value extended property that carries an occurrence's key: only events that
# carry it are the portal's to change or remove.
PROPERTY_ID = "String {9c6a3e1f-5b2d-4e8a-a7c4-1d3f5e7b9a20} Name MyTimetableOccurrence"
TRANSACTION_NAMESPACE = uuid.UUID("3f1d8c2a-6b4e-4a9f-8c7d-5e2b1a0f9d34")
_DATETIME = "%Y-%m-%dT%H:%M:%S"


class Event(Protocol):
    """What the portal writes into an Outlook event (a timetable occurrence)."""

    subject: str
    body: str
    location: str
    start: datetime
    end: datetime
    all_day: bool
    categories: Sequence[str]
    show_as: str


def event_body(event: Event) -> dict:
    """The event as Microsoft Graph takes it when creating or updating an event."""
    return {
        "subject": event.subject,
        "body": {"contentType": "text", "content": event.body},
        "start": {"dateTime": _utc(event.start).strftime(_DATETIME), "timeZone": "UTC"},
        "end": {"dateTime": _utc(event.end).strftime(_DATETIME), "timeZone": "UTC"},
        "isAllDay": event.all_day,
        "location": {"displayName": event.location},
        "categories": list(event.categories),
        "showAs": str(event.show_as),
        "isReminderOn": False,
    }


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def transaction_id(*parts: object) -> str:
    """A create's ``transactionId``: the same parts (run, connection, calendar, occurrence)
    give the same ID, so a create sent again returns the event it made the first time."""
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, "|".join(str(part) for part in parts)))


def create_event(mailbox: str | None, calendar_id: str, event: Event, key: str, transaction: str):
    """A batch request that creates ``event`` in the calendar, marked with ``key``."""
    return {
        "method": "POST",
        "url": f"{mailbox_path(mailbox)}/calendars/{quote(calendar_id, safe='')}/events",
        "body": {
            **event_body(event),
            "transactionId": transaction,
            "singleValueExtendedProperties": [{"id": PROPERTY_ID, "value": key}],
        },
    }


def update_event(mailbox: str | None, event_id: str, event: Event) -> dict:
    """A batch request that writes ``event`` over the event with this ID."""
    url = f"{mailbox_path(mailbox)}/events/{quote(event_id, safe='')}"
    return {"method": "PATCH", "url": url, "body": event_body(event)}


def delete_event(mailbox: str | None, event_id: str) -> dict:
    """A batch request that removes the event with this ID."""
    return {"method": "DELETE", "url": f"{mailbox_path(mailbox)}/events/{quote(event_id, safe='')}"}


# Sending batches under a retry policy.

THROTTLED = {429, 503}  # throttling.md: Graph slows a client down with these
RETRYABLE = THROTTLED | {500, 502, 504}
FAILED_DEPENDENCY = 424
REFUSED_TOKEN = "InvalidAuthenticationToken"  # noqa: S105 (an error code)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request goes again, and how long the portal waits in between.

    The wait before attempt ``n + 1`` is drawn from [0, min(longest_wait, first_wait * 2**n))
    ("full jitter", so that many mailboxes do not come back at the same moment), and is at
    least what Graph asked for in ``Retry-After``. When Graph asks for more than
    ``longest_wait``, the run stops (``Throttled``) instead of holding a worker that long.
    """

    attempts: int = 10
    longest_wait: float = 30.0
    first_wait: float = 0.5

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (from 0); raises ``Throttled``."""
        if retry_after is not None and retry_after > self.longest_wait:
            raise Throttled(retry_after)
        backoff = random.uniform(0, min(self.longest_wait, self.first_wait * 2**attempt))  # noqa: S311 (jitter, not a secret)
        return max(retry_after or 0.0, backoff)


class Throttled(MicrosoftError):
    """Graph asked the portal to wait longer than its retry policy allows."""

    def __init__(self, retry_after: float):
        self.until = datetime.now(UTC) + timedelta(seconds=retry_after)
        super().__init__(
            "TooManyRequests",
            f"Microsoft Graph asked to wait {retry_after:g} s (Retry-After), until "
            f"{self.until:%Y-%m-%d %H:%M:%S} UTC.",
            429,
        )
        self.retry_after = retry_after


class Tokens(Protocol):
    """Where the access token for a mailbox comes from."""

    def token(self) -> str:
        """The current token."""

    def refused(self, token: str) -> None:
        """Graph refused ``token``: get another (or raise)."""


class Tally(Protocol):
    """Counts the requests sent to Graph."""

    requests: int


def transient(error: MicrosoftError) -> bool:
    """Whether sending the same request again later may work: throttled, a server error,
    or no answer at all (timed out, connection lost)."""
    return error.status in RETRYABLE or error.code == "unreachable"


def _no_throttle_hook(retry_after: float | None) -> None:
    """Graph throttled a request; nothing more to do than wait as the policy says."""


def retried(
    call: Callable[[str], object],
    tokens: Tokens,
    tally: Tally,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    on_throttle: Callable[[float | None], None] = _no_throttle_hook,
):
    """``call(token)``, again after a transient failure or a refused token, as the policy
    allows; each failed call counts as one request (what ``call`` counts on success is its
    own). ``on_throttle(retry_after)`` hears of each throttled answer (429, 503) before the
    wait, and may raise (``Throttled``) to wait no more."""
    attempt = 0
    while True:
        token = None
        try:
            token = tokens.token()
            return call(token)
        except MicrosoftError as error:
            if token is not None:  # else it was the token endpoint that failed
                tally.requests += 1
            if attempt >= policy.attempts - 1:
                raise
            if error.code == REFUSED_TOKEN and token is not None:
                tokens.refused(token)
            elif transient(error):
                if error.status in THROTTLED:
                    on_throttle(error.retry_after)
                sleep(policy.wait(attempt, error.retry_after))
            else:
                raise
        attempt += 1


Item = TypeVar("Item")


def send_batches(
    cloud: Cloud,
    tokens: Tokens,
    items: list[Item],
    request: Callable[[Item], dict],
    settle: Callable[[Item, BatchAnswer], bool],
    *,
    tally: Tally,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    before_batch: Callable[[], None] = lambda: None,
    after_batch: Callable[[], None] = lambda: None,
    on_throttle: Callable[[float | None], None] = _no_throttle_hook,
) -> list[Item]:
    """Send the items' requests in JSON batches of 20; return the items still unsettled
    after the policy's attempts.

    Each batch is one ``dependsOn`` sequence: Graph refuses a batch that is neither fully
    sequential nor fully parallel (json-batching.md), and a fully parallel batch of 20 would
    put 20 requests at once on a mailbox that takes four (throttling-limits.md). ``settle``
    records an answer and says whether its item is done (done, or refused for good). What
    is not goes again in the next round, after the policy's wait unless only a refused token
    (now replaced) or the request it depended on (424) stood in the way. Once Graph
    throttles (429, 503), the round's remaining batches are not sent into the throttle: they
    wait for the next round too. A wait longer than the policy allows raises ``Throttled``.
    ``before_batch`` runs before each batch (it may raise to stop), ``after_batch`` after;
    ``on_throttle(retry_after)`` once Graph throttled a round, before its wait (it may raise
    ``Throttled`` to wait no more).
    """
    pending = items
    for attempt in range(policy.attempts):
        if not pending:
            return []
        retry: list[Item] = []
        slow_down, wait = False, None
        chunks = [pending[i : i + BATCH_LIMIT] for i in range(0, len(pending), BATCH_LIMIT)]
        for number, chunk in enumerate(chunks):
            batch_requests = [{"id": str(i), **request(item)} for i, item in enumerate(chunk)]
            for earlier, later in zip(batch_requests, batch_requests[1:], strict=False):
                later["dependsOn"] = [earlier["id"]]
            before_batch()
            token = None
            throttled = False
            try:
                token = tokens.token()
                answers = batch(cloud, token, batch_requests)
            except MicrosoftError as error:
                if token is not None:  # else it was the token endpoint that failed
                    tally.requests += 1
                if error.code == REFUSED_TOKEN and token is not None:
                    tokens.refused(token)
                elif transient(error):
                    slow_down, throttled = True, error.status in THROTTLED
                    wait = _longer(wait, error.retry_after)
                else:
                    raise
                retry += chunk
            else:
                tally.requests += 1
                by_id = {a.id: a for a in answers}
                for index, item in enumerate(chunk):
                    answer = by_id.get(str(index))
                    if answer is not None and settle(item, answer):
                        continue
                    retry.append(item)
                    if answer is None:
                        slow_down = True
                    elif answer.status == 401:
                        tokens.refused(token)
                    elif answer.status in RETRYABLE:
                        slow_down = True
                        throttled = throttled or answer.status in THROTTLED
                        wait = _longer(wait, answer.retry_after)
                    # Else (424, or an item settle turned into another request): it goes
                    # again at once; the answer it depended on says whether to wait.
                after_batch()
            if throttled:
                for unsent in chunks[number + 1 :]:
                    retry += unsent
                on_throttle(wait)
                break
        pending = retry
        if pending and slow_down:
            delay = policy.wait(attempt, wait)  # raises first if Graph asks for too long
            if attempt < policy.attempts - 1:
                sleep(delay)
    return pending


def _longer(wait: float | None, retry_after: float | None) -> float | None:
    if retry_after is None:
        return wait
    return retry_after if wait is None else max(wait, retry_after)
