"""The end user's forms."""

from wtforms import BooleanField

from ..forms import PortalForm
from ..i18n import lazy_gettext as _l


class DisconnectForm(PortalForm):
    """Stop the synchronisation, optionally removing the MyTimetable calendar."""

    remove_calendar = BooleanField(_l("Also remove the MyTimetable calendar from Outlook"))
