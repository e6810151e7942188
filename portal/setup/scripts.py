"""Exchange Online PowerShell that limits an app to a mail-enabled security group.

Two ways, both with the institution's values filled in: RBAC for Applications (current)
and the legacy application access policy. Every value is one single-quoted PowerShell string
(``quote``), whatever it holds.
"""

from ..models import Configuration

PLACEHOLDER_APP = "<Application (client) ID>"
PLACEHOLDER_GROUP = "<security group e-mail address>"
PLACEHOLDER_SP = "<Object ID of the enterprise application>"


# PowerShell ends a single-quoted string on any of these, not only on ' (about_Quoting_Rules).
SINGLE_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")


def quote(value: str) -> str:
    """``value`` as one PowerShell single-quoted string with exactly its text.

    In a single-quoted string PowerShell expands nothing (no ``$``, no backtick escapes) and
    reads two single-quote characters in a row as one; each of the five is doubled, so none
    can end the string (about_Quoting_Rules).
    """
    return "'" + "".join(c + c if c in SINGLE_QUOTES else c for c in value) + "'"


def _values(configuration: Configuration, cloud) -> dict:
    return {
        "app": quote(configuration.client_id or PLACEHOLDER_APP),
        "group": quote(configuration.security_group_email or PLACEHOLDER_GROUP),
        "sp": quote(configuration.service_principal_id or PLACEHOLDER_SP),
        "test": quote(configuration.test_mailbox or "<a mailbox in the group>"),
        "outside": quote(configuration.outside_mailbox or "<a mailbox outside the group>"),
        "env": quote(cloud.exchange_environment),
        "name": quote(f"MyTimetable - {configuration.institution.name}"),
    }


def rbac(configuration: Configuration, cloud) -> str:
    """RBAC for Applications: a management scope on the group and a role assignment."""
    v = _values(configuration, cloud)
    categories = (
        "New-ManagementRoleAssignment -App $AppId -Role 'Application MailboxSettings.ReadWrite' `\n"
        "    -CustomResourceScope 'MyTimetable calendars'   # Outlook categories (colours)\n"
        if configuration.outlook_categories
        else ""
    )
    return f"""# Limit MyTimetable to the members of a mail-enabled security group
# with RBAC for Applications in Exchange Online.
# Do NOT also grant tenant-wide admin consent for Calendars.ReadWrite in Entra:
# RBAC grants add to it, so with that consent the scope below would mean nothing.
Install-Module -Name ExchangeOnlineManagement -Scope CurrentUser
Connect-ExchangeOnline -ExchangeEnvironmentName {v["env"]}

$AppId = {v["app"]}
$ServicePrincipalObjectId = {v["sp"]}   # Entra > Enterprise applications > the app > Object ID
$Group = {v["group"]}

New-ServicePrincipal -AppId $AppId -ObjectId $ServicePrincipalObjectId -DisplayName {v["name"]}

$GroupDN = (Get-DistributionGroup -Identity $Group).DistinguishedName
New-ManagementScope -Name 'MyTimetable calendars' `
    -RecipientRestrictionFilter "MemberOfGroup -eq '$GroupDN'"

New-ManagementRoleAssignment -App $AppId -Role 'Application Calendars.ReadWrite' `
    -CustomResourceScope 'MyTimetable calendars'
{categories}
# Check: the first should show the role as InScope True, the second InScope False.
Test-ServicePrincipalAuthorization -Identity $AppId -Resource {v["test"]}
Test-ServicePrincipalAuthorization -Identity $AppId -Resource {v["outside"]}
"""


def access_policy(configuration: Configuration, cloud) -> str:
    """The legacy application access policy (still honoured; new ones are discouraged)."""
    v = _values(configuration, cloud)
    return f"""# Limit MyTimetable to the members of a mail-enabled security group
# with an application access policy (legacy; Microsoft recommends RBAC for Applications).
# Here tenant-wide admin consent for Calendars.ReadWrite in Entra IS required.
Install-Module -Name ExchangeOnlineManagement -Scope CurrentUser
Connect-ExchangeOnline -ExchangeEnvironmentName {v["env"]}

New-ApplicationAccessPolicy -AppId {v["app"]} -PolicyScopeGroupId {v["group"]} `
    -AccessRight RestrictAccess -Description 'MyTimetable: timetable sync for this group only'

# Check: the first should say Granted, the second Denied. Changes can take over an hour.
Test-ApplicationAccessPolicy -Identity {v["test"]} -AppId {v["app"]}
Test-ApplicationAccessPolicy -Identity {v["outside"]} -AppId {v["app"]}
"""


SCRIPTS = {"rbac": rbac, "access-policy": access_policy}


def for_configuration(configuration: Configuration, cloud) -> dict[str, str]:
    """Both scripts for ``configuration``, by name (``scripts['rbac']``)."""
    return {name: make(configuration, cloud) for name, make in SCRIPTS.items()}
