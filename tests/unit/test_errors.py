"""The error table: every code Microsoft may answer maps to a cause, an action and a step."""

import pytest

from portal.microsoft.errors import (
    ADVICE,
    UNKNOWN,
    Page,
    advice_for,
    code_from_description,
    display_code,
    entra_trace,
    from_token_response,
    graph_trace,
)

STEPS = {"method", "certificate", "register", "tenant", "verify", None}

# Codes the issue and Microsoft's documentation say the pages must explain.
REQUIRED = [
    "90002", "700016", "700027", "7000274", "700024", "7000215", "7000222", "50011", "65001",
    "65004", "90094", "90093", "50020", "650056", "650057", "500011", "53003", "50173", "700082",
    "invalid_grant", "InvalidAuthenticationToken", "ErrorAccessDenied",
    "MailboxNotEnabledForRESTAPI", "ErrorItemNotFound", "no_roles",
]  # fmt: skip


@pytest.mark.parametrize("code", sorted(ADVICE))
def test_every_code_says_what_happened_and_what_to_do(code):
    advice = ADVICE[code]
    assert advice.cause.endswith(".") and advice.action
    assert advice.step in STEPS


@pytest.mark.parametrize("code", REQUIRED)
def test_required_code_is_explained(code):
    assert advice_for(code) is not UNKNOWN


@pytest.mark.parametrize(
    ("code", "step"),
    [
        ("90002", "tenant"),
        ("700016", "tenant"),
        ("700027", "certificate"),
        ("7000274", "certificate"),
        ("50011", "register"),
        ("65001", "register"),
        ("90094", "register"),
        ("50020", "tenant"),
        ("no_roles", "register"),
        ("650057", "register"),
        ("500011", "method"),
    ],
)
def test_failure_sends_the_administrator_to_the_step_that_fixes_it(code, step):
    assert advice_for(code).step == step


@pytest.mark.parametrize(
    ("code", "page"),
    [
        ("65004", "declined"),
        ("access_denied", "declined"),
        ("90094", "approval"),
        ("90093", "approval"),
        ("65001", "approval"),
        ("50020", "other_tenant"),
        ("tenant_mismatch", "other_tenant"),
        ("state_mismatch", "stale"),
        ("700016", "error"),
        ("unreachable", "error"),
        ("123456789", "error"),
    ],
)
def test_a_failed_sign_in_is_explained_by_the_page_its_code_names(code, page):
    assert advice_for(code).page == page


@pytest.mark.parametrize("code", sorted(ADVICE))
def test_every_code_names_a_page_that_explains_it(code):
    assert ADVICE[code].page in set(Page)


def test_unknown_code_gets_general_advice():
    assert advice_for("123456789") is UNKNOWN


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("AADSTS65004: User declined to consent to access the app.", "65004"),
        ("AADSTS90094: The grant requires admin permission.\r\nTrace ID: x", "90094"),
        ("User declined. AADSTS65004", None),
        ("", None),
        (None, None),
    ],
)
def test_code_is_read_from_the_start_of_a_redirect_description(description, code):
    assert code_from_description(description) == code


def test_token_response_is_keyed_by_its_first_numeric_code():
    error = from_token_response(
        {
            "error": "invalid_client",
            "error_description": "AADSTS700027: Client assertion failed.\r\nTrace ID: 1",
            "error_codes": [700027],
        }
    )
    assert (error.code, error.message) == ("700027", "Client assertion failed.")


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("700016", "AADSTS700016"),
        ("ErrorAccessDenied/policy", "ErrorAccessDenied"),
        ("no_roles", ""),
    ],
)
def test_codes_are_shown_as_microsoft_shows_them(code, shown):
    assert display_code(code) == shown


def test_entra_answers_keep_their_trace_and_correlation_ids():
    answer = {
        "error": "invalid_grant",
        "error_description": "AADSTS50173: The grant was revoked.\r\nTrace ID: t-1\r\n"
        "Correlation ID: c-1\r\nTimestamp: 2026-07-01 10:00:00Z",
        "error_codes": [50173],
        "trace_id": "0b5c1d7e-0000-4a2b-8c3d-000000000001",
        "correlation_id": "5e3b2a10-0000-4f00-9000-000000000002",
    }
    assert from_token_response(answer).trace == [
        ("Trace ID", "0b5c1d7e-0000-4a2b-8c3d-000000000001"),  # the JSON fields first
        ("Correlation ID", "5e3b2a10-0000-4f00-9000-000000000002"),
        ("Timestamp", "2026-07-01 10:00:00Z"),  # else the description's lines (a redirect)
    ]


def test_graph_errors_keep_their_request_ids_and_drop_what_is_not_an_id():
    error = {
        "code": "ErrorAccessDenied",
        "innerError": {"request-id": "r-1", "date": "2026-07-01T10:00:00", "x": "y"},
    }
    headers = {"client-request-id": "<script>alert(1)</script>", "request-id": "other"}
    assert graph_trace(error, headers) == [("request-id", "r-1"), ("date", "2026-07-01T10:00:00")]
    assert entra_trace({"trace_id": "a\r\nb", "error_description": None}) == []
