"""Server-side sessions: the cookie holds only a random ID; the data stays on the server."""

import os

import pytest
import redis

from portal.extensions import db
from portal.models import ServerSession
from tests.conftest import Wizard, invitation_links

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def test_session_lives_in_the_database_by_default(make_app):
    app = make_app(REDIS_URL=None)  # the embedded default, also in the scale-out pass
    wizard = Wizard(app.test_client())
    wizard.open(invitation_links(app)["managed"])
    cookie = wizard.client.get_cookie("portal_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    with app.app_context():
        assert db.session.query(ServerSession).count() == 1
    assert "invitation_id" not in cookie.value


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # .ci/run starts Redis on 127.0.0.1:6379
    client.flushdb()
    yield client
    client.flushdb()


def test_session_lives_in_redis_when_configured(make_app, redis_client, invitation):
    from tests.conftest import Wizard

    app = make_app(REDIS_URL=REDIS_URL)
    wizard = Wizard(app.test_client())
    page = wizard.open(invitation["managed"])
    assert page.request.path == "/setup/start"
    keys = redis_client.keys("portal:session:*")
    assert len(keys) == 1
    with app.app_context():
        assert db.session.query(ServerSession).count() == 0
    wizard.post("/setup/method", {"method": "delegated", "cloud": "worldwide"})
    assert wizard.client.get("/setup/", follow_redirects=True).request.path == "/setup/certificate"


def test_opening_an_invitation_gives_the_browser_a_new_session_id(wizard, invitation):
    wizard.client.get("/")
    wizard.client.get("/setup/i/unknown")
    wizard.open(invitation["managed"])
    first = wizard.client.get_cookie("portal_session").value
    wizard.open(invitation["on_premises"])
    second = wizard.client.get_cookie("portal_session").value
    assert first != second
    assert "Example College" in wizard.client.get("/setup/method").text
