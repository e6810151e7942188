"""The provisioning API against its own OpenAPI document, by schemathesis: every operation,
with generated requests, answers no 5xx and only what the document says (status, media
type, headers and body)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig

from tests.integration.test_api import make_key

EXAMPLES = 8  # per operation: enough to cross each answer, few enough to run in seconds
# A well-formed address Microsoft refuses (unknown user, no mailbox, outside the group) is
# answered 422 with the reason, as the document says: schemathesis's check that valid
# requests are accepted is told so.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
            }
        }
    }
)


@pytest.fixture
def document_app(make_app, standins, configure, feed_server):
    app = make_app(**standins.settings(), API_RATE_LIMIT="10000 per minute")
    configure(
        app,
        security_group_email="mytimetable@contoso.edu",
        group_scope_method="access_policy",
        feed_url_template=f"{feed_server.url}/ical?user={{upn}}",
    )
    app.config["test.key"] = make_key(app)
    return app


# Every operation of the document (the last test checks that this is all of them).
OPERATIONS = [
    ("GET", "/api/v1/mailboxes"),
    ("GET", "/api/v1/mailboxes/{address}"),
    ("PUT", "/api/v1/mailboxes/{address}"),
    ("DELETE", "/api/v1/mailboxes/{address}"),
    ("POST", "/api/v1/mailboxes/{address}/sync"),
    ("POST", "/api/v1/mailboxes:batch"),
    ("GET", "/api/v1/problems/{kind}"),
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_operation_answers_as_its_document_says(document_app, method, path):
    # schemathesis reads the live document, as MyTimetable would, and calls the app in
    # process. (Its pytest plugin's lazy fixture loader does not work with pytest 9, so the
    # operation's cases are drawn with Hypothesis here.)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", document_app, config=CONFIG)
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {document_app.config['test.key']}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def answers_as_documented(case):
        case.call_and_validate(headers=headers)

    answers_as_documented()


def test_the_document_is_openapi_3_1_from_the_code(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/api/v1/mailboxes",
        "/api/v1/mailboxes/{address}",
        "/api/v1/mailboxes/{address}/sync",
        "/api/v1/mailboxes:batch",
        "/api/v1/problems/{kind}",
    }
    assert document["security"] == [{"apiKey": []}]
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert documented == set(OPERATIONS)
