"""Input rules shared by the forms of more than one area."""

import re

from wtforms.validators import ValidationError

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.I)
ADDRESS = re.compile(r"^[^@\s]{1,64}@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.I)


def strip(value):
    """A filter that trims what was typed."""
    return value.strip() if isinstance(value, str) else value


def mailbox_address(message: str):
    """A validator for a user principal name or e-mail address."""

    def check(form, field):
        if field.data and not ADDRESS.match(field.data):
            raise ValidationError(message)

    return check
