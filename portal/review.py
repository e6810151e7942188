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
from sqlalchemy.orm import contains_eager, selectinload

from . import notifications
from .extensions import db
from .i18n import lazy_gettext as _l
from .models import Configuration, Connection, Institution, Status, record, utcnow
from .paging import Page, paginate

RETURN_STEPS = ("method", "certificate", "register", "tenant", "verify")


class ReviewError(Exception):
    """The action does not fit the configuration's state; the message says why."""


def queue(
    status: str = "", method: str = "", hosting: str = "", search: str = "", page: int = 1
) -> Page:
    """Configurations, submitted ones first and oldest first, filtered and paged."""
    # Each row shows its institution and whether it is verified (Configuration.verified
    # reads the latest run): both come with the page, not in a query a row.
    query = (
        select(Configuration)
        .join(Institution)
        .options(
            contains_eager(Configuration.institution), selectinload(Configuration.verifications)
        )
    )
    if status:
        query = query.where(Configuration.status == status)
    if method:
        query = query.where(Configuration.method == method)
    if hosting:
        query = query.where(Institution.hosting == hosting)
    if search:
        text = search.strip().lower()
        query = query.where(
            or_(
                *(
                    func.lower(column).contains(text, autoescape=True)
                    for column in (
                        Institution.name,
                        Configuration.tenant_id,
                        Configuration.tenant_guid,
                        Configuration.client_id,
                    )
                ),
                Configuration.id.in_(mailbox_matches(text)),
            )
        )
    submitted_first = case((Configuration.status == Status.SUBMITTED, 0), else_=1)
    return paginate(
        query.order_by(
            submitted_first,
            Configuration.submitted_at.is_(None),
            Configuration.submitted_at,
            Configuration.created_at,
        ),
        page,
    )


def institutions(search: str = "", page: int = 1) -> Page:
    """Institutions by name, found by a part of their name, their administrator's address
    or the address of one of their mailboxes."""
    query = select(Institution).order_by(Institution.name, Institution.id)
    if search.strip():
        text = search.strip().lower()
        query = query.where(
            or_(
                func.lower(Institution.name).contains(text, autoescape=True),
                func.lower(Institution.contact_email).contains(text, autoescape=True),
                Institution.id.in_(
                    select(Configuration.institution_id).where(
                        Configuration.id.in_(mailbox_matches(text))
                    )
                ),
            )
        )
    return paginate(query, page)


def mailbox_matches(text: str):
    """The IDs of configurations with a mailbox (a connection's address) containing ``text``."""
    return select(Connection.configuration_id).where(
        func.lower(Connection.upn).contains(text.strip().lower(), autoescape=True)
    )


@dataclass(frozen=True)
class Task:
    """One thing a configuration needs before it can be approved."""

    key: str
    label: str
    done: bool


TASK_LABELS = {
    "submitted": _l("Submitted by the administrator"),
    "details": _l("Method, tenant and application entered"),
    "certificate": _l("Certificate present and not expired"),
    "verified": _l("Latest verification passed"),
    "feed": _l("Timetable feed address set"),
}


def readiness(configuration: Configuration) -> list[Task]:
    """What approval needs, each done or not, in the order support would see to them."""
    certificate = configuration.certificate
    done = {
        "submitted": configuration.status in (Status.SUBMITTED, Status.APPROVED),
        "details": bool(
            configuration.method and configuration.tenant_id and configuration.client_id
        ),
        "certificate": certificate is not None and certificate.days_left() >= 0,
        "verified": configuration.verified,
        "feed": bool(configuration.feed_url_template),
    }
    return [Task(key, str(label), done[key]) for key, label in TASK_LABELS.items()]


class IncompleteError(ReviewError):
    """Approval refused: the configuration misses something; ``missing`` says what."""

    def __init__(self, missing: list[Task]):
        self.missing = missing
        super().__init__(
            _(
                "Not approved: the configuration is not complete yet. Still to do: %(tasks)s.",
                tasks="; ".join(task.label for task in missing),
            )
        )


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
    """Make a submitted configuration active, once every task of ``readiness`` is done."""
    if configuration.status != Status.SUBMITTED:
        raise ReviewError(_("Only a submitted configuration can be approved."))
    missing = [task for task in readiness(configuration) if not task.done]
    if missing:
        raise IncompleteError(missing)
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
                "security_group_email": configuration.group or "",
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
