"""The Dutch catalog: complete, consistent with the English text, and compiled."""

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "portal" / "translations" / "nl" / "LC_MESSAGES" / "messages.po"
# The names the portal's Python code translates with, beside gettext's own.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
TAG = re.compile(r"</?(a|abbr|b|br|code|em|i|kbd|span|strong)\b[^>]*>")
# The formal pronouns, as words of their own (not the u of "uur" or "nieuw").
FORMAL = re.compile(r"\b(u|uw|uzelf)\b", re.IGNORECASE)


def _catalog():
    with CATALOG.open("rb") as file:
        return read_po(file, locale="nl")


def _messages():
    return [message for message in _catalog() if message.id]


def _forms(value):
    return list(value) if isinstance(value, tuple) else [value]


def _plain(value):
    return tuple(value) if isinstance(value, list | tuple) else value


def _extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    searched = {"portal", "templates"}

    def inside(path: str) -> bool:
        parts = Path(path).absolute().relative_to(ROOT).parts
        return not parts or parts[0] in searched

    found = extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS, directory_filter=inside
    )
    return {message if isinstance(message, str) else message[0] for _, _, message, *_ in found}


def test_every_message_is_translated_and_none_is_fuzzy():
    catalog = _catalog()
    assert not catalog.fuzzy
    for message in _messages():
        assert "fuzzy" not in message.flags, message.id
        assert all(form.strip() for form in _forms(message.string)), message.id


@pytest.mark.parametrize("pattern", [PLACEHOLDER, TAG], ids=["placeholders", "html tags"])
def test_translations_keep_the_placeholders_and_markup_of_the_english(pattern):
    # Dutch has English's two plural forms: each form keeps what the English form does.
    for message in _messages():
        english = _forms(message.id)
        for n, form in enumerate(_forms(message.string)):
            expected = sorted(pattern.findall(english[min(n, len(english) - 1)]))
            assert sorted(pattern.findall(form)) == expected, (message.id, form)


def test_every_text_in_the_code_and_templates_is_in_the_dutch_catalog():
    known = {_forms(message.id)[0] for message in _messages()}
    missing = sorted(_extracted() - known)
    assert not missing, "run pybabel extract and update (see README):\n" + "\n".join(missing)


def test_the_compiled_catalog_matches_the_catalog():
    with CATALOG.with_suffix(".mo").open("rb") as file:
        compiled = {_plain(m.id): _plain(m.string) for m in read_mo(file) if m.id}
    written = {_plain(m.id): _plain(m.string) for m in _messages()}
    assert compiled == written, "run pybabel compile -d portal/translations"


def test_no_message_is_in_the_catalog_twice():
    # Branches that each add the same text at the end of the file leave two entries; the
    # reader keeps one silently, so which translation wins would depend on the order.
    text = CATALOG.read_text(encoding="utf-8")
    ids = re.findall(r'^(?:msgctxt (".*")\n)?msgid ((?:".*"\n)+)', text, flags=re.M)
    twice = sorted({entry for entry in ids if ids.count(entry) > 1})
    assert not twice, twice


def test_the_dutch_says_je_to_every_reader_never_u():
    # Issue 16: students, administrators and support all read "je"; a "u" on one page
    # beside "je" on the next makes the product speak with two voices.
    formal = [
        form
        for message in _messages()
        for form in _forms(message.string)
        if FORMAL.search(TAG.sub(" ", PLACEHOLDER.sub(" ", form)))
    ]
    assert not formal, "\n".join(formal)
