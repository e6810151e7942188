"""One synchronisation of one mailbox: feed, plan, JSON batches, bookkeeping.

Every Graph request, and how batches are sent and retried, is built in
``portal.microsoft.graph``; this module decides what to write and keeps the books.

- Writes go in Graph JSON batches of 20, each one ``dependsOn`` sequence
  (``graph.send_batches``). A failure stops the rest of its batch (424), whose requests
  are retried.
- Creates carry a ``transactionId`` derived from the run, the connection and the
  occurrence, so a create retried after a lost answer returns the same event instead of a
  second one. It is new in every run: what a crashed run created is found again by the
  extended property below, and an event created again later (the person deleted it in
  Outlook, or a cancelled lesson came back) is never mistaken for the old one.
- Every event the portal writes carries a single-value extended property with the
  occurrence's key; only such events are ever changed or removed.
- SyncItems are committed after each batch, so a crash loses at most one batch of
  bookkeeping; the next run after an unfinished one lists the portal's events by that
  property and repairs the bookkeeping before it plans.
- 429 and 5xx answers, timeouts and lost connections wait as ``RETRY_POLICY`` says (at
  least ``Retry-After``) and are sent again (a create that was made but whose answer was
  lost finds its event again by ``transactionId``; a delete finds it gone, 404, and is
  done). When Graph asks for a longer wait than the policy allows, the run ends
  "throttled" and its job is queued again for the time Graph asked for.
- A 400 is Graph refusing the request itself, which sending it again cannot change: it is
  recorded against the occurrence with Graph's words (a SyncRefusal, shown to support) and
  not sent again until the request for the occurrence would be different.
- An answer that means the mailbox is gone or out of the application's reach (404
  ``ErrorInvalidUser``, ``MailboxNotEnabledForRESTAPI``, 403 ``ErrorAccessDenied`` under a
  group-limited configuration: ``refusals.out_of_reach``) stops the run and puts the
  connection in that state; the periodic sync skips it until it is provisioned again.
- A token Graph refuses (401 ``InvalidAuthenticationToken``: it lapsed or was revoked
  mid-run) is replaced by a new one, a few times per run at most: by the refresh token for
  a delegated connection, by the client credentials flow for an application connection.
- When the configuration shows events in colour, the mailbox's master categories for the
  feed's categories are made once the events are written (Outlook colours an event by the
  master category of each name it carries, whenever that appears: outlookcategory.md), each
  in its colour (``colours``): the first time the list is read once and what it lacks is
  added in one batch; later runs send a request only for a category that is new to the
  connection. Without MailboxSettings.ReadWrite (403) the events carry their categories
  uncoloured; the refusal is kept on the connection, shown on its pages and not asked
  again for ``CATEGORIES_RETRY``, or until the configuration changes or the user signs in
  again. Doing this after the writes means a mailbox that is gone or outside the group is
  recognised by the writes, so a 403 here only means the missing permission.
"""

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, insert, select, update

from .. import metrics, tokens
from ..extensions import db
from ..microsoft import graph
from ..microsoft.clouds import cloud
from ..microsoft.errors import MicrosoftError, advice_for
from ..models import Connection, ConnectionStatus, Method, SyncItem, SyncRefusal, record, utcnow
from ..refusals import out_of_reach
from . import SyncOutcome, colours, feed, throttle
from . import plan as planning

# Ten rounds, none waiting longer than 30 s: a longer Retry-After sends the job back to the
# queue for later (outcome "throttled") instead of holding a worker.
RETRY_POLICY = graph.RetryPolicy(attempts=10, longest_wait=30.0)
MAX_REFRESHES = 3
REFUSED_FOR_GOOD = 400  # the request itself is wrong: the same request gets the same answer
# A mailbox that refused the portal its Outlook categories (403) is asked again after this
# long: the administrator may have granted MailboxSettings.ReadWrite without changing the
# configuration. A week keeps the refusals rare without leaving colours off for long.
CATEGORIES_RETRY = timedelta(days=7)


@dataclass
class RunResult:
    """What one run did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    outcome: SyncOutcome = SyncOutcome.OK
    error: str | None = None
    # Microsoft's code and trace IDs, when Microsoft's answer stopped the run.
    error_code: str | None = None
    error_trace: list = field(default_factory=list)
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    # Throttled: Graph asked to wait until then; the job goes back to the queue for it.
    retry_at: datetime | None = None
    # Graph answered that the mailbox is gone or out of reach: the run stops with it.
    out_of_reach: MicrosoftError | None = None


@dataclass
class _Op:
    kind: str  # create, update, delete
    key: str
    occurrence: feed.Occurrence | None = None
    event_id: str | None = None


class _Target:
    """Where the run writes, and the access token it writes with (``graph.Tokens``)."""

    def __init__(self, connection: Connection):
        self.connection = connection
        # Kept as plain values: each batch's commit expires the ORM object, and reading it
        # again would cost a query per batch.
        self.connection_id, self.calendar_id = connection.id, connection.calendar_id
        self.run = uuid.uuid4().hex  # this run's part of every transactionId
        configuration = connection.configuration
        self.cloud = cloud(configuration.cloud)
        self.mailbox = None if configuration.method == Method.DELEGATED else connection.upn
        self.configuration = configuration
        self.configuration_id = configuration.id
        self._token: str | None = None
        self.refreshes = 0
        self.struck = False

    def throttled(self, retry_after: float | None) -> None:
        """Graph throttled a request of this run: count it against the tenant (once per run)
        and, if the tenant is paused now, stop (``Throttled``) until the pause ends instead
        of waiting here."""
        if self.struck:
            until = throttle.paused_until(self.configuration_id)
        else:
            self.struck = True
            until = throttle.strike(self.configuration_id, retry_after)
        if until is not None:
            stop = graph.Throttled((until - utcnow()).total_seconds())
            stop.until = until.replace(tzinfo=UTC)  # the pause's end, to the microsecond
            raise stop

    def token(self) -> str:
        """The current token (the cached one, from the token cache, as long as it works)."""
        if self._token is None:
            self._token = tokens.mailbox_token(self.connection)
        return self._token

    def refused(self, token: str) -> None:
        """Graph refused ``token``: get a new one, unless that happened already (the other
        answers of a batch carry the same refusal)."""
        if token != self._token:
            return
        if self.refreshes >= MAX_REFRESHES:
            raise MicrosoftError(
                graph.REFUSED_TOKEN, "Microsoft Graph keeps refusing new tokens.", 401
            )
        self.refreshes += 1
        self._token = tokens.mailbox_token(self.connection, fresh=True)

    def request(self, op: _Op) -> dict:
        """The Graph request that carries out ``op``."""
        if op.kind == "create":
            transaction = graph.transaction_id(
                self.run, self.connection_id, self.calendar_id, op.key
            )
            return graph.create_event(
                self.mailbox, self.calendar_id, op.occurrence, op.key, transaction
            )
        if op.kind == "update":
            return graph.update_event(self.mailbox, op.event_id, op.occurrence)
        return graph.delete_event(self.mailbox, op.event_id)


class _Bookkeeping:
    """The connection's SyncItems: what the portal wrote, by occurrence key.

    Read once as plain values; the changes of a batch are written together (a few
    statements, not an ORM object per event) and committed with ``commit``.
    """

    def __init__(self, connection_id: int):
        self.connection_id = connection_id
        rows = db.session.execute(
            select(SyncItem.key, SyncItem.event_id, SyncItem.content_hash).where(
                SyncItem.connection_id == connection_id
            )
        )
        self.items = {key: planning.Written(event_id, content) for key, event_id, content in rows}
        self.refused = dict(
            db.session.execute(
                select(SyncRefusal.key, SyncRefusal.request_hash).where(
                    SyncRefusal.connection_id == connection_id
                )
            ).all()
        )
        self._added: list[dict] = []
        self._changed: list[dict] = []
        self._removed_events: list[str] = []
        self._removed_keys: list[str] = []
        self._refusals: list[dict] = []
        self._cleared: list[str] = []

    def added(self, key: str, event_id: str, content_hash: str) -> None:
        self.items[key] = planning.Written(event_id, content_hash)
        self._added.append(
            {"connection_id": self.connection_id, "key": key, "event_id": event_id}
            | {"content_hash": content_hash, "updated_at": utcnow()}
        )

    def changed(self, key: str, content_hash: str) -> None:
        self.items[key] = planning.Written(self.items[key].event_id, content_hash)
        self._changed.append({"b_key": key, "content_hash": content_hash, "updated_at": utcnow()})

    def event_removed(self, key: str, event_id: str) -> None:
        """The event is gone; so is its item, unless the key's item is another event."""
        if key in self.items and self.items[key].event_id == event_id:
            del self.items[key]
        self._removed_events.append(event_id)

    def forgotten(self, key: str) -> None:
        """The key's event was removed by someone else: its item goes."""
        del self.items[key]
        self._removed_keys.append(key)

    def refusal(self, op: _Op, answer: graph.BatchAnswer) -> None:
        """Graph refused the operation for good: keep its answer against the occurrence."""
        error = answer.body.get("error") or {}
        occurrence = op.occurrence if op.kind != "delete" else None
        request_hash = occurrence.request_hash() if occurrence else planning.REMOVAL
        self.cleared([op.key])  # a duplicate's refused delete may share its original's key
        self.refused[op.key] = request_hash
        self._refusals.append(
            {
                "connection_id": self.connection_id,
                "key": op.key,
                "request_hash": request_hash,
                "status": answer.status,
                "code": str(error.get("code") or f"HTTP{answer.status}")[:100],
                "message": str(error.get("message") or ""),
                "subject": occurrence.subject[:255] if occurrence else "",
                "start": occurrence.start.replace(tzinfo=None) if occurrence else None,
                "refused_at": utcnow(),
            }
        )

    def cleared(self, keys: list[str]) -> None:
        """The refusals of these keys no longer apply."""
        for key in keys:
            self.refused.pop(key, None)
        self._cleared += keys

    def commit(self) -> None:
        table = SyncItem.__table__
        mine = table.c.connection_id == self.connection_id
        if self._removed_events:
            db.session.execute(
                delete(table).where(mine, table.c.event_id.in_(self._removed_events))
            )
        if self._removed_keys:
            db.session.execute(delete(table).where(mine, table.c.key.in_(self._removed_keys)))
        refusals = SyncRefusal.__table__
        if self._cleared:
            db.session.execute(
                delete(refusals).where(
                    refusals.c.connection_id == self.connection_id,
                    refusals.c.key.in_(self._cleared),
                )
            )
        if self._refusals:
            db.session.execute(insert(refusals), self._refusals)
        if self._added:
            db.session.execute(insert(table), self._added)
        if self._changed:
            statement = (
                update(table)
                .where(mine, table.c.key == bindparam("b_key"))
                .values(content_hash=bindparam("content_hash"), updated_at=bindparam("updated_at"))
            )
            db.session.execute(statement, self._changed)
        db.session.commit()
        self._added, self._changed, self._removed_events, self._removed_keys = [], [], [], []
        self._refusals, self._cleared = [], []


def _repair(target: _Target, books: _Bookkeeping, result: RunResult, policy, sleep):
    """Adopt events the portal wrote but lost track of (after a crash); return the extra
    events (key, event ID) found for an occurrence that already has one, to delete."""
    found, pages = graph.retried(
        lambda token: graph.marked_events(target.cloud, token, target.mailbox, target.calendar_id),
        target,
        result,
        policy,
        sleep,
        on_throttle=target.throttled,
    )
    result.requests += pages
    extra = []
    for event_id, key in found:
        if key not in books.items:
            # An empty hash makes the plan rewrite it, in case it was half-updated.
            books.added(key, event_id, "")
        elif books.items[key].event_id != event_id:
            extra.append((key, event_id))
    books.commit()
    return extra


def _gone(target: _Target, answer: graph.BatchAnswer) -> MicrosoftError | None:
    """The error, when an application connection's answer says its mailbox is gone or out
    of reach (checked before anything else: a 404 for the user is not a 404 for an event)."""
    if target.mailbox is None or answer.status not in (403, 404):
        return None
    error = answer.body.get("error") or {}
    code = str(error.get("code") or "")
    if out_of_reach(target.configuration, code) is None:
        return None
    return MicrosoftError(code, str(error.get("message") or ""), answer.status)


def _apply(op: _Op, answer: graph.BatchAnswer, books: _Bookkeeping, result, target) -> bool:
    """Record one answer; True when the operation is finished (done or failed for good)."""
    status = answer.status
    gone = _gone(target, answer)
    if gone is not None:
        result.out_of_reach = result.out_of_reach or gone
        return True
    if op.kind == "create" and status in (200, 201):
        books.added(op.key, answer.body.get("id", ""), op.occurrence.content_hash())
        result.created += 1
        return True
    if op.kind == "update" and status == 200:
        books.changed(op.key, op.occurrence.content_hash())
        result.updated += 1
        return True
    if op.kind == "delete" and status in (204, 404):
        books.event_removed(op.key, op.event_id)
        result.deleted += 1
        return True
    if op.kind == "update" and status == 404:
        # Removed in Outlook by the user: write it again.
        books.forgotten(op.key)
        op.kind, op.event_id = "create", None
        return False
    if status in graph.RETRYABLE or status in (401, graph.FAILED_DEPENDENCY):
        return False
    code = (answer.body.get("error") or {}).get("code", f"HTTP{status}")
    if status == REFUSED_FOR_GOOD:
        books.refusal(op, answer)
    result.failed += 1
    result.errors.append(f"{op.kind} {op.key}: {code}")
    return True


def _operations(plan: planning.Plan, duplicates: list[tuple[str, str]]) -> list[_Op]:
    ops = [_Op("delete", key, event_id=event_id) for key, event_id in plan.deletes]
    ops += [_Op("delete", key, event_id=event_id) for key, event_id in duplicates]
    ops += [_Op("update", o.key, occurrence=o, event_id=e) for o, e in plan.updates]
    ops += [_Op("create", o.key, occurrence=o) for o in plan.creates]
    return ops


def _write(target: _Target, ops: list[_Op], books, result: RunResult, policy, sleep, before_batch):
    """Send the operations in batches, the bookkeeping committed after each; a batch that
    found the mailbox out of reach is the last."""

    def after_batch():
        books.commit()
        if result.out_of_reach is not None:
            raise result.out_of_reach

    unsettled = graph.send_batches(
        target.cloud,
        target,
        ops,
        target.request,
        lambda op, answer: _apply(op, answer, books, result, target),
        tally=result,
        policy=policy,
        sleep=sleep,
        before_batch=before_batch,
        after_batch=after_batch,
        on_throttle=target.throttled,
    )
    for op in unsettled:
        result.failed += 1
        result.errors.append(f"{op.kind} {op.key}: still refused after {policy.attempts} rounds")


def categories_held_back(connection: Connection) -> bool:
    """Whether Microsoft refused the mailbox its Outlook categories recently enough that the
    sync does not ask again yet: within ``CATEGORIES_RETRY``, and the configuration has not
    changed since (it changes when the administrator runs the checks again)."""
    refused = connection.categories_refused_at
    if refused is None:
        return False
    return utcnow() < refused + CATEGORIES_RETRY and connection.configuration.updated_at <= refused


def _categories_owed(connection: Connection) -> bool:
    """The mailbox's master categories were never made, and may be now: the feed is read
    in full (not "not modified") for its categories."""
    return (
        connection.configuration.outlook_categories
        and connection.master_categories is None
        and not categories_held_back(connection)
    )


def _make_categories(connection: Connection, target: _Target, occurrences, result, policy, sleep):
    """Make the mailbox's master categories for the feed's categories it is not known to
    have, each in its colour; True when done, False when Graph kept failing (the next run
    tries again)."""
    configuration = target.configuration
    if not configuration.outlook_categories or categories_held_back(connection):
        return True
    known = connection.master_categories
    have = {name.casefold() for name in known or []}
    new = [
        name
        for name in colours.distinct(c for o in occurrences for c in o.categories)
        if name.casefold() not in have
    ]
    made: list[str] = []
    mapping = configuration.institution.category_colours

    def settle(name: str, answer: graph.BatchAnswer) -> bool:
        if answer.status in (200, 201, 409):  # 409: the list has it already
            made.append(name)
            return True
        if answer.status in graph.RETRYABLE or answer.status in (401, graph.FAILED_DEPENDENCY):
            return False
        error = answer.body.get("error") or {}
        code = str(error.get("code") or f"HTTP{answer.status}")
        if answer.status == 403:  # the rest of the batch would only be refused the same
            raise MicrosoftError(code, str(error.get("message") or ""), 403)
        current_app.logger.warning(
            "Microsoft refused to make the Outlook category %r for connection %s (%s): its "
            "events show it without colour.",
            name,
            target.connection_id,
            code,
        )
        made.append(name)  # not asked for again
        return True

    try:
        if new and connection.categories_refused_at is not None:
            # Asked again after a refusal: a token from before a grant would carry the same
            # refusal, so a new one (a token a day per refused mailbox at most).
            target.refused(target.token())
        if new and known is None:
            listed = graph.retried(
                lambda token: graph.master_categories(target.cloud, token, target.mailbox),
                target,
                result,
                policy,
                sleep,
                on_throttle=target.throttled,
            )
            result.requests += 1
            there = {name.casefold() for name in listed}
            known = [name for name in new if name.casefold() in there]
            new = [name for name in new if name.casefold() not in there]
        elif known is None:
            known = []  # the feed has no category yet that the list could have
        unsettled = graph.send_batches(
            target.cloud,
            target,
            new,
            lambda name: graph.create_master_category(
                target.mailbox, name, colours.colour(name, mapping)
            ),
            settle,
            tally=result,
            policy=policy,
            sleep=sleep,
            on_throttle=target.throttled,
        )
        finished = not unsettled
    except MicrosoftError as error:
        finished = error.status == 403
        if finished:
            _categories_refused(connection, error)
        else:
            current_app.logger.info(
                "Outlook categories of connection %s left for the next run: %s",
                target.connection_id,
                error.message,
            )
    else:
        connection.categories_refused_at = None
    if known is not None:
        connection.master_categories = known + made
    return finished


def _categories_refused(connection: Connection, error: MicrosoftError) -> None:
    """Keep Microsoft's refusal of the Outlook categories on the connection; log it when it
    starts, not each time it is asked again."""
    if connection.categories_refused_at is None:
        current_app.logger.warning(
            "Microsoft refused connection %s its Outlook categories (%s): its events are "
            "synchronised without colours, and it is asked again in %d days or once the "
            "configuration changes.",
            connection.id,
            error.code,
            CATEGORIES_RETRY.days,
        )
    connection.categories_refused_at = utcnow()


def carry_on() -> None:
    """Nothing stops a run that holds no lock."""


def run(connection: Connection, sleep=time.sleep, before_batch=carry_on, policy=RETRY_POLICY):
    """Synchronise one connection's calendar with its timetable feed; store the outcome.

    ``before_batch`` is called before each batch is sent; it raises to stop the run (a
    worker whose mailbox lock was lost), and the exception passes on to the caller. When
    Graph asks to wait longer than ``policy`` allows, the run stops with the outcome
    "throttled" and ``retry_at``, the time Graph asked for."""
    started = time.monotonic()
    result = RunResult()
    configuration = connection.configuration
    categorised = True
    try:
        if not configuration.feed_url_template:
            raise feed.FeedError("No timetable feed address is set for the institution yet.")
        window_start, window_end = feed.default_window(
            days_back=current_app.config["SYNC_DAYS_BACK"],
            weeks_ahead=current_app.config["SYNC_WEEKS_AHEAD"],
        )
        clean = connection.last_sync_outcome in (SyncOutcome.OK, SyncOutcome.UNCHANGED)
        # After an unfinished run, or on a new day (the window has moved), the whole feed is
        # needed, not "not modified".
        same_window = (
            connection.last_sync_at is not None
            and connection.last_sync_at.date() == utcnow().date()
        )
        conditional = clean and same_window and not _categories_owed(connection)
        fetched = feed.fetch(
            feed.feed_url(configuration.feed_url_template, connection.upn),
            etag=connection.feed_etag if conditional else None,
            last_modified=connection.feed_last_modified if conditional else None,
            window_start=window_start,
            window_end=window_end,
            timeout=current_app.config["FEED_TIMEOUT"],
            allowed_networks=current_app.config["FEED_ALLOWED_NETWORKS"],
        )
        if fetched.occurrences is None:
            result.outcome = SyncOutcome.UNCHANGED
        else:
            target = _Target(connection)
            books = _Bookkeeping(target.connection_id)
            _note_events_without_uid(connection, fetched.occurrences)
            extra = [] if clean else _repair(target, books, result, policy, sleep)
            plan = planning.make(fetched.occurrences, books.items, books.refused)
            if plan.cleared:
                books.cleared(plan.cleared)
                books.commit()
            _write(target, _operations(plan, extra), books, result, policy, sleep, before_batch)
            categorised = _make_categories(
                connection, target, fetched.occurrences, result, policy, sleep
            )
            result.outcome = SyncOutcome.PARTIAL if result.failed else SyncOutcome.OK
        # A feed whose categories are still to be made is read in full again next time.
        if categorised:
            connection.feed_etag = fetched.etag
            connection.feed_last_modified = fetched.last_modified
        else:
            connection.feed_etag = connection.feed_last_modified = None
    except feed.FeedError as error:
        result.outcome, result.error = SyncOutcome.FAILED, error.reason
    except graph.Throttled as error:
        result.outcome, result.error = SyncOutcome.THROTTLED, error.message
        result.retry_at = error.until
    except MicrosoftError as error:
        result.outcome = SyncOutcome.FAILED
        result.error = f"{error.display_code or error.code}: {error.advice.cause}"
        result.error_code, result.error_trace = error.code, error.trace
        if _out_of_reach(connection, error) == ConnectionStatus.OUTSIDE_GROUP:
            cause = advice_for("ErrorAccessDenied/policy").cause
            result.error = f"{error.display_code or error.code}: {cause}"
    duration = int((time.monotonic() - started) * 1000)
    _store(connection, result, duration)
    metrics.run_ended(result, duration / 1000)
    current_app.logger.log(
        logging.WARNING
        if result.outcome in (SyncOutcome.FAILED, SyncOutcome.PARTIAL)
        else logging.INFO,
        "Sync of connection %s: %s in %d ms, %d created, %d updated, %d deleted, %d failed%s",
        connection.id,
        result.outcome,
        duration,
        result.created,
        result.updated,
        result.deleted,
        result.failed,
        f": {result.error}" if result.error else ".",
    )
    return result


def _out_of_reach(connection: Connection, error: MicrosoftError) -> ConnectionStatus | None:
    """Put an application connection whose mailbox Graph says is gone or outside the group
    in that state (audited), so that it is not retried until it is provisioned again; the
    state, or None when the error means neither."""
    configuration = connection.configuration
    if configuration.method == Method.DELEGATED:
        return None
    state = out_of_reach(configuration, error.code)
    if state is None:
        return None
    connection.status = state
    record(
        configuration.institution,
        "synchronisation",
        "mailbox_out_of_reach",
        f"{connection.upn}: {state} ({error.display_code or error.code})",
    )
    return state


def _note_events_without_uid(connection: Connection, occurrences: list[feed.Occurrence]) -> None:
    """Keep on the connection how many of the feed's events have no UID; log it when it
    starts, not on every run."""
    count = len({o.uid for o in occurrences if o.uid_derived})
    if count and not connection.feed_events_without_uid:
        current_app.logger.warning(
            "The timetable feed of connection %s has %d events without a UID; they are "
            "recognised by their content.",
            connection.id,
            count,
        )
    connection.feed_events_without_uid = count


def refusals(connection_ids: list[int]) -> dict[int, list[SyncRefusal]]:
    """The writes Graph refused for good, by connection, earliest occurrence first."""
    found: dict[int, list[SyncRefusal]] = {}
    if connection_ids:
        rows = db.session.scalars(
            select(SyncRefusal)
            .where(SyncRefusal.connection_id.in_(connection_ids))
            .order_by(SyncRefusal.start, SyncRefusal.key)
        )
        for refusal in rows:
            found.setdefault(refusal.connection_id, []).append(refusal)
    return found


def _store(connection: Connection, result: RunResult, duration_ms: int) -> None:
    connection.last_sync_at = utcnow()
    connection.last_sync_outcome = result.outcome
    connection.last_error = result.error or ("; ".join(result.errors[:3]) or None)
    connection.last_error_code = result.error_code
    connection.last_error_ids = result.error_trace or None
    connection.last_created, connection.last_updated = result.created, result.updated
    connection.last_deleted, connection.last_failed = result.deleted, result.failed
    connection.last_duration_ms = duration_ms
    connection.event_count = db.session.scalar(
        select(db.func.count()).select_from(SyncItem).filter_by(connection_id=connection.id)
    )
    db.session.commit()
