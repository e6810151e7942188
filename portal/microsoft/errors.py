"""What Microsoft's error codes mean for the person in front of the portal.

One table maps each AADSTS code (by number) and each Graph error code to a cause, what
to do about it, the wizard step where that is done, and the page that explains a sign-in
it stopped. ``MicrosoftError`` carries a code
out of ``portal.microsoft`` so that nothing else needs to read Microsoft's responses.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

from ..i18n import lazy_gettext as _l

# Wizard steps a piece of advice can send the administrator back to.
METHOD, CERTIFICATE, REGISTER, TENANT, VERIFY = (
    "method",
    "certificate",
    "register",
    "tenant",
    "verify",
)


class Page(StrEnum):
    """Which page explains to an end user a sign-in that did not complete."""

    DECLINED = "declined"  # they said no on Microsoft's consent page
    APPROVAL = "approval"  # an administrator must consent first
    OTHER_TENANT = "other_tenant"  # an account of another organisation, or a personal one
    STALE = "stale"  # the answer matched no sign-in started in this browser
    ERROR = "error"  # anything else: the advice's own words


@dataclass(frozen=True)
class Advice:
    """The cause of a failure in plain words, what to do, where to do it, and the page
    that explains a sign-in it stopped."""

    cause: str  # lazily translated, as every text of the table
    action: str
    step: str | None = None
    page: Page = Page.ERROR


# Microsoft names a declined consent by number in the description; a redirect that
# carries only OAuth's ``access_denied`` is the same refusal.
_DECLINED = Advice(
    _l("Consent was declined on Microsoft's consent page."),
    _l("Sign in again and choose Accept, or grant admin consent for the organisation."),
    VERIFY,
    Page.DECLINED,
)


ADVICE: dict[str, Advice] = {
    "90002": Advice(
        _l("Microsoft does not know this tenant."),
        _l(
            "Check the Tenant ID: copy the Directory (tenant) ID from the app's Overview page, "
            "or use your primary domain. Also check the cloud chosen in step 1."
        ),
        TENANT,
    ),
    "700016": Advice(
        _l("The application was not found in this tenant."),
        _l(
            "Check the Application (client) ID on the app's Overview page, and that the app "
            "was registered in this tenant (not in another directory you can sign in to)."
        ),
        TENANT,
    ),
    "700027": Advice(
        _l("Microsoft does not accept the certificate: it is not uploaded to this app."),
        _l(
            "Upload the certificate from step 2 under Certificates & secrets > Certificates, "
            "then check again. It can take a minute or two to take effect."
        ),
        CERTIFICATE,
    ),
    "7000274": Advice(
        _l("Microsoft found the certificate but the signature did not verify."),
        _l(
            "Upload the certificate exactly as downloaded in step 2 (the .cer file), remove "
            "any older copy with another thumbprint, then check again."
        ),
        CERTIFICATE,
    ),
    "700024": Advice(
        _l(
            "Microsoft refused the certificate sign-in as outside its valid time: the "
            "portal server's clock is off."
        ),
        _l(
            "This is on MyTimetable's side: contact MyTimetable support with the code and the "
            "time shown."
        ),
        None,
    ),
    "7000215": Advice(
        _l("A client secret was sent where a certificate is expected."),
        _l(
            "MyTimetable uses a certificate, not a client secret. "
            "Upload the certificate from step 2."
        ),
        CERTIFICATE,
    ),
    "7000222": Advice(
        _l("The client secret has expired."),
        _l(
            "MyTimetable uses a certificate, not a client secret. "
            "Upload the certificate from step 2."
        ),
        CERTIFICATE,
    ),
    "7000218": Advice(
        _l("No credential was sent with the request."),
        _l("Upload the certificate from step 2 and check again."),
        CERTIFICATE,
    ),
    "50011": Advice(
        _l("The redirect URI is not registered on the app."),
        _l(
            "Add the redirect URI from step 3 under Authentication > Web > Redirect URIs, "
            "exactly as shown (scheme, host, path, no trailing slash)."
        ),
        REGISTER,
    ),
    "65001": Advice(
        _l("Nobody has consented to the app's permissions yet."),
        _l(
            "Grant admin consent for your organisation under API permissions, or use the "
            "'Grant for the whole organisation' link below."
        ),
        REGISTER,
        Page.APPROVAL,
    ),
    "65004": _DECLINED,
    "access_denied": _DECLINED,
    "90094": Advice(
        _l(
            "An administrator must approve the app: users may not consent to calendar access "
            "themselves under your tenant's consent policy."
        ),
        _l(
            "A Global or Privileged Role Administrator grants admin consent for the "
            "organisation under API permissions, or through the 'Grant for the whole "
            "organisation' link below."
        ),
        REGISTER,
        Page.APPROVAL,
    ),
    "90093": Advice(
        _l("An administrator must approve the app: user consent is blocked in your tenant."),
        _l(
            "A Global or Privileged Role Administrator grants admin consent for the "
            "organisation, or enables the admin consent workflow."
        ),
        REGISTER,
        Page.APPROVAL,
    ),
    "50020": Advice(
        _l("The account that signed in belongs to another tenant."),
        _l(
            "Sign in with an account of your own institution's tenant (not a guest or a "
            "personal account), or check the Tenant ID."
        ),
        TENANT,
        Page.OTHER_TENANT,
    ),
    "650056": Advice(
        _l("The app asks for a permission that is not configured on it."),
        _l("Add the Microsoft Graph permissions listed in step 3 under API permissions."),
        REGISTER,
    ),
    "650057": Advice(
        _l("Microsoft Graph is not among the API permissions configured on the app."),
        _l(
            "Under API permissions, add the Microsoft Graph permissions listed in step 3 "
            "(Microsoft Graph, not another API), then grant consent again."
        ),
        REGISTER,
    ),
    "500011": Advice(
        _l("Microsoft Graph was not found in this tenant: the tenant is in another cloud."),
        _l(
            "Check that the Microsoft cloud chosen in step 1 is your tenant's (worldwide, US "
            "Government or China). If it is, contact MyTimetable support with the code and "
            "the time shown."
        ),
        METHOD,
    ),
    "53003": Advice(
        _l("A Conditional Access policy blocked the sign-in."),
        _l(
            "Ask your identity administrator to exclude this app or this sign-in from the "
            "policy, or sign in from a compliant device or location."
        ),
        None,
    ),
    "50173": Advice(
        _l("The sign-in has expired: the grant was revoked (for example, a password reset)."),
        _l("Sign in again."),
        None,
    ),
    "700082": Advice(
        _l("The sign-in has expired after a long time unused."),
        _l("Sign in again."),
        None,
    ),
    "invalid_grant": Advice(_l("The sign-in is no longer valid."), _l("Sign in again."), None),
    "no_roles": Advice(
        _l(
            "The token carries no Calendars.ReadWrite application permission: admin consent "
            "has not been granted (or the permission was added as delegated)."
        ),
        _l(
            "Under API permissions, add Microsoft Graph > Application permissions > "
            "Calendars.ReadWrite and choose 'Grant admin consent for <your institution>'."
        ),
        REGISTER,
    ),
    "rbac_tenant_wide": Advice(
        _l(
            "Calendars.ReadWrite was granted tenant-wide in Entra, so the Exchange RBAC scope "
            "means nothing: MyTimetable could reach every mailbox."
        ),
        _l(
            "Under API permissions, remove the admin consent for the Calendars.ReadWrite "
            "application permission (Revoke admin consent); the RBAC role assignment grants it "
            "for the group only."
        ),
        REGISTER,
    ),
    "no_scope": Advice(
        _l("The sign-in did not grant Calendars.ReadWrite."),
        _l("Add the delegated Microsoft Graph permissions from step 3 and grant consent."),
        REGISTER,
    ),
    "InvalidAuthenticationToken": Advice(
        _l("Microsoft Graph did not accept the token."),
        _l("Check that the app was registered in the cloud chosen in step 1, then check again."),
        METHOD,
    ),
    "ErrorAccessDenied": Advice(
        _l(
            "Microsoft Graph refused access to the mailbox: the permission is missing, or "
            "the mailbox is outside the group the app is limited to."
        ),
        _l(
            "Check the API permissions and, if you limit access to a security group, that "
            "the test mailbox is a member of it (changes can take an hour to apply)."
        ),
        REGISTER,
    ),
    "ErrorAccessDenied/policy": Advice(
        _l("The mailbox is outside the security group the app is limited to."),
        _l(
            "Use a test mailbox that is a member of the group, or add it to the group (changes "
            "to an access policy can take over an hour to apply)."
        ),
        VERIFY,
    ),
    "MailboxNotEnabledForRESTAPI": Advice(
        _l("This account has no Exchange Online mailbox (unlicensed, on-premises or guest)."),
        _l("Use a licensed user's mailbox in Exchange Online."),
        VERIFY,
    ),
    "ErrorInvalidUser": Advice(
        _l("Microsoft Graph does not know this user."),
        _l("Check the address of the test mailbox."),
        VERIFY,
    ),
    "ResourceNotFound": Advice(
        _l("Microsoft Graph does not know this user."),
        _l("Check the address of the test mailbox."),
        VERIFY,
    ),
    "Authorization_RequestDenied": Advice(
        _l("The app may not read the security group's members."),
        _l(
            "Add the Microsoft Graph application permission GroupMember.Read.All and grant admin "
            "consent, or paste the list of mailboxes instead."
        ),
        REGISTER,
    ),
    "no_group_role": Advice(
        _l(
            "The token carries no permission to read the group's members, which following "
            "the group needs: GroupMember.Read.All has not been granted as an application "
            "permission."
        ),
        _l(
            "Under API permissions, add Microsoft Graph > Application permissions > "
            "GroupMember.Read.All and choose 'Grant admin consent for <your institution>'. "
            "It reads group memberships only and gives no access to any mailbox."
        ),
        REGISTER,
    ),
    "GroupNotFound": Advice(
        _l("Microsoft Graph knows no group with this address."),
        _l("Check the security group's e-mail address in step 4."),
        TENANT,
    ),
    "Request_ResourceNotFound": Advice(
        _l("Microsoft Graph does not know this user or group."),
        _l("Check the address."),
        None,
    ),
    "ErrorItemNotFound": Advice(
        _l("The item no longer exists in the mailbox."), _l("Nothing to do; it is recreated."), None
    ),
    "scope_not_enforced": Advice(
        _l("A mailbox outside the security group could be read: the limit is not in force."),
        _l(
            "Check the PowerShell from step 3 ran without errors, and that tenant-wide "
            "Calendars.ReadWrite was not also granted in Entra (with RBAC for Applications it "
            "must not be). Policy changes can take over an hour to apply."
        ),
        REGISTER,
    ),
    "no_certificate": Advice(
        _l("There is no certificate to sign in with yet."),
        _l("Get or make the certificate in step 2."),
        CERTIFICATE,
    ),
    "state_mismatch": Advice(
        _l(
            "The answer from Microsoft did not match a sign-in started here (it was stale, "
            "replayed or forged)."
        ),
        _l("Start again from this page."),
        VERIFY,
        Page.STALE,
    ),
    "tenant_mismatch": Advice(
        _l("Microsoft answered for a different tenant than the one entered."),
        _l("Sign in with an administrator of the tenant entered in step 4, or correct it."),
        TENANT,
        Page.OTHER_TENANT,
    ),
    "not_administrator": Advice(
        _l(
            "This account holds none of the Microsoft Entra roles that may administer the "
            "connection to MyTimetable."
        ),
        _l(
            "Sign in with an account that is Global Administrator, Privileged Role "
            "Administrator, Application Administrator or Cloud Application Administrator "
            "of the tenant (an eligible role must be activated first), or ask for a fresh "
            "invitation link."
        ),
        None,
    ),
    "no_roles_claim": Advice(
        _l("Microsoft did not say which roles the account holds."),
        _l(
            "MyTimetable's sign-in app is not set up to receive directory roles: contact "
            "MyTimetable support, or ask for a fresh invitation link."
        ),
        None,
    ),
    "unreachable": Advice(
        _l("Microsoft could not be reached."),
        _l("Try again in a few minutes. If it persists, check the portal's outbound network."),
        None,
    ),
}

UNKNOWN = Advice(
    _l("Microsoft returned an error the portal does not know."),
    _l(
        "Check the error code in Microsoft's documentation, or contact MyTimetable support "
        "with the code and the time shown."
    ),
    None,
)

_AADSTS = re.compile(r"AADSTS(\d+)")
_AADSTS_PREFIX = re.compile(r"^AADSTS\d+:\s*")


def advice_for(code: str | None) -> Advice:
    """The advice for a code, or general advice for an unknown one."""
    return ADVICE.get(code or "", UNKNOWN)


def code_from_description(description: str | None) -> str | None:
    """The AADSTS number that leads a redirect's ``error_description``.

    Browser redirects carry no ``error_codes`` list, only the description, which
    always begins with the code; only the code is read, never the words.
    """
    match = _AADSTS.match((description or "").strip())
    return match.group(1) if match else None


class MicrosoftError(Exception):
    """An error answered by Microsoft's identity platform or Graph, by code."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        trace: list[tuple[str, str]] | None = None,
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retry_after: float | None = None  # seconds Microsoft asked to wait, if it did
        # The IDs Microsoft's answer gave for finding the request in its logs, named as
        # Microsoft names them, for an IT service desk (none for the portal's own errors).
        self.trace: list[tuple[str, str]] = trace or []

    @property
    def advice(self) -> Advice:
        """What the person should do about this error."""
        return advice_for(self.code)

    @property
    def display_code(self) -> str:
        """The code as Microsoft's own pages show it."""
        return display_code(self.code)


PORTAL_CODES = {
    "no_certificate",
    "no_group_role",
    "no_roles",
    "no_roles_claim",
    "not_administrator",
    "no_scope",
    "rbac_tenant_wide",
    "scope_not_enforced",
    "state_mismatch",
    "tenant_mismatch",
    "unreachable",
    "unknown",
}


def display_code(code: str | None) -> str:
    """A code as Microsoft shows it (AADSTS prefix for numbers); '' for the portal's own."""
    if not code or code in PORTAL_CODES:
        return ""
    base = code.split("/")[0]
    return f"AADSTS{base}" if base.isdigit() else base


def from_token_response(result: dict) -> MicrosoftError:
    """Turn MSAL's error dict into a ``MicrosoftError`` keyed by its first numeric code."""
    codes = result.get("error_codes") or []
    code = (
        str(codes[0])
        if codes
        else code_from_description(result.get("error_description"))
        or result.get("error", "unknown")
    )
    return MicrosoftError(
        code,
        first_line(result.get("error_description") or result.get("error")),
        trace=entra_trace(result),
    )


# The names Entra gives its IDs: the JSON fields of an error answer
# (reference-error-codes.md, "Handling error codes in your application"), and the lines
# that end every error_description, which is all a browser redirect carries.
_ENTRA_IDS = (
    ("trace_id", "Trace ID"),
    ("correlation_id", "Correlation ID"),
    ("timestamp", "Timestamp"),
)
_DESCRIPTION_LINE = re.compile(r"^(Trace ID|Correlation ID|Timestamp):\s*(\S.*?)\s*$", re.M)
_ID_VALUE = re.compile(r"[0-9A-Za-z:. _+-]{1,64}")


def entra_trace(answer: dict) -> list[tuple[str, str]]:
    """The trace, correlation and time stamp of an Entra error answer (a token endpoint's
    JSON, or a redirect's parameters), as [(name, value)]; values that are not IDs are
    left out."""
    found = dict(_DESCRIPTION_LINE.findall(answer.get("error_description") or ""))
    for field, name in _ENTRA_IDS:
        if answer.get(field):
            found[name] = str(answer[field])
    return _ids(found, [name for _, name in _ENTRA_IDS])


def graph_trace(error: dict, headers) -> list[tuple[str, str]]:
    """The request-id, client-request-id and date of a Graph error (its ``innerError``,
    else the response headers; errors.md), as [(name, value)]."""
    inner = error.get("innerError") or {}
    inner = inner if isinstance(inner, dict) else {}
    names = ["request-id", "client-request-id", "date"]
    found = {name: inner.get(name) or headers.get(name) for name in names}
    return _ids(found, names)


def _ids(found: dict, names: list[str]) -> list[tuple[str, str]]:
    values = [(name, str(found.get(name) or "").strip()) for name in names]
    return [(name, value) for name, value in values if _ID_VALUE.fullmatch(value)]


def first_line(description: str | None) -> str:
    """Microsoft's message without its code prefix and trace lines (shown separately)."""
    line = (description or "").split("\r\n")[0].strip()
    return _AADSTS_PREFIX.sub("", line)
