"""What the provisioning API takes and answers, as marshmallow schemas; flask-smorest
makes the OpenAPI document's schemas from them."""

import re
from enum import StrEnum

import marshmallow as ma
from marshmallow import validate

from ..models import ConnectionStatus
from ..provisioning import Refusal, Removed

MAX_BATCH = 1000
MAX_PAGE = 500
MAX_ADDRESS = 320
# A mailbox address as the API takes it, the document's pattern and the API's rule in one:
# a user principal name, which Graph finds a mailbox by: a local part of the characters
# Microsoft Entra allows in one (A-Z, a-z, 0-9 and ' . - _ ! # ^ ~, "UserPrincipalName
# population" in Entra Connect's documentation; so no "%", which a URL path would read as
# an escape) in dot-atom form, and a domain name. Written without look-ahead, so it is the
# same in every regular expression dialect the document's readers use; Microsoft answers
# a local part over 64 characters as an unknown user, as any address it does not know.
_ATEXT = "[a-zA-Z0-9'_!#^~-]"
_LABEL = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
ADDRESS_PATTERN = rf"^{_ATEXT}+(\.{_ATEXT}+)*@({_LABEL}\.)+[a-zA-Z]{{2,63}}$"
_ADDRESS = re.compile(ADDRESS_PATTERN.removesuffix("$") + r"\Z")


def is_address(value: str) -> bool:
    """Whether the API takes ``value`` as a mailbox address (``ADDRESS_PATTERN``)."""
    return len(value) <= MAX_ADDRESS and _ADDRESS.match(value) is not None


ADDRESS_PARAMETER = {
    "in": "path",
    "name": "address",
    "required": True,
    "description": "The mailbox's address (user principal name), such as adele.vance@contoso.edu.",
    "schema": {"type": "string", "pattern": ADDRESS_PATTERN, "maxLength": MAX_ADDRESS},
}


class Outcome(StrEnum):
    """What became of one address of a batch."""

    ADDED = "added"
    ALREADY = "already"
    REFUSED = "refused"  # Microsoft refused the mailbox: see reason
    REMOVED = "removed"
    NOT_FOUND = "not_found"  # nothing to remove: no synchronisation for the address
    INVALID = "invalid"  # not a mailbox address
    FAILED = "failed"  # Microsoft did not answer in time: send it again later


class Action(StrEnum):
    """What a batch asked for an address."""

    ADD = "add"
    REMOVE = "remove"


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details; the API's own problems add members."""

    type = ma.fields.String(required=True, metadata={"description": "The problem's type URI."})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String()
    instance = ma.fields.String()
    address = ma.fields.String(metadata={"description": "The mailbox address concerned."})
    reason = ma.fields.Enum(
        Refusal, by_value=True, metadata={"description": "Why Microsoft refused it."}
    )
    microsoft_code = ma.fields.String(metadata={"description": "Microsoft's error code."})
    errors = ma.fields.Dict(metadata={"description": "What is wrong in which parameter."})


class MailboxProblemSchema(ma.Schema):
    """The last problem of a mailbox's synchronisation."""

    message = ma.fields.String(required=True, metadata={"description": "In plain words."})
    microsoft_code = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "Microsoft's error code."}
    )


class MailboxSchema(ma.Schema):
    """A provisioned mailbox and its synchronisation."""

    address = ma.fields.String(required=True)
    state = ma.fields.Enum(
        ConnectionStatus,
        by_value=True,
        required=True,
        metadata={
            "description": "connected: synchronised; mailbox_not_found, outside_group: "
            "Microsoft answered that the mailbox is gone or outside the group the app is "
            "limited to, so it is no longer retried (a PUT brings it back once Microsoft "
            "accepts it); disconnected: its synchronisation was ended."
        },
    )
    calendar = ma.fields.String(required=True, allow_none=True)
    last_sync_at = ma.fields.DateTime(required=True, allow_none=True)
    last_sync_outcome = ma.fields.String(required=True, allow_none=True)
    events = ma.fields.Integer(
        required=True, metadata={"description": "Events the portal keeps in the calendar."}
    )
    last_run = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        required=True,
        metadata={"description": "The last run's created, updated, deleted and failed."},
    )
    problem = ma.fields.Nested(MailboxProblemSchema, required=True, allow_none=True)
    sync_queued = ma.fields.Boolean(
        required=True, metadata={"description": "A synchronisation waits to run."}
    )


class MailboxListArgs(ma.Schema):
    """Paging and the state filter of the mailbox list."""

    state = ma.fields.Enum(ConnectionStatus, by_value=True)
    page = ma.fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))


class MailboxPageSchema(ma.Schema):
    """One page of mailboxes, by address."""

    items = ma.fields.List(ma.fields.Nested(MailboxSchema), required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)


class RemoveArgs(ma.Schema):
    """How much of the portal's to take out of the mailbox."""

    remove_calendar = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "Remove the portal's calendar (and all in it) instead of only the "
            "events the portal wrote."
        },
    )


class RemovalSchema(ma.Schema):
    """What ending a mailbox's synchronisation took out of it."""

    address = ma.fields.String(required=True)
    state = ma.fields.Enum(ConnectionStatus, by_value=True, required=True)
    removed = ma.fields.Enum(Removed, by_value=True, required=True)
    events_removed = ma.fields.Integer(required=True)
    microsoft_code = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Microsoft's code when it refused the removal."},
    )


class SyncQueuedSchema(ma.Schema):
    """A synchronisation asked for."""

    address = ma.fields.String(required=True)
    queued_at = ma.fields.DateTime(required=True)


class BatchSchema(ma.Schema):
    """Addresses to add and to remove, at most 1,000 in all."""

    add = ma.fields.List(ma.fields.String(validate=validate.Length(max=320)), load_default=list)
    remove = ma.fields.List(ma.fields.String(validate=validate.Length(max=320)), load_default=list)
    remove_calendar = ma.fields.Boolean(load_default=False)

    @ma.validates_schema
    def at_most_a_thousand(self, data, **_):
        """A batch holds at most ``MAX_BATCH`` addresses in all."""
        count = len(data.get("add", [])) + len(data.get("remove", []))
        if count > MAX_BATCH:
            raise ma.ValidationError(
                f"A batch holds at most {MAX_BATCH} addresses; this one has {count}.", "_schema"
            )


class BatchResultSchema(ma.Schema):
    """What became of one address of a batch."""

    address = ma.fields.String(required=True)
    action = ma.fields.Enum(Action, by_value=True, required=True)
    outcome = ma.fields.Enum(Outcome, by_value=True, required=True)
    reason = ma.fields.Enum(Refusal, by_value=True, allow_none=True, required=True)
    microsoft_code = ma.fields.String(required=True, allow_none=True)
    detail = ma.fields.String(required=True, allow_none=True)


class BatchAnswerSchema(ma.Schema):
    """Each address's outcome, in the order asked."""

    results = ma.fields.List(ma.fields.Nested(BatchResultSchema), required=True)


class ProblemTypeSchema(ma.Schema):
    """What a problem type means."""

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
