"""Encryption at rest, certificate generation, thumbprints and key export.

Private keys and tokens are encrypted with Fernet under the keys in
``PORTAL_ENCRYPTION_KEY`` (comma-separated, newest first: MultiFernet decrypts with any
of them and encrypts with the first, so keys can rotate).
"""

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from flask import current_app

KEY_SIZE = 3072


class EncryptionKeyError(RuntimeError):
    """PORTAL_ENCRYPTION_KEY is malformed, or does not open what was stored."""


@functools.lru_cache(maxsize=8)
def _fernet(keys: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])
    except ValueError as exc:
        raise EncryptionKeyError(
            "PORTAL_ENCRYPTION_KEY must hold one or more Fernet keys (32 url-safe base64 "
            "bytes each), separated by commas."
        ) from exc


def check_keys(keys: str) -> None:
    """Fail at start-up, not at first use, when the encryption keys are malformed."""
    _fernet(keys)


def rotate(ciphertext: bytes) -> bytes:
    """Re-encrypt a stored secret with the first (newest) key."""
    return _fernet(current_app.config["ENCRYPTION_KEYS"]).rotate(ciphertext)


def encrypt(plaintext: bytes) -> bytes:
    """Encrypt a secret for storage with the current key."""
    return _fernet(current_app.config["ENCRYPTION_KEYS"]).encrypt(plaintext)


def decrypt(ciphertext: bytes) -> bytes:
    """Decrypt a stored secret with whichever configured key made it."""
    try:
        return _fernet(current_app.config["ENCRYPTION_KEYS"]).decrypt(ciphertext)
    except InvalidToken as exc:
        raise EncryptionKeyError(
            "A stored secret cannot be decrypted with PORTAL_ENCRYPTION_KEY; "
            "was the key changed without keeping the old one?"
        ) from exc


@dataclass(frozen=True)
class CertificateInfo:
    """What the pages and Microsoft need to know of a certificate's public part."""

    subject: str
    public_pem: str
    sha1_thumbprint: str  # upper-case hex, as Microsoft Entra shows it
    sha256_thumbprint: str
    not_before: datetime
    not_after: datetime


def describe(public_pem: str) -> CertificateInfo:
    """Read subject, thumbprints and validity from a PEM certificate."""
    cert = x509.load_pem_x509_certificate(public_pem.encode())
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        public_pem=public_pem,
        sha1_thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303  # nosec B303  # Entra's thumbprint: an ID, not a signature
        sha256_thumbprint=cert.fingerprint(hashes.SHA256()).hex().upper(),
        not_before=cert.not_valid_before_utc.replace(tzinfo=None),
        not_after=cert.not_valid_after_utc.replace(tzinfo=None),
    )


def generate_certificate(common_name: str, organisation: str, days: int) -> tuple[str, bytes]:
    """Make an RSA 3072 key and a self-signed SHA-256 certificate; return (cert PEM, key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def der_certificate(public_pem: str) -> bytes:
    """The certificate in DER form, the ``.cer`` file Microsoft Entra accepts."""
    cert = x509.load_pem_x509_certificate(public_pem.encode())
    return cert.public_bytes(serialization.Encoding.DER)


def pkcs12_bundle(public_pem: str, key_pem: bytes, password: str, friendly_name: str) -> bytes:
    """The key and certificate as a password-protected ``.pfx`` (AES-256, SHA-256 MAC)."""
    cert = x509.load_pem_x509_certificate(public_pem.encode())
    key = serialization.load_pem_private_key(key_pem, password=None)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode(), key, cert, None, encryption
    )


def token_hash(token: str) -> str:
    """The SHA-256 of an invitation token: only this is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def slugify(name: str) -> str:
    """A URL- and file-name-safe short name for an institution."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "institution"
