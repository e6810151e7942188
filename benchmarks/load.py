"""Load benchmark: wrk against the portal under gunicorn, and against a bare Flask page
served the same way in the same run, so the ratio does not depend on the machine.

    python benchmarks/load.py [--quick] [--connections 32] [--duration 20]

The portal runs on its embedded default (SQLite, sessions in the database). wrk requests
a wizard page with a real invitation session, so every request loads the server-side
session, the invitation and the configuration, and renders the page. The last line
printed is one JSON object: {"portal_rps", "bare_rps", "ratio", "p99_ms", ...}.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests
from servers import free_port, gunicorn, stop

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
BARE_APP = """
from flask import Flask, render_template_string

app = Flask(__name__)
PAGE = "<!doctype html><title>{{ title }}</title><h1>{{ title }}</h1><p>{{ body }}</p>"


@app.get("/")
def index():
    return render_template_string(PAGE, title="Bare Flask", body="x" * 2000)
"""


def wrk(url: str, connections: int, duration: int, cookie: str | None = None) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": rps,
        "p99_ms": round(float(p99.group(1)) * scale, 2),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def prepare_portal(workdir: Path) -> tuple[dict, str]:
    """Migrate a fresh database, add an institution and return (env, invitation path)."""
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "PORTAL_ENV": "production",
        "PORTAL_SECRET_KEY": "benchmark-" + os.urandom(16).hex(),
        "PORTAL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "PORTAL_DATABASE_URL": f"sqlite:///{workdir / 'portal.db'}",
        "PORTAL_EXTERNAL_URL": "http://127.0.0.1",
        "FLASK_APP": "wsgi.py",
    }
    env.pop("PORTAL_REDIS_URL", None)
    flask = str(VENV_BIN / "flask")
    subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(
        [flask, "vendor-cert", "create"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [flask, "invite", "create", "Benchmark University", "--hosting", "managed",
         "--email", "admin@example.edu"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    link = re.search(r"(/setup/i/\S+)", out).group(1)
    return env, link


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of under a minute")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=None, help="seconds per target")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    duration = args.duration or (8 if args.quick else 30)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    (workdir / "bare.py").write_text(BARE_APP)
    env, link = prepare_portal(workdir)
    portal_port, bare_port = free_port(), free_port()
    portal = gunicorn("wsgi:app", portal_port, env, ROOT, args.workers)
    bare = gunicorn("bare:app", bare_port, {**os.environ}, workdir, args.workers)
    try:
        browser = requests.Session()
        browser.get(f"http://127.0.0.1:{portal_port}{link}")
        # Walk to step 2 so that two different wizard pages can be measured.
        page = browser.get(f"http://127.0.0.1:{portal_port}/setup/method").text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        browser.post(
            f"http://127.0.0.1:{portal_port}/setup/method",
            data={"csrf_token": token, "method": "application", "cloud": "worldwide"},
        )
        cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
        warm = max(2, duration // 4)
        wrk(f"http://127.0.0.1:{bare_port}/", args.connections, warm)
        wrk(f"http://127.0.0.1:{portal_port}/setup/method", args.connections, warm, cookie)
        bare_result = wrk(f"http://127.0.0.1:{bare_port}/", args.connections, duration)
        method = wrk(
            f"http://127.0.0.1:{portal_port}/setup/method", args.connections, duration, cookie
        )
        certificate = wrk(
            f"http://127.0.0.1:{portal_port}/setup/certificate", args.connections, duration, cookie
        )
    finally:
        stop(portal)
        stop(bare)
        shutil.rmtree(workdir, ignore_errors=True)

    portal_rps = min(method["rps"], certificate["rps"])
    result = {
        "portal_rps": round(portal_rps, 1),
        "bare_rps": round(bare_result["rps"], 1),
        "ratio": round(portal_rps / bare_result["rps"], 3),
        "p99_ms": max(method["p99_ms"], certificate["p99_ms"]),
        "bare_p99_ms": bare_result["p99_ms"],
        "pages": {"/setup/method": method, "/setup/certificate": certificate},
        "connections": args.connections,
        "workers": args.workers,
        "duration_s": duration,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
