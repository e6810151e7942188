"""Certificates MyTimetable signs in with: the vendor's (managed hosting) and generated ones."""

from . import security
from .extensions import db
from .models import Certificate, Configuration, Institution, record

MAX_VALIDITY_DAYS = 731  # two years, leap day included


def _store(
    source: str, public_pem: str, key_pem: bytes, current: bool = False, upcoming: bool = False
) -> Certificate:
    info = security.describe(public_pem)
    certificate = Certificate(
        source=source,
        subject=info.subject,
        public_pem=public_pem,
        private_key_encrypted=security.encrypt(key_pem),
        sha1_thumbprint=info.sha1_thumbprint,
        sha256_thumbprint=info.sha256_thumbprint,
        not_before=info.not_before,
        not_after=info.not_after,
        current=current,
        upcoming=upcoming,
    )
    db.session.add(certificate)
    return certificate


def create_vendor_certificate(
    days: int = 730, actor: str = "cli", upcoming: bool = False
) -> Certificate:
    """Make a vendor certificate for managed hosting: the current one, or (``upcoming``)
    the one a rotation rolls out while the current one stays in use."""
    if not upcoming:
        for old in db.session.query(Certificate).filter_by(source="vendor", current=True):
            old.current = False
    public_pem, key_pem = security.generate_certificate(
        "MyTimetable Office 365 connector", "MyTimetable", min(days, MAX_VALIDITY_DAYS)
    )
    certificate = _store("vendor", public_pem, key_pem, current=not upcoming, upcoming=upcoming)
    db.session.flush()
    record(
        None,
        actor,
        "vendor_certificate_created",
        f"{'upcoming, ' if upcoming else ''}SHA-1 {certificate.sha1_thumbprint}, "
        f"valid for {days} days",
    )
    return certificate


def generate_for(institution: Institution, days: int, actor: str) -> Certificate:
    """Give an on-premises institution its own key pair and self-signed certificate."""
    if not 1 <= days <= MAX_VALIDITY_DAYS:
        raise ValueError("validity must be between 1 day and 2 years")
    public_pem, key_pem = security.generate_certificate(
        f"MyTimetable Office 365 connector - {institution.name}", institution.name, days
    )
    certificate = _store("generated", public_pem, key_pem)
    configuration: Configuration = institution.configuration
    replaced = configuration.certificate
    configuration.certificate = certificate
    detail = f"SHA-1 {certificate.sha1_thumbprint}, valid until {certificate.not_after:%Y-%m-%d}"
    if replaced is not None and replaced.source == "generated":
        # Nothing signs with a replaced key again: a kept copy could only leak.
        db.session.delete(replaced)
        detail += f"; the key of SHA-1 {replaced.sha1_thumbprint} was deleted"
    db.session.flush()
    record(institution, actor, "certificate_generated", detail)
    return certificate


def key_offered(configuration: Configuration) -> bool:
    """Whether the administrator may download the configuration's private key (.pfx): an
    institution's generated key, until the configuration is exported with it. MyTimetable
    holds it from then on; a copy still offered would only be one more way for it to leak."""
    certificate = configuration.certificate
    if certificate is None or certificate.source != "generated":
        return False
    return configuration.exported_at is None or configuration.exported_at < certificate.created_at


def private_key_pem(certificate: Certificate) -> bytes:
    """The decrypted private key, for signing or for the .pfx download only."""
    return security.decrypt(certificate.private_key_encrypted)


def key_file_name(institution: Institution) -> str:
    """The name MyTimetable's configuration expects for the key file."""
    return f"mytimetable-{institution.slug}.pfx"
