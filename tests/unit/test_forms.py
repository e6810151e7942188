"""Input rules of the wizard's forms, with the message shown beside each field."""

import pytest
from werkzeug.datastructures import MultiDict

from portal.setup.forms import ApplicationVerifyForm, TenantForm
from portal.support.forms import InstitutionForm
from portal.validators import ADDRESS, DOMAIN, GUID

CLIENT = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"


@pytest.fixture
def form_context(app):
    with app.test_request_context(method="POST"):
        app.config["WTF_CSRF_ENABLED"] = False
        yield


def tenant_form(**data):
    """Step 4's form as the wizard shows it: with the group's address only when asked."""
    form = TenantForm(formdata=MultiDict(data))
    if "security_group_email" not in data:
        del form.security_group_email
    return form


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


# RFC 5322 3.2.3: a dot-atom local part is atext, dots only between atoms.
ADDRESSES_REFUSED = [
    "a\u2019;iex(irm(\u2019https://evil.example/x\u2019));\u2019@contoso.edu",
    "a';iex(irm('x'));'@contoso.edu",
    "a;b@contoso.edu",
    "a(b)@contoso.edu",
    'a"b@contoso.edu',
    '"quoted"@contoso.edu',
    "a\u2018b@contoso.edu",
    "a\u201cb@contoso.edu",
    "a\\b@contoso.edu",
    "a,b@contoso.edu",
    "a<b>@contoso.edu",
    "a[b]@contoso.edu",
    "a:b@contoso.edu",
    "a\x00b@contoso.edu",
    "a\u202eb@contoso.edu",
    "\u00e9l\u00e8ve@contoso.edu",
    ".a@contoso.edu",
    "a.@contoso.edu",
    "a..b@contoso.edu",
    "a" * 65 + "@contoso.edu",
]
ADDRESSES_ACCEPTED = [
    "adele.vance@contoso.edu",
    "o'brien@contoso.edu",
    "a+b_c-d~e!f#g^h@contoso.edu",
    "x$y%z&w*v=u?t`s{r|q}p/o@contoso.edu",
    "a" * 64 + "@contoso.edu",
]


@pytest.mark.parametrize("address", ADDRESSES_REFUSED)
def test_an_address_outside_rfc_5322_atext_is_refused(form_context, address):
    form = tenant_form(tenant_id="example.edu", client_id=CLIENT, security_group_email=address)
    assert not form.validate()
    assert "group's e-mail address" in form.security_group_email.errors[0]
    form = ApplicationVerifyForm(
        formdata=MultiDict({"test_mailbox": address, "outside_mailbox": "b@contoso.edu"})
    )
    assert not form.validate()
    assert form.test_mailbox.errors


@pytest.mark.parametrize("address", ADDRESSES_ACCEPTED)
def test_an_address_of_atext_is_accepted(form_context, address):
    form = tenant_form(tenant_id="example.edu", client_id=CLIENT, security_group_email=address)
    assert form.validate(), form.errors


@pytest.mark.parametrize("address", ADDRESSES_REFUSED)
def test_the_console_refuses_the_same_administrator_addresses(form_context, address):
    data = {"name": "New University", "hosting": "managed", "contact_email": address}
    form = InstitutionForm(formdata=MultiDict(data))
    assert not form.validate()
    assert form.contact_email.errors


@pytest.mark.parametrize(
    "name",
    [
        "New\nUniversity",
        "New\rUniversity",
        "New\tUniversity",
        "New\x00University",
        "New\x1b[31mUniversity",
        "New\x7fUniversity",
        "New\x85University",
        "New\u2028University",
        "New\u2029University",
        "\u202eytisrevinU weN",
        "New \u2066University\u2069",
    ],
)
def test_an_institution_name_with_control_characters_is_refused(form_context, name):
    form = InstitutionForm(
        formdata=MultiDict({"name": name, "hosting": "managed", "contact_email": "it@new.edu"})
    )
    assert not form.validate()
    assert "control characters" in form.name.errors[0]


@pytest.mark.parametrize(
    "name",
    [
        "O\u2019Brien College",
        "Universit\u00e4t G\u00f6ttingen",
        "\u0645\u06cc\u200c\u062f\u0627\u0646",  # Persian needs the zero-width non-joiner
        "Hogeschool \u2018s-Hertogenbosch",
        "St. John's; (Oxford) `Main` $campus",
    ],
)
def test_an_institution_name_of_printable_text_is_accepted(form_context, name):
    form = InstitutionForm(
        formdata=MultiDict({"name": name, "hosting": "managed", "contact_email": "it@new.edu"})
    )
    assert form.validate(), form.errors


@pytest.mark.parametrize(
    ("pattern", "value"),
    [(ADDRESS, "adele@contoso.edu"), (GUID, CLIENT), (DOMAIN, "contoso.edu")],
)
def test_shared_patterns_match_the_whole_value_not_up_to_a_final_line_break(pattern, value):
    assert pattern.match(value)
    assert not pattern.match(value + "\n")
