"""The provisioning API's operations. Each parses its request, calls the same service
functions the wizard's mailbox page uses (``portal.provisioning``) and the job queue, and
answers JSON; every error is a problem details answer (``problems``)."""

import hashlib
import re
from http import HTTPStatus

from flask import abort, current_app, g, request
from flask.views import MethodView
from sqlalchemy import func, select

from .. import api_keys, provisioning
from ..extensions import db, limiter
from ..microsoft import graph
from ..microsoft.errors import ADVICE, PORTAL_CODES, MicrosoftError
from ..models import Connection, ConnectionStatus, Method, Status
from ..sync import jobs
from . import bp, problems
from .problems import DESCRIPTIONS, MEDIA_TYPE, ProblemType
from .schemas import (
    ADDRESS_PARAMETER,
    MAX_ADDRESS,
    Action,
    BatchAnswerSchema,
    BatchSchema,
    MailboxListArgs,
    MailboxPageSchema,
    MailboxSchema,
    Outcome,
    ProblemSchema,
    ProblemTypeSchema,
    RemovalSchema,
    RemoveArgs,
    SyncQueuedSchema,
    is_address,
)

PUBLIC = frozenset({"api.problem_type"})  # served without a key
# "Code: words", as the sync stores a Microsoft error it stopped on.
_CODED = re.compile(r"(AADSTS\d+|[A-Za-z][A-Za-z0-9_]*(?:/[a-z]+)?): (.+)", re.S)


def _rate_key() -> str:
    """Requests are counted per API key (its hash: the key itself is kept nowhere)."""
    _, _, key = request.headers.get("Authorization", "").partition(" ")
    return "api:" + hashlib.sha256(key.strip().encode()).hexdigest()


limiter.limit(lambda: current_app.config["API_RATE_LIMIT"], key_func=_rate_key)(bp)


def _documented(*codes: int):
    """Document the problem details answers an operation can give."""

    def decorate(view):
        for code in codes:
            headers = None
            if code in (429, 503):
                headers = {
                    "Retry-After": {
                        "description": "Seconds to wait before asking again.",
                        "schema": {"type": "integer"},
                    }
                }
            view = bp.alt_response(
                code,
                schema=ProblemSchema,
                content_type=MEDIA_TYPE,
                description=HTTPStatus(code).phrase,
                headers=headers,
            )(view)
        return view

    return decorate


# Every operation with a key can answer these.
COMMON = (401, 409, 429)


@bp.before_request
def authenticate():
    """The key names the institution; its configuration must be an approved one with
    application permissions."""
    if request.endpoint in PUBLIC or request.endpoint is None:
        return None
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    row = api_keys.find(key.strip()) if scheme.lower() == "bearer" else None
    if row is None:
        return problems.response(
            401,
            ProblemType.UNAUTHORIZED,
            "Send 'Authorization: Bearer <key>' with a key made in the support console.",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    configuration = row.institution.configuration
    if configuration is None or configuration.method != Method.APPLICATION:
        return problems.response(409, ProblemType.NOT_APPLICATION)
    if configuration.status != Status.APPROVED:
        return problems.response(409, ProblemType.NOT_APPROVED)
    api_keys.used(row)
    db.session.commit()
    g.api_key, g.configuration = row, configuration
    return None


def _actor() -> str:
    return f"API key {g.api_key.name} ({g.api_key.prefix}…)"


def _address(address: str) -> str:
    """The path's address, or a 400 problem."""
    if not is_address(address):
        abort(
            problems.response(
                400,
                ProblemType.INVALID_ADDRESS,
                "The path must end in a mailbox address, such as adele.vance@contoso.edu.",
                address=address[:MAX_ADDRESS],
            )
        )
    return address


def _connection(address: str) -> Connection:
    """The institution's synchronisation of this mailbox, in any state, or a 404 problem."""
    connection = provisioning.find(g.configuration, _address(address))
    if connection is None:
        abort(problems.response(404, ProblemType.MAILBOX_NOT_FOUND, address=address))
    return connection


def _microsoft_failed(error: MicrosoftError):
    """Microsoft did not answer or asked to wait: 503 with its Retry-After. Microsoft
    refused the portal's own sign-in for the institution (its certificate, its consent):
    409, until support or the administrator puts the configuration right."""
    if not graph.transient(error):
        return problems.response(
            409,
            ProblemType.SIGN_IN_REFUSED,
            str(error.advice.cause),
            microsoft_code=error.display_code or error.code,
        )
    wait = error.retry_after if error.retry_after is not None else 30
    return problems.response(
        503,
        ProblemType.MICROSOFT_UNAVAILABLE,
        error.message,
        headers={"Retry-After": str(max(1, round(wait)))},
    )


def problem_of(connection: Connection) -> dict | None:
    """The last problem of the synchronisation in plain words, and Microsoft's code."""
    text = connection.last_error
    if not text:
        return None
    if text in ADVICE and text not in PORTAL_CODES:  # only a code was kept
        return {"message": str(ADVICE[text].cause), "microsoft_code": text}
    match = _CODED.fullmatch(text)
    if match and match.group(1) not in PORTAL_CODES:
        return {"message": match.group(2), "microsoft_code": match.group(1)}
    return {"message": match.group(2) if match else text, "microsoft_code": None}


def mailbox(connection: Connection) -> dict:
    """A connection as the API shows it."""
    return {
        "address": connection.upn,
        "state": ConnectionStatus(connection.status),
        "calendar": connection.calendar_name,
        "last_sync_at": connection.last_sync_at,
        "last_sync_outcome": connection.last_sync_outcome,
        "events": connection.event_count,
        "last_run": {
            "created": connection.last_created,
            "updated": connection.last_updated,
            "deleted": connection.last_deleted,
            "failed": connection.last_failed,
        },
        "problem": problem_of(connection),
        "sync_queued": jobs.waiting(connection) is not None,
    }


@bp.route("/mailboxes")
class Mailboxes(MethodView):
    """The institution's provisioned mailboxes."""

    @bp.arguments(MailboxListArgs, location="query")
    @bp.response(200, MailboxPageSchema)
    @_documented(*COMMON, 422)
    def get(self, args):
        """List the mailboxes

        By address, a page at a time; state keeps those in one state.
        """
        query = select(Connection).where(Connection.configuration_id == g.configuration.id)
        if args.get("state"):
            query = query.where(Connection.status == args["state"])
        total = db.session.scalar(select(func.count()).select_from(query.subquery()))
        page, per_page = args["page"], args["per_page"]
        rows = db.session.scalars(
            query.order_by(func.lower(Connection.upn), Connection.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        return {
            "items": [mailbox(c) for c in rows],
            "page": page,
            "per_page": per_page,
            "total": total,
        }


@bp.route("/mailboxes/<address>", parameters=[ADDRESS_PARAMETER])
class MailboxResource(MethodView):
    """One mailbox, by its address (user principal name)."""

    @bp.response(200, MailboxSchema)
    @_documented(*COMMON, 400, 404)
    def get(self, address):
        """Show a mailbox

        Its state, its last synchronisation and, when it had one, its last problem in
        plain words with Microsoft's code.
        """
        return mailbox(_connection(address))

    @bp.response(201, MailboxSchema, description="Provisioned now.")
    @bp.alt_response(200, schema=MailboxSchema, description="Provisioned already.", success=True)
    @_documented(*COMMON, 400, 422, 503)
    def put(self, address):
        """Provision a mailbox

        Makes the portal's calendar in the mailbox and queues its first synchronisation.
        Idempotent: 201 when provisioned now, 200 when it was already. A mailbox Microsoft
        refuses is answered 422 with the reason.
        """
        address = _address(address)
        try:
            outcome = provisioning.provision(g.configuration, [address], _actor())
        except MicrosoftError as error:
            db.session.rollback()
            return _microsoft_failed(error)
        if outcome.refused:
            _, code, why = outcome.refused[0]
            return problems.response(
                422,
                ProblemType.MAILBOX_REFUSED,
                str(why),
                address=address,
                reason=outcome.reasons[address],
                microsoft_code=code,
            )
        connection = provisioning.find(g.configuration, address)
        return mailbox(connection), 201 if outcome.added else 200

    @bp.arguments(RemoveArgs, location="query")
    @bp.response(200, RemovalSchema)
    @_documented(*COMMON, 400, 404, 422, 503)
    def delete(self, args, address):
        """End a mailbox's synchronisation

        Removes only the events the portal wrote (the calendar and everything else in the
        mailbox stay), or with remove_calendar=true the portal's calendar. When
        Microsoft refuses (the mailbox left the group or has gone), the synchronisation
        ends all the same and microsoft_code says why nothing was removed.
        """
        connection = _connection(address)
        try:
            removal = provisioning.deprovision(
                g.configuration, connection, args["remove_calendar"], _actor()
            )
        except MicrosoftError as error:
            db.session.rollback()
            return _microsoft_failed(error)
        return {
            "address": connection.upn,
            "state": ConnectionStatus(connection.status),
            "removed": removal.removed,
            "events_removed": removal.events_removed,
            "microsoft_code": removal.code,
        }


@bp.route("/mailboxes/<address>/sync", methods=["POST"], parameters=[ADDRESS_PARAMETER])
@bp.response(202, SyncQueuedSchema)
@_documented(*COMMON, 400, 404)
def sync_now(address):
    """Synchronise a mailbox now

    Queues a synchronisation (one waits at most per mailbox); 409 once the mailbox's
    synchronisation has ended.
    """
    connection = _connection(address)
    if connection.status != ConnectionStatus.CONNECTED:
        return problems.response(409, ProblemType.MAILBOX_NOT_SYNCHRONISED, address=connection.upn)
    job = jobs.enqueue(connection, "api")
    db.session.flush()
    queued_at = job.queued_at
    db.session.commit()
    return {"address": connection.upn, "queued_at": queued_at}


@bp.route("/mailboxes:batch", methods=["POST"])
@bp.arguments(BatchSchema)
@bp.response(200, BatchAnswerSchema)
@_documented(*COMMON, 422, 503)
def batch(data):
    """Add and remove many mailboxes

    Up to 1,000 addresses in all; each is answered on its own, in the order given (adds
    first): added, already, refused (with the reason), removed, not_found, invalid, or
    failed (Microsoft did not answer in time: send it again).
    """
    configuration = g.configuration
    results = []
    valid = [a for a in data["add"] if is_address(a)]
    try:
        outcome = provisioning.provision(configuration, valid, _actor()) if valid else None
    except MicrosoftError as error:
        db.session.rollback()
        return _microsoft_failed(error)
    refused = {upn: (code, why) for upn, code, why in outcome.refused} if outcome else {}
    added = set(outcome.added) if outcome else set()
    for address in data["add"]:
        if not is_address(address):
            results.append(_result(address, Action.ADD, Outcome.INVALID))
        elif address in refused:
            code, why = refused[address]
            reason = outcome.reasons[address]
            results.append(_result(address, Action.ADD, Outcome.REFUSED, reason, code, str(why)))
        elif address in added:
            added.discard(address)  # a second mention of it was already there
            results.append(_result(address, Action.ADD, Outcome.ADDED))
        else:
            results.append(_result(address, Action.ADD, Outcome.ALREADY))
    for address in data["remove"]:
        results.append(_remove(address, data["remove_calendar"]))
    return {"results": results}


def _remove(address: str, remove_calendar: bool) -> dict:
    if not is_address(address):
        return _result(address, Action.REMOVE, Outcome.INVALID)
    connection = provisioning.find(g.configuration, address)
    if connection is None or connection.status == ConnectionStatus.DISCONNECTED:
        return _result(address, Action.REMOVE, Outcome.NOT_FOUND)
    try:
        removal = provisioning.deprovision(g.configuration, connection, remove_calendar, _actor())
    except MicrosoftError as error:
        db.session.rollback()
        return _result(address, Action.REMOVE, Outcome.FAILED, None, None, error.message)
    detail = f"{removal.removed}" + (
        f": {removal.events_removed} events" if removal.removed == "events" else ""
    )
    return _result(address, Action.REMOVE, Outcome.REMOVED, None, removal.code, detail)


def _result(address, action, outcome, reason=None, code=None, detail=None) -> dict:
    return {
        "address": address,
        "action": action,
        "outcome": outcome,
        "reason": reason,
        "microsoft_code": code,
        "detail": detail,
    }


@bp.route("/problems/<kind>")
@bp.response(200, ProblemTypeSchema)
@_documented(404, 429)
@bp.doc(security=[])
def problem_type(kind):
    """Describe a problem type

    What a problem details answer of this type means (its type URI); no key needed.
    """
    if kind not in set(ProblemType):
        abort(404)
    title, description = DESCRIPTIONS[ProblemType(kind)]
    return {
        "type": problems.type_uri(ProblemType(kind)),
        "title": title,
        "description": description,
    }
