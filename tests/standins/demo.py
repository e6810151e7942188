"""The demo cloud: Contoso's tenant, its people and the portal's app registration.

The names follow Microsoft's own demo tenants. The ids are fixed, so a person trying the
portal by hand can type them and a test can name them. The app's permissions are those the
portal's step 3 asks for (Graph's permissions-reference.md: Calendars.ReadWrite application
and delegated, User.Read); the tenants keep Microsoft's default user consent policy
(configure-user-consent.md), so calendar access needs admin consent.
"""

from .directory import AppRegistration, Directory, Group, Tenant, User

CONTOSO_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
FABRIKAM_TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DEMO_CLIENT_ID = "5b2f8c39-7a1e-4a53-9d0e-3c7f1a2b4c6d"
DEMO_GROUP_ID = "0b5d3f7e-2c4a-4e6b-8d1f-9a3c5e7b1d2f"
DEMO_GROUP_MAIL = "mytimetable@contoso.edu"

# (object ID, UPN, display name, has a mailbox, inside the app's access policy)
CONTOSO_PEOPLE = [
    ("6e7b768e-07e2-4810-8459-485f84f8f204", "adele.vance@contoso.edu", "Adele Vance", True, True),
    ("48d31887-5fad-4d73-a9f5-3c356e68a038", "megan.bowen@contoso.edu", "Megan Bowen", True, True),
    ("87d349ed-44d7-43e1-9a83-5f2406dee5bd", "alex.wilber@contoso.edu", "Alex Wilber", True, False),
    ("e8e3f7c2-5f9a-4b1e-8d6c-2a4b6c8d0e1f", "admin@contoso.edu", "MOD Administrator", True, False),
    ("074e56ea-0b50-4461-89e5-c67ae14a2c0b", "lee.gu@contoso.edu", "Lee Gu", False, True),
]
ADMIN = "admin@contoso.edu"  # the one who may grant admin consent
GUEST = ("1f3c5e7a-9b2d-4f6e-8a0c-3e5f7a9b1d2c", "guest@fabrikam.com", "Fabrikam Guest")


def seed_demo(
    directory: Directory,
    certificates: list[str] | None = None,
    redirect_uris: list[str] | None = None,
) -> dict:
    """Fill the directory with the demo tenants, users and app registration.

    The app has Calendars.ReadWrite (application) and Calendars.ReadWrite, User.Read and
    offline_access (delegated) configured, no consent yet, and an access policy that covers
    Adele, Megan and Lee (who has no mailbox) but not Alex or the admin. Only the admin
    (admin@contoso.edu) may grant admin consent. ``certificates`` are
    the PEM certificates uploaded to it. The mail-enabled security group
    mytimetable@contoso.edu holds the same people as the access policy. Returns the ids,
    keyed by name.
    """
    directory.add_tenant(
        Tenant(
            id=CONTOSO_TENANT_ID,
            domains=["contoso.onmicrosoft.com", "contoso.edu"],
            display_name="Contoso",
        )
    )
    directory.add_tenant(
        Tenant(
            id=FABRIKAM_TENANT_ID,
            domains=["fabrikam.onmicrosoft.com", "fabrikam.com"],
            display_name="Fabrikam",
        )
    )
    users = {}
    for object_id, upn, name, has_mailbox, _ in CONTOSO_PEOPLE:
        directory.add_user(
            User(
                object_id,
                upn,
                CONTOSO_TENANT_ID,
                name,
                has_mailbox=has_mailbox,
                is_admin=upn == ADMIN,
            )
        )
        users[upn] = object_id
    guest_id, guest_upn, guest_name = GUEST
    directory.add_user(User(guest_id, guest_upn, FABRIKAM_TENANT_ID, guest_name))
    users[guest_upn] = guest_id
    directory.add_app(
        AppRegistration(
            client_id=DEMO_CLIENT_ID,
            tenant_id=CONTOSO_TENANT_ID,
            display_name="MyTimetable Office 365",
            certificates=list(certificates or []),
            redirect_uris=list(redirect_uris or []),
            application_permissions={"Calendars.ReadWrite"},
            delegated_permissions={"Calendars.ReadWrite", "User.Read", "offline_access"},
            policy_mailboxes={upn for _, upn, _, _, inside in CONTOSO_PEOPLE if inside},
        )
    )
    inside_policy = [object_id for object_id, _, _, _, inside in CONTOSO_PEOPLE if inside]
    directory.add_group(
        Group(
            id=DEMO_GROUP_ID,
            tenant_id=CONTOSO_TENANT_ID,
            display_name="MyTimetable",
            mail=DEMO_GROUP_MAIL,
            mail_enabled=True,
            security_enabled=True,
            members=inside_policy,
        )
    )
    return {
        "tenant_id": CONTOSO_TENANT_ID,
        "tenant_domain": "contoso.onmicrosoft.com",
        "client_id": DEMO_CLIENT_ID,
        "other_tenant_id": FABRIKAM_TENANT_ID,
        "other_tenant_domain": "fabrikam.onmicrosoft.com",
        "guest_upn": guest_upn,
        "users": users,
        "group_id": DEMO_GROUP_ID,
    }
