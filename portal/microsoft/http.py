"""The HTTP session MSAL and Graph requests go through, one per application.

Requests lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify``; the portal's own CA
setting (``PORTAL_CA_BUNDLE``) is therefore passed on every request, together with a
timeout, so a hung Microsoft endpoint never hangs a page.
"""

import requests
import requests.adapters
from flask import current_app

EXTENSION = "portal.microsoft.http"


class MicrosoftSession(requests.Session):
    """A ``requests.Session`` with the portal's CA bundle and timeout as defaults."""

    def __init__(self, ca_bundle: str | None, timeout: float, connections: int = 10):
        super().__init__()
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.headers["User-Agent"] = "MyTimetable-Office365-Portal"
        # One pool of kept-alive connections per host (Graph's, the sign-in host), shared by
        # every thread of the process: as many as the mailboxes a sync runner has in flight.
        self.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=connections))

    def request(self, method, url, **kwargs):
        """Send a request with the portal's CA bundle and timeout unless given."""
        if self.ca_bundle:
            kwargs.setdefault("verify", self.ca_bundle)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, **kwargs)


def init_app(app) -> None:
    """Give the application its session (tests may replace it, e.g. with betamax)."""
    app.extensions[EXTENSION] = MicrosoftSession(
        app.config["CA_BUNDLE"],
        app.config["HTTP_TIMEOUT"],
        max(10, app.config.get("SYNC_CONCURRENCY", 16) + 4),
    )


def session() -> requests.Session:
    """The current application's session to Microsoft."""
    return current_app.extensions[EXTENSION]
