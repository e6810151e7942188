"""Load benchmark: wrk against the portal under gunicorn, and against a bare Flask page
served the same way in the same run, so the ratio does not depend on the machine.

    python benchmarks/load.py [--quick] [--connections 32] [--duration 5] [--rounds 4]

The portal runs on its embedded default (SQLite, sessions in the database). Both servers
run with the production ``gunicorn.conf.py`` (only the address, the worker count and the
log file differ from it). wrk requests four wizard pages with a real invitation session
(method, certificate, register, tenant) and the end user's status page with the session of
a connected user, so every request loads the server-side session, the invitation or the
connection and its configuration, and renders the page. Each run of a page is measured
between two runs of the bare page (``measure``), so that a drift of the machine's speed
during the run weighs on both sides of its ratio.

The last line printed is one JSON object: ``ratio`` is the slowest portal page's requests
per second over the bare page's beside it, ``p99_ms`` the worst portal page's 99th
percentile (the worst of its runs)."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from servers import free_port, gunicorn, stop

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "gunicorn.conf.py"
REDIS_URL = "redis://127.0.0.1:6379/13"
BARE_APP = """
from flask import Flask, render_template_string

app = Flask(__name__)
PAGE = "<!doctype html><title>{{ title }}</title><h1>{{ title }}</h1><p>{{ body }}</p>"


@app.get("/")
def index():
    return render_template_string(PAGE, title="Bare Flask", body="x" * 2000)
"""
WIZARD_PAGES = ("/setup/method", "/setup/certificate", "/setup/register", "/setup/tenant")
CONNECT_SLUG = "benchmark-college"
TARGETS = (50.0, 0.5)  # p99 under 50 ms; at least half the bare page's throughput


def wrk(url: str, connections: int, duration: int, cookie: str | None = None) -> dict:
    """Run wrk against ``url``; requests per second, p99 and the count of error answers."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": round(rps, 1),
        "p99_ms": _milliseconds(re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)),
        "mean_ms": _milliseconds(re.search(r"Latency\s+([\d.]+)(us|ms|s)\b", output)),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _milliseconds(match: re.Match) -> float:
    return round(float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)], 2)


def portal_environment(workdir: Path) -> dict:
    """The production settings of a throw-away portal in ``workdir``."""
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "PORTAL_ENV": "production",
        "PORTAL_SECRET_KEY": "benchmark-" + os.urandom(16).hex(),
        "PORTAL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "PORTAL_DATABASE_URL": f"sqlite:///{workdir / 'portal.db'}",
        "PORTAL_EXTERNAL_URL": "http://127.0.0.1",
        # Several workers share their sign-in rate limits (and sessions) through Redis, as
        # in production; gunicorn.conf.py refuses to start several without it.
        "PORTAL_REDIS_URL": os.environ.get("PORTAL_BENCHMARK_REDIS_URL", REDIS_URL),
    }
    return env


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def prepare_portal(env: dict) -> dict:
    """Migrate a fresh database and make the two visitors wrk plays; return their cookies.

    The administrator opens a real invitation link and walks the wizard to step 4 through
    the portal's own routes; the end user's Connection belongs to an approved delegated
    configuration, and the session names it as the callback would after a sign-in.
    """
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade

    from portal import certificates, create_app, invitations
    from portal.extensions import db
    from portal.models import Connection, Method, Status, utcnow

    app = create_app()
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    with app.app_context():
        upgrade()
        vendor = certificates.create_vendor_certificate(365, "benchmark")
        wizard = invitations.create_institution(
            "Benchmark University", "managed", "admin@example.edu", "benchmark"
        )
        link = invitations.issue_invitation(wizard, "benchmark")
        college = invitations.create_institution(
            "Benchmark College", "managed", "admin@example.edu", "benchmark"
        )
        configuration = college.configuration
        configuration.method, configuration.status = Method.DELEGATED, Status.APPROVED
        configuration.certificate, configuration.step_reached = vendor, 6
        configuration.tenant_id = "benchmark.onmicrosoft.com"
        configuration.client_id = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"
        configuration.verified_at = utcnow()
        connection = Connection(
            configuration=configuration,
            upn="adele.vance@example.edu",
            display_name="Adele Vance",
            calendar_id="AAMkAGI2",
            calendar_name="MyTimetable",
            last_sync_at=utcnow(),
            last_sync_outcome="ok",
            event_count=42,
            last_created=3,
            last_updated=1,
        )
        db.session.add(connection)
        db.session.commit()
        assert college.slug == CONNECT_SLUG, college.slug
        connection_id = connection.id

    admin = app.test_client()
    path = link.removeprefix(app.config["EXTERNAL_URL"])
    opened = admin.post(path, data={"csrf_token": _csrf(admin.get(path).text)})
    assert opened.status_code == 302, opened.status_code
    steps = (
        ("/setup/method", {"method": "application", "cloud": "worldwide"}),
        ("/setup/certificate", {}),
        ("/setup/register", {}),
    )
    for path, fields in steps:
        token = _csrf(admin.get(path).text)
        assert admin.post(path, data={"csrf_token": token, **fields}).status_code == 302, path

    user = app.test_client()
    with user.session_transaction() as session:
        session["connection_id"] = connection_id
    return {
        "wizard": f"{cookie_name}={admin.get_cookie(cookie_name).value}",
        "user": f"{cookie_name}={user.get_cookie(cookie_name).value}",
    }


def measure(targets: dict, portal_url: str, bare_url: str, connections: int, duration: int,
            rounds: int) -> tuple[dict, list]:  # fmt: skip
    """Each page's throughput against the bare page's, measured beside it.

    A round runs wrk on the bare page, then on each portal page with the bare page again
    after each one (bare, page 1, bare, page 2, ..., bare), the pages in an order rotated by
    one each round. A page's ratio is its requests per second over the mean of the bare runs
    just before and after each of its runs: a drift of the machine's speed (on shared cores,
    10 to 20 % within a minute) weighs on both sides of each ratio alike, instead of on
    whichever page it happened to. A page's p99 is the worst of its runs'.
    """
    paths = list(targets)
    runs: dict[str, list] = {path: [] for path in paths}
    beside: dict[str, list] = {path: [] for path in paths}
    bare_runs = [wrk(bare_url, connections, duration)]
    for number in range(rounds):
        shift = number % len(paths)
        for path in paths[shift:] + paths[:shift]:
            runs[path].append(wrk(portal_url + path, connections, duration, targets[path]))
            bare_runs.append(wrk(bare_url, connections, duration))
            beside[path].append((bare_runs[-2]["rps"] + bare_runs[-1]["rps"]) / 2)
    pages = {}
    for path in paths:
        rps = sum(run["rps"] for run in runs[path]) / rounds
        pages[path] = {
            "rps": round(rps, 1),
            "ratio": round(rps * rounds / sum(beside[path]), 3),
            "p99_ms": max(run["p99_ms"] for run in runs[path]),
            "mean_ms": round(sum(run["mean_ms"] for run in runs[path]) / rounds, 2),
            "errors": sum(run["errors"] for run in runs[path]),
            "runs_rps": [run["rps"] for run in runs[path]],
            "bare_beside_rps": [round(value, 1) for value in beside[path]],
        }
    return pages, bare_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of about a minute")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=None, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=None, help="runs of each page")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--config", type=Path, default=CONFIG, help="the gunicorn configuration both servers use"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and its logs")
    args = parser.parse_args()
    duration = args.duration or (2 if args.quick else 5)
    rounds = args.rounds or (2 if args.quick else 4)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    (workdir / "bare.py").write_text(BARE_APP)
    env = portal_environment(workdir)
    cookies = prepare_portal(env)
    targets = {path: cookies["wizard"] for path in WIZARD_PAGES}
    targets[f"/connect/{CONNECT_SLUG}/status"] = cookies["user"]
    portal_port, bare_port = free_port(), free_port()
    served = {"config": args.config.resolve(), "workers": args.workers, "threads": None}
    portal = bare = None
    started = time.monotonic()
    try:
        portal = gunicorn("wsgi:app", portal_port, env, ROOT, log=workdir / "portal.log", **served)
        # The same gunicorn.conf.py, which wants Redis for several workers, bare or not, and
        # logs through the portal's key filter (so the portal's folder is on the path).
        bare_env = {
            **os.environ,
            "PORTAL_REDIS_URL": env["PORTAL_REDIS_URL"],
            "PYTHONPATH": str(ROOT),
        }
        bare = gunicorn("bare:app", bare_port, bare_env, workdir,
                        log=workdir / "bare.log", **served)  # fmt: skip
        portal_url, bare_url = f"http://127.0.0.1:{portal_port}", f"http://127.0.0.1:{bare_port}/"
        for path, cookie in targets.items():
            answer = requests.get(portal_url + path, headers={"Cookie": cookie}, timeout=10)
            if answer.status_code != 200 or answer.history:
                raise SystemExit(f"{path} answered {answer.status_code} {answer.url}")
        warm = 2 if args.quick else 5
        wrk(bare_url, args.connections, warm)
        for path, cookie in targets.items():
            wrk(portal_url + path, args.connections, warm if path == WIZARD_PAGES[0] else 1, cookie)
        pages, bare_runs = measure(
            targets, portal_url, bare_url, args.connections, duration, rounds
        )
    finally:
        for server in (portal, bare):
            if server is not None:
                stop(server)
        if args.keep:
            print(f"work folder: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    bare_rps = sum(run["rps"] for run in bare_runs) / len(bare_runs)
    bare_p99 = max(run["p99_ms"] for run in bare_runs)
    for path, page in pages.items():
        print(f"{path:34} {page['rps']:8.1f} req/s  mean {page['mean_ms']:6.1f} ms"
              f"  p99 {page['p99_ms']:6.1f} ms  ratio {page['ratio']:.3f}"
              f"  errors {page['errors']}")  # fmt: skip
    bare_mean = sum(run["mean_ms"] for run in bare_runs) / len(bare_runs)
    print(f"{'bare Flask (' + str(len(bare_runs)) + ' runs)':34} {bare_rps:8.1f} req/s"
          f"  mean {bare_mean:6.1f} ms  p99 {bare_p99:6.1f} ms")  # fmt: skip
    slowest = min(pages, key=lambda path: pages[path]["ratio"])
    worst = max(pages, key=lambda path: pages[path]["p99_ms"])
    ratio = pages[slowest]["ratio"]
    result = {
        "portal_rps": pages[slowest]["rps"],
        "slowest_page": slowest,
        "bare_rps": round(bare_rps, 1),
        "ratio": ratio,
        "p99_ms": pages[worst]["p99_ms"],
        "worst_p99_page": worst,
        "bare_p99_ms": bare_p99,
        "bare_mean_ms": round(bare_mean, 2),
        "targets_met": pages[worst]["p99_ms"] < TARGETS[0] and ratio >= TARGETS[1],
        "errors": sum(page["errors"] for page in pages.values()),
        "pages": pages,
        "bare": [run["rps"] for run in bare_runs],
        "connections": args.connections,
        "workers": args.workers,
        "duration_s": duration,
        "rounds": rounds,
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
