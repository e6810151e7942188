"""The Graph stand-in keeps a mailbox's master list of Outlook categories as Microsoft's
documents describe it (outlookuser-list-mastercategories.md,
outlookuser-post-mastercategories.md, outlookcategory.md)."""

import pytest

from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_CLIENT_ID

ADELE = "adele.vance@contoso.edu"
ALEX = "alex.wilber@contoso.edu"  # outside the demo app's access policy
CATEGORIES = f"/users/{ADELE}/outlook/masterCategories"
SETTINGS = ("Calendars.ReadWrite", "MailboxSettings.ReadWrite")


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["displayName"] for c in response.json()["value"]]


def test_a_mailbox_starts_with_outlooks_six_categories(graph_client):
    response = graph_client(*SETTINGS).get(CATEGORIES)

    assert names(response) == [
        "Red category",
        "Orange category",
        "Yellow category",
        "Green category",
        "Blue category",
        "Purple category",
    ]
    first = response.json()["value"][0]
    assert set(first) == {"id", "displayName", "color"} and first["color"] == "preset0"
    assert response.json()["@odata.context"].endswith("/outlook/masterCategories")


def test_a_category_is_made_with_its_colour(graph_client, directory):
    client = graph_client(*SETTINGS)

    response = client.post(CATEGORIES, json={"displayName": "Lecture", "color": "preset7"})

    assert response.status_code == 201, response.text
    made = response.json()
    assert (made["displayName"], made["color"]) == ("Lecture", "preset7") and made["id"]
    assert made["@odata.context"].endswith("/outlook/masterCategories/$entity")
    assert names(client.get(CATEGORIES))[-1] == "Lecture"
    assert directory.master_categories(ADELE)[-1]["color"] == "preset7"


def test_the_signed_in_user_makes_their_own_categories(graph_client, directory):
    client = graph_client(user=ADELE, scopes=("Calendars.ReadWrite", "MailboxSettings.ReadWrite"))

    response = client.post("/me/outlook/masterCategories", json={"displayName": "Exam"})

    assert response.status_code == 201, response.text
    assert response.json()["color"] == "none"  # the enum's None: no colour
    assert "Exam" in names(client.get("/me/outlook/masterCategories"))


@pytest.mark.parametrize("name", ["Lecture", "lecture", "LECTURE"])
def test_a_name_already_in_the_list_is_a_conflict(graph_client, name):
    client = graph_client(*SETTINGS)
    client.post(CATEGORIES, json={"displayName": "Lecture", "color": "preset7"})

    response = client.post(CATEGORIES, json={"displayName": name, "color": "preset0"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "nameAlreadyExists"
    assert names(client.get(CATEGORIES)).count("Lecture") == 1


@pytest.mark.parametrize("color", ["preset0", "preset24", "Preset9", "None", "none"])
def test_the_colours_are_the_25_presets_or_none(graph_client, color):
    response = graph_client(*SETTINGS).post(
        CATEGORIES, json={"displayName": "Practical", "color": color}
    )

    assert response.status_code == 201, response.text
    assert response.json()["color"] == color.lower()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"displayName": "Lab", "color": "preset25"}, "RequestBodyRead"),
        ({"displayName": "Lab", "color": "red"}, "RequestBodyRead"),
        ({"displayName": "Lab", "color": 3}, "RequestBodyRead"),
        ({"color": "preset1"}, "ErrorInvalidParameter"),
        ({"displayName": "  ", "color": "preset1"}, "ErrorInvalidParameter"),
        ({"displayName": 7, "color": "preset1"}, "RequestBodyRead"),
        ({"displayName": "Lab", "colour": "preset1"}, "RequestBodyRead"),
        ([], "BadRequest"),
    ],
)
def test_a_body_outlook_cannot_read_is_refused(graph_client, body, code):
    client = graph_client(*SETTINGS)

    response = client.post(CATEGORIES, json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert "Lab" not in names(client.get(CATEGORIES))


def test_without_mailbox_settings_the_list_is_refused(graph_client):
    response = graph_client("Calendars.ReadWrite").get(CATEGORIES)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "ErrorAccessDenied" and error["innerError"]["request-id"]


def test_reading_the_list_needs_no_more_than_mailbox_settings_read(graph_client):
    client = graph_client("MailboxSettings.Read")

    assert client.get(CATEGORIES).status_code == 200
    made = client.post(CATEGORIES, json={"displayName": "Lecture", "color": "preset7"})
    assert made.status_code == 403 and made.json()["error"]["code"] == "ErrorAccessDenied"


def test_a_delegated_token_without_the_scope_is_refused(graph_client, directory):
    client = graph_client(user=ADELE)  # Calendars.ReadWrite and User.Read only

    response = client.post("/me/outlook/masterCategories", json={"displayName": "Exam"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ErrorAccessDenied"
    assert "Exam" not in [c["displayName"] for c in directory.master_categories(ADELE)]


def test_the_access_policy_holds_mailbox_settings_back_too(graph_client):
    response = graph_client(*SETTINGS).get(f"/users/{ALEX}/outlook/masterCategories")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Access to OData is disabled."


def test_an_rbac_calendar_role_alone_gives_no_categories(graph_client, directory):
    registration = directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID)
    registration.policy_mailboxes, registration.rbac_mailboxes = None, {ADELE}
    client = graph_client()  # no roles: RBAC for Applications grants instead

    assert client.get(f"/users/{ADELE}/calendars").status_code == 200
    assert client.get(CATEGORIES).status_code == 403
    registration.rbac_permissions.add("MailboxSettings.ReadWrite")
    assert client.get(CATEGORIES).status_code == 200


def test_categories_are_made_inside_a_batch(graph_client, directory):
    client = graph_client(*SETTINGS)
    url = f"/users/{ADELE}/outlook/masterCategories"
    response = client.batch(
        {
            "id": "1",
            "method": "POST",
            "url": url,
            "body": {"displayName": "Lecture", "color": "preset7"},
            "headers": {"Content-Type": "application/json"},
        },
        {
            "id": "2",
            "method": "POST",
            "url": url,
            "body": {"displayName": "Red category", "color": "preset7"},
            "headers": {"Content-Type": "application/json"},
            "dependsOn": ["1"],
        },
    )

    statuses = {a["id"]: a["status"] for a in response.json()["responses"]}
    assert statuses == {"1": 201, "2": 409}
    assert [c["displayName"] for c in directory.master_categories(ADELE)][-1] == "Lecture"
