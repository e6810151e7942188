"""The Exchange Online and Microsoft Graph PowerShell scripts carry each value the
administrator or support typed as one PowerShell single-quoted string with the value's exact
text, and nothing else of the script changes with the values (``tests.hostile.literals``
reads a script as PowerShell does)."""

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.microsoft.clouds import CLOUDS
from portal.setup import scripts
from tests.hostile import INJECTIONS, hostile_text, literals

FIELDS = (
    "client_id",
    "security_group_email",
    "service_principal_id",
    "test_mailbox",
    "outside_mailbox",
    "exchange_environment",
    "institution_name",
)


def make_script(name: str, values: dict, outlook_categories: bool = False) -> str:
    configuration = SimpleNamespace(
        client_id=values["client_id"],
        security_group_email=values["security_group_email"],
        service_principal_id=values["service_principal_id"],
        test_mailbox=values["test_mailbox"],
        outside_mailbox=values["outside_mailbox"],
        outlook_categories=outlook_categories,
        institution=SimpleNamespace(name=values["institution_name"]),
    )
    cloud = SimpleNamespace(key="worldwide", exchange_environment=values["exchange_environment"])
    return scripts.SCRIPTS[name](configuration, cloud)


def markers() -> dict:
    return {field: f"VALUE-{n}-" for n, field in enumerate(FIELDS)}


def check_script(name: str, values: dict):
    """Each value sits in the literals where its marker sat, and the code is the same."""
    expected_literals, expected_code = literals(make_script(name, markers()))
    got_literals, got_code = literals(make_script(name, values))
    assert got_code == expected_code
    replaced = []
    for literal in expected_literals:
        for field, marker in markers().items():
            literal = literal.replace(marker, values[field])
        replaced.append(literal)
    assert got_literals == replaced


def test_every_value_is_inside_a_literal():
    shown = set()
    for name in scripts.SCRIPTS:
        found, code = literals(make_script(name, markers()))
        for field, marker in markers().items():
            assert marker not in code, f"{field} is outside a string in {name}"
            if any(marker in literal for literal in found):
                shown.add(field)
    assert shown == set(FIELDS)


@pytest.mark.parametrize("name", sorted(scripts.SCRIPTS))
@pytest.mark.parametrize("value", [v for v in INJECTIONS if v])  # "" shows a placeholder
def test_a_hostile_value_stays_one_literal(name, value):
    for field in FIELDS:
        check_script(name, markers() | {field: value})


@pytest.mark.parametrize("name", sorted(scripts.SCRIPTS))
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_generated_hostile_values_stay_literals(name, data):
    values = {field: data.draw(hostile_text.filter(bool), label=field) for field in FIELDS}
    check_script(name, values)


def test_the_exchange_environment_of_every_cloud_is_quoted():
    for cloud in CLOUDS.values():
        values = markers() | {"exchange_environment": cloud.exchange_environment}
        script = make_script("rbac", values)
        assert f"-ExchangeEnvironmentName '{cloud.exchange_environment}'" in script


@pytest.mark.parametrize(
    ("name", "absent", "present"),
    [
        (
            "rbac",
            "Application MailboxSettings.ReadWrite",
            "-Role 'Application MailboxSettings.ReadWrite'",
        ),
        ("consent-policy", "'MailboxSettings.ReadWrite'", "'MailboxSettings.ReadWrite'"),
    ],
)
def test_the_colours_permission_is_in_a_script_only_when_colours_are_chosen(name, absent, present):
    assert absent not in make_script(name, markers())
    assert present in make_script(name, markers(), outlook_categories=True)


@pytest.mark.parametrize(("key", "environment"), sorted(scripts.GRAPH_ENVIRONMENTS.items()))
def test_the_consent_policy_connects_to_the_clouds_graph(key, environment):
    cloud = SimpleNamespace(key=key, exchange_environment=CLOUDS[key].exchange_environment)
    configuration = SimpleNamespace(
        client_id="5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d",
        outlook_categories=False,
        security_group_email=None,
        service_principal_id=None,
        test_mailbox=None,
        outside_mailbox=None,
        institution=SimpleNamespace(name="Contoso"),
    )
    script = scripts.consent_policy(configuration, cloud)
    assert f"Connect-MgGraph -Environment '{environment}'" in script
    assert set(scripts.GRAPH_ENVIRONMENTS) == set(CLOUDS)
