"""The state of a fake Microsoft cloud, shared by the identity and Graph stand-ins.

Tenants, app registrations, users, groups and their mailboxes (calendars and events), the
tokens and codes issued, and how many requests each endpoint served. Tests arrange a
scenario by changing this state (``app.admin_consented = True``,
``directory.revoke_refresh_tokens(upn)``, ``directory.throttle(upn, times=2)``,
``directory.hold(upn, seconds=2)``, ``directory.expire_access_tokens(after=5)``) and read it
back afterwards (``directory.events(upn)``, ``directory.master_categories(upn)``,
``directory.max_concurrency[upn]``). The
handlers run in server threads, so access goes through one lock.
"""

import base64
import collections
import datetime
import hashlib
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .odata import clone


@dataclass
class Tenant:
    """A Microsoft Entra tenant: its GUID and its verified domains."""

    id: str
    domains: list[str]
    display_name: str
    # Microsoft's default ("Microsoft-managed") policy no longer lets users consent to
    # calendar permissions (configure-user-consent.md).
    user_consent_allowed: bool = False


# reference-app-manifest.md: signInAudience and groupMembershipClaims values.
SIGN_IN_AUDIENCES = (
    "AzureADMyOrg",
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
    "PersonalMicrosoftAccount",
)
GROUP_MEMBERSHIP_CLAIMS = ("None", "SecurityGroup", "DirectoryRole", "ApplicationGroup", "All")


@dataclass
class AppRegistration:
    """An app registration with its service principal in its home tenant.

    ``admin_consented`` is the tenant-wide grant of every configured permission (admin
    consent to /.default, or "Grant admin consent" in the admin center): app-only tokens
    then carry ``roles`` and nobody is asked to consent to the delegated permissions.
    ``organization_delegated`` are delegated permissions an administrator granted for
    everyone without the application permissions (the consent prompt's "Consent on behalf
    of your organization", or admin consent to named scopes: v2-admin-consent.md,
    application-consent-experience.md). ``policy_mailboxes`` (lower-case
    UPNs) models a legacy Exchange application access policy (RestrictAccess); None means no
    limit. ``rbac_mailboxes`` models RBAC for Applications: an "Application
    Calendars.ReadWrite" role assignment scoped to those mailboxes, which grants calendar
    access there without any ``roles`` in the token, and adds to a tenant-wide grant
    (Exchange's application-rbac and Graph's auth-limit-mailbox-access.md).
    ``rbac_permissions`` are the permissions those role assignments stand for: "Application
    Calendars.ReadWrite", and "Application MailboxSettings.ReadWrite" (Outlook categories)
    when that role was assigned over the same scope too.
    """

    client_id: str
    tenant_id: str
    display_name: str
    certificates: list[str] = field(default_factory=list)
    redirect_uris: list[str] = field(default_factory=list)
    application_permissions: set[str] = field(default_factory=set)
    delegated_permissions: set[str] = field(default_factory=set)
    admin_consented: bool = False
    organization_delegated: set[str] = field(default_factory=set)
    policy_mailboxes: set[str] | None = None
    rbac_mailboxes: set[str] | None = None
    rbac_permissions: set[str] = field(default_factory=lambda: {"Calendars.ReadWrite"})
    service_principal_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Who may sign in (reference-app-manifest.md, signInAudience): AzureADMyOrg, the home
    # tenant's accounts only; AzureADMultipleOrgs, the accounts of any organisation's
    # tenant, named in the authority.
    sign_in_audience: str = "AzureADMyOrg"
    # The manifest's groupMembershipClaims (reference-app-manifest.md): which group and
    # directory-role memberships the tokens carry. None, "None", "SecurityGroup",
    # "DirectoryRole", "ApplicationGroup" or "All"; the manifest editor refuses others.
    group_membership_claims: str | None = None

    def __post_init__(self):
        if self.sign_in_audience not in SIGN_IN_AUDIENCES:
            raise ValueError(f"signInAudience {self.sign_in_audience!r} is not a valid value")
        self.set_group_membership_claims(self.group_membership_claims)

    def set_group_membership_claims(self, value: str | None) -> None:
        """Change the manifest's groupMembershipClaims, refusing a value Entra refuses."""
        if value is not None and value not in GROUP_MEMBERSHIP_CLAIMS:
            raise ValueError(f"groupMembershipClaims {value!r} is not a valid value")
        self.group_membership_claims = value

    @property
    def directory_roles_in_tokens(self) -> bool:
        """Whether tokens carry the user's directory roles as ``wids``: only when
        groupMembershipClaims is DirectoryRole or All (access-token-claims-reference.md,
        ``wids``: "Setting it to All or DirectoryRole is required")."""
        return self.group_membership_claims in ("DirectoryRole", "All")


@dataclass
class User:
    """A user account; ``consented_clients`` are the client IDs the user consented to.
    ``is_admin`` stands for a role that may grant consent for the organisation (Global or
    Privileged Role Administrator): only such a user completes admin consent
    (v2-oauth2-client-creds-grant-flow.md, "only a tenant administrator can sign in")."""

    object_id: str
    upn: str
    tenant_id: str
    display_name: str
    has_mailbox: bool = True
    consented_clients: set[str] = field(default_factory=set)
    is_admin: bool = False
    # The directory roles assigned to the user, by role template ID (permissions-
    # reference.md, "All roles"); what ``wids`` lists.
    directory_roles: set[str] = field(default_factory=set)


@dataclass
class Group:
    """A group of a tenant. ``members`` are the object IDs of its direct members: users, or
    other groups (nested, which ``transitiveMembers`` expands). A mail-enabled security
    group is what an Exchange application access policy or management scope names."""

    id: str
    tenant_id: str
    display_name: str
    mail: str | None = None
    mail_enabled: bool = False
    security_enabled: bool = True
    members: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Throttle:
    """One throttled answer waiting for the next request to a mailbox."""

    status: int
    retry_after: float
    code: str
    message: str


# The answers a throttle() fault injection gives: throttling.md's sample throttled response
# for 429; for 503, the code and status description of "Microsoft Graph error responses and
# resource types" (errors.md).
THROTTLED_ANSWERS = {
    429: ("TooManyRequests", "Please retry again later."),
    503: (
        "serviceNotAvailable",
        "The service is temporarily down for maintenance or is overloaded. You may repeat the "
        "request after a delay, the length of which may be specified in a Retry-After header.",
    ),
}


@dataclass(frozen=True)
class Hold:
    """One answer to keep waiting: the request runs (``applied``) before or after the wait."""

    seconds: float
    applied: bool


@dataclass
class AuthorizationCode:
    """What an authorization code stands for, remembered from the authorize request."""

    client_id: str
    tenant_id: str
    user_id: str
    redirect_uri: str
    scopes: list[str]
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str = "S256"
    issued_at: float = field(default_factory=time.time)
    redeemed: bool = False


@dataclass
class RefreshToken:
    """What a refresh token stands for."""

    client_id: str
    tenant_id: str
    user_id: str
    scopes: list[str]
    revoked: bool = False


# Item ids, change keys and request ids need to be unique, not secret: drawn from one
# generator seeded once, since os.urandom is a system call per id.
_ids = random.Random(secrets.randbits(128))


def random_guid() -> str:
    """A random (version 4) GUID, as Graph gives each request."""
    return str(uuid.UUID(int=_ids.getrandbits(128), version=4))


# A new mailbox's master list of categories: Outlook's six, as the example response of
# outlookuser-list-mastercategories.md lists them.
DEFAULT_CATEGORIES = (
    ("Red category", "preset0"),
    ("Orange category", "preset1"),
    ("Yellow category", "preset3"),
    ("Green category", "preset4"),
    ("Blue category", "preset7"),
    ("Purple category", "preset8"),
)


def new_calendar(name: str, owner: User, is_default: bool = False) -> dict:
    """A calendar resource as Graph returns it (api-reference v1.0, calendar resource type)."""
    return {
        "id": "AAMkA" + base64.urlsafe_b64encode(_ids.randbytes(63)).decode(),
        "name": name,
        "color": "auto",
        "hexColor": "",
        "isDefaultCalendar": is_default,
        "changeKey": base64.b64encode(_ids.randbytes(12)).decode(),
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "isTallyingResponses": True,
        "isRemovable": not is_default,
        "owner": {"name": owner.display_name, "address": owner.upn},
    }


class Directory:
    """Tenants, apps, users, groups, mailboxes, issued grants and a signing key, behind one lock.

    ``signing_key`` may be given (an RSA private key) so that a test suite makes one key
    for many directories; otherwise each directory makes its own. ``counters`` counts the
    requests served: ``openid-configuration``, ``keys``, ``token`` and ``token:<grant type>``,
    ``authorize``, ``adminconsent``, ``logout``; ``graph`` for every Graph request (each
    request inside a ``$batch`` too), ``graph:http`` for those that came over the wire (a
    ``$batch`` once) and ``graph:<view>`` per operation (``graph:user``,
    ``graph:list_calendars``, ``graph:create_event``, ``graph:batch``, ...).

    Mailbox load, keyed by lower-case UPN: ``max_concurrency`` is the most requests seen at
    once on a mailbox (the requests of one ``$batch`` that do not depend on each other count
    as concurrent, as Graph runs them in parallel). ``mailbox_concurrency_limit`` (4, the
    Outlook service limit of throttling-limits.md; None switches it off) answers the
    requests over it 429 ``ApplicationThrottled``; ``mailbox_latency`` (seconds) makes each
    mailbox request take that long, so that concurrent clients overlap measurably.
    ``max_mailboxes_in_flight`` is the most mailboxes seen with a request running at once;
    with ``gather_mailboxes`` set, a mailbox request waits (10 s at most) until that many
    mailboxes have had one running at once, so that a test sees whether a client keeps them
    in flight together.

    Latency as the real service has it (100 to 500 ms a request): ``request_latency``
    (seconds) holds every Graph answer that long, and a ``$batch`` answer another
    ``batch_item_latency`` per request it carries.
    """

    def __init__(
        self,
        base_url_identity: str = "",
        base_url_graph: str = "",
        signing_key: rsa.RSAPrivateKey | None = None,
    ):
        self.base_url_identity = base_url_identity
        self.base_url_graph = base_url_graph
        self.lock = threading.RLock()
        self.counters: collections.Counter[str] = collections.Counter()
        self.tenants: dict[str, Tenant] = {}
        self.apps: dict[tuple[str, str], AppRegistration] = {}
        self.users: dict[str, User] = {}
        self._users_by_upn: dict[str, User] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._refresh_tokens: dict[str, RefreshToken] = {}
        self.groups: dict[str, Group] = {}
        self._calendars: dict[str, list[dict]] = {}
        self._events: dict[str, list[dict]] = {}
        self._categories: dict[str, list[dict]] = {}
        # Per mailbox (object ID): its stored events' records by transactionId.
        self._transactions: dict[str, dict[str, dict]] = {}
        # Tokens whose signature and audience were checked: claims by (token, audiences).
        self._verified: dict[tuple, dict] = {}
        self._throttles: dict[str, collections.deque[Throttle]] = {}
        self._holds: dict[str, collections.deque[Hold | None]] = {}
        self._refused_subjects: dict[str, tuple[str, str]] = {}
        self._live_access_tokens: set[str] = set()
        self._lapsed_access_tokens: set[str] = set()
        self._lapse_after: int | None = None
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._admitted: dict[tuple[str, str], collections.deque[float]] = {}
        self.max_concurrency: collections.Counter[str] = collections.Counter()
        # throttling-limits.md, Outlook service limits: 4 concurrent requests per app and
        # mailbox. None switches the limit off, for tests that only measure concurrency.
        self.mailbox_concurrency_limit: int | None = 4
        # throttling-limits.md, Outlook service limits: 10,000 API requests in a 10-minute
        # period per app ID and mailbox.
        self.mailbox_request_limit = 10_000
        self.mailbox_request_window = 600.0
        self.mailbox_latency = 0.0
        self.max_mailboxes_in_flight = 0
        self.gather_mailboxes: int | None = None
        self._crowd = threading.Condition(self.lock)
        self.request_latency = 0.0
        self.batch_item_latency = 0.0
        self.signing_key = signing_key or rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )
        self._signing_cert = _self_signed(self.signing_key)
        self.kid = _thumbprint(self._signing_cert)

    # Arranging the directory

    def add_tenant(self, tenant: Tenant | None = None, /, **fields) -> Tenant:
        """Add a tenant, given as a ``Tenant`` or as its fields."""
        tenant = tenant or Tenant(**fields)
        with self.lock:
            self.tenants[tenant.id.lower()] = tenant
        return tenant

    def add_app(self, app: AppRegistration | None = None, /, **fields) -> AppRegistration:
        """Register an application, given as an ``AppRegistration`` or as its fields."""
        app = app or AppRegistration(**fields)
        with self.lock:
            self.apps[(app.tenant_id.lower(), app.client_id.lower())] = app
        return app

    def add_user(self, user: User | None = None, /, **fields) -> User:
        """Add a user, given as a ``User`` or as its fields."""
        user = user or User(**fields)
        with self.lock:
            self.users[user.object_id.lower()] = user
            self._users_by_upn[user.upn.lower()] = user
        return user

    def remove_user(self, upn: str) -> None:
        """Delete a user (user-delete.md): from then on Graph answers requests to their
        mailbox 404 ``ErrorInvalidUser``, as for any user the tenant does not have."""
        with self.lock:
            user = self._users_by_upn.pop(upn.lower())
            del self.users[user.object_id.lower()]

    def add_group(self, group: Group | None = None, /, **fields) -> Group:
        """Add a group, given as a ``Group`` or as its fields."""
        group = group or Group(**fields)
        with self.lock:
            self.groups[group.id.lower()] = group
        return group

    def add_member(self, group_id: str, object_id: str) -> None:
        """Add a user or a group to a group's direct members ("Add members",
        group-post-members.md: an object that is a member already is refused with 400
        Request_BadRequest, "One or more added object references already exist")."""
        with self.lock:
            group = self.groups[group_id.lower()]
            if object_id.lower() in (member.lower() for member in group.members):
                raise ValueError(f"{object_id} is already a member of {group.display_name}")
            if object_id.lower() not in self.users and object_id.lower() not in self.groups:
                raise KeyError(object_id)  # Request_ResourceNotFound there
            group.members.append(object_id)

    def remove_member(self, group_id: str, object_id: str) -> None:
        """Take a user or a group out of a group's direct members ("Remove member",
        group-delete-members.md: an object that is not a direct member is 404
        Request_ResourceNotFound). Its transitive membership through a nested group, if any,
        stays."""
        with self.lock:
            group = self.groups[group_id.lower()]
            kept = [member for member in group.members if member.lower() != object_id.lower()]
            if len(kept) == len(group.members):
                raise KeyError(object_id)
            group.members = kept

    # Looking things up

    def find_tenant(self, id_or_domain: str) -> Tenant | None:
        """The tenant with this GUID or verified domain (case-insensitive)."""
        key = id_or_domain.lower()
        with self.lock:
            if key in self.tenants:
                return self.tenants[key]
            for tenant in self.tenants.values():
                if key in (domain.lower() for domain in tenant.domains):
                    return tenant
        return None

    def app(self, tenant_id: str, client_id: str) -> AppRegistration | None:
        """The application with this client ID as this tenant knows it: registered in it,
        or a multi-tenant app registered in another tenant (signInAudience
        AzureADMultipleOrgs, howto-convert-app-to-be-multi-tenant.md), whose service
        principal the tenant gets when someone there first consents to it."""
        with self.lock:
            own = self.apps.get((tenant_id.lower(), client_id.lower()))
            if own is not None:
                return own
            return next(
                (
                    app
                    for (_, client), app in self.apps.items()
                    if client == client_id.lower() and app.sign_in_audience == "AzureADMultipleOrgs"
                ),
                None,
            )

    def user(self, object_id: str) -> User | None:
        """The user with this object ID."""
        with self.lock:
            return self.users.get(object_id.lower())

    def user_by_upn(self, upn: str) -> User | None:
        """The user with this user principal name (case-insensitive), in any tenant."""
        with self.lock:
            user = self._users_by_upn.get(upn.lower())
            return user if user is not None and user.upn.lower() == upn.lower() else None

    def user_by_id_or_upn(self, key: str) -> User | None:
        """The user with this object ID or user principal name."""
        return self.user(key) or self.user_by_upn(key)

    def group(self, object_id: str) -> Group | None:
        """The group with this object ID."""
        with self.lock:
            return self.groups.get(object_id.lower())

    def tenant_groups(self, tenant_id: str) -> list[Group]:
        """The groups of a tenant, in the order they were added."""
        with self.lock:
            return [g for g in self.groups.values() if g.tenant_id.lower() == tenant_id.lower()]

    def members(self, group: Group, transitive: bool = False) -> list[User | Group]:
        """The group's members (users and nested groups); ``transitive`` adds the members of
        nested groups, each object once."""
        found: dict[str, User | Group] = {}
        pending = list(group.members)
        with self.lock:
            while pending:
                key = pending.pop(0).lower()
                member = self.users.get(key) or self.groups.get(key)
                if member is None or key in found or key == group.id.lower():
                    continue
                found[key] = member
                if transitive and isinstance(member, Group):
                    pending.extend(member.members)
        return list(found.values())

    def count(self, *names: str) -> None:
        """Count one request served by each endpoint named."""
        with self.lock:
            for name in names:
                self.counters[name] += 1

    # Consent

    def grant_admin_consent(self, app: AppRegistration) -> None:
        """Grant the app's configured permissions for the whole tenant."""
        with self.lock:
            app.admin_consented = True

    def grant_for_organization(self, app: AppRegistration, permissions) -> None:
        """Grant these delegated permissions of the app for every user of its tenant."""
        with self.lock:
            app.organization_delegated |= set(permissions)

    def record_user_consent(self, user: User, client_id: str) -> None:
        """Remember that the user consented to this client."""
        with self.lock:
            user.consented_clients.add(client_id.lower())

    def has_consent(self, user: User, app: AppRegistration, permissions=()) -> bool:
        """Whether the user may use these delegated permissions of the app without being
        asked: granted for everyone, or consented to by the user."""
        with self.lock:
            return (
                app.admin_consented
                or app.client_id.lower() in user.consented_clients
                or bool(app.organization_delegated)
                and set(permissions) <= app.organization_delegated
            )

    # Codes and refresh tokens

    def issue_code(self, grant: AuthorizationCode) -> str:
        """Register an authorization code and return it."""
        code = "1.A" + secrets.token_urlsafe(96)
        with self.lock:
            self._codes[code] = grant
        return code

    def code_grant(self, code: str) -> AuthorizationCode | None:
        """What this authorization code stands for, redeemed or not."""
        with self.lock:
            return self._codes.get(code)

    def redeem(self, grant: AuthorizationCode) -> bool:
        """Mark the code redeemed; False if it already was (codes are single use)."""
        with self.lock:
            if grant.redeemed:
                return False
            grant.redeemed = True
            return True

    def issue_refresh_token(self, grant: RefreshToken) -> str:
        """Register a refresh token and return it."""
        token = "1.A" + secrets.token_urlsafe(160)
        with self.lock:
            self._refresh_tokens[token] = grant
        return token

    def refresh_grant(self, token: str) -> RefreshToken | None:
        """What this refresh token stands for."""
        with self.lock:
            return self._refresh_tokens.get(token)

    def revoke_refresh_tokens(self, upn: str) -> int:
        """Revoke every refresh token issued to this user so far (as the Entra admin centre's
        "Revoke sessions" and Graph's user: revokeSignInSessions do; a refresh then fails
        with AADSTS50173, reference-error-codes.md); returns how many were revoked."""
        user = self.user_by_upn(upn)
        if user is None:
            return 0
        revoked = 0
        with self.lock:
            for grant in self._refresh_tokens.values():
                if grant.user_id == user.object_id and not grant.revoked:
                    grant.revoked = True
                    revoked += 1
        return revoked

    # Mailboxes

    def calendars(self, user: User) -> list[dict]:
        """The user's calendars; a mailbox starts with its default calendar."""
        with self.lock:
            return [dict(calendar) for calendar in self._mailbox_calendars(user)]

    def _mailbox_calendars(self, user: User) -> list[dict]:
        if user.object_id not in self._calendars:
            self._calendars[user.object_id] = [new_calendar("Calendar", user, is_default=True)]
        return self._calendars[user.object_id]

    def add_calendar(self, user: User, name: str) -> dict | None:
        """Create a calendar in the user's mailbox; None if one has that name already."""
        with self.lock:
            if any(c["name"].lower() == name.lower() for c in self.calendars(user)):
                return None
            calendar = new_calendar(name, user)
            self._calendars[user.object_id].append(calendar)
            return dict(calendar)

    def calendar(self, user: User, calendar_id: str) -> dict | None:
        """One of the user's calendars, by id."""
        with self.lock:
            for calendar in self.calendars(user):
                if calendar["id"] == calendar_id:
                    return calendar
        return None

    def delete_calendar(self, user: User, calendar_id: str) -> bool:
        """Delete a calendar and its events; False if the user has no such calendar."""
        with self.lock:
            if self.calendar(user, calendar_id) is None:
                return False
            calendars = self._calendars[user.object_id]
            calendars[:] = [c for c in calendars if c["id"] != calendar_id]
            stored = self._events.get(user.object_id, [])
            stored[:] = [r for r in stored if r["calendar_id"] != calendar_id]
            self._index_transactions(user)
            return True

    # Outlook categories

    def master_categories(self, user_upn_or_id: str | User) -> list[dict]:
        """The mailbox's master list of categories (outlookcategory.md: ``id``,
        ``displayName``, ``color``) in the order they were made; a mailbox starts with
        ``DEFAULT_CATEGORIES``. Takes the user, or for tests their UPN or object ID."""
        user = user_upn_or_id
        if not isinstance(user, User):
            user = self.user_by_id_or_upn(user_upn_or_id)
            if user is None:
                raise LookupError(f"no user {user_upn_or_id!r} in the directory")
        with self.lock:
            return [dict(category) for category in self._mailbox_categories(user)]

    def _mailbox_categories(self, user: User) -> list[dict]:
        if user.object_id not in self._categories:
            self._categories[user.object_id] = [
                {"id": random_guid(), "displayName": name, "color": color}
                for name, color in DEFAULT_CATEGORIES
            ]
        return self._categories[user.object_id]

    def add_master_category(self, user: User, name: str, color: str) -> dict | None:
        """Add a category to the user's master list; None if the list has one of that name
        already (outlookcategory.md: the name is unique in the list; compared here ignoring
        case, the stricter reading)."""
        with self.lock:
            categories = self._mailbox_categories(user)
            if any(c["displayName"].casefold() == name.casefold() for c in categories):
                return None
            category = {"id": random_guid(), "displayName": name, "color": color}
            categories.append(category)
            return dict(category)

    # Events

    def add_event(self, user: User, calendar_id: str, event: dict) -> tuple[dict, bool] | None:
        """Store an event in one of the user's calendars and give it its id, iCalUId,
        changeKey and timestamps: (the event, True). If an event of this mailbox already has
        the event's ``transactionId``, that event instead: (it, False). None if the user has
        no such calendar."""
        with self.lock:
            if not any(c["id"] == calendar_id for c in self._mailbox_calendars(user)):
                return None
            stored = self._events.setdefault(user.object_id, [])
            transactions = self._transactions.setdefault(user.object_id, {})
            transaction_id = event.get("transactionId")
            if transaction_id and transaction_id in transactions:
                return clone(transactions[transaction_id]["event"]), False
            now = _graph_timestamp()
            event = {
                **clone(event),
                "id": _outlook_id(),
                "createdDateTime": now,
                "lastModifiedDateTime": now,
                "changeKey": _change_key(),
                "iCalUId": "040000008200E00074C5B7101A82E00800000000"
                + _ids.randbytes(36).hex().upper(),
            }
            record = {"calendar_id": calendar_id, "event": event}
            stored.append(record)
            if transaction_id:
                transactions[transaction_id] = record
            return clone(event), True

    def event(self, user: User, event_id: str, calendar_id: str | None = None) -> dict | None:
        """One of the user's events, by id (and in that calendar, if one is given)."""
        with self.lock:
            record = self._event_record(user, event_id, calendar_id)
            return clone(record["event"]) if record else None

    def update_event(
        self, user: User, event_id: str, change, calendar_id: str | None = None
    ) -> dict | None:
        """Replace an event by ``change(event)`` (which may raise to refuse the change) with a
        new changeKey and lastModifiedDateTime; None if there is no such event."""
        with self.lock:
            record = self._event_record(user, event_id, calendar_id)
            if record is None:
                return None
            changed = change(clone(record["event"]))
            changed["lastModifiedDateTime"] = _graph_timestamp()
            changed["changeKey"] = _change_key()
            record["event"] = changed
            return clone(changed)

    def delete_event(self, user: User, event_id: str, calendar_id: str | None = None) -> bool:
        """Delete one of the user's events; False if there is no such event."""
        with self.lock:
            record = self._event_record(user, event_id, calendar_id)
            if record is None:
                return False
            self._events[user.object_id].remove(record)
            transaction_id = record["event"].get("transactionId")
            if transaction_id:
                self._transactions.get(user.object_id, {}).pop(transaction_id, None)
            return True

    def calendar_events(self, user: User, calendar_id: str) -> list[dict]:
        """The events of one of the user's calendars, oldest first."""
        with self.lock:
            stored = self._events.get(user.object_id, [])
            return [clone(r["event"]) for r in stored if r["calendar_id"] == calendar_id]

    def events(self, user_upn_or_id: str, calendar_id: str | None = None) -> list[dict]:
        """For tests: the events of a mailbox (of one calendar, if given), oldest first, as
        stored: ``start``/``end`` in the zones they were written in, and
        ``singleValueExtendedProperties`` always included."""
        user = self.user_by_id_or_upn(user_upn_or_id)
        if user is None:
            raise LookupError(f"no user {user_upn_or_id!r} in the directory")
        with self.lock:
            stored = self._events.get(user.object_id, [])
            return [
                clone(r["event"])
                for r in stored
                if calendar_id is None or r["calendar_id"] == calendar_id
            ]

    def _index_transactions(self, user: User) -> None:
        self._transactions[user.object_id] = {
            r["event"]["transactionId"]: r
            for r in self._events.get(user.object_id, [])
            if r["event"].get("transactionId")
        }

    def _event_record(self, user: User, event_id: str, calendar_id: str | None) -> dict | None:
        for record in self._events.get(user.object_id, []):
            if record["event"]["id"] == event_id and calendar_id in (None, record["calendar_id"]):
                return record
        return None

    # Throttling and load

    def admit_request(self, user: User, client_id: str) -> float | None:
        """Count a request of this app to the user's mailbox against the Outlook service
        limit of ``mailbox_request_limit`` requests per ``mailbox_request_window`` seconds;
        if it is over, the seconds until the oldest counted request leaves the window (the
        request is not counted)."""
        now = time.monotonic()
        with self.lock:
            admitted = self._admitted.setdefault(
                (client_id.lower(), user.upn.lower()), collections.deque()
            )
            while admitted and admitted[0] <= now - self.mailbox_request_window:
                admitted.popleft()
            if len(admitted) >= self.mailbox_request_limit:
                return admitted[0] + self.mailbox_request_window - now
            admitted.append(now)
            return None

    # Fault injection: answers Graph gives for reasons the stand-in does not model, each
    # in the shape Microsoft documents for it.

    def throttle(
        self, mailbox: str, times: int = 1, retry_after: float = 1, status: int = 429
    ) -> None:
        """Fault injection: answer the next ``times`` requests to this mailbox (UPN or object
        ID; top-level or inside a ``$batch``) with ``status`` (429 ``TooManyRequests``, or 503
        ``serviceNotAvailable``) and a ``Retry-After`` of ``retry_after`` seconds, as
        throttling.md describes Graph's throttling. Calls add up."""
        if status not in THROTTLED_ANSWERS:
            raise ValueError("Graph throttles with 429 or 503")
        answer = Throttle(status, retry_after, *THROTTLED_ANSWERS[status])
        with self.lock:
            queue = self._throttles.setdefault(self._mailbox_key(mailbox), collections.deque())
            queue.extend([answer] * times)

    def take_throttle(self, user: User) -> Throttle | None:
        """The throttled answer due for this request to the user's mailbox, if any."""
        with self.lock:
            queue = self._throttles.get(user.upn.lower())
            return queue.popleft() if queue else None

    def hold(
        self, mailbox: str, seconds: float, times: int = 1, applied: bool = True, after: int = 0
    ) -> None:
        """Fault injection: keep the answers to ``times`` requests to this mailbox waiting
        ``seconds``, past a
        client's timeout, after letting the next ``after`` requests through. The request is
        carried out before the wait (``applied``: the client never learns that its create
        was made) or after it, when the client has given up. Inside a ``$batch`` the whole
        batch's answer waits. Calls add up."""
        with self.lock:
            queue = self._holds.setdefault(self._mailbox_key(mailbox), collections.deque())
            queue.extend([None] * after + [Hold(seconds, applied)] * times)

    def take_hold(self, user: User) -> Hold | None:
        """The hold due for this request to the user's mailbox, if any."""
        with self.lock:
            queue = self._holds.get(user.upn.lower())
            return queue.popleft() if queue else None

    def refuse_subject(self, subject: str, code: str, message: str) -> None:
        """Fault injection: answer every create or update that leaves an event with this
        subject 400 with ``code`` and ``message`` in Graph's error shape (errors.md), until
        ``accept_subject``. Graph refuses bodies for reasons the stand-in does not model
        (limits Exchange sets on an item, content it cannot store); sending the same body
        again gets the same answer."""
        with self.lock:
            self._refused_subjects[subject] = (code, message)

    def accept_subject(self, subject: str) -> None:
        """Stop refusing events with this subject."""
        with self.lock:
            self._refused_subjects.pop(subject, None)

    def refusal(self, event: dict) -> tuple[str, str] | None:
        """The (code, message) a write that leaves ``event`` so is refused with, if any."""
        with self.lock:
            return self._refused_subjects.get(event.get("subject", ""))

    # Mailbox load

    def in_flight(self, mailbox: str) -> int:
        """How many requests are running on the mailbox now (held ones among them)."""
        with self.lock:
            return self._in_flight[self._mailbox_key(mailbox)]

    def enter_mailbox(self, user: User) -> int:
        """Count one more request running on the user's mailbox; how many run now."""
        key = user.upn.lower()
        with self.lock:
            self._in_flight[key] += 1
            self.max_concurrency[key] = max(self.max_concurrency[key], self._in_flight[key])
            busy = sum(1 for running in self._in_flight.values() if running > 0)
            self.max_mailboxes_in_flight = max(self.max_mailboxes_in_flight, busy)
            self._crowd.notify_all()
            return self._in_flight[key]

    def gather(self) -> None:
        """Wait until ``gather_mailboxes`` mailboxes have had a request running at once."""
        with self._crowd:
            if self.gather_mailboxes:
                wanted = self.gather_mailboxes
                self._crowd.wait_for(lambda: self.max_mailboxes_in_flight >= wanted, timeout=10)

    def leave_mailbox(self, user: User) -> None:
        """Count one request on the user's mailbox as finished."""
        with self.lock:
            self._in_flight[user.upn.lower()] -= 1

    def _mailbox_key(self, mailbox: str) -> str:
        user = self.user_by_id_or_upn(mailbox)
        return (user.upn if user else mailbox).lower()

    # Access tokens

    def issued_access_token(self, claims: dict) -> None:
        """Remember an access token the identity stand-in issued (by its ``uti``)."""
        with self.lock:
            self._live_access_tokens.add(claims["uti"])

    def expire_access_tokens(self, after: int = 0) -> None:
        """Let every access token issued so far lapse once ``after`` more Graph requests
        (each request of a ``$batch`` counting) have been served, as a token that expires in
        the middle of a run; Graph then answers 401 ``InvalidAuthenticationToken``. Tokens
        issued later are valid."""
        with self.lock:
            self._lapse_after = after
            if after == 0:
                self._lapse()

    def access_token_lapsed(self, claims: dict) -> bool:
        """Whether Graph must refuse this token as expired; counts one Graph request."""
        if self._lapse_after is None and not self._lapsed_access_tokens:
            return False  # nothing was made to lapse: no need to wait for the lock
        with self.lock:
            if self._lapse_after is not None:
                if self._lapse_after == 0:
                    self._lapse()
                else:
                    self._lapse_after -= 1
            return claims.get("uti") in self._lapsed_access_tokens

    def _lapse(self) -> None:
        self._lapsed_access_tokens |= self._live_access_tokens
        self._live_access_tokens = set()
        self._lapse_after = None

    # Signing

    def sign(self, claims: dict, x5t: bool = True) -> str:
        """An RS256 JWT of these claims, signed by the directory's key. ``x5t`` repeats
        ``kid`` in the header, as v1.0 tokens (Graph's access tokens) do and v2.0 ID tokens
        do not (access-token-claims-reference.md, id-token-claims-reference.md: header)."""
        headers = {"typ": "JWT", "kid": self.kid}
        if x5t:
            headers["x5t"] = self.kid
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers=headers)

    def decode(self, token: str, audiences: list[str]) -> dict:
        """The claims of a token this directory signed; raises ``jwt.InvalidTokenError``.

        A token's signature and audience are checked once; later uses check its expiry."""
        key = (token, tuple(audiences))
        claims = self._verified.get(key)
        if claims is None:
            claims = jwt.decode(
                token,
                self.signing_key.public_key(),
                algorithms=["RS256"],
                audience=audiences,
                options={"require": ["exp", "iat", "aud", "tid"]},
            )
            with self.lock:
                if len(self._verified) >= 10_000:
                    self._verified.clear()
                self._verified[key] = claims
        elif claims["exp"] <= time.time():
            raise jwt.ExpiredSignatureError("Signature has expired")
        return claims

    def jwks(self) -> dict:
        """The JSON Web Key Set that publishes the signing key, with the fields of Entra's
        ``jwks_uri`` document (v2-protocols-oidc.md, signing-key-rollover.md)."""
        numbers = self.signing_key.public_key().public_numbers()
        der = self._signing_cert.public_bytes(serialization.Encoding.DER)
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self.kid,
                    "x5t": self.kid,
                    "n": _b64url_int(numbers.n),
                    "e": _b64url_int(numbers.e),
                    "x5c": [base64.b64encode(der).decode()],
                }
            ]
        }


def _outlook_id() -> str:
    """An Exchange item id as Graph shows it (URL-safe base64)."""
    return "AAMkA" + base64.urlsafe_b64encode(_ids.randbytes(105)).decode() + "AAA="


def _change_key() -> str:
    return base64.b64encode(_ids.randbytes(22)).decode()


def _graph_timestamp() -> str:
    """Now, as Exchange writes timestamps: UTC with seven fractional digits."""
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}0Z"


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A certificate around the signing key, as Microsoft's JWKS publishes in ``x5c``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.accesscontrol.test")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


def _thumbprint(cert: x509.Certificate) -> str:
    return base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).decode().rstrip("=")


def _b64url_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def pairwise_subject(object_id: str, client_id: str) -> str:
    """A ``sub`` claim that is stable for one user and app and differs between apps (a
    pairwise identifier: access-token-claims-reference.md, id-token-claims-reference.md)."""
    digest = hashlib.sha256(f"{object_id}|{client_id}".lower().encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
