"""The portal in English and Dutch: which language a request gets, the language switcher,
and dates and stored codes as the pages show them in that language.

A request gets the language chosen with the switcher (kept in a cookie, so that it
survives the new session of a sign-in or an invitation link), else the best match for the
browser's Accept-Language, else English.
"""

from datetime import datetime

from babel import Locale
from babel.dates import format_datetime
from flask import Flask, abort, g, has_request_context, redirect, request, url_for
from flask_babel import LazyString, get_locale, get_translations
from jinja2 import pass_context
from markupsafe import Markup, escape

from .urls import local_target

LANGUAGES = {"en": "English", "nl": "Nederlands"}
DEFAULT = "en"
COOKIE = "portal_language"
COOKIE_AGE = 365 * 24 * 3600
# A page's language depends on these request headers (the switcher's choice is a cookie).
VARY = ("Accept-Language", "Cookie")


# Each language's catalog as Flask-Babel loaded it, which it does once per process and
# keeps: held here by locale, a page's translations skip Flask-Babel's look-up through its
# context, its domain and its cache on every request.
_CATALOGS: dict = {}


def translations(locale=None):
    """The catalog of the request's language, as Flask-Babel chose it (``force_locale``
    too). ``locale``: the request's, when the caller has just asked Flask-Babel for it."""
    locale = locale or get_locale()
    if locale is None:  # outside a request and an application: no translation
        return get_translations()
    catalog = _CATALOGS.get(locale)
    if catalog is None:
        catalog = _CATALOGS[locale] = get_translations()
    return catalog


def gettext(string: str, **variables) -> str:
    """``string`` in the request's language, with ``variables`` put in (``%(name)s``)."""
    text = translations().ugettext(string)
    return text % variables if variables else text


# The render context carries the request's catalog (``_switcher_context`` puts it there once
# per page), so that the many translations of a page are plain lookups in it.
CATALOG = "_request_catalog"


def _catalog_of(context):
    catalog = context.get(CATALOG)
    return translations() if catalog is None else catalog


def _install_jinja_gettext(app: Flask) -> None:
    """Templates translate through the catalog of the page's context (a macro, whose module
    has no page context, ``ui.field`` and the like, falls back to ``translations``). Jinja's own
    "newstyle" wrappers hand these the render context, mark the text safe and put the
    variables in."""
    app.jinja_env.install_gettext_callables(
        gettext=pass_context(lambda c, s: _catalog_of(c).ugettext(s)),
        ngettext=pass_context(lambda c, s, p, n: _catalog_of(c).ungettext(s, p, n)),
        pgettext=pass_context(lambda c, x, s: _catalog_of(c).upgettext(x, s)),
        npgettext=pass_context(lambda c, x, s, p, n: _catalog_of(c).unpgettext(x, s, p, n)),
        newstyle=True,
    )
    # ``_`` is Jinja's alias that looks ``gettext`` up again on every call; the same
    # function, without the detour.
    app.jinja_env.globals["_"] = app.jinja_env.globals["gettext"]


class _LazyText(LazyString):
    """Flask-Babel's lazy string, escaped like any other text when a page shows it
    (Flask-Babel's own passes as ready-made HTML)."""

    def __html__(self) -> Markup:
        return escape(str(self))


def lazy_gettext(string: str, **variables) -> LazyString:
    """``gettext`` when the text is shown, for text made at import (labels, tables)."""
    return _LazyText(gettext, string, **variables)


_l = lazy_gettext


# Flask-Babel makes a Locale of what ``select_locale`` returns on every request; one made
# once is taken as it is.
_LOCALES = {code: Locale.parse(code) for code in LANGUAGES}


def select_locale() -> Locale:
    """The switcher's choice, else the browser's best match, else English."""
    if not has_request_context():
        return _LOCALES[DEFAULT]
    chosen = request.cookies.get(COOKIE)
    if chosen not in LANGUAGES:
        chosen = request.accept_languages.best_match(LANGUAGES, default=DEFAULT)
    return _LOCALES[chosen]


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
    here = _return_path()
    locale = get_locale()
    return {
        "languages": LANGUAGES,
        "current_language": str(locale or DEFAULT),
        "return_path": here,
        CATALOG: translations(locale),
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
    "disconnected": _l("disconnected"),
    # Verification outcome
    "passed": _l("passed"),
    "failed": _l("failed"),
    "skipped": _l("skipped"),
    # Synchronisation outcome
    "ok": _l("up to date"),
    "unchanged": _l("no changes"),
    "partial": _l("partly done"),
    # A run Graph throttled for longer than the sync may wait; also why the next was queued.
    "throttled": _l("Microsoft asked to wait"),
    # Why a synchronisation was queued
    "first sync": _l("first synchronisation"),
    "sync now": _l("you asked for it"),
    "scheduled": _l("scheduled"),
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
    _install_jinja_gettext(app)
    app.context_processor(_switcher_context)
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.add_template_filter(code_label, "label")
    for name, pattern in PATTERNS.items():
        app.add_template_filter(_date_filter(pattern), name)

    @app.after_request
    def vary_on_language(response):
        if "Vary" in response.headers:
            response.vary.update(VARY)
        else:  # the common case, without parsing and writing the header back twice
            response.headers.add("Vary", ", ".join(VARY))
        return response
