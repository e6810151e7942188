"""The portal in English and Dutch: which language a request gets, the language switcher,
and dates and stored codes as the pages show them in that language.

A request gets the language chosen with the switcher (kept in a cookie, so that it
survives the new session of a sign-in or an invitation link), else the best match for the
browser's Accept-Language, else English.
"""

from datetime import datetime

from babel.dates import format_datetime
from flask import Flask, abort, g, has_request_context, redirect, request, url_for
from flask_babel import LazyString, get_locale, gettext
from markupsafe import Markup, escape

from .sync import SyncOutcome
from .urls import local_target

LANGUAGES = {"en": "English", "nl": "Nederlands"}
DEFAULT = "en"
COOKIE = "portal_language"
COOKIE_AGE = 365 * 24 * 3600
# A page's language depends on these request headers (the switcher's choice is a cookie).
VARY = ("Accept-Language", "Cookie")


class _LazyText(LazyString):
    """Flask-Babel's lazy string, escaped like any other text when a page shows it
    (Flask-Babel's own passes as ready-made HTML)."""

    def __html__(self) -> Markup:
        return escape(str(self))


def lazy_gettext(string: str, **variables) -> LazyString:
    """``gettext`` when the text is shown, for text made at import (labels, tables)."""
    return _LazyText(gettext, string, **variables)


_l = lazy_gettext


def select_locale() -> str:
    """The switcher's choice, else the browser's best match, else English."""
    if not has_request_context():
        return DEFAULT
    chosen = request.cookies.get(COOKIE)
    if chosen not in LANGUAGES:
        chosen = request.accept_languages.best_match(LANGUAGES, default=DEFAULT)
    return chosen


def choose_language(code: str):
    """Remember the chosen language and go back to the page the switcher was on."""
    if code not in LANGUAGES:
        abort(404)
    response = redirect(local_target(request.args.get("next")) or url_for("index"))
    response.set_cookie(
        COOKIE,
        code,
        max_age=COOKIE_AGE,
        secure=request.is_secure,
        httponly=True,
        samesite="Lax",
    )
    return response


def return_after_switching(path: str) -> None:
    """Where the switcher goes back to from a page that answers a form sent to an address
    that cannot be opened again (a POST-only route): ``path``, a page that can."""
    g.language_return = path


def _return_path() -> str:
    """The page the switcher returns to in the other language: this one, or, for the answer
    to a form, its address if it can be opened, else what the view or its area named."""
    if not has_request_context():
        return ""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    rule = request.url_rule
    if rule is not None and "GET" in (rule.methods or ()):
        return request.path
    return g.get("language_return", "")


def _switcher_context() -> dict:
    return {
        "languages": LANGUAGES,
        "current_language": str(get_locale() or DEFAULT),
        "return_path": _return_path(),
    }


# Codes stored in the database, as the pages name them.
CODE_LABELS = {
    # Configuration status
    "draft": _l("Draft"),
    "submitted": _l("Submitted"),
    "changes_requested": _l("Changes requested"),
    "approved": _l("Approved"),
    "exported": _l("Exported"),
    # Connection status
    "connected": _l("connected"),
    "needs_reconnect": _l("needs reconnect"),
    "mailbox_not_found": _l("mailbox not found"),
    "outside_group": _l("outside the group"),
    "disconnected": _l("disconnected"),
    # Verification outcome ("failed" and "skipped" name synchronisation outcomes too)
    "passed": _l("passed"),
    SyncOutcome.FAILED: _l("failed"),
    SyncOutcome.SKIPPED: _l("skipped"),
    # Synchronisation outcome
    SyncOutcome.OK: _l("up to date"),
    SyncOutcome.UNCHANGED: _l("no changes"),
    SyncOutcome.PARTIAL: _l("partly done"),
    # A run Graph throttled for longer than the sync may wait; also why the next was queued.
    SyncOutcome.THROTTLED: _l("Microsoft asked to wait"),
    # Why a synchronisation was queued
    "first sync": _l("first synchronisation"),
    "sync now": _l("you asked for it"),
    "reconnected": _l("you connected again"),
    "scheduled": _l("scheduled"),
    # How a pass of group following ended ("failed" is above)
    "done": _l("done"),
    "held": _l("held: waiting for a decision"),
    "confirmed": _l("held, then confirmed"),
    "cancelled": _l("held, then cancelled"),
    "superseded": _l("held, then replaced by a later pass"),
    # Method
    "application": _l("Application"),
    "delegated": _l("Delegated"),
}

PATTERNS = {
    "date": "dd MMM y",
    "long_date": "dd MMMM y",
    "day_month": "dd MMM",
    "datetime": "dd MMM y HH:mm",
    "datetime_seconds": "dd MMM y HH:mm:ss",
    "time": "HH:mm",
}


def code_label(code: str | None) -> str:
    """A stored code in the page's language; an unknown code as it is."""
    if code is None:
        return ""
    return CODE_LABELS.get(code, code)


def _date_filter(pattern: str):
    def render(value: datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, pattern, locale=get_locale() or DEFAULT)

    return render


def init_app(app: Flask) -> None:
    """The switcher's route and template values, and the filters for dates and codes."""
    app.add_url_rule("/language/<code>", "language", choose_language)
    app.context_processor(_switcher_context)
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.add_template_filter(code_label, "label")
    for name, pattern in PATTERNS.items():
        app.add_template_filter(_date_filter(pattern), name)

    @app.after_request
    def vary_on_language(response):
        response.vary.update(VARY)
        return response
