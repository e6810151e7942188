"""Fixtures shared by every test: an application on a migrated SQLite file, its client and
CLI runner, a ``Wizard`` helper that walks the setup wizard like a browser would, and an
SMTP server's inbox."""

import gc
import itertools
import os
import re
import shutil
import socket
import threading
import warnings

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from cryptography.fernet import Fernet
from flask_migrate import upgrade

from portal import create_app, notifications
from portal.config import database_uri, feed_networks
from portal.extensions import db

ENCRYPTION_KEY = Fernet.generate_key().decode()

# The scale-out pass (.ci/run runs the integration tests twice): with PORTAL_TEST_SCALE_OUT=1
# every test application uses its own PostgreSQL database, made from a migrated template,
# and Redis for sessions, rate limits and the job queue.
SCALE_OUT = os.environ.get("PORTAL_TEST_SCALE_OUT") == "1"
POSTGRES_URL = database_uri(
    os.environ.get("PORTAL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
)
TEST_REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def base_config(database) -> dict:
    """Settings for a test application; no environment variable is needed.

    ``database`` is a SQLite file path or, in the scale-out pass, a database URL."""
    url = str(database) if "://" in str(database) else f"sqlite:///{database}"
    return {
        "TESTING": True,
        "PORTAL_ENV": "production",
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "SQLALCHEMY_DATABASE_URI": url,
        "EXTERNAL_URL": "http://localhost",
        "REDIS_URL": TEST_REDIS_URL if SCALE_OUT else None,
        "AUTHORITY_HOST": None,
        "GRAPH_ENDPOINT": None,
        "CA_BUNDLE": None,
        # The tests' feed servers listen on 127.0.0.1, which production otherwise refuses.
        "FEED_ALLOWED_NETWORKS": feed_networks("127.0.0.0/8, ::1/128"),
    }


class PostgresDatabases:
    """Per-test PostgreSQL databases, each a copy of one migrated template database."""

    def __init__(self, server_url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.server = make_url(server_url)
        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT", poolclass=None)
        self.prefix = f"portal_test_{os.getpid()}"
        self.template = f"{self.prefix}_template"
        self.numbers = itertools.count()

    def _run(self, statement: str):
        from sqlalchemy import text

        with self.admin.connect() as connection:
            connection.execute(text(statement))

    def url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def make_template(self) -> str:
        self._run(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        self._run(f'CREATE DATABASE "{self.template}"')
        return self.url(self.template)

    def copy(self) -> str:
        name = f"{self.prefix}_{next(self.numbers)}"
        self._run(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def drop(self, name: str):
        self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self):
        self.drop(self.template)
        self.admin.dispose()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Tests never read the developer's PORTAL_* settings."""
    import os

    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)


def _migrate(database):
    app = create_app(base_config(database))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):
    """A database migrated once through Alembic; each test gets a copy.

    A SQLite file by default; a PostgreSQL template database in the scale-out pass."""
    if not SCALE_OUT:
        path = tmp_path_factory.mktemp("schema") / "portal.db"
        _migrate(path)
        yield path
        return
    databases = PostgresDatabases(POSTGRES_URL)
    _migrate(databases.make_template())
    yield databases
    databases.close()


@pytest.fixture
def make_app(tmp_path, migrated_database):
    """Make an application on a fresh copy of the migrated database, with extra settings.

    Every application made in one test shares that test's database."""
    made = []

    def make(**overrides):
        if not SCALE_OUT:
            path = tmp_path / "portal.db"
            if not path.exists():
                shutil.copy(migrated_database, path)
            database = path
        else:
            if not made:
                made.append(migrated_database.copy())
            database = migrated_database.url(made[0])
        app = create_app({**base_config(database), **overrides})
        apps.append(app)
        return app

    apps = []
    if SCALE_OUT:
        import redis

        redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    yield make
    # Messages still being sent write their outcome to this test's database: let them.
    for thread in threading.enumerate():
        if thread.name == notifications.DELIVERY_THREAD:
            thread.join(timeout=15)
    for app in apps:
        with app.app_context():
            db.engine.dispose()
    if made:
        migrated_database.drop(made[0])


@pytest.fixture
def app(make_app):
    """The portal with test settings."""
    return make_app()


@pytest.fixture
def client(app):
    """A browser-like test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """The ``flask`` command line."""
    return app.test_cli_runner()


CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class Wizard:
    """Walks the setup wizard through the test client, as an administrator would."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def csrf(self, page: str = "/setup/method") -> str:
        """The session's CSRF token, read once from a page with a form."""
        if self.token is None:
            text = self.client.get(page, follow_redirects=True).text
            self.token = CSRF.search(text).group(1)
        return self.token

    def post(self, path: str, data: dict | None = None, follow: bool = False, page="/setup/method"):
        return self.client.post(
            path, data={"csrf_token": self.csrf(page), **(data or {})}, follow_redirects=follow
        )

    def open(self, link: str):
        """Open an invitation link and confirm on the page it shows."""
        self.token = None
        path = link.replace("http://localhost", "")
        page = self.client.get(path)
        match = CSRF.search(page.text)
        if page.status_code != 200 or match is None:
            return page
        return self.client.post(path, data={"csrf_token": match.group(1)}, follow_redirects=True)

    def to_tenant(
        self, method: str = "application", cloud: str = "worldwide", group: bool = False,
        scope: str = "rbac",
    ):  # fmt: skip
        data = {"method": method, "cloud": cloud}
        if method == "application":
            data |= {"mailbox_scope": "group" if group else "all", "group_scope_method": scope}
        self.post("/setup/method", data)
        if self.client.get("/setup/certificate").text.count("Make the certificate"):
            self.post("/setup/certificate/generate", {"validity": "365"})
        self.post("/setup/certificate")
        self.post("/setup/register")

    def enter_tenant(self, tenant: str, client_id: str, group: str = ""):
        """Step 4; a group's address counts only after ``to_tenant(group=True)``."""
        data = {"tenant_id": tenant, "client_id": client_id}
        if group:
            data |= {"security_group_email": group}
        return self.post("/setup/tenant", data)


SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
RECOVERY_CODE = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")


def totp_code(app, email: str) -> str:
    """The staff member's authenticator code for the next time step the portal has not yet
    accepted (it takes each step once, and the one before and after the current one)."""
    import time

    import pyotp

    from portal import staff

    with app.app_context():
        member = staff.find(email)
        secret, last = staff.totp_secret(member), member.totp_last_step or 0
    totp = pyotp.TOTP(secret)
    while True:
        now = time.time()
        for offset in (-1, 0, 1):
            if totp.timecode(now) + offset > last:
                return totp.at(now, counter_offset=offset)
        time.sleep(totp.interval - now % totp.interval)


def sign_in_staff(client, email: str, password: str):
    """Sign in to the support console as a browser would: the password, then the
    authenticator code, enrolling it first when the account has none (the recovery codes
    are then on ``client.recovery_codes``). Returns the last response."""
    import pyotp

    token = CSRF.search(client.get("/support/sign-in").text).group(1)
    response = client.post(
        "/support/sign-in", data={"csrf_token": token, "email": email, "password": password}
    )
    if response.status_code != 302:
        return response
    step = response.location
    page = client.get(step).text
    token = CSRF.search(page).group(1)  # the session is new: so is its token
    if step.endswith("/support/sign-in/enrol"):
        code = pyotp.TOTP(SECRET.search(page).group(1)).now()
        response = client.post(step, data={"csrf_token": token, "code": code})
        if response.status_code == 302:
            client.recovery_codes = RECOVERY_CODE.findall(client.get(response.location).text)
        return response
    code = totp_code(client.application, email)
    return client.post(step, data={"csrf_token": token, "code": code})


@pytest.fixture
def wizard(client):
    """A wizard helper on the test client."""
    return Wizard(client)


class Inbox(Sink):
    """What an SMTP server on 127.0.0.1 receives: ``messages``, aiosmtpd's envelopes."""

    def __init__(self, url: str):
        self.url = url
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def inbox():
    """An SMTP server on a free port of 127.0.0.1 for one test: its ``Inbox``, whose
    ``url`` is the portal's ``SMTP_URL``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox(f"smtp://127.0.0.1:{port}")
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox
    controller.stop()
    # aiosmtpd leaves the server side of the connection it makes to check that its server
    # started to the garbage collector: collected here, its unclosed socket is no warning
    # in whichever later test the collector would otherwise have run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The test CA and the stand-ins' server certificate, made once per run."""
    from tests.standins.tls import make_test_pki

    return make_test_pki(tmp_path_factory.mktemp("pki"))


class Standins:
    """Microsoft's identity platform and Graph on 127.0.0.1, with the demo tenant."""

    TENANT = "contoso.onmicrosoft.com"
    TENANT_GUID = "9188040d-6c67-4c5b-b112-36a304b66dad"
    CLIENT = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"

    def __init__(self, pki):
        from tests.standins.directory import Directory
        from tests.standins.server import start_standins

        self.pki = pki
        self.directory = Directory()
        self.identity, self.graph = start_standins(self.directory, pki)

    def settings(self) -> dict:
        """The portal settings that point it at the stand-ins."""
        return {
            "AUTHORITY_HOST": self.identity.url,
            "GRAPH_ENDPOINT": self.graph.url,
            "CA_BUNDLE": str(self.pki.bundle_path),
        }

    def seed(self, certificates: list[str], redirect_uris: list[str] = ()):
        """Add the demo tenant; its app registration knows ``certificates``."""
        from tests.standins.demo import seed_demo

        seed_demo(
            self.directory, certificates=list(certificates), redirect_uris=list(redirect_uris)
        )
        self.registration = self.directory.app(self.TENANT_GUID, self.CLIENT)
        return self.registration

    def stop(self):
        self.identity.stop()
        self.graph.stop()


@pytest.fixture
def standins(pki):
    """Fresh stand-ins (and a fresh directory) for one test."""
    world = Standins(pki)
    yield world
    world.stop()


@pytest.fixture
def invitation(app):
    """Invitation links for a managed and an on-premises institution, and the vendor cert."""
    return invitation_links(app)


def invitation_links(app) -> dict:
    """Make a managed and an on-premises institution and the vendor certificate in ``app``;
    return their invitation links."""
    from portal import certificates, invitations

    with app.app_context():
        certificates.create_vendor_certificate(365, "test")
        managed = invitations.create_institution("Example University", "managed", "a@x.edu", "t")
        on_premises = invitations.create_institution(
            "Example College", "on_premises", "b@x.edu", "t"
        )
        links = {
            "managed": invitations.issue_invitation(managed, "test"),
            "on_premises": invitations.issue_invitation(on_premises, "test"),
        }
        db.session.commit()
    return links
