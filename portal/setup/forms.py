"""The wizard's forms; each rule lives here so its message shows beside its field."""

import re

from flask_babel import gettext as _
from flask_wtf.file import FileAllowed, FileField, FileSize
from wtforms import (
    BooleanField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    Length,
    ValidationError,
)

from ..forms import PortalForm
from ..i18n import lazy_gettext as _l
from ..microsoft.clouds import CLOUDS
from ..validators import DOMAIN, GUID, mailbox_address
from ..validators import strip as _strip


class MethodForm(PortalForm):
    """Step 1: how MyTimetable reaches calendars, and in which Microsoft cloud."""

    method = RadioField(
        _l("Permission type"),
        choices=[
            SelectChoice("application", _l("Application permissions")),
            SelectChoice("delegated", _l("Delegated permissions")),
        ],
        validators=[DataRequired(_l("Choose how MyTimetable may reach calendars."))],
    )
    mailbox_scope = RadioField(
        _l("Which calendars may MyTimetable reach?"),
        choices=[
            SelectChoice("all", _l("All calendars in the tenant")),
            SelectChoice("group", _l("Only the members of one mail-enabled security group")),
        ],
        validate_choice=False,  # asked only with application permissions: see below
    )
    group_scope_method = RadioField(
        _l("How to limit access to the group"),
        choices=[
            SelectChoice("rbac", _l("RBAC for Applications in Exchange Online (recommended)")),
            SelectChoice("access_policy", _l("Application access policy (legacy)")),
        ],
        default="rbac",
        validate_choice=False,
    )
    cloud = SelectField(
        _l("Microsoft cloud"),
        choices=[SelectChoice(c.key, c.label) for c in CLOUDS.values()],
        default="worldwide",
        validators=[DataRequired(_l("Choose the Microsoft cloud your tenant is in."))],
    )

    def validate_mailbox_scope(self, field):
        """Application permissions reach all calendars or one group's: the answer changes
        what step 3 asks the administrator to do in Entra."""
        asked = self.method.data == "application"
        if (asked or field.data is not None) and field.data not in ("all", "group"):
            raise ValidationError(
                _("Choose all calendars, or only the members of one security group.")
            )

    def validate_group_scope_method(self, field):
        """With a group, RBAC for Applications or the legacy application access policy."""
        if field.data not in ("rbac", "access_policy"):
            raise ValidationError(_("Choose how to limit access to the group."))


class GenerateCertificateForm(PortalForm):
    """Step 2, on-premises: make the institution's own certificate."""

    validity = SelectField(
        _l("Valid for"),
        choices=[
            SelectChoice("365", _l("1 year")),
            SelectChoice("548", _l("18 months")),
            SelectChoice("730", _l("2 years")),
        ],
        default="730",
        validators=[DataRequired(_l("Choose how long the certificate is valid."))],
    )


class PfxForm(PortalForm):
    """Step 2, on-premises: the password that protects the downloaded private key."""

    password = PasswordField(
        _l("Password for the .pfx file"),
        validators=[
            DataRequired(_l("Choose a password to protect the private key.")),
            Length(min=12, max=200, message=_l("Use at least 12 characters.")),
        ],
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[EqualTo("password", message=_l("The two passwords are not the same."))],
    )


class RegisterForm(PortalForm):
    """Step 3: options that change the app registration's permissions."""

    outlook_categories = BooleanField(_l("Show timetable events in colour (Outlook categories)"))
    follow_group = BooleanField(_l("Synchronise every member of the security group"))


class TenantForm(PortalForm):
    """Step 4: the tenant and the app registration's identifiers."""

    tenant_id = StringField(
        _l("Tenant ID"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter the Directory (tenant) ID or your tenant's domain.")),
            Length(max=253, message=_l("This is longer than any tenant ID or domain.")),
        ],
    )
    client_id = StringField(
        _l("Application (client) ID"),
        filters=[_strip],
        validators=[DataRequired(_l("Enter the Application (client) ID from the app's Overview."))],
    )
    security_group_email = StringField(
        _l("Mail-enabled security group"),
        filters=[_strip],
        validators=[
            DataRequired(
                _l("Enter the group's e-mail address, or choose all calendars in step 1 instead.")
            ),
            Length(max=320),
            mailbox_address(
                _l("Enter the group's e-mail address, such as mytimetable@example.edu.")
            ),
        ],
    )

    def validate_tenant_id(self, field):
        """A tenant is a GUID or a verified domain name."""
        value = field.data
        if GUID.match(value) or DOMAIN.match(value):
            return
        if value.lower() in ("common", "organizations", "consumers"):
            raise ValidationError(
                _(
                    "'%(value)s' is not your tenant: enter your Directory (tenant) ID or domain.",
                    value=value,
                )
            )
        if "@" in value:
            raise ValidationError(
                _("Enter a domain (such as example.edu) or a GUID, not an e-mail address.")
            )
        if re.fullmatch(r"[0-9a-fA-F-]{20,}", value):
            raise ValidationError(
                _(
                    "This looks like a GUID but is not one: it has 32 hexadecimal digits in "
                    "groups of 8-4-4-4-12."
                )
            )
        raise ValidationError(
            _(
                "Enter the Directory (tenant) ID, a GUID such as "
                "72f988bf-86f1-41af-91ab-2d7cd011db47, or a domain such as example.edu."
            )
        )

    def validate_client_id(self, field):
        """The client ID is always a GUID."""
        if not GUID.match(field.data):
            raise ValidationError(
                _(
                    "The Application (client) ID is a GUID such as "
                    "11111111-2222-3333-4444-555555555555: copy it from the app's Overview page."
                )
            )


class ApplicationVerifyForm(PortalForm):
    """Step 5, application permissions: the mailboxes to test with."""

    test_mailbox = StringField(
        _l("Test mailbox"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter the address of a mailbox MyTimetable should reach.")),
            Length(max=320),
            mailbox_address(_l("Enter a user principal name such as teacher@example.edu.")),
        ],
    )
    outside_mailbox = StringField(
        _l("Mailbox outside the group"),
        filters=[_strip],
        validators=[
            Length(max=320),
            mailbox_address(_l("Enter a user principal name such as student@example.edu.")),
        ],
    )

    def __init__(self, *args, group: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group

    def validate_outside_mailbox(self, field):
        """With a security group, a mailbox outside it proves the limit works."""
        if self.group and not field.data:
            raise ValidationError(
                _(
                    "Enter a mailbox that is not in %(group)s, to prove access is limited.",
                    group=self.group,
                )
            )
        if field.data and field.data.lower() == (self.test_mailbox.data or "").lower():
            raise ValidationError(_("Use a different mailbox from the test mailbox."))


class MailboxesForm(PortalForm):
    """Application permissions, after approval: the mailboxes to synchronise."""

    addresses = TextAreaField(
        _l("Mailboxes (one address per line)"),
        validators=[
            Length(max=400_000, message=_l("Paste at most a few thousand addresses at once."))
        ],
    )
    upload = FileField(
        _l("Or upload a list (.txt or .csv)"),
        validators=[
            FileAllowed(["txt", "csv"], _l("Upload a .txt or .csv file.")),
            FileSize(max_size=512 * 1024, message=_l("Upload a file under 512 KB.")),
        ],
    )

    def validate_addresses(self, field):
        """Either the text box or the file must hold the list."""
        if not (field.data or "").strip() and not self.upload.data:
            raise ValidationError(_("Paste the addresses, or upload a file with them."))


class GroupFollowingForm(PortalForm):
    """Group following: whether every member of the group is synchronised, and what is
    taken out of the mailbox of a member who leaves it."""

    follow_group = BooleanField(_l("Synchronise every member of this group"))
    leaver_removal = RadioField(
        _l("When a member leaves the group"),
        choices=[
            SelectChoice(
                "events",
                _l(
                    "Keep their MyTimetable calendar: remove only the events the portal wrote in it"
                ),
            ),
            SelectChoice(
                "calendar", _l("Remove their MyTimetable calendar, with everything in it")
            ),
        ],
        default="events",
        validators=[DataRequired(_l("Choose what happens when a member leaves the group."))],
    )
