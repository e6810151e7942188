"""End users connect their Outlook calendar; Microsoft's answers come back here too."""

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import contains_eager

from .. import connections, consent, timezones
from ..extensions import db
from ..forms import ConfirmForm
from ..i18n import return_after_switching
from ..microsoft.clouds import cloud
from ..microsoft.errors import MicrosoftError
from ..models import Configuration, Connection, Institution, Method, Status, SyncJob
from ..sync import jobs
from ..validators import ADDRESS
from . import bp
from .forms import DisconnectForm

# Every page under /connect/<slug> reads the institution with its configuration, and the
# connection this browser made there (the session names it) with its waiting
# synchronisation, if any.
_PAGE = (
    select(Institution, Connection, SyncJob)
    .join(Institution.configuration)
    .options(contains_eager(Institution.configuration))
    .outerjoin(
        Connection,
        and_(
            Connection.configuration_id == Configuration.id,
            Connection.id == bindparam("connection_id"),
        ),
    )
    .outerjoin(SyncJob, and_(SyncJob.connection_id == Connection.id, jobs.WAITING))
    .where(Institution.slug == bindparam("slug"))
    .limit(1)
)


@bp.url_value_preprocessor
def load_institution(endpoint, values):
    """Pages under /connect/<slug> belong to an institution with a configuration; the
    browser's connection there, if any, comes with it (``g.connection``, ``g.waiting``)."""
    slug = (values or {}).get("slug")
    if slug is None:
        return
    if request.method != "GET":
        return_after_switching(url_for("connect.start", slug=slug))
    row = db.session.execute(
        _PAGE, {"slug": slug, "connection_id": session.get("connection_id")}
    ).first()
    if row is None:
        abort(404)
    g.institution, g.connection, g.waiting = row
    g.configuration = g.institution.configuration


@bp.context_processor
def connect_context():
    institution = getattr(g, "institution", None)
    zone = timezones.for_institution(institution)
    return {
        "institution": institution,
        "end_user": True,
        "local_time": lambda value: timezones.local_time(value, zone),
        "service_desk": service_desk_link(institution.service_desk if institution else None),
    }


def service_desk_link(value: str | None) -> str | None:
    """Where the footer's link to the institution's IT service desk goes: its web
    address, or a ``mailto:`` for its e-mail address (both checked when support set them,
    and again here: only http(s) and mail addresses become links)."""
    if not value:
        return None
    if ADDRESS.match(value):
        return f"mailto:{value}"
    if value.startswith(("https://", "http://")) and not any(c.isspace() for c in value):
        return value
    return None


def _forget_person() -> None:
    """Take everything of the person who used the connect pages out of this browser's
    session (their connection, a sign-in they started), under a new session ID: the next
    person at a shared computer starts afresh."""
    session.pop("connection_id", None)
    if (session.get("sign_in") or {}).get("purpose") == consent.Purpose.CONNECT:
        session.pop("sign_in")
    current_app.session_interface.regenerate(session)


def _available() -> bool:
    configuration: Configuration = g.configuration
    return g.institution.managed and configuration.status == Status.APPROVED


@bp.get("/<slug>")
def start(slug: str):
    """What will happen, which permissions and why; then sign in with Microsoft."""
    if not _available():
        return render_template("connect/unavailable.html"), 404
    if g.configuration.method == Method.APPLICATION:
        return render_template("connect/automatic.html")
    hint = request.args.get("login_hint", "")[:320]
    hint = hint if ADDRESS.match(hint) else ""
    connection = g.connection
    if connection is not None and hint and hint.lower() != connection.upn.lower():
        # MyTimetable sent someone else here: whoever used this browser before is gone.
        _forget_person()
        connection = None
    return render_template(
        "connect/start.html", form=ConfirmForm(), login_hint=hint, connection=connection
    )


@bp.post("/<slug>/sign-in")
def sign_in(slug: str):
    """Start the authorization code flow (PKCE, state, nonce) at Microsoft."""
    if not _available() or g.configuration.method != Method.DELEGATED:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    hint = request.form.get("login_hint", "")[:320]
    try:
        auth_uri = consent.start_sign_in(
            g.configuration,
            consent.Purpose.CONNECT,
            login_hint=hint if ADDRESS.match(hint) else None,
        )
    except MicrosoftError as error:
        return consent.problem(error, g.configuration), 502
    return redirect(auth_uri)


@bp.get("/<slug>/status")
def status(slug: str):
    """Connected as whom, the calendar, the last sync; Sync now and Disconnect."""
    if g.connection is None:
        return redirect(url_for("connect.start", slug=slug))
    return render_template(
        "connect/status.html",
        connection=g.connection,
        summary=connections.summary(g.connection),
        waiting=g.waiting,
        disconnect_form=DisconnectForm(),
    )


@bp.post("/<slug>/sign-out")
def sign_out(slug: str):
    """Forget, in this browser only, who connected here: the synchronisation carries on."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    _forget_person()
    flash(
        _("This browser no longer shows your synchronisation. It carries on as before."),
        "success",
    )
    return redirect(url_for("connect.start", slug=slug))


@bp.post("/<slug>/sync")
def sync_now(slug: str):
    """Ask for a synchronisation now."""
    connection = g.connection
    if connection is None or not ConfirmForm().validate_on_submit():
        abort(404 if connection is None else 400)
    try:
        connections.sync_now(connection)
    except MicrosoftError as error:
        if error.code == "unreachable":
            flash(_("Microsoft could not be reached. Try again in a few minutes."), "error")
        else:
            flash(_("Your Microsoft sign-in has expired: connect again to continue."), "error")
    else:
        flash(_("Synchronisation requested: your calendar updates in a few minutes."), "success")
    return redirect(url_for("connect.status", slug=slug))


@bp.post("/<slug>/disconnect")
def disconnect(slug: str):
    """Forget the user's tokens, optionally removing the MyTimetable calendar."""
    connection = g.connection
    form = DisconnectForm()
    if connection is None or not form.validate_on_submit():
        abort(404 if connection is None else 400)
    removed = connections.disconnect(connection, form.remove_calendar.data)
    _forget_person()
    return render_template(
        "connect/disconnected.html",
        removed=removed,
        asked_removal=form.remove_calendar.data,
        cloud=cloud(g.configuration.cloud),
    )


@bp.route("/<slug>/organisation-consent", methods=["GET", "POST"])
def organisation_consent(slug: str):
    """For the institution's administrator: grant consent once for every user."""
    if not _available() or g.configuration.method != Method.DELEGATED:
        abort(404)
    form = ConfirmForm()
    if form.validate_on_submit():
        return redirect(consent.start_admin_consent(g.configuration, consent.Purpose.CONNECT))
    return render_template("connect/organisation_consent.html", form=form)


@bp.get("/callback")
def callback():
    """The redirect URI of every sign-in and consent: ``consent`` answers it."""
    return consent.answer(request.args.to_dict())
