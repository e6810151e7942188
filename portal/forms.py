"""Forms shared by every area, and the base every form of the portal builds on."""

from collections.abc import Callable
from types import MappingProxyType

from flask import has_request_context, request
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms import widgets as wtforms_widgets
from wtforms.fields import FileField
from wtforms.widgets.core import clean_key

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


class OnDemand:
    """Stands for a page's form until the page uses it, then makes it (``make()``).

    A page answering a GET whose fields are kept rendered (``portal.fragments``) needs no
    form, only the session's CSRF token (the ``csrf_field`` macro), until a field has to be
    rendered; building a form of a few fields costs WTForms 0.1 to 0.2 ms a page. It is never
    a submission, so it has no errors and does not validate.
    """

    errors = MappingProxyType({})  # read-only: one for every stand-in

    def __init__(self, make: Callable[[], FlaskForm]):
        self._make = make
        self._form = None

    def validate_on_submit(self) -> bool:
        return False

    def __getattr__(self, name: str):
        if self._form is None:
            self._form = self._make()
        return getattr(self._form, name)


def for_page(make: Callable[[], FlaskForm]):
    """The form ``make()`` makes: at once for a form sent, on demand (``OnDemand``) for a
    page opened."""
    if has_request_context() and request.method in _SUBMIT_METHODS:
        return make()
    return OnDemand(make)


class ConfirmForm(PortalForm):
    """A form with only its CSRF token, for buttons that change something."""


def html_params(**attributes) -> Markup:
    """WTForms' ``html_params`` (the attributes of a widget's HTML element), the same text
    made without ``Markup.format``.

    WTForms formats each attribute through MarkupSafe's escaping string formatter, about
    40 µs a field, which made rendering the inputs a fifth of a wizard page's time. The
    result is the same, character for character (tested against WTForms' own function):
    names and values escaped, ``True`` as a bare attribute, ``False`` left out, sorted.
    """
    params = []
    for key, value in sorted(attributes.items()):
        key = clean_key(key)
        if value is True:
            params.append(key)
        elif value is not False:
            value = str(escape(value)).replace('"', "&quot;")  # quotes in safe markup too
            params.append(f'{escape(key)}="{value}"')
    return Markup(" ".join(params))  # noqa: S704  # every name and value escaped above


# WTForms' own function, kept for the tests that compare the two.
WTFORMS_HTML_PARAMS = wtforms_widgets.core.html_params


def use_fast_html_params() -> None:
    """Render every WTForms widget's attributes through ``html_params`` above: the widgets
    that look it up on themselves (inputs, buttons) and those that use the module's
    function (select, its options, text areas)."""
    wtforms_widgets.Input.html_params = staticmethod(html_params)
    wtforms_widgets.Button.html_params = staticmethod(html_params)
    wtforms_widgets.core.html_params = html_params
