"""Input rules shared by the forms of more than one area."""

import re
import unicodedata

from wtforms.validators import ValidationError

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
DOMAIN = re.compile(r"^(?=.{4,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z", re.I)
# The local part is an RFC 5322 dot-atom (3.2.3): atext, with dots only between atoms. Entra
# user principal names are a subset of it. It has no quote but ', no parenthesis, semicolon,
# space or control character and nothing outside ASCII: an address stays data where it goes.
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL_PART = rf"(?=[^@]{{1,64}}@){_ATEXT}+(\.{_ATEXT}+)*"
ADDRESS = re.compile(
    rf"^{_LOCAL_PART}@([a-z0-9]([a-z0-9-]{{0,61}}[a-z0-9])?\.)+[a-z]{{2,63}}\Z", re.I
)
# Embeddings, overrides and isolates make text show in another order than it is stored.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def strip(value):
    """A filter that trims what was typed."""
    return value.strip() if isinstance(value, str) else value


def has_control_characters(value: str) -> bool:
    """True when ``value`` holds a control character (NUL, tab, a line break, ESC...), a
    line or paragraph separator, or a bidirectional override: nothing a name shown on one
    line, in a generated script or in a configuration file may hold."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_CONTROLS for c in value)


def mailbox_address(message: str):
    """A validator for a user principal name or e-mail address."""

    def check(form, field):
        if field.data and not ADDRESS.match(field.data):
            raise ValidationError(message)

    return check


def single_line_text(message: str):
    """A validator for a name: printable text on one line (``has_control_characters``)."""

    def check(form, field):
        if field.data and has_control_characters(field.data):
            raise ValidationError(message)

    return check
