"""Which addresses from a request the portal may redirect a browser to."""

import re
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.urls import local_target

OFF_SITE = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    " //evil.example",
    "\x00//evil.example",
    "http:evil.example",
    "http:/evil.example",
    "https:\\\\evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "%2F%2Fevil.example",
    "/%2Fevil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "evil.example",
    "setup/",
    "",
    None,
    "/" + "a" * 3000,
]
LOCAL = ["/", "/setup/", "/setup/tenant", "/support/?status=submitted&q=a%20b", "/connect/x#top"]


@pytest.mark.parametrize("target", OFF_SITE)
def test_addresses_off_the_portal_are_refused(target):
    assert local_target(target) is None


@pytest.mark.parametrize("target", LOCAL)
def test_paths_on_the_portal_pass_unchanged(target):
    assert local_target(target) == target


def test_only_text_is_a_target():
    assert local_target(["/setup/"]) is None


@settings(max_examples=300, derandomize=True, database=None)
@given(st.text(max_size=80).map(lambda t: "/" + t) | st.text(max_size=80))
def test_a_passed_target_stays_on_the_portal_as_a_browser_reads_it(target):
    passed = local_target(target)
    if passed is None:
        return
    # What a browser does with a Location: drop tabs and newlines, read \ as /, resolve.
    as_read = re.sub(r"[\t\n\r]", "", passed).replace("\\", "/")
    for form in (as_read, unquote(as_read)):
        assert urlsplit(urljoin("https://portal.example/setup/", form)).netloc == ("portal.example")
