"""The portal's data: institutions, their invitations and configurations, certificates,
verification evidence, the audit trail, and server-side sessions."""

import enum
from datetime import UTC, datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint, select
from sqlalchemy import false as sql_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    """The current time in UTC, as stored in every timestamp column."""
    return datetime.now(UTC).replace(tzinfo=None)


class Hosting(enum.StrEnum):
    """Where MyTimetable runs for an institution."""

    MANAGED = "managed"
    ON_PREMISES = "on_premises"


class Method(enum.StrEnum):
    """How MyTimetable reaches calendars."""

    APPLICATION = "application"
    DELEGATED = "delegated"


class MailboxScope(enum.StrEnum):
    """Application permissions: every calendar in the tenant, or only the members of one
    mail-enabled security group."""

    ALL = "all"
    GROUP = "group"


class Status(enum.StrEnum):
    """A configuration's life: draft, then submitted and reviewed (managed) or exported."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"
    EXPORTED = "exported"


class ConnectionStatus(enum.StrEnum):
    """A connection's state: synchronising, waiting for its user to sign in again (the
    stored sign-in stopped working), out of the application's reach (Microsoft answered
    that the mailbox is gone or outside the group: not retried until it is provisioned
    again), or ended."""

    CONNECTED = "connected"
    NEEDS_RECONNECT = "needs_reconnect"
    MAILBOX_NOT_FOUND = "mailbox_not_found"  # no such user, or no Exchange Online mailbox
    OUTSIDE_GROUP = "outside_group"  # outside the access policy's or RBAC scope's group
    DISCONNECTED = "disconnected"


class InvitationState(enum.StrEnum):
    """Whether an invitation link still opens the wizard, and if not, why."""

    VALID = "valid"
    EXPIRED = "expired"  # its time ran out
    REPLACED = "replaced"  # a newer link for the institution took its place
    REVOKED = "revoked"  # MyTimetable support revoked it on purpose


class PassState(enum.StrEnum):
    """How a pass of group following ended, and what became of the removals it held."""

    DONE = "done"
    HELD = "held"  # more leavers than the limit: nothing removed until someone decides
    CONFIRMED = "confirmed"  # the held removals were confirmed and carried out
    CANCELLED = "cancelled"  # the held removals were cancelled: those mailboxes stay
    SUPERSEDED = "superseded"  # a later pass held or removed its own list instead
    FAILED = "failed"  # the group's members could not be read


class CheckOutcome(enum.StrEnum):
    """How one link of a verification run ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Institution(db.Model):
    """A school or university that connects MyTimetable to Microsoft 365."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    hosting: Mapped[str] = mapped_column(String(20))
    contact_email: Mapped[str] = mapped_column(String(320))
    # The administrator's language (as the wizard last showed it at submission): the
    # language of the e-mails the portal sends them. None until then: English.
    language: Mapped[str | None] = mapped_column(String(8))
    # What the connect pages show its users: times in this IANA time zone (None: guessed
    # from the browser's language, see ``portal.timezones``), and where to ask for help
    # (the IT service desk's web address or e-mail address; None: no link).
    time_zone: Mapped[str | None] = mapped_column(String(64))
    service_desk: Mapped[str | None] = mapped_column(String(320))
    # Whether a user whose sign-in stopped working gets an e-mail asking to connect again.
    reconnect_email: Mapped[bool] = mapped_column(default=False)
    # The Outlook colour of each timetable category, as support set it (category name ->
    # preset, ``portal.sync.colours``); None: the default mapping alone.
    category_colours: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    configuration: Mapped["Configuration | None"] = relationship(
        back_populates="institution", uselist=False
    )
    invitations: Mapped[list["Invitation"]] = relationship(back_populates="institution")

    @property
    def managed(self) -> bool:
        """True when MyTimetable is hosted by the vendor for this institution."""
        return self.hosting == Hosting.MANAGED


class Invitation(db.Model):
    """A link that opens the setup wizard for one institution. Only a hash of its token is kept."""

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Set when a newer link replaced this one; a link revoked without it was revoked by
    # support on purpose (links revoked before this column existed count as such).
    replaced: Mapped[bool] = mapped_column(default=False, server_default=sql_false())
    # The administrator (UPN) whose Microsoft sign-in made this invitation: it has no link.
    signed_in_as: Mapped[str | None] = mapped_column(String(320))
    last_used_at: Mapped[datetime | None]

    institution: Mapped[Institution] = relationship(back_populates="invitations")

    @property
    def expired(self) -> bool:
        """True once the link may no longer open the wizard."""
        return self.revoked_at is not None or self.expires_at <= utcnow()

    @property
    def state(self) -> InvitationState:
        """Whether the link opens the wizard, and if not, why."""
        if self.revoked_at is not None:
            return InvitationState.REPLACED if self.replaced else InvitationState.REVOKED
        if self.expires_at <= utcnow():
            return InvitationState.EXPIRED
        return InvitationState.VALID


class Certificate(db.Model):
    """An X.509 certificate MyTimetable signs its client assertions with; the key is encrypted."""

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # "vendor" or "generated"
    subject: Mapped[str] = mapped_column(String(400))
    public_pem: Mapped[str] = mapped_column(Text)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    sha1_thumbprint: Mapped[str] = mapped_column(String(40))
    sha256_thumbprint: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    current: Mapped[bool] = mapped_column(default=False)
    # A vendor certificate made to replace the current one: institutions add it to their
    # app registration and switch to it once it verifies.
    upcoming: Mapped[bool] = mapped_column(default=False)

    @classmethod
    def upcoming_vendor(cls) -> "Certificate | None":
        """The vendor certificate being rolled out, if a rotation is under way."""
        return db.session.scalar(
            select(cls)
            .where(cls.source == "vendor", cls.upcoming.is_(True))
            .order_by(cls.created_at.desc())
        )

    @classmethod
    def current_vendor(cls) -> "Certificate | None":
        """The vendor certificate that managed-hosting institutions upload now."""
        return db.session.scalar(
            select(cls)
            .where(cls.source == "vendor", cls.current.is_(True))
            .order_by(cls.created_at.desc())
        )

    def days_left(self) -> int:
        """Whole days until the certificate expires (negative once it has)."""
        return (self.not_after - utcnow()).days


class Configuration(db.Model):
    """One institution's connection to Microsoft 365, filled in by the setup wizard."""

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), unique=True)
    method: Mapped[str | None] = mapped_column(String(20))
    cloud: Mapped[str] = mapped_column(String(20), default="worldwide")
    tenant_id: Mapped[str | None] = mapped_column(String(255))
    tenant_guid: Mapped[str | None] = mapped_column(String(36))
    client_id: Mapped[str | None] = mapped_column(String(36))
    security_group_email: Mapped[str | None] = mapped_column(String(320))
    group_scope_method: Mapped[str] = mapped_column(String(20), default="rbac")
    # Asked in step 1 with the method, before step 3 shows what to do in Entra; the group's
    # address (step 4) is kept when "all" is chosen, but counts only while "group" is.
    mailbox_scope: Mapped[str | None] = mapped_column(String(10))
    service_principal_id: Mapped[str | None] = mapped_column(String(36))
    outlook_categories: Mapped[bool] = mapped_column(default=False)
    # Group following: every member of the group is synchronised, the members who join are
    # added and those who leave end (``portal.groups``); ``leaver_removal`` says what is
    # taken out of a leaver's mailbox: "events" (the portal's, the calendar stays) or
    # "calendar".
    follow_group: Mapped[bool] = mapped_column(default=False, server_default=sql_false())
    leaver_removal: Mapped[str] = mapped_column(
        String(10), default="events", server_default="events"
    )
    # MyTimetable's iCalendar feed for one person, with {upn} where their address goes.
    feed_url_template: Mapped[str | None] = mapped_column(String(1000))
    test_mailbox: Mapped[str | None] = mapped_column(String(320))
    outside_mailbox: Mapped[str | None] = mapped_column(String(320))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id"))
    status: Mapped[str] = mapped_column(String(30), default=Status.DRAFT)
    step_reached: Mapped[int] = mapped_column(default=1)
    verified_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(320))
    review_message: Mapped[str | None] = mapped_column(Text)
    review_step: Mapped[str | None] = mapped_column(String(20))
    exported_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    institution: Mapped[Institution] = relationship(back_populates="configuration")
    certificate: Mapped[Certificate | None] = relationship()
    verifications: Mapped[list["Verification"]] = relationship(
        back_populates="configuration", order_by="Verification.id"
    )

    @property
    def limited_to_group(self) -> bool:
        """Application permissions limited to one mail-enabled security group."""
        if self.method != Method.APPLICATION:
            return False
        if self.mailbox_scope is None:  # not asked (made outside the wizard): as before
            return bool(self.security_group_email)
        return self.mailbox_scope == MailboxScope.GROUP

    @property
    def group(self) -> str | None:
        """The security group's address, while the configuration is limited to it."""
        return (self.security_group_email or None) if self.limited_to_group else None

    @property
    def followed_group(self) -> str | None:
        """The group whose every member is synchronised, when group following is chosen."""
        return self.group if self.follow_group else None

    @property
    def verified(self) -> bool:
        """Whether the configuration counts as verified, for the wizard's stepper and
        submission as for support's approval: the chain last passed in full with the values
        saved now (``verified_at``, which a change or a broken link clears) and no run since
        broke a link. A later run that passed the links before the sign-in and stopped there
        (support's re-check of a delegated configuration) keeps it verified."""
        return self.verified_at is not None and not any(
            link.outcome == CheckOutcome.FAILED for link in self.latest_run()
        )

    def runs(self, purpose: str | None = "configuration") -> list[list["Verification"]]:
        """The verification runs of ``purpose`` (None: all), oldest first, each its links in
        chain order."""
        runs: dict[str, list[Verification]] = {}
        for link in self.verifications:
            if purpose is None or link.purpose == purpose:
                runs.setdefault(link.run_id, []).append(link)
        return list(runs.values())

    def latest_run(self, purpose: str = "configuration") -> list["Verification"]:
        """The links of the most recent verification run, in chain order."""
        return (self.runs(purpose) or [[]])[-1]


class Verification(db.Model):
    """One link of a live verification run and its evidence."""

    id: Mapped[int] = mapped_column(primary_key=True)
    configuration_id: Mapped[int] = mapped_column(ForeignKey("configuration.id"))
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    # "configuration": the wizard's chain; "rotation": a new certificate's check.
    purpose: Mapped[str] = mapped_column(String(20), default="configuration")
    kind: Mapped[str] = mapped_column(String(40))
    # Who ran the checks, as in the audit trail (a staff member's address for support);
    # None for runs from before it was kept.
    actor: Mapped[str | None] = mapped_column(String(320))
    # A fingerprint of the values the run checked (verification.fingerprint); None for runs
    # from before it was kept.
    inputs: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(10))  # a CheckOutcome
    error_code: Mapped[str | None] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[str] = mapped_column(Text, default="")
    # The evidence as a message of ``verification.EVIDENCE`` and its values, so that pages
    # show it in their own language; None for rows stored before (their English text).
    evidence_key: Mapped[str | None] = mapped_column(String(40))
    evidence_params: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    configuration: Mapped[Configuration] = relationship(back_populates="verifications")


class AuditEvent(db.Model):
    """Who did what to which institution's configuration, and when."""

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(db.Model):
    """A key MyTimetable calls the provisioning API with, for one institution only.

    The key is shown once, when support makes it; only its SHA-256 is kept (it is 256
    random bits, so a fast hash is enough), and its first characters to tell keys apart.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    institution: Mapped[Institution] = relationship()


class Connection(db.Model):
    """One end user's (or, with application permissions, one mailbox's) synchronisation."""

    __table_args__ = (UniqueConstraint("configuration_id", "user_object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    configuration_id: Mapped[int] = mapped_column(ForeignKey("configuration.id"), index=True)
    # Delegated: the signed-in user's object ID. Application: unknown (reading users needs
    # more permission than calendars), so the mailbox is known by its UPN.
    user_object_id: Mapped[str | None] = mapped_column(String(36))
    upn: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(300), default="")
    token_cache_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    calendar_id: Mapped[str | None] = mapped_column(String(500))
    calendar_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(30), default=ConnectionStatus.CONNECTED)
    last_sync_at: Mapped[datetime | None]
    last_sync_outcome: Mapped[str | None] = mapped_column(String(30))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Microsoft's code for the last problem, and the IDs its answer gave for tracing the
    # request (Entra: Trace ID, Correlation ID, Timestamp; Graph: request-id,
    # client-request-id, date), as [name, value] pairs, for the IT service desk.
    last_error_code: Mapped[str | None] = mapped_column(String(100))
    last_error_ids: Mapped[list | None] = mapped_column(JSON)
    # Group following: the mailbox was a member of the followed group at the last pass, so
    # it ends once it leaves the group (mailboxes added otherwise are left alone).
    followed: Mapped[bool] = mapped_column(default=False, server_default=sql_false())
    # The language the user's connect pages were in when they connected: their e-mails'.
    language: Mapped[str | None] = mapped_column(String(8))
    event_count: Mapped[int] = mapped_column(default=0)
    # The last run in numbers, for the status page and the console.
    last_created: Mapped[int] = mapped_column(default=0)
    last_updated: Mapped[int] = mapped_column(default=0)
    last_deleted: Mapped[int] = mapped_column(default=0)
    last_failed: Mapped[int] = mapped_column(default=0)
    last_duration_ms: Mapped[int | None]
    feed_etag: Mapped[str | None] = mapped_column(String(500))
    feed_last_modified: Mapped[str | None] = mapped_column(String(100))
    # Events of the feed, as last read in full, that have no UID (RFC 5545 requires one):
    # the portal recognises them by their content, so support may want to tell the feed's
    # owner.
    feed_events_without_uid: Mapped[int] = mapped_column(default=0)
    # Outlook categories (colours), when the configuration shows them: the feed's categories
    # the mailbox's master list is known to have, made by the portal or found there (None
    # until the list was first read), and when Microsoft last refused the portal the list
    # (403: no MailboxSettings.ReadWrite), which holds further tries back for a while.
    master_categories: Mapped[list | None] = mapped_column(JSON)
    categories_refused_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    configuration: Mapped[Configuration] = relationship()


class SyncItem(db.Model):
    """One timetable occurrence the portal wrote: its Graph event and content hash."""

    __table_args__ = (UniqueConstraint("connection_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"), index=True)
    key: Mapped[str] = mapped_column(String(600))
    event_id: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SyncRefusal(db.Model):
    """A write of one occurrence that Graph refused for good (400), with Graph's words.

    The same write is not sent again: only once the request for the occurrence would be
    different (``request_hash``), because the feed or the portal changed it.
    """

    __table_args__ = (UniqueConstraint("connection_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"), index=True)
    key: Mapped[str] = mapped_column(String(600))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int]
    code: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    # What the occurrence is, for support: its subject and start (None for a removal).
    subject: Mapped[str] = mapped_column(String(255), default="")
    start: Mapped[datetime | None]
    refused_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncJob(db.Model):
    """A synchronisation asked for (first sync, Sync now), waiting for or done by a worker."""

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Graph asked to wait until then (a run it throttled): no runner takes the job earlier.
    not_before: Mapped[datetime | None]
    # Runners look for the jobs not yet taken and /metrics for those not yet finished,
    # among a period's worth of rows per connection.
    started_at: Mapped[datetime | None] = mapped_column(index=True)
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
    outcome: Mapped[str | None] = mapped_column(String(30))


class SyncSchedule(db.Model):
    """When the periodic synchronisation of every connection is next due.

    Every runner (``flask sync run``, each ``flask sync worker``) asks now and then; the one
    whose conditional update moves ``due_at`` on queues the connections, so each period
    queues them once however many runners there are, on however many machines.
    """

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    due_at: Mapped[datetime]


class GroupPass(db.Model):
    """One pass of group following: the members read, what it did, and the removals it
    held (more than ``PORTAL_GROUP_FOLLOW_MAX_REMOVALS``) until someone decides."""

    id: Mapped[int] = mapped_column(primary_key=True)
    configuration_id: Mapped[int] = mapped_column(ForeignKey("configuration.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(20))  # a PassState
    members: Mapped[int] = mapped_column(default=0)  # user members read (nested included)
    added: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)
    refused: Mapped[int] = mapped_column(default=0)
    held: Mapped[int] = mapped_column(default=0)
    removal_limit: Mapped[int | None]  # the most removals the pass could make unheld
    # [[address, Microsoft's code], ...] of the members Microsoft refused.
    refused_list: Mapped[list | None] = mapped_column(JSON)
    # [{"id": connection ID, "upn": address}, ...] of the removals held.
    held_list: Mapped[list | None] = mapped_column(JSON)
    # Why the pass failed (Microsoft's code and words), or what it could not finish.
    error_code: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decided_at: Mapped[datetime | None]

    configuration: Mapped[Configuration] = relationship()


class SyncThrottle(db.Model):
    """How Graph has been throttling one configuration's app in its tenant (Graph limits
    per app per tenant as well as per mailbox), as every runner sees it.

    ``strikes`` counts the runs Graph throttled since ``since``; once there are enough of
    them, no new run of the tenant's mailboxes starts before ``paused_until``.
    """

    configuration_id: Mapped[int] = mapped_column(ForeignKey("configuration.id"), primary_key=True)
    strikes: Mapped[int] = mapped_column(default=0)
    since: Mapped[datetime] = mapped_column(default=utcnow)
    paused_until: Mapped[datetime | None]


class StaffUser(db.Model):
    """A MyTimetable support engineer who signs in to the console."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]
    # The second factor: a TOTP secret (RFC 6238), encrypted like every secret at rest; None
    # until the staff member enrols at their first sign-in.
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The time step of the last code accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None]

    recovery_codes: Mapped[list["RecoveryCode"]] = relationship(
        back_populates="staff", cascade="all, delete-orphan"
    )


class RecoveryCode(db.Model):
    """A one-time code that stands in for the authenticator app; only its hash is kept."""

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None]

    staff: Mapped[StaffUser] = relationship(back_populates="recovery_codes")


class Notification(db.Model):
    """An e-mail to an administrator: sent through SMTP when configured, else kept here."""

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

    institution: Mapped[Institution | None] = relationship()


class ServerSession(db.Model):
    """A browser session kept on the server; the cookie only holds its random ID."""

    __tablename__ = "server_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(String(255), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    expiry: Mapped[datetime] = mapped_column(index=True)


def record(institution: Institution | None, actor: str, action: str, detail: str = "") -> None:
    """Add an audit event to the current transaction."""
    db.session.add(
        AuditEvent(
            institution_id=institution.id if institution else None,
            actor=actor,
            action=action,
            detail=detail,
        )
    )
