"""Microsoft's national clouds: where to sign in, where Graph lives, which portal to use.

``PORTAL_AUTHORITY_HOST`` and ``PORTAL_GRAPH_ENDPOINT`` replace a cloud's hosts (for
stand-ins or a proxy); everything else in the portal asks this module for a host. They
change where requests go, never what is asked for: scopes name Graph by the cloud's
resource identifier (Microsoft Graph national cloud deployments), which no setting moves.
"""

from dataclasses import dataclass, replace

from flask import current_app

from ..i18n import lazy_gettext as _l


@dataclass(frozen=True)
class Cloud:
    """One Microsoft cloud's endpoints and the names administrators know it by."""

    key: str
    label: str
    authority_host: str
    graph_endpoint: str  # where Graph's requests are sent
    graph_resource: str  # Graph's resource identifier (application ID URI) in this cloud
    entra_portal: str
    exchange_environment: str  # Connect-ExchangeOnline -ExchangeEnvironmentName

    @property
    def graph_default_scope(self) -> str:
        """The ``.default`` scope of Graph in this cloud (client credentials, admin consent):
        the resource identifier affixed with ``/.default``."""
        return f"{self.graph_resource}/.default"

    def graph_scopes(self, permissions) -> list[str]:
        """Delegated Graph permissions as scopes qualified by Graph's resource identifier."""
        return [f"{self.graph_resource}/{permission}" for permission in permissions]


CLOUDS: dict[str, Cloud] = {
    c.key: c
    for c in (
        Cloud(
            "worldwide",
            _l("Worldwide (Microsoft 365)"),
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
            "https://graph.microsoft.com",
            "https://entra.microsoft.com",
            "O365Default",
        ),
        Cloud(
            "usgov",
            _l("US Government (GCC High, L4)"),
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
            "https://graph.microsoft.us",
            "https://entra.microsoft.us",
            "O365USGovGCCHigh",
        ),
        Cloud(
            "usgov_dod",
            _l("US Government (DoD, L5)"),
            "https://login.microsoftonline.us",
            "https://dod-graph.microsoft.us",
            "https://dod-graph.microsoft.us",
            "https://entra.microsoft.us",
            "O365USGovDoD",
        ),
        Cloud(
            "china",
            _l("China (operated by 21Vianet)"),
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://portal.azure.cn",
            "O365China",
        ),
    )
}


def cloud(key: str) -> Cloud:
    """The cloud named ``key``, with the hosts overridden by the portal's settings."""
    base = CLOUDS[key]
    authority = current_app.config.get("AUTHORITY_HOST")
    graph = current_app.config.get("GRAPH_ENDPOINT")
    if not authority and not graph:
        return base
    return replace(
        base,
        authority_host=(authority or base.authority_host).rstrip("/"),
        graph_endpoint=(graph or base.graph_endpoint).rstrip("/"),
    )


def overridden() -> bool:
    """True when the hosts point somewhere other than Microsoft (MSAL's instance check is off)."""
    return bool(current_app.config.get("AUTHORITY_HOST"))
