"""Input rules of the wizard's forms, with the message shown beside each field."""

import pytest
from werkzeug.datastructures import MultiDict

from portal.setup.forms import ApplicationVerifyForm, TenantForm

CLIENT = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"


@pytest.fixture
def form_context(app):
    with app.test_request_context(method="POST"):
        app.config["WTF_CSRF_ENABLED"] = False
        yield


def tenant_form(**data):
    return TenantForm(formdata=MultiDict(data))


@pytest.mark.parametrize(
    "tenant",
    [
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
        "example.edu",
        "Sub.Example.AC.UK",
        "  example.edu  ",
    ],
)
def test_tenant_accepts_a_guid_or_a_domain(form_context, tenant):
    form = tenant_form(tenant_id=tenant, client_id=CLIENT)
    assert form.validate(), form.errors
    assert form.tenant_id.data == tenant.strip()


@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        ("", "Enter the Directory (tenant) ID"),
        ("common", "is not your tenant"),
        ("organizations", "is not your tenant"),
        ("admin@example.edu", "not an e-mail address"),
        ("72f988bf-86f1-41af-91ab-2d7cd011db4", "looks like a GUID but is not one"),
        ("not a tenant", "a GUID such as"),
        ("example", "a GUID such as"),
        ("<script>", "a GUID such as"),
        ("x" * 300, "longer than any tenant"),
    ],
)
def test_tenant_rejects_anything_else_with_a_specific_message(form_context, tenant, message):
    form = tenant_form(tenant_id=tenant, client_id=CLIENT)
    assert not form.validate()
    assert message in form.tenant_id.errors[0]


@pytest.mark.parametrize("client_id", ["", "contoso.onmicrosoft.com", "1234", CLIENT + "0"])
def test_client_id_must_be_a_guid(form_context, client_id):
    form = tenant_form(tenant_id="example.edu", client_id=client_id)
    assert not form.validate()
    assert form.client_id.errors


def test_security_group_must_be_an_address(form_context):
    form = tenant_form(tenant_id="example.edu", client_id=CLIENT, security_group_email="staff")
    assert not form.validate()
    assert "group's e-mail address" in form.security_group_email.errors[0]


def test_outside_mailbox_is_required_with_a_group(form_context):
    form = ApplicationVerifyForm(
        formdata=MultiDict({"test_mailbox": "adele@example.edu"}), group="staff@example.edu"
    )
    assert not form.validate()
    assert "not in staff@example.edu" in form.outside_mailbox.errors[0]


def test_outside_mailbox_differs_from_the_test_mailbox(form_context):
    form = ApplicationVerifyForm(
        formdata=MultiDict({"test_mailbox": "a@example.edu", "outside_mailbox": "A@example.edu"}),
        group="staff@example.edu",
    )
    assert not form.validate()
    assert "different mailbox" in form.outside_mailbox.errors[0]
