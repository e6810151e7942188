"""The console's forms."""

from wtforms import PasswordField, RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from ..forms import PortalForm
from ..review import RETURN_STEPS
from ..validators import mailbox_address, strip

STEP_LABELS = {
    "method": "1. Method",
    "certificate": "2. Certificate",
    "register": "3. Register the app",
    "tenant": "4. Tenant and application",
    "verify": "5. Verify",
}


class SignInForm(PortalForm):
    """Staff sign-in."""

    email = StringField("E-mail address", validators=[DataRequired("Enter your e-mail address.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class ReturnForm(PortalForm):
    """Send a configuration back to its administrator."""

    message = TextAreaField(
        "Message to the administrator",
        validators=[
            DataRequired("Say what the administrator should change."),
            Length(max=4000, message="Keep the message under 4,000 characters."),
        ],
    )
    step = SelectField(
        "Reopen the wizard at",
        choices=[SelectChoice(step, STEP_LABELS[step]) for step in RETURN_STEPS],
        default="tenant",
    )


class InstitutionForm(PortalForm):
    """A new institution and its administrator's address."""

    name = StringField(
        "Institution name",
        filters=[strip],
        validators=[DataRequired("Enter the institution's name."), Length(max=200)],
    )
    hosting = RadioField(
        "Hosting",
        choices=[
            SelectChoice("managed", "Managed by MyTimetable"),
            SelectChoice("on_premises", "On premises (the institution hosts MyTimetable)"),
        ],
        validators=[DataRequired("Choose where MyTimetable runs.")],
    )
    contact_email = StringField(
        "Administrator's e-mail address",
        filters=[strip],
        validators=[
            DataRequired("Enter the administrator's e-mail address."),
            mailbox_address("Enter an e-mail address such as it@example.edu."),
            Length(max=320),
        ],
    )


class FeedForm(PortalForm):
    """The institution's MyTimetable iCalendar feed, per person."""

    feed_url_template = StringField(
        "Timetable feed address",
        filters=[strip],
        validators=[
            DataRequired("Enter the feed address."),
            Length(max=1000, message="Keep the address under 1,000 characters."),
        ],
    )

    def validate_feed_url_template(self, field):
        """An http(s) address with {upn} (or {email}) where each person's address goes."""
        value = field.data
        if not value.startswith(("https://", "http://")) or " " in value:
            raise ValidationError("Enter a web address starting with https://.")
        if "{upn}" not in value and "{email}" not in value:
            raise ValidationError(
                "Put {upn} where each person's address goes, as in "
                "https://mytimetable.example.edu/ical?user={upn}."
            )
