"""Each wizard page shows the values of the institution whose wizard is open, as saved, in
the page's language: another institution, method, certificate, step or language gets its
own."""

CLIENT = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"


def registered(wizard, link, method="application", group=False):
    wizard.open(link)
    wizard.to_tenant(method, group=group)
    return wizard.client.get("/setup/register").text


def instructions(page: str) -> str:
    return page[
        page.index('<ol class="instructions">') : page.index(
            "</ol>", page.index("Note the two IDs")
        )
    ]


def test_two_institutions_each_see_their_own_instructions(app, client, invitation):
    from tests.conftest import Wizard

    university = registered(Wizard(client), invitation["managed"])
    college = registered(Wizard(app.test_client()), invitation["on_premises"])
    assert "Grant admin consent for Example University" in university
    assert "Grant admin consent for Example College" in college
    assert "Example University" not in college
    # each has its own certificate, so each its own thumbprint
    thumbprint = 'Check that the thumbprint Entra shows is <span class="copy-value"><code>'
    assert university.split(thumbprint)[1][:40] != college.split(thumbprint)[1][:40]
    # and the same institution again the same text
    again = registered(Wizard(app.test_client()), invitation["managed"])
    assert instructions(again) == instructions(university)


def test_instructions_follow_a_change_of_method(wizard, invitation):
    application = registered(wizard, invitation["managed"], "application")
    delegated = registered(wizard, invitation["managed"], "delegated")
    assert "Leave empty: application permissions need none." in application
    assert "http://localhost/connect/callback" not in application
    assert "http://localhost/connect/callback" in delegated
    assert "Grant admin consent for Example University</strong>, or use" in delegated


def test_instructions_follow_the_group_limit_in_the_scripts(wizard, invitation):
    before = registered(wizard, invitation["managed"], group=True)
    wizard.enter_tenant("contoso.onmicrosoft.com", CLIENT, group="staff@contoso.edu")
    after = wizard.client.get("/setup/register").text
    assert "staff@contoso.edu" not in before
    assert "staff@contoso.edu" in after


def test_step_3_shows_the_outlook_categories_choice_as_saved(wizard, invitation):
    unchecked = registered(wizard, invitation["managed"])
    assert '<input id="outlook_categories" name="outlook_categories" type="checkbox"' in unchecked
    wizard.post("/setup/register", {"outlook_categories": "y"})
    assert 'checked id="outlook_categories"' in wizard.client.get("/setup/register").text
    wizard.post("/setup/register", {})
    again = wizard.client.get("/setup/register").text
    assert 'checked id="outlook_categories"' not in again
    assert instructions(again) == instructions(unchecked)


def test_the_stepper_follows_the_step_reached(wizard, invitation):
    wizard.open(invitation["managed"])
    first = wizard.client.get("/setup/method").text
    assert 'href="/setup/register"' not in first
    wizard.to_tenant()
    later = wizard.client.get("/setup/method").text
    assert 'href="/setup/register"' in later
    assert 'href="/setup/tenant"' in later


def test_pages_are_in_the_chosen_language(wizard, invitation):
    english = registered(wizard, invitation["managed"])
    wizard.client.get("/language/nl?next=/setup/register")
    dutch = wizard.client.get("/setup/register").text
    wizard.client.get("/language/en?next=/setup/register")
    assert "Open App registrations" in english and "Open App-registraties" not in english
    assert "Open App-registraties" in dutch and "Open App registrations" not in dutch
    assert "(gereed)" in dutch and "(done)" not in dutch
    assert instructions(wizard.client.get("/setup/register").text) == instructions(english)


def test_step_1_shows_the_choice_saved_and_errors_only_on_the_answer(wizard, invitation):
    wizard.open(invitation["managed"])
    wizard.post("/setup/method", {"method": "delegated", "cloud": "usgov"})
    page = wizard.client.get("/setup/method").text
    assert (
        '<input checked id="method-1" name="method" required type="radio" value="delegated">'
        in page
    )
    assert '<option selected value="usgov">' in page
    refused = wizard.post("/setup/method", {"method": "neither", "cloud": "usgov"})
    assert refused.status_code == 400 and 'class="field-error"' in refused.text
    page = wizard.client.get("/setup/method").text
    assert 'class="field-error"' not in page and '<option selected value="usgov">' in page


def test_step_4_shows_each_institutions_own_values(app, client, invitation):
    from tests.conftest import Wizard

    university, college = Wizard(client), Wizard(app.test_client())
    for wizard, link, tenant in (
        (university, invitation["managed"], "contoso.onmicrosoft.com"),
        (college, invitation["on_premises"], "fabrikam.onmicrosoft.com"),
    ):
        wizard.open(link)
        wizard.to_tenant()
        wizard.enter_tenant(tenant, CLIENT)
    assert 'value="contoso.onmicrosoft.com"' in university.client.get("/setup/tenant").text
    college_page = college.client.get("/setup/tenant").text
    assert 'value="fabrikam.onmicrosoft.com"' in college_page
    assert "contoso" not in college_page
    typed = college.enter_tenant("not a tenant", CLIENT)
    assert 'value="not a tenant"' in typed.text and 'aria-invalid="true"' in typed.text
    assert 'value="fabrikam.onmicrosoft.com"' in college.client.get("/setup/tenant").text


def test_step_2_shows_each_managed_institutions_own_certificate(app, client, invitation):
    """A managed institution assigned another certificate is shown that one."""
    from portal import certificates
    from portal.extensions import db
    from portal.models import Certificate, Configuration
    from tests.conftest import Wizard

    wizard = Wizard(client)
    wizard.open(invitation["managed"])
    wizard.post(
        "/setup/method", {"method": "application", "mailbox_scope": "all", "cloud": "worldwide"}
    )
    first = wizard.client.get("/setup/certificate").text
    with app.app_context():
        vendor = Certificate.current_vendor()
        configuration = db.session.scalar(
            db.select(Configuration).where(Configuration.certificate_id == vendor.id)
        )
        # (another validity: the tests keep one certificate per set of arguments)
        other = certificates.create_vendor_certificate(300, "test", upcoming=True)
        configuration.certificate = other
        db.session.commit()
        before, after = vendor.sha256_thumbprint, other.sha256_thumbprint
    second = wizard.client.get("/setup/certificate").text
    assert before in first and after not in first
    assert after in second and before not in second
    assert "Download certificate (.cer)" in second
