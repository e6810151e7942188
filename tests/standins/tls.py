"""A throwaway certificate authority and server certificate for the stand-ins.

MSAL refuses plain-http authorities, so the stand-ins serve https on 127.0.0.1 with a
certificate from a test CA. Clients trust that CA through ``bundle.pem``: the system's
CA bundle plus the test CA, suitable for ``REQUESTS_CA_BUNDLE`` or ``verify=``.

Not a behaviour of Microsoft's: the https that Microsoft's endpoints always use, made
possible on a test machine (MSAL Python's Authority refuses an authority that is not https).
"""

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class TestPKI:
    """Where the test CA, the server certificate and key, and the CA bundle were written."""

    __test__ = False  # not a pytest test class, despite its name

    ca_path: Path
    cert_path: Path
    key_path: Path
    bundle_path: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting the stand-ins' certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def make_test_pki(directory: Path) -> TestPKI:
    """Make a test CA and a certificate for 127.0.0.1 and localhost, written into
    ``directory`` as ca.pem, server.pem, server-key.pem and bundle.pem."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stand-in Test CA")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    server_cert = (
        _builder(server_name, ca_name, server_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    pki = TestPKI(
        ca_path=directory / "ca.pem",
        cert_path=directory / "server.pem",
        key_path=directory / "server-key.pem",
        bundle_path=directory / "bundle.pem",
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    pki.ca_path.write_bytes(ca_pem)
    pki.cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(pki.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(key_pem)

    system = SYSTEM_CA_BUNDLE.read_bytes() if SYSTEM_CA_BUNDLE.exists() else b""
    if system and not system.endswith(b"\n"):
        system += b"\n"
    # Written last and renamed into place: a script waiting for bundle.pem sees it whole.
    partial = pki.bundle_path.with_suffix(".partial")
    partial.write_bytes(system + ca_pem)
    partial.replace(pki.bundle_path)
    return pki


def _builder(subject, issuer, public_key, now) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
