"""Group following: every member of the security group is synchronised; a pass adds those
who joined and ends those who left, holds a pass that would end too many until someone
decides, shows its summary to the administrator and to support, audits it, and runs once
per period however many runners ask."""

import threading
from datetime import timedelta

import pytest

from portal import groups, invitations
from portal.consent import ADMIN
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Configuration,
    Connection,
    GroupPass,
    PassState,
    SyncSchedule,
    utcnow,
)
from portal.sync import jobs
from tests.conftest import Wizard
from tests.integration.conftest import PASSWORD, Console
from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_GROUP_ID
from tests.standins.directory import User

ADELE, MEGAN, LEE = "adele.vance@contoso.edu", "megan.bowen@contoso.edu", "lee.gu@contoso.edu"
ADELE_ID, MEGAN_ID = "6e7b768e-07e2-4810-8459-485f84f8f204", "48d31887-5fad-4d73-a9f5-3c356e68a038"
STAFF = "support@mytimetable.example"


@pytest.fixture
def following(group_app, standins):
    """The group configuration (Adele and Megan synchronised) following its group, with
    GroupMember.Read.All granted."""
    standins.registration.application_permissions.add("GroupMember.Read.All")
    with group_app.app_context():
        configuration = db.session.query(Configuration).one()
        configuration.follow_group = True
        db.session.commit()
    return group_app


def configuration():
    return db.session.query(Configuration).one()


def newcomer(standins, number: int, *, in_group=True) -> str:
    """A user with a mailbox, inside the access policy and (``in_group``) the group."""
    directory = standins.directory
    object_id = f"00000000-0000-4000-8000-{number:012d}"
    upn = f"teacher{number:03d}@contoso.edu"
    directory.add_user(User(object_id, upn, CONTOSO_TENANT_ID, f"Teacher {number}"))
    standins.registration.policy_mailboxes.add(upn)
    if in_group:
        directory.add_member(DEMO_GROUP_ID, object_id)
    return upn


def leave(standins, upn: str) -> None:
    directory = standins.directory
    directory.remove_member(DEMO_GROUP_ID, directory.user_by_upn(upn).object_id)


def states(app) -> dict:
    with app.app_context():
        return {c.upn: (c.status, c.followed) for c in db.session.query(Connection)}


def run_pass(app) -> GroupPass:
    with app.app_context():
        done = groups.follow(configuration())
        db.session.refresh(done)
        db.session.expunge(done)
        return done


@pytest.fixture
def admin(following):
    with following.app_context():
        link = invitations.issue_invitation(configuration().institution, "t")
        db.session.commit()
    wizard = Wizard(following.test_client())
    wizard.open(link)
    wizard.csrf("/setup/mailboxes")
    return wizard


@pytest.fixture
def console(following):
    result = following.test_cli_runner().invoke(
        args=["staff", "create", STAFF], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    console = Console(following.test_client())
    assert console.sign_in(STAFF).status_code == 302
    return console


def config_page(app) -> str:
    with app.app_context():
        return f"/support/configurations/{configuration().id}"


# The passes


def test_the_first_pass_counts_the_members_already_synchronised_as_the_groups(following):
    first = run_pass(following)
    assert (first.state, first.members, first.added, first.removed) == ("done", 3, 0, 0)
    assert first.refused == 1
    assert [entry[:2] for entry in first.refused_list] == [[LEE, "MailboxNotEnabledForRESTAPI"]]
    assert states(following) == {ADELE: ("connected", True), MEGAN: ("connected", True)}


@pytest.mark.parametrize("leaver_removal", ["calendar", "events"])
def test_three_join_and_two_leave_and_the_next_pass_adds_and_ends_exactly_those(
    following, standins, leaver_removal
):
    with following.app_context():
        configuration().leaver_removal = leaver_removal
        db.session.commit()
    run_pass(following)
    joined = [newcomer(standins, n) for n in (1, 2, 3)]
    bystander = newcomer(standins, 4, in_group=False)
    for upn in (ADELE, MEGAN):
        leave(standins, upn)

    done = run_pass(following)

    assert (done.state, done.members, done.added, done.removed) == ("done", 4, 3, 2)
    assert states(following) == {
        ADELE: ("disconnected", False),
        MEGAN: ("disconnected", False),
        **{upn: ("connected", True) for upn in joined},
    }
    directory = standins.directory
    for upn in joined:
        assert "MyTimetable" in [c["name"] for c in directory.calendars(directory.user_by_upn(upn))]
    assert directory.calendars(directory.user_by_upn(bystander))[0]["name"] != "MyTimetable"
    # Adele had 3 lessons; what is left of them follows the setting.
    adele_calendars = [c["name"] for c in directory.calendars(directory.user_by_upn(ADELE))]
    assert ("MyTimetable" in adele_calendars) == (leaver_removal == "events")
    assert directory.events(ADELE) == []
    with following.app_context():
        audit = db.session.query(AuditEvent).filter_by(action="group_pass").all()
        assert [a.detail for a in audit][-1] == ("4 members: 3 added, 2 removed, 1 refused, 0 held")
        assert {a.actor for a in audit} == {"group following"}
        removed = db.session.query(AuditEvent).filter_by(action="mailbox_removed").all()
        assert sorted(a.detail.split(":")[0] for a in removed) == [ADELE, MEGAN]

    again = run_pass(following)
    assert (again.added, again.removed) == (0, 0)


def test_a_mailbox_added_by_hand_outside_the_group_is_left_alone(following, standins):
    outsider = newcomer(standins, 7, in_group=False)
    with following.app_context():
        from portal import provisioning

        assert provisioning.provision(configuration(), [outsider], "t").added
    run_pass(following)
    run_pass(following)
    assert states(following)[outsider] == ("connected", False)


def followed_rows(app, count: int) -> list[str]:
    """``count`` more members in the group, synchronised and followed already (stored as a
    pass would leave them; no Graph call needed)."""
    return followed_rows_in(app, range(100, 100 + count))


def followed_rows_in(app, numbers) -> list[str]:
    upns = []
    with app.app_context():
        for number in numbers:
            upn = f"teacher{number:03d}@contoso.edu"
            upns.append(upn)
            db.session.add(
                Connection(configuration=configuration(), upn=upn, followed=True, calendar_id=None)
            )
        db.session.commit()
    return upns


@pytest.fixture
def sixty(following, standins):
    """The group of 62 synchronised members (Adele, Megan and 60 teachers), followed."""
    upns = followed_rows(following, 60)
    for number, _upn in enumerate(upns, start=100):
        newcomer(standins, number)
    run_pass(following)
    return upns


def test_a_pass_that_would_end_forty_percent_is_held_and_ends_nothing(following, standins, sixty):
    leaving = sixty[:25]  # with Adele: 26 of 62, 42 %; the limit is max(20, 10 %) = 20
    for upn in [*leaving, ADELE]:
        leave(standins, upn)

    held = run_pass(following)

    assert (held.state, held.held, held.removed, held.removal_limit) == ("held", 26, 0, 20)
    assert sorted(item["upn"] for item in held.held_list) == sorted([*leaving, ADELE])
    assert {status for status, _ in states(following).values()} == {"connected"}
    with following.app_context():
        audit = db.session.query(AuditEvent).filter_by(action="group_pass").all()[-1]
        assert audit.detail == (
            "37 members: 0 added, 0 removed, 1 refused, 26 held "
            "(more than 20 removals: waiting for a decision)"
        )


def test_up_to_the_limit_a_pass_ends_without_asking(following, standins, sixty):
    for upn in sixty[:20]:
        leave(standins, upn)
    done = run_pass(following)
    assert (done.state, done.removed) == ("done", 20)


def test_a_setting_of_a_number_sets_the_limit(following, standins, sixty):
    from portal.config import RemovalLimit

    following.config["GROUP_FOLLOW_MAX_REMOVALS"] = RemovalLimit(percent=None, count=2)
    for upn in sixty[:3]:
        leave(standins, upn)
    assert run_pass(following).state == "held"


def decide(admin, pass_id, decision: str, follow=False):
    data = {"pass_id": pass_id, "decision": decision}
    return admin.post(
        "/setup/mailboxes/held-removals", data, page="/setup/mailboxes", follow=follow
    )


def held_pass(app, standins, upns) -> int:
    for upn in upns:
        leave(standins, upn)
    held = run_pass(app)
    assert held.state == "held"
    return held.id


def test_the_administrator_sees_the_held_list_and_confirms_it(following, standins, sixty, admin):
    leaving = sixty[:30]
    held_id = held_pass(following, standins, leaving)

    page = admin.client.get("/setup/mailboxes").text
    assert "would end 30 synchronisations, more than the 20 one pass may end" in page
    assert all(upn in page for upn in leaving)
    assert "Latest passes" in page and "held: waiting for a decision" in page
    done = decide(admin, held_id, "confirm", follow=True)
    assert "Removed 30 mailboxes" in done.text
    now = states(following)
    assert all(now[upn] == ("disconnected", False) for upn in leaving)
    assert now[sixty[40]] == ("connected", True)
    with following.app_context():
        decided = db.session.get(GroupPass, held_id)
        assert (decided.state, decided.removed) == ("confirmed", 30)
        assert decided.decided_by == ADMIN
        audit = db.session.query(AuditEvent).filter_by(action="group_removals_confirmed").one()
        assert (audit.actor, audit.detail) == (ADMIN, "30 of 30 removed")
    twice = decide(admin, held_id, "confirm", follow=True)
    assert "This list was decided already" in twice.text


def test_support_sees_the_held_list_and_cancels_it(following, standins, sixty, console):
    leaving = sixty[:30]
    held_id = held_pass(following, standins, leaving)
    page_path = config_page(following)

    page = console.client.get(page_path).text
    assert "Follow mytimetable@contoso.edu" in page
    assert "a member who leaves keeps the MyTimetable calendar" in page
    assert all(upn in page for upn in leaving) and "Cancel: keep synchronising them" in page
    cancelled = console.post(
        f"{page_path}/held-removals", {"pass_id": held_id, "decision": "cancel"}
    )
    assert cancelled.status_code == 303
    assert "these mailboxes stay synchronised" in console.client.get(page_path).text
    now = states(following)
    assert all(now[upn] == ("connected", False) for upn in leaving)
    with following.app_context():
        assert db.session.get(GroupPass, held_id).decided_by == STAFF
        audit = db.session.query(AuditEvent).filter_by(action="group_removals_cancelled").one()
        assert (audit.actor, audit.detail) == (STAFF, "30 mailboxes stay synchronised")
    # Kept as mailboxes added by hand: the next pass neither holds nor ends them.
    after = run_pass(following)
    assert (after.state, after.held, after.removed) == ("done", 0, 0)


def test_support_confirms_too(following, standins, sixty, console):
    held_id = held_pass(following, standins, sixty[:30])
    console.post(
        f"{config_page(following)}/held-removals", {"pass_id": held_id, "decision": "confirm"}
    )
    with following.app_context():
        decided = db.session.get(GroupPass, held_id)
        assert (decided.state, decided.decided_by, decided.removed) == ("confirmed", STAFF, 30)


def test_a_later_pass_replaces_a_held_list(following, standins, sixty, admin):
    first = held_pass(following, standins, sixty[:30])
    second = held_pass(following, standins, sixty[30:31])  # now 31 leave: held again
    with following.app_context():
        assert db.session.get(GroupPass, first).state == "superseded"
        assert db.session.get(GroupPass, second).held == 31
    stale = decide(admin, first, "confirm")
    assert stale.status_code == 303
    assert {s for s, _ in states(following).values()} == {"connected"}


def test_another_institutions_pass_cannot_be_decided(following, standins, sixty, admin):
    held_id = held_pass(following, standins, sixty[:30])
    with following.app_context():
        other = invitations.create_institution("Fabrikam", "managed", "it@f.edu", "t")
        theirs = GroupPass(configuration=other.configuration, state=PassState.HELD, held_list=[])
        db.session.add(theirs)
        db.session.commit()
        theirs_id = theirs.id
    assert decide(admin, theirs_id, "confirm").status_code == 404
    for forged in ({"pass_id": held_id, "decision": "confirm"}, {"pass_id": held_id}):
        assert admin.client.post("/setup/mailboxes/held-removals", data=forged).status_code == 400
    for bad in ({"pass_id": "x"}, {"pass_id": "99999999999999"}, {"decision": "all"}):
        data = {"pass_id": held_id, "decision": "confirm", **bad}
        page = admin.post("/setup/mailboxes/held-removals", data, page="/setup/mailboxes")
        assert page.status_code == 400
    assert {s for s, _ in states(following).values()} == {"connected"}


def test_a_pass_without_the_permission_fails_and_says_what_to_do(following, standins, admin):
    standins.registration.application_permissions.discard("GroupMember.Read.All")
    failed = run_pass(following)
    assert (failed.state, failed.error_code) == ("failed", "Authorization_RequestDenied")
    page = admin.client.get("/setup/mailboxes").text
    assert "The app may not read the security group" in page
    assert "Authorization_RequestDenied" in page
    with following.app_context():
        audit = db.session.query(AuditEvent).filter_by(action="group_pass_failed").one()
        assert audit.detail.startswith("Authorization_RequestDenied: ")


def test_the_summary_shows_on_both_pages(following, standins, admin, console):
    newcomer(standins, 1)
    run_pass(following)
    pages = admin.client.get("/setup/mailboxes"), console.client.get(config_page(following))
    for page in (response.text for response in pages):
        assert "Latest passes" in page
        row = page[page.index("Latest passes") :]
        for header in ("Members", "Added", "Removed", "Refused", "Held"):
            assert header in row
        assert "done" in row and LEE in row  # the refused member, in the details


def test_a_pass_that_changes_nothing_is_kept_but_not_audited(following, standins):
    run_pass(following)
    assert run_pass(following).refused == 1  # Lee, still without a mailbox: still listed
    leave(standins, LEE)
    quiet = run_pass(following)
    assert (quiet.added, quiet.removed, quiet.refused, quiet.held) == (0, 0, 0, 0)
    with following.app_context():
        assert db.session.query(GroupPass).count() == 3
        assert db.session.query(AuditEvent).filter_by(action="group_pass").count() == 1


def test_a_refused_member_is_asked_about_again_a_day_later_not_every_pass(following, standins):
    first = run_pass(following)
    counters = standins.directory.counters
    asked = counters["graph"]
    again = run_pass(following)
    # The group is found by its address and its members read; Lee, refused an hour ago,
    # is not asked about.
    assert counters["graph"] - asked == 2
    assert again.refused_list == first.refused_list
    with following.app_context():
        last = db.session.get(GroupPass, again.id)
        day_ago = (utcnow() - groups.ASK_REFUSED_AGAIN - timedelta(minutes=1)).isoformat()
        last.refused_list = [[LEE, "MailboxNotEnabledForRESTAPI", day_ago]]
        db.session.commit()
    asked = counters["graph"]
    later = run_pass(following)
    assert counters["graph"] - asked > 2  # Lee asked about again, and still refused
    assert later.refused_list[0][:2] == [LEE, "MailboxNotEnabledForRESTAPI"]
    assert later.refused_list[0][2] > day_ago
    with following.app_context():
        audited = db.session.query(AuditEvent).filter_by(action="group_pass").count()
        assert audited == 2  # the first refusal, and the one a day later


# The administrator's setting


def test_the_administrator_turns_following_on_and_a_pass_is_due_at_once(group_app, standins):
    with group_app.app_context():
        link = invitations.issue_invitation(configuration().institution, "t")
        db.session.commit()
    admin = Wizard(group_app.test_client())
    admin.open(link)
    page = admin.client.get("/setup/mailboxes").text
    assert "Follow mytimetable@contoso.edu" in page and "When a member leaves the group" in page
    with group_app.app_context():
        later = utcnow() + timedelta(hours=1)  # as if a pass had run before
        db.session.add(SyncSchedule(name=groups.schedule_name(configuration().id), due_at=later))
        db.session.commit()
    saved = admin.post(
        "/setup/mailboxes/following",
        {"follow_group": "y", "leaver_removal": "calendar"},
        page="/setup/mailboxes",
        follow=True,
    )
    assert "MyTimetable follows mytimetable@contoso.edu" in saved.text
    assert "a member you remove below is added again" in saved.text
    with group_app.app_context():
        chosen = configuration()
        assert (chosen.follow_group, chosen.leaver_removal) == (True, "calendar")
        audit = db.session.query(AuditEvent).filter_by(action="group_following_set").one()
        assert audit.detail == "on (leavers lose: calendar)"
        standins.registration.application_permissions.add("GroupMember.Read.All")
        assert groups.run_due(60) == 1
    off = admin.post("/setup/mailboxes/following", {"leaver_removal": "events"}, follow=True)
    assert "no longer follows the group" in off.text
    with group_app.app_context():
        assert groups.following() == []


@pytest.mark.parametrize("value", ["", "everything", "x" * 300])
def test_an_unknown_leaver_choice_is_refused_on_the_page(group_app, value):
    with group_app.app_context():
        link = invitations.issue_invitation(configuration().institution, "t")
        db.session.commit()
    admin = Wizard(group_app.test_client())
    admin.open(link)
    page = admin.post(
        "/setup/mailboxes/following",
        {"follow_group": "y", "leaver_removal": value},
        page="/setup/mailboxes",
    )
    assert page.status_code == 400 and "There is a problem" in page.text
    with group_app.app_context():
        assert configuration().follow_group is False


def test_the_setting_is_offered_only_with_a_group(make_app, standins, configure):
    app = make_app(**standins.settings())
    configure(app)  # all calendars
    with app.app_context():
        link = invitations.issue_invitation(configuration().institution, "t")
        db.session.commit()
    admin = Wizard(app.test_client())
    admin.open(link)
    assert "When a member leaves the group" not in admin.client.get("/setup/mailboxes").text
    refused = admin.post(
        "/setup/mailboxes/following", {"follow_group": "y"}, page="/setup/mailboxes"
    )
    assert refused.status_code == 404


# Scheduling


def test_two_runners_run_one_pass_per_period(following, make_app, standins):
    other = make_app(**standins.settings())
    for app in (following, other, following):
        with app.app_context():
            groups.run_due(60)
    with following.app_context():
        assert db.session.query(GroupPass).count() == 1
        name = groups.schedule_name(configuration().id)
        due = db.session.get(SyncSchedule, name).due_at
        assert timedelta(minutes=59) < due - utcnow() <= timedelta(minutes=60)
        db.session.get(SyncSchedule, name).due_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    with other.app_context():
        assert groups.run_due(60) == 1
    with following.app_context():
        assert db.session.query(GroupPass).count() == 2


def test_worker_threads_on_two_processes_run_one_pass(following, make_app, standins, monkeypatch):
    monkeypatch.setattr(jobs, "SWEEP_SECONDS", 0.05)
    other = make_app(**standins.settings())
    stop = threading.Event()
    threads = [groups.follow_periodically(app, stop, 60) for app in (following, other)]
    try:
        with following.app_context():
            for _ in range(100):
                if db.session.query(GroupPass).count():
                    break
                db.session.rollback()
                threading.Event().wait(0.05)
        threading.Event().wait(0.3)  # both threads have asked several times by now
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    with following.app_context():
        assert db.session.query(GroupPass).count() == 1


def test_the_embedded_runner_runs_the_pass(following):
    result = following.test_cli_runner().invoke(args=["sync", "run", "--once", "--every", "0"])
    assert result.exit_code == 0, result.output
    assert "1 pass(es) of group following run." in result.output
    again = following.test_cli_runner().invoke(args=["sync", "run", "--once", "--every", "0"])
    assert "group following" not in again.output
    with following.app_context():
        assert db.session.query(GroupPass).count() == 1


def test_only_approved_configurations_that_follow_a_group_are_followed(following):
    with following.app_context():
        assert groups.following() == [configuration().id]
        configuration().mailbox_scope = "all"
        db.session.commit()
        assert groups.following() == []


# The page in Dutch


def test_the_following_texts_are_in_dutch(following, standins, sixty, admin):
    held_pass(following, standins, sixty[:30])
    page = admin.client.get("/setup/mailboxes", headers={"Accept-Language": "nl"}).text
    for words in (
        "Volg mytimetable@contoso.edu",
        "Synchroniseer elk lid van deze groep",
        "Als een lid de groep verlaat",
        "Laatste rondes",
        "30 synchronisaties beëindigen",
        "Annuleren: blijf ze synchroniseren",
    ):
        assert words in page, words
    assert PassState.HELD  # the enum the template compares with


# Step 3


def step_3(wizard, link, limit: str | None):
    from tests.integration.test_wizard_journey import ALL, RBAC, walk

    step_1 = ALL if limit is None else {**RBAC, "group_scope_method": limit}
    return walk(wizard, link, step_1)


@pytest.mark.parametrize("limit", ["rbac", "access_policy"])
def test_step_3_offers_following_and_lists_group_member_read_all_with_why(
    app, wizard, invitation, limit
):
    page = step_3(wizard, invitation["managed"], limit)
    assert 'name="follow_group"' in page
    assert "GroupMember.Read.All" in page and "Only if you chose above" in page
    wizard.post("/setup/register", {"follow_group": "y"})
    chosen = wizard.client.get("/setup/register").text
    row = chosen[chosen.index('data-copy="GroupMember.Read.All"') :].split("</tr>")[0]
    assert "Application" in row
    assert "Read the security group's members, to add those who join" in row
    assert '<input checked id="follow_group"' in chosen
    if limit == "rbac":  # no calendar permission in Entra, but this one all the same
        assert "To follow the group, MyTimetable reads its members" in chosen
    with app.app_context():
        assert db.session.query(Configuration).filter_by(follow_group=True).count() == 1


def test_step_3_offers_no_following_for_all_calendars_or_on_premises(wizard, invitation):
    assert 'name="follow_group"' not in step_3(wizard, invitation["managed"], None)
    assert "GroupMember.Read.All" not in step_3(wizard, invitation["managed"], None)
    on_premises = step_3(wizard, invitation["on_premises"], "rbac")
    assert 'name="follow_group"' not in on_premises and "GroupMember.Read.All" not in on_premises
