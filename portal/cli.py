"""``flask ...`` commands for support staff and for running the portal on one machine."""

import signal
import threading
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from flask_migrate import upgrade
from redis.exceptions import RedisError

from . import certificates, groups, invitations, metrics, staff
from .extensions import db
from .models import Certificate, Hosting, Institution
from .sync import jobs
from .validators import has_control_characters

ACTOR = "support (command line)"


def register(app: Flask) -> None:
    """Add the portal's commands to ``app.cli``."""
    app.cli.add_command(invite)
    app.cli.add_command(vendor_cert)
    app.cli.add_command(demo)
    app.cli.add_command(staff_group)
    app.cli.add_command(sync_group)
    app.cli.add_command(keys_group)


@click.group(cls=AppGroup)
def invite():
    """Institutions' invitation links to the setup wizard."""


def _institution_name(ctx, param, value: str) -> str:
    """The same rule as the console's form: the name goes into scripts and files."""
    if has_control_characters(value):
        raise click.BadParameter("use printable text on one line: it has control characters.")
    return value


@invite.command("create")
@click.argument("name", callback=_institution_name)
@click.option(
    "--hosting",
    type=click.Choice([h.value for h in Hosting]),
    required=True,
    help="managed: MyTimetable hosts it; on_premises: the institution does.",
)
@click.option("--email", required=True, help="The administrator's e-mail address.")
@click.option("--days", type=click.IntRange(1, 365), default=None, help="Days the link is valid.")
def invite_create(name: str, hosting: str, email: str, days: int | None):
    """Create an institution and print its invitation link."""
    institution = invitations.create_institution(name, hosting, email, ACTOR)
    link = invitations.issue_invitation(institution, ACTOR, days)
    db.session.commit()
    click.echo(f"Invitation for {institution.name} ({institution.hosting}): {link}")


@invite.command("reissue")
@click.argument("slug")
def invite_reissue(slug: str):
    """Print a new invitation link for an existing institution; the older ones stop working."""
    institution = db.session.query(Institution).filter_by(slug=slug).one_or_none()
    if institution is None:
        raise click.ClickException(f"No institution with the short name {slug!r}.")
    link = invitations.issue_invitation(institution, ACTOR)
    db.session.commit()
    click.echo(f"Invitation for {institution.name}: {link}")


@click.group("vendor-cert", cls=AppGroup)
def vendor_cert():
    """The vendor certificate that managed-hosting institutions upload."""


@vendor_cert.command("create")
@click.option("--days", type=click.IntRange(30, 731), default=730, help="Validity in days.")
def vendor_cert_create(days: int):
    """Make a new vendor certificate and make it the current one."""
    certificate = certificates.create_vendor_certificate(days, ACTOR)
    db.session.commit()
    click.echo(
        f"Vendor certificate {certificate.sha1_thumbprint} (SHA-1), "
        f"valid until {certificate.not_after:%Y-%m-%d}."
    )


@vendor_cert.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def vendor_cert_export(path: str):
    """Write the current vendor certificate's public part (PEM) to PATH."""
    certificate = Certificate.current_vendor()
    if certificate is None:
        raise click.ClickException(
            "There is no vendor certificate: run 'flask vendor-cert create'."
        )
    with open(path, "w") as file:
        file.write(certificate.public_pem)


DEMO_STAFF = "support@mytimetable.example"
DEMO_INSTITUTIONS = (
    ("Example University", Hosting.MANAGED),
    ("Example College (on-premises)", Hosting.ON_PREMISES),
)


@click.command()
@with_appcontext
def demo():
    """Migrate the database, add demo data once, and print fresh invitation links."""
    upgrade()
    if Certificate.current_vendor() is None:
        certificates.create_vendor_certificate(730, ACTOR)
    click.echo("\nInvitation links to the setup wizard:")
    for name, hosting in DEMO_INSTITUTIONS:
        institution = db.session.query(Institution).filter_by(name=name).first()
        if institution is None:
            institution = invitations.create_institution(name, hosting, "admin@example.edu", ACTOR)
        link = invitations.issue_invitation(institution, ACTOR)
        click.echo(f"  {name}: {link}")
    password, secret = staff.reset_demo_account(DEMO_STAFF)
    db.session.commit()
    console = f"{current_app.config['EXTERNAL_URL']}/support/"
    click.echo(
        f"\nSupport console: {console}\n  {DEMO_STAFF} / {password}\n"
        f"  TOTP secret (add it to an authenticator app as a time-based key): {secret}\n"
    )


@click.group("staff", cls=AppGroup)
def staff_group():
    """Support staff accounts for the console."""


def _ask_password(label: str) -> str:
    return click.prompt(
        f"{label} (at least 12 characters, not easy to guess)",
        hide_input=True,
        confirmation_prompt=True,
    )


@staff_group.command("create")
@click.argument("email")
@click.option("--generate", is_flag=True, help="Make a strong password and print it once.")
def staff_create(email: str, generate: bool):
    """Add a staff member; asks for the password unless --generate is given."""
    password = None if generate else _ask_password("Password")
    try:
        member, generated = staff.create_staff(email, password)
    except staff.StaffError as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(
        f"Staff account {member.email} created; it adds an authenticator app at its first sign-in."
    )
    if generated:
        click.echo(f"Password (shown once): {generated}")


@staff_group.command("password")
@click.argument("email")
@click.option("--generate", is_flag=True, help="Make a strong password and print it once.")
def staff_password(email: str, generate: bool):
    """Give a staff member a new password; asks for it unless --generate is given."""
    password = None if generate else _ask_password("New password")
    try:
        generated = staff.set_password(email, password)
    except staff.StaffError as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"New password set for {email}.")
    if generated:
        click.echo(f"Password (shown once): {generated}")


@staff_group.command("reset-authenticator")
@click.argument("email")
def staff_reset_authenticator(email: str):
    """Forget a staff member's authenticator app and recovery codes (a lost phone)."""
    try:
        staff.reset_authenticator(email)
    except staff.StaffError as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"{email} adds a new authenticator app at the next sign-in.")


@click.group("sync", cls=AppGroup)
def sync_group():
    """Timetable synchronisations (the embedded default runs them in this process)."""


@sync_group.command("run")
@click.option("--once", is_flag=True, help="Run the waiting jobs once, then stop.")
@click.option(
    "--interval", type=click.IntRange(5, 86400), default=60, help="Seconds between passes."
)
@click.option(
    "--every",
    type=click.IntRange(0, 1440),
    default=60,
    help="Minutes between syncs of every connection (0: only when asked).",
)
def sync_run(once: bool, interval: int, every: int):
    """Run synchronisations: the waiting jobs, and every connection periodically."""
    on_redis = bool(current_app.config.get("REDIS_URL"))
    follow_minutes = current_app.config["GROUP_FOLLOW_MINUTES"]
    while True:
        # Once per period, whichever runner (this or a worker) comes first.
        queued = jobs.schedule(every) if every else None
        followed = groups.run_due(follow_minutes) if follow_minutes else 0
        if followed:
            click.echo(f"{followed} pass(es) of group following run.")
        if queued is not None and on_redis:
            click.echo(f"{queued} synchronisation(s) queued for the workers.")
        if on_redis:
            try:
                click.echo(f"{jobs.sweep()} synchronisation(s) pushed again.")
            except RedisError as error:
                click.echo(f"Redis did not answer ({type(error).__name__}); sweeping later.")
        else:
            ran = jobs.run_waiting()
            click.echo(f"{ran} synchronisation(s) run.")
        if once:
            return
        time.sleep(interval)


@sync_group.command("worker")
@click.option("--burst", is_flag=True, help="Sweep once, run what is queued, then stop.")
@click.option(
    "--every",
    type=click.IntRange(0, 1440),
    default=60,
    help="Minutes between syncs of every connection (0: only when asked); whichever "
    "worker comes first queues them, once per period.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve /metrics (PORTAL_METRICS_TOKEN) on this port, for a machine without gunicorn.",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
def sync_worker(burst: bool, every: int, metrics_port: int | None, metrics_host: str):
    """Run synchronisation jobs from the Redis queue (needs PORTAL_REDIS_URL)."""
    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException("Set PORTAL_REDIS_URL: without Redis, use 'flask sync run'.")
    app = current_app._get_current_object()
    if metrics_port:
        if not current_app.config.get("METRICS_TOKEN"):
            raise click.ClickException("Set PORTAL_METRICS_TOKEN to serve /metrics.")
        try:
            metrics.serve_apart(app, metrics_host, metrics_port)
        except OSError as error:  # the port is taken (another worker here serves it)
            raise click.ClickException(
                f"/metrics cannot listen on {metrics_host}:{metrics_port} ({error.strerror})."
            ) from error
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # A stop lets the runs under way end first (a second one still waits for them).
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        # Jobs that never reached the queue, or lost their worker, are pushed again by
        # every worker: now, and every minute while it works.
        jobs.sweep()
        if not burst:
            jobs.sweep_periodically(app, stop, every)
            # Each configuration's group, once per PORTAL_GROUP_FOLLOW_MINUTES, whichever
            # runner comes first.
            if current_app.config["GROUP_FOLLOW_MINUTES"]:
                groups.follow_periodically(app, stop, current_app.config["GROUP_FOLLOW_MINUTES"])
        # PORTAL_SYNC_CONCURRENCY mailboxes at once in this process; start as many worker
        # processes, on as many machines, as the load needs.
        taken = jobs.work(app, stop, burst=burst)
    finally:
        stop.set()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo(f"{taken} synchronisation(s) run.")


@click.group("keys", cls=AppGroup)
def keys_group():
    """The encryption keys of private keys and tokens at rest."""


@keys_group.command("rotate")
def keys_rotate():
    """Re-encrypt every stored secret with the newest key of PORTAL_ENCRYPTION_KEY.

    Put the new key first and keep the old ones after it; once this has run, the old
    keys can be removed.
    """
    from . import security
    from .models import Connection

    count = 0
    for certificate in db.session.query(Certificate):
        certificate.private_key_encrypted = security.rotate(certificate.private_key_encrypted)
        count += 1
    for connection in db.session.query(Connection).filter(
        Connection.token_cache_encrypted.isnot(None)
    ):
        connection.token_cache_encrypted = security.rotate(connection.token_cache_encrypted)
        count += 1
    db.session.commit()
    click.echo(f"{count} secret(s) re-encrypted with the newest key.")
