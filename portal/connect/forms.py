"""The end user's forms."""

from wtforms import BooleanField

from ..forms import PortalForm


class DisconnectForm(PortalForm):
    """Stop the synchronisation, optionally removing the MyTimetable calendar."""

    remove_calendar = BooleanField("Also remove the MyTimetable calendar from Outlook")
