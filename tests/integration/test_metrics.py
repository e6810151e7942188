"""Prometheus metrics at /metrics: only to the bearer token, each metric moving with a
synchronisation against the stand-ins, counts summed over processes in multiprocess mode,
and no label that names a tenant, a mailbox or a secret."""

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from portal import metrics, provisioning
from portal.extensions import db
from portal.models import Configuration, Connection, ConnectionStatus, SyncJob, utcnow
from portal.sync import jobs
from tests.integration.test_sync import ADELE, ics, lessons, settle
from tests.integration.test_sync_queue import long_run, make_queued, work  # noqa: F401 (a fixture)

TOKEN = "metrics-token-for-tests-0123456789abcdef"  # noqa: S105 (a test value)
ROOT = Path(__file__).resolve().parents[2]


def scrape(app, token=TOKEN) -> dict[tuple[str, tuple], float]:
    """Every sample /metrics shows: (name, sorted labels) -> value."""
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.status_code
    return samples(response.get_data(as_text=True))


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """The samples of a scrape in Prometheus's text format."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    """One sample's value; 0 when it has not appeared yet (a label not yet counted)."""
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def mailbox(make_app, standins, feed_server, configure):
    """An approved application configuration with Adele's mailbox provisioned, and the
    metrics token set."""
    app = make_app(**standins.settings(), METRICS_TOKEN=TOKEN)
    configure(app, feed_url_template=f"{feed_server.url}/ical?user={{upn}}")
    standins.registration.policy_mailboxes = None
    with app.app_context():
        configuration = db.session.query(Configuration).one()
        assert provisioning.provision(configuration, [ADELE], "test").added == [ADELE]
    return app


def test_no_token_configured_means_no_metrics(app):
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization, error",
    [
        (None, False),
        ("", False),
        (f"Basic {TOKEN}", False),
        ("Bearer", False),
        ("Bearer not-the-token", True),
        (f"Bearer {TOKEN}x", True),
        (f"Bearer {TOKEN[:-1]}", True),
    ],
)
def test_metrics_are_refused_without_the_token(make_app, authorization, error):
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) == error
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 401
    assert "portal_" not in response.get_data(as_text=True)


def test_metrics_are_served_to_the_token_without_a_session(make_app):
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain" and "version=" in response.content_type
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert "# TYPE portal_connections gauge" in response.get_data(as_text=True)


def test_a_sync_moves_every_metric(mailbox, standins, feed_server):
    feed_server.calendars[ADELE] = ics(*lessons(25))
    standins.directory.throttle(ADELE, times=1, retry_after=0)  # a top-level 429
    before = scrape(mailbox)
    with mailbox.app_context():
        assert value(scrape(mailbox), "portal_sync_queue_depth") == 1  # the first sync
        assert jobs.run_waiting(sleep=lambda seconds: None) == 1
        # Graph answers every write of the next run 429 inside its batch, then takes them.
        feed_server.calendars[ADELE] = ics(*lessons(25, prefix="changed"))
        standins.directory.throttle(ADELE, times=2, retry_after=2)
        connection = db.session.query(Connection).one()
        jobs.enqueue(connection, "test")
        db.session.commit()
        assert jobs.run_waiting(sleep=lambda seconds: None) == 1
    after = scrape(mailbox)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("portal_sync_jobs_total", outcome="ok") == 2
    assert moved("portal_sync_run_duration_seconds_count", outcome="ok") == 2
    assert moved("portal_sync_run_duration_seconds_sum", outcome="ok") > 0
    assert moved("portal_sync_events_written_total", write="created") == 50
    assert moved("portal_sync_events_written_total", write="deleted") == 25
    assert moved("portal_graph_requests_total", status="200") >= 4
    assert moved("portal_graph_requests_total", status="429") == 1
    assert moved("portal_graph_batch_responses_total", status="201") == 50
    assert moved("portal_graph_batch_responses_total", status="204") == 25
    assert moved("portal_graph_batch_responses_total", status="429") == 2
    assert moved("portal_graph_batch_responses_total", status="424") > 0  # dependsOn
    assert moved("portal_graph_throttled_total", status="429") == 3
    # The waits asked for: 0 s on the top-level 429, 2 s on each of the two in the batch.
    assert moved("portal_graph_retry_after_seconds_count") == 3
    assert moved("portal_graph_retry_after_seconds_sum") == 4
    assert moved("portal_graph_retry_after_seconds_bucket", le="0.0") == 1
    assert moved("portal_graph_retry_after_seconds_bucket", le="2.0") == 3
    assert value(after, "portal_connections", state="connected") == 1
    assert value(after, "portal_connections", state="needs_reconnect") == 0
    assert value(after, "portal_sync_queue_depth") == 0
    assert value(after, "portal_sync_jobs_running") == 0


def test_the_queue_is_read_at_scrape_time(mailbox):
    with mailbox.app_context():
        connection = db.session.query(Connection).one()
        first = db.session.query(SyncJob).one()
        first.queued_at = utcnow() - timedelta(minutes=10)
        db.session.commit()
        waiting = scrape(mailbox)
        jobs.run_claimed(*jobs.claim_next(), sleep=lambda seconds: None)
        jobs.enqueue(connection, "throttled", not_before=utcnow() + timedelta(hours=1))
        db.session.commit()
        deferred = scrape(mailbox)
    assert value(waiting, "portal_sync_queue_depth") == 1
    assert 600 <= value(waiting, "portal_sync_queue_oldest_age_seconds") < 660
    assert value(waiting, "portal_sync_queue_deferred") == 0
    assert value(deferred, "portal_sync_queue_depth") == 0
    assert value(deferred, "portal_sync_queue_deferred") == 1
    assert value(deferred, "portal_sync_queue_oldest_age_seconds") == 0


def test_connections_are_counted_by_state(mailbox):
    with mailbox.app_context():
        connection = db.session.query(Connection).one()
        connection.status = ConnectionStatus.NEEDS_RECONNECT
        db.session.commit()
    found = scrape(mailbox)
    assert value(found, "portal_connections", state="connected") == 0
    assert value(found, "portal_connections", state="needs_reconnect") == 1


# The labels a metric may carry: outcomes, statuses, kinds of write, states, and buckets.
LABELS = {"outcome", "status", "write", "state", "le"}


def test_no_label_names_a_tenant_a_mailbox_or_a_secret(mailbox, standins, feed_server):
    feed_server.calendars[ADELE] = ics(*lessons(5))
    standins.directory.throttle(ADELE, times=1, retry_after=1)
    with mailbox.app_context():
        jobs.run_waiting(sleep=lambda seconds: None)
        configuration = db.session.query(Configuration).one()
        connection = db.session.query(Connection).one()
        secrets = [
            ADELE,
            "@",
            configuration.tenant_id,
            configuration.client_id,
            connection.calendar_id,
            TOKEN,
            mailbox.config["SECRET_KEY"],
        ]
    text = (
        mailbox.test_client()
        .get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        .get_data(as_text=True)
    )
    for secret in secrets:
        assert secret.lower() not in text.lower(), secret
    for name, labels in samples(text):
        assert name.startswith("portal_") and not name.endswith("_created"), name
        for label, label_value in labels:
            assert label in LABELS, (name, label)
            assert re.fullmatch(r"[a-z_]{2,20}|[0-9]{3}|[0-9.+Inf]+", label_value), label_value


COUNT_IN_A_PROCESS = textwrap.dedent(
    """
    from portal import metrics
    metrics.job_ended("ok")
    metrics.graph_answered(429, 5.0)
    metrics.graph_batch_answered(201)
    """
)

SCRAPE_IN_A_PROCESS = textwrap.dedent(
    """
    import json, sys
    from portal import create_app
    from tests.conftest import base_config

    app = create_app({**base_config(sys.argv[1]), "METRICS_TOKEN": sys.argv[2]})
    response = app.test_client().get(
        "/metrics", headers={"Authorization": "Bearer " + sys.argv[2]}
    )
    print(json.dumps([response.status_code, response.get_data(as_text=True)]))
    """
)


def test_multiprocess_mode_sums_the_counts_of_every_process(app, tmp_path):
    """Two processes count (a gunicorn worker, an RQ worker); a third serves /metrics."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }

    def python(script, *args):
        done = subprocess.run(  # noqa: S603 (this interpreter, the test's own scripts)
            [sys.executable, "-c", script, *args],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    python(COUNT_IN_A_PROCESS)
    python(COUNT_IN_A_PROCESS)
    status, text = json.loads(
        python(SCRAPE_IN_A_PROCESS, app.config["SQLALCHEMY_DATABASE_URI"], TOKEN).splitlines()[-1]
    )
    assert status == 200
    found = samples(text)
    assert value(found, "portal_sync_jobs_total", outcome="ok") == 2
    assert value(found, "portal_graph_requests_total", status="429") == 2
    assert value(found, "portal_graph_throttled_total", status="429") == 2
    assert value(found, "portal_graph_retry_after_seconds_count") == 2
    assert value(found, "portal_graph_retry_after_seconds_sum") == 10
    assert value(found, "portal_graph_batch_responses_total", status="201") == 2
    # The database's states are read once, by the process that answers, not summed.
    assert value(found, "portal_connections", state="connected") == 0
    assert value(found, "portal_sync_queue_depth") == 0


@pytest.fixture
def queued_with_token(request):
    """Adele's first sync queued on Redis (``PORTAL_TEST_REDIS_URL``), the metrics token set
    (``make_queued``, test_sync_queue's fixture, imported above)."""
    return request.getfixturevalue("make_queued")(METRICS_TOKEN=TOKEN, SYNC_LOCK_SECONDS=2)


def test_jobs_run_by_queue_workers_are_counted(queued_with_token):
    app, client = queued_with_token
    before = scrape(app)
    work(app)
    after = scrape(app)
    ok = ("portal_sync_jobs_total", (("outcome", "ok"),))
    assert after.get(ok, 0) - before.get(ok, 0) == 1


def test_a_run_that_lost_its_mailbox_lock_is_counted(queued_with_token, standins, feed_server):
    app, client = queued_with_token
    before = scrape(app)
    with app.app_context():
        connection_id = db.session.query(Connection).one().id
    runner, outcome = long_run(app, standins, feed_server)
    client.set(f"portal:sync:lock:{connection_id}", "another worker's token", ex=60)
    runner.join(timeout=30)
    settle(standins)
    assert outcome == ["lock lost"]
    lost = ("portal_sync_jobs_total", (("outcome", "lock_lost"),))
    assert scrape(app).get(lost, 0) - before.get(lost, 0) == 1


def test_a_machine_of_queue_workers_serves_its_metrics_apart(make_app):
    app = make_app(METRICS_TOKEN=TOKEN)
    server = metrics.serve_apart(app, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with requests.Session() as session:
            session.trust_env = False
            answer = session.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 200 and "portal_sync_queue_depth" in answer.text
            assert session.get(f"{url}/metrics").status_code == 401
            assert session.get(f"{url}/healthz").status_code == 404
            assert session.get(f"{url}/").status_code == 404
    finally:
        server.shutdown()


def test_a_worker_serves_no_metrics_without_a_token(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/14")  # never reached
    result = app.test_cli_runner().invoke(args=["sync", "worker", "--metrics-port", "9100"])
    assert result.exit_code != 0 and "PORTAL_METRICS_TOKEN" in result.output


def test_the_counts_are_served_while_the_database_does_not_answer(make_app, monkeypatch):
    app = make_app(METRICS_TOKEN=TOKEN)

    def refuse(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("the database is down"))

    monkeypatch.setattr(db.session, "execute", refuse)
    found = scrape(app)
    names = {name for name, _ in found}
    assert "portal_graph_retry_after_seconds_count" in names
    assert not names & {"portal_connections", "portal_sync_queue_depth"}
