"""Stand-ins for Microsoft's identity platform (Entra ID) and Microsoft Graph.

Two Flask applications over one shared ``Directory`` (tenants, app registrations, users,
mailboxes), served over https on 127.0.0.1 with a test CA, so that MSAL and the portal can
be driven end to end without a Microsoft tenant::

    pki = make_test_pki(tmp_path)
    directory = Directory()
    ids = seed_demo(directory, certificates=[cert_pem], redirect_uris=[callback])
    identity, graph = start_standins(directory, pki)
    ...  # authority f"{identity.url}/{ids['tenant_domain']}", Graph at graph.url
    identity.stop(); graph.stop()

``python -m tests.standins`` serves the demo directory by hand.
"""

from .demo import seed_demo
from .directory import AppRegistration, Directory, Group, Tenant, User
from .graph import create_graph_app
from .identity import create_identity_app
from .server import StandinServer, start_standins
from .tls import TestPKI, make_test_pki

__all__ = [
    "AppRegistration",
    "Directory",
    "Group",
    "StandinServer",
    "Tenant",
    "TestPKI",
    "User",
    "create_graph_app",
    "create_identity_app",
    "make_test_pki",
    "seed_demo",
    "start_standins",
]
