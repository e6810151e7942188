"""Sync benchmark: many mailboxes x many timetable events through the engine, against the
Graph stand-in and a local feed, all on 127.0.0.1; and, in the same run, the same work
done naively (one Graph request per event, no batching, no content hash) for the ratio.

    python benchmarks/sync.py [--quick] [--mailboxes 1000] [--events 200] [--threads 4]

Reports Graph requests per mailbox for the first sync and for an unchanged re-sync,
events per second through the engine, and the process's peak memory. The last line is
one JSON object: {"mailboxes", "events_per_mailbox", "first_sync_requests_per_mailbox",
"resync_writes", "events_per_s", "peak_rss_mb", "naive_requests_per_mailbox",
"request_ratio", ...}.
"""

import argparse
import json
import math
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from portal import certificates, create_app, invitations, provisioning  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Connection, utcnow  # noqa: E402
from portal.sync import engine, feed  # noqa: E402
from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_CLIENT_ID, seed_demo  # noqa: E402
from tests.standins.directory import Directory, User  # noqa: E402
from tests.standins.server import start_standins  # noqa: E402
from tests.standins.tls import make_test_pki  # noqa: E402


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        """No request log."""


def timetable(events: int) -> str:
    """One person's iCalendar feed: ``events`` one-hour lectures over the coming weeks."""
    base = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//MyTimetable//Benchmark//EN"]
    for n in range(events):
        start = base + timedelta(days=1 + n // 8, hours=n % 8)
        lines += [
            "BEGIN:VEVENT",
            f"UID:lecture-{n}@mytimetable",
            f"DTSTAMP:{base:%Y%m%dT%H%M%SZ}",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
            f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Lecture {n}",
            f"LOCATION:Room {n % 40}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def feed_server(body: str):
    """Serve the same timetable to everyone, with an ETag and 304s."""
    etag = f'"{uuid.uuid5(uuid.NAMESPACE_URL, body)}"'

    def app(environ, start_response):
        request = Request(environ)
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})(environ, start_response)
        response = Response(body, mimetype="text/calendar", headers={"ETag": etag})
        return response(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def naive(graph_url: str, token: str, upn: str, calendar_id: str, occurrences, bundle) -> int:
    """One POST per event, as a sync without batching or hashes would do."""
    session = requests.Session()
    for occurrence in occurrences:
        response = session.post(
            f"{graph_url}/v1.0/users/{upn}/calendars/{calendar_id}/events",
            headers={"Authorization": f"Bearer {token}"},
            json=occurrence.graph_event(),
            verify=str(bundle),
        )
        response.raise_for_status()
    return len(occurrences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of under a minute")
    parser.add_argument("--mailboxes", type=int, default=None)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--naive-mailboxes", type=int, default=None)
    args = parser.parse_args()
    mailboxes = args.mailboxes or (20 if args.quick else 1000)
    naive_mailboxes = args.naive_mailboxes or (2 if args.quick else 10)

    workdir = Path(tempfile.mkdtemp(prefix="portal-sync-"))
    pki = make_test_pki(workdir / "pki")
    directory = Directory()
    identity, graph = start_standins(directory, pki)
    body = timetable(args.events)
    feeds = feed_server(body)
    app = create_app(
        {
            "SECRET_KEY": "benchmark",
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'portal.db'}",
            "REDIS_URL": None,
            "AUTHORITY_HOST": identity.url,
            "GRAPH_ENDPOINT": graph.url,
            "CA_BUNDLE": str(pki.ca_path),
        }
    )
    upns = [f"user{n:05}@contoso.edu" for n in range(mailboxes + naive_mailboxes)]
    with app.app_context():
        upgrade()
        vendor = certificates.create_vendor_certificate(365, "benchmark")
        institution = invitations.create_institution("Benchmark", "managed", "it@x.edu", "b")
        config = institution.configuration
        config.method, config.certificate, config.status = "application", vendor, "approved"
        config.tenant_id, config.client_id = CONTOSO_TENANT_ID, DEMO_CLIENT_ID
        config.verified_at = utcnow()
        config.feed_url_template = f"http://127.0.0.1:{feeds.server_port}/ical?user={{upn}}"
        db.session.commit()
        registration = seed_demo(directory, certificates=[vendor.public_pem])
        registration = directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID)
        registration.admin_consented, registration.policy_mailboxes = True, None
        for upn in upns:
            directory.add_user(User(str(uuid.uuid4()), upn, CONTOSO_TENANT_ID, upn))
        provisioning.provision(config, upns, "benchmark")
        ids = [c.id for c in db.session.query(Connection).order_by(Connection.upn)]
        engine_ids, naive_ids = ids[:mailboxes], ids[mailboxes:]

    def sync_one(connection_id: int):
        with app.app_context():
            connection = db.session.get(Connection, connection_id)
            return engine.run(connection, sleep=time.sleep)

    def sync_all():
        # HTTP requests as the engine counts them (the stand-in counts each request inside
        # a batch as well).
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            results = list(pool.map(sync_one, engine_ids))
        return results, sum(r.requests for r in results), time.perf_counter() - started

    first, first_requests, first_seconds = sync_all()
    again, again_requests, _ = sync_all()
    writes_again = sum(r.created + r.updated + r.deleted for r in again)
    events_written = sum(r.created for r in first)
    failed = sum(r.failed for r in first) + sum(1 for r in first if r.outcome != "ok")

    with app.app_context():
        from portal.microsoft import identity as entra
        from portal.microsoft.clouds import cloud

        certificate = db.session.get(Connection, naive_ids[0]).configuration.certificate
        token = entra.app_token(cloud("worldwide"), CONTOSO_TENANT_ID, DEMO_CLIENT_ID, certificate)
        window = feed.default_window()
        occurrences = feed.parse(body.encode(), *window)
        targets = [
            (c.upn, c.calendar_id) for c in (db.session.get(Connection, i) for i in naive_ids)
        ]
    naive_requests = sum(
        naive(graph.url, token, upn, calendar_id, occurrences, pki.ca_path)
        for upn, calendar_id in targets
    )

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    identity.stop()
    graph.stop()
    feeds.shutdown()
    shutil.rmtree(workdir, ignore_errors=True)

    per_mailbox = first_requests / mailboxes
    naive_per_mailbox = naive_requests / max(1, naive_mailboxes)
    result = {
        "mailboxes": mailboxes,
        "events_per_mailbox": args.events,
        "first_sync_requests_per_mailbox": round(per_mailbox, 2),
        "target_requests_per_mailbox": math.ceil(args.events / 20) + 2,
        "resync_writes": writes_again,
        "resync_requests": again_requests,
        "events_per_s": round(events_written / first_seconds, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "naive_requests_per_mailbox": round(naive_per_mailbox, 1),
        "request_ratio": round(per_mailbox / naive_per_mailbox, 4),
        "failed": failed,
        "threads": args.threads,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
