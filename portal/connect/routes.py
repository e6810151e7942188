"""End users connect their Outlook calendar; Microsoft's answers come back here too."""

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import contains_eager

from .. import connections, signins, verification
from ..extensions import db
from ..forms import ConfirmForm
from ..i18n import return_after_switching
from ..microsoft import identity
from ..microsoft.clouds import cloud
from ..microsoft.errors import MicrosoftError, advice_for
from ..models import Configuration, Connection, Institution, Method, Status, SyncJob, record
from ..sync import jobs
from ..urls import external
from ..validators import ADDRESS
from . import bp
from .forms import DisconnectForm

ADMIN = "administrator (invitation link)"
# Which page explains a failed sign-in, by Microsoft's (or the portal's) error code.
PROBLEM_KINDS = {
    "65004": "declined",
    "access_denied": "declined",
    "90094": "approval",
    "90093": "approval",
    "65001": "approval",
    "50020": "other_tenant",
    "tenant_mismatch": "other_tenant",
    "state_mismatch": "stale",
}


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
    return {"institution": getattr(g, "institution", None), "end_user": True}


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
    return render_template(
        "connect/start.html",
        form=ConfirmForm(),
        login_hint=hint if ADDRESS.match(hint) else "",
        connection=g.connection,
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
        auth_uri = signins.start_sign_in(
            g.configuration, "connect", login_hint=hint if ADDRESS.match(hint) else None
        )
    except MicrosoftError as error:
        return _problem(error), 502
    return redirect(auth_uri)


@bp.get("/<slug>/status")
def status(slug: str):
    """Connected as whom, the calendar, the last sync; Sync now and Disconnect."""
    if g.connection is None:
        return redirect(url_for("connect.start", slug=slug))
    return render_template(
        "connect/status.html",
        connection=g.connection,
        waiting=g.waiting,
        disconnect_form=DisconnectForm(),
    )


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
    session.pop("connection_id", None)
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
        return redirect(signins.start_admin_consent(g.configuration, "connect"))
    return render_template("connect/organisation_consent.html", form=form)


def _problem(error: MicrosoftError, configuration: Configuration | None = None):
    """The page for a sign-in that did not complete: what happened, what to do next."""
    configuration = configuration or g.configuration
    kind = PROBLEM_KINDS.get(error.code, "error")
    institution = configuration.institution
    return render_template(
        "connect/problem.html",
        kind=kind,
        error=error,
        advice=error.advice,
        institution=institution,
        connect_url=url_for("connect.start", slug=institution.slug),
        consent_url=external("connect.organisation_consent", slug=institution.slug),
    )


@bp.get("/callback")
def callback():
    """The redirect URI: hand the answer to whatever started the sign-in in this browser.

    The state in the answer must match a sign-in or consent request kept in this
    browser's server-side session; anything else is stale, replayed or forged.
    """
    state = request.args.get("state")
    # Each pending request leaves the session only once the answer's state is its own: a
    # forged or stale callback must not cancel the sign-in still under way.
    consent = session.get("admin_consent")
    if consent and state and state == consent.get("state"):
        session.pop("admin_consent")
        return _admin_consent(consent)
    sign_in = session.get("sign_in")
    if sign_in and state and state == (sign_in.get("flow") or {}).get("state"):
        session.pop("sign_in")
        if sign_in.get("purpose") == "verify":
            return _verification_sign_in(sign_in)
        if sign_in.get("purpose") == "connect":
            return _connect_sign_in(sign_in)
    return render_template("connect/stale.html", advice=advice_for("state_mismatch")), 400


def _configuration(configuration_id: int, needs_invitation: bool) -> Configuration | None:
    configuration = db.session.get(Configuration, configuration_id)
    if configuration is None or (needs_invitation and session.get("invitation_id") is None):
        return None
    return configuration


def _connect_sign_in(sign_in: dict):
    configuration = _configuration(sign_in["configuration_id"], needs_invitation=False)
    if configuration is None or configuration.status != Status.APPROVED:
        return render_template("connect/stale.html", advice=advice_for("state_mismatch")), 400
    g.institution = configuration.institution
    try:
        signed_in = signins.finish_sign_in(
            configuration, sign_in.get("flow"), request.args.to_dict()
        )
        connection = connections.connect(configuration, signed_in)
    except MicrosoftError as error:
        status = 502 if error.code == "unreachable" else 400
        return _problem(error, configuration), status
    session["connection_id"] = connection.id
    # A session ID planted in this browser before the sign-in must not see the connection.
    current_app.session_interface.regenerate(session)
    return redirect(url_for("connect.status", slug=configuration.institution.slug))


def _verification_sign_in(sign_in: dict):
    configuration = _configuration(sign_in["configuration_id"], needs_invitation=True)
    if configuration is None:
        return render_template("connect/stale.html", advice=advice_for("state_mismatch")), 400
    verification.finish_delegated_checks(
        configuration, sign_in["run_id"], sign_in.get("flow"), request.args.to_dict(), ADMIN
    )
    return redirect(url_for("setup.verify"))


def _admin_consent(consent: dict):
    purpose = consent.get("purpose", "setup")
    configuration = _configuration(consent["configuration_id"], needs_invitation=purpose == "setup")
    if configuration is None:
        return render_template("connect/stale.html", advice=advice_for("state_mismatch")), 400
    actor = ADMIN if purpose == "setup" else "administrator (organisation consent page)"
    try:
        tenant = identity.finish_admin_consent(
            cloud(configuration.cloud),
            request.args.to_dict(),
            consent["state"],
            configuration.tenant_guid or configuration.tenant_id,
        )
    except MicrosoftError as error:
        record(configuration.institution, actor, "admin_consent_failed", error.code)
        db.session.commit()
        message = _(
            "Consent for the organisation was not granted (%(code)s): %(cause)s %(action)s",
            code=error.display_code or error.code,
            cause=error.advice.cause,
            action=error.advice.action,
        )
        if purpose == "setup":
            flash(message, "error")
            return redirect(url_for("setup.verify"))
        return render_template(
            "connect/consent_result.html",
            ok=False,
            message=message,
            institution=configuration.institution,
        ), 400
    record(configuration.institution, actor, "admin_consent_granted", tenant)
    db.session.commit()
    if purpose == "setup":
        flash(
            _(
                "Consent was granted for the whole organisation: users will not be asked. "
                "Now sign in to check the connection."
            ),
            "success",
        )
        return redirect(url_for("setup.verify"))
    return render_template(
        "connect/consent_result.html", ok=True, message="", institution=configuration.institution
    )
