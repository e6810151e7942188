"""Forms shared by every area, and the base every form of the portal builds on."""

from flask import has_request_context, request
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms.fields import (
    FileField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
)
from wtforms.validators import DataRequired, NumberRange, Optional, ValidationError

from .i18n import lazy_gettext as _l

# A database ID: larger numbers name no row (and some databases refuse them).
LARGEST_ID = 2**31 - 1

_FROM_REQUEST = object()
_SUBMIT_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class PortalForm(FlaskForm):
    """A form that reads only what a browser's form sends for it.

    Flask-WTF also reads JSON bodies and hands an uploaded file to whichever field has its
    name; a text field that got a file (or a JSON number) made its validators fail with a
    TypeError. Here text fields see only the form's text, file fields only files, and a
    JSON body is no form at all.
    """

    def __init__(self, formdata=_FROM_REQUEST, **kwargs):
        if formdata is _FROM_REQUEST:
            formdata = self._browser_formdata(kwargs.get("prefix", ""))
        super().__init__(formdata=formdata, **kwargs)

    def _browser_formdata(self, prefix: str):
        if not has_request_context() or request.method not in _SUBMIT_METHODS:
            return None
        file_fields = {
            prefix + name
            for name, unbound in self._unbound_fields
            if issubclass(unbound.field_class, FileField)
        }
        files = MultiDict(
            [(name, f) for name, f in request.files.items(multi=True) if name in file_fields]
        )
        if files:
            return CombinedMultiDict((files, request.form))
        return request.form or None


class ConfirmForm(PortalForm):
    """A form with only its CSRF token, for buttons that change something."""


class HeldRemovalsForm(PortalForm):
    """The decision on the removals a pass of group following held: the pass whose list the
    page showed (a later pass's list is not decided by it) and which button was pressed."""

    pass_id = IntegerField(validators=[DataRequired(), NumberRange(1, LARGEST_ID)])
    decision = SelectField(choices=[SelectChoice("confirm"), SelectChoice("cancel")])


class RemoveMailboxesForm(PortalForm):
    """The mailboxes to remove (ticked, or one row's own button), what to take out of each,
    and whether the confirmation page was seen: without it nothing is removed."""

    connection = SelectMultipleField(coerce=int, validate_choice=False)
    only = IntegerField(validators=[Optional(), NumberRange(1, LARGEST_ID)])
    remove = RadioField(
        _l("What to take out of each mailbox"),
        choices=[
            SelectChoice(
                "events",
                _l(
                    "Only the events the portal wrote: the MyTimetable calendar stays, with "
                    "anything else in it"
                ),
            ),
            SelectChoice("calendar", _l("The MyTimetable calendar, with everything in it")),
        ],
        default="events",
    )
    confirmed = HiddenField()

    def validate_connection(self, field):
        """Only IDs a database can hold."""
        if any(not 1 <= value <= LARGEST_ID for value in field.data or []):
            raise ValidationError(_("Choose the mailboxes from the list."))

    def chosen(self) -> list[int]:
        """The IDs of the mailboxes to remove."""
        return [self.only.data] if self.only.data else list(self.connection.data or [])
