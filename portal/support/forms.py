"""The console's forms."""

from flask_babel import gettext as _
from wtforms import (
    BooleanField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from .. import timezones
from ..forms import PortalForm
from ..i18n import lazy_gettext as _l
from ..review import RETURN_STEPS
from ..sync import colours as category_colours
from ..validators import ADDRESS, has_control_characters, mailbox_address, single_line_text, strip

STEP_LABELS = {
    "method": _l("1. Method"),
    "certificate": _l("2. Certificate"),
    "register": _l("3. Register the app"),
    "tenant": _l("4. Tenant and application"),
    "verify": _l("5. Verify"),
}


class SignInForm(PortalForm):
    """Staff sign-in."""

    email = StringField(
        _l("E-mail address"), validators=[DataRequired(_l("Enter your e-mail address."))]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password."))])


def _without_spaces(value):
    """Codes are often typed or pasted in groups (``123 456``)."""
    return "".join(value.split()) if isinstance(value, str) else value


class EnrolmentForm(PortalForm):
    """The first code of a newly added authenticator app."""

    code = StringField(
        _l("Code from the app"),
        filters=[_without_spaces],
        validators=[
            DataRequired(_l("Enter the 6-digit code the app shows.")),
            Regexp(r"[0-9]{6}\Z", message=_l("Enter the 6-digit code the app shows.")),
        ],
    )


class SecondFactorForm(PortalForm):
    """The authenticator app's current code, or a recovery code."""

    code = StringField(
        _l("Code from the authenticator app, or a recovery code"),
        filters=[_without_spaces],
        validators=[
            DataRequired(_l("Enter the 6-digit code the app shows, or a recovery code.")),
            Regexp(
                r"([0-9]{6}|[A-Za-z0-9]{5}-?[A-Za-z0-9]{5})\Z",
                message=_l("Enter the 6-digit code the app shows, or a recovery code."),
            ),
        ],
    )


class ReturnForm(PortalForm):
    """Send a configuration back to its administrator."""

    message = TextAreaField(
        _l("Message to the administrator"),
        validators=[
            DataRequired(_l("Say what the administrator should change.")),
            Length(max=4000, message=_l("Keep the message under 4,000 characters.")),
        ],
    )
    step = SelectField(
        _l("Reopen the wizard at"),
        choices=[SelectChoice(step, STEP_LABELS[step]) for step in RETURN_STEPS],
        default="tenant",
    )


class InstitutionForm(PortalForm):
    """A new institution and its administrator's address."""

    name = StringField(
        _l("Institution name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the institution's name.")),
            Length(max=200),
            single_line_text(
                _l("Use only printable text on one line: the name has control characters.")
            ),
        ],
    )
    hosting = RadioField(
        _l("Hosting"),
        choices=[
            SelectChoice("managed", _l("Managed by MyTimetable")),
            SelectChoice("on_premises", _l("On premises (the institution hosts MyTimetable)")),
        ],
        validators=[DataRequired(_l("Choose where MyTimetable runs."))],
    )
    contact_email = StringField(
        _l("Administrator's e-mail address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the administrator's e-mail address.")),
            mailbox_address(_l("Enter an e-mail address such as it@example.edu.")),
            Length(max=320),
        ],
    )


class FeedForm(PortalForm):
    """The institution's MyTimetable iCalendar feed, per person."""

    feed_url_template = StringField(
        _l("Timetable feed address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the feed address.")),
            Length(max=1000, message=_l("Keep the address under 1,000 characters.")),
        ],
    )

    def validate_feed_url_template(self, field):
        """An http(s) address with {upn} (or {email}) where each person's address goes."""
        value = field.data
        if not value.startswith(("https://", "http://")) or " " in value:
            raise ValidationError(_("Enter a web address starting with https://."))
        if "{upn}" not in value and "{email}" not in value:
            raise ValidationError(
                _(
                    "Put {upn} where each person's address goes, as in "
                    "https://mytimetable.example.edu/ical?user={upn}."
                )
            )


class ApiKeyForm(PortalForm):
    """A new API key's name, to tell the institution's keys apart."""

    name = StringField(
        _l("Name of the key"),
        filters=[strip],
        validators=[
            DataRequired(_l("Name the key, such as where MyTimetable uses it.")),
            Length(max=100, message=_l("Use at most 100 characters.")),
            single_line_text(_l("Use only printable text on one line.")),
        ],
    )


MAX_COLOURS = 200


class InstitutionSettingsForm(PortalForm):
    """What the institution's connect pages show its users, and the Outlook colours of its
    timetable's categories."""

    time_zone = StringField(
        _l("Time zone"),
        filters=[strip],
        validators=[Optional(), Length(max=64)],
    )
    service_desk = StringField(
        _l("IT service desk"),
        filters=[strip],
        validators=[Optional(), Length(max=320)],
    )
    reconnect_email = BooleanField(_l("E-mail users when they need to connect again"))
    colours = TextAreaField(
        _l("Colours of the timetable's categories"),
        validators=[
            Optional(),
            Length(max=20_000, message=_l("Keep the colours under 20,000 characters.")),
        ],
    )
    # What ``colours`` says, once validated: category name -> preset.
    colour_mapping: dict[str, str] | None = None

    def validate_colours(self, field):
        """One ``Category = colour`` a line (blank lines skipped): a category once, a colour
        by its Outlook name, ``presetN`` or ``none``; at most ``MAX_COLOURS`` lines."""
        mapping: dict[str, str] = {}
        first_line: dict[str, int] = {}
        for number, line in enumerate(field.data.split("\n"), start=1):
            line = line.rstrip("\r").strip()
            if not line:
                continue
            name, equals, value = line.partition("=")
            name, value = name.strip(), value.strip()
            if has_control_characters(line):
                raise ValidationError(_("Line %(line)d: use only printable text.", line=number))
            if not equals or not name:
                raise ValidationError(
                    _(
                        "Line %(line)d: write the category, =, and its colour, as in "
                        "Lecture = Blue.",
                        line=number,
                    )
                )
            if len(name) > category_colours.MAX_NAME:
                raise ValidationError(
                    _(
                        "Line %(line)d: keep the category under %(max)d characters.",
                        line=number,
                        max=category_colours.MAX_NAME,
                    )
                )
            preset = category_colours.preset(value)
            if preset is None:
                raise ValidationError(
                    _(
                        "Line %(line)d: “%(value)s” is not an Outlook colour. Use a colour "
                        "name such as Blue or DarkRed, preset0 to preset24, or none.",
                        line=number,
                        value=value[:40],
                    )
                )
            if name.casefold() in first_line:
                raise ValidationError(
                    _(
                        "Line %(line)d: %(category)s has a colour on line %(first)d already.",
                        line=number,
                        category=name,
                        first=first_line[name.casefold()],
                    )
                )
            first_line[name.casefold()] = number
            mapping[name] = preset
        if len(mapping) > MAX_COLOURS:
            raise ValidationError(_("Give colours to at most %(max)d categories.", max=MAX_COLOURS))
        self.colour_mapping = mapping

    def validate_time_zone(self, field):
        """An IANA time zone, spelled as the time zone database does."""
        if not timezones.valid(field.data):
            raise ValidationError(
                _("Enter a time zone from the IANA list, such as Europe/Amsterdam.")
            )

    def validate_service_desk(self, field):
        """A web address (https:// or http://) or an e-mail address, nothing else."""
        value = field.data
        web = value.startswith(("https://", "http://")) and len(value) > len("https://")
        if has_control_characters(value) or any(c.isspace() for c in value):
            web = False
        if not (web or ADDRESS.match(value)):
            raise ValidationError(
                _("Enter a web address starting with https://, or an e-mail address.")
            )
