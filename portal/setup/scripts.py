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


def inputs(configuration: Configuration, cloud) -> tuple:
    """Every value the scripts are made from (a kept page part showing them is keyed by it)."""
    return (
        configuration.client_id,
        configuration.security_group_email,
        configuration.service_principal_id,
        configuration.test_mailbox,
        configuration.outside_mailbox,
        cloud.exchange_environment,
        configuration.institution.name,
    )


def _values(configuration: Configuration, cloud) -> dict:
    app, group, sp, test, outside, environment, name = inputs(configuration, cloud)
    return {
        "app": quote(app or PLACEHOLDER_APP),
        "group": quote(group or PLACEHOLDER_GROUP),
        "sp": quote(sp or PLACEHOLDER_SP),
        "test": quote(test or "<a mailbox in the group>"),
        "outside": quote(outside or "<a mailbox outside the group>"),
        "env": quote(environment),
        "name": quote(f"MyTimetable - {name}"),
    }


def rbac(configuration: Configuration, cloud) -> str:
    """RBAC for Applications: a management scope on the group and a role assignment."""
    v = _values(configuration, cloud)
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


class Scripts:
    """Both scripts for a configuration, by name (``scripts['rbac']``), each made when a page
    shows it: a page that keeps its part showing them (``inputs`` in its key) makes them
    only when that part is rendered."""

    def __init__(self, configuration: Configuration, cloud):
        self._configuration, self._cloud = configuration, cloud
        self.inputs = inputs(configuration, cloud)

    def __getitem__(self, name: str) -> str:
        return SCRIPTS[name](self._configuration, self._cloud)
