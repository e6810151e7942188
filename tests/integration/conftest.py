"""Integration fixtures: key generation is memoised, since RSA 3072 keys take a while to
make and what is tested here is what the portal does with them (the unit tests check
the keys themselves)."""

import functools
import gc
import socket
import warnings

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from portal import security


@pytest.fixture(autouse=True, scope="session")
def _memoised_keys():
    original = security.generate_certificate
    security.generate_certificate = functools.lru_cache(maxsize=None)(original)
    yield
    security.generate_certificate = original


@pytest.fixture
def feed_server():
    """MyTimetable's iCalendar feed on 127.0.0.1 (see tests/integration/test_sync.py)."""
    from tests.integration.test_sync import FeedServer

    server = FeedServer()
    yield server
    server.server.shutdown()


class Inbox(Sink):
    """An SMTP server on 127.0.0.1 that keeps what it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    """An SMTP server on a free port of 127.0.0.1: (its controller, its inbox)."""
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, inbox
    controller.stop()
    # aiosmtpd leaves the server side of the connection it makes to check that its server
    # started to the garbage collector: collected here, its unclosed socket is no warning
    # in whichever later test the collector would otherwise have run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def configure(standins):
    """Give an application a configuration of the stand-ins' demo tenant, its vendor
    certificate uploaded to the demo app registration; returns the configuration's ID."""
    from portal import certificates, invitations
    from portal.extensions import db
    from portal.models import utcnow

    def make(app, *, method="application", status="approved", consented=True, **fields):
        with app.app_context():
            vendor = certificates.create_vendor_certificate(365, "test")
            institution = invitations.create_institution(
                fields.pop("name", "Contoso"), "managed", "it@contoso.edu", "test"
            )
            config = institution.configuration
            config.method, config.certificate, config.status = method, vendor, status
            config.tenant_id, config.client_id = standins.TENANT, standins.CLIENT
            config.verified_at, config.step_reached = utcnow(), 6
            for name, value in fields.items():
                setattr(config, name, value)
            db.session.commit()
            registration = standins.seed([vendor.public_pem], ["http://localhost/connect/callback"])
            registration.admin_consented = consented
            return config.id

    return make


@pytest.fixture
def group_app(make_app, standins, configure, feed_server):
    """An approved application configuration limited to the demo group by an access
    policy, Adele's and Megan's mailboxes provisioned and synchronised once."""
    from portal import provisioning
    from portal.extensions import db
    from portal.models import Configuration, Connection, SyncJob
    from portal.sync import SyncOutcome, engine
    from tests.integration.test_sync import ics, lessons

    app = make_app(**standins.settings())
    configure(
        app,
        security_group_email="mytimetable@contoso.edu",
        group_scope_method="access_policy",
        feed_url_template=f"{feed_server.url}/ical?user={{upn}}",
    )
    adele, megan = "adele.vance@contoso.edu", "megan.bowen@contoso.edu"
    feed_server.calendars[adele] = ics(*lessons(3))
    feed_server.calendars[megan] = ics(*lessons(2))
    with app.app_context():
        configuration = db.session.query(Configuration).one()
        assert provisioning.provision(configuration, [adele, megan], "test").added
        for connection in db.session.query(Connection):
            assert engine.run(connection).outcome == SyncOutcome.OK
        db.session.query(SyncJob).delete()
        db.session.commit()
    return app
