"""Staff sign-in: a password zxcvbn finds strong, then an authenticator code (TOTP, enrolled
at the first sign-in, with one-time recovery codes); limits per address and e-mail and per
address alone; an idle timeout; nothing behind a sign-in or invitation kept in a cache."""

import re

import pyotp
import pytest

from portal import staff
from portal.extensions import db
from portal.models import AuditEvent, RecoveryCode, StaffUser
from tests.conftest import CSRF, RECOVERY_CODE, SECRET, sign_in_staff, totp_code

PASSWORD = "correct horse battery staple"
EMAIL = "support@mytimetable.example"


@pytest.fixture
def member(app, runner):
    """A staff account as ``flask staff create`` makes it: no authenticator yet."""
    result = runner.invoke(args=["staff", "create", EMAIL], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    return EMAIL


@pytest.fixture
def enrolled(app, member):
    """The account once its first sign-in has enrolled an authenticator."""
    client = app.test_client()
    assert sign_in_staff(client, member, PASSWORD).status_code == 302
    return client.recovery_codes


def password_step(client, email=EMAIL, password=PASSWORD):
    """Sign in with the password; return the response and the new session's CSRF token."""
    token = CSRF.search(client.get("/support/sign-in").text).group(1)
    response = client.post(
        "/support/sign-in", data={"csrf_token": token, "email": email, "password": password}
    )
    if response.status_code != 302:
        return response, token
    return response, CSRF.search(client.get(response.location).text).group(1)


def test_the_first_sign_in_enrols_an_authenticator_then_shows_recovery_codes_once(app, member):
    client = app.test_client()
    response, token = password_step(client)
    assert response.location.endswith("/support/sign-in/enrol")
    page = client.get("/support/sign-in/enrol")
    assert client.get("/support/").location.endswith("/support/sign-in")  # not signed in yet
    assert page.status_code == 200 and "<svg" in page.text
    secret = SECRET.search(page.text).group(1)
    wrong = client.post("/support/sign-in/enrol", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 400 and "field-error" in wrong.text
    assert SECRET.search(wrong.text).group(1) == secret  # the same secret to scan again
    code = pyotp.TOTP(secret).now()
    done = client.post("/support/sign-in/enrol", data={"csrf_token": token, "code": code})
    assert done.location.endswith("/support/recovery-codes")
    codes = RECOVERY_CODE.findall(client.get(done.location).text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert not RECOVERY_CODE.findall(client.get("/support/recovery-codes").text)  # once only
    assert client.get("/support/").status_code == 200
    with app.app_context():
        account = staff.find(member)
        assert secret.encode() not in account.totp_secret_encrypted
        assert staff.totp_secret(account) == secret
        hashes = [code.code_hash for code in account.recovery_codes]
        assert len(hashes) == 10 and all(h.startswith("scrypt:") for h in hashes)
        assert not any(code in h for h in hashes for code in codes)


def test_the_enrolment_page_needs_the_password_first(app, member):
    client = app.test_client()
    assert client.get("/support/sign-in/enrol").location.endswith("/support/sign-in")
    assert client.get("/support/sign-in/code").location.endswith("/support/sign-in")


def test_after_enrolment_the_console_needs_the_password_and_a_code(app, enrolled):
    client = app.test_client()
    response, token = password_step(client)
    assert response.location.endswith("/support/sign-in/code")
    assert client.get("/support/").location.endswith("/support/sign-in")
    wrong = client.post("/support/sign-in/code", data={"csrf_token": token, "code": "123456"})
    assert wrong.status_code == 401 and "field-error" in wrong.text
    code = totp_code(app, EMAIL)
    right = client.post("/support/sign-in/code", data={"csrf_token": token, "code": code})
    assert right.location.endswith("/support/")
    assert client.get("/support/").status_code == 200
    with app.app_context():
        actions = [e.action for e in db.session.query(AuditEvent).filter_by(actor=EMAIL)]
    assert "second_factor_failed" in actions and actions.count("signed_in") == 2


def test_a_code_is_not_accepted_twice(app, enrolled):
    code = totp_code(app, EMAIL)
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        _, token = password_step(client)
        answer = client.post("/support/sign-in/code", data={"csrf_token": token, "code": code})
        client.answer = answer.status_code
    assert (first.answer, second.answer) == (302, 401)


def test_a_recovery_code_stands_in_for_the_authenticator_once(app, enrolled):
    recovery = enrolled[3]
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        _, token = password_step(client)
        answer = client.post(
            "/support/sign-in/code", data={"csrf_token": token, "code": recovery.upper()}
        )
        client.answer = answer.status_code
    assert (first.answer, second.answer) == (302, 401)
    with app.app_context():
        used = db.session.query(RecoveryCode).filter(RecoveryCode.used_at.isnot(None)).count()
    assert used == 1


def test_a_lost_authenticator_is_reset_on_the_command_line_and_enrolled_again(
    app, runner, enrolled
):
    result = runner.invoke(args=["staff", "reset-authenticator", EMAIL])
    assert result.exit_code == 0, result.output
    client = app.test_client()
    response, _ = password_step(client)
    assert response.location.endswith("/support/sign-in/enrol")
    with app.app_context():
        assert db.session.query(RecoveryCode).count() == 0
        assert db.session.query(AuditEvent).filter_by(action="second_factor_reset").count() == 1
    assert runner.invoke(args=["staff", "reset-authenticator", "nobody@x.example"]).exit_code == 1


def test_a_forgotten_password_is_replaced_on_the_command_line_and_must_be_strong(
    app, runner, enrolled
):
    weak = runner.invoke(args=["staff", "password", EMAIL], input="aaaaaaaaaaaa\naaaaaaaaaaaa\n")
    assert weak.exit_code == 1 and "too weak" in weak.output
    result = runner.invoke(args=["staff", "password", EMAIL, "--generate"])
    assert result.exit_code == 0, result.output
    new = re.search(r"shown once\): (\S+)", result.output).group(1)
    assert password_step(app.test_client())[0].status_code != 302
    response, _ = password_step(app.test_client(), password=new)
    assert response.location.endswith("/support/sign-in/code")  # the authenticator stays


@pytest.mark.parametrize(
    "password, why",
    [
        ("aaaaaaaaaaaa", 'Repeats like "aaa" are easy to guess.'),
        ("password1234", "This is a very common password."),
        ("qwertyuiopasdf", "This is similar to a commonly used password."),
        (EMAIL, "Add another word or two."),
    ],
)
def test_weak_passwords_are_refused_saying_why(runner, password, why):
    result = runner.invoke(args=["staff", "create", EMAIL], input=f"{password}\n{password}\n")
    assert result.exit_code == 1 and why in result.output
    with runner.app.app_context():
        assert db.session.query(StaffUser).count() == 0


def test_many_e_mails_from_one_address_are_refused(make_app, runner):
    app = make_app(SIGNIN_ADDRESS_LIMIT="20 per 15 minutes")
    client = app.test_client()
    token = CSRF.search(client.get("/support/sign-in").text).group(1)
    codes = [
        client.post(
            "/support/sign-in",
            data={"csrf_token": token, "email": f"person{n}@example.edu", "password": "guess!"},
        ).status_code
        for n in range(25)
    ]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    token = CSRF.search(elsewhere.get("/support/sign-in").text).group(1)
    other = elsewhere.post(
        "/support/sign-in",
        data={"csrf_token": token, "email": "person0@example.edu", "password": "guess!"},
    )
    assert other.status_code == 401


def test_wrong_codes_are_limited_like_wrong_passwords(make_app):
    app = make_app(SIGNIN_LIMIT="5 per 15 minutes")
    app.test_cli_runner().invoke(args=["staff", "create", EMAIL], input=f"{PASSWORD}\n" * 2)
    assert sign_in_staff(app.test_client(), EMAIL, PASSWORD).status_code == 302
    client = app.test_client()
    _, token = password_step(client)
    codes = [
        client.post(
            "/support/sign-in/code", data={"csrf_token": token, "code": f"{n:06d}"}
        ).status_code
        for n in range(8)
    ]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}


@pytest.mark.parametrize("idle, signed_in", [(29, True), (31, False)])
def test_the_console_signs_out_after_30_idle_minutes(app, enrolled, idle, signed_in):
    client = app.test_client()
    sign_in_staff(client, EMAIL, PASSWORD)
    with client.session_transaction() as session:
        session["staff_seen_at"] -= idle * 60
    page = client.get("/support/", follow_redirects=True)
    assert ("<h1>Configurations</h1>" in page.text) is signed_in
    if not signed_in:
        assert "30 minutes without activity" in page.text
        assert client.get("/support/").location.endswith("/support/sign-in")


def test_the_idle_timeout_is_a_setting(make_app):
    app = make_app(STAFF_IDLE_MINUTES=5)
    app.test_cli_runner().invoke(args=["staff", "create", EMAIL], input=f"{PASSWORD}\n" * 2)
    client = app.test_client()
    sign_in_staff(client, EMAIL, PASSWORD)
    with client.session_transaction() as session:
        session["staff_seen_at"] -= 6 * 60
    assert client.get("/support/").location.endswith("/support/sign-in")


def test_the_demo_account_is_enrolled_and_its_secret_printed(app, runner):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    found = re.search(
        r"support@mytimetable\.example / (\S+)\n.*TOTP secret.*: ([A-Z2-7]+)", result.output
    )
    password, secret = found.groups()
    client = app.test_client()
    response, token = password_step(client, password=password)
    assert response.location.endswith("/support/sign-in/code")
    code = pyotp.TOTP(secret).now()
    done = client.post("/support/sign-in/code", data={"csrf_token": token, "code": code})
    assert done.location.endswith("/support/")
    again = runner.invoke(args=["demo"])
    assert secret in again.output  # the authenticator app's entry keeps working


def concrete(rule) -> str:
    """A URL for the rule, with 1 for each number, the first choice of each ``any``, and
    ``x`` for any other part."""
    path = re.sub(r"<int:\w+>", "1", rule.rule)
    path = re.sub(r"<any\((\w+)[^>]*>", r"\1", path)
    return re.sub(r"<[^>]+>", "x", path)


def test_every_page_behind_a_sign_in_or_invitation_is_never_stored(
    app, enrolled, wizard, invitation
):
    console = app.test_client()
    sign_in_staff(console, EMAIL, PASSWORD)
    wizard.open(invitation["managed"])
    clients = {"support": console, "setup": wizard.client, "connect": wizard.client}
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] in clients]
    assert len(rules) > 30
    for rule in rules:
        client = clients[rule.endpoint.split(".")[0]]
        method = "GET" if "GET" in rule.methods else "POST"
        # a POST is refused for its CSRF token, so that none changes anything
        response = client.open(concrete(rule), method=method, data={"csrf_token": "x"})
        assert response.headers.get("Cache-Control") == "no-store", (rule.rule, method)
    assert "no-store" not in console.get("/").headers.get("Cache-Control", "")
