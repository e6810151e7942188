"""No address that comes with a request sends the browser off the portal: every redirect
that reads one (the language switcher's ``next``, an invitation link's ``to``, a ``next``
on the staff sign-in) ends on a path of the portal."""

import re
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import CSRF
from tests.unit.test_urls import OFF_SITE

TARGETS = [t for t in OFF_SITE if t] + [
    "https://evil.example/%2e%2e",
    "https%3A%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "//evil.example@localhost",
    "/\u3000/evil.example",
    "/%E3%80%80/evil.example",
    "\u2215\u2215evil.example",
]


def assert_stays_on_the_portal(response):
    if response.status_code in (301, 302, 303, 307, 308):
        location = response.headers["Location"]
        assert location.startswith("/"), location
        assert not location.startswith(("//", "/\\")), location
        as_read = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
        assert urlsplit(urljoin("http://localhost/setup/", as_read)).netloc == "localhost"


def _has_route(app, endpoint: str) -> bool:
    return any(rule.endpoint == endpoint for rule in app.url_map.iter_rules())


@pytest.mark.parametrize("target", TARGETS)
def test_the_language_switcher_goes_back_only_to_a_portal_page(app, client, target):
    if not _has_route(app, "language"):
        pytest.skip("no language switcher in this portal yet")
    response = client.get("/language/nl", query_string={"next": target})
    assert response.status_code == 302
    assert_stays_on_the_portal(response)


def test_the_language_switcher_goes_back_to_the_page_it_was_on(app, client):
    if not _has_route(app, "language"):
        pytest.skip("no language switcher in this portal yet")
    response = client.get("/language/nl", query_string={"next": "/support/sign-in?x=1"})
    assert response.headers["Location"] == "/support/sign-in?x=1"


@pytest.mark.parametrize("target", TARGETS)
def test_an_invitation_link_opens_only_the_wizard(client, invitation, target):
    link = invitation["managed"].replace("http://localhost", "")
    for name in ("to", "next", "return", "return_to"):
        response = client.get(link, query_string={name: target})
        assert_stays_on_the_portal(response)


@pytest.mark.parametrize("target", TARGETS)
def test_staff_sign_in_goes_only_to_the_console(app, client, runner, target):
    password = "correct horse battery staple"
    runner.invoke(args=["staff", "create", "s@mytimetable.example"], input=f"{password}\n" * 2)
    token = CSRF.search(client.get("/support/sign-in").text).group(1)
    response = client.post(
        "/support/sign-in",
        query_string={"next": target},
        data={"csrf_token": token, "email": "s@mytimetable.example", "password": password,
              "next": target},
        headers={"Referer": target if target.isprintable() else "https://evil.example/"},
    )  # fmt: skip
    assert response.status_code == 302
    assert_stays_on_the_portal(response)


@pytest.mark.parametrize("target", TARGETS[:8])
def test_pages_never_follow_a_referer_off_the_portal(client, invitation, target):
    client.get(invitation["on_premises"].replace("http://localhost", ""))
    for path in ("/setup/", "/support/", "/connect/callback", "/setup/i/nothing"):
        headers = {"Referer": target if target.isprintable() else "https://evil.example/"}
        assert_stays_on_the_portal(client.get(path, query_string={"next": target}, headers=headers))
