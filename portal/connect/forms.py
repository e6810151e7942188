"""The end user's forms."""

from flask_wtf import FlaskForm
from wtforms import BooleanField


class DisconnectForm(FlaskForm):
    """Stop the synchronisation, optionally removing the MyTimetable calendar."""

    remove_calendar = BooleanField("Also remove the MyTimetable calendar from Outlook")
