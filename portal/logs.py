"""Keys kept out of the logs: an invitation link's token, and the codes, states and tokens
of Microsoft's answers (and the login hints, which name people) in query strings.

One filter, ``KEYS``, rewrites each line of the loggers it is added to: the portal's own
(Flask writes the path of a request that failed), werkzeug's development server (request
lines with their query strings) and gunicorn's access and error logs (``gunicorn.conf.py``).
"""

import logging
import re

# The token is the last segment of an invitation link's path.
_INVITATION = re.compile(r"(/setup/i/)[^/?#\s\"']+")
_PARAMETERS = re.compile(
    r"\b(code|state|session_state|client_info|id_token|access_token|refresh_token|login_hint)"
    r"=[^&#\s\"']*"
)


def redact(text: str) -> str:
    """``text`` with invitation tokens and key-bearing query parameters replaced."""
    return _PARAMETERS.sub(r"\1=[redacted]", _INVITATION.sub(r"\1[redacted]", text))


class KeyFilter(logging.Filter):
    """Rewrites a record's message without the keys in it (the record is formatted here,
    once, so that handlers and formatters downstream see only the redacted text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


KEYS = KeyFilter()


def init_app(app) -> None:
    """Keep keys out of the portal's log and the development server's."""
    for logger in (app.logger, logging.getLogger("werkzeug")):
        logger.addFilter(KEYS)
