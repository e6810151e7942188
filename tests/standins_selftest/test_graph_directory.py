"""The Graph stand-in's directory side, users and groups, answers as Microsoft documents."""

import pytest

from tests.standins import Directory, Group, seed_demo
from tests.standins.demo import (
    CONTOSO_TENANT_ID,
    DEMO_CLIENT_ID,
    DEMO_GROUP_ID,
    DEMO_GROUP_MAIL,
    FABRIKAM_TENANT_ID,
)
from tests.standins.identity import GRAPH_DEFAULT
from tests.standins_selftest.helpers import GraphClient

ADELE_ID = "6e7b768e-07e2-4810-8459-485f84f8f204"
MEGAN_ID = "48d31887-5fad-4d73-a9f5-3c356e68a038"
ALEX_ID = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
LEE_ID = "074e56ea-0b50-4461-89e5-c67ae14a2c0b"
POLICY_PEOPLE = {ADELE_ID, MEGAN_ID, LEE_ID}
MEMBER_READER = "GroupMember.Read.All"


def test_seed_demo_returns_the_group_of_the_people_inside_the_access_policy(signing_key):
    directory = Directory(signing_key=signing_key)
    ids = seed_demo(directory)

    group = directory.group(ids["group_id"])
    assert ids["group_id"] == DEMO_GROUP_ID
    assert (group.mail, group.mail_enabled, group.security_enabled) == (DEMO_GROUP_MAIL, True, True)
    policy = directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID).policy_mailboxes
    assert {directory.user(member).upn for member in group.members} == policy


def test_group_by_id_is_the_mail_enabled_security_group(graph_client):
    response = graph_client(MEMBER_READER).get(f"/groups/{DEMO_GROUP_ID}")

    assert response.status_code == 200, response.text
    group = response.json()
    assert group["@odata.context"].endswith("/v1.0/$metadata#groups/$entity")
    assert group["id"] == DEMO_GROUP_ID
    assert group["mail"] == DEMO_GROUP_MAIL
    assert group["mailEnabled"] is True
    assert group["securityEnabled"] is True
    assert group["groupTypes"] == []


def test_group_is_found_by_its_mail_address_in_any_case(graph_client):
    client = graph_client(MEMBER_READER)

    found = client.get("/groups", params={"$filter": "mail eq 'MyTimetable@Contoso.edu'"})
    missing = client.get("/groups", params={"$filter": "mail eq 'nobody@contoso.edu'"})

    assert [group["id"] for group in found.json()["value"]] == [DEMO_GROUP_ID]
    assert missing.json()["value"] == []


def test_select_cuts_a_group_down(graph_client):
    response = graph_client(MEMBER_READER).get(
        f"/groups/{DEMO_GROUP_ID}", params={"$select": "id,mail"}
    )
    assert set(response.json()) == {"@odata.context", "id", "mail"}


def test_members_read_with_an_msal_token_are_the_policy_people(
    directory, http, make_msal, standins
):
    registration = directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID)
    registration.application_permissions.add(MEMBER_READER)
    registration.admin_consented = True
    result = make_msal().acquire_token_for_client([GRAPH_DEFAULT])
    client = GraphClient(http, standins.graph.url, result["access_token"])

    response = client.get(f"/groups/{DEMO_GROUP_ID}/members")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith("/v1.0/$metadata#directoryObjects")
    assert "@odata.nextLink" not in body
    assert {member["id"] for member in body["value"]} == POLICY_PEOPLE
    adele = next(member for member in body["value"] if member["id"] == ADELE_ID)
    assert adele["@odata.type"] == "#microsoft.graph.user"
    assert adele["displayName"] == "Adele Vance"
    assert adele["userPrincipalName"] == adele["mail"] == "adele.vance@contoso.edu"


def test_members_come_in_pages_of_top_with_a_next_link(graph_client):
    client = graph_client(MEMBER_READER)

    first = client.get(
        f"/groups/{DEMO_GROUP_ID}/members", params={"$top": "2", "$select": "id,mail"}
    ).json()
    second = client.get(first["@odata.nextLink"]).json()

    assert len(first["value"]) == 2
    assert "$skiptoken=" in first["@odata.nextLink"]
    assert len(second["value"]) == 1
    assert "@odata.nextLink" not in second
    ids = {member["id"] for member in first["value"] + second["value"]}
    assert ids == POLICY_PEOPLE
    assert set(second["value"][0]) == {"@odata.type", "id", "mail"}


def test_transitive_members_include_the_members_of_nested_groups(directory, graph_client):
    nested = directory.add_group(
        Group("5c1e3a7b-9d2f-4b6a-8e0c-1f3a5b7d9e2c", CONTOSO_TENANT_ID, "Staff", members=[ALEX_ID])
    )
    directory.group(DEMO_GROUP_ID).members.append(nested.id)
    client = graph_client(MEMBER_READER)

    direct = client.get(f"/groups/{DEMO_GROUP_ID}/members").json()["value"]
    transitive = client.get(f"/groups/{DEMO_GROUP_ID}/transitiveMembers").json()["value"]

    assert {m["id"] for m in direct} == POLICY_PEOPLE | {nested.id}
    assert {m["@odata.type"] for m in direct if m["id"] == nested.id} == {"#microsoft.graph.group"}
    assert {m["id"] for m in transitive} == POLICY_PEOPLE | {nested.id, ALEX_ID}


def test_members_added_and_removed_show_in_the_next_read(directory, graph_client):
    client = graph_client(MEMBER_READER)
    directory.add_member(DEMO_GROUP_ID, ALEX_ID)
    directory.remove_member(DEMO_GROUP_ID, ADELE_ID)

    listed = client.get(f"/groups/{DEMO_GROUP_ID}/transitiveMembers").json()["value"]

    assert {m["id"] for m in listed} == POLICY_PEOPLE - {ADELE_ID} | {ALEX_ID}
    with pytest.raises(ValueError):  # group-post-members.md: already a member
        directory.add_member(DEMO_GROUP_ID, ALEX_ID)
    with pytest.raises(KeyError):  # group-delete-members.md: not a member
        directory.remove_member(DEMO_GROUP_ID, ADELE_ID)


@pytest.mark.parametrize("role", ["GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"])
def test_any_group_read_role_lists_members(graph_client, role):
    assert graph_client(role).get(f"/groups/{DEMO_GROUP_ID}/members").status_code == 200


UNKNOWN_GROUP = "1d2c3b4a-0000-4000-8000-000000000000"
MEMBERS = f"/groups/{DEMO_GROUP_ID}/members"
DENIED = (403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
NOT_FOUND = (
    404,
    "Request_ResourceNotFound",
    f"Resource '{UNKNOWN_GROUP}' does not exist or one of its queried reference-property "
    "objects are not present.",
)


@pytest.mark.parametrize(
    ("roles", "path", "expected"),
    [
        ((), MEMBERS, DENIED),
        (("Calendars.ReadWrite",), f"/groups/{DEMO_GROUP_ID}", DENIED),
        ((MEMBER_READER,), f"/groups/{UNKNOWN_GROUP}", NOT_FOUND),
        ((MEMBER_READER,), f"/groups/{UNKNOWN_GROUP}/members", NOT_FOUND),
        (
            (MEMBER_READER,),
            "/groups/not-a-guid",
            (400, "Request_BadRequest", "Invalid object identifier 'not-a-guid'."),
        ),
        (
            (MEMBER_READER,),
            "/groups?$filter=startswith(mail,'my')",
            (501, "NotImplemented", "The Graph stand-in does not implement"),
        ),
        (
            (MEMBER_READER,),
            f"{MEMBERS}?$top=1000",
            (400, "Request_UnsupportedQuery", "Must be between 1 and 999 inclusive."),
        ),
    ],
)
def test_group_errors(graph_client, roles, path, expected):
    status, code, message = expected
    response = graph_client(*roles).get(path)

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert message in error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_groups_of_other_tenants_are_not_found(directory, graph_client):
    other = directory.add_group(
        Group("7e9a1c3d-5f2b-4d8e-9a6c-3b5d7f9e1a2c", FABRIKAM_TENANT_ID, "Fabrikam staff")
    )
    response = graph_client(MEMBER_READER).get(f"/groups/{other.id}")
    assert response.status_code == 404


# Users by UPN


def test_user_is_read_by_upn_with_user_read_all(graph_client):
    response = graph_client("User.Read.All").get("/users/megan.bowen@contoso.edu")
    assert response.status_code == 200
    assert response.json()["id"] == MEGAN_ID


@pytest.mark.parametrize("who", ["nobody@contoso.edu", "guest@fabrikam.com"])
def test_unknown_user_with_user_read_all_is_resource_not_found(graph_client, who):
    response = graph_client("User.Read.All").get(f"/users/{who}")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert error["message"] == (
        f"Resource '{who}' does not exist or one of its queried reference-property objects are "
        "not present."
    )
