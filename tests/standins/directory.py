"""The state of a fake Microsoft cloud, shared by the identity and Graph stand-ins.

Tenants, app registrations, users and their mailboxes, the tokens and codes issued, and
how many requests each endpoint served. Tests arrange a scenario by changing this state
(``app.admin_consented = True``, ``directory.revoke_refresh_tokens(upn)``) and read it
back afterwards. The handlers run in server threads, so access goes through one lock.
"""

import base64
import collections
import datetime
import hashlib
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


@dataclass
class Tenant:
    """A Microsoft Entra tenant: its GUID and its verified domains."""

    id: str
    domains: list[str]
    display_name: str
    # Microsoft's default policy no longer lets users consent to calendar permissions.
    user_consent_allowed: bool = False


@dataclass
class AppRegistration:
    """An app registration with its service principal in its home tenant.

    ``admin_consented`` is the tenant-wide grant: app-only tokens then carry ``roles`` and
    nobody is asked to consent to the delegated permissions. ``policy_mailboxes`` (lower-case
    UPNs) models a legacy Exchange application access policy (RestrictAccess); None means no
    limit. ``rbac_mailboxes`` models RBAC for Applications: an "Application
    Calendars.ReadWrite" role assignment scoped to those mailboxes, which grants calendar
    access there without any ``roles`` in the token, and adds to a tenant-wide grant.
    """

    client_id: str
    tenant_id: str
    display_name: str
    certificates: list[str] = field(default_factory=list)
    redirect_uris: list[str] = field(default_factory=list)
    application_permissions: set[str] = field(default_factory=set)
    delegated_permissions: set[str] = field(default_factory=set)
    admin_consented: bool = False
    policy_mailboxes: set[str] | None = None
    rbac_mailboxes: set[str] | None = None
    service_principal_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class User:
    """A user account; ``consented_clients`` are the client IDs the user consented to."""

    object_id: str
    upn: str
    tenant_id: str
    display_name: str
    has_mailbox: bool = True
    consented_clients: set[str] = field(default_factory=set)


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


def new_calendar(name: str, owner: User, is_default: bool = False) -> dict:
    """A calendar resource as Graph returns it."""
    return {
        "id": "AAMkA" + base64.urlsafe_b64encode(secrets.token_bytes(63)).decode(),
        "name": name,
        "color": "auto",
        "hexColor": "",
        "isDefaultCalendar": is_default,
        "changeKey": base64.b64encode(secrets.token_bytes(12)).decode(),
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
    """Tenants, apps, users, mailboxes, issued grants and a signing key, behind one lock.

    ``signing_key`` may be given (an RSA private key) so that a test suite makes one key
    for many directories; otherwise each directory makes its own. ``counters`` counts the
    requests served: ``openid-configuration``, ``keys``, ``token`` and ``token:<grant type>``,
    ``authorize``, ``adminconsent``, ``logout``; ``graph`` for every Graph request and
    ``graph:user``, ``graph:list_calendars``, ``graph:create_calendar`` per operation.
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
        self._codes: dict[str, AuthorizationCode] = {}
        self._refresh_tokens: dict[str, RefreshToken] = {}
        self._calendars: dict[str, list[dict]] = {}
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
        return user

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
        """The application registered in this tenant with this client ID."""
        with self.lock:
            return self.apps.get((tenant_id.lower(), client_id.lower()))

    def user(self, object_id: str) -> User | None:
        """The user with this object ID."""
        with self.lock:
            return self.users.get(object_id.lower())

    def user_by_upn(self, upn: str) -> User | None:
        """The user with this user principal name (case-insensitive), in any tenant."""
        with self.lock:
            for user in self.users.values():
                if user.upn.lower() == upn.lower():
                    return user
        return None

    def count(self, name: str) -> None:
        """Count one request served by the endpoint called ``name``."""
        with self.lock:
            self.counters[name] += 1

    # Consent

    def grant_admin_consent(self, app: AppRegistration) -> None:
        """Grant the app's configured permissions for the whole tenant."""
        with self.lock:
            app.admin_consented = True

    def record_user_consent(self, user: User, client_id: str) -> None:
        """Remember that the user consented to this client."""
        with self.lock:
            user.consented_clients.add(client_id.lower())

    def has_consent(self, user: User, app: AppRegistration) -> bool:
        """Whether the user may use the app's delegated permissions without being asked."""
        with self.lock:
            return app.admin_consented or app.client_id.lower() in user.consented_clients

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
        "Revoke sessions" does); returns how many were revoked."""
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
            calendars = self._calendars.setdefault(
                user.object_id, [new_calendar("Calendar", user, is_default=True)]
            )
            return [dict(calendar) for calendar in calendars]

    def add_calendar(self, user: User, name: str) -> dict | None:
        """Create a calendar in the user's mailbox; None if one has that name already."""
        with self.lock:
            if any(c["name"].lower() == name.lower() for c in self.calendars(user)):
                return None
            calendar = new_calendar(name, user)
            self._calendars[user.object_id].append(calendar)
            return dict(calendar)

    # Signing

    def sign(self, claims: dict) -> str:
        """An RS256 JWT of these claims, signed by the directory's key."""
        headers = {"typ": "JWT", "kid": self.kid, "x5t": self.kid}
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers=headers)

    def decode(self, token: str, audiences: list[str]) -> dict:
        """The claims of a token this directory signed; raises ``jwt.InvalidTokenError``."""
        return jwt.decode(
            token,
            self.signing_key.public_key(),
            algorithms=["RS256"],
            audience=audiences,
            options={"require": ["exp", "iat", "aud", "tid"]},
        )

    def jwks(self) -> dict:
        """The JSON Web Key Set that publishes the signing key."""
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
    """A ``sub`` claim that is stable for one user and app and differs between apps."""
    digest = hashlib.sha256(f"{object_id}|{client_id}".lower().encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
