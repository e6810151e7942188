"""Operating the portal: health checks, key rotation, security headers over https."""

from cryptography.fernet import Fernet

from portal import certificates, security
from portal.extensions import db
from portal.models import Certificate


def test_healthz_reports_the_database_and_redis_when_used(app, client):
    response = client.get("/healthz")
    expected = {"database": "ok"} | ({"redis": "ok"} if app.config["REDIS_URL"] else {})
    assert response.status_code == 200 and response.json == expected


def test_healthz_reports_an_unreachable_redis(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:9/0")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["redis"] != "ok"


def test_keys_rotate_re_encrypts_with_the_new_key_and_the_old_one_can_go(make_app):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app = make_app(ENCRYPTION_KEYS=old)
    with app.app_context():
        certificates.create_vendor_certificate(365, "test")
        db.session.commit()
    rotated = make_app(ENCRYPTION_KEYS=f"{new},{old}")
    result = rotated.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and "1 secret(s)" in result.output
    with make_app(ENCRYPTION_KEYS=new).app_context():
        stored = db.session.query(Certificate).one().private_key_encrypted
        assert b"PRIVATE KEY" in security.decrypt(stored)


def test_hsts_is_sent_over_https_only(client):
    assert "Strict-Transport-Security" not in client.get("/").headers
    secure = client.get("/", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
