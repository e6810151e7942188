"""PowerShell the wizard hands to administrators, with the institution's values filled in.

Exchange Online PowerShell that limits an app to a mail-enabled security group, two ways
(RBAC for Applications, current, and the legacy application access policy), and Microsoft
Graph PowerShell for a custom app consent policy that lets users consent to MyTimetable
alone. Every value is one single-quoted PowerShell string (``quote``), whatever it holds.
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


# Connect-MgGraph -Environment, by cloud (Get-MgEnvironment lists them).
GRAPH_ENVIRONMENTS = {
    "worldwide": "Global",
    "usgov": "USGov",
    "usgov_dod": "USGovDoD",
    "china": "China",
}
# Microsoft Graph's application ID, the same in every cloud.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# The delegated permissions users consent to under the custom policy.
DELEGATED_PERMISSIONS = ("Calendars.ReadWrite", "User.Read", "offline_access")


def consent_policy(configuration: Configuration, cloud) -> str:
    """A custom app consent policy that lets users consent to MyTimetable alone.

    Follows Microsoft Learn's "Manage app consent policies" and "Configure how users consent
    to applications": New-MgPolicyPermissionGrantPolicy, then
    New-MgPolicyPermissionGrantPolicyInclude for delegated Graph permissions of this client
    application (a condition set names permissions by their IDs, read from Graph's service
    principal), then the policy added to PermissionGrantPoliciesAssigned of the default user
    role, beside what is there.
    """
    v = _values(configuration, cloud)
    permissions = list(DELEGATED_PERMISSIONS)
    if configuration.outlook_categories:
        permissions.append("MailboxSettings.ReadWrite")
    names = ", ".join(quote(p) for p in permissions)
    return f"""# Let users consent to MyTimetable, and to no other app, for their own calendar.
# Run as a Privileged Role Administrator or Global Administrator.
Install-Module -Name Microsoft.Graph.Applications, Microsoft.Graph.Identity.SignIns `
    -Scope CurrentUser
Connect-MgGraph -Environment {quote(GRAPH_ENVIRONMENTS.get(cloud.key, "Global"))} `
    -Scopes 'Policy.ReadWrite.PermissionGrant', 'Policy.ReadWrite.Authorization', `
    'Application.Read.All'

$AppId = {v["app"]}
$PolicyId = 'mytimetable-' + $AppId   # custom policy IDs must not start with microsoft-

# 1. The policy.
New-MgPolicyPermissionGrantPolicy -Id $PolicyId -DisplayName {v["name"]} `
    -Description 'Users may consent to MyTimetable for their own calendar.'

# 2. What it allows: these delegated Microsoft Graph permissions, for MyTimetable only.
$Graph = Get-MgServicePrincipal -Filter "appId eq '{GRAPH_APP_ID}'"
$PermissionIds = @($Graph.Oauth2PermissionScopes |
    Where-Object {{ $_.Value -in @({names}) }} |
    ForEach-Object {{ $_.Id }})
New-MgPolicyPermissionGrantPolicyInclude -PermissionGrantPolicyId $PolicyId `
    -PermissionType 'delegated' -ResourceApplication $Graph.AppId `
    -Permissions $PermissionIds -ClientApplicationIds @($AppId)

# 3. Assign it to users, beside the policies already assigned (such as the Microsoft-managed one).
$Defaults = (Get-MgPolicyAuthorizationPolicy).DefaultUserRolePermissions
$Assigned = @($Defaults.PermissionGrantPoliciesAssigned)
$Assigned += 'ManagePermissionGrantsForSelf.' + $PolicyId
Update-MgPolicyAuthorizationPolicy -DefaultUserRolePermissions @{{
    PermissionGrantPoliciesAssigned = @($Assigned | Select-Object -Unique) }}

# Check: the policy and its condition set.
Get-MgPolicyPermissionGrantPolicyInclude -PermissionGrantPolicyId $PolicyId | Format-List
"""


SCRIPTS = {"rbac": rbac, "access-policy": access_policy, "consent-policy": consent_policy}


def for_configuration(configuration: Configuration, cloud) -> dict[str, str]:
    """Every script for ``configuration``, by name (``scripts['rbac']``)."""
    return {name: make(configuration, cloud) for name, make in SCRIPTS.items()}
