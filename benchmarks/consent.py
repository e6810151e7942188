"""Consent benchmark: many end users connect at once, through the portal under gunicorn and
the stand-ins of Microsoft's identity platform and Graph, all on 127.0.0.1.

    python benchmarks/consent.py [--quick] [--flows 200] [--concurrency 16] [--workers 2]

Each flow is what a browser does (with requests): open the connect page, start the sign-in,
sign in at the stand-in, follow the redirect to the portal's callback (timed), land on the
status page. Afterwards every Connection is checked: stored, encrypted, its MyTimetable
calendar made. As a baseline measured in the same run, the same number of sign-ins go
straight through MSAL against the stand-ins, without the portal. Everything trusts only the
test CA (not the system bundle plus the test CA), since requests reloads the CA file for
every new connection and the stand-ins close each one. The last line printed is
one JSON object: {"flows", "ok", "flows_per_s", "callback_p99_ms",
"metadata_fetches_per_process", ...}.
"""

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
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from servers import free_port, gunicorn, stop  # noqa: E402

from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_CLIENT_ID, seed_demo  # noqa: E402
from tests.standins.directory import Directory, User  # noqa: E402
from tests.standins.server import start_standins  # noqa: E402
from tests.standins.tls import make_test_pki  # noqa: E402
from tests.standins_selftest.helpers import Browser, CASession  # noqa: E402

SLUG = "benchmark-university"


def in_portal(script: str, env: dict) -> str:
    """Run Python in the portal's environment (its database, its keys); its output."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def prepare(workdir: Path, identity_url: str, graph_url: str, bundle: Path, port: int) -> dict:
    """A migrated database with an approved delegated configuration; the portal's env."""
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "PORTAL_ENV": "production",
        "PORTAL_SECRET_KEY": "benchmark-" + uuid.uuid4().hex,
        "PORTAL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "PORTAL_DATABASE_URL": f"sqlite:///{workdir / 'portal.db'}",
        "PORTAL_EXTERNAL_URL": f"http://127.0.0.1:{port}",
        "PORTAL_AUTHORITY_HOST": identity_url,
        "PORTAL_GRAPH_ENDPOINT": graph_url,
        "PORTAL_CA_BUNDLE": str(bundle),
        # Several workers share their sign-in rate limits (and sessions) through Redis, as
        # in production; gunicorn.conf.py refuses to start several without it.
        "PORTAL_REDIS_URL": os.environ.get(
            "PORTAL_BENCHMARK_REDIS_URL", "redis://127.0.0.1:6379/13"
        ),
    }
    script = f"""
from flask_migrate import upgrade
from portal import create_app, certificates, invitations
from portal.extensions import db
from portal.models import utcnow
app = create_app()
with app.app_context():
    upgrade()
    vendor = certificates.create_vendor_certificate(365, "benchmark")
    institution = invitations.create_institution("Benchmark University", "managed", "it@x.edu", "b")
    config = institution.configuration
    config.method, config.certificate, config.status = "delegated", vendor, "approved"
    config.tenant_id, config.tenant_guid = "{CONTOSO_TENANT_ID}", "{CONTOSO_TENANT_ID}"
    config.client_id, config.verified_at = "{DEMO_CLIENT_ID}", utcnow()
    db.session.commit()
    print(vendor.public_pem)
"""
    out = in_portal(script, env)
    env["BENCH_VENDOR_PEM"] = out[out.index("-----BEGIN CERTIFICATE-----") :]
    return env


def one_flow(portal: str, bundle: Path, upn: str) -> float:
    """Connect one user; return the callback's latency in milliseconds."""
    browser = requests.Session()
    page = browser.get(f"{portal}/connect/{SLUG}").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    start = browser.post(
        f"{portal}/connect/{SLUG}/sign-in",
        data={"csrf_token": token, "login_hint": upn},
        allow_redirects=False,
    )
    microsoft = Browser(CASession(bundle))
    answer = microsoft.press(microsoft.open(start.headers["Location"]), "idSIButton9", login=upn)
    location = urlsplit(answer.headers["Location"])
    began = time.perf_counter()
    callback = browser.get(f"{portal}{location.path}?{location.query}", allow_redirects=False)
    elapsed = (time.perf_counter() - began) * 1000
    if callback.status_code != 302 or not callback.headers["Location"].endswith("/status"):
        raise RuntimeError(f"{upn}: callback answered {callback.status_code}")
    if upn not in browser.get(urljoin(portal, callback.headers["Location"])).text:
        raise RuntimeError(f"{upn}: the status page does not show the user")
    return elapsed


def baseline_flow(identity_url: str, bundle: Path, key_pem: str, cert_pem: str, upn: str) -> None:
    """The same sign-in straight through MSAL, without the portal."""
    import msal

    app = msal.ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential={"private_key": key_pem, "public_certificate": cert_pem},
        authority=f"{identity_url}/{CONTOSO_TENANT_ID}",
        http_client=CASession(bundle),
        instance_discovery=False,
    )
    flow = app.initiate_auth_code_flow(
        ["Calendars.ReadWrite", "User.Read"],
        redirect_uri="http://127.0.0.1/baseline",
        response_mode="query",
    )
    microsoft = Browser(CASession(bundle))
    answer = microsoft.press(microsoft.open(flow["auth_uri"]), "idSIButton9", login=upn)
    query = dict(
        pair.split("=", 1) for pair in urlsplit(answer.headers["Location"]).query.split("&")
    )
    result = app.acquire_token_by_auth_code_flow(flow, {k: unquote(v) for k, v in query.items()})
    if "access_token" not in result:
        raise RuntimeError(result)


def check_connections(env: dict, upns: list[str], directory: Directory) -> int:
    """How many users have a stored, encrypted connection and a MyTimetable calendar."""
    script = """
import json
from portal import create_app
from portal.extensions import db
from portal.models import Connection
app = create_app()
with app.app_context():
    rows = [
        {"upn": c.upn, "status": c.status, "calendar": c.calendar_id,
         "clear": b"refresh_token" in (c.token_cache_encrypted or b"refresh_token")}
        for c in db.session.query(Connection)
    ]
print(json.dumps(rows))
"""
    out = in_portal(script, env)
    rows = {r["upn"]: r for r in json.loads(out.strip().splitlines()[-1])}
    good = 0
    for upn in upns:
        row = rows.get(upn)
        user = directory.user_by_upn(upn)
        calendars = [c["name"] for c in directory.calendars(user)]
        if (
            row
            and row["status"] == "connected"
            and row["calendar"]
            and not row["clear"]
            and calendars.count("MyTimetable") == 1
        ):
            good += 1
    return good


def main() -> None:
    warnings.filterwarnings("ignore", message="response_mode='form_post'", category=UserWarning)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of under a minute")
    parser.add_argument("--flows", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    flows = args.flows or (60 if args.quick else 200)

    workdir = Path(tempfile.mkdtemp(prefix="portal-consent-"))
    pki = make_test_pki(workdir / "pki")
    directory = Directory()
    identity, graph = start_standins(directory, pki)
    port = free_port()
    env = prepare(workdir, identity.url, graph.url, pki.ca_path, port)
    seed_demo(
        directory,
        certificates=[env.pop("BENCH_VENDOR_PEM")],
        redirect_uris=[f"http://127.0.0.1:{port}/connect/callback", "http://127.0.0.1/baseline"],
    )
    directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID).admin_consented = True
    upns = []
    for n in range(flows):
        upn = f"student{n:04}@contoso.edu"
        directory.add_user(User(str(uuid.uuid4()), upn, CONTOSO_TENANT_ID, f"Student {n:04}"))
        upns.append(upn)
    portal = gunicorn("wsgi:app", port, env, ROOT, args.workers, threads=8)
    before = directory.counters["openid-configuration"]
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            futures = [
                pool.submit(one_flow, f"http://127.0.0.1:{port}", pki.ca_path, u) for u in upns
            ]
        latencies, failures = [], []
        for future in futures:
            try:
                latencies.append(future.result())
            except Exception as error:  # a failed flow is counted, and the run goes on
                failures.append(str(error))
        duration = time.perf_counter() - started
        fetches = directory.counters["openid-configuration"] - before
    finally:
        stop(portal)
    ok = check_connections(env, upns, directory)

    from tests.standins_selftest.helpers import make_credential

    credential = make_credential("baseline")
    directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID).certificates.append(credential.cert_pem)
    base_started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(
            pool.map(
                lambda u: baseline_flow(
                    identity.url, pki.ca_path, credential.key_pem, credential.cert_pem, u
                ),
                upns,
            )
        )
    baseline = time.perf_counter() - base_started
    identity.stop()
    graph.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else None
    result = {
        "flows": flows,
        "ok": ok,
        "failed": len(failures),
        "flows_per_s": round(flows / duration, 1),
        "callback_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "callback_p99_ms": round(p99, 1) if p99 is not None else None,
        "metadata_fetches_per_process": round(fetches / args.workers, 2),
        "baseline_msal_only_flows_per_s": round(flows / baseline, 1),
        "ratio_to_baseline": round((flows / duration) / (flows / baseline), 3),
        "concurrency": args.concurrency,
        "workers": args.workers,
    }
    if failures:
        print("\n".join(failures[:5]), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
