"""Every response carries the security headers, errors, files and downloads included; the
session cookie is HttpOnly and SameSite=Lax, and Secure when the portal is on https."""

import pytest

from tests.conftest import sign_in_staff

HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


def _csp(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def assert_security_headers(response, https=False):
    for name in HEADERS:
        assert name in response.headers, name
    csp = _csp(response)
    scripts = csp.get("script-src", csp.get("default-src"))
    assert scripts, "no script-src nor default-src"
    assert "'unsafe-inline'" not in scripts and "*" not in scripts
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin")
    assert ("Strict-Transport-Security" in response.headers) is https


@pytest.fixture
def console_client(app, runner):
    password = "correct horse battery staple"
    runner.invoke(args=["staff", "create", "s@mytimetable.example"], input=f"{password}\n" * 2)
    client = app.test_client()
    assert sign_in_staff(client, "s@mytimetable.example", password).status_code == 302
    return client


def _responses(client, wizard, invitation, console_client):
    wizard.open(invitation["on_premises"])
    wizard.to_tenant()
    return {
        "page": client.get("/setup/tenant"),
        "redirect": client.get("/setup/"),
        "not found": client.get("/nothing-here"),
        "method not allowed": client.get("/setup/submit"),
        "expired form (CSRF)": client.post("/setup/tenant", data={"tenant_id": "x"}),
        "too large": client.post("/setup/tenant", data={"x": "x" * (2 * 1024 * 1024)}),
        "static file": client.get("/static/css/portal.css"),
        "certificate download": client.get("/setup/certificate.pem"),
        "script download": client.get("/setup/scripts/rbac.ps1"),
        "callback error": client.get("/connect/callback?state=forged"),
        "health": client.get("/healthz"),
        "export download": console_client.get("/support/export.csv"),
    }


def test_every_kind_of_response_carries_the_security_headers(
    client, wizard, invitation, console_client
):
    for kind, response in _responses(client, wizard, invitation, console_client).items():
        response.close()  # a static file is streamed from disk
        assert response.status_code < 500, kind
        try:
            assert_security_headers(response)
        except AssertionError as error:
            raise AssertionError(f"{kind}: {error}") from error


def test_over_https_every_response_also_carries_hsts(make_app, invitation):
    app = make_app(EXTERNAL_URL="https://portal.example")
    client = app.test_client()
    for path in ("/", "/nothing-here", "/static/css/portal.css", "/setup/submit"):
        with client.get(path, base_url="https://localhost") as response:
            assert_security_headers(response, https=True)


def _session_cookie(response, name: str = "portal_session") -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    assert cookies, response.headers.getlist("Set-Cookie")
    return cookies[0]


def test_the_session_cookie_is_httponly_and_samesite_lax(client, invitation):
    cookie = _session_cookie(client.get(invitation["managed"].replace("http://localhost", "")))
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes  # the portal is on http here: a Secure cookie is lost


def test_the_session_cookie_is_a_secure_host_cookie_on_https(make_app, invitation):
    app = make_app(EXTERNAL_URL="https://portal.example")
    client = app.test_client()
    link = invitation["managed"].replace("http://localhost", "")
    # the __Host- prefix: only a Secure cookie of this host, for every path, may have the name
    response = client.get(link, base_url="https://localhost")
    cookie = _session_cookie(response, "__Host-portal_session")
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert {"httponly", "samesite=lax", "secure", "path=/"} <= set(attributes)
    assert not any(a.startswith("domain=") for a in attributes)
