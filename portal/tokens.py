"""Graph access tokens for a connection's mailbox.

A module of its own so that the sync engine can ask for a token without importing
``connections`` (which queues syncs, and so imports the sync): the tokens sit below both.
A delegated connection's token comes from its user's stored sign-in (the MSAL token cache,
encrypted in the database); an application connection's from the client credentials flow.
"""

from . import reminders, security
from .extensions import db
from .microsoft import identity
from .microsoft.errors import MicrosoftError
from .models import Connection, ConnectionStatus, Method


def user_token(connection: Connection, fresh: bool = False) -> str:
    """A Graph token for the connection's user (``fresh``: a new one, since Graph refused
    the last); marks it as needing to reconnect if the stored sign-in no longer works."""
    if connection.token_cache_encrypted is None:
        raise MicrosoftError("invalid_grant", "This connection was disconnected.")
    configuration = connection.configuration
    cache = security.decrypt(connection.token_cache_encrypted).decode()
    try:
        token = identity.user_token(identity.registration(configuration), cache, fresh=fresh)
    except MicrosoftError as error:
        if error.code != "unreachable":
            newly = connection.status == ConnectionStatus.CONNECTED
            connection.status = ConnectionStatus.NEEDS_RECONNECT
            connection.last_error = error.display_code or error.code
            connection.last_error_code, connection.last_error_ids = error.code, error.trace
            if newly:
                reminders.ask_to_reconnect(connection)
            db.session.commit()
        raise
    if token.token_cache is not None:
        connection.token_cache_encrypted = security.encrypt(token.token_cache.encode())
        db.session.commit()
    return token.access_token


def mailbox_token(connection: Connection, fresh: bool = False) -> str:
    """A token to write the connection's mailbox with: its user's for a delegated
    connection, the application's own otherwise."""
    configuration = connection.configuration
    if configuration.method == Method.DELEGATED:
        return user_token(connection, fresh=fresh)
    return identity.app_token(identity.registration(configuration), fresh=fresh)
