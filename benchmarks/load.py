"""Load benchmark: what a person feels. Each page's latency percentiles (p50, p95, p99)
at 1, 4 and 16 connections, the portal under gunicorn, beside a bare Flask page served the
same way in the same run.

    python benchmarks/load.py [--quick] [--duration 5] [--rounds 3] [--workers 2]

The portal runs on its embedded default (SQLite, sessions in the database). Both servers
run with the production ``gunicorn.conf.py`` (only the address, the worker count and the
log file differ from it). wrk requests the wizard's pages with a real invitation session
(start, method, certificate, register, tenant) and the end user's status page with the session of
a connected user, so every request loads the server-side session, the invitation or the
connection and its configuration, and renders the page. Each run of a page sits between two
runs of the bare page, and each figure is the median of a page's runs (``measure``).

The last line printed is one JSON object: every page's p95 at 4 connections (a handful of
people at once, what the wizard meets), the bare page's beside it, the budget (50 ms) and
whether every page is within it."""

import argparse
import json
import os
import re
import shutil
import statistics
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
WIZARD_PAGES = (
    "/setup/start",
    "/setup/method",
    "/setup/certificate",
    "/setup/register",
    "/setup/tenant",
)
CONNECT_SLUG = "benchmark-college"
CONNECTIONS = (1, 4, 16)
BUDGET_MS = 50.0  # every page's p95 at BUDGET_CONNECTIONS
BUDGET_CONNECTIONS = 4
# wrk's --latency report gives the 50th, 75th, 90th and 99th percentiles; its Lua ``done``
# hook reads any percentile (in microseconds) from the same recorded distribution.
PERCENTILES_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("PERCENTILES %d %d %d %d %d %d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk(url: str, connections: int, duration: int, script: Path, cookie: str | None = None) -> dict:
    """Run wrk against ``url`` with ``connections`` open at once, each sending its next request
    as soon as the last is answered; p50, p95 and p99 in ms, requests per second, errors."""
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s",
               "--latency", "-s", str(script), url]  # fmt: skip
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = re.search(r"^PERCENTILES (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.M)
    p50, p95, p99, count, status, socket = (int(value) for value in figures.groups())
    return {
        "p50_ms": round(p50 / 1000, 2),
        "p95_ms": round(p95 / 1000, 2),
        "p99_ms": round(p99 / 1000, 2),
        "rps": round(count / duration, 1),
        "errors": status + socket,
    }


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
        ("/setup/method", {"method": "application", "mailbox_scope": "all", "cloud": "worldwide"}),
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


def measure(
    targets: dict, portal_url: str, bare_url: str, duration: int, rounds: int, script: Path
) -> dict:
    """Each page's percentiles, and the bare page's, at each number of connections.

    At each level a round runs the bare page, then each portal page with the bare page
    again after each one (bare, page 1, bare, page 2, ..., bare), the pages in an order
    rotated by one each round. A page's figures are the median of its rounds' (the bare
    page's, of all its runs at that level): on shared cores another process can take the
    CPU for a second or more, which puts one run's tail far out, whichever page it meets.
    """
    paths = list(targets)
    levels = {}
    for connections in CONNECTIONS:
        runs: dict[str, list] = {path: [] for path in paths}
        bare_runs = [wrk(bare_url, connections, duration, script)]
        for number in range(rounds):
            shift = number % len(paths)
            for path in paths[shift:] + paths[:shift]:
                runs[path].append(
                    wrk(portal_url + path, connections, duration, script, targets[path])
                )
                bare_runs.append(wrk(bare_url, connections, duration, script))
        levels[connections] = {
            "pages": {path: _median(runs[path]) for path in paths},
            "bare": _median(bare_runs),
        }
    return levels


def _median(runs: list[dict]) -> dict:
    """Each figure's median over ``runs``; errors summed."""
    figures = {key: round(statistics.median(run[key] for run in runs), 2) for key in runs[0]}
    figures["errors"] = sum(run["errors"] for run in runs)
    figures["runs"] = len(runs)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of about a minute")
    parser.add_argument("--duration", type=int, default=None, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=None, help="runs of each page per level")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--config", type=Path, default=CONFIG, help="the gunicorn configuration both servers use"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and its logs")
    args = parser.parse_args()
    duration = args.duration or (2 if args.quick else 5)
    rounds = args.rounds or (1 if args.quick else 3)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    (workdir / "bare.py").write_text(BARE_APP)
    script = workdir / "percentiles.lua"
    script.write_text(PERCENTILES_LUA)
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
        # Warm both servers (each worker's first requests, the kernel's connection queues).
        wrk(bare_url, CONNECTIONS[-1], 2, script)
        for path, cookie in targets.items():
            wrk(portal_url + path, CONNECTIONS[-1], 1, script, cookie)
        levels = measure(targets, portal_url, bare_url, duration, rounds, script)
    finally:
        for server in (portal, bare):
            if server is not None:
                stop(server)
        if args.keep:
            print(f"work folder: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    for connections, level in levels.items():
        print(f"{connections} connection(s)            p50 ms   p95 ms   p99 ms    req/s  errors")
        rows = {**level["pages"], f"bare Flask ({level['bare']['runs']} runs)": level["bare"]}
        for name, run in rows.items():
            print(f"  {name:36} {run['p50_ms']:7.1f}  {run['p95_ms']:7.1f}  {run['p99_ms']:7.1f}"
                  f"  {run['rps']:7.1f}  {run['errors']:6d}")  # fmt: skip
    budget = levels[BUDGET_CONNECTIONS]
    p95 = {path: run["p95_ms"] for path, run in budget["pages"].items()}
    result = {
        "connections": BUDGET_CONNECTIONS,
        "p95_ms": p95,
        "bare_p95_ms": budget["bare"]["p95_ms"],
        "worst_page": max(p95, key=p95.get),
        "budget_ms": BUDGET_MS,
        "within_budget": all(value < BUDGET_MS for value in p95.values()),
        "errors": sum(
            run["errors"]
            for level in levels.values()
            for run in [*level["pages"].values(), level["bare"]]
        ),
        "workers": args.workers,
        "duration_s": duration,
        "rounds": rounds,
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
