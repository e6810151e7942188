"""One synchronisation of one mailbox: feed, plan, JSON batches, bookkeeping.

- Writes go in Graph JSON batches of 20. Inside a batch the requests form at most four
  ``dependsOn`` chains, so a mailbox never sees more than four requests at once (Exchange's
  limit); a failure stops only its own chain, whose requests are retried.
- Creates carry a ``transactionId`` derived from the connection and the occurrence, so a
  create retried after a lost answer returns the same event instead of a second one.
- Every event the portal writes carries a single-value extended property with the
  occurrence's key; only such events are ever changed or removed.
- SyncItems are committed after each batch, so a crash loses at most one batch of
  bookkeeping; the next run after an unfinished one lists the portal's events by that
  property and repairs the bookkeeping before it plans.
- 429 and 503/504 answers wait for ``Retry-After`` (or a bounded exponential backoff);
  an expired token is refreshed once per run.
"""

import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import requests
from sqlalchemy import delete, select

from .. import connections
from ..extensions import db
from ..microsoft import graph, identity
from ..microsoft.clouds import cloud
from ..microsoft.errors import MicrosoftError
from ..models import Connection, Method, SyncItem, utcnow
from . import feed
from . import plan as planning

PROPERTY_ID = "String {9c6a3e1f-5b2d-4e8a-a7c4-1d3f5e7b9a20} Name MyTimetableOccurrence"
TRANSACTION_NAMESPACE = uuid.UUID("3f1d8c2a-6b4e-4a9f-8c7d-5e2b1a0f9d34")
CHAINS = 4
MAX_ROUNDS = 10
MAX_WAIT = 30.0
RETRYABLE = {424, 429, 500, 502, 503, 504}


@dataclass
class RunResult:
    """What one run did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    outcome: str = "ok"  # ok, unchanged, partial, failed
    error: str | None = None
    requests: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Op:
    kind: str  # create, update, delete
    key: str
    occurrence: feed.Occurrence | None = None
    event_id: str | None = None


class _Target:
    """Where the run writes, with a token that is refreshed once if it expires."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.configuration = connection.configuration
        self.cloud = cloud(self.configuration.cloud)
        delegated = self.configuration.method == Method.DELEGATED
        self.prefix = "/me" if delegated else f"/users/{quote(connection.upn, safe='@')}"
        self._token: str | None = None

    def token(self, fresh: bool = False) -> str:
        if self._token is None or fresh:
            if self.configuration.method == Method.DELEGATED:
                self._token = connections.access_token(self.connection)
            else:
                c = self.configuration
                self._token = identity.app_token(
                    self.cloud, c.tenant_id, c.client_id, c.certificate, fresh=fresh
                )
        return self._token


def transaction_id(connection: Connection, key: str) -> str:
    """The same create for the same connection, calendar and occurrence: the same ID."""
    name = f"{connection.id}|{connection.calendar_id}|{key}"
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, name))


def _request(target: _Target, op: _Op, request_id: str) -> dict:
    if op.kind == "create":
        body = {
            **op.occurrence.graph_event(),
            "transactionId": transaction_id(target.connection, op.key),
            "singleValueExtendedProperties": [{"id": PROPERTY_ID, "value": op.key}],
        }
        calendar = quote(target.connection.calendar_id, safe="")
        return {
            "id": request_id,
            "method": "POST",
            "url": f"{target.prefix}/calendars/{calendar}/events",
            "body": body,
        }
    event = quote(op.event_id, safe="")
    if op.kind == "update":
        return {
            "id": request_id,
            "method": "PATCH",
            "url": f"{target.prefix}/events/{event}",
            "body": op.occurrence.graph_event(),
        }
    return {"id": request_id, "method": "DELETE", "url": f"{target.prefix}/events/{event}"}


def _chained(requests_: list[dict]) -> list[dict]:
    """At most four requests at a time: each joins one of four dependsOn chains."""
    for index, request in enumerate(requests_):
        if index >= CHAINS:
            request["dependsOn"] = [requests_[index - CHAINS]["id"]]
    return requests_


def _items(connection: Connection) -> dict[str, SyncItem]:
    rows = db.session.scalars(select(SyncItem).filter_by(connection_id=connection.id))
    return {row.key: row for row in rows}


def _repair(target: _Target, items: dict[str, SyncItem], result: RunResult, sleep):
    """Adopt events the portal wrote but lost track of (after a crash); return the extra
    events (key, event ID) found for an occurrence that already has one, to delete."""
    connection = target.connection
    for round_number in range(MAX_ROUNDS):
        try:
            found, pages = graph.tagged_events(
                target.cloud, target.token(), target.prefix, connection.calendar_id, PROPERTY_ID
            )
            break
        except MicrosoftError as error:
            result.requests += 1
            if error.status not in (429, 503, 504) or round_number == MAX_ROUNDS - 1:
                raise
            sleep(min(MAX_WAIT, error.retry_after or 0.5 * 2**round_number))
    result.requests += pages
    extra = []
    for event_id, key in found:
        if key not in items:
            # An empty hash makes the plan rewrite it, in case it was half-updated.
            item = SyncItem(
                connection_id=connection.id, key=key, event_id=event_id, content_hash=""
            )
            db.session.add(item)
            items[key] = item
        elif items[key].event_id != event_id:
            extra.append((key, event_id))
    db.session.commit()
    return extra


def _apply(target: _Target, op: _Op, answer: graph.BatchAnswer, items, result) -> bool:
    """Record one answer; True when the operation is finished (done or failed for good)."""
    connection = target.connection
    status = answer.status
    if op.kind == "create" and status in (200, 201):
        item = SyncItem(
            connection_id=connection.id,
            key=op.key,
            event_id=answer.body.get("id", ""),
            content_hash=op.occurrence.content_hash(),
        )
        db.session.add(item)
        items[op.key] = item
        result.created += 1
        return True
    if op.kind == "update" and status == 200:
        items[op.key].content_hash = op.occurrence.content_hash()
        result.updated += 1
        return True
    if op.kind == "delete" and status in (204, 404):
        db.session.execute(
            delete(SyncItem).where(
                SyncItem.connection_id == connection.id, SyncItem.event_id == op.event_id
            )
        )
        items.pop(op.key, None)
        result.deleted += 1
        return True
    if op.kind == "update" and status == 404:
        # Removed in Outlook by the user: write it again.
        db.session.delete(items.pop(op.key))
        op.kind, op.event_id = "create", None
        return False
    if status in RETRYABLE or status == 401:
        return False
    code = (answer.body.get("error") or {}).get("code", f"HTTP{status}")
    result.failed += 1
    result.errors.append(f"{op.kind} {op.key}: {code}")
    return True


def _operations(plan: planning.Plan, duplicates: list[tuple[str, str]]) -> list[_Op]:
    ops = [_Op("delete", key, event_id=event_id) for key, event_id in plan.deletes]
    ops += [_Op("delete", key, event_id=event_id) for key, event_id in duplicates]
    ops += [_Op("update", o.key, occurrence=o, event_id=e) for o, e in plan.updates]
    ops += [_Op("create", o.key, occurrence=o) for o in plan.creates]
    return ops


def _write(target: _Target, ops: list[_Op], items, result: RunResult, sleep) -> None:
    pending, refreshed = ops, False
    for round_number in range(MAX_ROUNDS):
        if not pending:
            return
        retry, wait = [], 0.0
        for start in range(0, len(pending), graph.BATCH_LIMIT):
            chunk = pending[start : start + graph.BATCH_LIMIT]
            batch = _chained([_request(target, op, str(i)) for i, op in enumerate(chunk)])
            try:
                answers = graph.batch(target.cloud, target.token(), batch)
            except MicrosoftError as error:
                result.requests += 1
                if error.status in (429, 503, 504):
                    retry += chunk
                    wait = max(wait, error.retry_after or 0.0)
                    continue
                if error.code == "InvalidAuthenticationToken" and not refreshed:
                    target.token(fresh=True)
                    refreshed = True
                    retry += chunk
                    continue
                raise
            result.requests += 1
            by_id = {a.id: a for a in answers}
            for index, op in enumerate(chunk):
                answer = by_id.get(str(index))
                if answer is None or not _apply(target, op, answer, items, result):
                    retry.append(op)
                    if answer is not None and answer.retry_after:
                        wait = max(wait, answer.retry_after)
                    if answer is not None and answer.status == 401 and not refreshed:
                        target.token(fresh=True)
                        refreshed = True
            db.session.commit()  # bookkeeping per batch
        pending = retry
        if pending:
            sleep(min(MAX_WAIT, max(wait, 0.5 * 2**round_number)))
    for op in pending:
        result.failed += 1
        result.errors.append(f"{op.kind} {op.key}: still refused after {MAX_ROUNDS} rounds")


def run(connection: Connection, session: requests.Session | None = None, sleep=time.sleep):
    """Synchronise one connection's calendar with its timetable feed; store the outcome."""
    started = time.monotonic()
    result = RunResult()
    configuration = connection.configuration
    try:
        if not configuration.feed_url_template:
            raise feed.FeedError("No timetable feed address is set for the institution yet.")
        window_start, window_end = feed.default_window()
        clean = connection.last_sync_outcome in ("ok", "unchanged")
        # After an unfinished run, or on a new day (the window has moved), the whole feed is
        # needed, not "not modified".
        same_window = (
            connection.last_sync_at is not None
            and connection.last_sync_at.date() == utcnow().date()
        )
        fetched = feed.fetch(
            session or requests.Session(),
            feed.feed_url(configuration.feed_url_template, connection.upn),
            etag=connection.feed_etag if clean and same_window else None,
            last_modified=connection.feed_last_modified if clean and same_window else None,
            window_start=window_start,
            window_end=window_end,
        )
        if fetched.occurrences is None:
            result.outcome = "unchanged"
        else:
            target = _Target(connection)
            items = _items(connection)
            extra = [] if clean else _repair(target, items, result, sleep)
            written = {k: planning.Written(v.event_id, v.content_hash) for k, v in items.items()}
            plan = planning.make(fetched.occurrences, written)
            _write(target, _operations(plan, extra), items, result, sleep)
            result.outcome = "partial" if result.failed else "ok"
        connection.feed_etag, connection.feed_last_modified = fetched.etag, fetched.last_modified
    except feed.FeedError as error:
        result.outcome, result.error = "failed", error.reason
    except MicrosoftError as error:
        result.outcome = "failed"
        result.error = f"{error.display_code or error.code}: {error.advice.cause}"
    duration = int((time.monotonic() - started) * 1000)
    _store(connection, result, duration)
    return result


def _store(connection: Connection, result: RunResult, duration_ms: int) -> None:
    connection.last_sync_at = utcnow()
    connection.last_sync_outcome = result.outcome
    connection.last_error = result.error or ("; ".join(result.errors[:3]) or None)
    connection.last_created, connection.last_updated = result.created, result.updated
    connection.last_deleted, connection.last_failed = result.deleted, result.failed
    connection.last_duration_ms = duration_ms
    connection.event_count = db.session.scalar(
        select(db.func.count()).select_from(SyncItem).filter_by(connection_id=connection.id)
    )
    db.session.commit()
