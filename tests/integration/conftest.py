"""Integration fixtures: the timetable feed, a signed-in support console, a configuration
of the stand-ins' demo tenant, and helpers more than one test module needs.

Key generation is memoised, since RSA 3072 keys take a while to make and what is tested
here is what the portal does with them (the unit tests check the keys themselves)."""

import functools

import pytest

from portal import security
from tests.conftest import CSRF, sign_in_staff

PASSWORD = "correct horse battery staple"  # of the staff members the tests make


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


@pytest.fixture
def staff_member(app, runner):
    """A staff member made with the CLI, the address typed in mixed case; returns the
    address as the portal keeps it."""
    result = runner.invoke(
        args=["staff", "create", "Support@MyTimetable.example"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    return "support@mytimetable.example"


class Console:
    """A staff member's browser on the console."""

    def __init__(self, client):
        self.client = client

    def token(self, path="/support/sign-in"):
        return CSRF.search(self.client.get(path).text).group(1)

    def sign_in(self, email, password=PASSWORD):
        """Password and authenticator code (enrolled on the first sign-in)."""
        return sign_in_staff(self.client, email, password)

    def post(self, path, data=None):
        token = self.token("/support/")
        return self.client.post(path, data={"csrf_token": token, **(data or {})})

    def confirm(self, path, data=None):
        """Post ``path`` as its confirmation page's button does."""
        return self.post(path, {"confirmed": "yes", **(data or {})})


@pytest.fixture
def console(app, staff_member):
    """The staff member's browser, signed in to the console."""
    console = Console(app.test_client())
    assert console.sign_in(staff_member).status_code == 302
    return console


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


def add_own_events(directory, upn: str, portal_calendar: str) -> str:
    """Put two events of the mailbox owner's own beside the portal's: "Dentist" in the
    portal's calendar and "Lunch with Megan" in their default calendar, two days ahead.
    Returns the default calendar's ID."""
    from datetime import UTC, datetime, timedelta

    from tests.standins.events import new_event

    owner = directory.user_by_upn(upn)
    default = next(c["id"] for c in directory.calendars(owner) if c["isDefaultCalendar"])
    start = datetime.now(UTC) + timedelta(days=2)
    for calendar, subject in ((portal_calendar, "Dentist"), (default, "Lunch with Megan")):
        body = {
            "subject": subject,
            "start": {"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"},
            "end": {
                "dateTime": f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}",
                "timeZone": "UTC",
            },
        }
        directory.add_event(owner, calendar, new_event(body, owner.display_name, upn))
    return default


def administrator(app):
    """The administrator of ``app``'s one configuration, in through a fresh invitation
    link: a ``Wizard`` on a client of its own."""
    from portal import invitations
    from portal.extensions import db
    from portal.models import Configuration
    from tests.conftest import Wizard

    with app.app_context():
        institution = db.session.query(Configuration).one().institution
        link = invitations.issue_invitation(institution, "t")
        db.session.commit()
    admin = Wizard(app.test_client())
    admin.open(link)
    return admin
