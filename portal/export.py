"""The MyTimetable configuration file an on-premises institution downloads."""

from . import certificates
from .microsoft.clouds import cloud
from .microsoft.identity import DELEGATED_SCOPES, authority
from .models import Configuration, utcnow


def file_name(configuration: Configuration) -> str:
    """The download's file name."""
    return f"mytimetable-office365-{configuration.institution.slug}.properties"


def mytimetable_properties(configuration: Configuration) -> str:
    """MyTimetable's Office 365 settings as a Java properties file; holds no secret."""
    where = cloud(configuration.cloud)
    tenant = configuration.tenant_guid or configuration.tenant_id
    certificate = configuration.certificate
    scopes = (
        where.graph_default_scope
        if configuration.method == "application"
        else " ".join([*where.graph_scopes(DELEGATED_SCOPES), "offline_access"])
    )
    lines = [
        f"# MyTimetable Office 365 connection for {configuration.institution.name}",
        f"# Exported from the connection portal on {utcnow():%Y-%m-%d %H:%M} UTC.",
        "# The private key is in the .pfx file downloaded in step 2, with its password.",
        f"office365.method={configuration.method}",
        f"office365.cloud={configuration.cloud}",
        f"office365.tenantId={tenant}",
        f"office365.clientId={configuration.client_id}",
        f"office365.authority={authority(where, tenant)}",
        f"office365.graphEndpoint={where.graph_endpoint}",
        f"office365.scopes={scopes}",
        f"office365.certificate.thumbprintSha1={certificate.sha1_thumbprint}",
        f"office365.certificate.thumbprintSha256={certificate.sha256_thumbprint}",
        f"office365.certificate.notAfter={certificate.not_after:%Y-%m-%dT%H:%M:%SZ}",
        f"office365.certificate.keyFile={certificates.key_file_name(configuration.institution)}",
        f"office365.outlookCategories={'true' if configuration.outlook_categories else 'false'}",
    ]
    if configuration.method == "application" and configuration.security_group_email:
        lines.append(f"office365.securityGroup={configuration.security_group_email}")
    return "\n".join(lines) + "\n"
