"""Group following: every member of the configuration's security group is synchronised.

Every ``PORTAL_GROUP_FOLLOW_MINUTES`` (60 by default) a pass per configuration that
follows its group (``Configuration.follow_group``) reads the group's members through
Graph, provisions those not yet synchronised (``provisioning.provision``, so Microsoft's
refusals are named as anywhere else) and ends the synchronisation of the mailboxes that
left the group: those a pass saw as members before (``Connection.followed``), taking out
of each what ``Configuration.leaver_removal`` says. A mailbox added by hand that is not a
member is left alone. However many runners ask, on however many machines, one pass runs
per configuration per period (``jobs.take_turn``).

A pass that would end more synchronisations than ``PORTAL_GROUP_FOLLOW_MAX_REMOVALS``
allows (10 % of the group by default, at least 20) ends none of them: it is held, with the
list, until the administrator or support confirms it (they end) or cancels it (they stay,
no longer counted as the group's). A later pass replaces a list still held by its own.

Each pass reads the group's whole transitive membership (``transitiveMembers``, 999 a
page) rather than following Graph's delta query for groups (``/groups/delta`` with
``members@delta``, group-delta.md and delta-query-groups.md): the delta names direct
members only, so a change inside a nested group would go unseen, and it names them by
object ID alone, which needs a further application permission (User.ReadBasic.All) to turn
into the addresses mailboxes are known by. The full read costs one request per 999
members per period.
"""

import logging
import threading
from datetime import timedelta

from flask import Flask, current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import delete, select, update

from . import provisioning
from .extensions import db
from .microsoft.errors import MicrosoftError
from .models import (
    Configuration,
    Connection,
    ConnectionStatus,
    GroupPass,
    Method,
    PassState,
    Status,
    record,
    utcnow,
)
from .sync import jobs

log = logging.getLogger(__name__)

ACTOR = "group following"
# How long a pass is kept for the pages (a list still held is kept until decided).
KEPT = timedelta(days=30)
LEAVER_REMOVALS = ("events", "calendar")  # what ``Configuration.leaver_removal`` may say
# A member Microsoft refused (no Exchange Online mailbox, outside the app's reach) is asked
# about again this long after it was first refused, not every pass: a group with members
# who have no mailbox would otherwise cost a request each and an audit line every hour.
ASK_REFUSED_AGAIN = timedelta(days=1)


class PassError(Exception):
    """The held removals were decided already, or a later pass replaced them."""


def schedule_name(configuration_id: int) -> str:
    """The ``sync_schedule`` row that says when the configuration's next pass is due."""
    return f"group:{configuration_id}"


def follow(configuration: Configuration, actor: str = ACTOR) -> GroupPass:
    """Run one pass of group following for ``configuration`` and return its record."""
    started = utcnow()
    try:
        members = {upn.lower(): upn for upn in provisioning.group_upns(configuration)}
    except MicrosoftError as error:
        return _failed(configuration, started, error, actor)
    before = _connections(configuration)
    group_size = sum(1 for c in before if c.followed and c.status != ConnectionStatus.DISCONNECTED)
    current = {}
    for connection in before:
        current.setdefault(connection.upn.lower(), connection)
    # Refused recently: carried into this pass's list as they were, not asked again yet.
    carried = {
        upn.lower(): [upn, code, since]
        for upn, code, since in _refusals(configuration)
        if upn.lower() in members and since > (started - ASK_REFUSED_AGAIN).isoformat()
    }
    joining = [
        upn
        for key, upn in members.items()
        if key not in carried
        and (key not in current or current[key].status != ConnectionStatus.CONNECTED)
    ]
    try:
        outcome = provisioning.provision(configuration, joining, actor) if joining else None
    except MicrosoftError as error:
        db.session.rollback()
        return _failed(configuration, started, error, actor)
    leavers = []
    for connection in _connections(configuration):
        if connection.status == ConnectionStatus.DISCONNECTED:
            continue
        if connection.upn.lower() in members:
            connection.followed = True
        elif connection.followed:
            leavers.append(connection)
    refused = [*carried.values()] + [
        [upn, code, started.isoformat()] for upn, code, _why in (outcome.refused if outcome else [])
    ]
    passed = GroupPass(
        configuration=configuration,
        started_at=started,
        state=PassState.DONE,
        members=len(members),
        added=len(outcome.added) if outcome else 0,
        refused=len(refused),
        refused_list=refused or None,
    )
    db.session.add(passed)
    _supersede(configuration)
    limit = current_app.config["GROUP_FOLLOW_MAX_REMOVALS"].of(group_size)
    unanswered = []
    if len(leavers) > limit:
        passed.state = PassState.HELD
        passed.held = len(leavers)
        passed.held_list = [{"id": c.id, "upn": c.upn} for c in leavers]
        passed.removal_limit = limit
    elif leavers:
        db.session.commit()  # a removal Graph does not answer rolls back only itself
        removals = _end(configuration, leavers, actor)
        passed.removed, unanswered = len(removals.removed), removals.failed
    passed.finished_at = utcnow()
    _audit(passed, actor, unanswered, newly_refused=len(refused) - len(carried))
    db.session.commit()
    _prune(configuration)
    return passed


def _refusals(configuration: Configuration) -> list[list[str]]:
    """The members the latest pass that read the group saw refused: [address, Microsoft's
    code, when first refused (ISO 8601, UTC)]."""
    latest = db.session.scalar(
        select(GroupPass)
        .where(GroupPass.configuration_id == configuration.id, GroupPass.state != PassState.FAILED)
        .order_by(GroupPass.id.desc())
        .limit(1)
    )
    return [entry for entry in (latest.refused_list or []) if len(entry) == 3] if latest else []


def _connections(configuration: Configuration) -> list[Connection]:
    return list(
        db.session.scalars(
            select(Connection)
            .where(Connection.configuration_id == configuration.id)
            .order_by(Connection.id)
        )
    )


def _end(configuration: Configuration, connections: list[Connection], actor: str):
    """End these mailboxes' synchronisation, taking out what the configuration says."""
    removing_calendar = configuration.leaver_removal == "calendar"
    removals = provisioning.remove(configuration, connections, removing_calendar, actor)
    ended = {upn for upn, _removal in removals.removed}
    for connection in connections:
        if connection.upn in ended:
            connection.followed = False
    return removals


def _failed(configuration, started, error: MicrosoftError, actor: str) -> GroupPass:
    passed = GroupPass(
        configuration=configuration,
        started_at=started,
        finished_at=utcnow(),
        state=PassState.FAILED,
        error_code=error.code[:100],
        error=error.message[:2000],
    )
    db.session.add(passed)
    _audit(passed, actor)
    db.session.commit()
    log.warning(
        "Group following of %s failed: %s (%s).",
        configuration.institution.slug,
        error.code,
        error.message,
    )
    return passed


def _supersede(configuration: Configuration) -> None:
    """A list still held is replaced by what this pass does."""
    db.session.execute(
        update(GroupPass)
        .where(GroupPass.configuration_id == configuration.id, GroupPass.state == PassState.HELD)
        .values(state=PassState.SUPERSEDED)
    )


def _audit(passed: GroupPass, actor: str, unanswered=(), newly_refused: int = 0) -> None:
    """Audit a pass that did something, held something, met a new refusal or failed; one
    that found nothing to change is kept in ``group_pass`` only, so the trail is not one
    line an hour."""
    institution = passed.configuration.institution
    if passed.state == PassState.FAILED:
        record(institution, actor, "group_pass_failed", f"{passed.error_code}: {passed.error}")
        return
    if not (passed.added or passed.removed or newly_refused or passed.held or unanswered):
        return
    detail = (
        f"{passed.members} members: {passed.added} added, {passed.removed} removed, "
        f"{passed.refused} refused, {passed.held} held"
    )
    if passed.state == PassState.HELD:
        detail += f" (more than {passed.removal_limit} removals: waiting for a decision)"
    if unanswered:
        detail += f"; Microsoft did not answer for {', '.join(unanswered)}: tried again next pass"
    record(institution, actor, "group_pass", detail)
    level = logging.WARNING if passed.state == PassState.HELD else logging.INFO
    log.log(level, "Group following of %s: %s.", institution.slug, detail)


def _prune(configuration: Configuration) -> None:
    db.session.execute(
        delete(GroupPass).where(
            GroupPass.configuration_id == configuration.id,
            GroupPass.started_at < utcnow() - KEPT,
            GroupPass.state != PassState.HELD,
        )
    )
    db.session.commit()


def following() -> list[int]:
    """The IDs of the approved application configurations that follow their group."""
    candidates = db.session.scalars(
        select(Configuration).where(
            Configuration.follow_group.is_(True),
            Configuration.status == Status.APPROVED,
            Configuration.method == Method.APPLICATION,
        )
    )
    return [c.id for c in candidates if c.followed_group]


def run_due(every_minutes: int) -> int:
    """Run the passes that are due (``every_minutes`` apart), each only in the runner that
    takes its turn; return how many ran here."""
    ran = 0
    for configuration_id in following():
        if not jobs.take_turn(schedule_name(configuration_id), every_minutes):
            continue
        configuration = db.session.get(Configuration, configuration_id)
        try:
            follow(configuration)
        except Exception:
            # One institution's broken pass must not stop the others' (it runs again
            # next period); what went wrong is logged with its trace.
            db.session.rollback()
            log.exception("Group following of configuration %s stopped.", configuration_id)
        ran += 1
    return ran


def follow_periodically(app: Flask, stop: threading.Event, every_minutes: int) -> threading.Thread:
    """Every ``jobs.SWEEP_SECONDS``, in a background thread of a worker process, run the
    passes that are due, until ``stop`` is set."""

    def following_round():
        if ran := run_due(every_minutes):
            log.info("%d pass(es) of group following run.", ran)

    return jobs.periodically(app, stop, "group-following", following_round)


# The administrator's and support's side


def set_following(configuration: Configuration, follow_group: bool, leavers: str, actor: str):
    """Turn group following on or off and say what leavers lose; a pass is due at once when
    following starts, and a list still held is dropped when it stops."""
    started = follow_group and not configuration.follow_group
    stopped = configuration.follow_group and not follow_group
    configuration.follow_group, configuration.leaver_removal = follow_group, leavers
    if started:
        jobs.due_now(schedule_name(configuration.id))
    if stopped:
        _supersede(configuration)
    state = f"on (leavers lose: {leavers})" if follow_group else "off"
    record(configuration.institution, actor, "group_following_set", state)
    db.session.commit()


def passes(configuration: Configuration, limit: int = 5) -> list[GroupPass]:
    """The configuration's latest passes, newest first."""
    return list(
        db.session.scalars(
            select(GroupPass)
            .where(GroupPass.configuration_id == configuration.id)
            .order_by(GroupPass.id.desc())
            .limit(limit)
        )
    )


def held(configuration: Configuration) -> GroupPass | None:
    """The pass whose removals wait for a decision, if one does."""
    return db.session.scalar(
        select(GroupPass)
        .where(GroupPass.configuration_id == configuration.id, GroupPass.state == PassState.HELD)
        .order_by(GroupPass.id.desc())
        .limit(1)
    )


def find(configuration: Configuration, pass_id: int) -> GroupPass | None:
    """The configuration's pass with this ID."""
    found = db.session.get(GroupPass, pass_id)
    return found if found is not None and found.configuration_id == configuration.id else None


def _decide(held_pass: GroupPass, state: PassState, actor: str) -> None:
    """Take the decision on a held list, unless someone (or a later pass) took one first."""
    decided = db.session.execute(
        update(GroupPass)
        .where(GroupPass.id == held_pass.id, GroupPass.state == PassState.HELD)
        .values(state=state, decided_by=actor, decided_at=utcnow())
    ).rowcount
    db.session.commit()
    if not decided:
        raise PassError(held_pass.state)
    db.session.refresh(held_pass)


def _held_ids(held_pass: GroupPass) -> list[int]:
    return [int(item["id"]) for item in held_pass.held_list or []]


def confirm(held_pass: GroupPass, actor: str) -> provisioning.Removals:
    """End the synchronisation of the mailboxes a held pass listed (those not ended since)."""
    _decide(held_pass, PassState.CONFIRMED, actor)
    configuration = held_pass.configuration
    ids = _held_ids(held_pass)
    removals = _end(configuration, provisioning.removable(configuration, ids), actor)
    held_pass.removed = len(removals.removed)
    detail = f"{len(removals.removed)} of {len(ids)} removed"
    if removals.failed:
        detail += f"; Microsoft did not answer for {', '.join(removals.failed)}"
    record(configuration.institution, actor, "group_removals_confirmed", detail)
    db.session.commit()
    return removals


def cancel(held_pass: GroupPass, actor: str) -> None:
    """Keep the mailboxes a held pass listed: they stay synchronised, as if added by hand,
    so later passes do not list them again (unless they rejoin the group and leave again)."""
    _decide(held_pass, PassState.CANCELLED, actor)
    configuration = held_pass.configuration
    ids = _held_ids(held_pass)
    db.session.execute(
        update(Connection)
        .where(Connection.configuration_id == configuration.id, Connection.id.in_(ids))
        .values(followed=False)
    )
    record(
        configuration.institution,
        actor,
        "group_removals_cancelled",
        f"{len(ids)} mailboxes stay synchronised",
    )
    db.session.commit()


def decide(held_pass: GroupPass, decision: str, actor: str) -> tuple[str, str]:
    """Confirm or cancel held removals (``decision``); the message for the person who
    decided and its kind, as the administrator's and support's pages both flash it."""
    try:
        if decision == "cancel":
            cancel(held_pass, actor)
            return _("Cancelled: these mailboxes stay synchronised."), "success"
        done = confirm(held_pass, actor)
    except PassError:
        return _(
            "This list was decided already, or a later pass replaced it: see the latest pass below."
        ), "error"
    if done.failed:
        return _(
            "Microsoft did not answer in time for %(addresses)s: still synchronised. The "
            "next pass tries again.",
            addresses=", ".join(done.failed),
        ), "error"
    return ngettext(
        "Removed %(num)d mailbox: its synchronisation has ended.",
        "Removed %(num)d mailboxes: their synchronisation has ended.",
        len(done.removed),
    ), "success"
