"""Fixtures for the stand-ins' self-test.

The test PKI, the directory's signing key and the app's certificates are made once per
session; each test gets a fresh demo directory and its own pair of servers, so that what
one test consents to or revokes never leaks into another.
"""

from types import SimpleNamespace

import msal
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.standins import Directory, make_test_pki, seed_demo, start_standins
from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_CLIENT_ID
from tests.standins.identity import WORLDWIDE_GRAPH
from tests.standins_selftest.helpers import (
    REDIRECT_URI,
    Browser,
    CASession,
    GraphClient,
    access_token,
    make_credential,
)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def credential():
    """The certificate uploaded to the demo app."""
    return make_credential("MyTimetable Office 365 test")


@pytest.fixture(scope="session")
def stranger_credential():
    """A certificate nobody uploaded."""
    return make_credential("Not uploaded")


@pytest.fixture
def directory(signing_key, credential):
    """The demo directory, with the test certificate and redirect URI on the demo app."""
    directory = Directory(signing_key=signing_key)
    seed_demo(directory, certificates=[credential.cert_pem], redirect_uris=[REDIRECT_URI])
    return directory


@pytest.fixture
def standins(directory, pki):
    """Both stand-ins, running over the test's directory."""
    identity, graph = start_standins(directory, pki)
    yield SimpleNamespace(identity=identity, graph=graph)
    identity.stop()
    graph.stop()


@pytest.fixture
def http(pki):
    """A requests session that trusts the test CA.

    It trusts ca.pem alone rather than bundle.pem: werkzeug closes every connection and
    requests loads the CA file again for each new one, which for the system's bundle costs
    about 20 ms a request. A test of its own shows that bundle.pem works.
    """
    with CASession(pki.ca_path) as session:
        yield session


@pytest.fixture
def browser(http):
    return Browser(http)


@pytest.fixture
def make_msal(standins, http, credential):
    """Build a ConfidentialClientApplication against the identity stand-in, as the portal
    does (each call a new application, so MSAL's caches never carry over)."""

    def make(
        client_credential=None,
        tenant="contoso.onmicrosoft.com",
        client_id=DEMO_CLIENT_ID,
        http_client=None,
        client_claims=None,
    ):
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=client_credential or credential.with_certificate(),
            authority=f"{standins.identity.url}/{tenant}",
            instance_discovery=False,
            http_client=http_client or http,
            client_claims=client_claims,
        )

    return make


@pytest.fixture
def graph_client(directory, standins, http):
    """Graph clients for the demo app in Contoso: ``graph_client("Calendars.ReadWrite")`` is
    app-only with those roles; ``graph_client(user=upn)`` is delegated for that user (with
    ``scopes``, by default Calendars.ReadWrite and User.Read)."""

    def make(*roles: str, user: str | None = None, scopes=("Calendars.ReadWrite", "User.Read")):
        if user is None:
            principal = directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID).service_principal_id
            claims = {"idtyp": "app", "oid": principal}
            if roles:  # as Entra, which leaves the claim out when nothing was consented
                claims["roles"] = list(roles)
        else:
            person = directory.user_by_upn(user)
            claims = {"idtyp": "user", "oid": person.object_id, "scp": " ".join(scopes)}
        token = access_token(
            directory, WORLDWIDE_GRAPH, CONTOSO_TENANT_ID, DEMO_CLIENT_ID, **claims
        )
        return GraphClient(http, standins.graph.url, token)

    return make
