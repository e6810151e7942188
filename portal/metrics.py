"""Prometheus metrics for operators (prometheus_client), served at ``/metrics``.

Two kinds:

- Counts kept as things happen, in whichever process they happen in: synchronisation jobs
  by outcome, runs' durations, events written, Graph requests by status, throttling and
  the waits Graph asked for. Under gunicorn, RQ workers and ``flask sync run`` set
  ``PROMETHEUS_MULTIPROC_DIR`` (the same directory for every process on a machine):
  each process then writes its counts to files there, and a scrape sums them
  (prometheus_client's multiprocess mode). Without it, a scrape sees the serving
  process's own counts, which is right for a single process only.
- States read from the database at scrape time, once per scrape whichever process
  serves it: connections by state, the queue's depth and the age of its oldest job.

No label carries a tenant, a mailbox, a connection or anything a person typed: labels are
outcomes, HTTP statuses, write kinds and connection states, a few values each.

``/metrics`` answers only a request bearing ``PORTAL_METRICS_TOKEN`` (``Authorization:
Bearer ...``); without a token configured it is not there at all (404).
"""

import hashlib
import hmac
import json
import logging
import os
import threading

from flask import Flask, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .extensions import db
from .models import Connection, ConnectionStatus, SyncJob, utcnow

log = logging.getLogger(__name__)
PATH = "/metrics"

# The time each series was first counted ("_created") is not shown: multiprocess mode
# cannot show it, and one process's start is no use to an alert.
disable_created_metrics()

# Defined once per process and registered in no registry: a scrape builds its own
# (``registry``), so that in multiprocess mode nothing is counted twice.
JOBS = Counter(
    "portal_sync_jobs",
    "Synchronisation jobs that ended, by outcome (ok, unchanged, partial, failed, "
    "throttled, skipped, lock_lost).",
    ["outcome"],
    registry=None,
)
RUN_SECONDS = Histogram(
    "portal_sync_run_duration_seconds",
    "How long synchronisation runs took (feed, plan and writes), by outcome.",
    ["outcome"],
    buckets=(0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=None,
)
EVENTS = Counter(
    "portal_sync_events_written",
    "Events written to Outlook calendars, by write (created, updated, deleted).",
    ["write"],
    registry=None,
)
WRITES_FAILED = Counter(
    "portal_sync_writes_failed",
    "Event writes that failed for good in a run (Graph refused them, or they were still "
    "refused after every retry).",
    registry=None,
)
GRAPH_REQUESTS = Counter(
    "portal_graph_requests",
    'HTTP requests sent to Microsoft Graph, by the status of the answer ("none": no '
    "answer, a timeout or a lost connection).",
    ["status"],
    registry=None,
)
GRAPH_BATCH_RESPONSES = Counter(
    "portal_graph_batch_responses",
    "Answers to the requests inside Graph JSON batches, by status.",
    ["status"],
    registry=None,
)
GRAPH_THROTTLED = Counter(
    "portal_graph_throttled",
    "Graph answers asking the portal to slow down (429, and 503), top-level or inside a "
    "batch, by status.",
    ["status"],
    registry=None,
)
GRAPH_RETRY_AFTER = Histogram(
    "portal_graph_retry_after_seconds",
    "The waits Graph asked for in Retry-After (on a 429 or 503).",
    buckets=(0, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=None,
)
COUNTS = (
    JOBS,
    RUN_SECONDS,
    EVENTS,
    WRITES_FAILED,
    GRAPH_REQUESTS,
    GRAPH_BATCH_RESPONSES,
    GRAPH_THROTTLED,
    GRAPH_RETRY_AFTER,
)
# throttling.md: Graph slows a client down with these (graph.THROTTLED, which imports this
# module, says the same).
THROTTLING = frozenset({429, 503})


def job_ended(outcome: str) -> None:
    """A synchronisation job ended with ``outcome``."""
    JOBS.labels(outcome=str(outcome)).inc()


def run_ended(result, seconds: float) -> None:
    """A synchronisation run ended (``result``: the engine's ``RunResult``): how long it
    took and what it wrote."""
    RUN_SECONDS.labels(outcome=str(result.outcome)).observe(seconds)
    for write in ("created", "updated", "deleted"):
        if count := getattr(result, write):
            EVENTS.labels(write=write).inc(count)
    if result.failed:
        WRITES_FAILED.inc(result.failed)


def graph_answered(status: int | None, retry_after: float | None = None) -> None:
    """Graph answered a request with ``status`` (None: no answer came)."""
    GRAPH_REQUESTS.labels(status=str(status) if status else "none").inc()
    _throttling(status, retry_after)


def graph_batch_answered(status: int, retry_after: float | None = None) -> None:
    """Graph answered a request inside a JSON batch with ``status``."""
    GRAPH_BATCH_RESPONSES.labels(status=str(status)).inc()
    _throttling(status, retry_after)


def _throttling(status: int | None, retry_after: float | None) -> None:
    if status in THROTTLING:
        GRAPH_THROTTLED.labels(status=str(status)).inc()
        if retry_after is not None:
            GRAPH_RETRY_AFTER.observe(retry_after)


class DatabaseCollector:
    """Connections by state and the queue of synchronisations, read at scrape time: two
    grouped queries, whatever the number of connections or jobs."""

    def collect(self):
        """The gauges, from the database as it is now; none while it does not answer (the
        counts are still served, and ``/healthz`` says what is down)."""
        try:
            gauges = [self._connections(), *self._queue()]
        except SQLAlchemyError as error:
            db.session.rollback()
            log.warning("Metrics without the database's figures (%s).", type(error).__name__)
            return
        yield from gauges

    def describe(self):
        """Nothing to describe ahead: a scrape's registry is made for it."""
        return []

    @staticmethod
    def _connections() -> GaugeMetricFamily:
        counts = dict.fromkeys(ConnectionStatus, 0)
        rows = db.session.execute(
            select(Connection.status, func.count()).group_by(Connection.status)
        )
        for status, count in rows:
            counts[status] = count
        gauge = GaugeMetricFamily(
            "portal_connections", "Connections (mailboxes) by state.", labels=["state"]
        )
        for status, count in counts.items():
            gauge.add_metric([str(status)], count)
        return gauge

    @staticmethod
    def _queue():
        now = utcnow()
        waiting = SyncJob.started_at.is_(None)
        due = and_(waiting, or_(SyncJob.not_before.is_(None), SyncJob.not_before <= now))
        # A job is due from when it was queued, or from when Graph let it run again.
        due_since = case(
            (SyncJob.not_before > SyncJob.queued_at, SyncJob.not_before), else_=SyncJob.queued_at
        )
        row = db.session.execute(
            select(
                func.count(case((due, 1))),
                func.count(case((and_(waiting, SyncJob.not_before > now), 1))),
                func.count(case((SyncJob.started_at.isnot(None), 1))),
                func.min(case((due, due_since))),
            ).where(SyncJob.finished_at.is_(None))
        ).one()
        depth, deferred, running, oldest = row
        yield GaugeMetricFamily(
            "portal_sync_queue_depth",
            "Synchronisation jobs waiting for a runner that may run now.",
            value=depth,
        )
        yield GaugeMetricFamily(
            "portal_sync_queue_deferred",
            "Synchronisation jobs waiting for the time Graph asked for (throttled runs).",
            value=deferred,
        )
        yield GaugeMetricFamily(
            "portal_sync_jobs_running",
            "Synchronisation jobs a runner has taken and not finished.",
            value=running,
        )
        yield GaugeMetricFamily(
            "portal_sync_queue_oldest_age_seconds",
            "How long the oldest job that may run now has waited (0 when none waits).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )


def multiprocess_mode() -> bool:
    """Whether this process counts in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client reads
    the variable once, when it is imported; it is set before the process starts)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def registry() -> CollectorRegistry:
    """What one scrape reports: the counts (every process's, in multiprocess mode) and the
    database's states."""
    scrape = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        multiprocess.MultiProcessCollector(scrape)
    else:
        for metric in COUNTS:
            scrape.register(metric)
    scrape.register(DatabaseCollector())
    return scrape


def _token_matches(given: str, expected: str) -> bool:
    # Digests first, so the comparison takes as long whatever the given token's length.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def serve():
    """``GET /metrics``: the metrics in Prometheus's text format, to the bearer of
    ``PORTAL_METRICS_TOKEN``; 401 to anyone else; 404 when no token is configured."""
    expected = current_app.config.get("METRICS_TOKEN")
    if not expected:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ""
    if not given or not _token_matches(given, expected):
        # RFC 6750, 3: no bearer token gets the challenge alone, a wrong one invalid_token.
        challenge = 'Bearer realm="metrics"'
        if given:
            challenge += ', error="invalid_token"'
        problem = {  # RFC 9457
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "A valid bearer token (PORTAL_METRICS_TOKEN) is needed.",
        }
        return Response(
            json.dumps(problem),
            401,
            {"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
            mimetype="application/problem+json",
        )
    body = generate_latest(registry())
    db.session.rollback()  # the scrape only read; end its transaction
    return Response(body, 200, {"Cache-Control": "no-store"}, content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Serve ``/metrics`` (served without a session: see ``SessionlessPaths``)."""
    app.add_url_rule(PATH, "metrics", serve, methods=["GET"])


class _Unlogged(WSGIRequestHandler):
    """A scrape every few seconds is no news for the log (errors are still logged)."""

    def log_request(self, *args, **kwargs):
        """Not logged."""


def serve_apart(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """Serve ``/metrics`` of ``app``, and nothing else, on an address of its own, from a
    background thread: for a machine that runs queue workers without gunicorn, whose
    counts no portal process there would otherwise show. The same token applies."""

    def metrics_only(environ, start_response):
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET":
            return NotFound()(environ, start_response)
        return app(environ, start_response)

    server = make_server(host, port, metrics_only, threaded=True, request_handler=_Unlogged)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
