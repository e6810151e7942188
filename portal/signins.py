"""Sending a browser to Microsoft and remembering why, for the shared redirect URI.

The wizard (an administrator checking the configuration) and the connect pages (end
users, and an administrator granting consent for everyone) all start here; the flow or
the consent request is kept whole in the server-side session until Microsoft's answer
arrives at ``connect.callback``.
"""

import logging
import secrets

from flask import session

from .microsoft import identity
from .microsoft.clouds import cloud
from .microsoft.errors import MicrosoftError
from .models import Configuration
from .urls import redirect_uri

log = logging.getLogger(__name__)


def start_sign_in(
    configuration: Configuration,
    purpose: str,
    login_hint: str | None = None,
    prompt: str | None = None,
    **remember,
) -> str:
    """Begin the authorization code flow; return the address to send the browser to."""
    flow = identity.begin_sign_in(
        cloud(configuration.cloud),
        configuration.tenant_id,
        configuration.client_id,
        configuration.certificate,
        redirect_uri(),
        login_hint=login_hint,
        prompt=prompt,
    )
    session["sign_in"] = {
        "purpose": purpose,
        "flow": flow,
        "configuration_id": configuration.id,
        **remember,
    }
    return flow["auth_uri"]


def finish_sign_in(configuration: Configuration, flow: dict | None, args: dict):
    """Redeem Microsoft's answer to ``start_sign_in``; the account must belong to the
    configuration's tenant. Raises ``MicrosoftError``."""
    try:
        return identity.finish_sign_in(
            cloud(configuration.cloud),
            configuration.tenant_id,
            configuration.client_id,
            configuration.certificate,
            flow,
            args,
            expected_tenant=configuration.tenant_guid,
        )
    except MicrosoftError as error:
        log.warning(
            "Sign-in to %s did not complete: %s.",
            configuration.institution.slug,
            error.display_code or error.code,
        )
        raise


def start_admin_consent(configuration: Configuration, purpose: str) -> str:
    """Ask Microsoft for consent for the whole organisation; return where to send the browser."""
    state = secrets.token_urlsafe(24)
    session["admin_consent"] = {
        "state": state,
        "configuration_id": configuration.id,
        "purpose": purpose,
    }
    return identity.admin_consent_url(
        cloud(configuration.cloud),
        configuration.tenant_id,
        configuration.client_id,
        redirect_uri(),
        state,
    )
