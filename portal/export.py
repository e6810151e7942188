"""The MyTimetable configuration file an on-premises institution downloads."""

from . import certificates
from .microsoft.clouds import cloud
from .microsoft.identity import authority
from .models import Configuration, utcnow


def file_name(configuration: Configuration) -> str:
    """The download's file name."""
    return f"mytimetable-office365-{configuration.institution.slug}.properties"


def mytimetable_properties(configuration: Configuration) -> str:
    """MyTimetable's Office 365 settings as a Java properties file; holds no secret."""
    where = cloud(configuration.cloud)
    tenant = configuration.tenant_guid or configuration.tenant_id
    certificate = configuration.certificate
    # Graph's .default asks for what the app registration was given and the administrator
    # consented to (scopes-oidc.md, "The .default scope"), in either flow; a user's sign-in
    # also needs offline_access for its refresh token.
    scopes = (
        where.graph_default_scope
        if configuration.method == "application"
        else f"{where.graph_default_scope} offline_access"
    )
    comments = [
        f"MyTimetable Office 365 connection for {configuration.institution.name}",
        f"Exported from the connection portal on {utcnow():%Y-%m-%d %H:%M} UTC.",
        "The private key is in the .pfx file downloaded in step 2, with its password.",
    ]
    properties = [
        ("office365.method", configuration.method),
        ("office365.cloud", configuration.cloud),
        ("office365.tenantId", tenant),
        ("office365.clientId", configuration.client_id),
        ("office365.authority", authority(where, tenant)),
        ("office365.graphEndpoint", where.graph_endpoint),
        ("office365.scopes", scopes),
        ("office365.certificate.thumbprintSha1", certificate.sha1_thumbprint),
        ("office365.certificate.thumbprintSha256", certificate.sha256_thumbprint),
        ("office365.certificate.notAfter", f"{certificate.not_after:%Y-%m-%dT%H:%M:%SZ}"),
        ("office365.certificate.keyFile", certificates.key_file_name(configuration.institution)),
        ("office365.outlookCategories", "true" if configuration.outlook_categories else "false"),
    ]
    if configuration.group:
        properties.append(("office365.securityGroup", configuration.group))
    lines = [f"# {_comment(comment)}" for comment in comments]
    lines += [f"{_escape(key, key=True)}={_escape(value)}" for key, value in properties]
    return "\n".join(lines) + "\n"


# What java.util.Properties.store writes for these characters (its saveConvert).
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}
_ESCAPES |= {c: "\\" + c for c in "=:#!"}


def _escape(text: str, key: bool = False) -> str:
    """``text`` as ``java.util.Properties.store`` writes a key or a value: backslash, tab, line
    breaks and form feed as ``\\\\`` ``\\t`` ``\\n`` ``\\r`` ``\\f``; ``= : # !`` after a
    backslash; a space after one where ``load`` would drop it (leading, or any in a key);
    everything outside printable ASCII as ``\\uXXXX``. A value can then neither end its line
    nor start another key, and the file reads the same as ISO 8859-1 (``load``'s encoding)
    or UTF-8."""
    out = []
    for i, c in enumerate(text):
        if c == " ":
            out.append("\\ " if key or i == 0 else " ")
        elif c in _ESCAPES:
            out.append(_ESCAPES[c])
        else:
            out.append(_printable(c))
    return "".join(out)


def _comment(text: str) -> str:
    """``text`` on one comment line: a line break in it would end the comment and the next
    line would be read as a property, so everything outside printable ASCII is ``\\uXXXX``."""
    return "".join(_printable(c) for c in text)


def _printable(c: str) -> str:
    """``c`` itself when it is printable ASCII, else its ``\\uXXXX`` escapes (UTF-16 units,
    as Java's strings hold it)."""
    if " " <= c <= "~":
        return c
    units = c.encode("utf-16-be")
    return "".join(f"\\u{units[n : n + 2].hex().upper()}" for n in range(0, len(units), 2))
