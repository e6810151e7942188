"""Sync benchmark: many mailboxes x many timetable events through the engine, against the
Graph stand-in and a local feed, all on 127.0.0.1; and, in the same run, the same work
done naively (one Graph request per event, no batching, no content hash) for the ratio.

    python benchmarks/sync.py [--quick] [--mailboxes 1000] [--events 200] [--threads 4]

The Microsoft stand-ins run in a process of their own (``standins_process.py``), so that
the engine measured here has this process's interpreter to itself; everything goes over
https with the test CA, through the portal's own session, MSAL and engine.

Reports Graph requests per mailbox for the first sync, for a re-sync of an unchanged
timetable (fetched again in full, as after a new day: only the content hash stands between
the feed and the writes) and for a re-sync after ``--changes`` lectures moved; events per
second through the engine (the whole first sync: feed, plan, batches, bookkeeping); the
CPU seconds of the engine and of the stand-ins; this process's peak memory after the first
``--checkpoint`` mailboxes and after all of them (flat: nothing is kept per mailbox); and
how many calendars, counted back through Graph, do not hold exactly the feed's events.
The last line is one JSON object: {"mailboxes", "events_per_mailbox",
"first_sync_requests_per_mailbox", "resync_writes", "events_per_s", "peak_rss_mb",
"naive_requests_per_mailbox", "request_ratio", ...}.
"""

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from servers import free_port  # noqa: E402
from standins_process import mailbox  # noqa: E402

from portal import certificates, create_app, invitations, provisioning  # noqa: E402
from portal.config import feed_networks  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.microsoft import graph  # noqa: E402
from portal.microsoft import identity as entra  # noqa: E402
from portal.models import Connection, utcnow  # noqa: E402
from portal.sync import engine, feed  # noqa: E402
from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_CLIENT_ID  # noqa: E402
from tests.standins.tls import make_test_pki  # noqa: E402


def timetable(events: int, stamp: datetime, moved: int = 0) -> str:
    """One person's iCalendar feed: ``events`` one-hour lectures over the coming weeks,
    generated at ``stamp`` (DTSTAMP), as MyTimetable writes it; the first ``moved`` of them
    half an hour later than usual."""
    base = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//MyTimetable//Benchmark//EN"]
    for n in range(events):
        start = base + timedelta(days=1 + n // 8, hours=n % 8, minutes=30 if n < moved else 0)
        lines += [
            "BEGIN:VEVENT",
            f"UID:lecture-{n}@mytimetable",
            f"DTSTAMP:{stamp:%Y%m%dT%H%M%SZ}",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
            f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
            f"SUMMARY:Lecture {n}",
            f"LOCATION:Room {n % 40}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


class FeedServer:
    """MyTimetable's feed server, in a process of its own (Python's ``http.server``): the
    same timetable for everyone, with Last-Modified and 304s; ``publish`` replaces it."""

    def __init__(self, directory: Path, body: str):
        self.path = directory / "ical"  # /ical?user=...: the query does not pick the file
        directory.mkdir()
        self.publish(body)
        port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
            + ["--directory", str(directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.url}/ical", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def publish(self, body: str) -> None:
        previous = self.path.stat().st_mtime if self.path.exists() else 0
        self.path.write_bytes(body.encode())
        # Last-Modified counts whole seconds: a new version must be seen as newer.
        stamp = max(time.time(), previous + 2)
        os.utime(self.path, (stamp, stamp))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_standins(workdir: Path, certificate_pem: str, users: int, ports: tuple[int, int]):
    """The stand-ins' process, serving once this returns; it ends when its stdin closes."""
    certificate = workdir / "vendor.pem"
    certificate.write_text(certificate_pem)
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "standins_process.py"),
        "--pki-dir", str(workdir / "pki"),
        "--certificate", str(certificate),
        "--users", str(users),
        "--identity-port", str(ports[0]),
        "--graph-port", str(ports[1]),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line:
        raise SystemExit("the stand-ins did not start")
    return process


def cpu_seconds(pid: int | None = None) -> float:
    """User and system CPU time a process (this one by default) has used so far."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of under a minute")
    parser.add_argument("--mailboxes", type=int, default=None)
    parser.add_argument("--checkpoint", type=int, default=None, help="memory measured here too")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--naive-mailboxes", type=int, default=None)
    parser.add_argument("--changes", type=int, default=10, help="lectures moved per mailbox")
    args = parser.parse_args()
    mailboxes = args.mailboxes or (40 if args.quick else 1000)
    checkpoint = min(mailboxes, args.checkpoint or (20 if args.quick else 100))
    naive_mailboxes = args.naive_mailboxes or (2 if args.quick else 10)

    workdir = Path(tempfile.mkdtemp(prefix="portal-sync-"))
    pki = make_test_pki(workdir / "pki")
    ports = (free_port(), free_port())
    identity_url, graph_url = (f"https://127.0.0.1:{port}" for port in ports)
    feeds = FeedServer(workdir / "feeds", timetable(args.events, datetime.now(UTC)))
    app = create_app(
        {
            "SECRET_KEY": "benchmark",
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'portal.db'}",
            "REDIS_URL": None,
            "AUTHORITY_HOST": identity_url,
            "GRAPH_ENDPOINT": graph_url,
            "CA_BUNDLE": str(pki.ca_path),
            "FEED_ALLOWED_NETWORKS": feed_networks("127.0.0.0/8"),  # the feed server's
        }
    )
    upns = [mailbox(n) for n in range(mailboxes + naive_mailboxes)]
    with app.app_context():
        upgrade()
        vendor = certificates.create_vendor_certificate(365, "benchmark")
        standins = start_standins(workdir, vendor.public_pem, len(upns), ports)
        institution = invitations.create_institution("Benchmark", "managed", "it@x.edu", "b")
        config = institution.configuration
        config.method, config.certificate, config.status = "application", vendor, "approved"
        config.tenant_id, config.client_id = CONTOSO_TENANT_ID, DEMO_CLIENT_ID
        config.verified_at = utcnow()
        config.feed_url_template = f"{feeds.url}/ical?user={{upn}}"
        db.session.commit()
        provisioning.provision(config, upns, "benchmark")
        ids = [c.id for c in db.session.query(Connection).order_by(Connection.upn)]
        engine_ids, naive_ids = ids[:mailboxes], ids[mailboxes:]

    def sync_one(connection_id: int) -> engine.RunResult:
        with app.app_context():
            return engine.run(db.session.get(Connection, connection_id), sleep=time.sleep)

    def sync_all(connection_ids: list[int]):
        # HTTP requests as the engine counts them (a batch is one request).
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            results = list(pool.map(sync_one, connection_ids))
        return results, time.perf_counter() - started

    cpu_before = cpu_seconds(), cpu_seconds(standins.pid)
    early, early_seconds = sync_all(engine_ids[:checkpoint])
    rss_at_checkpoint = peak_rss_mb()
    late, late_seconds = sync_all(engine_ids[checkpoint:])
    first, first_seconds = early + late, early_seconds + late_seconds
    engine_cpu = cpu_seconds() - cpu_before[0]
    standin_cpu = cpu_seconds(standins.pid) - cpu_before[1]
    rss_after_first = peak_rss_mb()
    first_requests = sum(r.requests for r in first)
    events_written = sum(r.created for r in first)
    failed = sum(r.failed for r in first) + sum(1 for r in first if r.outcome != "ok")

    # The same timetable, generated again (new DTSTAMP, so a new ETag): fetched and read in
    # full, and planned against the stored hashes.
    feeds.publish(timetable(args.events, datetime.now(UTC) + timedelta(seconds=1)))
    again, again_seconds = sync_all(engine_ids)
    writes_again = sum(r.created + r.updated + r.deleted for r in again)
    again_requests = sum(r.requests for r in again)

    # Then a few lectures move: only they are written, in as few batches as they fill.
    feeds.publish(timetable(args.events, datetime.now(UTC), moved=args.changes))
    changed, _ = sync_all(engine_ids[:checkpoint])
    changed_writes = sum(r.created + r.updated + r.deleted for r in changed) / checkpoint
    changed_requests = sum(r.requests for r in changed) / checkpoint

    with app.app_context():
        configuration = db.session.get(Connection, naive_ids[0]).configuration
        token = entra.app_token(entra.registration(configuration))
        connections = [db.session.get(Connection, i) for i in engine_ids + naive_ids]
        calendars = {c.upn: c.calendar_id for c in connections}
    naive_upns = upns[mailboxes:]
    naive_started = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        naive_requests = sum(
            pool.map(
                lambda upn: naive(graph_url, token, upn, calendars[upn], feeds.url, pki.ca_path),
                naive_upns,
            )
        )
    naive_seconds = time.perf_counter() - naive_started
    sample = upns[: mailboxes : max(1, mailboxes // 20)] + naive_upns
    wrong = [
        upn
        for upn in sample
        if count_events(graph_url, token, upn, calendars[upn], pki.ca_path) != args.events
    ]

    standins.stdin.close()
    standins.wait(timeout=30)
    feeds.stop()
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
        "resync_feeds_read": sum(1 for r in again if r.outcome == "ok"),
        "resync_s": round(again_seconds, 1),
        "changed_events_per_mailbox": args.changes,
        "changed_writes_per_mailbox": round(changed_writes, 2),
        "changed_resync_requests_per_mailbox": round(changed_requests, 2),
        "changed_target_requests_per_mailbox": math.ceil(args.changes / 20) + 2,
        "events_per_s": round(events_written / first_seconds, 1),
        "first_sync_s": round(first_seconds, 1),
        "engine_cpu_s": round(engine_cpu, 1),
        "engine_events_per_cpu_s": round(events_written / engine_cpu, 1),
        "standin_cpu_s": round(standin_cpu, 1),
        "peak_rss_mb": round(rss_after_first, 1),
        "checkpoint_mailboxes": checkpoint,
        "peak_rss_mb_at_checkpoint": round(rss_at_checkpoint, 1),
        "rss_growth_mb": round(rss_after_first - rss_at_checkpoint, 1),
        "naive_requests_per_mailbox": round(naive_per_mailbox, 1),
        "naive_events_per_s": round(naive_requests / naive_seconds, 1),
        "request_ratio": round(per_mailbox / naive_per_mailbox, 4),
        "calendars_checked": len(sample),
        "calendars_wrong": len(wrong),
        "failed": failed,
        "threads": args.threads,
    }
    print(json.dumps(result))


def naive(graph_url: str, token: str, upn: str, calendar_id: str, feed_url: str, ca) -> int:
    """The feed fetched and read, then one POST per event, as a sync without batching or
    hashes would do; returns the requests made."""
    session = requests.Session()
    body = session.get(f"{feed_url}/ical?user={upn}", timeout=30).content
    occurrences = feed.parse(body, *feed.default_window())
    for occurrence in occurrences:
        response = session.post(
            f"{graph_url}/v1.0/users/{upn}/calendars/{calendar_id}/events",
            headers={"Authorization": f"Bearer {token}"},
            json=graph.event_body(occurrence),
            verify=str(ca),
            timeout=30,
        )
        response.raise_for_status()
    return len(occurrences)


def count_events(graph_url: str, token: str, upn: str, calendar_id: str, ca) -> int:
    """How many events the mailbox's MyTimetable calendar holds, read back through Graph."""
    url = f"{graph_url}/v1.0/users/{upn}/calendars/{calendar_id}/events?$select=id&$top=1000"
    count = 0
    while url:
        page = requests.get(
            url, headers={"Authorization": f"Bearer {token}"}, verify=str(ca), timeout=30
        ).json()
        count += len(page.get("value", []))
        url = page.get("@odata.nextLink")
    return count


if __name__ == "__main__":
    main()
