"""Forms shared by every area."""

from flask_wtf import FlaskForm


class ConfirmForm(FlaskForm):
    """A form with only its CSRF token, for buttons that change something."""
