"""Microsoft refusing one of an application configuration's mailboxes, in one
classification for provisioning (the reason it answers with) and for the sync (the state
a connection goes into, after which it is not retried until provisioned again)."""

from enum import StrEnum

from .models import Configuration, ConnectionStatus


class Refusal(StrEnum):
    """Why Microsoft refused a mailbox, in the words the API answers with."""

    OUTSIDE_GROUP = "outside_group"  # outside the access policy or RBAC scope's group
    NO_MAILBOX = "no_mailbox"  # no Exchange Online mailbox: unlicensed, on-premises, guest
    UNKNOWN_USER = "unknown_user"  # no such user in the tenant
    ACCESS_DENIED = "access_denied"  # the app may not write calendars at all
    OTHER = "other"


_REFUSALS = {
    "MailboxNotEnabledForRESTAPI": Refusal.NO_MAILBOX,
    "ErrorInvalidUser": Refusal.UNKNOWN_USER,
    "ResourceNotFound": Refusal.UNKNOWN_USER,
    "Request_ResourceNotFound": Refusal.UNKNOWN_USER,
}


def refusal(configuration: Configuration, code: str) -> Refusal:
    """The reason behind a Graph error code for one of ``configuration``'s mailboxes: an
    app limited to a group is refused a mailbox outside it with ErrorAccessDenied
    (auth-limit-mailbox-access.md), as it is every mailbox without the permission."""
    if code == "ErrorAccessDenied":
        limited = bool(configuration.security_group_email)
        return Refusal.OUTSIDE_GROUP if limited else Refusal.ACCESS_DENIED
    return _REFUSALS.get(code, Refusal.OTHER)


_STATES = {
    Refusal.OUTSIDE_GROUP: ConnectionStatus.OUTSIDE_GROUP,
    Refusal.NO_MAILBOX: ConnectionStatus.MAILBOX_NOT_FOUND,
    Refusal.UNKNOWN_USER: ConnectionStatus.MAILBOX_NOT_FOUND,
}


def out_of_reach(configuration: Configuration, code: str) -> ConnectionStatus | None:
    """The state a mailbox goes into when Graph answers ``code`` for it: gone or outside
    the group, which retrying cannot change; None for any other answer (an app refused
    every mailbox is the configuration's problem, not the mailbox's)."""
    return _STATES.get(refusal(configuration, code))
