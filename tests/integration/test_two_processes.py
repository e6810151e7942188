"""Two gunicorn processes serve one portal: a consent flow begun on one ends on the other.

Both processes share the test's database and, in the scale-out pass, PostgreSQL and Redis
(sessions, rate limits and jobs), exactly as two machines behind a load balancer would.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from portal.extensions import db
from portal.models import Connection, SyncJob
from tests.conftest import ENCRYPTION_KEY
from tests.standins_selftest.helpers import Browser, CASession

ROOT = Path(__file__).resolve().parents[2]
SLUG = "contoso-university"
ADELE = "adele.vance@contoso.edu"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(app, port: int, log: Path) -> subprocess.Popen:
    """The portal under gunicorn with the documented config, on the test app's settings."""
    config = app.config
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
        "PORTAL_ENV": "production",
        "PORTAL_SECRET_KEY": config["SECRET_KEY"],
        "PORTAL_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PORTAL_DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "PORTAL_REDIS_URL": config["REDIS_URL"] or "",
        "PORTAL_EXTERNAL_URL": config["EXTERNAL_URL"],
        "PORTAL_AUTHORITY_HOST": config["AUTHORITY_HOST"],
        "PORTAL_GRAPH_ENDPOINT": config["GRAPH_ENDPOINT"],
        "PORTAL_CA_BUNDLE": config["CA_BUNDLE"],
        "PORTAL_BIND": f"127.0.0.1:{port}",
        "PORTAL_WORKERS": "1",
        "PORTAL_THREADS": "4",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.time() + 30
    while time.time() < deadline and process.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                return process
        except requests.RequestException:  # not listening yet, or still starting up
            time.sleep(0.1)
    process.kill()
    pytest.fail(f"gunicorn did not start on port {port}:\n{log.read_text()}")


@pytest.fixture
def two_portals(make_app, standins, configure, tmp_path):
    """An approved delegated configuration served by two gunicorn processes."""
    first, second = free_port(), free_port()
    # Both processes answer for one public address, as behind a load balancer.
    app = make_app(**standins.settings(), EXTERNAL_URL=f"http://127.0.0.1:{first}")
    configure(
        app,
        method="delegated",
        name="Contoso University",
        tenant_guid=standins.TENANT_GUID,
    )
    standins.registration.redirect_uris.append(f"http://127.0.0.1:{first}/connect/callback")
    processes = [
        start_gunicorn(app, port, tmp_path / f"gunicorn-{port}.log") for port in (first, second)
    ]
    yield app, f"http://127.0.0.1:{first}", f"http://127.0.0.1:{second}"
    for process in processes:
        process.terminate()
        process.wait(timeout=15)


def test_a_consent_flow_begun_on_one_process_ends_on_the_other(two_portals, standins):
    app, one, other = two_portals
    browser = requests.Session()  # cookies for 127.0.0.1 go to both ports, like one site
    page = browser.get(f"{one}/connect/{SLUG}")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    start = browser.post(
        f"{one}/connect/{SLUG}/sign-in",
        data={"csrf_token": token, "login_hint": ADELE},
        allow_redirects=False,
    )
    assert start.status_code == 302

    microsoft = Browser(CASession(standins.pki.bundle_path))
    answer = microsoft.press(microsoft.open(start.headers["Location"]), "idSIButton9", login=ADELE)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}" == one

    callback = browser.get(f"{other}{back.path}?{back.query}", allow_redirects=False)
    assert callback.status_code == 302, callback.text
    assert callback.headers["Location"].endswith(f"/connect/{SLUG}/status")
    status = browser.get(f"{one}/connect/{SLUG}/status")
    assert status.status_code == 200 and "Adele Vance" in status.text

    with app.app_context():
        connection = db.session.query(Connection).one()
        assert connection.upn == ADELE and connection.status == "connected"
        assert db.session.query(SyncJob).filter_by(connection_id=connection.id).count() == 1
    user = standins.directory.user_by_upn(ADELE)
    assert [c["name"] for c in standins.directory.calendars(user)].count("MyTimetable") == 1
