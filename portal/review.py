"""Support's review of submitted configurations: the queue, approval, returning for
changes, and exports. Every state change is audited and notifies the administrator."""

import csv
import io
import json
import re
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import case, func, or_, select

from . import notifications
from .extensions import db
from .models import Configuration, Institution, Status, record, utcnow

PAGE_SIZE = 25
RETURN_STEPS = ("method", "certificate", "register", "tenant", "verify")


class ReviewError(Exception):
    """The action does not fit the configuration's state; the message says why."""


@dataclass
class QueuePage:
    """One page of the queue and what is needed to page through it."""

    items: list[Configuration]
    total: int
    page: int
    pages: int


def queue(
    status: str = "", method: str = "", hosting: str = "", search: str = "", page: int = 1
) -> QueuePage:
    """Configurations, submitted ones first and oldest first, filtered and paged."""
    query = select(Configuration).join(Institution)
    if status:
        query = query.where(Configuration.status == status)
    if method:
        query = query.where(Configuration.method == method)
    if hosting:
        query = query.where(Institution.hosting == hosting)
    if search:
        like = f"%{search.strip().lower()}%"
        query = query.where(
            or_(
                func.lower(Institution.name).like(like),
                func.lower(Configuration.tenant_id).like(like),
                func.lower(Configuration.tenant_guid).like(like),
                func.lower(Configuration.client_id).like(like),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    submitted_first = case((Configuration.status == Status.SUBMITTED, 0), else_=1)
    items = db.session.scalars(
        query.order_by(
            submitted_first,
            Configuration.submitted_at.is_(None),
            Configuration.submitted_at,
            Configuration.created_at,
        )
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return QueuePage(items=list(items), total=total, page=page, pages=pages)


def _link_text() -> str:
    return _(
        "Open the invitation link you received from MyTimetable support to see the "
        "configuration. If it has expired, ask support for a new one."
    )


def submitted(configuration: Configuration, actor: str, language: str | None = None) -> None:
    """The administrator handed the configuration in: audit it and confirm by e-mail, in
    ``language``, the one the administrator used, which later e-mails keep to."""
    if language:
        configuration.institution.language = language
    configuration.status = Status.SUBMITTED
    configuration.submitted_at = utcnow()
    record(
        configuration.institution,
        actor,
        "submitted",
        f"{configuration.method}, tenant {configuration.tenant_id}",
    )
    institution = configuration.institution
    with notifications.in_language(institution):
        notifications.queue(
            institution,
            _("MyTimetable: Office 365 connection for %(name)s submitted", name=institution.name),
            _(
                "Thank you. MyTimetable support will review the configuration and let you "
                "know when the connection is active."
            )
            + "\n\n"
            + _link_text(),
        )
    db.session.commit()


def approve(configuration: Configuration, staff_email: str) -> None:
    """Make a submitted configuration active."""
    if configuration.status != Status.SUBMITTED:
        raise ReviewError(_("Only a submitted configuration can be approved."))
    if not configuration.verified_at:
        raise ReviewError(_("Run the checks again first: the last verification did not pass."))
    configuration.status = Status.APPROVED
    configuration.reviewed_at, configuration.reviewed_by = utcnow(), staff_email
    configuration.review_message = configuration.review_step = None
    record(configuration.institution, staff_email, "approved")
    institution = configuration.institution
    with notifications.in_language(institution):
        notifications.queue(
            institution,
            _("MyTimetable: Office 365 connection for %(name)s is active", name=institution.name),
            _(
                "MyTimetable support approved the configuration: timetables can now be "
                "synchronised to Outlook."
            )
            + "\n\n"
            + _link_text(),
        )
    db.session.commit()


def return_for_changes(
    configuration: Configuration, staff_email: str, message: str, step: str
) -> None:
    """Send a submitted configuration back to its administrator with a message."""
    if configuration.status != Status.SUBMITTED:
        raise ReviewError(_("Only a submitted configuration can be returned."))
    if step not in RETURN_STEPS:
        raise ReviewError(_("Choose the step the administrator should change."))
    configuration.status = Status.CHANGES_REQUESTED
    configuration.reviewed_at, configuration.reviewed_by = utcnow(), staff_email
    configuration.review_message, configuration.review_step = message.strip(), step
    record(configuration.institution, staff_email, "returned", f"step {step}: {message.strip()}")
    institution = configuration.institution
    with notifications.in_language(institution):
        notifications.queue(
            institution,
            _(
                "MyTimetable: please change the Office 365 connection for %(name)s",
                name=institution.name,
            ),
            _("MyTimetable support asks for a change:")
            + f"\n\n{message.strip()}\n\n"
            + _link_text(),
        )
    db.session.commit()


EXPORT_FIELDS = (
    "institution",
    "hosting",
    "status",
    "method",
    "cloud",
    "tenant_id",
    "tenant_guid",
    "client_id",
    "security_group_email",
    "certificate_sha1",
    "certificate_not_after",
    "verified_at",
    "submitted_at",
    "reviewed_at",
    "reviewed_by",
)


def export_rows() -> list[dict]:
    """Every configuration as a flat row of public values (never a key or a token)."""
    rows = []
    for configuration in db.session.scalars(
        select(Configuration).join(Institution).order_by(Institution.name)
    ):
        certificate = configuration.certificate
        rows.append(
            {
                "institution": configuration.institution.name,
                "hosting": configuration.institution.hosting,
                "status": configuration.status,
                "method": configuration.method or "",
                "cloud": configuration.cloud,
                "tenant_id": configuration.tenant_id or "",
                "tenant_guid": configuration.tenant_guid or "",
                "client_id": configuration.client_id or "",
                "security_group_email": configuration.security_group_email or "",
                "certificate_sha1": certificate.sha1_thumbprint if certificate else "",
                "certificate_not_after": certificate.not_after.isoformat() if certificate else "",
                "verified_at": _iso(configuration.verified_at),
                "submitted_at": _iso(configuration.submitted_at),
                "reviewed_at": _iso(configuration.reviewed_at),
                "reviewed_by": configuration.reviewed_by or "",
            }
        )
    return rows


def _iso(value) -> str:
    return value.isoformat() if value else ""


def export_csv() -> str:
    """The configurations as CSV: every cell quoted, and cells that a spreadsheet would run as
    formulas defused (``_defuse``)."""
    return csv_text(EXPORT_FIELDS, export_rows())


def csv_text(fieldnames, rows) -> str:
    """Rows (dicts of text) as CSV: every cell quoted, and cells that a spreadsheet would run
    as formulas defused (``_defuse``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fieldnames, quoting=csv.QUOTE_ALL)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _defuse(v) for k, v in row.items()})
    return out.getvalue()


# Where a spreadsheet would start a formula: the start of a cell, or just after a separator
# that a spreadsheet may split on instead of reading the quotes (";" in Dutch Excel), with
# spaces or quotes between; =, +, -, @, tab and carriage return start one (OWASP, CSV Injection).
_FORMULA = re.compile(r"""(^|[;,])([ "]*[=+\-@\t\r])""")


def _defuse(value: str) -> str:
    """``value`` with a ' before each place a formula could start, so it shows as text."""
    return _FORMULA.sub(r"\1'\2", value)


def export_json() -> str:
    """The configurations as JSON."""
    return json.dumps(
        {"exported_at": utcnow().isoformat(), "portal": current_app.config["EXTERNAL_URL"],
         "configurations": export_rows()},
        indent=2,
    )  # fmt: skip
