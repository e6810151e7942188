"""Sync benchmark: a university's mailboxes through the portal's own sync runners, against
the Microsoft stand-ins answering as slowly as the real Graph does.

    python benchmarks/sync.py [--quick] [--latency 150] [--mailboxes 2000] [--events 200]

The stand-ins run in a process of their own (``standins_process.py``) and, once the
mailboxes are provisioned, answer each Graph request ``--latency`` ms late, and a ``$batch``
``--item-latency`` ms more per request it carries (the real service takes 100 to 500 ms).
A timetable feed server runs in another process. Everything goes over https with the test
CA, through the portal's own session, MSAL, engine and runners:

1. SQLite, in this process: ``--baseline`` mailboxes through ``jobs.run_waiting`` with
   concurrency 1 (one mailbox at a time, as both runners did before), then ``--mailboxes``
   mailboxes with ``PORTAL_SYNC_CONCURRENCY`` (``--concurrency``, 16): mailboxes per
   minute of each and the ratio (``speedup``); events per second; Graph requests (over the
   wire) per mailbox; this process's peak memory after ``--checkpoint`` mailboxes and
   after all. Then an unchanged timetable, published again (a new DTSTAMP, so it is read
   in full): the writes and requests of that re-sync, which should be none.
2. PostgreSQL and Redis (``--database-url``, ``--redis-url``): ``--pg-mailboxes`` mailboxes
   through one ``flask sync worker`` process, then as many others through two at once, at
   each ``--pg-concurrency`` (4 and 16 by default); the workers are up and waiting on the
   queue before the jobs are pushed, as in production. The ratio is ``two_worker_speedup``
   (at the first concurrency); ``pg_runs`` has every pair, with the cores the workers used.

The last line is one JSON object: {"latency_ms", "mailboxes", "events_per_mailbox",
"mailboxes_per_minute", "baseline_mailboxes_per_minute", "speedup", "events_per_s",
"first_sync_requests_per_mailbox", "resync_writes", "peak_rss_mb_500", "peak_rss_mb_2000",
"two_worker_speedup", ...}; with ``--quick`` the two memory figures are taken at the quick
run's own checkpoint and end (named in "rss_checkpoints").
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from servers import VENV_BIN, free_port  # noqa: E402
from standins_process import mailbox  # noqa: E402

from portal import certificates, create_app, invitations, provisioning  # noqa: E402
from portal.config import feed_networks  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Certificate, Configuration, SyncJob, utcnow  # noqa: E402
from portal.sync import jobs  # noqa: E402
from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_CLIENT_ID  # noqa: E402
from tests.standins.tls import make_test_pki  # noqa: E402

WRITES = ("graph:create_event", "graph:update_event", "graph:delete_event")


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


def ask(standins: subprocess.Popen, command: str) -> dict:
    """Send the stand-ins' process a command; its one-line JSON answer."""
    standins.stdin.write(command + "\n")
    standins.stdin.flush()
    return json.loads(standins.stdout.readline())


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


def settings(args, workdir: Path, pki, urls: tuple[str, str], database: str, redis_url=None):
    """The portal's settings for the benchmark, as create_app takes them."""
    return {
        "PORTAL_ENV": "production",
        "SECRET_KEY": "benchmark",
        "ENCRYPTION_KEYS": args.encryption_key,
        "SQLALCHEMY_DATABASE_URI": database,
        "REDIS_URL": redis_url,
        "AUTHORITY_HOST": urls[0],
        "GRAPH_ENDPOINT": urls[1],
        "CA_BUNDLE": str(pki.ca_path),
        "FEED_ALLOWED_NETWORKS": feed_networks("127.0.0.0/8"),  # the feed server's
        "SYNC_CONCURRENCY": args.concurrency,
        "LOG_LEVEL": os.environ.get("PORTAL_LOG_LEVEL", "warning").upper(),
    }


def worker_environment(args, pki, urls, database: str, redis_url: str, concurrency: int) -> dict:
    """The environment of a ``flask sync worker`` process with the same settings."""
    return os.environ | {
        "PORTAL_ENV": "production",
        "PORTAL_SECRET_KEY": "benchmark",
        "PORTAL_ENCRYPTION_KEY": args.encryption_key,
        "PORTAL_DATABASE_URL": database,
        "PORTAL_REDIS_URL": redis_url,
        "PORTAL_AUTHORITY_HOST": urls[0],
        "PORTAL_GRAPH_ENDPOINT": urls[1],
        "PORTAL_CA_BUNDLE": str(pki.ca_path),
        "PORTAL_FEED_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PORTAL_SYNC_CONCURRENCY": str(concurrency),
        "PORTAL_LOG_LEVEL": "warning",
    }


def institution(feed_url: str, vendor: Certificate) -> Configuration:
    """The benchmark's approved application configuration in the current app."""
    made = invitations.create_institution("Benchmark", "managed", "it@x.edu", "b")
    config = made.configuration
    config.method, config.certificate, config.status = "application", vendor, "approved"
    config.tenant_id, config.client_id = CONTOSO_TENANT_ID, DEMO_CLIENT_ID
    config.verified_at = utcnow()
    config.feed_url_template = f"{feed_url}/ical?user={{upn}}"
    db.session.commit()
    return config


def provision(config: Configuration, upns: list[str]) -> None:
    """Add the mailboxes (their first syncs are queued, and with Redis pushed)."""
    outcome = provisioning.provision(config, upns, "benchmark")
    if len(outcome.added) != len(upns):
        raise SystemExit(f"provisioning refused mailboxes: {outcome}")


def outcomes() -> dict:
    """How many jobs ended each way."""
    rows = db.session.execute(
        db.select(SyncJob.outcome, db.func.count()).group_by(SyncJob.outcome)
    ).all()
    return {str(outcome): count for outcome, count in rows}


def workers(count: int, environment: dict, log: Path, standins, latency: str) -> tuple:
    """Run ``count`` ``flask sync worker`` processes over the jobs queued in Redis: the
    seconds from the first run's start to the last run's end, as the jobs record them, and
    the CPU seconds the processes used meanwhile.

    As in production the workers are up before the work comes: the queued jobs are taken
    off the queue, the processes started, and once each waits on the queue (Redis lists it
    as blocked in BLPOP) the jobs are pushed back at once, with the Graph stand-in's
    latency turned on. The processes' start-up is so left out of every run alike. Each
    process is stopped as an operator would (SIGTERM) once every job has ended."""
    rq_queue = jobs.queue()
    client = rq_queue.connection
    with client.pipeline(transaction=True) as take:
        take.lrange(rq_queue.key, 0, -1)
        take.delete(rq_queue.key)
        queued, _ = take.execute()
    since = utcnow()
    with open(log, "ab") as output:
        processes = [
            subprocess.Popen(
                [str(VENV_BIN / "flask"), "--app", "wsgi", "sync", "worker", "--every", "0"],
                cwd=ROOT,
                env=environment,
                stdout=output,
                stderr=output,
            )
            for _ in range(count)
        ]
        try:
            deadline = time.monotonic() + 120
            while sum(c["cmd"] == "blpop" for c in client.client_list()) < count:
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise SystemExit(f"the sync workers did not start; see {log}")
                time.sleep(0.1)
            ask(standins, latency)
            cpu_before = sum(cpu_seconds(process.pid) for process in processes)
            client.rpush(rq_queue.key, *queued)
            finished = db.select(db.func.count()).where(SyncJob.finished_at >= since)
            while db.session.scalar(finished) < len(queued):
                db.session.commit()
                if any(p.poll() is not None for p in processes):
                    raise SystemExit(f"a sync worker ended early; see {log}")
                time.sleep(0.2)
            cpu = sum(cpu_seconds(process.pid) for process in processes) - cpu_before
        finally:
            ask(standins, "latency 0 0")
            for process in processes:
                process.terminate()
            for process in processes:
                if process.wait(timeout=600) != 0:
                    raise SystemExit(f"a sync worker failed; see {log}")
    first, last = db.session.execute(
        db.select(db.func.min(SyncJob.started_at), db.func.max(SyncJob.finished_at)).where(
            SyncJob.started_at >= since
        )
    ).one()
    db.session.commit()
    return (last - first).total_seconds(), cpu


def progress(message: str) -> None:
    """A line on standard error, so that a long run shows where it is."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of under two minutes")
    parser.add_argument("--latency", type=float, default=150, help="ms per Graph answer")
    parser.add_argument("--item-latency", type=float, default=5, help="ms per $batch item")
    parser.add_argument("--mailboxes", type=int, default=None)
    parser.add_argument("--checkpoint", type=int, default=None, help="memory measured here too")
    parser.add_argument("--baseline", type=int, default=None, help="mailboxes at concurrency 1")
    parser.add_argument("--pg-mailboxes", type=int, default=None, help="per PostgreSQL run")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--pg-concurrency",
        type=lambda value: [int(part) for part in value.split(",")],
        default=[4, 16],
        help="PORTAL_SYNC_CONCURRENCY of the worker processes, one pair of runs each "
        "(comma-separated; two_worker_speedup is the first's)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "PORTAL_BENCH_DATABASE_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server on which to make a database of its own ('' to skip)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("PORTAL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        help="a Redis database the benchmark may empty",
    )
    args = parser.parse_args()
    mailboxes = args.mailboxes or (40 if args.quick else 2000)
    checkpoint = min(mailboxes, args.checkpoint or (10 if args.quick else 500))
    baseline = args.baseline or (3 if args.quick else 16)
    pg_mailboxes = args.pg_mailboxes
    if pg_mailboxes is None:
        pg_mailboxes = 64 if args.quick else mailboxes // 4
    events = args.events or (100 if args.quick else 200)
    args.encryption_key = Fernet.generate_key().decode()

    workdir = Path(tempfile.mkdtemp(prefix="portal-sync-"))
    pki = make_test_pki(workdir / "pki")
    ports = (free_port(), free_port())
    urls = tuple(f"https://127.0.0.1:{port}" for port in ports)
    feeds = FeedServer(workdir / "feeds", timetable(events, datetime.now(UTC)))
    runs = 2 * len(args.pg_concurrency)
    upns = [mailbox(n) for n in range(baseline + mailboxes + runs * pg_mailboxes)]
    sqlite_upns = upns[: baseline + mailboxes]
    pg_upns = [upns[len(sqlite_upns) + run * pg_mailboxes :][:pg_mailboxes] for run in range(runs)]
    app = create_app(settings(args, workdir, pki, urls, f"sqlite:///{workdir / 'portal.db'}"))
    figures: dict = {}
    with app.app_context():
        upgrade()
        vendor = certificates.create_vendor_certificate(365, "benchmark")
        vendor_row = {c.name: getattr(vendor, c.name) for c in Certificate.__table__.columns}
        standins = start_standins(workdir, vendor.public_pem, len(upns), ports)
        config = institution(feeds.url, vendor)
        progress(f"provisioning {len(sqlite_upns)} mailboxes")
        provision(config, sqlite_upns)
        progress("baseline: concurrency 1")
        ask(standins, f"latency {args.latency} {args.item_latency}")

        counts = ask(standins, "counts")
        started = time.perf_counter()
        jobs.run_waiting(limit=baseline, concurrency=1)
        baseline_seconds = time.perf_counter() - started

        progress(f"first sync: {mailboxes} mailboxes, concurrency {args.concurrency}")
        before = ask(standins, "counts")
        cpu_before = cpu_seconds(), cpu_seconds(standins.pid)
        started = time.perf_counter()
        jobs.run_waiting(limit=checkpoint)
        rss_checkpoint = peak_rss_mb()
        jobs.run_waiting()
        first_seconds = time.perf_counter() - started
        rss_end = peak_rss_mb()
        cpu = cpu_seconds() - cpu_before[0], cpu_seconds(standins.pid) - cpu_before[1]
        after = ask(standins, "counts")
        first_outcomes = outcomes()

        # The same timetable, generated again (a new DTSTAMP, so a new Last-Modified): read
        # in full and planned against the stored hashes.
        feeds.publish(timetable(events, datetime.now(UTC) + timedelta(seconds=1)))
        jobs.enqueue_all()
        progress("re-sync of an unchanged timetable")
        started = time.perf_counter()
        jobs.run_waiting()
        resync_seconds = time.perf_counter() - started
        resynced = ask(standins, "counts")

    def diff(later: dict, earlier: dict, *names: str) -> int:
        return sum(later.get(name, 0) - earlier.get(name, 0) for name in names)

    figures |= {
        "first_sync_outcomes": first_outcomes,
        "baseline_mailboxes_per_minute": round(baseline / baseline_seconds * 60, 1),
        "mailboxes_per_minute": round(mailboxes / first_seconds * 60, 1),
        "events_per_s": round(diff(after, before, "graph:create_event") / first_seconds, 1),
        "first_sync_requests_per_mailbox": round(diff(after, before, "graph:http") / mailboxes, 2),
        "baseline_requests_per_mailbox": round(diff(before, counts, "graph:http") / baseline, 2),
        "resync_writes": diff(resynced, after, *WRITES),
        "resync_requests": diff(resynced, after, "graph:http"),
        "resync_s": round(resync_seconds, 1),
        "first_sync_s": round(first_seconds, 1),
        # CPU seconds of the runner (this process) and of the stand-ins during the first sync:
        # near the wall time times the cores, the machine, not Graph's latency, is the limit.
        "first_sync_cpu_s": {"runner": round(cpu[0], 1), "standins": round(cpu[1], 1)},
        "rss_checkpoints": [checkpoint, mailboxes],
        "peak_rss_mb_500": round(rss_checkpoint, 1),
        "peak_rss_mb_2000": round(rss_end, 1),
    }

    if args.database_url and pg_mailboxes:
        figures |= scale_out(args, workdir, pki, urls, feeds, vendor_row, pg_upns, standins)

    standins.stdin.close()
    standins.wait(timeout=30)
    feeds.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    result = {
        "latency_ms": args.latency,
        "batch_item_latency_ms": args.item_latency,
        "mailboxes": mailboxes,
        "events_per_mailbox": events,
        "concurrency": args.concurrency,
        "baseline_mailboxes": baseline,
        "speedup": round(
            figures["mailboxes_per_minute"] / figures["baseline_mailboxes_per_minute"], 2
        ),
        "target_requests_per_mailbox": math.ceil(events / 20) + 2,
        "rss_ratio": round(figures["peak_rss_mb_2000"] / figures["peak_rss_mb_500"], 3),
    } | figures
    print(json.dumps(result))


def scale_out(args, workdir, pki, urls, feeds, vendor_row, pg_upns, standins) -> dict:
    """One worker process, then two, each over mailboxes of their own on PostgreSQL and
    Redis; their mailboxes per minute and the ratio."""
    name = f"portal_bench_{os.getpid()}"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    base = args.database_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    database = f"{base}/{name}"
    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    log = workdir / "workers.log"
    try:
        app = create_app(settings(args, workdir, pki, urls, database, args.redis_url))
        with app.app_context():
            upgrade()
            vendor = Certificate(**vendor_row)
            db.session.add(vendor)
            db.session.commit()
            config = institution(feeds.url, vendor)
            config_id = config.id
            latency = f"latency {args.latency} {args.item_latency}"
            ask(standins, "latency 0 0")
            runs = {}
            upns = iter(pg_upns)
            for concurrency in args.pg_concurrency:
                environment = worker_environment(
                    args, pki, urls, database, args.redis_url, concurrency
                )
                for count in (1, 2):
                    chosen = next(upns)
                    provision(db.session.get(Configuration, config_id), chosen)
                    progress(
                        f"PostgreSQL + Redis: {count} worker(s) at concurrency {concurrency}, "
                        f"{len(chosen)} mailboxes"
                    )
                    runs[concurrency, count] = workers(count, environment, log, standins, latency)
            done = outcomes()
            db.session.remove()
            db.engine.dispose()
    finally:
        client.flushdb()
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    count = len(pg_upns[0])

    def per_minute(concurrency: int, workers: int) -> float:
        return round(count / runs[concurrency, workers][0] * 60, 1)

    def cores(concurrency: int, workers: int) -> float:
        seconds, cpu = runs[concurrency, workers]
        return round(cpu / seconds, 2)

    first = args.pg_concurrency[0]
    return {
        "pg_mailboxes_per_run": count,
        "pg_concurrency": first,
        "pg_one_worker_mailboxes_per_minute": per_minute(first, 1),
        "pg_two_workers_mailboxes_per_minute": per_minute(first, 2),
        "two_worker_speedup": round(per_minute(first, 2) / per_minute(first, 1), 2),
        # Each concurrency's pair of runs: mailboxes per minute of one and of two workers,
        # their ratio, and the cores the worker processes kept busy (their CPU seconds from
        # the jobs' push to the last job's end, over the run's wall time).
        "pg_runs": {
            str(concurrency): {
                "one_worker_mailboxes_per_minute": per_minute(concurrency, 1),
                "two_workers_mailboxes_per_minute": per_minute(concurrency, 2),
                "two_worker_speedup": round(
                    per_minute(concurrency, 2) / per_minute(concurrency, 1), 2
                ),
                "worker_cores": [cores(concurrency, 1), cores(concurrency, 2)],
            }
            for concurrency in args.pg_concurrency
        },
        "pg_outcomes": done,
    }


if __name__ == "__main__":
    main()
