"""The portal renders WTForms' widget attributes through its own ``html_params``: the same
text as WTForms' function, for any attributes."""

from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup
from wtforms import widgets

from portal import forms

NAMES = st.sampled_from(
    [
        "id",
        "name",
        "value",
        "class_",
        "for_",
        "data_copy",
        "aria_describedby",
        "aria-invalid",
        "autocomplete",
        "spellcheck",
        "checked",
        "required",
        "type",
        "maxlength",
    ]  # fmt: skip
)
VALUES = st.one_of(
    st.booleans(),
    st.text(),
    st.text().map(Markup),  # already safe: its quotes must still not end the attribute
    st.integers(),
    st.none(),
)


@given(st.dictionaries(NAMES, VALUES, max_size=8))
def test_html_params_match_wtforms_character_for_character(attributes):
    assert forms.html_params(**attributes) == forms.WTFORMS_HTML_PARAMS(**attributes)
    assert isinstance(forms.html_params(**attributes), Markup)


def test_quotes_and_markup_in_values_stay_inside_the_attribute():
    rendered = forms.html_params(value='"><script>', title=Markup('a "b"'), hidden=True, x=False)
    assert rendered == 'hidden title="a &quot;b&quot;" value="&#34;&gt;&lt;script&gt;"'


def test_the_portal_renders_inputs_selects_and_buttons_with_it(app):
    assert widgets.Input.html_params is forms.html_params
    assert widgets.Button.html_params is forms.html_params
    assert widgets.core.html_params is forms.html_params
