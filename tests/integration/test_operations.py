"""Operating the portal: health checks, key rotation, security headers over https."""

import flask_session.base
import pytest
from cryptography.fernet import Fernet

from portal import certificates, security
from portal.extensions import db
from portal.models import Certificate, ServerSession
from tests.conftest import SCALE_OUT


def test_healthz_reports_the_database_and_redis_when_used(app, client):
    response = client.get("/healthz")
    expected = {"status": "ok", "database": "ok"} | (
        {"redis": "ok"} if app.config["REDIS_URL"] else {}
    )
    assert response.status_code == 200 and response.json == expected


def test_healthz_reports_an_unreachable_redis(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:9/0")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.is_json
    assert response.json["status"] == "down" and response.json["down"] == ["redis"]
    assert response.json["redis"] != "ok"


def test_healthz_opens_no_session(app, client):
    response = client.get("/healthz")
    assert "Set-Cookie" not in response.headers
    with app.app_context():
        assert db.session.query(ServerSession).count() == 0


@pytest.mark.skipif(SCALE_OUT, reason="a read-only SQLite file stands for a full or read-only disk")
def test_healthz_reports_a_database_that_can_be_read_but_not_written(app, make_app):
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    read_only = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///file:{path}?mode=ro&uri=true")
    response = read_only.test_client().get("/healthz")
    assert response.status_code == 503 and response.is_json
    assert response.json["status"] == "down" and response.json["down"] == ["database"]


@pytest.mark.skipif(
    SCALE_OUT, reason="an SQLite file that cannot be opened stands for a lost database"
)
def test_healthz_answers_json_when_the_database_is_gone_even_with_a_session_cookie(make_app):
    client = make_app(SQLALCHEMY_DATABASE_URI="sqlite:////nonexistent/portal.db").test_client()
    client.set_cookie("portal_session", "a-session-id-the-store-would-be-asked-for")
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["down"] == ["database"]
    assert "Set-Cookie" not in response.headers


def test_healthz_answers_json_when_the_session_cleanup_meets_a_lost_database(make_app, monkeypatch):
    # Flask-Session deletes expired sessions before about one request in 1,000, chosen by
    # random.randint: here before this one.
    monkeypatch.setattr(flask_session.base.random, "randint", lambda low, high: 0)
    client = make_app(SQLALCHEMY_DATABASE_URI="sqlite:////nonexistent/portal.db").test_client()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["down"] == ["database"]


def test_healthz_leaves_nothing_behind_in_the_database(app, client):
    with app.app_context():
        before = {
            table: db.session.execute(db.select(db.func.count()).select_from(table)).scalar()
            for table in db.metadata.sorted_tables
        }
    assert client.get("/healthz").status_code == 200
    with app.app_context():
        after = {
            table: db.session.execute(db.select(db.func.count()).select_from(table)).scalar()
            for table in db.metadata.sorted_tables
        }
    assert before == after


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
