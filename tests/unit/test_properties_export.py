"""The on-premises configuration file: read back as Java reads it (``Properties.load``),
every key holds exactly the value the portal meant and there are no other keys, whatever the
institution, tenant or group were called."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings

from portal import export
from portal.microsoft.clouds import cloud
from tests.hostile import INJECTIONS, hostile_text
from tests.javaproperties import read

KEYS = {
    "office365.method",
    "office365.cloud",
    "office365.tenantId",
    "office365.clientId",
    "office365.authority",
    "office365.graphEndpoint",
    "office365.scopes",
    "office365.certificate.thumbprintSha1",
    "office365.certificate.thumbprintSha256",
    "office365.certificate.notAfter",
    "office365.certificate.keyFile",
    "office365.outlookCategories",
    "office365.securityGroup",
}


@pytest.fixture
def app_context(app):
    with app.app_context():
        yield


def configuration(value: str) -> SimpleNamespace:
    """An application-permissions configuration with ``value`` in every free-text field."""
    return SimpleNamespace(
        method="application",
        cloud="worldwide",
        tenant_guid=None,
        tenant_id=value,
        client_id=value,
        security_group_email=value,
        group=value,  # the configuration is limited to that group
        outlook_categories=False,
        institution=SimpleNamespace(name=value, slug=value),
        certificate=SimpleNamespace(
            sha1_thumbprint=value,
            sha256_thumbprint=value,
            not_after=datetime(2030, 1, 1, tzinfo=UTC),
        ),
    )


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("a=b\n", [("a", "b")]),
        ("  a : b \n", [("a", "b ")]),
        ("a b=c", [("a", "b=c")]),
        ("a\\ b=c\\\n   d\\\\\n", [("a b", "cd\\")]),
        ("# x\\\n! y\na\\=\\:\\u00e9\\t=\\ \\n", [("a=:\u00e9\t", " \n")]),
        ("a=\\uD83D\\uDCA5\\uFEFF\r\nb=\\x", [("a", "\U0001f4a5\ufeff"), ("b", "x")]),
    ],
)
def test_the_reader_follows_properties_load(text, pairs):
    assert read(text) == pairs


def check_file(value: str):
    text = export.mytimetable_properties(configuration(value))
    assert text.isascii(), "Java reads the file as ISO 8859-1: anything else is \\u-escaped"
    pairs = read(text)
    found = dict(pairs)
    assert len(pairs) == len(found), "a key written twice"
    assert set(found) == KEYS
    where = cloud("worldwide")
    assert found["office365.tenantId"] == value
    assert found["office365.clientId"] == value
    assert found["office365.authority"] == f"{where.authority_host}/{value}"
    assert found["office365.securityGroup"] == value
    assert found["office365.certificate.thumbprintSha1"] == value
    assert found["office365.certificate.thumbprintSha256"] == value
    assert found["office365.certificate.keyFile"] == f"mytimetable-{value}.pfx"
    assert found["office365.graphEndpoint"] == where.graph_endpoint
    assert found["office365.method"] == "application"


@pytest.mark.parametrize("value", [v for v in INJECTIONS if v])  # "" leaves out the group
def test_a_hostile_value_comes_back_as_itself(app_context, value):
    check_file(value)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the app is only read
)
@given(value=hostile_text.filter(bool))
def test_generated_hostile_values_come_back_as_themselves(app, value):
    with app.app_context():
        check_file(value)


def test_a_name_with_line_breaks_stays_in_its_comment(app_context):
    text = export.mytimetable_properties(
        configuration("x\noffice365.authority=https://evil.example/\r\n!y")
    )
    assert "\noffice365.authority=https://evil.example/" not in text
    assert text.splitlines()[0].startswith("# MyTimetable Office 365 connection for x")
