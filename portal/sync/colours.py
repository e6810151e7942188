"""Which Outlook colour each timetable category is shown in.

Outlook colours an event by its categories: each names a category of the mailbox's master
list, which has one of 25 preset colours (outlookcategory.md: ``preset0`` Red to
``preset24`` DarkCranberry, or ``none``). When an institution shows its timetable in
colour, the sync makes the master categories for its feed's categories, each in the colour
found here:

1. the institution's own mapping, which support sets in the console (the institution's
   settings, one ``Category = colour`` per line);
2. else ``DEFAULTS``, for the kinds of activity timetables usually name, in English and
   Dutch: lectures blue, exams red, practicals green, tutorials orange, and so on;
3. else a preset drawn from the category's name (SHA-256), so that an unknown category
   has the same colour in every mailbox and every run.

Names are compared ignoring case. A category the mailbox already has
keeps the colour it has there: a changed mapping colours the categories made after it.
"""

import hashlib
from collections.abc import Iterable

# outlookcategory.md, "Pre-set constant" and "Color mapped to in Outlook" (desktop client).
COLOUR_NAMES = (
    "Red",
    "Orange",
    "Brown",
    "Yellow",
    "Green",
    "Teal",
    "Olive",
    "Blue",
    "Purple",
    "Cranberry",
    "Steel",
    "DarkSteel",
    "Gray",
    "DarkGray",
    "Black",
    "DarkRed",
    "DarkOrange",
    "DarkBrown",
    "DarkYellow",
    "DarkGreen",
    "DarkTeal",
    "DarkOlive",
    "DarkBlue",
    "DarkPurple",
    "DarkCranberry",
)
PRESETS = tuple(f"preset{n}" for n in range(len(COLOUR_NAMES)))
NO_COLOUR = "none"
# The longest category name the console takes in an institution's mapping.
MAX_NAME = 255

_BLUE, _RED, _GREEN, _ORANGE = "preset7", "preset0", "preset4", "preset1"
_PURPLE, _TEAL, _YELLOW, _GRAY, _DARK_RED = "preset8", "preset5", "preset3", "preset12", "preset15"
DEFAULTS = {
    "lecture": _BLUE,
    "hoorcollege": _BLUE,
    "college": _BLUE,
    "exam": _RED,
    "examination": _RED,
    "tentamen": _RED,
    "test": _RED,
    "toets": _RED,
    "resit": _DARK_RED,
    "hertentamen": _DARK_RED,
    "practical": _GREEN,
    "practicum": _GREEN,
    "lab": _GREEN,
    "laboratory": _GREEN,
    "tutorial": _ORANGE,
    "werkcollege": _ORANGE,
    "seminar": _PURPLE,
    "workshop": _TEAL,
    "presentation": _YELLOW,
    "presentatie": _YELLOW,
    "self-study": _GRAY,
    "zelfstudie": _GRAY,
}


def colour(category: str, institution_colours: dict[str, str] | None = None) -> str:
    """The preset (or ``none``) the category's master category is made in."""
    key = category.casefold()
    for name, preset in (institution_colours or {}).items():
        if name.casefold() == key:
            return preset
    if key in DEFAULTS:
        return DEFAULTS[key]
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return PRESETS[int.from_bytes(digest[:8], "big") % len(PRESETS)]


def preset(value: str) -> str | None:
    """The preset a person means by ``value``: ``preset7``, its colour's name (``Blue``,
    ``darkred``) or ``none``, in any case; None when it is neither."""
    wanted = value.strip().casefold()
    if wanted == NO_COLOUR:
        return NO_COLOUR
    for number, name in enumerate(COLOUR_NAMES):
        if wanted in (PRESETS[number], name.casefold()):
            return PRESETS[number]
    return None


def label(value: str) -> str:
    """A preset as people read it: its colour's name (``none`` stays ``none``)."""
    return COLOUR_NAMES[PRESETS.index(value)] if value in PRESETS else NO_COLOUR


def as_text(institution_colours: dict[str, str] | None) -> str:
    """The mapping as the console's form shows it, one ``Category = Colour`` a line."""
    return "\n".join(f"{name} = {label(p)}" for name, p in (institution_colours or {}).items())


def defaults_by_colour() -> list[tuple[str, list[str]]]:
    """The default mapping for the console's help: (colour name, categories)."""
    found: dict[str, list[str]] = {}
    for name, value in DEFAULTS.items():
        found.setdefault(label(value), []).append(name)
    return list(found.items())


def distinct(categories: Iterable[str]) -> list[str]:
    """The categories once each (ignoring case; the first spelling kept), without blank
    ones, in the order given."""
    seen: dict[str, str] = {}
    for category in categories:
        name = category.strip()
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return list(seen.values())
