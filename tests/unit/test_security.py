"""Certificates, thumbprints, key export and encryption at rest."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from portal import security


@pytest.fixture(scope="module")
def generated():
    return security.generate_certificate("MyTimetable - Example", "Example University", 730)


def test_generated_certificate_is_rsa_3072_sha256_self_signed(generated):
    cert = x509.load_pem_x509_certificate(generated[0].encode())
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.public_key().key_size >= 3072
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.issuer == cert.subject
    assert "Example University" in cert.subject.rfc4514_string()
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 731


def test_thumbprints_are_upper_case_hex_as_entra_shows_them(generated):
    info = security.describe(generated[0])
    cert = x509.load_pem_x509_certificate(generated[0].encode())
    assert info.sha1_thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert len(info.sha256_thumbprint) == 64 and info.sha256_thumbprint.isupper()


def test_pfx_opens_only_with_its_password(generated):
    bundle = security.pkcs12_bundle(generated[0], generated[1], "correct horse battery", "MT")
    key, cert, _ = pkcs12.load_key_and_certificates(bundle, b"correct horse battery")
    assert key.key_size >= 3072 and cert is not None
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle, b"wrong password")


def test_cer_download_is_der(generated):
    der = security.der_certificate(generated[0])
    assert x509.load_der_x509_certificate(der).subject is not None


def test_secrets_round_trip_and_are_not_stored_in_clear(app):
    with app.app_context():
        sealed = security.encrypt(b"private key material")
        assert b"private key material" not in sealed
        assert security.decrypt(sealed) == b"private key material"


def test_old_key_still_decrypts_after_rotation(make_app):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with make_app(ENCRYPTION_KEYS=old).app_context():
        sealed = security.encrypt(b"token")
    with make_app(ENCRYPTION_KEYS=f"{new},{old}").app_context():
        assert security.decrypt(sealed) == b"token"


def test_malformed_encryption_key_stops_start_up(make_app):
    with pytest.raises(security.EncryptionKeyError, match="Fernet keys"):
        make_app(ENCRYPTION_KEYS="not-a-key")
