"""Logs keep no key: invitation links' tokens and OAuth answers are taken out of every line
that gunicorn, the development server or the portal writes. gunicorn's lines are JSON in
production, as the portal's are, and its access lines carry the request's ID."""

import json
import logging
import runpy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests
from gunicorn.config import Config

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "c2VjcmV0LWludml0YXRpb24tdG9rZW4tZm9yLXRlc3Rz"
# gunicorn's own combined format and every atom that carries the address or the Referer
EVERYTHING = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(U)s %(q)s '
    "%({raw_uri}e)s %({path_info}e)s %({referer}i)s"
)


@pytest.fixture
def gunicorn_logger(tmp_path):
    """Make gunicorn's logger from the portal's gunicorn.conf.py, writing to files."""
    made = []

    def make(access_log_format=None):
        cfg = Config()
        for name, value in runpy.run_path(str(ROOT / "gunicorn.conf.py")).items():
            if name in cfg.settings:
                cfg.set(name, value)
        cfg.set("accesslog", str(tmp_path / "access.log"))
        cfg.set("errorlog", str(tmp_path / "error.log"))
        if access_log_format:
            cfg.set("access_log_format", access_log_format)
        made.append(cfg.logger_class(cfg))
        return made[-1]

    yield make
    for logger in made:  # gunicorn's loggers are the process's: close their files
        for log in (logger.error_log, logger.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
                handler.close()


def served(path: str, query: str = ""):
    """The response, request and environ gunicorn hands its access log for one request."""
    referer = f"https://portal.example.edu/setup/i/{TOKEN}"
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"{path}?{query}" if query else path,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": referer,
        "HTTP_USER_AGENT": "test",
    }
    request = SimpleNamespace(headers=[("REFERER", referer)])
    response = SimpleNamespace(status="302 FOUND", sent=0, headers=[("Location", "/setup/")])
    return response, request, environ, timedelta(milliseconds=7)


@pytest.mark.parametrize("access_log_format", [None, EVERYTHING], ids=["configured", "every"])
def test_the_gunicorn_access_log_keeps_no_key(gunicorn_logger, tmp_path, access_log_format):
    logger = gunicorn_logger(access_log_format)
    logger.access(*served(f"/setup/i/{TOKEN}", "to=rotation"))
    logger.access(*served("/connect/callback", f"code={TOKEN}&state={TOKEN}&session_state=x"))
    lines = (tmp_path / "access.log").read_text().splitlines()
    assert len(lines) == 2 and "/setup/i/" in lines[0] and "/connect/callback" in lines[1]
    assert all(TOKEN not in line for line in lines), lines


def test_the_gunicorn_error_log_keeps_no_key(gunicorn_logger, tmp_path):
    logger = gunicorn_logger()
    logger.error("Error handling request %s", f"/setup/i/{TOKEN}?to=rotation")
    text = (tmp_path / "error.log").read_text()
    assert "Error handling request /setup/i/" in text and TOKEN not in text


def _served_with_id(path: str, request_id: str):
    response, request, environ, took = served(path)
    response.headers.append(("X-Request-ID", request_id))
    return response, request, environ, took


def test_gunicorn_writes_json_lines_with_the_request_id_in_production(gunicorn_logger, tmp_path):
    logger = gunicorn_logger()
    logger.access(*_served_with_id("/setup/method", "0f8c2b0e6f4e4c5e"))
    logger.error("Worker (pid:%s) was sent SIGTERM!", 7)
    access = json.loads((tmp_path / "access.log").read_text())
    error = json.loads((tmp_path / "error.log").read_text())
    assert access["logger"] == "gunicorn.access" and access["time"]
    assert '"POST /setup/method" 302' in access["message"]
    assert access["message"].endswith(" 0f8c2b0e6f4e4c5e")
    assert error["level"] == "ERROR" and error["message"] == "Worker (pid:7) was sent SIGTERM!"


def test_gunicorn_writes_readable_lines_in_development(gunicorn_logger, tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "development")
    logger = gunicorn_logger()
    logger.access(*_served_with_id("/setup/method", "0f8c2b0e6f4e4c5e"))
    line = (tmp_path / "access.log").read_text().strip()
    assert line.startswith('127.0.0.1 "POST /setup/method" 302') and line.endswith("4c5e")


def test_the_development_server_and_the_portal_log_no_key(app, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    for logger in (app.logger, logging.getLogger("werkzeug")):
        # the test's migration (Alembic's logging configuration) disabled the loggers it found
        monkeypatch.setattr(logger, "disabled", False)
    # as werkzeug's development server and Flask's handler of an unexpected error write them
    logging.getLogger("werkzeug").info(
        '%s - - [%s] "%s" %s %s', "127.0.0.1", "now", f"GET /setup/i/{TOKEN} HTTP/1.1", 200, "-"
    )
    logging.getLogger("werkzeug").info(
        '"%s" %s %s', f"GET /connect/callback?code={TOKEN}&state={TOKEN} HTTP/1.1", 302, "-"
    )
    app.logger.error(f"Exception on /setup/i/{TOKEN} [POST]")
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3 and "/setup/i/" in messages[0] and "/connect/callback" in messages[1]
    assert all(TOKEN not in message for message in messages), messages


def test_gunicorn_serving_an_invitation_link_logs_no_token(make_app, tmp_path):
    from tests.conftest import CSRF, invitation_links
    from tests.integration.test_two_processes import free_port, start_gunicorn

    app = make_app(AUTHORITY_HOST="", GRAPH_ENDPOINT="", CA_BUNDLE="")
    path = urlsplit(invitation_links(app)["managed"]).path
    port, log = free_port(), tmp_path / "gunicorn.log"
    process = start_gunicorn(app, port, log)
    try:
        browser = requests.Session()
        link = f"http://127.0.0.1:{port}{path}?to=rotation"
        token = CSRF.search(browser.get(link).text).group(1)
        opened = browser.post(link, data={"csrf_token": token}, allow_redirects=False)
        assert opened.status_code == 302
    finally:
        process.terminate()
        process.wait(timeout=15)
    text = log.read_text()
    assert text.count("/setup/i/[redacted]") == 2, text
    assert path.rsplit("/", 1)[1] not in text
